"""Node lifecycle: a node whose agent stops posting status turns NotReady, gets the
unreachable taints, and its pods are evicted after their tolerationSeconds (default 300 s).

Grace periods come from the environment so demos and tests can shorten them:
NETSIM_NODE_MONITOR_GRACE (upstream node-monitor-grace-period, 40-50 s) and
NETSIM_DEFAULT_TOLERATION_SECONDS (300 s).
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
from netsim.machinery import InformerFactory, clone, node_name_index

UNREACHABLE = "node.kubernetes.io/unreachable"
GRACE = float(os.environ.get("NETSIM_NODE_MONITOR_GRACE", "40"))
DEFAULT_TOLERATION = float(os.environ.get("NETSIM_DEFAULT_TOLERATION_SECONDS", "300"))

log = logging.getLogger("netsim.controllers")


def _ts(s: str | None) -> float:
    return rfc3339_seconds(s) or 0.0


class NodeLifecycleController(PeriodicController):
    name = "node-lifecycle-controller"
    watches = ("nodes", "pods")
    indexers = {"pods": {"node": node_name_index}}

    def __init__(self, client, period: float = 2.0, informers: InformerFactory | None = None):
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
        if ready is None:
            return
        stale = now - _ts(ready.get("lastHeartbeatTime")) > GRACE
        if stale and ready.get("status") != "Unknown":
            self._mark_unknown(node)
        elif not stale and ready.get("status") == "True":
            self._clear_taints(node)
        if ready.get("status") == "Unknown" or stale:
            self._evict(node, now)

    def _mark_unknown(self, node: dict) -> None:
        stamp = now_rfc3339()
        for c in dicts_at(node, "status", "conditions"):
            c.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                      "message": "Kubelet stopped posting node status.",
                      "lastTransitionTime": stamp})
        with contextlib.suppress(errors.ApiError):
            node = self.client.update_status(node)
            taints = [t for t in dicts_at(node, "spec", "taints") if t.get("key") != UNREACHABLE]
            taints += [{"key": UNREACHABLE, "effect": "NoSchedule"},
                       {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp}]
            node["spec"] = {**obj_at(node, "spec"), "taints": taints}
            self.client.update(node)
            events.record(self.client, node, "Normal", "NodeNotReady",
                          f"Node {node['metadata']['name']} status is now: NodeNotReady",
                          "node-controller")

    def _clear_taints(self, node: dict) -> None:
        taints = dicts_at(node, "spec", "taints")
        keep = [t for t in taints if t.get("key") != UNREACHABLE]
        if keep != taints:
            node["spec"] = {**obj_at(node, "spec"), "taints": keep}
            with contextlib.suppress(errors.ApiError):
                self.client.update(node)

    def _evict(self, node: dict, now: float) -> None:
        added = next((_ts(t.get("timeAdded")) for t in dicts_at(node, "spec", "taints")
                      if t.get("key") == UNREACHABLE and t.get("effect") == "NoExecute"), None)
        if not added:
            return
        for pod in self.lister("pods").by_index("node", node["metadata"]["name"]):
            if any(r.get("kind") == "DaemonSet" for r in dicts_at(pod, "metadata", "ownerReferences")):
                continue
            tol = next((t for t in dicts_at(pod, "spec", "tolerations")
                        if t.get("key") == UNREACHABLE and t.get("effect") == "NoExecute"), None)
            if tol is not None and "tolerationSeconds" not in tol:
                continue  # tolerates forever
            try:
                seconds = float(tol["tolerationSeconds"]) if tol else 0.0
            except (TypeError, ValueError):
                seconds = 0.0  # unreadable: as no toleration (admission would refuse it)
            if tol and tol["tolerationSeconds"] == 300:
                seconds = DEFAULT_TOLERATION
            if now - added >= seconds:
                events.record(self.client, pod, "Normal", "TaintManagerEviction",
                              f"Marking for deletion Pod {pod['metadata']['namespace']}/"
                              f"{pod['metadata']['name']}", "taint-eviction-controller")
                # The node's kubelet is gone: nothing would finish a graceful delete.
                with contextlib.suppress(errors.ApiError):
                    self.client.delete("pods", pod["metadata"]["name"],
                                       pod["metadata"]["namespace"], 0)
