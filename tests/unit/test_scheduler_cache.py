"""The running scheduler reads its own cache (PodCache: bound pods' usage per node and the
pending pods, kept by the pods informer) instead of recounting every pod on every pass
(issue #16: O(P) per pass, O(P^2) per rollout). What a user sees must not change: the
same spreading, maxPods and host ports counted, room made by a finished or deleted pod
used at once. The cache itself is checked against a recount from the pods."""

from __future__ import annotations

import copy

from netsim.controllers.scheduler import NodeUsage, PodCache, Scheduler
from netsim.machinery import InformerFactory
from tests.conftest import wait_for
from tests.unit.test_scheduler import client, node, pod, seed_nodes  # noqa: F401 - fixture


def _bound(c) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"].get("nodeName")
            for p in c.list("pods", "default")}


def _same(a: NodeUsage, b: NodeUsage) -> bool:
    clean = lambda c: {k: v for k, v in c.items() if v}  # noqa: E731 - zero counts are none
    return (clean(a.total) == clean(b.total) and clean(a.live) == clean(b.live)
            and clean(a.cpu) == clean(b.cpu) and clean(a.mem) == clean(b.mem)
            and {n: clean(c) for n, c in a.owners.items() if clean(c)}
            == {n: clean(c) for n, c in b.owners.items() if clean(c)}
            and {n: p for n, p in a.ports.items() if p} == {n: p for n, p in b.ports.items() if p})


def test_running_scheduler_spreads_counts_ports_and_frees_room(client):  # noqa: F811
    small = node("n1")
    small["status"]["allocatable"]["pods"] = "2"
    seed_nodes(client, small, node("n2"))
    factory = InformerFactory(client)
    sched = Scheduler(client, informers=factory)
    sched.start()
    factory.start()
    try:
        for i in range(6):
            client.create(pod(f"web-{i}", owner="rs", stamp=i))
        wait_for(lambda: all(_bound(client).values()), 10, 0.02, what="6 pods bound")
        placed = _bound(client)
        assert sorted(placed.values()).count("n1") == 2  # maxPods 2
        # host port 80 on n2 taken: a second pod with it can only go to n1, which is full
        client.create(pod("hp-1", ports=[{"containerPort": 80, "hostPort": 80}], stamp=10))
        wait_for(lambda: _bound(client)["hp-1"], 10, 0.02, what="hp-1 bound")
        assert _bound(client)["hp-1"] == "n2"
        client.create(pod("hp-2", ports=[{"containerPort": 80, "hostPort": 80}], stamp=11))
        wait_for(lambda: any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                             for c in (client.get("pods", "hp-2").get("status") or {})
                             .get("conditions") or []), 10, 0.02, what="hp-2 unschedulable")
        # a pod on n1 finishes: its room is used at once (no backoff wait for a change)
        on_n1 = next(n for n, where in placed.items() if where == "n1")
        done = client.get("pods", on_n1)
        done["status"] = {"phase": "Succeeded"}
        client.update_status(done)
        wait_for(lambda: _bound(client)["hp-2"], 10, 0.02, what="hp-2 bound after room freed")
        assert _bound(client)["hp-2"] == "n1"
        # the cache is what a recount of the pods gives, once the informer has the binding

        def caught_up() -> bool:
            usage, pending, _ = sched._cache.snapshot()
            return pending == [] and _same(usage, NodeUsage(client.list("pods", "default")))
        wait_for(caught_up, 10, 0.02, what="the cache to equal a recount")
    finally:
        sched.stop()
        factory.stop()


def test_cache_updates_and_deletes_count_as_a_recount():
    cache = PodCache()
    pods = []
    for i in range(5):
        p = pod(f"p{i}", owner="rs", ports=[{"containerPort": 81, "hostPort": 81}] if i == 0
                else None, requests={"cpu": "100m", "memory": "64Mi"})
        p["metadata"]["uid"] = f"u{i}"
        cache.put(copy.deepcopy(p))  # pending
        p["spec"]["nodeName"] = "n1" if i % 2 else "n2"
        cache.put(copy.deepcopy(p))  # bound
        pods.append(p)
    assert _same(cache.snapshot()[0], NodeUsage(pods))
    pods[1]["status"] = {"phase": "Failed"}
    cache.put(copy.deepcopy(pods[1]))
    freed = cache.snapshot()[2]
    cache.delete(copy.deepcopy(pods[0]))  # the host port's holder
    usage, pending, freed2 = cache.snapshot()
    assert _same(usage, NodeUsage(pods[1:])) and pending == [] and freed2 == freed + 1
    assert usage.ports.get("n2", set()) == set()
