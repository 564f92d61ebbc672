"""Pods and Namespaces: defaults as the API server fills them, validation in its words."""

from __future__ import annotations

from netsim.api.admission import DNS1123_LABEL, LABEL_MSG, register

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


def validate_pod_spec(spec: dict, path: str = "spec") -> list[str]:
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append(f"{path}.containers: Required value")
        return causes
    seen = set()
    for i, c in enumerate(containers):
        p = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            causes.append(f"{p}: Invalid value: must be an object")
            continue
        name = c.get("name")
        if not name:
            causes.append(f"{p}.name: Required value")
        elif not DNS1123_LABEL.match(name):
            causes.append(f'{p}.name: Invalid value: "{name}": {LABEL_MSG}')
        elif name in seen:
            causes.append(f'{p}.name: Duplicate value: "{name}"')
        seen.add(name)
        if not c.get("image"):
            causes.append(f"{p}.image: Required value")
        for j, port in enumerate(c.get("ports") or []):
            cp = port.get("containerPort")
            if cp is None:
                causes.append(f"{p}.ports[{j}].containerPort: Required value")
            elif not isinstance(cp, int) or not 0 < cp < 65536:
                causes.append(f"{p}.ports[{j}].containerPort: Invalid value: {cp}: must be between 1 and 65535, inclusive")
            if port.get("protocol") not in (None, "TCP", "UDP", "SCTP"):
                causes.append(f'{p}.ports[{j}].protocol: Unsupported value: "{port.get("protocol")}": supported values: "SCTP", "TCP", "UDP"')
    rp = spec.get("restartPolicy")
    if rp not in (None, "Always", "OnFailure", "Never"):
        causes.append(f'{path}.restartPolicy: Unsupported value: "{rp}": supported values: "Always", "Never", "OnFailure"')
    dp = spec.get("dnsPolicy")
    if dp not in (None, "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"):
        causes.append(f'{path}.dnsPolicy: Unsupported value: "{dp}": supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"')
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
            s["containers"] = [{k: v for k, v in c.items() if k != "image"}
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


register("Pod", defaulter=_default_pod, validator=_validate_pod)
register("Namespace", defaulter=_default_namespace)
