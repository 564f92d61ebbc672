"""The pod garbage collector, as kube-controller-manager's podgc controller
(pkg/controller/podgc/gc_controller.go) does it, every 20 s (gcCheckPeriod):

- orphaned pods (gcOrphaned): a pod bound to a node that no longer exists. The node is
  quarantined for 40 s (quarantineTime: it may only be late in the informer), then looked
  up in the API; still NotFound -> each of its pods is marked Failed with the condition
  DisruptionTarget / DeletionByPodGC / "PodGC: node no longer exists" and force-deleted
  (grace period 0: no kubelet is left to finish a graceful delete);
- terminating pods on a node that is not Ready and has the `node.kubernetes.io/
  out-of-service` taint (gcTerminating: non-graceful node shutdown), and terminating pods
  never scheduled (gcUnscheduledTerminating): marked Failed and force-deleted;
- terminated pods above --terminated-pod-gc-threshold (12500), oldest first.

NETSIM_PODGC_PERIOD and NETSIM_PODGC_QUARANTINE change the two times (seconds).
`netsim node remove` calls `mark_failed_and_delete` itself for the pods left on a node it
deleted and whose agent is not running: it deleted the Node, so the quarantine (a guard
against a slow informer) has nothing to wait for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.timeutil import now_rfc3339
from netsim.controllers.fields import dicts_at
from netsim.controllers.periodic import PeriodicController
from netsim.machinery import InformerFactory, clone

log = logging.getLogger("netsim.controllers")

GC_CHECK_PERIOD = float(os.environ.get("NETSIM_PODGC_PERIOD", "20"))
QUARANTINE = float(os.environ.get("NETSIM_PODGC_QUARANTINE", "40"))
TERMINATED_POD_GC_THRESHOLD = 12500
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
ORPHANED = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists"}


def mark_failed_and_delete(client: Client, pod: dict, condition: dict | None = None) -> None:
    """upstream markFailedAndDeletePodWithCondition: a pod not yet Succeeded/Failed gets
    phase Failed (and `condition`), then it is deleted with grace period 0."""
    md = pod["metadata"]
    phase = (pod.get("status") or {}).get("phase")
    if phase not in ("Succeeded", "Failed"):
        pod = clone(pod)
        status = pod.setdefault("status", {})
        status["phase"] = "Failed"
        if condition is not None:
            conds = [c for c in dicts_at(pod, "status", "conditions")
                     if c.get("type") != condition["type"]]
            status["conditions"] = [*conds, {**condition, "lastTransitionTime": now_rfc3339()}]
        with contextlib.suppress(errors.Conflict):  # changed meanwhile: deleted anyway
            client.update_status(pod)
    client.delete("pods", md["name"], md["namespace"], grace_period_seconds=0)


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in dicts_at(node, "status", "conditions"))


class PodGCController(PeriodicController):
    name = "pod-garbage-collector"
    watches = ("pods", "nodes")

    def __init__(self, client: Client, period: float = GC_CHECK_PERIOD,
                 informers: InformerFactory | None = None, quarantine: float = QUARANTINE,
                 threshold: int = TERMINATED_POD_GC_THRESHOLD):
        super().__init__(client, period, informers)
        self.quarantine = quarantine
        self.threshold = threshold
        self._missing: dict[str, float] = {}  # node name -> when its quarantine ends

    def sweep(self, now: float | None = None) -> int:
        """One gc pass; returns how many pods it deleted."""
        now = time.monotonic() if now is None else now
        pods = self.lister("pods").list()
        nodes = {n["metadata"]["name"]: n for n in self.lister("nodes").list()}
        done = self._terminated(pods) if self.threshold > 0 else 0
        for pod in pods:
            md, node = pod["metadata"], (pod.get("spec") or {}).get("nodeName") or ""
            n = nodes.get(node)
            if md.get("deletionTimestamp") and n is not None and not _ready(n) and any(
                    t.get("key") == OUT_OF_SERVICE for t in dicts_at(n, "spec", "taints")):
                done += self._delete(pod, None, "terminating on an out-of-service node")
        done += self._orphaned(pods, set(nodes), now)
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and not (pod.get("spec") or {}).get(
                    "nodeName"):
                done += self._delete(pod, None, "unscheduled and terminating")
        return done

    def _terminated(self, pods: list[dict]) -> int:
        ended = [p for p in pods if (p.get("status") or {}).get("phase")
                 not in ("Pending", "Running", "Unknown", None)]
        extra = len(ended) - self.threshold
        if extra <= 0:
            return 0
        ended.sort(key=lambda p: ((p.get("status") or {}).get("reason") != "Evicted",
                                  p["metadata"].get("creationTimestamp") or "",
                                  p["metadata"]["name"]))
        return sum(self._delete(p, None, "terminated, above the threshold")
                   for p in ended[:extra])

    def _orphaned(self, pods: list[dict], existing: set[str], now: float) -> int:
        # A quarantined name whose node exists again ends its quarantine: should a node of
        # that name go later, its pods get a whole quarantine of their own (upstream's
        # delaying queue keeps the name until it is due, so a node removed, added again and
        # removed soon after could have its pods taken at once, before `node remove` does)
        for node in existing & self._missing.keys():
            del self._missing[node]
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and node not in existing:
                self._missing.setdefault(node, now + self.quarantine)
        deleted = set()
        for node, due in list(self._missing.items()):
            if due > now:
                continue
            del self._missing[node]
            if node in existing:
                continue
            try:
                self.client.get("nodes", node)
            except errors.NotFound:
                deleted.add(node)
            except errors.ApiError as e:  # looked at again in a later pass if still needed
                log.warning("%s: getting node %s: %s", self.name, node, e)
        return sum(self._delete(p, ORPHANED, f"orphaned (node {p['spec']['nodeName']} is gone)")
                   for p in pods if (p.get("spec") or {}).get("nodeName") in deleted)

    def _delete(self, pod: dict, condition: dict | None, why: str) -> int:
        md = pod["metadata"]
        try:
            mark_failed_and_delete(self.client, pod, condition)
        except errors.NotFound:
            return 0
        except errors.ApiError as e:
            log.warning("%s: force-deleting pod %s/%s: %s", self.name, md["namespace"],
                        md["name"], e)
            return 0
        log.info("%s: force-deleted pod %s/%s: %s", self.name, md["namespace"], md["name"], why)
        return 1
