"""nftables mode: a partial sync visits only the changed services (issue #16: at 10,000
services looking at every service cost ~0.9 s of CPU per one-service change). It must write
the same transaction and leave the same bookkeeping as the scan over every service."""

from __future__ import annotations

import dataclasses

import pytest

from netsim.proxy import nftables
from netsim.proxy.model import ProxySnapshot
from tests.bench.bench_proxy_sync import objects as bench_objects
from tests.bench.bench_proxy_sync import snap as bench_snap
from tests.unit.test_proxy_nftables import (
    UPSTREAM_OPTS,
    _changed_objects,
    overall_objects,
    snap,
)

OPTS = nftables.NftOptions(service_cidrs=("10.96.0.0/12",))


def _scan(st: nftables.NftState) -> nftables.NftState:
    """The same table, without what lets a partial sync skip the unchanged services."""
    return dataclasses.replace(st.copy(), services=None, owner=None, unclaimed=None,
                               context=None)


def _table(st: nftables.NftState) -> tuple:
    return st.chains, st.sets, st.elements, st.chain_rules


def _both(snapshot, opts, changed, prev):
    inc = nftables.render(snapshot, opts, changed=changed, existing=prev)
    scan = nftables.render(snapshot, opts, changed=changed, existing=_scan(prev))
    assert inc.text == scan.text
    assert inc.stale_chains == scan.stale_chains
    assert _table(inc.state) == _table(scan.state)
    return inc


def _without(n: int, drop: int) -> ProxySnapshot:
    svcs, slices = bench_objects(n)
    del svcs[drop], slices[drop]
    return ProxySnapshot.from_objects(svcs, slices, node_name="n1", node_ips=["192.168.3.171"],
                                      cluster_cidr="10.244.0.0/16")


def test_partial_syncs_visit_only_changed_services_and_write_what_a_scan_writes(monkeypatch):
    prev = nftables.render(bench_snap(40), OPTS).state
    assert prev.services is not None
    seen: list[str] = []
    real = nftables._service_objects

    def counting(sp, *a, **kw):
        seen.append(sp.service_name)
        return real(sp, *a, **kw)

    steps = [
        (bench_snap(40, shift=1), {"bench/svc-39"}),  # one endpoint more
        (bench_snap(40), {"bench/svc-39"}),  # and back
        (_without(40, 39), {"bench/svc-39"}),  # deleted: chains stale, elements go
        (_without(40, 39), set()),  # nothing: the stale chains are flushed again
        (bench_snap(40), {"bench/svc-39"}),  # made again
        (_without(40, 7), {"bench/svc-7", "bench/svc-nope"}),  # one in the middle
    ]
    for snapshot, changed in steps:
        seen.clear()
        monkeypatch.setattr(nftables, "_service_objects", counting)
        r = nftables.render(snapshot, OPTS, changed=changed, existing=prev)
        assert set(seen) <= changed
        monkeypatch.setattr(nftables, "_service_objects", real)
        _both(snapshot, OPTS, changed, prev)
        prev = r.state
    assert "bench/svc-7" not in prev.services
    assert not any("svc-7/" in k for k in prev.chain_rules)


def test_upstreams_overall_table_partial_sync_is_the_scans():
    prev = nftables.render(snap(*overall_objects()), UPSTREAM_OPTS).state
    r = _both(snap(*_changed_objects()), UPSTREAM_OPTS,
              {"ns1/svc1", "ns3/svc3", "ns6/svc6", "ns7/svc7"}, prev)
    assert "update @affinity-" in r.text and r.stale_chains
    st = r.state
    st.forget_chains(r.stale_chains)  # a second later: deleted
    again = _both(snap(*_changed_objects()), UPSTREAM_OPTS, {"ns7/svc7"}, st)
    # the same rules: nothing rewritten (its affinity sets are declared again, idempotently)
    assert "add rule" not in again.text and "flush" not in again.text


def _shared_external_ip(second_port: int):
    services, slices = bench_objects(3)
    for i, s in enumerate(services[:2]):
        s["spec"]["externalIPs"] = ["192.0.2.9"]
        s["spec"]["ports"][0]["port"] = 80 if i == 0 else second_port
    return ProxySnapshot.from_objects(services, slices, node_name="n1",
                                      node_ips=["192.168.3.171"], cluster_cidr="10.244.0.0/16")


def test_a_key_two_services_claim_makes_partial_syncs_scan():
    first = nftables.render(_shared_external_ip(80), OPTS)
    assert first.state.services is None  # 192.0.2.9 . tcp . 80 from both
    r = nftables.render(_shared_external_ip(80), OPTS, changed={"bench/svc-0"},
                        existing=first.state)
    assert r.state.services is None
    fine = nftables.render(_shared_external_ip(81), OPTS)
    assert fine.state.services is not None
    # svc-1 moves onto svc-0's key: seen, and the scan's answer is the one written
    moved = _both(_shared_external_ip(80), OPTS, {"bench/svc-1"}, fine.state)
    assert moved.state.services is None


def test_other_options_or_node_are_not_reused():
    prev = nftables.render(bench_snap(10), OPTS).state
    other = nftables.NftOptions(service_cidrs=("10.96.0.0/12",), masquerade_all=True)
    r = nftables.render(bench_snap(10, shift=1), other, changed={"bench/svc-9"}, existing=prev)
    scan = nftables.render(bench_snap(10, shift=1), other, changed={"bench/svc-9"},
                           existing=_scan(prev))
    assert r.text == scan.text
    # recreate_base_chains only changes a full sync's setup
    same = dataclasses.replace(OPTS, recreate_base_chains=False)
    assert nftables._context(bench_snap(10), same) == prev.context


def test_advance_updates_the_syncers_state_in_place():
    prev = nftables.render(bench_snap(20), OPTS).state
    r = nftables.render(bench_snap(20, shift=1), OPTS, changed={"bench/svc-19"}, existing=prev)
    expect = _table(nftables.render(bench_snap(20, shift=1), OPTS, changed={"bench/svc-19"},
                                    existing=_scan(prev)).state)
    assert r.advance(prev) is prev
    assert _table(prev) == expect
    assert r.state is prev
    with pytest.raises(ValueError):
        nftables.render(bench_snap(20), OPTS, changed={"x/y"}, existing=nftables.NftState())
