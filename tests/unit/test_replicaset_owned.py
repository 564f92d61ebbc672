"""A running ReplicaSet controller reads only the pods it may claim (its own and the
namespace's orphans, by an index) instead of every pod of the namespace on each sync,
twice (issue #16): what it adopts, releases and counts must stay what it was."""

from __future__ import annotations

from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.controllers.replicaset import ReplicaSetController, rs_status
from netsim.machinery import InformerFactory
from tests.conftest import wait_for


def _rs(name: str, replicas: int, app: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "c", "image": "echo"}]}}}}


def _pod(name: str, labels: dict, owner: dict | None = None) -> dict:
    md: dict = {"name": name, "namespace": "default", "labels": labels}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": owner["metadata"]["name"],
                                  "uid": owner["metadata"]["uid"], "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": "echo"}]}}


def test_running_controller_adopts_orphans_counts_its_own_and_leaves_others():
    store = Store(":memory:")
    store.bootstrap()
    client = LocalClient(store)
    factory = InformerFactory(client)
    ctl = ReplicaSetController(client, informers=factory)
    try:
        other = _rs("other", 1, "web")
        other["spec"]["selector"]["matchLabels"]["tier"] = "x"
        other["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
        other = client.create(other)
        theirs = {"app": "web", "tier": "x"}
        client.create(_pod("theirs", theirs, owner=other))           # matches, owned elsewhere
        client.create(_pod("orphan", {"app": "web"}))                # matches, no owner
        client.create(_pod("stranger", {"app": "db"}))               # matches nothing
        ctl.start()
        factory.start()
        web = client.create(_rs("web", 3, "web"))

        def owners() -> dict[str, str | None]:
            return {p["metadata"]["name"]: next(
                (r["name"] for r in p["metadata"].get("ownerReferences") or []), None)
                for p in client.list("pods", "default")}
        wait_for(lambda: list(owners().values()).count("web") == 3, 10, 0.02,
                 what="3 pods of web")
        got = owners()
        assert got["orphan"] == "web" and got["theirs"] == "other" and got["stranger"] is None
        wait_for(lambda: (client.get("replicasets", "web", "default").get("status") or {})
                 .get("replicas") == 3, 10, 0.02, what="web's status counts 3")
        # one of its own relabelled: released, and a new one made in its place
        mine = client.get("pods", "orphan", "default")
        mine["metadata"]["labels"] = {"app": "moved"}
        client.update(mine)
        wait_for(lambda: owners().get("orphan") is None and
                 list(owners().values()).count("web") == 3, 10, 0.02,
                 what="orphan released, replaced")
        assert web["metadata"]["uid"]
    finally:
        ctl.stop()
        factory.stop()
        store.close()


def test_status_counts_ready_available_and_labelled_in_one_pass():
    rs = _rs("web", 3, "web")
    rs["spec"]["minReadySeconds"] = 10
    rs["metadata"]["generation"] = 2

    def pod(ready: str | None, since: str, labels: dict) -> dict:
        p = _pod("p", labels)
        if ready is not None:
            p["status"] = {"conditions": [{"type": "Ready", "status": ready,
                                           "lastTransitionTime": since}]}
        return p
    t0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    pods = [pod("True", "2027-01-15T08:00:00Z", {"app": "web", "x": "1"}),   # available
            pod("True", "2027-01-15T08:00:15Z", {"app": "web"}),             # ready, too new
            pod("False", "2027-01-15T07:00:00Z", {"app": "web"}),
            pod(None, "", {"app": "other"})]
    assert rs_status(rs, pods, t0 + 20) == {
        "replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 2, "availableReplicas": 1,
        "observedGeneration": 2}


def test_pod_events_queue_the_replicaset_once_per_batch_period():
    """A sync reads every pod of the ReplicaSet: a pod update that changes nothing it reads
    (a container's state, the binding) queues nothing, and after a sync other pod events
    wait until 10x its CPU has passed (at most batch_seconds), so a rollout of P pods is not P^2."""
    import copy
    import time

    store = Store(":memory:")
    store.bootstrap()
    client = LocalClient(store)
    ctl = ReplicaSetController(client)
    web = client.create(_rs("web", 1, "web"))
    pod = client.create(_pod("web-1", {"app": "web"}, owner=web))
    bound = copy.deepcopy(pod)
    bound["spec"]["nodeName"] = "node-1"
    bound["status"] = {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}
    ctl._enqueue("pods", pod, bound)
    assert ctl.queue.get(timeout=0) is None  # nothing the sync reads changed
    ready = copy.deepcopy(bound)
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    ctl._enqueue("pods", bound, ready)  # never synced: at once
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.queue.done("default/web")
    ctl.batch.began["default/web"] = time.monotonic()  # a sync began...
    ctl.batch.cost["default/web"] = 1.0  # ...an expensive one: the whole batch_seconds
    ctl._enqueue("pods", ready, bound)
    assert ctl.queue.get(timeout=0) is None  # held back...
    t = time.monotonic()
    assert ctl.queue.get(timeout=5) == "default/web"  # ...until the period is over
    assert time.monotonic() - t <= ctl.batch_seconds + 0.5
    ctl.queue.done("default/web")
    ctl._enqueue("replicasets", web)  # the ReplicaSet's own changes never wait
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.queue.done("default/web")
    ctl.batch.began["default/web"] = time.monotonic()
    counted = copy.deepcopy(web)
    counted["status"] = {"replicas": 1, "readyReplicas": 1}
    counted["metadata"]["resourceVersion"] = "999"
    ctl._enqueue("replicasets", web, counted)  # a status write (its own) waits as pods do
    assert ctl.queue.get(timeout=0) is None
    assert ctl.queue.get(timeout=5) == "default/web"
    ctl.queue.done("default/web")
    scaled = copy.deepcopy(counted)
    scaled["spec"]["replicas"] = 3
    ctl._enqueue("replicasets", counted, scaled)  # a spec change: at once
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.queue.done("default/web")
    client.delete("replicasets", "web")
    ctl.reconcile("default/web")  # gone: nothing kept for it
    assert "default/web" not in ctl.batch.began


def test_a_sync_creates_and_deletes_at_most_a_burst_and_counts_them(monkeypatch):
    """Upstream's BurstReplicas: a scale from 0 to 12 with a burst of 5 is three syncs, and
    the status counts 5, 10, 12 as they go (at 5,000 replicas `get rs` showed CURRENT 0 for
    minutes, the one sync creating every pod before writing any status); down likewise."""
    from netsim.controllers import replicaset

    monkeypatch.setattr(replicaset, "BURST_REPLICAS", 5)
    store = Store(":memory:")
    store.bootstrap()
    client = LocalClient(store)
    factory = InformerFactory(client)
    ctl = ReplicaSetController(client, informers=factory)
    counted: list[int] = []
    write = client.update_status

    def update_status(obj: dict) -> dict:
        counted.append(obj["status"].get("replicas", 0))
        return write(obj)
    monkeypatch.setattr(client, "update_status", update_status)
    try:
        ctl.start()
        factory.start()
        client.create(_rs("web", 12, "web"))
        wait_for(lambda: counted[-1:] == [12], 10, 0.02, what="web's status counts 12")
        assert counted == [5, 10, 12]
        assert len(client.list("pods", "default")) == 12
        counted.clear()
        rs = client.get("replicasets", "web", "default")
        rs["spec"]["replicas"] = 1
        client.update(rs)
        wait_for(lambda: counted[-1:] == [1], 10, 0.02, what="web's status counts 1")
        assert counted == [7, 2, 1]
    finally:
        ctl.stop()
        factory.stop()
        store.close()
