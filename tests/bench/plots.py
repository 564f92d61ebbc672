"""The benchmarks' charts: run the benches at a few sizes, then draw their series as PNGs.

    sudo /opt/netsim/venv/bin/python -m tests.bench.plots            # run + draw (small sizes)
    sudo /opt/netsim/venv/bin/python -m tests.bench.plots --no-run   # redraw from docs/bench/data
    ... --only proxy,dns    ... --full (the benches' NETSIM_BENCH_FULL sizes)

Each bench runs as its own process with NETSIM_BENCH_SERIES=docs/bench/data, so it keeps
the series it prints there as JSON (tests/bench/series.py), and NETSIM_BENCH_SIZES asking
for several sizes. Charts (matplotlib, headless Agg backend) go to docs/bench/:
- cluster.png: pods per second (end to end, and sandbox setup alone) against pods created;
- proxy_sync.png: kube-proxy sync time against services, per mode (iptables: full sync,
  partial sync, a bare iptables-restore of the same text; nftables: full and partial);
- dns.png: cluster DNS queries per second for each server.
The figures depend on the machine (the charts say which); the cluster bench brings up its
own cluster (NETSIM_BENCH_CLUSTER / NETSIM_BENCH_LAN, default nsbench on 192.168.79.0/24).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from tests.bench import series

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "docs", "bench")

# bench module -> (sizes for the chart, full sizes)
BENCHES = {
    "cluster": [("tests.bench.bench_cluster", "10,20,40", "50,150,300")],
    "proxy": [("tests.bench.bench_proxy_sync", "50,200,1000", "100,1000,5000"),
              ("tests.bench.bench_proxy_nft", "50,200,1000", "100,1000,5000")],
    "dns": [("tests.bench.bench_dns", "", "")],
}


def run_benches(data: str, only: list[str], full: bool) -> None:
    for group in only:
        for module, small, big in BENCHES[group]:
            env = {**os.environ, series.SERIES_ENV: data}
            sizes = big if full else small
            if sizes:
                env[series.SIZES_ENV] = sizes
            if full:
                env["NETSIM_BENCH_FULL"] = "1"
            print(f"==> {module} (sizes {sizes or 'its own'})", flush=True)
            p = subprocess.run([sys.executable, "-m", module], env=env, cwd=REPO)
            if p.returncode != 0:
                sys.exit(f"{module} failed (exit {p.returncode})")


def _subtitle(*docs: dict | None) -> str:
    d = next((d for d in docs if d), None)
    if not d:
        return ""
    m = d.get("machine") or {}
    return (f"{m.get('cpus')} CPUs (load {m.get('load', '?')}), Linux {m.get('kernel')}, "
            f"Python {m.get('python')}, {d.get('when')}")


def _lines(ax, doc: dict | None, styles: dict[str, str]) -> None:
    for name, s in (doc or {}).get("series", {}).items():
        pts = s["points"]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], styles.get(name, "o-"), label=name)
        ax.set_xlabel(s["x_label"])
        ax.set_ylabel(s["y_label"])


def draw(data: str, out: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name: str) -> None:
        path = os.path.join(out, name)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    cl = series.load(data, "cluster")
    if cl:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        _lines(ax, cl, {"pods end to end": "o-", "sandboxes": "s--"})
        ax.set_title("netsim: pods per second vs pods created\n" + _subtitle(cl), fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, "cluster.png")

    ipt, nft = series.load(data, "proxy_iptables"), series.load(data, "proxy_nftables")
    if ipt or nft:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        _lines(ax, ipt, {"iptables full sync": "o-", "iptables partial sync": "o:",
                         "bare iptables-restore": "x--"})
        _lines(ax, nft, {"nftables full sync": "s-", "nftables partial sync": "s:"})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("sync time (ms)")
        ax.set_xlabel("services (5 endpoints each)")
        ax.set_title("kube-proxy sync time vs services, per mode\n" + _subtitle(ipt, nft),
                     fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        save(fig, "proxy_sync.png")

    dns = series.load(data, "dns")
    if dns:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for name, s in dns["series"].items():
            labels = [p[0] for p in s["points"]]
            values = [p[1] for p in s["points"]]
            bars = ax.bar(labels, values, color=["#2563eb", "#94a3b8", "#64748b"][:len(values)])
            ax.bar_label(bars, fmt="%.0f")
            ax.set_ylabel(s["y_label"])
            ax.set_title(f"cluster DNS {name}\n" + _subtitle(dns), fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        save(fig, "dns.png")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.plots", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--no-run", action="store_true", help="only redraw from the recorded data")
    ap.add_argument("--only", default="cluster,proxy,dns", help="cluster,proxy,dns")
    ap.add_argument("--full", action="store_true", help="the benches' full sizes")
    ap.add_argument("--out", default=OUT, help="folder of the PNGs (data/ below it)")
    a = ap.parse_args(argv)
    only = [g for g in a.only.split(",") if g]
    bad = [g for g in only if g not in BENCHES]
    if bad:
        ap.error(f"unknown bench group {bad[0]} (cluster, proxy, dns)")
    data = os.path.join(a.out, "data")
    os.makedirs(data, exist_ok=True)
    if not a.no_run:
        if os.geteuid() != 0:
            sys.exit("the benches need root (network namespaces): sudo, or --no-run")
        run_benches(data, only, a.full)
    for path in draw(data, a.out):
        print(f"wrote {os.path.relpath(path, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
