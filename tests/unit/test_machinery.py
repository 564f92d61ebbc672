"""netsim.machinery: informers, the indexed cache and the work queue, against a real Store.

Everything waits on conditions with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time

import pytest

from netsim.api import errors
from netsim.api.admission import admit
from netsim.api.client import HttpClient, LocalClient
from netsim.api.server import serve
from netsim.api.store import Store
from netsim.machinery import (
    Backoff,
    DeletedFinalStateUnknown,
    FreshLister,
    Indexer,
    InformerFactory,
    ItemBackoff,
    Reflector,
    SharedInformer,
    TrackingClient,
    WorkQueue,
    controller_uid_index,
    label_index,
    node_name_index,
)
from tests.conftest import wait_for


def pod(name: str, node: str = "", ns: str = "default", labels: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "echo"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "web"}},
            "spec": spec}


class Recorder:
    """Handler callbacks that remember what they were told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def add(self, obj):
        with self.lock:
            self.events.append(("add", obj["metadata"]["name"], obj))

    def update(self, old, new):
        with self.lock:
            self.events.append(("update", new["metadata"]["name"], old, new))

    def delete(self, obj):
        with self.lock:
            self.events.append(("delete", obj["metadata"]["name"], obj))

    def names(self, kind: str) -> list[str]:
        with self.lock:
            return [e[1] for e in self.events if e[0] == kind]

    def register(self, inf: SharedInformer) -> None:
        inf.add_handler(on_add=self.add, on_update=self.update, on_delete=self.delete)


@contextlib.contextmanager
def running(*informers: SharedInformer):
    for inf in informers:
        inf.start()
    try:
        yield
    finally:
        for inf in informers:
            inf.stop()
        for inf in informers:
            assert inf.join(3.0), f"informer {inf.resource} did not stop within 3 s"


# ---- informer: list, watch, handlers ------------------------------------------------------------
def test_initial_list_fills_cache_and_has_synced(client):
    client.create(pod("a", "n1"))
    client.create(pod("b", "n2"))
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    client.create(pod("c", "n1", ns="other"))
    inf = SharedInformer(client, "pods", {"node": node_name_index})
    rec = Recorder()
    rec.register(inf)
    assert not inf.has_synced()
    with running(inf):
        assert inf.wait_for_sync(5.0)
        assert inf.has_synced()
        assert sorted(rec.names("add")) == ["a", "b", "c"]
        assert inf.indexer.get("default/a")["spec"]["nodeName"] == "n1"
        assert [p["metadata"]["name"] for p in inf.indexer.list("default")] == ["a", "b"]
        assert [p["metadata"]["name"] for p in inf.indexer.by_index("node", "n1")] == ["a", "c"]
        # the API's order: by namespace, then name
        assert [p["metadata"]["name"] for p in inf.indexer.list()] == ["a", "b", "c"]


def test_events_reach_handlers_in_order(client):
    inf = SharedInformer(client, "pods")
    rec = Recorder()
    rec.register(inf)
    with running(inf):
        assert inf.wait_for_sync(5.0)
        client.create(pod("a"))
        wait_for(lambda: rec.names("add") == ["a"], 5, what="add of a")
        p = client.get("pods", "a")
        p["metadata"]["labels"] = {"app": "db"}
        client.update(p)
        wait_for(lambda: rec.names("update") == ["a"], 5, what="update of a")
        _, _, old, new = [e for e in rec.events if e[0] == "update"][0]
        assert old["metadata"]["labels"] == {"app": "web"}
        assert new["metadata"]["labels"] == {"app": "db"}
        client.delete("pods", "a")  # not on a node: deleted at once
        wait_for(lambda: rec.names("delete") == ["a"], 5, what="delete of a")
        assert inf.indexer.get("default/a") is None
        assert not isinstance(rec.events[-1][2], DeletedFinalStateUnknown)


def test_late_handler_is_told_of_cached_objects(client):
    client.create(pod("a"))
    factory = InformerFactory(client)
    inf = factory.informer("pods")
    assert factory.informer("pods") is inf  # one informer (one watch) per resource
    factory.start()
    try:
        assert factory.wait_for_sync(5.0)
        rec = Recorder()
        rec.register(inf)
        assert rec.names("add") == ["a"]
        client.create(pod("b"))
        wait_for(lambda: rec.names("add") == ["a", "b"], 5, what="add of b")
    finally:
        factory.stop()
        assert factory.join(3.0)


class LossyClient(LocalClient):
    """A LocalClient whose watches can drop events (`lose`) and then expire (`expire`):
    what a consumer sees when its watch falls out of the API server's event log."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.lose = threading.Event()
        self.expire = threading.Event()

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None):
        for etype, obj in super().watch(resource, namespace, resource_version, timeout,
                                        label_selector):
            if self.expire.is_set():
                self.expire.clear()
                self.lose.clear()
                raise errors.Gone(f"too old resource version: {resource_version}")
            if self.lose.is_set() and etype != "BOOKMARK":
                continue
            yield etype, obj


def test_gone_relists_and_reconciles_missed_changes(store):
    client = LossyClient(store)
    for n in ("a", "b", "c"):
        client.create(pod(n))
    inf = SharedInformer(client, "pods")
    rec = Recorder()
    rec.register(inf)
    with running(inf):
        assert inf.wait_for_sync(5.0)
        client.lose.set()
        client.delete("pods", "b")
        p = client.get("pods", "a")
        p["metadata"]["labels"] = {"app": "db"}
        client.update(p)
        client.create(pod("d"))
        client.expire.set()
        wait_for(lambda: "b" in rec.names("delete"), 5, what="the missed delete of b")
        gone = [e[2] for e in rec.events if e[0] == "delete"][0]
        assert isinstance(gone, DeletedFinalStateUnknown) and gone.key == "default/b"
        assert gone["metadata"]["name"] == "b"  # the last state the cache knew
        assert inf.reflector.lists == 2
        assert sorted(inf.indexer.keys()) == ["default/a", "default/c", "default/d"]
        assert inf.indexer.get("default/a")["metadata"]["labels"] == {"app": "db"}
        assert rec.names("update") == ["a"] and "d" in rec.names("add")
        # and it watches on from the relist
        client.create(pod("e"))
        wait_for(lambda: "e" in rec.names("add"), 5, what="add of e after the relist")


def test_expired_resource_version_is_gone_on_both_transports():
    """A watch from a version the store's event log no longer holds: LocalClient raises
    Gone; over HTTP the ERROR event becomes Gone too; the reflector relists either way."""
    store = Store(":memory:", admission=admit, history=3)
    store.bootstrap()
    tmp = tempfile.mkdtemp(prefix="nsm-")
    srv = serve(store, os.path.join(tmp, "api.sock"))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        local = LocalClient(store)
        for i in range(6):
            local.create(pod(f"p{i}"))
        http = HttpClient(path=os.path.join(tmp, "api.sock"), timeout=5)
        for c in (local, http):
            with pytest.raises(errors.Gone):
                next(iter(c.watch("pods", resource_version=1, timeout=2)))
            r = Reflector(c, "pods", sink=_NullSink(), backoff=Backoff(0.01, 0.01, jitter=0))
            r.resource_version = 1
            with pytest.raises(errors.ApiError) as e:
                r._watch()
            assert e.value.code == 410
        inf = SharedInformer(http, "pods")
        rec = Recorder()
        rec.register(inf)
        with running(inf):
            assert inf.wait_for_sync(5.0)
            assert len(rec.names("add")) == 6
            local.delete("pods", "p0")
            wait_for(lambda: rec.names("delete") == ["p0"], 5, what="delete over HTTP")
    finally:
        srv.shutdown()
        srv.server_close()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


class _NullSink:
    def replace(self, items, rv):
        pass

    def apply(self, etype, obj):
        pass

    def bookmark(self, rv):
        pass


# ---- backoff and stop ------------------------------------------------------------------------
def test_backoff_grows_to_cap_and_resets():
    b = Backoff(initial=0.1, cap=0.8, factor=2.0, jitter=0.0)
    assert [round(b.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    b.reset()
    assert b.next() == 0.1
    j = Backoff(initial=1.0, cap=1.0, jitter=0.5)
    for _ in range(50):
        assert 1.0 <= j.next() <= 1.5


class _RecordingBackoff(Backoff):
    def __init__(self):
        super().__init__(initial=0.01, cap=0.08, jitter=0.0)
        self.delays: list[float] = []
        self.resets = 0

    def next(self):
        d = super().next()
        self.delays.append(d)
        return d

    def reset(self):
        self.resets += 1
        super().reset()


class FlakyClient(LocalClient):
    """Lists fail while `down` is set (an API server that is away)."""

    def __init__(self, store):
        super().__init__(store)
        self.down = threading.Event()
        self.down.set()
        self.calls = 0

    def list_rv(self, resource, namespace=None, label_selector=None):
        self.calls += 1
        if self.down.is_set():
            raise errors.ApiError("The connection to the netsim API server was refused",
                                  code=503)
        return super().list_rv(resource, namespace, label_selector)


def test_reflector_backs_off_while_failing_and_resets_after_a_healthy_watch(store):
    client = FlakyClient(store)
    inf = SharedInformer(client, "pods")
    b = inf.reflector.backoff = _RecordingBackoff()
    with running(inf):
        wait_for(lambda: len(b.delays) >= 5, 5, what="five failed lists")
        assert b.delays[:5] == [0.01, 0.02, 0.04, 0.08, 0.08]  # grows to the cap
        assert not inf.has_synced()
        client.down.clear()
        assert inf.wait_for_sync(5.0)
        client.create(pod("a"))  # the watch delivers: healthy again
        wait_for(lambda: b.resets >= 1, 5, what="a backoff reset")
        assert b._step == b.initial


def test_stop_ends_threads_promptly_while_backing_off_and_while_watching(store):
    failing = FlakyClient(store)
    inf = SharedInformer(failing, "pods")
    inf.reflector.backoff = Backoff(initial=30.0, cap=30.0, jitter=0.0)  # a long wait
    inf.start()
    wait_for(lambda: failing.calls >= 1, 5, what="the first list")
    t0 = time.monotonic()
    inf.stop()
    assert inf.join(1.0), "stop did not interrupt the backoff wait"
    assert time.monotonic() - t0 < 1.0

    ok = SharedInformer(LocalClient(store), "pods")
    ok.start()
    assert ok.wait_for_sync(5.0)
    t0 = time.monotonic()
    ok.stop()
    assert ok.join(3.0), "stop did not end an idle watch"


def test_stop_ends_an_informer_over_http_promptly_while_its_resource_is_quiet():
    """Over the unix socket, with another resource busy: the watch's bookmarks let the
    reflector see stop() within about a second, not when the 60-120 s watch ends."""
    store = Store(":memory:", admission=admit)
    store.bootstrap()
    tmp = tempfile.mkdtemp(prefix="nsm-")
    srv = serve(store, os.path.join(tmp, "api.sock"))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    busy = threading.Event()

    def churn():
        i = 0
        while not busy.wait(0.05):
            store.create({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": f"c{i}", "namespace": "default"}})
            i += 1

    writer = threading.Thread(target=churn, daemon=True)
    writer.start()
    try:
        inf = SharedInformer(HttpClient(path=os.path.join(tmp, "api.sock"), timeout=5), "pods")
        assert inf.reflector.watch_timeout[0] >= 60  # the watch itself would last a minute
        inf.start()
        assert inf.wait_for_sync(5.0)
        # it watches (and takes the bookmarks' versions) before it is stopped
        listed = inf.reflector.resource_version
        wait_for(lambda: inf.reflector.resource_version > listed, 5,
                 what="a bookmark advancing the quiet watch's resourceVersion")
        t0 = time.monotonic()
        inf.stop()
        assert inf.join(2.0), "stop did not end the informer's HTTP watch within 2 s"
        assert time.monotonic() - t0 < 2.0
        assert inf.reflector.lists == 1
    finally:
        busy.set()
        writer.join(5)
        srv.shutdown()
        srv.server_close()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the cache -----------------------------------------------------------------------------------
def test_indexer_keys_indexes_and_moves():
    idx = Indexer({"node": node_name_index, "owner": controller_uid_index,
                   "svc": label_index("kubernetes.io/service-name")})
    a = pod("a", "n1")
    a["metadata"]["ownerReferences"] = [{"uid": "u1", "controller": True, "name": "rs"}]
    idx.upsert(a)
    idx.upsert(pod("b", "n2", labels={"kubernetes.io/service-name": "web"}))
    idx.upsert({"kind": "Node", "metadata": {"name": "n1"}})
    assert idx.get("default/a") is a
    assert idx.get_by_name("n1")["kind"] == "Node"  # cluster-scoped: the name is the key
    assert [o["metadata"]["name"] for o in idx.by_index("owner", "u1")] == ["a"]
    assert [o["metadata"]["name"] for o in idx.by_index("svc", "web")] == ["b"]
    moved = pod("a", "n2")
    assert idx.upsert(moved) is a
    assert idx.by_index("node", "n1") == [] and idx.by_index("owner", "u1") == []
    assert [o["metadata"]["name"] for o in idx.by_index("node", "n2")] == ["a", "b"]
    idx.add_indexers({"app": label_index("app")})  # built over what is there
    assert len(idx.by_index("app", "web")) == 1
    assert idx.delete("default/b") is not None
    assert idx.by_index("svc", "web") == [] and len(idx) == 2
    assert idx.index_values("node") == ["", "n2"]  # the Node has no spec.nodeName
    with pytest.raises(KeyError):
        idx.by_index("nope", "x")


def test_indexer_lists_stay_in_api_order_through_adds_moves_and_deletes():
    """The cache keeps each index bucket's order between changes of its members: every
    list still comes back in the API's order (namespace, then name), as a fresh sort."""
    import random
    rnd = random.Random(3)
    idx = Indexer({"app": label_index("app")})
    model: dict[str, dict] = {}
    for step in range(3000):
        ns = rnd.choice(["a", "a-b", "b"])
        obj = pod(f"p{rnd.randint(0, 30)}", ns=ns, labels={"app": rnd.choice("xy")})
        key = f"{ns}/{obj['metadata']['name']}"
        if rnd.random() < 0.7:
            idx.upsert(obj)
            model[key] = obj
        else:
            idx.delete(key)
            model.pop(key, None)
        if step % 5 == 0:
            want = sorted(model.values(), key=lambda o: (o["metadata"]["namespace"],
                                                         o["metadata"]["name"]))
            assert idx.list() == want
            assert idx.list("a") == [o for o in want if o["metadata"]["namespace"] == "a"]
            assert idx.by_index("app", "x") == [o for o in want
                                                if o["metadata"]["labels"]["app"] == "x"]


def test_fresh_lister_sees_own_writes(client):
    """A cache read right after the reader's own write reflects it."""
    tracking = TrackingClient(client)
    inf = SharedInformer(client, "pods")
    with running(inf):
        assert inf.wait_for_sync(5.0)
        lister = FreshLister(inf, tracking)
        for i in range(20):
            tracking.create(pod(f"p{i}"))
            assert len(lister.list("default")) == i + 1
        tracking.delete("pods", "p0")
        assert lister.get("default/p0") is None
        assert tracking.written("pods") == inf.resource_version


# ---- the work queue --------------------------------------------------------------------------------
def test_queue_dedups_and_keeps_order():
    q = WorkQueue()
    for k in ("a", "b", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", "c"]
    assert q.get(0.01) is None


def test_queue_never_gives_one_key_to_two_workers():
    q = WorkQueue()
    q.add("k")
    first = q.get(0)
    assert first == "k"
    got: list[str | None] = []
    release = threading.Event()

    def second_worker():
        got.append(q.get(0.3))  # "k" is dirty, not ready, while the first holds it
        release.set()
        got.append(q.get(5.0))

    t = threading.Thread(target=second_worker)
    t.start()
    q.add("k")
    assert release.wait(5.0)
    assert got == [None]
    q.done("k")  # the add that came meanwhile is served now
    t.join(5.0)
    assert got == [None, "k"]
    q.done("k")
    assert q.get(0.01) is None


def test_queue_many_workers_one_key_at_a_time():
    q = WorkQueue()
    holding: set[str] = set()
    lock = threading.Lock()
    overlaps: list[str] = []
    handled: list[str] = []

    def worker():
        while (key := q.get(2.0)) is not None:
            with lock:
                if key in holding:
                    overlaps.append(key)
                holding.add(key)
            for _ in range(3):
                q.add(key if len(handled) < 200 else "done")  # re-added while processing
            with lock:
                holding.discard(key)
                handled.append(key)
            q.done(key)
            if len(handled) >= 300:
                q.shutdown()

    for k in "abc":
        q.add(k)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
        assert not t.is_alive()
    assert overlaps == []
    assert len(handled) >= 200


def test_add_after_orders_by_time_and_keeps_the_earlier_wish():
    q = WorkQueue()
    t0 = time.monotonic()
    q.add_after("late", 0.3)
    q.add_after("soon", 0.1)
    q.add("now")
    q.add_after("soon", 1.0)   # a later wish does not push "soon" back
    assert q.get(0) == "now"
    assert q.get(0) is None    # nothing due yet
    assert q.get(2.0) == "soon"
    assert time.monotonic() - t0 >= 0.1
    assert q.get(2.0) == "late"
    assert time.monotonic() - t0 >= 0.3
    q.add(key="old-api", after=0.05)  # the old WorkQueue's add(key, after=...)
    assert q.get(2.0) == "old-api"


def test_rate_limiting_backs_off_per_item_and_forget_resets():
    limiter = ItemBackoff(base=0.01, cap=0.04)
    assert [limiter.when("x") for _ in range(4)] == [0.01, 0.02, 0.04, 0.04]
    assert limiter.when("y") == 0.01  # per item
    limiter.forget("x")
    assert limiter.when("x") == 0.01
    q = WorkQueue(ItemBackoff(base=0.05, cap=1.0))
    for expected in (0.05, 0.1, 0.2):
        t0 = time.monotonic()
        q.add_rate_limited("k")
        assert q.get(0) is None
        assert q.get(3.0) == "k"
        assert time.monotonic() - t0 >= expected
        q.done("k")
    assert q.num_requeues("k") == 3
    q.forget("k")
    assert q.num_requeues("k") == 0


def test_shutdown_wakes_waiting_workers():
    q = WorkQueue()
    out: list = []
    t = threading.Thread(target=lambda: out.append(q.get(30.0)))
    t.start()
    q.shutdown()
    t.join(2.0)
    assert not t.is_alive() and out == [None]
    q.add("x")
    assert q.get(0) is None


# ---- controllers on the machinery ----------------------------------------------------------------
def workload(kind: str, replicas: int) -> dict:
    """A ReplicaSet or Deployment `web` of `replicas` pods labelled app=web."""
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "echo"}]}}}}


def test_started_replicaset_controller_reads_its_cache_without_overshooting(client):
    """Created pods trigger reconciles before all their events are in; reads wait for the
    controller's own writes, so the pod count never goes past spec.replicas."""
    from netsim.controllers.replicaset import ReplicaSetController

    counts: list[int] = []
    watcher = SharedInformer(client, "pods")
    watcher.add_handler(on_add=lambda o: counts.append(len(watcher.indexer.list())))
    factory = InformerFactory(client)
    ctrl = ReplicaSetController(client, informers=factory)
    ctrl.start()
    try:
        with running(watcher):
            assert watcher.wait_for_sync(5.0)
            client.create(workload("ReplicaSet", 5))
            wait_for(lambda: (client.get("replicasets", "web", "default").get("status") or {})
                     .get("replicas") == 5, 10, what="status.replicas 5")
            assert len(client.list("pods", "default")) == 5
            assert max(counts) == 5
    finally:
        ctrl.stop()
        factory.stop()
        assert factory.join(3.0)


class CountingClient(LocalClient):
    """A LocalClient that counts the watches opened on each resource."""

    def __init__(self, store):
        super().__init__(store)
        self.watches: dict[str, int] = {}
        self._lock = threading.Lock()

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None):
        with self._lock:
            self.watches[resource] = self.watches.get(resource, 0) + 1
        return super().watch(resource, namespace, resource_version, timeout, label_selector)


def test_control_plane_controllers_share_one_watch_per_resource(store):
    """The control plane's own start_controllers on one factory: every controller reads the
    factory it was given, each resource is listed and watched once for all of them; a
    Deployment becomes pods on a node and Endpoints, scales down, and its deletion is
    garbage-collected; stop_controllers ends every informer."""
    from netsim.api.store import now_rfc3339
    from netsim.cluster.controlplane import CONTROLLERS, start_controllers, stop_controllers

    client = CountingClient(store)
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                   "status": {"conditions": [{"type": "Ready", "status": "True",
                                              "lastHeartbeatTime": now_rfc3339()}]}})
    factory = InformerFactory(client)
    ctrls = start_controllers(client, factory)
    stopped = False
    try:
        assert [type(c) for c in ctrls] == CONTROLLERS
        assert all(c.informers is factory for c in ctrls)
        assert factory.wait_for_sync(5.0)
        resources = [i.resource for i in factory.informers()]
        assert len(resources) == len(set(resources))
        assert {"pods", "nodes", "replicasets", "deployments", "services"} <= set(resources)
        wait_for(lambda: set(client.watches) == set(resources), 5, what="every informer watching")
        assert client.watches == dict.fromkeys(resources, 1)
        client.create({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        client.create(workload("Deployment", 3))

        def kubelet() -> list[dict]:
            """Bound pods become Running and Ready; terminating ones go."""
            pods = client.list("pods", "default")
            for i, p in enumerate(pods):
                if p["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(errors.NotFound):
                        client.delete("pods", p["metadata"]["name"], "default", 0)
                elif p["spec"].get("nodeName") and p["status"].get("phase") != "Running":
                    p["status"].update(phase="Running", podIP=f"10.244.1.{10 + i}",
                                       conditions=[{"type": "Ready", "status": "True",
                                                    "lastTransitionTime": now_rfc3339()}])
                    with contextlib.suppress(errors.Conflict):
                        client.update_status(p)
            return pods

        def ready_addresses() -> int:
            kubelet()
            ep = client.get_or_none("endpoints", "web", "default") or {}
            return sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])

        wait_for(lambda: ready_addresses() == 3, 15, what="3 ready endpoints")
        assert len(client.list("pods", "default")) == 3
        assert {p["spec"]["nodeName"] for p in client.list("pods", "default")} == {"n1"}
        client.patch("deployments", "web", "default", {"spec": {"replicas": 1}})
        wait_for(lambda: len(kubelet()) == 1 and ready_addresses() == 1, 15,
                 what="scaled to 1")
        client.delete("deployments", "web", "default")
        wait_for(lambda: not kubelet() and not client.list("replicasets", "default"), 15,
                 what="the ReplicaSet and pods garbage-collected")
        # no relist, no second watch, for any informer (one asked for later included)
        assert all(i.reflector.lists == 1 for i in factory.informers())
        assert client.watches == {i.resource: 1 for i in factory.informers()}
        stopped = True
        stop_controllers(ctrls, factory)
        assert factory.join(3.0), "informers still running after stop_controllers"
        assert all(c.stopped.is_set() for c in ctrls)
    finally:
        if not stopped:
            stop_controllers(ctrls, factory)
