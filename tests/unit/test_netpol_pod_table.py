"""The policy agent's pods, kept per event (netpol/agent.py PodTable): a sync reads the
same pods Snapshot.from_objects would make of the cache, and a pod write that changes
nothing the rules read (a readiness flip, a container restart) wakes no sync, so every
node's agent does not re-read every pod of the cluster for every status write (issue #16:
that was most of an agent's CPU while 300 pods started)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from netsim.machinery import DeletedFinalStateUnknown
from netsim.netpol.agent import PolicyAgent
from netsim.netpol.render import Snapshot
from tests.conftest import wait_for
from tests.unit.test_netpol_render import NAMESPACE_OBJS, PODS, admitted, netpol

NODE = "node-1"


class Factory:
    """Informers whose handlers the test calls, over caches it fills."""

    def __init__(self, objs: dict[str, list[dict]]):
        self.handlers: dict[str, list] = {}
        self.objs = objs

    def informer(self, resource):
        def add_handler(**kw):
            self.handlers.setdefault(resource, []).append(kw)
        return SimpleNamespace(add_handler=add_handler, indexer=SimpleNamespace(
            list=lambda: list(self.objs.get(resource, []))))

    def send(self, resource: str, which: str, *args) -> None:
        for h in self.handlers[resource]:
            h[which](*args)


def _agent(policies: list[dict]) -> tuple[PolicyAgent, Factory]:
    f = Factory({"networkpolicies": policies, "namespaces": NAMESPACE_OBJS})
    agent = PolicyAgent(None, SimpleNamespace(proxy_mode="iptables"), SimpleNamespace(name=NODE),
                        factory=f)  # type: ignore[arg-type]
    assert "pods" not in f.handlers  # no pod watch until a policy exists
    agent.watch_pods()
    return agent, f


def _view(snap: Snapshot) -> list[tuple]:
    return [(p, p.labels, p.named_ports) for p in snap.pods]


def test_snapshot_is_what_from_objects_makes_and_status_writes_wake_nothing():
    pols = admitted(netpol("deny", policyTypes=["Ingress"]))
    agent, f = _agent(pols)
    for p in reversed(PODS):  # arrival order does not matter: sorted as the cache lists
        f.send("pods", "on_add", p)
    want = Snapshot.from_objects(pols, PODS, NAMESPACE_OBJS, NODE)
    got = agent.snapshot()
    assert _view(got) == _view(want)
    assert (got.policies, got.namespaces, got.node) == (want.policies, want.namespaces, want.node)

    agent._wake.clear()
    a = PODS[0]
    ready = copy.deepcopy(a)
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    ready["metadata"]["resourceVersion"] = "99"
    f.send("pods", "on_update", a, ready)
    assert not agent._wake.is_set()  # nothing the rules read changed

    relabelled = copy.deepcopy(ready)
    relabelled["metadata"]["labels"] = {"pod": "other"}
    f.send("pods", "on_update", ready, relabelled)
    assert agent._wake.is_set()
    assert _view(agent.snapshot()) == _view(
        Snapshot.from_objects(pols, [relabelled, *PODS[1:]], NAMESPACE_OBJS, NODE))

    agent._wake.clear()
    done = copy.deepcopy(relabelled)
    done["status"]["phase"] = "Succeeded"  # finished: no pod of the rules any more
    f.send("pods", "on_update", relabelled, done)
    assert agent._wake.is_set()
    assert _view(agent.snapshot()) == _view(
        Snapshot.from_objects(pols, PODS[1:], NAMESPACE_OBJS, NODE))

    agent._wake.clear()
    b = PODS[1]
    f.send("pods", "on_delete", DeletedFinalStateUnknown(f"{b['metadata']['namespace']}/"
                                                         f"{b['metadata']['name']}", b))
    assert agent._wake.is_set()
    assert _view(agent.snapshot()) == _view(
        Snapshot.from_objects(pols, PODS[2:], NAMESPACE_OBJS, NODE))

    agent._wake.clear()
    f.send("pods", "on_delete", done)  # gone while not one of the rules' pods: no sync
    assert not agent._wake.is_set()


def test_a_pod_that_cannot_be_read_is_left_out_not_an_error():
    agent, f = _agent([])
    bad = {"metadata": {"namespace": "x", "name": "bad"}, "spec": ["not", "a", "map"],
           "status": {"podIP": "10.244.1.99"}}
    f.send("pods", "on_add", bad)
    f.send("pods", "on_add", PODS[0])
    assert [p.name for p in agent.snapshot().pods] == [PODS[0]["metadata"]["name"]]


def test_the_pods_watch_starts_with_the_first_policy():
    """Without a NetworkPolicy no pod is isolated and the rules read no pod: the agent
    watches no pod (every pod event of the cluster, decoded on every node, was ~40% of an
    agent's CPU while 300 pods started); the first policy starts the watch, and its first
    sync with that policy waits until the pods are listed."""
    import threading

    pols: list[dict] = []
    synced = threading.Event()

    class Inf:
        def __init__(self, resource):
            self.resource, self.handlers = resource, []
            self.indexer = SimpleNamespace(list=lambda: list(
                pols if resource == "networkpolicies" else
                NAMESPACE_OBJS if resource == "namespaces" else PODS))

        def add_handler(self, **kw):
            self.handlers.append(kw)

        def has_synced(self):
            if self.resource == "pods":
                self.asked = getattr(self, "asked", 0) + 1
            return self.resource != "pods" or synced.is_set()

    class Fac:
        def __init__(self):
            self.made: dict[str, Inf] = {}
            self.starts = 0

        def informer(self, resource):
            return self.made.setdefault(resource, Inf(resource))

        def start(self):
            self.starts += 1

    f = Fac()
    agent = PolicyAgent(None, SimpleNamespace(proxy_mode="iptables"), SimpleNamespace(name=NODE),
                        factory=f)  # type: ignore[arg-type]
    assert set(f.made) == {"networkpolicies", "namespaces"}
    seen: list[tuple] = []

    class Syncer:
        def sync(self, snap, **kw):
            seen.append((len(snap.policies), len(snap.pods)))
            return False
    agent.syncer = Syncer()  # type: ignore[assignment]
    t = threading.Thread(target=agent._loop, daemon=True)
    t.start()
    try:
        wait_for(lambda: seen, 5, what="a first sync")
        assert "pods" not in f.made and seen[-1] == (0, 0)
        pols.extend(admitted(netpol("deny", policyTypes=["Ingress"])))
        agent._wake.set()
        wait_for(lambda: "pods" in f.made, 5, what="the pods informer")
        assert f.starts == 1 and f.made["pods"].handlers  # made, handled and started
        wait_for(lambda: getattr(f.made["pods"], "asked", 0) >= 3, 5,
                 what="the loop waiting for the pods list")
        assert seen[-1][0] == 0  # no sync with the policy before the pods are listed
        for p in PODS:
            f.made["pods"].handlers[0]["on_add"](p)
        synced.set()
        agent._wake.set()
        wait_for(lambda: seen[-1][0] == 1, 5, what="a sync with the policy")
        assert seen[-1][1] > 0
    finally:
        agent.stopped.set()
        t.join(5)
