"""The ingress controller's loop on netsim.machinery informers: when it renders, from what.

The real store behind a LocalClient, the controller's run() in a thread, `apply` recording
the nginx.conf it would swap in (no nginx is started): what a user would see served.
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from netsim.api.store import Store
from netsim.ingress import controller as ctl_mod
from tests.conftest import wait_for
from tests.unit.apihelpers import GatedClient, seeded
from tests.unit.test_bad_objects import _ingress, eps, svc


@pytest.fixture
def client():
    store = Store(":memory:")
    store.bootstrap()
    yield seeded(GatedClient(store, "secrets", "ingresses"),
                 _ingress("web", "web.example.com", "web"))
    store.close()


class Running:
    def __init__(self, client, tmp_path, monkeypatch):
        if not shutil.which("nginx"):
            monkeypatch.setattr(ctl_mod, "validate", lambda conf, files, nginx=None: (True, "ok"))
        self.ctl = ctl_mod.IngressController(client, cluster="unit", state_dir=str(tmp_path),
                                             create_class=False, update_status=False)
        self.applied: list[str] = []
        monkeypatch.setattr(self.ctl, "apply",
                            lambda result: self.applied.append(result.conf) or True)
        monkeypatch.setattr(self.ctl, "default_certificate", lambda: None)

    def __enter__(self) -> Running:
        self.thread = threading.Thread(target=self.ctl.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        t0 = time.monotonic()
        self.ctl.stop()
        self.thread.join(5)
        self.stop_seconds = time.monotonic() - t0
        self.ctl.factory.join(5)


def test_no_config_before_every_cache_has_synced(client, tmp_path, monkeypatch):
    """Rendering before the Secrets (or slices...) are in would serve a config with
    certificates or backends missing: nothing is applied until every cache has synced."""
    with Running(client, tmp_path, monkeypatch) as run:
        wait_for(lambda: run.ctl.informers["ingresses"].has_synced(), 5, what="ingresses")
        time.sleep(0.3)  # the loop had every chance to render here, it must not
        assert run.applied == [] and not run.ctl.has_synced()
        client.list_ok.set()
        wait_for(lambda: run.applied, 5, what="the first config")
        conf = run.applied[0]
        assert "server_name web.example.com;" in conf and "server 10.244.1.5:8080;" in conf
    assert run.stop_seconds < 1.0 and not run.thread.is_alive()  # stop is honoured at once


def test_relist_after_gone_drops_an_ingress_whose_delete_was_missed(client, tmp_path,
                                                                    monkeypatch):
    client.list_ok.set()
    with Running(client, tmp_path, monkeypatch) as run:
        wait_for(lambda: run.applied, 5, what="the first config")
        inf = run.ctl.informers["ingresses"]
        lists = inf.reflector.lists
        client.lose.set()
        client.delete("ingresses", "web", "default")
        client.create(_ingress("api", "api.example.com", "api"))
        client.expire.set()
        wait_for(lambda: inf.reflector.lists > lists, 5, what="the relist after 410 Gone")
        wait_for(lambda: "server_name api.example.com;" in run.applied[-1]
                 and "web.example.com" not in run.applied[-1], 5,
                 what="nginx.conf matching the API after the relist")
        # and the other caches keep following: a new endpoint of api reaches nginx.conf
        client.create(svc("db", cip="10.96.0.12"))
        sl = client.get("endpointslices", "api-abcde", "default")
        sl["endpoints"] = eps("api", ["10.244.1.6", "10.244.2.6"])["endpoints"]
        client.update(sl)
        wait_for(lambda: "server 10.244.2.6:8080;" in run.applied[-1], 5, what="new endpoint")
