"""Pods, Namespaces, Nodes and Events: defaults as the API server fills them, validation in
its words (the PodSpec itself is podspec.py's, shared with every pod template)."""

from __future__ import annotations

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.kinds.podspec import default_pod_spec, validate_pod_spec

__all__ = ["default_pod_spec", "validate_pod_spec", "register"]

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


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
