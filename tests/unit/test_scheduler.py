"""The scheduler as a user sees it: where pods land, and kube-scheduler's FailedScheduling
words when they cannot (pod condition PodScheduled=False/Unschedulable and a Warning event).

Nodes and pods are written into an in-memory store; a pass is `reconcile("pending")`, as
the work queue calls it. Messages are upstream's FitError.Error() with the preemption
plugin's post-filter message (kube-scheduler v1.30): filter reasons sorted as strings,
"No preemption victims found for incoming pod" for nodes that failed a filter preemption
could fix (ports, resources), "Preemption is not helpful for scheduling" for the others.
"""

from __future__ import annotations

import time

import pytest

from netsim.api import events
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.controllers import scheduler as sched_mod
from netsim.controllers.scheduler import Scheduler, filter_nodes, tolerates

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


@pytest.fixture
def client():
    store = Store(":memory:")
    store.bootstrap()
    yield LocalClient(store)
    store.close()


def node(name: str, labels: dict | None = None, taints: list | None = None, *,
         ready: str = "True", unschedulable: bool = False, cpu: str = "2",
         memory: str = "4Gi") -> dict:
    spec: dict = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   **(labels or {})}},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}


def pod(name: str, *, owner: str | None = None, ports: list | None = None,
        requests: dict | None = None, limits: dict | None = None, stamp: int = 0,
        **spec) -> dict:
    c: dict = {"name": "c", "image": "busybox"}
    if ports:
        c["ports"] = ports
    if requests or limits:
        c["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    md: dict = {"name": name, "namespace": "default",
                "creationTimestamp": f"2026-12-01T10:00:{stamp:02d}Z"}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                  "uid": f"uid-{owner}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [c], **spec}}


def seed_nodes(client, *nodes: dict) -> None:
    for n in nodes:
        client.create(n)


def three_nodes(client) -> None:
    """The seed's cluster: a tainted master and two workers, one labelled component=zz."""
    seed_nodes(client,
               node("k8s-master-171", {"node-role.kubernetes.io/control-plane": ""}, [CP_TAINT]),
               node("k8s-slave-172", {"component": "zz"}),
               node("k8s-slave-173"))


def schedule(client, *pods: dict) -> Scheduler:
    for p in pods:
        client.create(p)
    s = Scheduler(client)
    s.min_pass_gap = 0.0
    s.reconcile("pending")
    return s


def node_of(client, name: str) -> str | None:
    return client.get("pods", name, "default")["spec"].get("nodeName")


def unschedulable(client, name: str) -> str:
    """The PodScheduled condition's message (and checks the rest of what kubectl shows)."""
    p = client.get("pods", name, "default")
    assert not p["spec"].get("nodeName")
    assert p["status"]["phase"] == "Pending"
    (cond,) = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    warnings = [e for e in events.for_object(client, p) if e["type"] == "Warning"]
    assert [(e["reason"], e["source"]["component"], e["message"]) for e in warnings] == [
        ("FailedScheduling", "default-scheduler", cond["message"])]
    return cond["message"]


def fit_error(n: int, reasons: list[str], post: list[str]) -> str:
    return (f"0/{n} nodes are available: {', '.join(reasons)}. "
            f"preemption: 0/{n} nodes are available: {', '.join(post)}..")


# ---- nodeSelector and node affinity -------------------------------------------------------

def test_node_selector_places_on_the_labelled_node_and_says_why_not(client):
    three_nodes(client)
    schedule(client, pod("on-zz", nodeSelector={"component": "zz"}),
             pod("nowhere", nodeSelector={"disk": "ssd"}))
    assert node_of(client, "on-zz") == "k8s-slave-172"
    # The master fails on its taint first (TaintToleration runs before NodeAffinity).
    assert unschedulable(client, "nowhere") == fit_error(3, [
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
        "2 node(s) didn't match Pod's node affinity/selector"], [f"3 {NOT_HELPFUL}"])


def test_scheduled_event_in_kube_schedulers_words(client):
    seed_nodes(client, node("w1"))
    schedule(client, pod("web"))
    p = client.get("pods", "web", "default")
    assert [(e["type"], e["reason"], e["message"]) for e in events.for_object(client, p)] == [
        ("Normal", "Scheduled", "Successfully assigned default/web to w1")]


def _required(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}


def _expr(key: str, op: str, *values: str) -> dict:
    e: dict = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


@pytest.mark.parametrize("terms,expected", [
    ([{"matchExpressions": [_expr("disk", "In", "ssd", "nvme")]}], {"a"}),
    ([{"matchExpressions": [_expr("disk", "NotIn", "ssd")]}], {"b", "c"}),
    ([{"matchExpressions": [_expr("disk", "Exists")]}], {"a", "b"}),
    ([{"matchExpressions": [_expr("disk", "DoesNotExist")]}], {"c"}),
    ([{"matchExpressions": [_expr("cores", "Gt", "4")]}], {"b"}),
    ([{"matchExpressions": [_expr("cores", "Lt", "8")]}], {"a"}),
    # expressions of one term are ANDed, terms are ORed
    ([{"matchExpressions": [_expr("disk", "Exists"), _expr("cores", "Lt", "8")]}], {"a"}),
    ([{"matchExpressions": [_expr("disk", "In", "ssd")]},
      {"matchExpressions": [_expr("disk", "DoesNotExist")]}], {"a", "c"}),
    ([{"matchFields": [_expr("metadata.name", "In", "c")]}], {"c"}),
    ([{"matchFields": [_expr("metadata.name", "NotIn", "c")]}], {"a", "b"}),
    # an empty term matches no node (upstream's nodeSelectorTerms semantics)
    ([{}], set()),
    ([{"matchExpressions": []}, {"matchExpressions": [_expr("disk", "In", "hdd")]}], {"b"}),
])
def test_required_node_affinity_operators(terms, expected):
    nodes = [node("a", {"disk": "ssd", "cores": "4"}), node("b", {"disk": "hdd", "cores": "16"}),
             node("c")]
    feasible, why = filter_nodes(pod("p", affinity=_required(*terms)), nodes, [])
    assert {n["metadata"]["name"] for n in feasible} == expected
    if not expected:
        assert why == fit_error(3, ["3 node(s) didn't match Pod's node affinity/selector"],
                                [f"3 {NOT_HELPFUL}"])


def test_node_selector_and_required_affinity_must_both_match():
    nodes = [node("a", {"disk": "ssd", "zone": "x"}), node("b", {"disk": "ssd"})]
    p = pod("p", nodeSelector={"disk": "ssd"},
            affinity=_required({"matchExpressions": [_expr("zone", "In", "x")]}))
    assert [n["metadata"]["name"] for n in filter_nodes(p, nodes, [])[0]] == ["a"]


def test_preferred_node_affinity_picks_the_heavier_matching_node(client):
    seed_nodes(client, node("a", {"disk": "hdd"}), node("b", {"disk": "ssd"}),
               node("c", {"zone": "x"}))
    pref = [{"weight": 10, "preference": {"matchExpressions": [_expr("disk", "In", "ssd")]}},
            {"weight": 50, "preference": {"matchExpressions": [_expr("zone", "In", "x")]}}]
    schedule(client, pod("p", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": pref}}))
    assert node_of(client, "p") == "c"


# ---- taints and tolerations ---------------------------------------------------------------

@pytest.mark.parametrize("toleration,taint,ok", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Equal", "value": "w"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"},
     {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"operator": "Exists"}, {"key": "anything", "value": "v", "effect": "NoExecute"}, True),
    ({"operator": "Exists", "effect": "NoSchedule"}, {"key": "k", "effect": "NoExecute"}, False),
    ({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
      "effect": "NoSchedule"}, CP_TAINT, True),
    ({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}, CP_TAINT, True),
])
def test_tolerations_as_upstreams_ToleratesTaint(toleration, taint, ok):
    assert tolerates([toleration], taint) is ok


def test_control_plane_taint_keeps_pods_off_the_master_unless_tolerated(client):
    seed_nodes(client, node("master", taints=[CP_TAINT]))
    schedule(client, pod("plain"),
             pod("tolerant", tolerations=[{"key": "node-role.kubernetes.io/control-plane",
                                           "operator": "Exists", "effect": "NoSchedule"}]))
    assert node_of(client, "tolerant") == "master"
    assert unschedulable(client, "plain") == fit_error(1, [
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"],
        [f"1 {NOT_HELPFUL}"])


def test_the_first_untolerated_taint_is_named_and_prefer_no_schedule_does_not_filter():
    n = node("n", taints=[{"key": "soft", "effect": "PreferNoSchedule"},
                          {"key": "a", "value": "1", "effect": "NoSchedule"},
                          {"key": "b", "value": "2", "effect": "NoExecute"}])
    feasible, why = filter_nodes(pod("p", tolerations=[{"key": "a", "operator": "Exists"}]), [n], [])
    assert not feasible and "1 node(s) had untolerated taint {b: 2}." in why
    feasible, _ = filter_nodes(pod("p", tolerations=[{"key": "a", "operator": "Exists"},
                                                     {"key": "b", "operator": "Exists"}]), [n], [])
    assert feasible == [n]


def test_prefer_no_schedule_is_avoided_when_another_node_fits(client):
    seed_nodes(client, node("a", taints=[{"key": "soft", "effect": "PreferNoSchedule"}]),
               node("b"))
    schedule(client, pod("p"))
    assert node_of(client, "p") == "b"


# ---- node state: cordoned, NotReady -------------------------------------------------------

def test_cordoned_node_is_unschedulable_unless_the_pod_tolerates_it(client):
    seed_nodes(client, node("w1", unschedulable=True))
    schedule(client, pod("plain"),
             pod("tolerant", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                           "operator": "Exists", "effect": "NoSchedule"}]))
    assert unschedulable(client, "plain") == fit_error(
        1, ["1 node(s) were unschedulable"], [f"1 {NOT_HELPFUL}"])
    assert node_of(client, "tolerant") == "w1"


def test_a_cordon_is_seen_by_the_next_pass_though_each_nodes_facts_are_read_once(client):
    """What the filters read of a Node is kept per version of it (each pod of a pass
    tried each node's taints and allocatable again); a cordon is a new version, so the
    next pass sees it, and another cluster's node of the same name, uid and version (the
    offline renderer makes several in one process) is not taken for it."""
    seed_nodes(client, node("w1"))
    schedule(client, pod("before"))
    assert node_of(client, "before") == "w1"
    w1 = client.get("nodes", "w1")
    w1["spec"]["unschedulable"] = True
    client.update(w1)
    schedule(client, pod("after"))
    assert node_of(client, "after") is None
    same = client.get("nodes", "w1")
    twin = {**same, "spec": {}}  # same metadata: name, uid, resourceVersion
    assert sched_mod.node_facts(same).unschedulable
    assert not sched_mod.node_facts(twin).unschedulable
    assert sched_mod.node_facts(same) is sched_mod.node_facts(same)


def test_not_ready_and_unreachable_nodes_are_their_taints(client):
    seed_nodes(client, node("down", ready="False"),
               node("gone", ready="Unknown",
                    taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]))
    schedule(client, pod("plain"))
    assert unschedulable(client, "plain") == fit_error(2, [
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
        [f"2 {NOT_HELPFUL}"])


def test_a_pod_tolerating_not_ready_may_land_on_a_not_ready_node():
    n = node("down", ready="False")
    p = pod("ds", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                "effect": "NoSchedule"}])
    assert filter_nodes(p, [n], [])[0] == [n]


# ---- host ports ---------------------------------------------------------------------------

def test_seed_mysql_host_network_replicas_beyond_one_stay_pending(client):
    """examples/uit/mysql.yaml scaled to 3: hostNetwork + containerPort 3306, nodeSelector
    component=zz, one node labelled. kube-scheduler's message, reasons in its order."""
    three_nodes(client)
    mysql = {"owner": "mysql-6fbb5cc967", "hostNetwork": True,
             "nodeSelector": {"component": "zz"}, "ports": [{"containerPort": 3306}],
             "requests": {"cpu": "50m", "memory": "100Mi"}}
    schedule(client, pod("mysql-a", stamp=1, **mysql), pod("mysql-b", stamp=2, **mysql),
             pod("mysql-c", stamp=3, **mysql))
    assert node_of(client, "mysql-a") == "k8s-slave-172"  # the oldest goes first
    want = fit_error(3, [
        "1 node(s) didn't have free ports for the requested pod ports",
        "1 node(s) didn't match Pod's node affinity/selector",
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"],
        [f"1 {NO_VICTIMS}", f"2 {NOT_HELPFUL}"])
    assert unschedulable(client, "mysql-b") == want
    assert unschedulable(client, "mysql-c") == want


def test_host_ports_conflict_per_protocol_and_only_with_live_pods():
    nodes = [node("w1")]
    web = pod("web", ports=[{"containerPort": 80, "hostPort": 8080}])
    web["spec"]["nodeName"] = "w1"
    same = pod("same", ports=[{"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}])
    feasible, why = filter_nodes(same, nodes, [web])
    assert not feasible and why == fit_error(
        1, ["1 node(s) didn't have free ports for the requested pod ports"], [f"1 {NO_VICTIMS}"])
    udp = pod("udp", ports=[{"containerPort": 81, "hostPort": 8080, "protocol": "UDP"}])
    assert filter_nodes(udp, nodes, [web])[0] == nodes
    # containerPort alone (no hostNetwork) takes no host port
    assert filter_nodes(pod("p", ports=[{"containerPort": 8080}]), nodes, [web])[0] == nodes
    # hostNetwork: the containerPort is the host port
    hn = pod("hn", hostNetwork=True, ports=[{"containerPort": 8080}])
    assert not filter_nodes(hn, nodes, [web])[0]
    # a finished pod holds no port
    web["status"] = {"phase": "Succeeded"}
    assert filter_nodes(same, nodes, [web])[0] == nodes


# ---- resources ----------------------------------------------------------------------------

def test_requests_against_allocatable(client):
    seed_nodes(client, node("w1", cpu="1", memory="1Gi"))
    schedule(client, pod("first", requests={"cpu": "600m"}, stamp=1),
             pod("second", requests={"cpu": "600m"}, stamp=2),
             pod("tiny", requests={"cpu": "400m"}, stamp=3),
             pod("big", requests={"cpu": "2", "memory": "2Gi"}, stamp=4),
             pod("free", stamp=5))
    assert node_of(client, "first") == "w1"
    assert node_of(client, "tiny") == "w1"  # 600m + 400m == 1 CPU: fits exactly
    assert node_of(client, "free") == "w1"  # no requests: always fits
    assert unschedulable(client, "second") == fit_error(
        1, ["1 Insufficient cpu"], [f"1 {NO_VICTIMS}"])
    assert unschedulable(client, "big") == fit_error(
        1, ["1 Insufficient cpu", "1 Insufficient memory"], [f"1 {NO_VICTIMS}"])


def test_limits_alone_count_as_requests():
    n = node("w1", cpu="1")
    used = pod("used", limits={"cpu": "800m"})
    used["spec"]["nodeName"] = "w1"
    feasible, why = filter_nodes(pod("p", limits={"cpu": "300m"}), [n], [used])
    assert not feasible and "1 Insufficient cpu." in why


def test_mixed_reasons_sorted_as_strings_and_preemption_split():
    nodes = [node("n1", cpu="1"), node("n2", cpu="1"), node("n3", unschedulable=True)]
    why = filter_nodes(pod("p", requests={"cpu": "2"}), nodes, [])[1]
    assert why == fit_error(3, ["1 node(s) were unschedulable", "2 Insufficient cpu"],
                            [f"1 {NOT_HELPFUL}", f"2 {NO_VICTIMS}"])


def test_no_nodes_at_all():
    assert filter_nodes(pod("p"), [], []) == ([], "no nodes available to schedule pods")


# ---- spreading ----------------------------------------------------------------------------

def test_replicas_spread_across_nodes_and_the_master_is_skipped(client):
    three_nodes(client)
    schedule(client, *[pod(f"web-{i}", owner="web-1", stamp=i) for i in range(4)])
    placed = [node_of(client, f"web-{i}") for i in range(4)]
    assert sorted(placed) == ["k8s-slave-172", "k8s-slave-172", "k8s-slave-173", "k8s-slave-173"]


def test_spreading_counts_pods_already_bound_and_other_owners(client):
    seed_nodes(client, node("a"), node("b"))
    busy = pod("busy", owner="other")
    busy["spec"]["nodeName"] = "a"
    client.create(busy)
    schedule(client, pod("web-0", owner="web-1", stamp=1), pod("web-1", owner="web-1", stamp=2),
             pod("web-2", owner="web-1", stamp=3))
    # web-0: no replica anywhere, b has fewer pods; web-1: a has no replica yet;
    # web-2: one replica each, b has fewer pods in all.
    assert [node_of(client, f"web-{i}") for i in range(3)] == ["b", "a", "b"]


def test_other_schedulers_pods_are_left_alone(client):
    seed_nodes(client, node("w1"))
    schedule(client, pod("mine", schedulerName="my-scheduler"))
    p = client.get("pods", "mine", "default")
    assert not p["spec"].get("nodeName") and not events.for_object(client, p)


# ---- batching -----------------------------------------------------------------------------

def test_a_pass_places_every_pending_pod_and_passes_are_50ms_apart(client, monkeypatch):
    seed_nodes(client, node("w1"), node("w2"))
    for i in range(20):
        client.create(pod(f"p{i}", owner="rs", stamp=i))
    s = Scheduler(client)
    waits: list[float] = []
    real_wait = s.stopped.wait
    monkeypatch.setattr(s.stopped, "wait", lambda t=None: (waits.append(t), real_wait(t))[1])
    s._last_pass = 0.0
    s.reconcile("pending")
    assert waits == []  # the first pass of a quiet spell runs at once
    first = s._last_pass
    assert all(node_of(client, f"p{i}") for i in range(20))  # one pass placed all 20
    assert sorted(node_of(client, f"p{i}") for i in range(20)).count("w1") == 10
    client.create(pod("late", stamp=30))
    # queued right after a pass (made "right after" whatever the machine's load): waits out
    # the gap
    s._last_pass = first = time.monotonic()
    s.reconcile("pending")
    assert len(waits) == 1 and 0 < waits[0] <= sched_mod.Scheduler.min_pass_gap
    assert s._last_pass - first >= sched_mod.Scheduler.min_pass_gap
    assert node_of(client, "late")


def test_one_key_for_every_pending_pod_and_none_for_bound_or_deleting(client):
    s = Scheduler(client)
    bound = pod("b")
    bound["spec"]["nodeName"] = "w1"
    deleting = pod("d")
    deleting["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    assert list(s.keys_for("pods", pod("a"))) == ["pending"]
    assert list(s.keys_for("pods", bound)) == []
    assert list(s.keys_for("pods", deleting)) == []
    assert list(s.keys_for("nodes", node("w1"))) == ["pending"]


# ---- backoff of unschedulable pods ----------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _failed_count(client, name: str) -> int:
    p = client.get("pods", name, "default")
    return sum(e.get("count", 1) for e in events.for_object(client, p)
               if e["reason"] == "FailedScheduling")


def _heartbeat(client, name: str, stamp: str) -> None:
    n = client.get("nodes", name)
    n["status"]["conditions"][0]["lastHeartbeatTime"] = stamp
    client.update_status(n)


def _backoff_scheduler(client) -> tuple[Scheduler, FakeClock]:
    s = Scheduler(client)
    s.min_pass_gap = 0.0
    clock = FakeClock()
    s.clock = clock
    return s, clock


def test_unschedulable_pod_backs_off_1s_to_10s_and_heartbeats_do_not_retry_it(client):
    """kube-scheduler's podInitialBackoff 1 s doubling to podMaxBackoff 10 s: a pod that
    fits nowhere is tried (and FailedScheduling counted) only when its backoff ends, not on
    every node heartbeat (it was "x8 over 9s")."""
    seed_nodes(client, node("w1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    client.create(pod("p"))
    s, clock = _backoff_scheduler(client)
    start = clock.t
    tries = []  # the seconds at which a try counted one more FailedScheduling
    for step in range(1, 5 * 36 + 1):  # 36 s in 0.2 s steps, a heartbeat before each pass
        clock.t = start + step * 0.2
        _heartbeat(client, "w1", f"2026-12-01T10:{step // 300:02d}:{step % 60:02d}Z")
        before = _failed_count(client, "p")
        again = s.reconcile("pending")
        assert again is not None and 0 < again <= 10.0
        if _failed_count(client, "p") > before:
            tries.append(round(clock.t - start, 1))
    gaps = [round(b - a, 1) for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert _failed_count(client, "p") == 7


def test_a_relevant_change_retries_a_backing_off_pod_at_once(client):
    seed_nodes(client, node("w1", {"disk": "hdd"}))
    client.create(pod("p", nodeSelector={"disk": "ssd"}))
    s, clock = _backoff_scheduler(client)
    for _ in range(3):  # a few failed tries: backoff now 4 s
        s.reconcile("pending")
        clock.t += 10
    assert _failed_count(client, "p") == 3
    clock.t += 0.1
    client.create(node("w2", {"disk": "hdd"}))  # a new node that does not fit: tried, fails
    s.reconcile("pending")
    assert _failed_count(client, "p") == 4
    n = client.get("nodes", "w1")
    n["metadata"]["labels"]["disk"] = "ssd"  # a label change that lets it fit
    client.update(n)
    clock.t += 0.1
    s.reconcile("pending")
    assert node_of(client, "p") == "w1"
    assert s._backoff == {}


def test_a_deleted_pod_makes_room_for_a_waiting_one_at_once(client):
    seed_nodes(client, node("w1"))
    port = [{"containerPort": 80, "hostPort": 8080}]
    s, clock = _backoff_scheduler(client)
    client.create(pod("first", ports=port))
    s.reconcile("pending")
    client.create(pod("second", ports=port, stamp=1))
    s.reconcile("pending")
    assert not node_of(client, "second") and _failed_count(client, "second") == 1
    first = client.get("pods", "first", "default")
    assert s.keys_for("pods", first) == []  # a bound pod's updates queue nothing
    first["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:05Z"
    assert s.keys_for("pods", first) == ["pending"]  # ... its deletion does, while one waits
    client.delete("pods", "first", "default", 0)
    clock.t += 0.1  # well within the 1 s backoff
    s.reconcile("pending")
    assert node_of(client, "second") == "w1"
    assert s.keys_for("pods", first) == []  # nobody waits now
