"""The pod garbage collector (upstream podgc) on an in-process store: orphans of a deleted
Node after the quarantine, terminating pods of an out-of-service node, the terminated-pod
threshold."""

from __future__ import annotations

import pytest

from netsim.api.client import LocalClient
from netsim.controllers.podgc import OUT_OF_SERVICE, PodGCController


class Recording(LocalClient):
    """Keeps the pod statuses written, to see what a pod was marked before it went."""

    def __init__(self, store):
        super().__init__(store)
        self.statuses: dict[str, dict] = {}

    def update_status(self, obj):
        out = super().update_status(obj)
        self.statuses[obj["metadata"]["name"]] = out["status"]
        return out


@pytest.fixture
def client(store):  # tests/unit/conftest.py's store
    return Recording(store)


def node(client, name, ready="True", taints=None):
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                   "spec": {"taints": taints} if taints else {}})
    n = client.get("nodes", name)
    n["status"] = {"conditions": [{"type": "Ready", "status": ready}]}
    client.update_status(n)


def pod(client, name, node_name, phase="Running"):
    client.create({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "default"},
                   "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "echo"}]}})
    p = client.get("pods", name, "default")
    p["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}
    client.update_status(p)


def names(client) -> set[str]:
    return {p["metadata"]["name"] for p in client.list("pods", "default")}


def test_orphans_go_after_the_quarantine_marked_failed_by_podgc(client):
    node(client, "n1")
    pod(client, "kept", "n1")
    pod(client, "orphan", "gone")
    pod(client, "back", "later")
    client.statuses.clear()
    gc = PodGCController(client, quarantine=40)
    assert gc.sweep(now=0) == 0
    node(client, "later")  # the node shows up within its quarantine: its pod stays
    assert gc.sweep(now=39) == 0
    assert gc.sweep(now=41) == 1
    assert names(client) == {"kept", "back"}
    status = client.statuses["orphan"]
    assert status["phase"] == "Failed"
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True", "DeletionByPodGC", "PodGC: node no longer exists")
    assert [c["type"] for c in status["conditions"]] == ["Ready", "DisruptionTarget"]


def test_a_node_seen_again_ends_its_quarantine(client):
    """A node removed, added again (seen by a sweep) and removed once more: its pods get a
    whole quarantine from the second removal, not what was left of the first."""
    pod(client, "old", "n1")
    gc = PodGCController(client, quarantine=40)
    assert gc.sweep(now=0) == 0  # n1 missing: quarantined until 40
    client.delete("pods", "old", "default", grace_period_seconds=0)
    node(client, "n1")
    pod(client, "new", "n1")
    assert gc.sweep(now=20) == 0  # n1 exists again
    client.delete("nodes", "n1")
    assert gc.sweep(now=41) == 0  # gone again at 41: quarantined until 81
    assert names(client) == {"new"}
    assert gc.sweep(now=82) == 1
    assert names(client) == set()


def test_terminating_pods_of_an_out_of_service_node_are_force_deleted(client):
    taint = [{"key": OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoExecute"}]
    node(client, "down", ready="False", taints=taint)
    node(client, "up", taints=taint)  # Ready: the taint alone is not enough
    pod(client, "stuck", "down")
    pod(client, "running", "down")
    pod(client, "graceful", "up")
    for n in ("stuck", "graceful"):
        client.delete("pods", n, "default")  # Terminating: no kubelet finishes it
    client.statuses.clear()
    assert PodGCController(client).sweep(now=0) == 1
    assert names(client) == {"running", "graceful"}
    assert client.statuses["stuck"]["phase"] == "Failed"
    assert not any(c["type"] == "DisruptionTarget"
                   for c in client.statuses["stuck"].get("conditions", []))


def test_terminated_pods_above_the_threshold_oldest_first(client):
    node(client, "n1")
    for n in ("a", "b", "c"):
        pod(client, n, "n1", phase="Succeeded")
    pod(client, "live", "n1")
    client.statuses.clear()
    assert PodGCController(client, threshold=2).sweep(now=0) == 1
    assert names(client) == {"b", "c", "live"}
    assert "a" not in client.statuses  # already terminated: deleted as it is
