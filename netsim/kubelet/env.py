"""Container environment: env, envFrom, ConfigMap/Secret references, as the kubelet builds it."""

from __future__ import annotations

import base64
from collections.abc import Callable

# (resource, name, namespace) -> the object, or None when there is none
Getter = Callable[[str, str, str], "dict | None"]


class ConfigError(Exception):
    """The container cannot start yet (kubectl shows CreateContainerConfigError)."""


def _lookup(get: Getter, kind: str, name: str, ns: str, cache: dict) -> dict | None:
    key = (kind, name)
    if key not in cache:
        cache[key] = get(kind, name, ns)
    return cache[key]


def _values(obj: dict, kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def container_env(get: Getter, pod: dict, container: dict,
                  services: dict[str, str] | None = None) -> dict[str, str]:
    """The container's variables (not the process's base env). Raises ConfigError.

    `get` finds the ConfigMaps and Secrets referenced (the kubelet reads its caches).
    `services` (service_env) is what $(VAR) in a value may also name, as upstream's
    expansion.MappingFuncFor(container vars, service vars); the caller adds them."""
    services = services or {}
    ns = pod["metadata"].get("namespace", "default")
    cache: dict = {}
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = src.get(key)
            if not ref:
                continue
            obj = _lookup(get, kind, ref["name"], ns, cache)
            if obj is None:
                if ref.get("optional"):
                    continue
                word = "configmap" if kind == "configmaps" else "secret"
                raise ConfigError(f'{word} "{ref["name"]}" not found')
            for k, v in _values(obj, kind).items():
                env[src.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        name = e.get("name")
        if "value" in e or "valueFrom" not in e:
            env[name] = _expand(str(e.get("value", "")), {**services, **env})
            continue
        vf = e["valueFrom"]
        for kind, key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
            ref = vf.get(key)
            if not ref:
                continue
            word = "configmap" if kind == "configmaps" else "secret"
            obj = _lookup(get, kind, ref["name"], ns, cache)
            if obj is None:
                if ref.get("optional"):
                    break
                raise ConfigError(f'{word} "{ref["name"]}" not found')
            vals = _values(obj, kind)
            if ref["key"] not in vals:
                if ref.get("optional"):
                    break
                raise ConfigError(f"couldn't find key {ref['key']} in {'ConfigMap' if kind == 'configmaps' else 'Secret'} {ns}/{ref['name']}")
            env[name] = vals[ref["key"]]
        fr = vf.get("fieldRef")
        if fr:
            env[name] = _field(pod, fr.get("fieldPath", ""))
    return env


def _field(pod: dict, path: str) -> str:
    md, st, sp = pod["metadata"], pod.get("status", {}), pod.get("spec", {})
    table = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
             "metadata.uid": md.get("uid"), "spec.nodeName": sp.get("nodeName"),
             "spec.serviceAccountName": sp.get("serviceAccountName", "default"),
             "status.hostIP": st.get("hostIP"), "status.podIP": st.get("podIP")}
    if path.startswith("metadata.labels['"):
        return (md.get("labels") or {}).get(path[17:-2], "")
    if path.startswith("metadata.annotations['"):
        return (md.get("annotations") or {}).get(path[22:-2], "")
    return str(table.get(path) or "")


def _expand(value: str, env: dict[str, str]) -> str:
    """$(VAR) references to earlier variables; $$ escapes."""
    out, i = "", 0
    while i < len(value):
        if value.startswith("$$", i):
            out += "$"
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            j = value.index(")", i)
            name = value[i + 2:j]
            out += env.get(name, value[i:j + 1])
            i = j + 1
        else:
            out += value[i]
            i += 1
    return out


def service_env(services: list[dict], namespace: str, enable_links: bool = True) -> dict[str, str]:
    """The Service variables the kubelet gives a pod (getServiceEnvVarMap): those of the
    pod's namespace when enableServiceLinks, and always the default namespace's
    `kubernetes` Service (KUBERNETES_SERVICE_HOST, KUBERNETES_PORT_443_TCP, ...)."""
    master = [s for s in services if s["metadata"].get("namespace") == "default"
              and s["metadata"].get("name") == "kubernetes"]
    env = service_links(master, "default")
    if enable_links:
        env = {**service_links(services, namespace), **env}
    return env


def service_links(services: list[dict], namespace: str) -> dict[str, str]:
    """Docker-link style variables for the namespace's Services (envvars.FromServices)."""
    env = {}
    for svc in services:
        if svc["metadata"].get("namespace") != namespace:
            continue
        ip = svc.get("spec", {}).get("clusterIP")
        if not ip or ip == "None":
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        ports = svc["spec"].get("ports") or []
        host = f"[{ip}]" if ":" in ip else ip  # net.JoinHostPort
        env[f"{name}_SERVICE_HOST"] = ip
        if ports:
            env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
            p0 = ports[0]
            proto = p0.get("protocol", "TCP").lower()
            env[f"{name}_PORT"] = f"{proto}://{host}:{p0['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
            base = f"{name}_PORT_{p['port']}_{proto}"
            env[base] = f"{proto.lower()}://{host}:{p['port']}"
            env[base + "_PROTO"] = proto.lower()
            env[base + "_PORT"] = str(p["port"])
            env[base + "_ADDR"] = ip
    return env
