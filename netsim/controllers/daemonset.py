"""The DaemonSet controller: one pod per eligible node, as kube-controller-manager's.

Per node, nodeShouldRunDaemonPod: the template's nodeName, nodeSelector and required node
affinity must match the node, and its taints must be tolerated (the pod gets upstream's
default tolerations: not-ready/unreachable NoExecute, disk/memory/pid-pressure and
unschedulable NoSchedule, network-unavailable for hostNetwork). A node whose untolerated
taints are NoSchedule only keeps a pod already there. Pods are created without nodeName,
bound by a required node affinity `matchFields metadata.name In [node]`, and placed by the
scheduler. Updates: RollingUpdate (maxUnavailable, or maxSurge: new pod first, old one
deleted once the new one is available) or OnDelete; the template history lives in
ControllerRevisions (netsim.controllers.history); pods carry `controller-revision-hash`
(the revision's hash) and `pod-template-generation`.
"""

from __future__ import annotations

import copy
import math
import re

from netsim.api import errors, events
from netsim.api.timeutil import rfc3339_seconds as parse_time
from netsim.controllers import history
from netsim.controllers.base import split_key, write_apps_status
from netsim.controllers.fields import dicts_at, obj_at
from netsim.controllers.replicaset import (
    OwnerController,
    claim,
    is_active,
    is_available,
    is_ready,
    owner_ref,
)
from netsim.controllers.scheduler import _match_affinity, tolerates
from netsim.machinery import clone

COMPONENT = "daemonset-controller"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                       "effect": "NoSchedule"}


def add_default_tolerations(spec: dict) -> None:
    """util.AddOrUpdateDaemonPodTolerations: add each one the pod does not already have."""
    tols = spec.setdefault("tolerations", []) or []
    spec["tolerations"] = tols
    want = list(DEFAULT_TOLERATIONS)
    if spec.get("hostNetwork"):
        want.append(NETWORK_UNAVAILABLE)
    for t in want:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))


def node_affinity_for(spec: dict, node: str) -> None:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become one matchFields
    term on the node's name (preferred terms stay)."""
    aff = spec.setdefault("affinity", {}) or {}
    spec["affinity"] = aff
    na = aff.setdefault("nodeAffinity", {}) or {}
    aff["nodeAffinity"] = na
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}


def target_node(pod: dict) -> str | None:
    """The node a daemon pod belongs to: its nodeName, else its matchFields affinity."""
    spec = obj_at(pod, "spec")
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = obj_at(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    for term in dicts_at(req, "nodeSelectorTerms"):
        for f in dicts_at(term, "matchFields"):
            if f.get("key") == "metadata.name" and f.get("operator") == "In" \
                    and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run a pod there, should keep one already there)."""
    spec = copy.deepcopy(obj_at(ds, "spec", "template", "spec"))
    name = node["metadata"]["name"]
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    add_default_tolerations(spec)
    if not _match_affinity({"spec": spec}, obj_at(node, "metadata", "labels"), name):
        return False, False
    tols = spec["tolerations"]
    bad = [t for t in dicts_at(node, "spec", "taints")
           if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tols, t)]
    if bad:
        return False, not any(t.get("effect") == "NoExecute" for t in bad)
    return True, True


def int_or_percent(value, total: int) -> int:
    """GetScaledValueFromIntOrPercent, rounding up (as the DaemonSet controller asks)."""
    if isinstance(value, str):
        m = re.fullmatch(r"([0-9]+)%", value)
        return math.ceil(int(m.group(1)) * total / 100) if m else 0
    return int(value or 0)


def surge_unavailable(ds: dict, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for `desired` nodes; both 0 means unavailable 1."""
    ru = obj_at(ds, "spec", "updateStrategy", "rollingUpdate")
    surge = int_or_percent(ru.get("maxSurge", 0), desired)
    unavailable = int_or_percent(ru.get("maxUnavailable", 1), desired)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: dict) -> bool:
    """util.AllowsSurge: a RollingUpdate whose maxSurge is not 0 (or 0%)."""
    st = obj_at(ds, "spec", "updateStrategy")
    if st.get("type", "RollingUpdate") != "RollingUpdate":
        return False
    return int_or_percent(obj_at(st, "rollingUpdate").get("maxSurge", 0), 100) != 0


def template_generation(ds: dict) -> str | None:
    return obj_at(ds, "metadata", "annotations").get(TEMPLATE_GENERATION)


def is_updated(pod: dict, hash_: str, generation: str | None) -> bool:
    """util.IsPodUpdated: the revision hash matches, or the template generation does."""
    labels = obj_at(pod, "metadata", "labels")
    return (bool(hash_) and labels.get(history.POD_HASH_LABEL) == hash_) or \
        (generation is not None and labels.get(GENERATION_LABEL) == generation)


def _age_key(pod: dict) -> tuple:
    """podByCreationTimestampAndPhase: running before pending, then the oldest first."""
    md = pod.get("metadata") or {}
    running = (pod.get("status") or {}).get("phase") == "Running"
    return (not running, parse_time(md.get("creationTimestamp")) or 0.0, md.get("name", ""))


def _node_view(node: dict) -> tuple:
    """What of a Node the controller reads: labels, taints, and its conditions' statuses."""
    conds = tuple(sorted((c.get("type", ""), c.get("status", ""))
                         for c in dicts_at(node, "status", "conditions")))
    return (obj_at(node, "metadata", "labels"), dicts_at(node, "spec", "taints"),
            obj_at(node, "spec").get("unschedulable"), conds)


class DaemonSetController(OwnerController):
    """Reconciles one DaemonSet per key `namespace/name`."""

    name = COMPONENT
    kind = "DaemonSet"
    watches = ("daemonsets", "pods", "nodes", "controllerrevisions")

    def _enqueue(self, resource: str, *objs: dict) -> None:
        """shouldIgnoreNodeUpdate: a node heartbeat changes nothing a DaemonSet reads."""
        if resource == "nodes" and len(objs) == 2 and _node_view(objs[0]) == _node_view(objs[1]):
            return
        super()._enqueue(resource, *objs)

    def keys_for(self, resource: str, obj: dict) -> list[str]:
        if resource == "nodes":  # a node came, went or changed: every DaemonSet looks again
            try:
                return [f"{d['metadata'].get('namespace') or 'default'}/{d['metadata']['name']}"
                        for d in self.cache("daemonsets").list()]
            except errors.ApiError:
                return []
        return super().keys_for(resource, obj)

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        ds = self.lister("daemonsets").get_by_name(name, ns)
        if ds is None:
            return None
        ds = clone(ds)
        sel = obj_at(ds, "spec", "selector")
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        nodes = self.lister("nodes").list()
        pods = claim(self.client, ds, "pods", self.lister("pods").list(ns))
        cur, revs = history.sync_revision(self.client, ds,
                                          self.lister("controllerrevisions").list(ns))
        hash_ = (cur["metadata"].get("labels") or {}).get(history.HASH_LABEL, "")
        if ds["metadata"].get("deletionTimestamp"):
            self.update_status(ds, nodes, pods, hash_)
            return None
        after = self.manage(ds, nodes, pods, hash_)
        pods = self._owned(ds, self.lister("pods").list(ns))
        if obj_at(ds, "spec", "updateStrategy").get("type", "RollingUpdate") == "RollingUpdate":
            after = self.rolling_update(ds, nodes, pods, hash_) or after
            pods = self._owned(ds, self.lister("pods").list(ns))
        live = {r["metadata"]["name"] for r in revs
                if any(obj_at(p, "metadata", "labels").get(history.POD_HASH_LABEL) ==
                       (r["metadata"].get("labels") or {}).get(history.HASH_LABEL)
                       for p in pods if is_active(p))}
        history.truncate(self.client, ds, revs, live, {cur["metadata"]["name"]})
        after = self.update_status(ds, nodes, pods, hash_) or after
        return after

    def _owned(self, ds: dict, pods: list[dict]) -> list[dict]:
        uid = ds["metadata"]["uid"]
        return [p for p in pods
                if any(r.get("uid") == uid and r.get("controller")
                       for r in (p.get("metadata") or {}).get("ownerReferences") or [])]

    @staticmethod
    def by_node(pods: list[dict]) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for p in pods:
            n = target_node(p)
            if n is not None:
                out.setdefault(n, []).append(p)
        return out

    def manage(self, ds: dict, nodes: list[dict], pods: list[dict], hash_: str) -> float | None:
        """manage + podsShouldBeOnNode: create where missing, delete where not wanted,
        failed, or one too many."""
        per_node = self.by_node(pods)
        node_names = {n["metadata"]["name"] for n in nodes}
        surge = allows_surge(ds)
        create: list[str] = []
        delete: list[dict] = []
        for node in nodes:
            nname = node["metadata"]["name"]
            run, keep = should_run(ds, node)
            mine = [p for p in per_node.get(nname, []) if not p["metadata"].get("deletionTimestamp")]
            if run and not mine:
                create.append(nname)
            elif keep:
                running = []
                for p in mine:
                    if (p.get("status") or {}).get("phase") == "Failed":
                        events.record(self.client, ds, "Warning", "FailedDaemonPod",
                                      f"Found failed daemon pod {p['metadata'].get('namespace')}"
                                      f"/{p['metadata']['name']} on node {nname}, will try to "
                                      "kill it", COMPONENT)
                        delete.append(p)
                    else:
                        running.append(p)
                if len(running) > 1:
                    running.sort(key=_age_key)
                    if not surge:
                        delete += running[1:]
                    else:
                        delete += self._surge_extras(running, hash_)
            else:
                delete += mine
        # Unscheduled pods meant for a node that no longer exists go too (upstream's
        # getUnscheduledPodsWithoutNode: the scheduler would never place them). A pod bound
        # to a deleted Node is the pod GC's orphan (40 s later, marked Failed first), as
        # upstream: deleted here as well, it raced `node remove`'s own sweep of a stopped
        # node's pods (the Failed mark made it this controller's, deleted at once).
        for nname, ps in per_node.items():
            if nname not in node_names:
                delete += [p for p in ps if not p["metadata"].get("deletionTimestamp")
                           and not (p.get("spec") or {}).get("nodeName")]
        self.sync_nodes(ds, delete, create, hash_)
        return None

    @staticmethod
    def _surge_extras(running: list[dict], hash_: str) -> list[dict]:
        """Two pods may share a node while the new one is not ready and the old one is."""
        newest = oldest_old = None
        extra = []
        for p in running:
            if obj_at(p, "metadata", "labels").get(history.POD_HASH_LABEL) == hash_:
                if newest is None:
                    newest = p
                    continue
            elif oldest_old is None:
                oldest_old = p
                continue
            extra.append(p)
        if newest is not None and oldest_old is not None and \
                (not is_ready(oldest_old) or is_ready(newest)):
            extra.append(oldest_old)
        return extra

    def sync_nodes(self, ds: dict, delete: list[dict], create: list[str], hash_: str) -> None:
        self.delete_pods(ds, delete)
        for nname in create:
            try:
                pod = self.client.create(self.new_pod(ds, nname, hash_))
            except errors.ApiError as e:
                events.record(self.client, ds, "Warning", "FailedCreate",
                              f"Error creating: {e.message}", COMPONENT)
                continue
            events.record(self.client, ds, "Normal", "SuccessfulCreate",
                          f"Created pod: {pod['metadata']['name']}", COMPONENT)

    @staticmethod
    def new_pod(ds: dict, node: str, hash_: str) -> dict:
        md = ds["metadata"]
        tmpl = obj_at(ds, "spec", "template")
        tmd = tmpl.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        gen = template_generation(ds)
        if gen is not None:
            labels[GENERATION_LABEL] = gen
        labels[history.POD_HASH_LABEL] = hash_
        meta = {"generateName": md["name"] + "-", "namespace": md.get("namespace", "default"),
                "labels": labels, "ownerReferences": [owner_ref(ds)]}
        if tmd.get("annotations"):
            meta["annotations"] = dict(tmd["annotations"])
        spec = copy.deepcopy(tmpl.get("spec") or {})
        add_default_tolerations(spec)
        node_affinity_for(spec, node)
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    # -- RollingUpdate ----------------------------------------------------------------------
    def rolling_update(self, ds: dict, nodes: list[dict], pods: list[dict],
                       hash_: str) -> float | None:
        """rollingUpdate: replace old pods within maxUnavailable, or surge up to maxSurge."""
        now = self.clock()
        mrs = int(obj_at(ds, "spec").get("minReadySeconds") or 0)
        gen = template_generation(ds)
        wanted = {n["metadata"]["name"]: n for n in nodes if should_run(ds, n)[0]}
        surge, unavailable = surge_unavailable(ds, len(wanted))
        per_node = self.by_node(pods)
        delete: list[dict] = []
        create: list[str] = []
        if not surge:
            num_unavailable = 0
            allowed: list[dict] = []
            candidates: list[dict] = []
            for nname in sorted(per_node):
                new, old, ok = self._split(per_node[nname], hash_, gen)
                if not ok or (new is None) == (old is None):
                    num_unavailable += 1
                elif new is not None:
                    if not is_available(new, mrs, now):
                        num_unavailable += 1
                elif not is_available(old, mrs, now):
                    allowed.append(old)
                elif num_unavailable < unavailable:
                    candidates.append(old)
            left = min(max(0, unavailable - num_unavailable), len(candidates))
            delete = allowed + candidates[:left]
        else:
            num_surge = 0
            allowed_nodes: list[str] = []
            candidate_nodes: list[str] = []
            for nname in sorted(per_node):
                new, old, ok = self._split(per_node[nname], hash_, gen)
                if not ok:
                    num_surge += 1
                elif old is None:
                    continue
                elif new is None:
                    if not is_available(old, mrs, now):
                        if nname not in wanted:
                            delete.append(old)
                            continue
                        allowed_nodes.append(nname)
                    else:
                        candidate_nodes.append(nname)
                elif not is_available(new, mrs, now):
                    num_surge += 1
                else:
                    delete.append(old)
            left = min(max(0, surge - num_surge), len(candidate_nodes))
            create = allowed_nodes + candidate_nodes[:left]
        self.sync_nodes(ds, delete, create, hash_)
        return self._min_ready_wait(pods, mrs, now)

    @staticmethod
    def _split(pods: list[dict], hash_: str, gen: str | None):
        """findUpdatedPodsOnNode: (new pod, old pod, ok) — not ok if two of a kind."""
        new = old = None
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            if is_updated(p, hash_, gen):
                if new is not None:
                    return None, None, False
                new = p
            else:
                if old is not None:
                    return None, None, False
                old = p
        return new, old, True

    @staticmethod
    def _min_ready_wait(pods: list[dict], mrs: int, now: float) -> float | None:
        if not mrs:
            return None
        from netsim.controllers.replicaset import ready_since
        waits = [s + mrs - now for p in pods if (s := ready_since(p)) is not None
                 and s + mrs > now]
        return max(0.1, min(waits)) if waits else None

    # -- status -------------------------------------------------------------------------------
    def update_status(self, ds: dict, nodes: list[dict], pods: list[dict],
                      hash_: str) -> float | None:
        now = self.clock()
        mrs = int(obj_at(ds, "spec").get("minReadySeconds") or 0)
        gen = template_generation(ds)
        per_node = self.by_node([p for p in pods if not (
            p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"))])
        desired = current = ready = available = updated = mis = 0
        for node in nodes:
            run, _ = should_run(ds, node)
            mine = per_node.get(node["metadata"]["name"], [])
            if not run:
                mis += bool(mine)
                continue
            desired += 1
            if not mine:
                continue
            current += 1
            pod = sorted(mine, key=_age_key)[0]
            if is_ready(pod):
                ready += 1
                available += is_available(pod, mrs, now)
            updated += is_updated(pod, hash_, gen)
        status = {"currentNumberScheduled": current, "numberMisscheduled": mis,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": ds["metadata"].get("generation", 1)}
        for k, v in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                     ("numberUnavailable", desired - available)):
            if v:
                status[k] = v
        cc = (ds.get("status") or {}).get("collisionCount")
        if cc:
            status["collisionCount"] = cc
        if not write_apps_status(self.client, ds, "DaemonSet", status):
            return None
        return self._min_ready_wait(pods, mrs, now)
