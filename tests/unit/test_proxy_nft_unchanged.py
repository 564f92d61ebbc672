"""nftables mode: a sync leaves chains whose rules would not change alone (issue #16).

Rewriting a service chain costs the kernel an anonymous numgen map, and binding each one
walks the whole transaction, so a full sync that rewrote every chain was quadratic in the
number of services (51.8 s at 5,000). Only what differs from what this process last wrote
is written; what the table holds afterwards is the same as after a rewrite of everything."""

from __future__ import annotations

from netsim.proxy import nftables
from tests.bench.bench_proxy_sync import snap

OPTS = nftables.NftOptions(service_cidrs=("10.96.0.0/12",))


def _service_lines(text: str) -> list[str]:
    """The lines that write a service or endpoint chain (not the maps' elements)."""
    return [ln for ln in text.splitlines() if ln.split()[0] in ("add", "flush")
            and ln.split()[1] in ("chain", "rule")
            and nftables.is_service_chain_name(ln.split()[4])]


def test_a_full_sync_with_a_known_table_rewrites_no_unchanged_chain():
    first = nftables.render(snap(20), OPTS)
    assert any(ln.startswith("add rule ip kube-proxy service-") for ln in first.text.splitlines())
    again = nftables.render(snap(20), OPTS, existing=first.state)
    assert again.full
    assert _service_lines(again.text) == []
    assert again.state.chain_rules == first.state.chain_rules
    assert again.state.chains == first.state.chains


def test_a_new_endpoint_rewrites_only_its_service_and_new_chains():
    first = nftables.render(snap(20), OPTS)
    changed = snap(20, shift=1)  # svc-19 gets a second ready endpoint
    for existing_full in (True, False):
        r = nftables.render(changed, OPTS, existing=first.state,
                            changed=None if existing_full else {"bench/svc-19"})
        written = {ln.split()[4] for ln in _service_lines(r.text)}
        assert written and all("bench/svc-19/" in c for c in written)
        # the unchanged endpoint chain of svc-19 is not rewritten either
        old_ep = [c for c in first.state.chain_rules if c.startswith("endpoint-")
                  and "bench/svc-19/" in c]
        assert old_ep and not set(old_ep) & written
        # what the chains hold afterwards is what a render from scratch says
        fresh = nftables.render(changed, OPTS)
        assert r.state.chain_rules == fresh.state.chain_rules


def test_an_unknown_table_is_rewritten_whole():
    first = nftables.render(snap(5), OPTS)
    names_only = nftables.NftState(chains=set(first.state.chains), sets=set(first.state.sets))
    r = nftables.render(snap(5), OPTS, existing=names_only)
    assert _service_lines(r.text) and r.state.chain_rules == first.state.chain_rules
