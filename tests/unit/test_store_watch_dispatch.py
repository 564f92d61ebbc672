"""A write wakes only the watches its object can reach (the apiserver's watch cache
dispatches each event to the watchers it matches): each node's kubelet watches its own
pods (fieldSelector spec.nodeName=<node>) and is not woken for every other node's pod
(issue #16: the wakeups were most of a write's cost). What each watch receives is
unchanged, including ADDED / DELETED when an object starts or stops matching."""

from __future__ import annotations

import threading

import pytest

from netsim.api import errors
from netsim.api.store import Store
from tests.conftest import wait_for


def _pod(name: str, node: str = "", labels: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "echo"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
            "spec": spec}


class Wakes:
    """Counts the notifications each watch of `store` gets."""

    def __init__(self, store: Store):
        self.counts: dict[str, int] = {}
        self.store = store

    def track(self, name: str, watcher) -> None:
        real = watcher.cond.notify
        self.counts[name] = 0

        def notify(n: int = 1) -> None:
            self.counts[name] += 1
            real(n)
        watcher.cond.notify = notify


def test_a_pod_write_wakes_its_nodes_watch_and_the_unfiltered_ones_only():
    store = Store(":memory:")
    store.bootstrap()
    got: dict[str, list] = {"a": [], "b": [], "all": []}
    streams = {
        "a": store.watch("pods", "default", store.resource_version, timeout=5,
                         field_selector="spec.nodeName=node-a"),
        "b": store.watch("pods", "default", store.resource_version, timeout=5,
                         field_selector="spec.nodeName=node-b"),
        "all": store.watch("pods", None, store.resource_version, timeout=5),
    }
    def run(name: str) -> None:
        for etype, obj in streams[name]:
            if etype != "BOOKMARK":
                got[name].append((etype, obj["metadata"]["name"]))
            if name == "all" and len(got["all"]) == 5:
                break
            if name != "all" and ("DELETED", "p2") in got[name]:
                break
    # start each generator (it registers its watch on the first next()) in its thread
    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in streams]
    for t in threads:
        t.start()
    wakes = Wakes(store)
    wait_for(lambda: sum(len(v) for v in store._watchers.values()) == 3, 5, 0.01,
             what="3 watches registered")
    ws = list(store._watchers["pods"])
    by = {("a" if w.passes and w.passes({}, {"spec.nodeName": "node-a"}) else
           "b" if w.passes else "all"): w for w in ws}
    for name, w in by.items():
        wakes.track(name, w)
    store.create(_pod("p1", "node-a"))
    store.create(_pod("p2", "node-a"))
    store.create(_pod("p3", "node-a"))
    p2 = store.get("pods", "p2")
    p2["spec"]["nodeName"] = "node-b"  # as if moved: it leaves a's watch, enters b's
    store.update(p2)
    store.delete("pods", "p2", grace_period_seconds=0)
    for t in threads:
        t.join(5)
    assert got["a"] == [("ADDED", "p1"), ("ADDED", "p2"), ("ADDED", "p3"), ("DELETED", "p2")]
    assert got["b"] == [("ADDED", "p2"), ("DELETED", "p2")]
    assert [e for e, _ in got["all"]] == ["ADDED", "ADDED", "ADDED", "MODIFIED", "DELETED"]
    assert wakes.counts["all"] == 5
    assert wakes.counts["a"] == 4  # p1, p2, p3 and p2 leaving; not its deletion on node-b
    assert wakes.counts["b"] == 2  # p2 arriving and going; none of node-a's pods
    store.close()


def test_a_watch_reads_only_its_resources_log_and_its_bookmark_follows_the_store():
    """Each resource has its own watch log: a pods watch woken after 300 ConfigMap writes
    reads its one pod event, not the 300 others; its BOOKMARK carries the store's version
    (it has seen everything up to there), so it resumes rather than gets 410."""
    store = Store(":memory:")
    store.bootstrap()
    start = store.resource_version
    store.BOOKMARK_AFTER = 0.05
    for i in range(300):
        store.create({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": f"cm{i}", "namespace": "default"}})
    store.create(_pod("p1"))
    stream = store.watch("pods", "default", start, timeout=5)
    assert [(t, o["metadata"]["name"]) for t, o in [next(stream)]] == [("ADDED", "p1")]
    assert len(store._events_by["pods"]) == 1 and len(store._events_by["configmaps"]) == 300
    etype, mark = next(stream)
    assert etype == "BOOKMARK"
    assert mark["metadata"]["resourceVersion"] == str(store.resource_version)
    stream.close()


def test_a_watch_is_handed_only_the_changes_it_can_see():
    """A node's pod watch takes its own node's changes only, not every pod's (each of 50
    kubelet watches read every pod change when woken: O(nodes) per change); what it was
    handed before it registered comes from the log, in order."""
    store = Store(":memory:")
    store.bootstrap()
    start = store.resource_version
    store.create(_pod("early", "node-a"))
    store.create(_pod("other", "node-b"))
    stream = store.watch("pods", "default", start, timeout=5,
                         field_selector="spec.nodeName=node-a")
    assert next(stream)[1]["metadata"]["name"] == "early"  # the backlog, from the log
    (w,) = store._watchers["pods"]
    for i in range(20):
        store.create(_pod(f"b{i}", "node-b"))
    store.create(_pod("late", "node-a"))
    assert [e[0] for e in w.pending] == [store.resource_version]  # one: its own
    assert next(stream)[1]["metadata"]["name"] == "late"
    stream.close()
    store.close()


def test_a_watch_that_falls_a_whole_log_behind_ends_with_gone():
    """A watch that has not taken as many changes as the log holds is ended with 410
    (its client relists), as upstream's cacher ends a watcher too slow for its events,
    instead of holding its changes without bound."""
    store = Store(":memory:", history=10)
    store.bootstrap()
    stream = store.watch("pods", "default", store.resource_version, timeout=5)
    store.create(_pod("p0"))
    assert next(stream)[0] == "ADDED"
    for i in range(1, 15):
        store.create(_pod(f"p{i}"))
    with pytest.raises(errors.Gone):
        list(stream)
    store.close()
