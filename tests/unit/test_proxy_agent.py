"""kube-proxy's agent on netsim.machinery informers: when it syncs and what it syncs.

The real store behind a LocalClient, informers started, the sync loop running against a
recording syncer (no kernel): what a user would see as the rules kube-proxy writes.
"""

from __future__ import annotations

import threading
import time

import pytest

from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.proxy import agent
from tests.conftest import wait_for
from tests.unit.apihelpers import GatedClient, seeded
from tests.unit.test_bad_objects import _Cfg, _Node, eps, svc


class RecordingSyncer:
    """The backend: records each sync's snapshot and whether it was full or partial."""

    def __init__(self):
        self.syncs: list[tuple[object, set[str] | None]] = []

    def sync(self, snap, changed):
        self.syncs.append((snap, None if changed is None else set(changed)))
        return agent.SyncResult(changed is None, 0.0, 0.0, 0)

    def lost_state(self):
        return False

    def reset(self):
        pass

    def endpoints(self, i: int = -1) -> dict[str, list[str]]:
        snap = self.syncs[i][0]
        return {sp.name_string: sorted(e.endpoint for e in sp.endpoints)
                for sp in snap.service_ports}


@pytest.fixture
def store():
    s = Store(":memory:")
    s.bootstrap()
    yield s
    s.close()


class Running:
    """KubeProxy's informers and sync loop started as start() does, minus the kernel."""

    def __init__(self, client):
        self.kp = agent.KubeProxy(client, _Cfg(), _Node(), check_netns=False,
                                  hold_node_ports=False)
        self.kp.syncer = self.syncer = RecordingSyncer()

    def __enter__(self) -> agent.KubeProxy:
        self.kp.factory.start()
        self.thread = threading.Thread(target=self.kp._loop, daemon=True)
        self.thread.start()
        return self.kp

    def __exit__(self, *exc) -> None:
        t0 = time.monotonic()
        self.kp.stopped.set()
        self.thread.join(5)
        self.stop_seconds = time.monotonic() - t0
        self.kp.factory.stop()
        self.kp.factory.join(5)


def test_first_sync_waits_until_services_and_slices_have_synced(store):
    """Upstream waits for both caches: a first sync with the Services but no slices
    would write a ruleset that REJECTs every Service."""
    client = seeded(GatedClient(store, "endpointslices", "endpointslices"))
    run = Running(client)
    with run as kp:
        wait_for(lambda: kp.informers["services"].has_synced(), 5, what="services synced")
        time.sleep(0.3)  # the loop had every chance to sync here, it must not
        assert run.syncer.syncs == [] and not kp.has_synced()
        client.list_ok.set()
        wait_for(lambda: run.syncer.syncs, 5, what="the first sync")
        snap, changed = run.syncer.syncs[0]
        assert changed is None  # the first sync is full
        eps_now = run.syncer.endpoints(0)
        assert eps_now["default/web:http"] == ["10.244.1.5:8080", "10.244.2.5:8080"]
        assert eps_now["default/api:http"] == ["10.244.1.6:8080"]
    assert run.stop_seconds < 1.0  # stop is honoured at once


def test_first_sync_happens_with_empty_caches_too(store):
    """Nothing to wake the loop (no object at all): it still syncs once synced."""
    client = LocalClient(store)
    for s in client.list("services"):
        client.delete("services", s["metadata"]["name"], s["metadata"]["namespace"])
    run = Running(client)
    with run:
        wait_for(lambda: run.syncer.syncs, 5, what="the first sync")
        assert run.syncer.syncs[0][1] is None


def test_relist_after_gone_converges_with_a_partial_sync_of_what_changed(store):
    client = GatedClient(store, "endpointslices", "endpointslices")
    client.list_ok.set()
    seeded(client, svc("db", cip="10.96.0.12"), eps("db", ["10.244.1.7"]))
    run = Running(client)
    with run as kp:
        wait_for(lambda: run.syncer.syncs, 5, what="the first sync")
        sl_inf = kp.informers["endpointslices"]
        lists = sl_inf.reflector.lists
        # slice events missed: one deleted, one changed, one created
        client.lose.set()
        client.delete("endpointslices", "api-abcde", "default")
        web = client.get("endpointslices", "web-abcde", "default")
        web["endpoints"].append({"addresses": ["10.244.2.9"], "conditions": {"ready": True},
                                 "nodeName": "x"})
        client.update(web)
        client.create(svc("late", cip="10.96.0.30"))
        client.create(eps("late", ["10.244.1.8"]))
        client.expire.set()
        wait_for(lambda: sl_inf.reflector.lists > lists, 5, what="the relist after 410 Gone")

        def converged():
            e = run.syncer.endpoints()
            return (e.get("default/web:http") == ["10.244.1.5:8080", "10.244.2.5:8080",
                                                  "10.244.2.9:8080"]
                    and e.get("default/api:http") == []
                    and e.get("default/late:http") == ["10.244.1.8:8080"])
        wait_for(converged, 5, what="rules matching the API after the relist")
        assert run.syncer.endpoints()["default/db:http"] == ["10.244.1.7:8080"]
        # every sync after the first was partial, and together they rewrote exactly the
        # Services that changed (db, untouched, was never rewritten)
        partial = [c for _, c in run.syncer.syncs[1:]]
        assert partial and all(c is not None for c in partial)
        assert set().union(*partial) == {"default/web", "default/api", "default/late"}


def test_a_failed_sync_keeps_what_changed_for_the_retry(store, monkeypatch):
    """The change a failed sync was about is in the next one (which is full)."""
    monkeypatch.setattr(agent, "RETRY_SECONDS", 0.02)
    client = seeded(LocalClient(store))
    run = Running(client)
    with run as kp:
        wait_for(lambda: run.syncer.syncs, 5, what="the first sync")
        real = run.syncer.sync
        fails = {"n": 1}

        def flaky(snap, changed):
            if fails["n"]:
                fails["n"] -= 1
                raise agent.RestoreError("iptables-restore: line 7 failed")
            return real(snap, changed)
        monkeypatch.setattr(run.syncer, "sync", flaky)
        client.create(svc("late", cip="10.96.0.30"))
        wait_for(lambda: "default/late:http" in run.syncer.endpoints(), 5, what="the retry")
        assert run.syncer.syncs[-1][1] is None and kp.failures == 0
        client.delete("services", "late", "default")
        wait_for(lambda: "default/late:http" not in run.syncer.endpoints(), 5, what="delete")
        assert run.syncer.syncs[-1][1] == {"default/late"}
