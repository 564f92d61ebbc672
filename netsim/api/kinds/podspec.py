"""PodSpec defaulting and ValidatePodSpec (k8s.io/kubernetes pkg/apis/core/validation), shared
by Pods and every pod template (Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs).

Paths, orders and wording are upstream's, quirks included: the NotSupported lists are in
the order upstream passes them (dnsPolicy's starts with ClusterFirstWithHostNet), a
volumeMount's subPath error names `volumeMounts.subPath` without an index, a request over
its limit is reported on `resources.requests` with the canonical quantity ("500m").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netsim.api import quantity
from netsim.api import validation as v

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
HTTP_SCHEMES = ("HTTP", "HTTPS")
MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
NOT_FOR_INIT = "may not be set for init containers without restartPolicy=Always"
MAX_INT32 = 2 ** 31 - 1

# validateVolumeSource's order; the value is the child its "more than 1" error names
# (upstream's own spellings: cephFS, downwarAPI).
VOLUME_TYPES = {
    "emptyDir": "emptyDir", "hostPath": "hostPath", "gitRepo": "gitRepo",
    "gcePersistentDisk": "gcePersistentDisk", "awsElasticBlockStore": "awsElasticBlockStore",
    "secret": "secret", "nfs": "nfs", "iscsi": "iscsi", "glusterfs": "glusterfs",
    "flocker": "flocker", "persistentVolumeClaim": "persistentVolumeClaim", "rbd": "rbd",
    "cinder": "cinder", "cephfs": "cephFS", "quobyte": "quobyte",
    "downwardAPI": "downwarAPI", "fc": "fc", "flexVolume": "flexVolume",
    "configMap": "configMap", "azureFile": "azureFile", "vsphereVolume": "vsphereVolume",
    "photonPersistentDisk": "photonPersistentDisk", "portworxVolume": "portworxVolume",
    "azureDisk": "azureDisk", "storageos": "storageos", "projected": "projected",
    "scaleIO": "scaleIO", "csi": "csi", "ephemeral": "ephemeral", "image": "image",
}

ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                   "status.podIP", "status.podIPs")
# podshelper.ConvertDownwardAPIFieldLabel's v1 labels
_DOWNWARD_LABELS = ("metadata.annotations", "metadata.labels", "metadata.name",
                    "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
                    "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
                    "status.podIPs")
RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                        "requests.cpu", "requests.ephemeral-storage", "requests.memory")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_STANDARD_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "requests.storage", "services.nodeports",
    "services.loadbalancers"}


# ---- defaults ----------------------------------------------------------------------------------
def default_container(c: dict) -> None:
    """SetDefaults_Container/Probe/HTTPGetAction: zero values count as unset, as in Go."""
    image = c.get("image") or ""
    tag = image.rsplit("/", 1)[-1]
    latest = ":" not in tag or tag.endswith(":latest")
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if latest and "@" not in tag else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict) and not p.get("protocol"):
            p["protocol"] = "TCP"
    for e in c.get("env") or []:
        ref = ((e or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        pr = c.get(probe)
        if isinstance(pr, dict):
            for k, dflt in (("timeoutSeconds", 1), ("periodSeconds", 10),
                            ("successThreshold", 1), ("failureThreshold", 3)):
                if not pr.get(k):
                    pr[k] = dflt
            get = pr.get("httpGet")
            if isinstance(get, dict):
                if not get.get("path"):
                    get["path"] = "/"
                if not get.get("scheme"):
                    get["scheme"] = "HTTP"


def default_pod_spec(spec: dict) -> None:
    for k, dflt in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                    ("schedulerName", "default-scheduler")):
        if not spec.get(k):
            spec[k] = dflt
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            default_container(c)
    for c in spec.get("initContainers") or []:
        if isinstance(c, dict):
            default_container(c)
    for vol in spec.get("volumes") or []:
        for key in ("secret", "configMap"):
            src = (vol or {}).get(key)
            if isinstance(src, dict) and src.get("defaultMode") is None:
                src["defaultMode"] = 0o644
        hp = (vol or {}).get("hostPath")
        if isinstance(hp, dict) and hp.get("type") is None:
            hp["type"] = ""


# ---- small pieces ------------------------------------------------------------------------------
def _qstr(q) -> str:
    """Quantity.String(): the canonical form a message shows."""
    return quantity.format_exact(*quantity.parse_exact(q))


def _relative_path(p: str, path: str) -> list[str]:
    """validateLocalDescendingPath: relative, no '..' element."""
    errs = []
    if p.startswith("/"):
        errs.append(v.invalid(path, p, "must be a relative path"))
    if ".." in p.replace("\\", "/").split("/"):
        errs.append(v.invalid(path, p, "must not contain '..'"))
    return errs


def _local_non_reserved_path(p: str, path: str) -> list[str]:
    errs = _relative_path(p, path)
    if p.startswith("..") and not p.startswith("../"):
        errs.append(v.invalid(path, p, "must not start with '..'"))
    return errs


def _mode(mode, path: str) -> list[str]:
    if mode is not None and not 0 <= mode <= 0o777:
        return [v.invalid(path, mode, FILE_MODE_MSG)]
    return []


def _key_to_paths(items, path: str) -> list[str]:
    errs = []
    for i, kp in enumerate(items or []):
        ip = f"{path}[{i}]"
        if not kp.get("key"):
            errs.append(v.required(f"{ip}.key"))
        if not kp.get("path"):
            errs.append(v.required(f"{ip}.path"))
        errs += _local_non_reserved_path(kp.get("path") or "", f"{ip}.path")
        errs += _mode(kp.get("mode"), f"{ip}.mode")
    return errs


# ---- volumes -----------------------------------------------------------------------------------
def _only_one(obj: dict, keys: dict[str, str], path: str, what: str,
              errs: list[str]) -> Iterator[tuple[str, Any]]:
    """validateVolumeSource's and validateHandler's walk: yields the first of `keys` that obj
    sets, (key, value); each later one is Forbidden, under its child name, and none at all
    is Required. Appended to `errs` as the walk goes, so the first one's own errors come
    before the Forbidden ones."""
    found = False
    for key, child in keys.items():
        value = obj.get(key)
        if value is None:
            continue
        if found:
            errs.append(v.forbidden(f"{path}.{child}", f"may not specify more than 1 {what}"))
            continue
        found = True
        yield key, value
    if not found:
        errs.append(v.required(path, f"must specify a {what}"))


def _volume_source(vol: dict, path: str) -> list[str]:
    errs: list[str] = []
    for key, src in _only_one(vol, VOLUME_TYPES, path, "volume type", errs):
        src = src if isinstance(src, dict) else {}
        sp = f"{path}.{key}"
        if key == "emptyDir":
            size = src.get("sizeLimit")
            if size is not None and quantity.parse_exact(size)[0] < 0:
                errs.append(v.forbidden(f"{sp}.sizeLimit",
                                        "SizeLimit field must be a valid resource quantity"))
        elif key == "hostPath":
            if not src.get("path"):
                errs.append(v.required(f"{sp}.path"))
                continue
            if ".." in src["path"].split("/"):
                errs.append(v.invalid(f"{sp}.path", src["path"], "must not contain '..'"))
            t = src.get("type")
            if t is not None and t not in HOST_PATH_TYPES:
                errs.append(v.unsupported(f"{sp}.type", t, HOST_PATH_TYPES))
        elif key in ("secret", "configMap"):
            name_field = "secretName" if key == "secret" else "name"
            if not src.get(name_field):
                errs.append(v.required(f"{sp}.{name_field}"))
            errs += _mode(src.get("defaultMode"), f"{sp}.defaultMode")
            errs += _key_to_paths(src.get("items"), f"{sp}.items")
        elif key == "persistentVolumeClaim":
            if not src.get("claimName"):
                errs.append(v.required(f"{sp}.claimName"))
        elif key == "nfs":
            if not src.get("server"):
                errs.append(v.required(f"{sp}.server"))
            if not src.get("path"):
                errs.append(v.required(f"{sp}.path"))
            if not str(src.get("path") or "").startswith("/"):
                errs.append(v.invalid(f"{sp}.path", src.get("path") or "",
                                      "must be an absolute path"))
    return errs


def validate_volumes(volumes, path: str) -> tuple[dict[str, dict], list[str]]:
    """ValidateVolumes: the volumes that passed (by name) and every cause."""
    vols: dict[str, dict] = {}
    errs: list[str] = []
    for i, vol in enumerate(volumes or []):
        vp = f"{path}[{i}]"
        name = vol.get("name") or ""
        el = _volume_source(vol, vp)
        el += v.dns1123_label(name, f"{vp}.name") if name else [v.required(f"{vp}.name")]
        if name in vols:
            el.append(v.duplicate(f"{vp}.name", name))
        if el:
            errs += el
        else:
            vols[name] = vol
    return vols, errs


def _volume_mounts(c: dict, vols: dict, path: str) -> list[str]:
    errs: list[str] = []
    seen: set[str] = set()
    privileged = bool((c.get("securityContext") or {}).get("privileged"))
    for i, m in enumerate(c.get("volumeMounts") or []):
        mp = f"{path}[{i}]"
        name, mount = m.get("name") or "", m.get("mountPath") or ""
        if not name:
            errs.append(v.required(f"{mp}.name"))
        if name not in vols:
            errs.append(v.not_found(f"{mp}.name", name))
        if not mount:
            errs.append(v.required(f"{mp}.mountPath"))
        if mount in seen:
            errs.append(v.invalid(f"{mp}.mountPath", mount, "must be unique"))
        seen.add(mount)
        if m.get("subPath"):
            errs += _relative_path(m["subPath"], f"{path}.subPath")
        prop = m.get("mountPropagation")
        if prop is not None:
            if prop not in MOUNT_PROPAGATIONS:
                errs.append(v.unsupported(f"{path}.mountPropagation", prop, MOUNT_PROPAGATIONS))
            if prop == "Bidirectional" and not privileged:
                errs.append(v.forbidden(f"{path}.mountPropagation", "Bidirectional mount "
                                        "propagation is available only to privileged containers"))
    return errs


# ---- env ---------------------------------------------------------------------------------------
def _subscripted(label: str) -> tuple[str, str] | None:
    """fieldpath.SplitMaybeSubscriptedPath: `metadata.labels['app']` -> (path, subscript)."""
    if not label.endswith("']"):
        return None
    i = label.find("['")
    if i < 0:
        return None
    return label[:i], label[i + 2:-2]


def _field_ref(ref: dict, path: str) -> list[str]:
    """validateObjectFieldSelector with the env's expressions."""
    api, fp = ref.get("apiVersion") or "", ref.get("fieldPath") or ""
    if not api:
        return [v.required(f"{path}.apiVersion")]
    if not fp:
        return [v.required(f"{path}.fieldPath")]
    sub = _subscripted(fp)
    err = None
    if api != "v1":
        err = f"unsupported pod version: {api}"
    elif sub is not None and sub[0] not in ("metadata.annotations", "metadata.labels"):
        err = f"field label does not support subscript: {fp}"
    elif sub is None and fp not in _DOWNWARD_LABELS and fp != "spec.host":
        err = f"field label not supported: {fp}"
    if err:
        return [v.invalid(f"{path}.fieldPath", fp, f"error converting fieldPath: {err}")]
    if sub is not None:
        key = sub[1].lower() if sub[0] == "metadata.annotations" else sub[1]
        return v.qualified_name(key, path)
    fp = "spec.nodeName" if fp == "spec.host" else fp
    if fp not in ENV_FIELD_PATHS:
        return [v.unsupported(f"{path}.fieldPath", fp, ENV_FIELD_PATHS)]
    return []


def _required_valid(check, value: str, path: str) -> list[str]:
    """Required when empty, else `check`'s messages as Invalid values of `path`."""
    if not value:
        return [v.required(path)]
    return [v.invalid(path, value, m) for m in check(value)]


def _key_ref(ref: dict, path: str) -> list[str]:
    """validateConfigMapKeySelector / validateSecretKeySelector."""
    name = ref.get("name") or ""
    errs = [v.invalid(f"{path}.name", name, m) for m in v.is_dns1123_subdomain(name)]
    return errs + _required_valid(v.is_config_map_key, ref.get("key") or "", f"{path}.key")


def _value_from(ev: dict, path: str) -> list[str]:
    src = ev.get("valueFrom")
    if src is None:
        return []
    errs: list[str] = []
    n = 0
    if src.get("fieldRef") is not None:
        n += 1
        errs += _field_ref(src["fieldRef"], f"{path}.fieldRef")
    if src.get("resourceFieldRef") is not None:
        n += 1
        res = src["resourceFieldRef"].get("resource") or ""
        rp = f"{path}.resourceFieldRef"
        if not res:
            errs.append(v.required(f"{rp}.resource"))
        elif res not in RESOURCE_FIELD_PATHS and not res.startswith(
                ("requests.hugepages-", "limits.hugepages-")):
            errs.append(v.unsupported(f"{rp}.resource", res, RESOURCE_FIELD_PATHS))
    for key in ("configMapKeyRef", "secretKeyRef"):
        if src.get(key) is not None:
            n += 1
            errs += _key_ref(src[key], f"{path}.{key}")
    if n == 0:
        errs.append(v.invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
    elif ev.get("value"):
        errs.append(v.invalid(path, "", "may not be specified when `value` is not empty"))
    elif n > 1:
        errs.append(v.invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def validate_env(env, path: str) -> list[str]:
    errs: list[str] = []
    for i, ev in enumerate(env or []):
        ep = f"{path}[{i}]"
        errs += _required_valid(v.is_env_var_name, ev.get("name") or "", f"{ep}.name")
        errs += _value_from(ev, f"{ep}.valueFrom")
    return errs


def validate_env_from(env_from, path: str) -> list[str]:
    errs: list[str] = []
    for i, ev in enumerate(env_from or []):
        ep = f"{path}[{i}]"
        prefix = ev.get("prefix") or ""
        if prefix:
            errs += [v.invalid(f"{ep}.prefix", prefix, m) for m in v.is_env_var_name(prefix)]
        n = 0
        for key in ("configMapRef", "secretRef"):
            ref = ev.get(key)
            if ref is None:
                continue
            n += 1
            errs += _required_valid(lambda n: v.name_is_dns_subdomain(n, True),
                                    ref.get("name") or "", f"{ep}.{key}.name")
        if n == 0:
            errs.append(v.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(v.invalid(path, "", "may not have more than one field specified at a time"))
    return errs


# ---- probes and handlers -----------------------------------------------------------------------
def _handler(h: dict, path: str, kinds: tuple[str, ...]) -> list[str]:
    """validateHandler: exactly one of `kinds`."""
    errs: list[str] = []
    for kind, act in _only_one(h, {k: k for k in kinds}, path, "handler type", errs):
        ap = f"{path}.{kind}"
        if kind == "exec":
            if not act.get("command"):
                errs.append(v.required(f"{ap}.command"))
        elif kind == "httpGet":
            if not act.get("path"):
                errs.append(v.required(f"{ap}.path"))
            errs += v.port_num_or_name(act.get("port", 0), f"{ap}.port")
            scheme = act.get("scheme") or ""
            if scheme not in HTTP_SCHEMES:
                errs.append(v.unsupported(f"{ap}.scheme", scheme, HTTP_SCHEMES))
            for hdr in act.get("httpHeaders") or []:
                name = hdr.get("name") or ""
                errs += [v.invalid(f"{ap}.httpHeaders", name, m)
                         for m in v.is_http_header_name(name)]
        elif kind in ("tcpSocket", "grpc"):
            errs += v.port_num_or_name(act.get("port", 0), f"{ap}.port")
    return errs


def _probe(pr, path: str, which: str) -> list[str]:
    if pr is None:
        return []
    errs = _handler(pr, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        errs += v.nonnegative(pr.get(f, 0), f"{path}.{f}")
    tgps = pr.get("terminationGracePeriodSeconds")
    if tgps is not None and tgps <= 0:
        errs.append(v.invalid(f"{path}.terminationGracePeriodSeconds", tgps,
                              "must be greater than 0"))
    if which in ("livenessProbe", "startupProbe") and pr.get("successThreshold") != 1:
        errs.append(v.invalid(f"{path}.successThreshold", pr.get("successThreshold", 0),
                              "must be 1"))
    if which == "readinessProbe" and tgps is not None:
        errs.append(v.invalid(f"{path}.terminationGracePeriodSeconds", tgps,
                              "must not be set for readinessProbes"))
    return errs


def _lifecycle(lc: dict, path: str) -> list[str]:
    errs: list[str] = []
    for hook in ("postStart", "preStop"):
        if lc.get(hook) is not None:
            errs += _handler(lc[hook], f"{path}.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))
    return errs


# ---- resources ---------------------------------------------------------------------------------
def _native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _extended(name: str) -> bool:
    """helper.IsExtendedResourceName."""
    if _native(name) or name.startswith("requests."):
        return False
    return not v.is_qualified_name("requests." + name)


def _resource_name(name: str, path: str) -> list[str]:
    """validateContainerResourceName."""
    errs = [v.invalid(path, name, m) for m in v.is_qualified_name(name)]
    if not errs and "/" not in name and name not in _STANDARD_RESOURCES \
            and not _hugepages(name):
        errs.append(v.invalid(path, name, "must be a standard resource type or fully qualified"))
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not _hugepages(name):
            errs.append(v.invalid(path, name, "must be a standard resource for containers"))
    elif not _native(name) and not _extended(name):
        errs.append(v.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _quantity_value(name: str, q, path: str) -> list[str]:
    """ValidateResourceQuantityValue."""
    val = quantity.parse_exact(q)[0]
    errs = []
    if val < 0:
        errs.append(v.invalid(path, _qstr(q), v.NEGATIVE_MSG))
    if _extended(name) and (val * 1000) % 1000 != 0:
        errs.append(v.invalid(path, _qstr(q), "must be an integer"))
    return errs


def validate_resources(res: dict, path: str) -> list[str]:
    """ValidateContainerResourceRequirements (resource names sorted: Go's map order is random)."""
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    errs: list[str] = []
    for name in sorted(limits):
        fp = f"{path}.limits[{name}]"
        errs += _resource_name(name, fp) + _quantity_value(name, limits[name], fp)
    for name in sorted(requests):
        fp = f"{path}.requests[{name}]"
        q = requests[name]
        errs += _resource_name(name, fp) + _quantity_value(name, q, fp)
        overcommit = _native(name) and not _hugepages(name)
        if name in limits:
            req, lim = quantity.parse_exact(q)[0], quantity.parse_exact(limits[name])[0]
            if req != lim and not overcommit:
                errs.append(v.invalid(f"{path}.requests", _qstr(q), f"must be equal to {name} "
                                      f"limit of {_qstr(limits[name])}"))
            elif req > lim:
                errs.append(v.invalid(f"{path}.requests", _qstr(q), "must be less than or "
                                      f"equal to {name} limit of {_qstr(limits[name])}"))
        elif not overcommit:
            errs.append(v.required(f"{path}.limits",
                                   "Limit must be set for non overcommitable resources"))
    names = set(limits) | set(requests)
    if any(_hugepages(n) for n in names) and not names & {"cpu", "memory"}:
        errs.append(v.forbidden(path, "HugePages require cpu or memory"))
    return errs


# ---- containers --------------------------------------------------------------------------------
def _container_ports(ports: list, path: str) -> list[str]:
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
        causes += v.protocol(port.get("protocol"), f"{pp}.protocol")
    return causes


def _host_port_conflicts(containers: list, path: str) -> list[str]:
    """checkHostPortConflicts: protocol/hostIP/hostPort unique across `containers`."""
    seen: set[str] = set()
    errs: list[str] = []
    for i, c in enumerate(containers):
        for j, p in enumerate(c.get("ports") or []):
            if not p.get("hostPort"):
                continue
            key = f"{p.get('protocol') or ''}/{p.get('hostIP') or ''}/{p['hostPort']}"
            if key in seen:
                errs.append(v.duplicate(f"{path}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return errs


def _container_common(c: dict, vols: dict, p: str) -> list[str]:
    """validateContainerCommon: what init and regular containers share."""
    name = c.get("name") or ""
    causes = v.dns1123_label(name, f"{p}.name") if name else [v.required(f"{p}.name")]
    if not c.get("image"):
        causes.append(v.required(f"{p}.image"))
    tmp = c.get("terminationMessagePolicy") or ""
    if not tmp:
        causes.append(v.required(f"{p}.terminationMessagePolicy"))
    elif tmp not in TERMINATION_MESSAGE_POLICIES:
        causes.append(v.unsupported(f"{p}.terminationMessagePolicy", tmp,
                                    TERMINATION_MESSAGE_POLICIES))
    causes += _container_ports(c.get("ports") or [], f"{p}.ports")
    causes += validate_env(c.get("env"), f"{p}.env")
    causes += validate_env_from(c.get("envFrom"), f"{p}.envFrom")
    causes += _volume_mounts(c, vols, f"{p}.volumeMounts")
    pull = c.get("imagePullPolicy") or ""
    if not pull:
        causes.append(v.required(f"{p}.imagePullPolicy"))
    elif pull not in PULL_POLICIES:
        causes.append(v.unsupported(f"{p}.imagePullPolicy", pull, PULL_POLICIES))
    causes += validate_resources(c.get("resources") or {}, f"{p}.resources")
    return causes


def validate_tolerations(tolerations, path: str) -> list[str]:
    """ValidateTolerations."""
    errs: list[str] = []
    for i, t in enumerate(tolerations or []):
        tp = f"{path}[{i}]"
        key, op = t.get("key") or "", t.get("operator") or ""
        value, effect = t.get("value") or "", t.get("effect") or ""
        if key:
            errs += v.qualified_name(key, f"{tp}.key")
        if not key and op != "Exists":
            errs.append(v.invalid(f"{tp}.operator", op, "operator must be Exists when `key` is "
                                  'empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(v.invalid(f"{tp}.effect", effect,
                                  "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            bad = v.is_label_value(value)
            if bad:
                errs.append(v.invalid(f"{tp}.operator", value, ";".join(bad)))
        elif op == "Exists":
            if value:
                errs.append(v.invalid(f"{tp}.operator", value,
                                      "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(v.unsupported(f"{tp}.operator", op, TOLERATION_OPERATORS))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(v.unsupported(f"{tp}.effect", effect, TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: dict, path: str = "spec") -> list[str]:
    """ValidatePodSpec, the parts a netsim pod can hold, in upstream's order."""
    causes: list[str] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        causes.append(v.required(f"{path}.terminationGracePeriodSeconds"))
    vols, errs = validate_volumes(spec.get("volumes"), f"{path}.volumes")
    causes += errs
    containers = spec.get("containers") or []
    cp = f"{path}.containers"
    if not containers:
        causes.append(v.required(cp))
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{cp}[{i}]"
        causes += _container_common(c, vols, p)
        name = c.get("name") or ""
        if name in names:
            causes.append(v.duplicate(f"{p}.name", name))
        else:
            names.add(name)
        if c.get("lifecycle") is not None:
            causes += _lifecycle(c["lifecycle"], f"{p}.lifecycle")
        for which in ("livenessProbe", "readinessProbe", "startupProbe"):
            causes += _probe(c.get(which), f"{p}.{which}", which)
        if c.get("restartPolicy") is not None:
            causes.append(v.forbidden(f"{p}.restartPolicy", "may not be set for non-init "
                                                            "containers"))
    causes += _host_port_conflicts(containers, cp)
    # Init container names are unique across both lists; a clash is reported here.
    ip = f"{path}.initContainers"
    for i, c in enumerate(spec.get("initContainers") or []):
        p = f"{ip}[{i}]"
        causes += _container_common(c, vols, p)
        rp = c.get("restartPolicy")
        if rp is not None and rp != "Always":
            causes.append(v.unsupported(f"{p}.restartPolicy", rp, ("Always",)))
        name = c.get("name") or ""
        if name in names:
            causes.append(v.duplicate(f"{p}.name", name))
        elif name:
            names.add(name)
        causes += _host_port_conflicts([c], ip)
        if rp == "Always":
            if c.get("lifecycle") is not None:
                causes += _lifecycle(c["lifecycle"], f"{p}.lifecycle")
            for which in ("livenessProbe", "readinessProbe", "startupProbe"):
                causes += _probe(c.get(which), f"{p}.{which}", which)
        else:
            for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(f) is not None:
                    causes.append(v.forbidden(f"{p}.{f}", NOT_FOR_INIT))
    rp = spec.get("restartPolicy") or ""
    if not rp:
        causes.append(v.required(f"{path}.restartPolicy"))
    elif rp not in RESTART_POLICIES:
        causes.append(v.unsupported(f"{path}.restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy") or ""
    if not dp:
        causes.append(v.required(f"{path}.dnsPolicy"))
    elif dp not in DNS_POLICIES:
        causes.append(v.unsupported(f"{path}.dnsPolicy", dp, DNS_POLICIES))
    causes += v.labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    sa = spec.get("serviceAccountName") or ""
    if sa:
        causes += v.dns1123_subdomain(sa, f"{path}.serviceAccountName")
    node = spec.get("nodeName") or ""
    if node:
        causes += v.dns1123_subdomain(node, f"{path}.nodeName")
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and not 1 <= ads <= MAX_INT32:
        causes.append(v.invalid(f"{path}.activeDeadlineSeconds", ads,
                                v.inclusive_range_error(1, MAX_INT32)))
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            causes += v.dns1123_label(spec[f], f"{path}.{f}")
    causes += validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    return causes
