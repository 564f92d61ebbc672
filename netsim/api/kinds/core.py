"""Pods, Namespaces, Nodes and Events: defaults as the API server fills them, validation in
its words (the PodSpec itself is podspec.py's, shared with every pod template)."""

from __future__ import annotations

import ipaddress
import os

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.kinds.podspec import TAINT_EFFECTS, default_pod_spec, validate_pod_spec

__all__ = ["default_pod_spec", "validate_pod_spec", "register"]

# The DefaultTolerationSeconds admission plugin: --default-not-ready-toleration-seconds and
# --default-unreachable-toleration-seconds (300); NETSIM_DEFAULT_TOLERATION_SECONDS sets both
# (read when the API server starts, as a flag would be).
DEFAULT_TOLERATION_SECONDS = int(os.environ.get("NETSIM_DEFAULT_TOLERATION_SECONDS") or 300)
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": DEFAULT_TOLERATION_SECONDS},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": DEFAULT_TOLERATION_SECONDS},
]


def _tolerates_key(tolerations: list, key: str) -> bool:
    """DefaultTolerationSeconds' test: a toleration of `key` (or of every key) for
    NoExecute (or every effect), whatever its operator, value and seconds."""
    return any(isinstance(t, dict) and t.get("key") in (key, "", None)
               and t.get("effect") in ("NoExecute", "", None) for t in tolerations)


def _default_pod(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    # DefaultTolerationSeconds admits creates and updates alike: an update that leaves the
    # defaults out (`apply` of the unchanged manifest, which replaces the atomic list) gets
    # them again, so it does not read as removing them
    tol = spec.setdefault("tolerations", [])
    for t in DEFAULT_TOLERATIONS:
        if not _tolerates_key(tol, t["key"]):
            tol.append(dict(t))
    if old is None:
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
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


def _toleration_key(t: dict) -> tuple:
    return tuple(t.get(f) or "" for f in ("key", "operator", "value", "effect"))


def _only_added_tolerations(new, old) -> list[str]:
    """validateOnlyAddedTolerations: every old toleration is still there (its
    tolerationSeconds may change)."""
    have = {_toleration_key(t) for t in new or []}
    if any(_toleration_key(t) not in have for t in old or []):
        return [v.forbidden("spec.tolerations", "existing toleration can not be modified "
                                                "except its tolerationSeconds")]
    return []


def _validate_pod(obj: dict, old: dict | None) -> list[str]:
    causes = validate_pod_spec(obj.get("spec") or {})
    if old is not None:
        causes += _only_added_tolerations((obj.get("spec") or {}).get("tolerations"),
                                          (old.get("spec") or {}).get("tolerations"))
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


def _validate_namespace(obj: dict, old: dict | None) -> list[str]:
    """ValidateNamespace: spec.finalizers (metadata is base.validate_object_meta's)."""
    causes: list[str] = []
    for f in (obj.get("spec") or {}).get("finalizers") or []:
        causes += v.qualified_name(f, "spec.finalizers")
        causes += v.kube_finalizer_name(f, "spec.finalizers")
    return causes


# ---- Nodes -------------------------------------------------------------------------------------
def _go_taint(t: dict) -> str:
    """%#v of a core.Taint, as a Duplicate taint's error prints it."""
    return (f"core.Taint{{Key:{v.go_quote(t.get('key') or '')}, "
            f"Value:{v.go_quote(t.get('value') or '')}, "
            f"Effect:{v.go_quote(t.get('effect') or '')}, TimeAdded:(*v1.Time)(nil)}}")


def validate_node_taints(taints, path: str) -> list[str]:
    """validateNodeTaints (ValidateNode passes `metadata.taints`: upstream's path, kept)."""
    causes: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints or []):
        tp = f"{path}[{i}]"
        key, value, effect = t.get("key") or "", t.get("value") or "", t.get("effect") or ""
        causes += v.qualified_name(key, f"{tp}.key")
        bad = v.is_label_value(value)
        if bad:
            causes.append(v.invalid(f"{tp}.value", value, ";".join(bad)))
        if not effect:
            causes.append(v.required(f"{tp}.effect"))
        elif effect not in TAINT_EFFECTS:
            causes.append(v.unsupported(f"{tp}.effect", effect, TAINT_EFFECTS))
        if (effect, key) in seen:
            causes.append(f"{tp}: Duplicate value: {_go_taint(t)}: taints must be unique by key "
                          "and effect pair")
            continue
        seen.add((effect, key))
    return causes


def _pod_cidrs(spec: dict) -> list:
    """v1 -> internal conversion: podCIDR alone becomes podCIDRs[0]."""
    cidrs = spec.get("podCIDRs") or []
    return cidrs if cidrs else ([spec["podCIDR"]] if spec.get("podCIDR") else [])


def _validate_node(obj: dict, old: dict | None) -> list[str]:
    """ValidateNode / ValidateNodeUpdate: taints, podCIDRs (valid, one per family, no
    duplicates, not changed once set)."""
    spec = obj.get("spec") or {}
    causes = validate_node_taints(spec.get("taints"), "metadata.taints")
    cidrs = _pod_cidrs(spec)
    path = "spec.podCIDRs"
    for i, c in enumerate(cidrs):
        causes += v.cidr(c, f"{path}[{i}]")
    if len(cidrs) > 1 and not any(e.startswith(path) for e in causes):
        families = [ipaddress.ip_network(c, strict=False).version for c in cidrs]
        if len(cidrs) > 2 or len(set(families)) != 2:
            causes.append(f"{path}: Invalid value: []string{{"
                          + ", ".join(v.go_quote(c) for c in cidrs)
                          + "}: may specify no more than one CIDR for each IP family")
        seen: set[str] = set()
        for i, c in enumerate(cidrs):
            if c in seen:
                causes.append(v.duplicate(f"{path}[{i}]", c))
            seen.add(c)
    if old is not None:
        before = _pod_cidrs(old.get("spec") or {})
        if before and before != cidrs:
            causes.append(v.forbidden(path, 'node updates may not change podCIDR except from "" '
                                            "to valid"))
    return causes


# ---- Events ------------------------------------------------------------------------------------
def _validate_event(obj: dict, old: dict | None) -> list[str]:
    """legacyValidateEvent's namespace rules: involvedObject.namespace must match the
    Event's (an Event about a cluster-scoped object lives in "default" or kube-system)."""
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    inv = (obj.get("involvedObject") or {}).get("namespace") or ""
    bad = v.invalid("involvedObject.namespace", inv, "does not match event.namespace")
    causes: list[str] = []
    if not obj.get("eventTime"):
        if (not inv and ns not in ("", "default")) or (inv and ns != inv):
            causes.append(bad)
    elif not inv and ns not in ("default", "kube-system"):
        causes.append(bad)
    causes += [v.invalid("namespace", ns, m) for m in v.is_dns1123_subdomain(ns)]
    return causes


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Pod", defaulter=_default_pod, validator=_validate_pod)
    reg.add("Namespace", defaulter=_default_namespace, validator=_validate_namespace,
            name=v.name_is_dns_label)
    reg.add("Node", validator=_validate_node)
    reg.add("Event", validator=_validate_event, name=v.name_is_path_segment)
