"""The node lifecycle controller's taints and the taint manager's evictions, and the
DefaultTolerationSeconds admission, on an in-process store with admission."""

from __future__ import annotations

import time

import pytest

from netsim.api.admission import admit
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339
from netsim.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    NodeLifecycleController,
    eviction_due,
)

STALE = "2020-01-01T00:00:00Z"
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
def client():
    s = Store(":memory:", admission=admit)
    s.bootstrap()
    yield LocalClient(s)
    s.close()


def make_node(client, name, ready="True", heartbeat=None, taints=None, unschedulable=False):
    spec = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec})
    n = client.get("nodes", name)
    n["status"] = {"conditions": [{"type": "Ready", "status": ready,
                                   "lastHeartbeatTime": heartbeat or format_rfc3339(time.time())}]}
    return client.update_status(n)


def make_pod(client, name, node, tolerations=None):
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "echo"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return client.create({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": name, "namespace": "default"}, "spec": spec})


def taints(client, name) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in client.get("nodes", name)["spec"].get("taints") or []}


def terminating(client, name) -> bool:
    return bool(client.get("pods", name, "default")["metadata"].get("deletionTimestamp"))


def test_cordon_adds_the_unschedulable_taint_and_uncordon_takes_it_away(client):
    make_node(client, "n1", taints=[CP_TAINT])
    ctl = NodeLifecycleController(client)
    ctl.sweep()
    assert taints(client, "n1") == {(CP_TAINT["key"], "NoSchedule")}
    client.patch("nodes", "n1", None, {"spec": {"unschedulable": True}})
    ctl.sweep()
    node = client.get("nodes", "n1")
    t = next(t for t in node["spec"]["taints"] if t["key"] == UNSCHEDULABLE)
    assert t["effect"] == "NoSchedule" and t["timeAdded"]
    assert taints(client, "n1") == {(CP_TAINT["key"], "NoSchedule"), (UNSCHEDULABLE, "NoSchedule")}
    client.patch("nodes", "n1", None, {"spec": {"unschedulable": None}})
    ctl.sweep()
    assert taints(client, "n1") == {(CP_TAINT["key"], "NoSchedule")}


def test_not_ready_and_unreachable_taints_follow_the_ready_condition(client):
    make_node(client, "n1", ready="False")
    ctl = NodeLifecycleController(client)
    ctl.sweep()
    assert taints(client, "n1") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    n = client.get("nodes", "n1")
    n["status"]["conditions"][0].update(status="True", lastHeartbeatTime=STALE)
    client.update_status(n)
    ctl.sweep()  # silent for longer than the grace period: Unknown, unreachable
    assert taints(client, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    n = client.get("nodes", "n1")
    assert n["status"]["conditions"][0]["reason"] == "NodeStatusUnknown"
    n["status"]["conditions"][0].update(status="True",
                                        lastHeartbeatTime=format_rfc3339(time.time()))
    client.update_status(n)
    ctl.sweep()
    assert taints(client, "n1") == set()


def test_taint_manager_honours_toleration_seconds(client):
    make_node(client, "n1", heartbeat=STALE)
    make_pod(client, "quick", "n1", [
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}])
    make_pod(client, "default", "n1")  # DefaultTolerationSeconds: 300 s
    make_pod(client, "exact300", "n1", [
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}])
    make_pod(client, "forever", "n1", [{"operator": "Exists"}])
    # names the key (no default added) but not the taint's value: not tolerated
    make_pod(client, "intolerant", "n1", [
        {"key": UNREACHABLE, "operator": "Equal", "value": "x", "effect": "NoExecute"}])
    assert client.get("pods", "default", "default")["spec"]["tolerations"] == [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 300}]
    ctl = NodeLifecycleController(client)
    now = time.time()
    ctl.sweep(now)
    # its own unreachable toleration stays; only the not-ready default is added
    assert [t["key"] for t in client.get("pods", "exact300", "default")["spec"]["tolerations"]] \
        == [UNREACHABLE, NOT_READY]
    assert terminating(client, "intolerant")  # no toleration of unreachable:NoExecute
    assert not any(terminating(client, p) for p in ("quick", "default", "exact300", "forever"))
    ctl.sweep(now + 3)
    assert not terminating(client, "quick")
    ctl.sweep(now + 6)
    assert terminating(client, "quick")
    assert not any(terminating(client, p) for p in ("default", "exact300", "forever"))
    ev = [e for e in client.list("events", "default") if e["reason"] == "TaintManagerEviction"]
    assert sorted(e["message"] for e in ev) == ["Marking for deletion Pod default/intolerant",
                                                "Marking for deletion Pod default/quick"]
    assert {e["source"]["component"] for e in ev} == {"taint-eviction-controller"}
    quick = client.get("pods", "quick", "default")
    cond = next(c for c in quick["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"]) == ("True", "DeletionByTaintManager")
    ctl.sweep(now + 301)  # 300 s is 300 s (no longer replaced by another default)
    assert terminating(client, "default") and terminating(client, "exact300")
    assert not terminating(client, "forever")


def test_pods_on_an_unreachable_node_are_marked_not_ready(client):
    make_node(client, "n1", heartbeat=STALE)
    pod = make_pod(client, "web", "n1")
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    client.update_status(pod)
    NodeLifecycleController(client).sweep()
    cond = next(c for c in client.get("pods", "web", "default")["status"]["conditions"]
                if c["type"] == "Ready")
    assert cond["status"] == "False"


def test_eviction_due_counts_from_the_taint_or_the_pod():
    taint = [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": format_rfc3339(1000)}]
    tol = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 30}]
    pod = {"metadata": {"creationTimestamp": format_rfc3339(900)}, "spec": {"tolerations": tol}}
    assert eviction_due(pod, taint, 1001) == 1030
    late = {"metadata": {"creationTimestamp": format_rfc3339(1100)}, "spec": {"tolerations": tol}}
    assert eviction_due(late, taint, 1101) == 1130
    assert eviction_due({"metadata": {}, "spec": {}}, taint, 5) == 5
    two = tol + [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]
    assert eviction_due({"metadata": {}, "spec": {"tolerations": two}}, taint, 1001) == 1010
