"""The disruption controller: each PodDisruptionBudget's status from its pods, as upstream's
pkg/controller/disruption.

expectedPods and desiredHealthy: with an integer minAvailable, the number of selected pods
and minAvailable itself; with maxUnavailable or a percent minAvailable, the sum of the
scale of the pods' controllers (a ReplicaSet's Deployment, a ReplicaSet, a StatefulSet,
each counted once), desiredHealthy = expected - maxUnavailable, or the percent of expected
rounded up. currentHealthy counts the selected pods that are Ready, not terminating and not
in status.disruptedPods (evictions the API allowed whose delete is not seen yet; an entry
leaves when its pod is gone or after 2 minutes). disruptionsAllowed = currentHealthy -
desiredHealthy, at least 0 and 0 while no pods are expected; the DisruptionAllowed condition
says SufficientPods or InsufficientPods. A pod whose controller has no scale (a DaemonSet, a
Job) makes the budget fail safe: 0 disruptions allowed, reason SyncFailed.
"""

from __future__ import annotations

import logging
import math
import re
import time

from netsim.api import errors, events
from netsim.api.eviction import DELETION_TIMEOUT, _allowed_condition, pod_ready
from netsim.api.selectors import from_label_selector
from netsim.api.timeutil import now_rfc3339, rfc3339_seconds
from netsim.controllers.base import Controller, split_key
from netsim.controllers.fields import dicts_at, obj_at

log = logging.getLogger("netsim.controllers")
COMPONENT = "controllermanager"


class CannotCount(Exception):
    pass


def _controller_ref(obj: dict) -> dict | None:
    return next((r for r in dicts_at(obj, "metadata", "ownerReferences")
                 if r.get("controller")), None)


def selects(pdb: dict, labels: dict) -> bool:
    """The PDB's selector (policy/v1: an empty one selects every pod of the namespace,
    none selects nothing)."""
    return from_label_selector(obj_at(pdb, "spec").get("selector")
                               if "selector" in obj_at(pdb, "spec") else None)(labels)


def scaled(value, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true)."""
    if isinstance(value, str):
        m = re.fullmatch(r"([0-9]+)%", value)
        if not m:
            raise CannotCount(f'invalid value for IntOrString: invalid value "{value}"')
        return math.ceil(int(m.group(1)) * total / 100)
    return int(value)


def compute_status(pdb: dict, pods: list[dict], scale_of, now: float) -> tuple[dict, list[str]]:
    """The PDB's new status from its pods; `scale_of(pod)` gives (controller uid, replicas)
    of a pod's controller or raises CannotCount. Returns (status, the names of unmanaged
    pods). Raises CannotCount when the expected count cannot be computed."""
    spec = obj_at(pdb, "spec")
    old = obj_at(pdb, "status")
    gen = obj_at(pdb, "metadata").get("generation", 1)

    def expected_scale() -> tuple[int, list[str]]:
        seen: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            if _controller_ref(pod) is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            uid, replicas = scale_of(pod)
            seen[uid] = replicas
        return sum(seen.values()), unmanaged

    unmanaged: list[str] = []
    expected = desired = 0
    if spec.get("maxUnavailable") is not None:
        expected, unmanaged = expected_scale()
        desired = max(0, expected - scaled(spec["maxUnavailable"], expected))
    elif spec.get("minAvailable") is not None:
        lo = spec["minAvailable"]
        if isinstance(lo, int):
            desired, expected = lo, len(pods)
        else:
            expected, unmanaged = expected_scale()
            desired = scaled(lo, expected)
    # buildDisruptedPodMap: entries of pods still there, not terminating, not expired
    by_name = {p["metadata"]["name"]: p for p in pods}
    disrupted = {}
    for name, stamp in (old.get("disruptedPods") or {}).items():
        pod = by_name.get(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            continue
        if (rfc3339_seconds(stamp) or 0) + DELETION_TIMEOUT <= now:
            continue
        disrupted[name] = stamp
    healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                  and p["metadata"]["name"] not in disrupted and pod_ready(p))
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    status = {"observedGeneration": gen, "disruptionsAllowed": allowed,
              "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected}
    if disrupted:
        status["disruptedPods"] = disrupted
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    _allowed_condition(status, gen)
    return status, unmanaged


def _same(a: dict, b: dict) -> bool:
    def strip(s: dict) -> dict:
        s = dict(s)
        s["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                           for c in s.get("conditions") or []]
        return s
    return strip(a) == strip(b)


class DisruptionController(Controller):
    name = "disruption-controller"
    watches = ("poddisruptionbudgets", "pods")
    reads = ("replicasets", "deployments", "statefulsets")

    def keys_for(self, resource: str, obj: dict):
        md = obj.get("metadata", {})
        ns = md.get("namespace")
        if resource == "poddisruptionbudgets":
            return [f"{ns}/{md['name']}"]
        labels = md.get("labels") or {}
        return [f"{ns}/{p['metadata']['name']}"
                for p in self.cache("poddisruptionbudgets").list(ns) if selects(p, labels)]

    def _scale_of(self, pod: dict) -> tuple[str, int]:
        ref = _controller_ref(pod)
        ns = pod["metadata"]["namespace"]
        kind, name = ref.get("kind"), ref.get("name")
        missing = CannotCount(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        if kind == "ReplicaSet":
            rs = self.lister("replicasets").get_by_name(name, ns)
            if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
                raise missing
            dref = _controller_ref(rs)
            if dref is not None and dref.get("kind") == "Deployment":
                d = self.lister("deployments").get_by_name(dref.get("name"), ns)
                if d is not None and d["metadata"].get("uid") == dref.get("uid"):
                    return d["metadata"]["uid"], int(obj_at(d, "spec").get("replicas", 1))
            return rs["metadata"]["uid"], int(obj_at(rs, "spec").get("replicas", 1))
        if kind == "StatefulSet":
            sts = self.lister("statefulsets").get_by_name(name, ns)
            if sts is None or sts["metadata"].get("uid") != ref.get("uid"):
                raise missing
            return sts["metadata"]["uid"], int(obj_at(sts, "spec").get("replicas", 1))
        raise missing

    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        pdb = self.lister("poddisruptionbudgets").get_by_name(name, ns)
        if pdb is None:
            return None
        now = time.time()
        pods = [p for p in self.lister("pods").list(ns)
                if selects(pdb, p["metadata"].get("labels") or {})]
        old = obj_at(pdb, "status")
        note = None
        try:
            status, unmanaged = compute_status(pdb, pods, self._scale_of, now)
            if not pods:
                note = ("Normal", "NoPods", "No matching pods found")
            elif unmanaged:
                note = ("Warning", "UnmanagedPods",
                        "Pods selected by this PodDisruptionBudget (selector: "
                        f"{_go_selector(obj_at(pdb, 'spec').get('selector'))}) were found to be "
                        "unmanaged. As a result, the status of the PDB cannot be calculated "
                        "correctly, which may result in undefined behavior. To account for "
                        "these pods please set \".spec.minAvailable\" field of the PDB to an "
                        "integer value.")
        except CannotCount as e:
            status = self._fail_safe(pdb, str(e))
            note = ("Warning", "CalculateExpectedPodCountFailed",
                    f"Failed to calculate the number of expected pods: {e}")
        if not _same(status, old):
            new = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": dict(pdb["metadata"]), "spec": pdb.get("spec"),
                   "status": status}
            try:
                self.client.update_status(new)
            except errors.NotFound:
                return None
            if note:
                events.record(self.client, pdb, *note, COMPONENT)
        # re-check when the oldest disrupted pod's entry expires
        stamps = [rfc3339_seconds(s) or now for s in (status.get("disruptedPods") or {}).values()]
        if stamps:
            return max(0.5, min(stamps) + DELETION_TIMEOUT - now)
        return None

    @staticmethod
    def _fail_safe(pdb: dict, why: str) -> dict:
        old = dict(obj_at(pdb, "status"))
        gen = obj_at(pdb, "metadata").get("generation", 1)
        status = {**old, "disruptionsAllowed": 0, "observedGeneration": gen}
        conds = [c for c in old.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
        prev = next((c for c in old.get("conditions") or []
                     if c.get("type") == "DisruptionAllowed"), {})
        stamp = prev.get("lastTransitionTime") if prev.get("status") == "False" else None
        status["conditions"] = conds + [{
            "type": "DisruptionAllowed", "status": "False", "reason": "SyncFailed",
            "message": why, "observedGeneration": gen,
            "lastTransitionTime": stamp or now_rfc3339()}]
        return status


def _go_selector(sel) -> str:
    """%v of a *metav1.LabelSelector (&LabelSelector{MatchLabels:map[string]string{...},...})."""
    if sel is None:
        return "nil"
    labels = " ".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels.rstrip(',')}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{}},}}")
