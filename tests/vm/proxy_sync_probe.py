"""Runs *inside* the VM (tests/vm/harness.py): kube-proxy's sync cost in IPVS mode against
iptables mode on the same emulated CPU, for tests/bench/bench_proxy_ipvs_vm.py.

    python3 tests/vm/harness.py tests/vm/proxy_sync_probe.py VENV_PYTHON TREE N [N ...]

For each size N (services x 5 endpoints, bench_proxy_sync's objects) and each mode, a fresh
node netns (a dummy eth0, as a node's LAN link) runs that mode's syncer as the node agent
does: the first sync into empty tables, a full resync of the same snapshot (what a restarted
agent or the 30 s resync pays), then one-endpoint partial syncs (one Service's endpoints
changed, as in a rolling update). Prints `NSIM sync=<json>` per size and mode: seconds (wall
and CPU of this process and its children: nft/iptables-restore/ipvsadm/ipset included).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time

from ipvs_sync_probe import node_netns  # its sibling in tests/vm: the script's own folder

ROUNDS = 3


def outer(py: str, tree: str, sizes: list[int]) -> int:
    rc = 0
    for n in sizes:
        for mode in ("iptables", "ipvs"):
            ns = f"psp-{mode}-{n}"
            node_netns(ns, "192.168.3.171/24")
            p = subprocess.run(["ip", "netns", "exec", ns, py, os.path.abspath(__file__),
                                "--inner", tree, mode, str(n)],
                               capture_output=True, text=True, timeout=3600)
            sys.stdout.write(p.stdout)
            sys.stdout.flush()
            if p.returncode != 0:
                print(f"NSIM sync_error={mode}/{n}: {p.stderr[-1500:]}", flush=True)
                rc = 1
            subprocess.run(["ip", "netns", "del", ns], check=False)
    return rc


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def inner(tree: str, mode: str, n: int) -> None:
    sys.path.insert(0, tree)
    from netsim.proxy.agent import Syncer
    from netsim.proxy.apply import Iptables
    from netsim.proxy.ipvs_apply import IpvsKernel, IpvsSyncer
    from tests.bench.bench_proxy_sync import snap

    syncer = IpvsSyncer(IpvsKernel(), Iptables()) if mode == "ipvs" else Syncer(Iptables())
    base, moved = snap(n), snap(n, shift=1)
    out: dict = {"mode": mode, "services": n}

    def timed(s, changed) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), _cpu()
        r = syncer.sync(s, changed)
        kind = "first" if "first" not in out else "full" if changed is None else "partial"
        if getattr(r, "steps", None):  # where the last sync of each kind spent its time
            out[kind + "_steps"] = {k: round(v, 2) for k, v in r.steps.items()}
        return time.perf_counter() - t0, _cpu() - c0

    out["first"], out["first_cpu"] = timed(base, None)
    def full() -> tuple[float, float]:
        if mode == "ipvs":  # IPVS's full resync is its periodic check: everything re-read
            syncer._checked_at = float("-inf")  # and re-applied (upstream: every syncPeriod)
        return timed(base, None)

    fulls = [full() for _ in range(ROUNDS)]
    partials = [timed(moved if k % 2 == 0 else base, {f"bench/svc-{n - 1}"})
                for k in range(ROUNDS)]
    out["full"] = statistics.median(w for w, _ in fulls)
    out["full_cpu"] = statistics.median(c for _, c in fulls)
    out["partial"] = statistics.median(w for w, _ in partials)
    out["partial_cpu"] = statistics.median(c for _, c in partials)
    if mode == "ipvs":
        table = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True).stdout
        out["virtual_servers"] = sum(1 for ln in table.splitlines() if ln.startswith("-A"))
        out["real_servers"] = sum(1 for ln in table.splitlines() if ln.startswith("-a"))
    print("NSIM sync=" + json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                     for k, v in out.items()}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(outer(sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]))
