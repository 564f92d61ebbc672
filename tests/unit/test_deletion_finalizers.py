"""DELETE of an object with finalizers, as upstream's generic registry answers it: the
object stays, marked (deletionTimestamp, deletionGracePeriodSeconds, a generation bump),
until an update takes its last finalizer, and then it is gone. A pod with a grace period
left waits for its kubelet's final delete; one not on a node, or finished, is marked with
grace 0 and goes with its last finalizer. Before, the store removed such pods at once."""

from __future__ import annotations

from netsim.api.timeutil import parse_rfc3339

FIN = "example.com/hold"


def _pod(name: str, node: str = "", finalizers: list | None = None, grace: int = 30) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "echo"}],
                  "terminationGracePeriodSeconds": grace}
    if node:
        spec["nodeName"] = node
    md: dict = {"name": name, "namespace": "default"}
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def _drop_finalizers(client, plural: str, name: str) -> None:
    obj = client.get(plural, name, "default")
    obj["metadata"]["finalizers"] = []
    client.update(obj)


def _gone(client, plural: str, name: str) -> bool:
    return all(o["metadata"]["name"] != name for o in client.list(plural, "default"))


def test_an_unscheduled_pod_with_a_finalizer_stays_until_it_is_taken(client):
    client.create(_pod("p", finalizers=[FIN]))
    client.delete("pods", "p", "default")
    md = client.get("pods", "p", "default")["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 0
    assert md["generation"] == 2 and md["finalizers"] == [FIN]
    rv = md["resourceVersion"]
    client.delete("pods", "p", "default")  # again: nothing changes, no new version
    assert client.get("pods", "p", "default")["metadata"]["resourceVersion"] == rv
    _drop_finalizers(client, "pods", "p")
    assert _gone(client, "pods", "p")


def test_a_pod_on_a_node_waits_for_the_kubelet_then_for_its_finalizer(client):
    client.create(_pod("p", node="n1", finalizers=[FIN], grace=30))
    client.delete("pods", "p", "default")
    md = client.get("pods", "p", "default")["metadata"]
    assert md["deletionGracePeriodSeconds"] == 30
    asked = parse_rfc3339(md["deletionTimestamp"])
    obj = client.get("pods", "p", "default")
    obj["metadata"]["finalizers"] = []
    client.update(obj)  # finalizer gone, but the kubelet has not finished: it stays
    assert not _gone(client, "pods", "p")
    obj = client.get("pods", "p", "default")
    obj["metadata"]["finalizers"] = [FIN]
    client.update(obj)
    client.delete("pods", "p", "default", 0)  # the kubelet's final delete
    md = client.get("pods", "p", "default")["metadata"]
    assert md["deletionGracePeriodSeconds"] == 0
    # shortened from when the deletion was asked for, not from now
    assert (asked - parse_rfc3339(md["deletionTimestamp"])).total_seconds() == 30
    _drop_finalizers(client, "pods", "p")
    assert _gone(client, "pods", "p")


def test_pods_without_finalizers_go_as_before(client):
    client.create(_pod("free"))
    client.delete("pods", "free", "default")
    assert _gone(client, "pods", "free")
    client.create(_pod("bound", node="n1", grace=30))
    client.delete("pods", "bound", "default")
    assert client.get("pods", "bound", "default")["metadata"]["deletionGracePeriodSeconds"] == 30
    client.delete("pods", "bound", "default", 60)  # a longer grace period changes nothing
    assert client.get("pods", "bound", "default")["metadata"]["deletionGracePeriodSeconds"] == 30
    client.delete("pods", "bound", "default", 0)
    assert _gone(client, "pods", "bound")


def test_other_kinds_are_marked_with_grace_zero(client):
    client.create({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cm", "namespace": "default", "finalizers": [FIN]}})
    client.delete("configmaps", "cm", "default")
    md = client.get("configmaps", "cm", "default")["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 0
    _drop_finalizers(client, "configmaps", "cm")
    assert _gone(client, "configmaps", "cm")
