"""kube-proxy nftables mode: a partial sync sent as our own netlink batch leaves the node
exactly as `nft -f` of the same text does (issue #16: nft 1.0.6 dumps every chain first).

Two throw-away network namespaces get the same syncs, one through `nft -f` only
(NETSIM_NFT_NETLINK=0's path), one the agent's way; after every step `nft list table` and
`nft --debug=netlink list table` (the rules' bytecode) must be the same in both."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from netsim.proxy import nftables
from netsim.proxy.agent import NftSyncer
from netsim.proxy.apply import Nft, NftError
from netsim.proxy.model import ProxySnapshot
from tests.bench.bench_proxy_sync import objects as bench_objects
from tests.bench.bench_proxy_sync import snap as bench_snap
from tests.conftest import requires_root
from tests.unit.test_proxy_nftables import UPSTREAM_OPTS, _changed_objects, overall_objects, snap

pytestmark = requires_root

OPTS = nftables.NftOptions(service_cidrs=("10.96.0.0/12",))


@pytest.fixture
def two_netns():
    names = [f"kpnl-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    yield names
    for n in names:
        subprocess.run(["ip", "netns", "del", n])


def _listing(ns: str, *flags: str) -> str:
    p = subprocess.run(["ip", "netns", "exec", ns, "nft", *flags, "list", "table", "ip",
                        "kube-proxy"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _same_tables(a: str, b: str) -> None:
    assert _listing(a) == _listing(b)
    # the bytecode too; a hash set's elements come in a per-set random order
    assert sorted(_listing(a, "--debug=netlink").splitlines()) == \
        sorted(_listing(b, "--debug=netlink").splitlines())


def _without_last(n: int) -> ProxySnapshot:
    """bench_snap(n) with its last service deleted (the others exactly as they were)."""
    svcs, slices = bench_objects(n)
    return ProxySnapshot.from_objects(svcs[:-1], slices[:-1], node_name="n1",
                                      node_ips=["192.168.3.171"], cluster_cidr="10.244.0.0/16")


def _syncers(names: list[str], opts: nftables.NftOptions) -> tuple[NftSyncer, NftSyncer]:
    plain = NftSyncer(Nft(netns=names[0], netlink=False), opts)
    ours = NftSyncer(Nft(netns=names[1]), opts)
    return plain, ours


def test_partial_syncs_by_netlink_leave_the_table_nft_would(two_netns):
    plain, ours = _syncers(two_netns, OPTS)
    steps = [
        (bench_snap(30), None),
        (bench_snap(30, shift=1), {"bench/svc-29"}),  # one endpoint more
        (bench_snap(30), {"bench/svc-29"}),  # and back
        (_without_last(30), {"bench/svc-29"}),  # the service deleted: elements and chains go
        (bench_snap(30), {"bench/svc-29"}),  # and made again
    ]
    for snapshot, changed in steps:
        for s in (plain, ours):
            r = s.sync(snapshot, changed)
            assert not r.fell_back
        if changed:
            assert ours.nft.last_via == "netlink", ours.last_text
            assert plain.nft.last_via == "nft -f"
        _same_tables(*two_netns)
        if plain.stale:  # what the agent does a second later: delete the flushed chains
            for s in (plain, ours):
                s.stale = dict.fromkeys(s.stale, 0.0)  # due now
                s._delete_stale()
                assert not s.stale and s.state is not None
            assert ours.nft.last_via == "netlink"
            _same_tables(*two_netns)


def test_comments_no_endpoint_verdicts_and_unknown_forms(two_netns):
    """Upstream's overall table: no-endpoint services (element comments, drop and reject
    verdicts), local policies (fib, rule comments); a partial sync with an affinity service
    is not ours to encode and goes through nft -f, with the same result."""
    plain, ours = _syncers(two_netns, UPSTREAM_OPTS)
    for s in (plain, ours):
        s.sync(snap(*overall_objects()), None)
    _same_tables(*two_netns)
    services, slices = _changed_objects()
    no_affinity = ([s for s in services if s["metadata"]["name"] != "svc7"],
                   [s for s in slices if s["metadata"]["namespace"] != "ns7"])
    for s in (plain, ours):
        s.sync(snap(*no_affinity), {"ns1/svc1", "ns3/svc3", "ns6/svc6"})
    assert ours.nft.last_via == "netlink", ours.last_text
    _same_tables(*two_netns)
    for s in (plain, ours):
        s.sync(snap(*_changed_objects()), {"ns7/svc7"})
    assert "update @affinity-" in ours.last_text and ours.nft.last_via == "nft -f"
    _same_tables(*two_netns)


def test_a_refused_batch_changes_nothing_and_says_why(two_netns):
    _, ours = _syncers(two_netns, OPTS)
    snapshot = bench_snap(5)
    ours.sync(snapshot, None)
    before = _listing(two_netns[1])
    chain = nftables.service_chain(snapshot.service_ports[0])
    bad = (f"flush chain ip kube-proxy {chain}\n"
           f"add rule ip kube-proxy {chain} goto no-such-chain\n")
    assert f"chain {chain} {{" in before
    with pytest.raises(NftError, match="No such file or directory"):
        ours.nft.apply(bad)
    assert ours.nft.last_via == "netlink"
    assert _listing(two_netns[1]) == before


def test_a_restarted_agent_rewrites_only_the_chains_that_differ(two_netns):
    """A new kube-proxy finds its table full: its first sync (one transaction) reads the
    service chains' rules from the listing and leaves the unchanged ones alone."""
    a, b = two_netns
    NftSyncer(Nft(netns=a), OPTS).sync(bench_snap(30), None)
    before = _listing(a)
    again = NftSyncer(Nft(netns=a), OPTS)
    r = again.sync(bench_snap(30), None)
    assert r.full and not r.fell_back
    assert not [ln for ln in again.last_text.splitlines()
                if ln.startswith("add rule") and nftables.is_service_chain_name(ln.split()[4])]
    # the same rules (the base chains were made again, as upstream does on a restart, so
    # they are listed in another order)
    assert sorted(_listing(a).splitlines()) == sorted(before.splitlines())
    # restarted while a Service changed: only its chains are written; the table is the one
    # a first sync of the new state makes
    changed = NftSyncer(Nft(netns=a), OPTS)
    changed.sync(bench_snap(30, shift=1), None)
    written = {ln.split()[4] for ln in changed.last_text.splitlines()
               if ln.startswith("add rule") and nftables.is_service_chain_name(ln.split()[4])}
    assert written and all("/svc-29/" in c for c in written)
    NftSyncer(Nft(netns=b), OPTS).sync(bench_snap(30, shift=1), None)
    assert sorted(_listing(a).splitlines()) == sorted(_listing(b).splitlines())
