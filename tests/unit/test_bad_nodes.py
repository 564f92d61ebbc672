"""Controllers serve every other object around one they cannot read.

Objects go straight into Store(":memory:") without admission (as an older version or a
write around the API server could have left them): a Node with no spec or status, or
with null / wrongly typed fields, pods with odd labels or ownerReferences. Before, the
node lifecycle sweep raised KeyError on the first such Node (no node after it was
marked NotReady, no pod evicted) and the scheduler blamed every pod for one odd Node.
"""

from __future__ import annotations

import logging
import time

import pytest

from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339
from netsim.controllers.endpoints import EndpointsController
from netsim.controllers.nodelifecycle import UNREACHABLE, NodeLifecycleController
from netsim.controllers.replicaset import ReplicaSetController
from netsim.controllers.scheduler import Scheduler

STALE = "2020-01-01T00:00:00Z"

BAD_NODES = {
    "no spec, no status": {},
    "null spec and status": {"spec": None, "status": None},
    "fields of the wrong type": {"spec": "x", "status": {"conditions": "Ready",
                                                         "allocatable": "lots"}},
    "odd list items": {"spec": {"taints": ["x", None]},
                       "status": {"conditions": [None, "Ready"],
                                  "allocatable": {"cpu": "lots", "memory": []}}},
}


@pytest.fixture
def client():
    s = Store(":memory:")  # no admission: what a write around the API server leaves
    s.bootstrap()
    yield LocalClient(s)
    s.close()


def node(name: str, heartbeat: str | None = None, **fields) -> dict:
    hb = heartbeat or format_rfc3339(time.time())
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {},
           "status": {"conditions": [{"type": "Ready", "status": "True",
                                      "lastHeartbeatTime": hb}],
                      "allocatable": {"cpu": "2", "memory": "2Gi", "pods": "110"}}}
    obj.update(fields)
    return obj


def pod(name: str, node_name: str = "", **spec) -> dict:
    s = {"containers": [{"name": "c", "image": "netsim/echo"}], **spec}
    if node_name:
        s["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": s}


def ready_status(c: LocalClient, name: str) -> str:
    n = c.get("nodes", name)
    return next(x["status"] for x in n["status"]["conditions"] if x["type"] == "Ready")


def test_node_lifecycle_marks_and_evicts_around_nodes_without_spec_or_status(client):
    for i, extra in enumerate(BAD_NODES.values()):
        client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"bad{i}"},
                       **extra})
    # Ready but silent, and no spec at all: it still gets the unreachable taints
    silent = node("silent-nospec", STALE)
    del silent["spec"]
    client.create(silent)
    client.create(node("gone", STALE))
    client.create(node("alive"))
    client.create(pod("p1", "gone"))
    client.create(pod("p2", "gone", tolerations="unreachable"))  # unreadable tolerations
    client.create(pod("p3", "alive"))
    ctl = NodeLifecycleController(client)
    ctl.sweep()
    for name in ("gone", "silent-nospec"):
        assert ready_status(client, name) == "Unknown"
        taints = client.get("nodes", name)["spec"]["taints"]
        assert {(t["key"], t["effect"]) for t in taints} == {
            (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert ready_status(client, "alive") == "True"
    ctl.sweep(now=time.time() + 5)  # no toleration: evicted at once (a graceful delete:
    # Terminating until the node's kubelet is back, as upstream's taint manager leaves it)
    for name in ("p1", "p2"):
        assert client.get("pods", name, "default")["metadata"].get("deletionTimestamp")
    assert not client.get("pods", "p3", "default")["metadata"].get("deletionTimestamp")
    assert [e["reason"] for e in client.list("events") if e["reason"] == "NodeNotReady"] \
        == ["NodeNotReady", "NodeNotReady"]


def test_node_lifecycle_failure_on_one_node_is_logged_once_and_the_rest_served(
        client, monkeypatch, caplog):
    client.create(node("a-broken", STALE))
    client.create(node("b-gone", STALE))
    ctl = NodeLifecycleController(client)
    real = ctl._mark_unknown

    def mark(n):
        if n["metadata"]["name"] == "a-broken":
            raise KeyError("spec")
        real(n)

    monkeypatch.setattr(ctl, "_mark_unknown", mark)
    with caplog.at_level(logging.WARNING, logger="netsim.controllers"):
        ctl.sweep()
        ctl.sweep()
    assert ready_status(client, "b-gone") == "Unknown"  # the node after the broken one
    lines = [r.getMessage() for r in caplog.records if "a-broken" in r.getMessage()]
    assert lines == ["node-lifecycle-controller: node a-broken: KeyError: 'spec'"]


@pytest.mark.parametrize("extra", list(BAD_NODES.values()), ids=list(BAD_NODES))
def test_scheduler_places_pods_around_an_unreadable_node(client, extra):
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a-bad"}, **extra})
    client.create(node("b-good"))
    client.create(pod("web"))
    sched = Scheduler(client)
    sched.reconcile("pending")
    assert client.get("pods", "web", "default")["spec"]["nodeName"] == "b-good"
    assert not [e for e in client.list("events") if e["reason"] == "FailedScheduling"]


def test_node_without_status_is_not_ready_to_the_scheduler(client):
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "new"}})
    client.create(pod("web"))
    Scheduler(client).reconcile("pending")
    assert not client.get("pods", "web", "default")["spec"].get("nodeName")
    (ev,) = [e for e in client.list("events") if e["reason"] == "FailedScheduling"]
    assert ev["message"].startswith(
        "0/1 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/not-ready: }.")


def test_endpoints_around_a_node_and_a_pod_with_labels_that_are_no_map(client):
    client.create({**node("n1"), "metadata": {"name": "n1", "labels": ["zone-a"]}})
    client.create({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"},
                            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}})
    good = pod("good", "n1")
    good["status"] = {"phase": "Running", "podIP": "10.244.1.5",
                      "conditions": [{"type": "Ready", "status": "True"}]}
    odd = {**good, "metadata": {"name": "odd", "namespace": "default", "labels": "app=web"}}
    client.create(good)
    client.create(odd)
    EndpointsController(client).reconcile("default/web")
    (sl,) = client.list("endpointslices")
    assert [e["addresses"] for e in sl["endpoints"]] == [["10.244.1.5"]]


def test_replica_set_keeps_its_count_around_pods_with_unreadable_labels_or_owners(client):
    odd_refs = pod("odd-refs")
    odd_refs["metadata"]["ownerReferences"] = "web"
    odd_labels = pod("odd-labels")
    odd_labels["metadata"]["labels"] = ["app=web"]
    client.create(odd_refs)
    client.create(odd_labels)
    client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "c",
                                                                  "image": "netsim/echo"}]}}}})
    ReplicaSetController(client).reconcile("default/web")
    owned = [p for p in client.list("pods") if p["metadata"]["name"].startswith("web-")]
    assert len(owned) == 2
    # neither odd pod was adopted (nor changed)
    assert client.get("pods", "odd-refs", "default")["metadata"]["ownerReferences"] == "web"
    assert "ownerReferences" not in client.get("pods", "odd-labels", "default")["metadata"]
