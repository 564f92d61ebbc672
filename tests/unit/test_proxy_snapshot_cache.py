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


def _big_service(n_slices: int) -> tuple[list[dict], list[dict]]:
    """One Service whose endpoints are spread over many slices (the controller's 100 each),
    one of them on this node (n1): its endpoints are local."""
    slices = []
    for i in range(n_slices):
        es = eps("web", [f"10.244.{i}.{j + 2}" for j in range(3)], name=f"web-{i:05d}")
        for ep in es["endpoints"]:
            ep["nodeName"] = "n1" if i == 0 else f"n{i + 1}"
        slices.append(es)
    return _versioned([svc("web", cip="10.96.0.10")]), _versioned(slices, start=100)


def test_a_changed_slice_alone_is_read_again():
    services, slices = _big_service(20)
    cache = SnapshotCache()
    _same(services, slices, cache)
    assert cache.slices_read == 20
    slices[5] = copy.deepcopy(slices[5])
    slices[5]["endpoints"][0]["conditions"] = {"ready": False}
    slices[5]["metadata"]["resourceVersion"] = "999"
    snap = _same(services, slices, cache)
    assert cache.slices_read == 1 and cache.reused == 0
    eps_ = {e.endpoint: e for sp in snap.service_ports for e in sp.endpoints}
    assert not eps_["10.244.5.2:8080"].ready and eps_["10.244.5.3:8080"].ready
    assert eps_["10.244.0.2:8080"].is_local and not eps_["10.244.1.2:8080"].is_local
    # a slice gone, one added: the others still come from the cache
    del slices[7]
    slices += _versioned([eps("web", ["10.244.99.2"], name="web-new")], start=2000)
    _same(services, slices, cache)
    assert cache.slices_read == 1


def test_a_bad_slice_stays_rejected_while_another_slice_changes():
    services, slices = _big_service(3)
    bad = _versioned([{**BAD_SLICES["address is nginx text"],
                       "metadata": {**slices[0]["metadata"], "name": "web-bad"}}], start=500)
    slices += bad
    cache = SnapshotCache()
    first = _same(services, slices, cache)
    assert [r.name for r in first.rejected] == ["web-bad"]
    slices[1] = copy.deepcopy(slices[1])
    slices[1]["metadata"]["resourceVersion"] = "999"
    again = _same(services, slices, cache)
    assert cache.slices_read == 1 and again.rejected == first.rejected


def test_the_cache_is_per_node():
    services, slices = _big_service(2)
    cache = SnapshotCache()
    ProxySnapshot.from_objects(services, slices, cache=cache, **NODE)
    other = {**NODE, "node_name": "n2"}
    got = ProxySnapshot.from_objects(services, slices, cache=cache, **other)
    assert got == ProxySnapshot.from_objects(services, slices, **other)
    local = {e.endpoint for sp in got.service_ports for e in sp.endpoints if e.is_local}
    assert local == {"10.244.1.2:8080", "10.244.1.3:8080", "10.244.1.4:8080"}
