"""kube-proxy's snapshot of Services and EndpointSlices, built again every sync: with a
SnapshotCache only the Services whose objects changed are validated and read again
(issue #16: ~3 s of CPU at 10,000 Services, for a one-Service change), and the snapshot is
the same as one built from scratch, rejections of invalid objects included."""

from __future__ import annotations

import copy

import pytest

from netsim.proxy import model
from netsim.proxy.model import ProxySnapshot, SnapshotCache
from tests.bench.bench_proxy_sync import objects as bench_objects
from tests.unit.test_bad_objects import BAD_SERVICES, BAD_SLICES, eps, good_objects, svc

NODE = {"node_name": "n1", "node_ips": ["192.168.3.171"], "cluster_cidr": "10.244.0.0/16"}


def _versioned(objs: list[dict], start: int = 1) -> list[dict]:
    out = copy.deepcopy(objs)
    for i, o in enumerate(out):
        if isinstance(o, dict) and isinstance(o.get("metadata"), dict):
            o["metadata"]["resourceVersion"] = str(start + i)
    return out


def _same(services, slices, cache: SnapshotCache) -> ProxySnapshot:
    got = ProxySnapshot.from_objects(services, slices, cache=cache, **NODE)
    assert got == ProxySnapshot.from_objects(services, slices, **NODE)
    return got


def test_unchanged_services_are_not_read_again(monkeypatch):
    services, slices = (_versioned(x) for x in bench_objects(50))
    cache = SnapshotCache()
    _same(services, slices, cache)
    assert cache.reused == 0
    calls: list[str] = []
    real = model.service_errors
    monkeypatch.setattr(model, "service_errors",
                        lambda s: calls.append(s["metadata"]["name"]) or real(s))
    _same(services, slices, cache)
    assert cache.reused == 50
    # one Service's slice changes (a new endpoint, a new resourceVersion)
    slices[7] = copy.deepcopy(slices[7])
    slices[7]["endpoints"].append({"addresses": ["10.250.0.77"], "conditions": {"ready": True}})
    slices[7]["metadata"]["resourceVersion"] = "999"
    calls.clear()
    snap = _same(services, slices, cache)
    assert [c for c in calls if c == "svc-7"] and cache.reused == 49
    assert "10.250.0.77:8080" in {e.endpoint for sp in snap.service_ports for e in sp.endpoints}
    # deleted: Service and slice gone; a slice left without its Service
    del services[3]
    _same(services, slices, cache)
    del slices[3]
    _same(services, slices, cache)
    assert cache.reused == 49


@pytest.mark.parametrize("bad_svc,bad_slice", [
    *[pytest.param(s, eps("bad", ["10.244.3.5"]), id=f"service: {k}")
      for k, s in BAD_SERVICES.items()],
    *[pytest.param(svc("bad", cip="10.96.0.20"), s, id=f"slice: {k}")
      for k, s in BAD_SLICES.items()],
])
def test_bad_objects_are_rejected_the_same_from_the_cache(bad_svc, bad_slice):
    services, slices = good_objects()
    services = _versioned(services + [bad_svc])
    slices = _versioned(slices + [bad_slice], start=100)
    cache = SnapshotCache()
    first = _same(services, slices, cache)
    assert first.rejected
    again = _same(services, slices, cache)
    assert again.rejected == first.rejected


def test_objects_without_resource_versions_are_always_read():
    services, slices = bench_objects(5)  # hand-made: no resourceVersion
    cache = SnapshotCache()
    _same(services, slices, cache)
    _same(services, slices, cache)
    assert cache.reused == 0
