"""Node lifecycle, as kube-controller-manager's node-lifecycle-controller and
taint-eviction-controller do it.

- Node monitoring: a node whose kubelet stopped posting status for the grace period gets
  its conditions Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status."), a
  `NodeNotReady` event, and its pods' Ready condition False (MarkPodsNotReady: Services
  stop sending them traffic).
- Taints from conditions (TaintNodesByCondition, NoSchedule): Ready False ->
  node.kubernetes.io/not-ready, Ready Unknown -> node.kubernetes.io/unreachable, the pressure
  conditions, and spec.unschedulable -> node.kubernetes.io/unschedulable (so `cordon` shows
  the taint upstream's shows, and `uncordon` takes it away).
- NoExecute taints (doNoExecuteTaintingPass): not-ready for Ready False, unreachable for
  Unknown, swapped when the condition changes, both gone when the node is Ready again.
- Taint-based eviction: a pod on a node with NoExecute taints that it does not tolerate is
  deleted at once; one that tolerates them all is deleted after the smallest
  tolerationSeconds of the tolerations that match (never when one of them has none),
  counted from when the taint (or the pod) appeared: a `TaintManagerEviction` event
  "Marking for deletion Pod ns/name", a DisruptionTarget condition, then a graceful delete
  (its ReplicaSet makes a new one elsewhere at once; the old one stays Terminating until
  its node's kubelet is back, as upstream's).

The apiserver's DefaultTolerationSeconds admission (netsim.api.kinds.core) gives pods 300 s
for not-ready and unreachable; NETSIM_DEFAULT_TOLERATION_SECONDS changes that default there
(only for pods created afterwards). NETSIM_NODE_MONITOR_GRACE is node-monitor-grace-period
(40 s here; the kubelet posts its status every 10 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from netsim.api import errors, events
from netsim.api.timeutil import now_rfc3339, rfc3339_seconds
from netsim.controllers.fields import dicts_at, obj_at
from netsim.controllers.periodic import PeriodicController
from netsim.controllers.scheduler import tolerates
from netsim.machinery import InformerFactory, clone, node_name_index

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
GRACE = float(os.environ.get("NETSIM_NODE_MONITOR_GRACE", "40"))

# nodeConditionToTaintKeyStatusMap: condition type -> {status: NoSchedule taint key}
CONDITION_TAINTS = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_NO_SCHEDULE_KEYS = {k for m in CONDITION_TAINTS.values() for k in m.values()} | {UNSCHEDULABLE}
_NO_EXECUTE_KEYS = {NOT_READY, UNREACHABLE}
COMPONENT = "taint-eviction-controller"

log = logging.getLogger("netsim.controllers")


def _ts(s: str | None) -> float:
    return rfc3339_seconds(s) or 0.0


def _ready_status(node: dict) -> str | None:
    return next((c.get("status") for c in dicts_at(node, "status", "conditions")
                 if c.get("type") == "Ready"), None)


def managed(t: dict) -> bool:
    """A taint this controller owns (it adds and removes only these)."""
    key, effect = t.get("key"), t.get("effect")
    return (effect == "NoSchedule" and key in _NO_SCHEDULE_KEYS) or \
        (effect == "NoExecute" and key in _NO_EXECUTE_KEYS)


def desired_taints(node: dict, stamp: str) -> list[dict]:
    """The node's taints after the tainting passes: the user's as they are, the managed
    ones the node's conditions and spec.unschedulable call for (an existing one keeps its
    timeAdded, a new one gets `stamp`)."""
    have = dicts_at(node, "spec", "taints")
    want: list[tuple[str, str]] = []
    for c in dicts_at(node, "status", "conditions"):
        key = CONDITION_TAINTS.get(c.get("type"), {}).get(c.get("status"))
        if key:
            want.append((key, "NoSchedule"))
    if obj_at(node, "spec").get("unschedulable"):
        want.append((UNSCHEDULABLE, "NoSchedule"))
    ready = _ready_status(node)
    if ready == "False":
        want.append((NOT_READY, "NoExecute"))
    elif ready == "Unknown":
        want.append((UNREACHABLE, "NoExecute"))
    out = [t for t in have if not managed(t)]
    for key, effect in want:
        old = next((t for t in have if t.get("key") == key and t.get("effect") == effect), None)
        out.append(old if old is not None else {"key": key, "effect": effect, "timeAdded": stamp})
    return out


def min_toleration_seconds(tolerations: list[dict], taints: list[dict]) -> float | None:
    """getMinTolerationTime over the tolerations matching `taints`: None when one of them
    tolerates forever, else the smallest tolerationSeconds (negative counts as 0)."""
    best: float | None = None
    for taint in taints:
        for t in tolerations:
            if not tolerates([t], taint):
                continue
            if t.get("tolerationSeconds") is None:
                continue
            try:
                s = max(0.0, float(t["tolerationSeconds"]))
            except (TypeError, ValueError):
                s = 0.0
            best = s if best is None else min(best, s)
    if best is None:
        return None
    return best


def eviction_due(pod: dict, taints: list[dict], now: float) -> float | None:
    """When the taint manager deletes `pod` from a node with these NoExecute taints:
    a time (now or later), or None (tolerated forever)."""
    tols = dicts_at(pod, "spec", "tolerations")
    if not taints:
        return None
    if any(not tolerates(tols, t) for t in taints):
        return now
    seconds = min_toleration_seconds(tols, taints)
    if seconds is None:
        return None
    start = max([_ts(t.get("timeAdded")) for t in taints]
                + [_ts(obj_at(pod, "metadata").get("creationTimestamp"))])
    return (start or now) + seconds


class NodeLifecycleController(PeriodicController):
    name = "node-lifecycle-controller"
    watches = ("nodes", "pods")
    indexers = {"pods": {"node": node_name_index}}

    def __init__(self, client, period: float = 1.0, informers: InformerFactory | None = None):
        super().__init__(client, period, informers)
        self._failed: dict[str, str] = {}  # node name -> the failure already logged

    def sweep(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for node in self.lister("nodes").list():
            name = node["metadata"]["name"]
            try:
                self._sweep_node(clone(node), now)  # cached objects are shared: copy
                self._failed.pop(name, None)
            except Exception as e:  # noqa: BLE001 - one node must not stop the others
                why = f"{type(e).__name__}: {e}"
                if self._failed.get(name) != why:  # once, not every period
                    self._failed[name] = why
                    log.warning("%s: node %s: %s", self.name, name, why)

    def _sweep_node(self, node: dict, now: float) -> None:
        ready = next((c for c in dicts_at(node, "status", "conditions")
                      if c.get("type") == "Ready"), None)
        if ready is not None:
            stale = now - _ts(ready.get("lastHeartbeatTime")) > GRACE
            if stale and ready.get("status") != "Unknown":
                node = self._mark_unknown(node)
            if _ready_status(node) == "Unknown":
                self._mark_pods_not_ready(node)
        node = self._taint(node)
        self._evict(node, now)

    def _mark_unknown(self, node: dict) -> dict:
        stamp = now_rfc3339()
        for c in dicts_at(node, "status", "conditions"):
            c.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                      "message": "Kubelet stopped posting node status.",
                      "lastTransitionTime": stamp})
        try:
            node = self.client.update_status(node)
        except errors.ApiError as e:  # a heartbeat came after all (Conflict): next sweep
            log.debug("%s: node %s: %s", self.name, node["metadata"]["name"], e)
            return node
        events.record(self.client, node, "Normal", "NodeNotReady",
                      f"Node {node['metadata']['name']} status is now: NodeNotReady",
                      "node-controller")
        return node

    def _mark_pods_not_ready(self, node: dict) -> None:
        """MarkPodsNotReady: each pod on the node with Ready True gets Ready False."""
        stamp = now_rfc3339()
        for pod in self.lister("pods").by_index("node", node["metadata"]["name"]):
            conds = dicts_at(pod, "status", "conditions")
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                continue
            pod = clone(pod)
            for c in dicts_at(pod, "status", "conditions"):
                if c.get("type") == "Ready":
                    c.update({"status": "False", "lastTransitionTime": stamp})
            with contextlib.suppress(errors.ApiError):
                self.client.update_status(pod)

    def _taint(self, node: dict) -> dict:
        have = dicts_at(node, "spec", "taints")
        want = desired_taints(node, now_rfc3339())
        if want == have:
            return node
        name = node["metadata"]["name"]
        try:
            return self.client.patch("nodes", name, None, {"spec": {"taints": want or None}})
        except errors.ApiError as e:
            log.debug("%s: node %s: taints: %s", self.name, name, e)
            return node

    def _evict(self, node: dict, now: float) -> None:
        taints = [t for t in dicts_at(node, "spec", "taints") if t.get("effect") == "NoExecute"]
        if not taints:
            return
        for pod in self.lister("pods").by_index("node", node["metadata"]["name"]):
            md = pod["metadata"]
            if md.get("deletionTimestamp"):  # marked already (our delete is in the cache)
                continue
            due = eviction_due(pod, taints, now)
            if due is None or due > now:
                continue
            events.record(self.client, pod, "Normal", "TaintManagerEviction",
                          f"Marking for deletion Pod {md['namespace']}/{md['name']}", COMPONENT)
            self._disruption_target(pod)
            with contextlib.suppress(errors.ApiError):
                self.client.delete("pods", md["name"], md["namespace"])

    def _disruption_target(self, pod: dict) -> None:
        """The DisruptionTarget condition upstream's taint manager adds before deleting."""
        pod = clone(pod)
        conds = [c for c in dicts_at(pod, "status", "conditions")
                 if c.get("type") != "DisruptionTarget"]
        conds.append({"type": "DisruptionTarget", "status": "True",
                      "reason": "DeletionByTaintManager",
                      "message": "Taint manager: deleting due to NoExecute taint",
                      "lastTransitionTime": now_rfc3339()})
        pod.setdefault("status", {})["conditions"] = conds
        with contextlib.suppress(errors.ApiError):
            self.client.update_status(pod)
