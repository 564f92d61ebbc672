"""Pods and Namespaces: defaults as the API server fills them, validation in its words."""

from __future__ import annotations

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def default_container(c: dict) -> None:
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    latest = ":" not in tag or tag.endswith(":latest")
    c.setdefault("imagePullPolicy", "Always" if latest and "@" not in tag else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            pr.setdefault("timeoutSeconds", 1)
            pr.setdefault("periodSeconds", 10)
            pr.setdefault("successThreshold", 1)
            pr.setdefault("failureThreshold", 3)
            if "httpGet" in pr:
                pr["httpGet"].setdefault("path", "/")
                pr["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in spec.get("containers") or []:
        default_container(c)
    for c in spec.get("initContainers") or []:
        default_container(c)


def _default_pod(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    if old is None:
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        tol = spec.setdefault("tolerations", [])
        for t in DEFAULT_TOLERATIONS:
            if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tol):
                tol.append(dict(t))
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", _qos(spec))


def _qos(spec: dict) -> str:
    reqs = [((c.get("resources") or {}).get("requests") or {}, (c.get("resources") or {}).get("limits") or {})
            for c in spec.get("containers") or []]
    if not any(r or li for r, li in reqs):
        return "BestEffort"
    if all(li.get("cpu") and li.get("memory") and r.get("cpu", li["cpu"]) == li["cpu"]
           and r.get("memory", li["memory"]) == li["memory"] for r, li in reqs):
        return "Guaranteed"
    return "Burstable"


_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _validate_container_ports(ports: list, path: str) -> list[str]:
    """validateContainerPorts."""
    causes: list[str] = []
    names: set[str] = set()
    for j, port in enumerate(ports or []):
        pp = f"{path}[{j}]"
        name = port.get("name") or ""
        if name:
            errs = v.port_name(name, f"{pp}.name")
            if errs:
                causes += errs
            elif name in names:
                causes.append(v.duplicate(f"{pp}.name", name))
            else:
                names.add(name)
        cp = port.get("containerPort")
        if not cp:
            causes.append(v.required(f"{pp}.containerPort"))
        else:
            causes += v.port_num(cp, f"{pp}.containerPort")
        hp = port.get("hostPort")
        if hp:
            causes += v.port_num(hp, f"{pp}.hostPort")
        proto = port.get("protocol")
        if not proto:
            causes.append(v.required(f"{pp}.protocol"))
        elif proto not in _PROTOCOLS:
            causes.append(v.unsupported(f"{pp}.protocol", proto, _PROTOCOLS))
    return causes


def _validate_container(c: dict, p: str) -> list[str]:
    """validateContainerCommon: what init and regular containers share."""
    name = c.get("name") or ""
    causes = v.dns1123_label(name, f"{p}.name") if name else [v.required(f"{p}.name")]
    if not c.get("image"):
        causes.append(v.required(f"{p}.image"))
    causes += _validate_container_ports(c.get("ports") or [], f"{p}.ports")
    return causes


def validate_pod_spec(spec: dict, path: str = "spec") -> list[str]:
    """ValidatePodSpec, the parts netsim runs: containers, names, ports, placement."""
    causes: list[str] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(v.required(f"{path}.containers"))
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        causes += _validate_container(c, p)
        name = c.get("name") or ""
        if name in names:
            causes.append(v.duplicate(f"{p}.name", name))
        else:
            names.add(name)
    # Init container names are unique across both lists; a clash is reported here.
    for i, c in enumerate(spec.get("initContainers") or []):
        p = f"{path}.initContainers[{i}]"
        causes += _validate_container(c, p)
        name = c.get("name") or ""
        if name in names:
            causes.append(v.duplicate(f"{p}.name", name))
        elif name:
            names.add(name)
    rp = spec.get("restartPolicy")
    if rp not in (None, "Always", "OnFailure", "Never"):
        causes.append(v.unsupported(f"{path}.restartPolicy", rp, ("Always", "Never", "OnFailure")))
    dp = spec.get("dnsPolicy")
    if dp not in (None, "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        causes.append(v.unsupported(f"{path}.dnsPolicy", dp, (
            "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")))
    causes += v.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    sa = spec.get("serviceAccountName") or ""
    if sa:
        causes += v.dns1123_subdomain(sa, f"{path}.serviceAccountName")
    node = spec.get("nodeName") or ""
    if node:
        causes += v.dns1123_subdomain(node, f"{path}.nodeName")
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            causes += v.dns1123_label(spec[f], f"{path}.{f}")
    return causes


def _validate_pod(obj: dict, old: dict | None) -> list[str]:
    causes = validate_pod_spec(obj.get("spec") or {})
    if old is not None:
        a, b = dict(old.get("spec") or {}), dict(obj.get("spec") or {})
        # Mutable after creation: images, activeDeadlineSeconds, tolerations (additions),
        # and the binding (nodeName set once by the scheduler).
        for s in (a, b):
            s.pop("tolerations", None)
            s.pop("activeDeadlineSeconds", None)
            s["containers"] = [{k: val for k, val in c.items() if k != "image"}
                               for c in s.get("containers") or []]
        if not a.get("nodeName"):
            b.pop("nodeName", None)
            a.pop("nodeName", None)
        if a != b:
            causes.append("spec: Forbidden: pod updates may not change fields other than "
                          "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                          "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                          "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                          "to be set to 1 if it was previously negative)")
    return causes


def _default_namespace(obj: dict, old: dict | None) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Pod", defaulter=_default_pod, validator=_validate_pod)
    reg.add("Namespace", defaulter=_default_namespace, name=v.name_is_dns_label)
    reg.add("Event", name=v.name_is_path_segment)
