"""The ReplicaSet controller: keeps `spec.replicas` pods alive, as kube-controller-manager does.

It claims pods by selector (adopts matching orphans, releases owned pods that stopped
matching) through controller ownerReferences, creates missing pods from the template
(`<rs>-<5 chars>`), deletes surplus ones in upstream's order (unscheduled, pending, not ready,
then the most recently ready / newest), and reports replicas / ready / available
(minReadySeconds) in status. Terminating and finished pods never count.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable

from netsim.api import errors, events
from netsim.api.client import Client
from netsim.api.selectors import from_label_selector
from netsim.api.timeutil import format_rfc3339
from netsim.api.timeutil import rfc3339_seconds as parse_time
from netsim.controllers.base import BatchPeriod, Controller, split_key
from netsim.controllers.fields import obj_at
from netsim.machinery import InformerFactory, clone, status_only_change

COMPONENT = "replicaset-controller"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
# At most this many pods created or deleted per sync (upstream's BurstReplicas): the status
# is written after each sync, so `get rs` counts a 5,000-replica scale-up in steps of 500
# instead of showing CURRENT 0 until the last pod exists; the pods' events queue the next.
BURST_REPLICAS = 500
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def controller_ref(obj: dict) -> dict | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    for r in refs if isinstance(refs, list) else []:
        if isinstance(r, dict) and r.get("controller") and isinstance(r.get("name"), str):
            return r
    return None


def selects(selector, labels: dict) -> bool:
    """from_label_selector(selector)(labels), where a selector that cannot be read matches
    nothing: one object written around admission must not stop the events of the others."""
    try:
        return from_label_selector(selector)(labels)
    except Exception:  # noqa: BLE001 - its own reconcile reports it
        return False


def claim(client: Client, owner: dict, plural: str, objs: list[dict]) -> list[dict]:
    """Upstream's ControllerRefManager.Claim*: of `objs` (the namespace's, from a cache),
    the ones `owner` controls after adopting matching orphans and releasing owned objects
    its selector no longer matches. Adopted ones come back as the API returned them."""
    ns = owner["metadata"].get("namespace") or "default"
    match = from_label_selector((owner.get("spec") or {}).get("selector"))
    uid = owner["metadata"]["uid"]
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    out = []
    for obj in objs:
        md = obj["metadata"]
        refs = md.get("ownerReferences") or []
        # The usual case first, without the general checks below (every pod the owner
        # has, on every sync): one readable controller reference to this owner.
        if type(refs) is list and len(refs) == 1 and type(refs[0]) is dict:
            r = refs[0]
            if r.get("controller") and r.get("uid") == uid and isinstance(r.get("name"), str):
                labels = md.get("labels")
                if deleting or match(labels if isinstance(labels, dict) else {}):
                    out.append(obj)
                    continue
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            continue  # unreadable (written around admission): never adopt or release on a guess
        ref = controller_ref(obj)
        labels = obj_at(obj, "metadata", "labels")  # none, if no map (around admission)
        name = obj["metadata"]["name"]
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if match(labels) or deleting:
                out.append(obj)
                continue
            # Owned but no longer selected: release it.
            refs = [r for r in refs if r.get("uid") != uid]
            try:
                client.patch(plural, name, ns, {"metadata": {"ownerReferences": refs or None}})
            except errors.NotFound:
                pass
            continue
        if deleting or not match(labels) or obj["metadata"].get("deletionTimestamp"):
            continue
        refs = refs + [owner_ref(owner)]
        try:
            obj = client.patch(plural, name, ns, {"metadata": {"ownerReferences": refs}})
        except errors.NotFound:
            continue
        out.append(obj)
    return out


def owner_ref(owner: dict) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", "apps/v1"), "kind": owner["kind"],
            "name": md["name"], "uid": md["uid"], "controller": True,
            "blockOwnerDeletion": True}


def is_active(pod: dict) -> bool:
    """controller.IsPodActive: not terminating, not finished."""
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def ready_condition(pod: dict) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: dict) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def ready_since(pod: dict) -> float | None:
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime"))


def is_available(pod: dict, min_ready_seconds: int, now: float) -> bool:
    """podutil.IsPodAvailable: Ready for at least minReadySeconds."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def _max_restarts(pod: dict) -> int:
    return max((int(cs.get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or []), default=0)


def _cost(pod: dict) -> int:
    try:
        return int(((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def deletion_order(pods: list[dict], related: list[dict] | None = None) -> list[dict]:
    """controller.ActivePodsWithRanks: the pods to delete first come first."""
    per_node = Counter((p.get("spec") or {}).get("nodeName") for p in (related or pods)
                       if (p.get("spec") or {}).get("nodeName") and is_active(p))

    def newer_first(ts: float | None) -> tuple:
        return (0, 0.0) if ts is None else (1, -ts)

    def key(p: dict) -> tuple:
        node = (p.get("spec") or {}).get("nodeName") or ""
        ready = is_ready(p)
        return (
            bool(node),
            _PHASE_ORDER.get((p.get("status") or {}).get("phase") or "Pending", 0),
            ready,
            _cost(p),
            -per_node.get(node, 0) if node else 0,
            newer_first(ready_since(p)) if ready else (0, 0.0),
            -_max_restarts(p),
            newer_first(parse_time((p.get("metadata") or {}).get("creationTimestamp"))),
        )
    return sorted(pods, key=key)


def pod_from_template(rs: dict) -> dict:
    """The pod a ReplicaSet creates: template labels/annotations, spec, controller ref."""
    md = rs["metadata"]
    tmpl = (rs.get("spec") or {}).get("template") or {}
    tmd = tmpl.get("metadata") or {}
    meta = {"generateName": md["name"] + "-", "namespace": md.get("namespace", "default"),
            "ownerReferences": [owner_ref(rs)]}
    if tmd.get("labels"):
        meta["labels"] = dict(tmd["labels"])
    if tmd.get("annotations"):
        meta["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        meta["finalizers"] = list(tmd["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(tmpl.get("spec") or {})}


def rs_status(rs: dict, pods: list[dict], now: float, failure: str | None = None) -> dict:
    """calculateStatus: counts over the RS's active pods (zero counts omitted, as upstream)."""
    spec = rs.get("spec") or {}
    tmpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    tmpl_items = tmpl_labels.items()
    mrs = int(spec.get("minReadySeconds") or 0)
    labeled = ready = avail = 0
    for p in pods:  # one pass, each pod's Ready condition found once (every pod, every sync)
        if tmpl_items <= (((p.get("metadata") or {}).get("labels") or {}).items()):
            labeled += 1
        c = None  # ready_condition(p), inline: every pod of the RS, every sync
        for cond in (p.get("status") or {}).get("conditions") or ():
            if cond.get("type") == "Ready":
                c = cond
                break
        if c is not None and c.get("status") == "True":
            ready += 1
            if not mrs:
                avail += 1
            else:
                since = parse_time(c.get("lastTransitionTime"))
                avail += since is not None and since + mrs <= now
    status: dict = {"replicas": len(pods)}
    if labeled:
        status["fullyLabeledReplicas"] = labeled
    if ready:
        status["readyReplicas"] = ready
    if avail:
        status["availableReplicas"] = avail
    status["observedGeneration"] = (rs.get("metadata") or {}).get("generation", 1)
    old_conds = [c for c in (rs.get("status") or {}).get("conditions") or []
                 if c.get("type") != "ReplicaFailure"]
    if failure:
        prev = [c for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"]
        ts = prev[0].get("lastTransitionTime") if prev else format_rfc3339(now)
        old_conds.append({"type": "ReplicaFailure", "status": "True",
                          "lastTransitionTime": ts, "reason": "FailedCreate",
                          "message": failure})
    if old_conds:
        status["conditions"] = old_conds
    return status


OWNER_INDEX = "replicaset-controller/owner"


def _owner_or_orphan(pod: dict) -> list[str]:
    """Pods by their controller's uid; those without one under ORPHANS + namespace: what a
    ReplicaSet may claim, without reading the namespace's other pods on every sync."""
    ref = controller_ref(pod)
    if ref is not None:
        return [str(ref.get("uid"))]
    return [ORPHANS + ((pod.get("metadata") or {}).get("namespace") or "default")]


ORPHANS = "\0orphans/"


class OwnerController(Controller):
    """A controller of `kind` (its resource is watches[0]) that owns objects through
    controller ownerReferences and claims orphans by its label selector: ReplicaSets own
    pods, Deployments own ReplicaSets. The keys an event queues are upstream's
    resolveControllerRef / getPodReplicaSets (getReplicaSetsForDeployment) for both."""

    kind = ""
    resync_seconds = 30.0
    workers = 2

    def __init__(self, client: Client, clock: Callable[[], float] = time.time,
                 informers: InformerFactory | None = None):
        super().__init__(client, informers)
        self.clock = clock

    def keys_for(self, resource: str, obj: dict) -> list[str]:
        md = obj.get("metadata") or {}
        if resource == self.watches[0]:
            return [f"{md.get('namespace') or 'default'}/{md['name']}"]
        return self.owner_keys(obj)

    def owner_keys(self, obj: dict) -> list[str]:
        """The owners to sync for an owned object: its controller if that is of our kind,
        else (an orphan not being deleted) every owner whose selector matches it."""
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        ref = controller_ref(obj)
        if ref is not None:
            return [f"{ns}/{ref['name']}"] if ref.get("kind") == self.kind else []
        if md.get("deletionTimestamp"):
            return []
        try:
            owners = self.cache(self.watches[0]).list(ns)
        except errors.ApiError:
            return []
        labels = md.get("labels") or {}
        return [f"{ns}/{o['metadata']['name']}" for o in owners
                if selects((o.get("spec") or {}).get("selector"), labels)]

    def delete_pods(self, owner: dict, pods: list[dict]) -> None:
        """Deletes each pod and records SuccessfulDelete on its owner (a pod already gone:
        neither)."""
        for pod in pods:
            pname = pod["metadata"]["name"]
            try:
                self.client.delete("pods", pname, pod["metadata"].get("namespace"))
            except errors.NotFound:
                continue
            events.record(self.client, owner, "Normal", "SuccessfulDelete",
                          f"Deleted pod: {pname}", self.name)


def _replicaset_view(pod: dict) -> tuple | object:
    """What a ReplicaSet's sync reads of a pod to claim and count it (labels, owners,
    deletion, phase, its Ready condition); what it reads only to pick pods to delete (node,
    restarts, cost) is read from the cache when it deletes. Unreadable: unequal to all."""
    try:
        md, st = pod.get("metadata") or {}, pod.get("status") or {}
        return (md.get("labels"), md.get("ownerReferences"), md.get("deletionTimestamp"),
                st.get("phase"), ready_condition(pod))
    except (AttributeError, TypeError):
        return object()


class ReplicaSetController(OwnerController):
    """Reconciles one ReplicaSet per key `namespace/name`."""

    name = COMPONENT
    kind = "ReplicaSet"
    watches = ("replicasets", "pods")
    indexers = {"pods": {OWNER_INDEX: _owner_or_orphan}}
    # A sync reads every pod of the ReplicaSet (claim, status): pod events queue it at most
    # once per BatchPeriod (10x its last sync's CPU, at most 2 s: ~10 ms for a few pods,
    # ~0.5 s for 5,000, a tenth of a core whatever the size),
    # and a pod update that changes nothing the sync reads (a container's state, the
    # binding, the pod's IP) queues nothing. Upstream queues the ReplicaSet on every pod
    # update; its Go sync of 1,000 pods is cheap enough, a Python one is ~20 ms.
    batch_seconds = 2.0
    batch_cost_factor = 10.0

    def __init__(self, client: Client, clock: Callable[[], float] = time.time,
                 informers: InformerFactory | None = None):
        super().__init__(client, clock, informers)
        self.batch = BatchPeriod(self.batch_seconds, self.batch_cost_factor)

    def _enqueue(self, resource: str, *objs: dict) -> None:
        if resource != "pods":
            if len(objs) == 2 and status_only_change(*objs):
                # a status write (this controller's own, coming back): batched as pod events
                # are, or each sync's write queued the next one at once
                self.batch.queue(self.queue, {k for o in objs
                                              for k in self.keys_for(resource, o)})
                return
            return super()._enqueue(resource, *objs)
        if len(objs) == 2 and _replicaset_view(objs[0]) == _replicaset_view(objs[1]):
            return
        self.batch.queue(self.queue, {k for o in objs for k in self.keys_for(resource, o)})

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        with self.batch.syncing(key, self._running):
            return self._reconcile(key)

    def _reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        rs = self.lister("replicasets").get_by_name(name, ns)
        if rs is None:
            self.batch.forget(key)
            return None
        rs = clone(rs)  # cached objects are shared: this one gets a new status
        pods = self.claim_pods(rs)
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")  # is_active
                  and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        failure = None
        more = False  # more pods to create or delete than one sync's burst
        if not rs["metadata"].get("deletionTimestamp"):
            want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
            more = abs(len(active) - want) > BURST_REPLICAS
            failure = self.manage_replicas(rs, active, pods)
            if len(active) != want:  # pods created or deleted: count them in the status
                # The cache read waits for the pods just created or deleted.
                pods = self._owned(rs, self._candidates(rs))
                active = [p for p in pods if is_active(p)]
        now = self.clock()
        status = rs_status(rs, active, now, failure)
        if status != (rs.get("status") or {}):
            rs["status"] = status
            try:
                self.client.update_status(rs)
            except errors.NotFound:
                return None
        after = self._requeue_after(rs, active, now, failure)
        return 0.0 if more and not failure else after

    def _owned(self, rs: dict, pods: list[dict]) -> list[dict]:
        uid = rs["metadata"]["uid"]
        return [p for p in pods if (controller_ref(p) or {}).get("uid") == uid]

    def claim_pods(self, rs: dict) -> list[dict]:
        """PodControllerRefManager.ClaimPods: adopt matching orphans, release strays."""
        return claim(self.client, rs, "pods", self._candidates(rs))

    def _candidates(self, rs: dict) -> list[dict]:
        """The namespace's pods claim() may keep or adopt (the ReplicaSet's own and the
        orphans), in the API's order: the pods other controllers own are never read."""
        ns = rs["metadata"].get("namespace") or "default"
        lister = self.lister("pods")
        pods = [p for p in lister.by_index(OWNER_INDEX, str(rs["metadata"]["uid"]))
                if (p["metadata"].get("namespace") or "default") == ns]
        orphans = lister.by_index(OWNER_INDEX, ORPHANS + ns)
        if orphans:  # else already in the API's order (by name, in one namespace)
            pods += orphans
            pods.sort(key=lambda p: p["metadata"].get("name") or "")
        return pods

    def manage_replicas(self, rs: dict, active: list[dict], related: list[dict]) -> str | None:
        """Create or delete pods towards spec.replicas; returns a create failure message."""
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = max(-BURST_REPLICAS, min(BURST_REPLICAS, len(active) - want))
        if diff < 0:
            for _ in range(-diff):
                try:
                    pod = self.client.create(pod_from_template(rs))
                except errors.ApiError as e:
                    msg = f"Error creating: {e.message}"
                    events.record(self.client, rs, "Warning", "FailedCreate", msg, COMPONENT)
                    return msg
                events.record(self.client, rs, "Normal", "SuccessfulCreate",
                              f"Created pod: {pod['metadata']['name']}", COMPONENT)
        elif diff > 0:
            self.delete_pods(rs, deletion_order(active, related)[:diff])
        return None

    def _requeue_after(self, rs: dict, active: list[dict], now: float,
                       failure: str | None) -> float | None:
        if failure:
            return 5.0
        mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if not mrs:
            return None
        waits = [since + mrs - now for p in active if (since := ready_since(p)) is not None
                 and since + mrs > now]
        return max(0.1, min(waits)) if waits else None
