"""The scheduler: binds each unscheduled pod to a feasible node, spreading replicas.

Filters as kube-scheduler's default plugins (NodeUnschedulable, NodeName, NodeAffinity /
nodeSelector, TaintToleration, NodePorts, NodeResourcesFit: the node's allocatable pods,
cpu and memory) and says why in its words.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter

from netsim.api import errors, events
from netsim.api.quantity import parse_cpu, parse_memory
from netsim.api.timeutil import now_rfc3339
from netsim.controllers import persistentvolume
from netsim.controllers.base import Controller
from netsim.controllers.fields import dicts_at, obj_at
from netsim.controllers.quantity import pod_requests
from netsim.machinery import clone, key_of

log = logging.getLogger("netsim.controllers")


def _spec(pod: dict) -> dict:
    spec = pod.get("spec")
    return spec if isinstance(spec, dict) else {}


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _condition_taints(node: dict) -> list[dict]:
    """The NoSchedule taint the node lifecycle controller keeps on a node that is not Ready
    (not-ready for False, unreachable for Unknown; TaintNodesByCondition), unless it is
    already there: upstream's scheduler sees readiness only through taints."""
    ready = next((c.get("status") for c in dicts_at(node, "status", "conditions")
                  if c.get("type") == "Ready"), None)
    if ready == "True":
        return []
    key = "node.kubernetes.io/unreachable" if ready == "Unknown" else "node.kubernetes.io/not-ready"
    have = dicts_at(node, "spec", "taints")
    if any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in have):
        return []
    return [{"key": key, "effect": "NoSchedule"}]


def _host_ports(pod: dict) -> set[tuple[str, int]]:
    spec = pod.get("spec", {})
    out = set()
    for c in spec.get("containers", []):
        for p in c.get("ports", []) or []:
            hp = p.get("hostPort") or (p.get("containerPort") if spec.get("hostNetwork") else None)
            if hp:
                out.add((p.get("protocol", "TCP"), int(hp)))
    return out


def _selects_nodes(pod: dict) -> bool:
    """Whether the pod has a nodeSelector or required node affinity (else every node
    matches, and _match_affinity need not be asked node by node)."""
    spec = _spec(pod)
    return bool(spec.get("nodeSelector") or (spec.get("affinity") or {}).get("nodeAffinity"))


def _match_affinity(pod: dict, labels: dict, name: str = "") -> bool:
    spec = pod.get("spec", {})
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(_term_matches(term, labels, name) for term in terms)


def _term_matches(term: dict, labels: dict, name: str) -> bool:
    """A NodeSelectorTerm: its expressions ANDed; an empty term matches no node."""
    exprs = [(e, labels) for e in term.get("matchExpressions") or []]
    exprs += [(e, {"metadata.name": name}) for e in term.get("matchFields") or []]
    return bool(exprs) and all(_expr_matches(e, values) for e, values in exprs)


def _expr_matches(e: dict, labels: dict) -> bool:
    key, op, vals = e["key"], e["operator"], e.get("values") or []
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("In", "NotIn"):
        return (labels.get(key) in vals if key in labels else False) == (op == "In")
    if op in ("Gt", "Lt") and key in labels:
        try:
            have, want = int(labels[key]), int(vals[0])
        except (ValueError, IndexError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def _preferred_weight(pod: dict, labels: dict, name: str) -> int:
    """NodeAffinity's score: the weights of the preferred terms the node matches."""
    pref = (((_spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
            .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    return sum(int(t.get("weight") or 0) for t in pref
               if _term_matches(t.get("preference") or {}, labels, name))


UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def _taint_str(t: dict) -> str:
    return "{" + f"{t['key']}: {t.get('value', '')}" + "}"


class NodeFacts:
    """What the filters and scores read of one version of a Node, read once (upstream's
    NodeInfo in the scheduler's snapshot): every pod of a pass tried every node, and at 50
    nodes re-reading each node's taints, conditions and allocatable for each pod was most
    of a placement."""

    __slots__ = ("name", "labels", "unschedulable", "hard_taints", "soft_taints",
                 "cpu", "memory", "pods", "signature")

    def __init__(self, node: dict):
        self.name = node["metadata"]["name"]
        self.labels = obj_at(node, "metadata", "labels")
        self.unschedulable = bool(obj_at(node, "spec").get("unschedulable"))
        taints = dicts_at(node, "spec", "taints")
        self.hard_taints = [t for t in taints + _condition_taints(node)
                            if t.get("effect") in ("NoSchedule", "NoExecute")]
        self.soft_taints = [t for t in taints if t.get("effect") == "PreferNoSchedule"]
        alloc = obj_at(node, "status", "allocatable")
        self.cpu = _capacity(alloc.get("cpu"), parse_cpu)
        self.memory = _capacity(alloc.get("memory"), parse_memory)
        self.pods = _capacity(alloc.get("pods"), int)
        self.signature = _node_signature(node)


_facts: dict[int, tuple[dict, str, NodeFacts]] = {}


def node_facts(node: dict) -> NodeFacts:
    """The NodeFacts of `node`, kept for that very object at that resourceVersion (a
    cache's objects are replaced, not changed, by an update; names, uids and versions
    repeat across the offline renderer's clusters). A node without a resourceVersion
    (not from the API) is read each time."""
    rv = node["metadata"].get("resourceVersion")
    if not rv:
        return NodeFacts(node)
    hit = _facts.get(id(node))
    if hit is not None and hit[0] is node and hit[1] == rv:
        return hit[2]
    if len(_facts) > 10_000:  # heartbeats make new versions: forget the old ones
        _facts.clear()
    facts = NodeFacts(node)
    _facts[id(node)] = (node, rv, facts)
    return facts


class NodeUsage:
    """Per node: the pods bound to it, the host ports and requests of the live ones and a
    count per owner. Built once per scheduling pass and kept current as pods are placed,
    so placing P pods costs O(P) instead of O(P^2)."""

    def __init__(self, pods: list[dict] = ()):
        self.total: Counter[str] = Counter()
        self.owners: dict[str, Counter] = {}
        self.ports: dict[str, set] = {}
        self.cpu: Counter[str] = Counter()
        self.mem: Counter[str] = Counter()
        self.live: Counter[str] = Counter()  # pods not finished: what maxPods counts
        for p in pods:
            self.add(p)

    def copy(self) -> NodeUsage:
        """A copy a scheduling pass may add to (O(nodes), not O(pods))."""
        out = NodeUsage()
        out.total, out.cpu, out.mem, out.live = (Counter(self.total), Counter(self.cpu),
                                                 Counter(self.mem), Counter(self.live))
        out.owners = {n: Counter(c) for n, c in self.owners.items()}
        out.ports = {n: set(p) for n, p in self.ports.items()}
        return out

    def remove(self, p: dict) -> None:
        """Undo add(p) for the same object (the scheduler's cache, as pods change)."""
        spec = p.get("spec")
        name = spec.get("nodeName") if isinstance(spec, dict) else None
        if not name or not isinstance(name, str):
            return
        self.total[name] -= 1
        try:
            owner = tuple(r.get("uid") for r in p["metadata"].get("ownerReferences") or [])
            if owner:
                self.owners.setdefault(name, Counter())[owner] -= 1
            if p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return
            self.live[name] -= 1
            cpu, mem = pod_requests(p)
            self.cpu[name] -= cpu
            self.mem[name] -= mem
        except Exception as e:  # noqa: BLE001 - add() counted it as a pod only
            log.debug("pod %s: usage not uncounted: %r", (p.get("metadata") or {}).get("name"), e)

    def add(self, p: dict) -> None:
        spec = p.get("spec")
        name = spec.get("nodeName") if isinstance(spec, dict) else None
        if not name or not isinstance(name, str):
            return
        self.total[name] += 1
        try:
            self._add_bound(p, name)
        except Exception as e:  # noqa: BLE001 - written around admission: counts as a pod only
            log.debug("pod %s: usage not counted: %r", (p.get("metadata") or {}).get("name"), e)

    def _add_bound(self, p: dict, name: str) -> None:
        owner = tuple(r.get("uid") for r in p["metadata"].get("ownerReferences") or [])
        if owner:
            self.owners.setdefault(name, Counter())[owner] += 1
        if p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        self.live[name] += 1
        self.ports.setdefault(name, set()).update(_host_ports(p))
        cpu, mem = pod_requests(p)
        self.cpu[name] += cpu
        self.mem[name] += mem


class PodCache:
    """The scheduler's cache (upstream's scheduler cache and queue, kept by the pods
    informer's handlers): bound pods' usage per node, O(1) per event, and the pods waiting
    for a node. A pass takes a copy of the usage (upstream's snapshot, O(nodes)) and the
    pending pods, instead of recounting every pod of the cluster: O(P) per pass made a
    rollout of P pods O(P^2)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.usage = NodeUsage()
        self._bound: dict[str, dict] = {}    # key -> the bound pod as counted
        self._pending: dict[str, dict] = {}  # key -> unbound pod, not being deleted
        self.freed = 0  # bound pods deleted or finished: room a waiting pod may fit in

    def put(self, pod: dict) -> None:
        key = key_of(pod)
        with self.lock:
            if _spec(pod).get("nodeName"):
                self._pending.pop(key, None)
                old = self._bound.get(key)
                self._bound[key] = pod
                if old is not None:
                    self._uncount(old)
                    if _live(old) and not _live(pod):
                        self.freed += 1
                self.usage.add(pod)
            elif pod["metadata"].get("deletionTimestamp"):
                self._pending.pop(key, None)
            else:
                self._pending[key] = pod

    def delete(self, pod: dict) -> None:
        key = key_of(pod)
        with self.lock:
            self._pending.pop(key, None)
            old = self._bound.pop(key, None)
            if old is not None:
                self._uncount(old)
                if _live(old):
                    self.freed += 1

    def _uncount(self, old: dict) -> None:
        """Take a counted pod out; its node's host ports are recounted from the pods
        still bound there (a set cannot say whether another pod holds the same port)."""
        self.usage.remove(old)
        node = _spec(old).get("nodeName")
        try:
            had_ports = bool(_host_ports(old))
        except Exception:  # noqa: BLE001 - add() did not count its ports either
            had_ports = False
        if had_ports and isinstance(node, str):
            ports: set = set()
            for p in self._bound.values():
                if _spec(p).get("nodeName") == node and _live(p):
                    with contextlib.suppress(Exception):
                        ports |= _host_ports(p)
            self.usage.ports[node] = ports

    def snapshot(self) -> tuple[NodeUsage, list[dict], int]:
        """(a copy of the usage, the pending pods, freed) as of now."""
        with self.lock:
            return self.usage.copy(), list(self._pending.values()), self.freed


def _live(pod: dict) -> bool:
    return obj_at(pod, "status").get("phase") not in ("Succeeded", "Failed")


def _usage_without(pod: dict, pods: list[dict]) -> NodeUsage:
    uid = pod["metadata"].get("uid")
    return NodeUsage([p for p in pods if p["metadata"].get("uid") != uid or uid is None])


def filter_nodes(pod: dict, nodes: list[dict], pods: list[dict],
                 usage: NodeUsage | None = None, volumes=None) -> tuple[list[dict], str]:
    """Feasible nodes, and kube-scheduler's FailedScheduling message when there are none.
    `usage` (of `pods` other than `pod`) saves recounting them; `volumes` (a
    persistentvolume.PodVolumes) is the VolumeBinding plugin's view of the pod's claims."""
    n = len(nodes)
    if volumes is not None and volumes.error and nodes:  # its PreFilter: no node is tried
        return [], (f"0/{n} nodes are available: {volumes.error}. preemption: 0/{n} nodes are "
                    f"available: {n} Preemption is not helpful for scheduling.")
    if usage is None:
        usage = _usage_without(pod, pods)
    reasons: Counter[str] = Counter()
    # Nodes a filter preemption could help with (ports, resources: "Unschedulable"
    # upstream) and the others ("UnschedulableAndUnresolvable"), for the PostFilter message.
    resolvable = 0
    feasible = []
    want_ports = _host_ports(pod)
    want_cpu, want_mem = pod_requests(pod)
    tolerations = pod.get("spec", {}).get("tolerations") or []
    selects = _selects_nodes(pod)
    for node in nodes:
        facts = node_facts(node)
        name = facts.name
        # In the order of kube-scheduler's filter plugins; the first that fails is the reason.
        if facts.unschedulable and not tolerates(tolerations, UNSCHEDULABLE):
            reasons["node(s) were unschedulable"] += 1
            continue
        bad = [t for t in facts.hard_taints if not tolerates(tolerations, t)]
        if bad:
            reasons[f"node(s) had untolerated taint {_taint_str(bad[0])}"] += 1
            continue
        if selects and not _match_affinity(pod, facts.labels, name):
            reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            continue
        why = volumes.node_reason(node) if volumes is not None else None
        if why:
            reasons[why] += 1
            continue
        if want_ports and want_ports & usage.ports.get(name, set()):
            reasons["node(s) didn't have free ports for the requested pod ports"] += 1
            resolvable += 1
            continue
        cap_cpu, cap_mem, max_pods = facts.cpu, facts.memory, facts.pods
        used_cpu = usage.cpu[name]
        used_mem = usage.mem[name]
        insufficient = []
        if max_pods is not None and usage.live[name] + 1 > max_pods:
            insufficient.append("Too many pods")  # fitsRequest's first check
        if cap_cpu is not None and want_cpu and used_cpu + want_cpu > cap_cpu:
            insufficient.append("Insufficient cpu")
        if cap_mem is not None and want_mem and used_mem + want_mem > cap_mem:
            insufficient.append("Insufficient memory")
        if insufficient:
            for r in insufficient:
                reasons[r] += 1
            resolvable += 1
            continue
        feasible.append(node)
    if feasible:
        return feasible, ""
    if not nodes:
        return [], "no nodes available to schedule pods"
    n = len(nodes)
    # FitError.Error(), then the preemption plugin's own FitError as its PostFilter message
    # (which ends in a period of its own: upstream's events end in "..").
    post = Counter({"No preemption victims found for incoming pod": resolvable,
                    "Preemption is not helpful for scheduling": n - resolvable})
    return [], f"{_histogram(n, reasons)} preemption: {_histogram(n, post)}."


def _sooner(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _capacity(value, parse) -> float | None:
    """An allocatable quantity; None (no limit known, as when it is absent) when it is
    unset or cannot be read: one odd Node must not fail the pass for every pod."""
    try:
        return parse(value) if value else None
    except (TypeError, ValueError, ArithmeticError):
        return None


def _histogram(n: int, reasons: Counter) -> str:
    parts = sorted(f"{count} {r}" for r, count in reasons.items() if count)
    return f"0/{n} nodes are available: " + ", ".join(parts) + "."


def score(pod: dict, node: dict, pods: list[dict], usage: NodeUsage | None = None) -> tuple:
    """Lowest wins. Prefer the node matching the heaviest preferred node affinity, then
    one with fewer untolerated PreferNoSchedule taints (upstream's NodeAffinity and
    TaintToleration scores), then fewer pods of the same owner, then fewer pods (spread)."""
    return scorer(pod, NodeUsage(pods) if usage is None else usage)(node)


def scorer(pod: dict, usage: NodeUsage):
    """score() for one pod against many nodes: what it reads of the pod, read once."""
    owner = tuple(r.get("uid") for r in pod["metadata"].get("ownerReferences") or [])
    tolerations = _spec(pod).get("tolerations") or []
    selects = _selects_nodes(pod)
    none: Counter = Counter()

    def key(node: dict) -> tuple:
        facts = node_facts(node)
        name = facts.name
        same = usage.owners.get(name, none)[owner] if owner else 0
        soft = sum(1 for t in facts.soft_taints if not tolerates(tolerations, t)) \
            if facts.soft_taints else 0
        weight = _preferred_weight(pod, facts.labels, name) if selects else 0
        return (-weight, soft, same, usage.total[name], name)
    return key


def _node_signature(node: dict) -> tuple:
    """What of a Node can change whether a pod fits it (upstream's
    nodeSchedulingPropertiesChange: unschedulable, allocatable, labels, taints, condition
    statuses); a heartbeat changes none of it."""
    conds = tuple((c.get("type"), c.get("status")) for c in dicts_at(node, "status", "conditions"))
    return repr((obj_at(node, "metadata").get("name"), obj_at(node, "spec").get("unschedulable"),
                 dicts_at(node, "spec", "taints"), obj_at(node, "metadata", "labels"),
                 obj_at(node, "status", "allocatable"), conds))


class Backoff:
    """One unschedulable pod's retry state: upstream's podInitialBackoffDuration (1 s)
    doubled per failed attempt up to podMaxBackoffDuration (10 s)."""

    __slots__ = ("attempts", "next_try", "epoch", "rv")

    def __init__(self, attempts: int, now: float, epoch: int, rv, initial: float,
                 most: float):
        self.attempts, self.epoch, self.rv = attempts, epoch, rv
        self.next_try = now + min(initial * 2 ** (attempts - 1), most)


class Scheduler(Controller):
    name = "default-scheduler"
    watches = ("pods", "nodes", "persistentvolumeclaims")
    reads = ("persistentvolumes", "storageclasses")
    resync_seconds = 5.0
    initial_backoff = 1.0   # podInitialBackoffSeconds
    max_backoff = 10.0      # podMaxBackoffSeconds

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bad: dict[str | None, str] = {}  # pod uid -> problem already reported
        self.clock = time.monotonic  # backoff time (tests replace it)
        # Unschedulable pods are tried again when their backoff ends, or at once when the
        # cluster changed in a way that may let them fit (a Node added, removed or changed
        # in what scheduling reads, a bound pod deleted or finished) or they were updated;
        # so node heartbeats do not retry them (and repeat FailedScheduling) every time.
        self._backoff: dict[str, Backoff] = {}  # pod uid -> retry state
        self._epoch = 0  # counts relevant cluster changes
        self._nodes_seen: frozenset = frozenset()
        self._bound_seen: set = set()
        self._cache: PodCache | None = None  # once started: kept by the pods informer
        self._freed_seen = 0

    def start(self):
        cache = PodCache()
        inf = self.informer("pods")
        # Before the handler that queues the pass: the cache is current when it runs.
        self._handlers.append((inf, inf.add_handler(
            on_add=cache.put, on_update=lambda old, new: cache.put(new),
            on_delete=cache.delete)))
        self._cache = cache
        return super().start()

    def keys_for(self, resource, obj):
        # One key for the whole queue: a pass lists nodes and pods once and places every
        # pending pod, instead of re-listing the cluster for each pod.
        if resource == "pods" and (_spec(obj).get("nodeName")
                                   or obj["metadata"].get("deletionTimestamp")):
            # a bound pod going away may make room for a pod that is waiting
            gone = obj["metadata"].get("deletionTimestamp") or (
                obj_at(obj, "status").get("phase") in ("Succeeded", "Failed"))
            return ["pending"] if gone and self._backoff else []
        return ["pending"]

    def all_keys(self):
        yield "pending"

    # A pass lists (and decodes) every pod; pods created one by one would each trigger a
    # pass, O(P^2) in all. Passes are at most this far apart, so a burst is placed in a
    # few passes (the first pod of a quiet spell is placed at once).
    min_pass_gap = 0.05
    _last_pass = 0.0

    def reconcile(self, key):
        wait = self._last_pass + self.min_pass_gap - time.monotonic()
        if wait > 0:
            self.stopped.wait(wait)
        self._last_pass = time.monotonic()
        nodes = self.lister("nodes").list()
        if self._cache is not None and self._running:
            self.lister("pods").get("")  # waits for our own last write to reach the cache
            usage, pending, freed = self._cache.snapshot()
            pods: list[dict] = []  # filter_nodes reads `usage`, never the list
            self._note_node_changes(nodes, freed)
        else:  # never started (unit tests, the offline renderer): from the API
            pods = self.lister("pods").list()  # shared with the cache: read-only
            usage = NodeUsage(pods)
            self._note_changes(nodes, pods)
            pending = [p for p in pods if not _spec(p).get("nodeName")
                       and not p["metadata"].get("deletionTimestamp")]
        now = self.clock()
        again = None
        waiting = {}
        for pod in sorted(pending, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
            if _spec(pod).get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            md = pod["metadata"]
            uid, rv = md.get("uid") or f"{md.get('namespace')}/{md.get('name')}", \
                md.get("resourceVersion")
            b = self._backoff.get(uid)
            if b is not None and now < b.next_try and b.epoch == self._epoch and b.rv == rv:
                waiting[uid] = b  # backing off, nothing changed: not tried, no event
                again = _sooner(again, b.next_try - now)
                continue
            pod = clone(pod)  # _place writes its binding into it
            try:
                if not self._place(pod, nodes, pods, usage):
                    b = Backoff((b.attempts if b else 0) + 1, now, self._epoch,
                                pod["metadata"].get("resourceVersion"),
                                self.initial_backoff, self.max_backoff)
                    waiting[uid] = b
                    again = _sooner(again, b.next_try - now)
            except errors.Conflict:
                again = _sooner(again, 0.1)
            except errors.NotFound:
                pass
            except errors.ApiError:
                again = _sooner(again, 1.0)
            except Exception as e:  # noqa: BLE001 - one unreadable pod must not stop the others
                self._unschedulable(pod, e)
        self._backoff = waiting  # placed, deleted or bound elsewhere: forgotten
        return again

    def _note_changes(self, nodes: list[dict], pods: list[dict]) -> None:
        """Count a relevant cluster change (see __init__) since the last pass."""
        seen = frozenset(node_facts(n).signature for n in nodes)
        bound = {p["metadata"].get("uid") for p in pods if _spec(p).get("nodeName")
                 and obj_at(p, "status").get("phase") not in ("Succeeded", "Failed")}
        if seen != self._nodes_seen or self._bound_seen - bound:
            self._epoch += 1
        self._nodes_seen, self._bound_seen = seen, bound

    def _note_node_changes(self, nodes: list[dict], freed: int) -> None:
        """_note_changes from the cache: its count of freed pods, not every pod."""
        seen = frozenset(node_facts(n).signature for n in nodes)
        if seen != self._nodes_seen or freed != self._freed_seen:
            self._epoch += 1
        self._nodes_seen, self._freed_seen = seen, freed

    def _unschedulable(self, pod: dict, exc: Exception) -> None:
        """A pod whose fields cannot be read (written around admission): one log line and
        one Warning FailedScheduling when its problem first appears or changes."""
        md = pod["metadata"]
        why = f"pod cannot be scheduled: a field has an unexpected form ({type(exc).__name__}: {exc})"
        if self._bad.get(md.get("uid")) == why:
            return
        self._bad[md.get("uid")] = why
        log.warning("%s: pod %s/%s: %s", self.name, md.get("namespace"), md.get("name"), why)
        with contextlib.suppress(Exception):
            events.record(self.client, pod, "Warning", "FailedScheduling", why,
                          "default-scheduler")

    def _place(self, pod: dict, nodes: list[dict], pods: list[dict],
               usage: NodeUsage | None = None) -> bool:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if usage is None:
            usage = _usage_without(pod, pods)
        vols = None
        if persistentvolume.pod_claims(pod):
            vols = persistentvolume.pod_volumes(pod, self.lister("persistentvolumeclaims"),
                                                self.lister("persistentvolumes"),
                                                self.lister("storageclasses"))
        feasible, why = filter_nodes(pod, nodes, pods, usage, vols)
        if not feasible:
            status = pod.setdefault("status", {})
            old = [c for c in status.get("conditions", []) if c.get("type") == "PodScheduled"]
            if not old or old[0].get("message") != why:
                cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": why, "lastProbeTime": None,
                        "lastTransitionTime": now_rfc3339()}
                status["phase"] = "Pending"
                status["conditions"] = [c for c in status.get("conditions", [])
                                        if c.get("type") != "PodScheduled"] + [cond]
                try:
                    pod.update(self.client.update_status(pod))  # its new resourceVersion
                except errors.ApiError:
                    pass
            events.record(self.client, pod, "Warning", "FailedScheduling", why, "default-scheduler")
            return False
        best = min(feasible, key=scorer(pod, usage))
        node = best["metadata"]["name"]
        if vols is not None and vols.delayed:  # PreBind: bound once its claims are
            persistentvolume.select_node(self.client, vols.delayed, node)
            return True
        # Bound through pods/binding as kube-scheduler binds (DefaultBinder): one small
        # storage write with a uid precondition, not a whole-pod update through admission.
        self.client.bind(ns, name, node, pod["metadata"].get("uid"))
        pod["spec"]["nodeName"] = node
        usage.add(pod)  # counts for spreading the next pods of this pass
        events.record(self.client, pod, "Normal", "Scheduled",
                      f"Successfully assigned {ns}/{name} to {node}", "default-scheduler")
        return True
