"""Bench: kube-proxy nftables-mode sync cost in one throw-away netns (root).

For N services x 5 endpoints: the agent's first full sync (read table + render + one
`nft -f`), a steady full sync, and a partial sync after one service's endpoint changed
(render the element diff and that service's chains + one small transaction, sent as our
own netlink batch: netsim/proxy/nftnl.py). The partial sync's anchor is a bare `nft -f` of
the same transactions in the same table; both in CPU seconds (this process and its
children, the kernel's share included), which other load on the machine does not inflate
as it does wall time. Small N by default (pytest and CI); NETSIM_BENCH_FULL=1 runs 100 /
1,000 / 5,000 / 10,000. Run as a script or with pytest; the last line is the headline.
(Upstream anchor, PR #126013: one new service among 10k went from ~8 min to ~141 ms with
partial syncs.)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from netsim.proxy import nftables  # noqa: E402
from netsim.proxy.agent import NftSyncer  # noqa: E402
from netsim.proxy.apply import Nft  # noqa: E402
from tests.bench import series  # noqa: E402
from tests.bench.bench_proxy_sync import (  # noqa: E402
    BACKEND,
    EPS,
    _cpu,
    backend,
    connect_latency,
    snap,
)

SIZES = series.sizes((100, 1000, 5000, 10000) if os.environ.get("NETSIM_BENCH_FULL") == "1"
                     else (50, 300))  # 300 > STAGE_SERVICES: a first sync in stages
OPTS = nftables.NftOptions(service_cidrs=("10.96.0.0/12",))


def bench(n: int, netns: str) -> dict:
    nftc = Nft(netns=netns)
    nftc.apply(nftables.render_cleanup())
    syncer = NftSyncer(nftc, OPTS)
    base = snap(n)
    c0 = _cpu()
    first = syncer.sync(base, None)
    first_cpu = _cpu() - c0
    fulls, partials, partial_bytes, full_cpu = [], [], [], []
    for _ in range(3):
        syncer.force_full = True
        c0 = _cpu()
        fulls.append(syncer.sync(base, None).seconds)
        full_cpu.append(_cpu() - c0)
    # a restarted kube-proxy: the table is full, what it holds unknown (names only)
    c0 = _cpu()
    restart = NftSyncer(nftc, OPTS).sync(base, None)
    restart_cpu = _cpu() - c0
    changed = snap(n, shift=1)
    texts, partial_cpu, bare_cpu = [], [], []
    for k in range(4):
        s = changed if k % 2 == 0 else base
        c0 = _cpu()
        r = syncer.sync(s, {f"bench/svc-{n - 1}"})
        partial_cpu.append(_cpu() - c0)
        assert not r.full and nftc.last_via == "netlink"
        partials.append(r.seconds)
        partial_bytes.append(r.text_bytes)
        texts.append(syncer.last_text)
    assert f"bench/svc-{n - 1}/" in syncer.last_text
    bares = []
    for text in texts:  # the same four transitions again, through nft -f
        t0, c0 = time.perf_counter(), _cpu()
        nftc.apply_nft(text)
        bares.append(time.perf_counter() - t0)
        bare_cpu.append(_cpu() - c0)
    floor = {k: _one_rule_cpu(nftc, rule) for k, rule in (
        ("floor_validated", "meta l4proto tcp dnat to 10.250.0.99:8080"),
        ("floor_plain", "ip saddr 10.250.0.99 ip daddr 10.250.0.98"))}
    canary = []
    for _ in range(5):  # the agent's every-2-s check that its table is still there
        t0 = time.perf_counter()
        assert nftc.table_exists()
        canary.append(time.perf_counter() - t0)
    table = nftc.list_table() or ""
    assert f"{base.service_ports[0].cluster_ip} . tcp . 80 : goto service-" in table
    # first-packet latency: a new connection to the first / last service (DNAT to
    # BACKEND), beside one straight to BACKEND (no rule matches it)
    ips = {sp.name: sp.cluster_ip for sp in base.service_ports}
    lat = {"lat_first": connect_latency(netns, ips["svc-0"]),
           "lat_last": connect_latency(netns, ips[f"svc-{n - 1}"]),
           "lat_direct": connect_latency(netns, BACKEND, port=8080)}
    return {**lat, **floor, "n": n, "first": first.seconds, "full": statistics.median(fulls),
            "first_cpu": first_cpu, "full_cpu": statistics.median(full_cpu),
            "restart": restart.seconds, "restart_cpu": restart_cpu,
            "apply": first.restore_seconds, "partial": statistics.median(partials),
            "partial_cpu": statistics.median(partial_cpu), "bare": statistics.median(bares),
            "bare_cpu": statistics.median(bare_cpu),
            "bytes": first.text_bytes, "pbytes": statistics.median(partial_bytes),
            "canary": statistics.median(canary)}


def _one_rule_cpu(nftc: Nft, rule: str) -> float:
    """CPU of a transaction of one rule in a chain of its own, through the same netlink
    path: the kernel's floor for a partial sync. A rule with an expression the kernel
    validates against its hooks (dnat, a jump or goto: what every endpoint and service
    chain has) makes the commit validate the whole table (nf_tables_validate), so its cost
    grows with the table whatever the transaction's size; a match-only rule does not."""
    chain = "bench-floor"
    cpu = []
    for _ in range(5):
        c0 = _cpu()
        nftc.apply(f"add chain ip kube-proxy {chain}\nflush chain ip kube-proxy {chain}\n"
                   f"add rule ip kube-proxy {chain} {rule}\n")
        cpu.append(_cpu() - c0)
        assert nftc.last_via == "netlink"
    nftc.apply(f"delete chain ip kube-proxy {chain}\n")
    return statistics.median(cpu)


def run() -> list[dict]:
    netns = f"bench-kpn-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    server = backend(netns)
    try:
        results = []
        for n in SIZES:
            r = bench(n, netns)
            results.append(r)
            print(f"N={n:5d} x {EPS} eps: transaction {r['bytes'] / 1024:8.0f} KiB  first sync "
                  f"{r['first'] * 1e3:8.1f} ms, CPU {r['first_cpu'] * 1e3:8.1f} ms (applying "
                  f"{r['apply'] * 1e3:8.1f} ms)  steady full {r['full'] * 1e3:7.1f} ms, CPU "
                  f"{r['full_cpu'] * 1e3:7.1f} ms  restarted agent's full resync "
                  f"{r['restart'] * 1e3:8.1f} ms, CPU {r['restart_cpu'] * 1e3:8.1f} ms  "
                  f"table check {r['canary'] * 1e3:.1f} ms", flush=True)
            print(f"         partial (1 service, {r['pbytes'] / 1024:.1f} KiB): CPU "
                  f"{r['partial_cpu'] * 1e3:6.1f} ms, wall {r['partial'] * 1e3:6.1f} ms  "
                  f"(bare nft -f of the same text: CPU {r['bare_cpu'] * 1e3:6.1f} ms, wall "
                  f"{r['bare'] * 1e3:6.1f} ms)", flush=True)
            print(f"         kernel floor, one rule in a chain of its own: dnat (the commit "
                  f"validates the table) CPU {r['floor_validated'] * 1e3:6.1f} ms, match-only "
                  f"{r['floor_plain'] * 1e3:6.1f} ms", flush=True)
            lf, ll, ld = r["lat_first"], r["lat_last"], r["lat_direct"]
            print(f"         first-packet connect p50/p99: first service {lf[0] * 1e3:.3f}/"
                  f"{lf[1] * 1e3:.3f} ms, last {ll[0] * 1e3:.3f}/{ll[1] * 1e3:.3f} ms "
                  f"(straight to the backend {ld[0] * 1e3:.3f}/{ld[1] * 1e3:.3f} ms)", flush=True)
            for name, key in (("nftables full sync", "full"), ("nftables partial sync", "partial"),
                              ("nftables partial sync CPU", "partial_cpu"),
                              ("bare nft -f of the partial sync, CPU", "bare_cpu"),
                              ("one dnat rule (table validated), CPU", "floor_validated"),
                              ("restarted agent's full resync", "restart")):
                series.point("proxy_nftables", name, n, r[key] * 1e3, x_label="services",
                             y_label="ms")
        last, small = results[-1], results[0]
        flat = last["lat_last"][0] / small["lat_last"][0]
        print(f"headline: nftables N={last['n']} services full sync {last['full'] * 1e3:.0f} ms "
              f"(restarted agent {last['restart'] * 1e3:.0f} ms, first sync "
              f"{last['first'] * 1e3:.0f} ms), one-service partial sync "
              f"{last['partial_cpu'] * 1e3:.1f} ms CPU (bare nft -f "
              f"{last['bare_cpu'] * 1e3:.1f} ms CPU; the kernel's floor, one dnat rule, "
              f"{last['floor_validated'] * 1e3:.1f} ms CPU), first-packet p50 at N={last['n']} "
              f"{flat:.2f}x N={small['n']}")
        return results
    finally:
        server.terminate()
        server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", netns + "-be"])
        subprocess.run(["ip", "netns", "del", netns])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_bench_proxy_nft():
    results = run()
    assert all(r["full"] > 0 and r["partial"] > 0 for r in results)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_proxy_nft needs root (it makes a throw-away netns)")
    run()
