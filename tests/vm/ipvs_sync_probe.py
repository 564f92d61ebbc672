"""Runs *inside* the VM (tests/vm/harness.py): what one kube-proxy IPVS sync costs there, and
how many processes it starts (under emulation each start costs about a second, so the
count decides a sync's time more than anything it renders).

    python3 tests/vm/harness.py tests/vm/ipvs_sync_probe.py VENV_PYTHON TREE [TREE ...]

For each TREE (a netsim source tree, e.g. this one and `git archive` of an older commit)
a fresh node netns runs that tree's IpvsSyncer as the node agent does (inside the netns,
after each sync the UDP conntrack cleanup): a first sync of SERVICES services (3 endpoints
each, every other one a NodePort, and a UDP kube-dns), then syncs with nothing changed
(another Service's event woke the agent), then syncs that each move one endpoint (a
rolling update). Prints `NSIM probe=<json>` per tree: median seconds and processes started
per kind of sync.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

SERVICES = 20
ROUNDS = 5


def node_netns(ns: str, address: str) -> None:
    """A throw-away node netns: lo up, a dummy eth0 with `address` (the node's LAN link)."""
    for cmd in (["ip", "netns", "add", ns], ["ip", "-n", ns, "link", "set", "lo", "up"],
                ["ip", "-n", ns, "link", "add", "eth0", "type", "dummy"],
                ["ip", "-n", ns, "addr", "add", address, "dev", "eth0"],
                ["ip", "-n", ns, "link", "set", "eth0", "up"]):
        subprocess.run(cmd, check=True)


def outer(py: str, trees: list[str]) -> int:
    rc = 0
    for i, tree in enumerate(trees):
        ns = f"vmp{i}"
        node_netns(ns, "192.168.120.2/24")
        p = subprocess.run(["ip", "netns", "exec", ns, py, os.path.abspath(__file__), "--inner",
                            tree], capture_output=True, text=True, timeout=1800)
        sys.stdout.write(p.stdout)
        if p.returncode != 0:
            print(f"NSIM probe_error={tree}: {p.stderr[-1500:]}", flush=True)
            rc = 1
    return rc


def inner(tree: str) -> None:
    sys.path.insert(0, tree)
    import netsim.proxy.conntrack as conntrack
    from netsim.proxy.apply import Iptables
    from netsim.proxy.ipvs_apply import IpvsKernel, IpvsSyncer
    from netsim.proxy.model import ProxySnapshot

    starts: list[str] = []
    real_run = subprocess.run

    def counting_run(argv, *a, **kw):
        starts.append(" ".join(str(x) for x in argv[:2]))
        return real_run(argv, *a, **kw)
    subprocess.run = counting_run  # every module calls subprocess.run through the module

    cleaner = conntrack.StaleEntryCleaner() if hasattr(conntrack, "StaleEntryCleaner") else None

    def objects(shift: int):
        services, slices = [], []
        for i in range(SERVICES):
            spec = {"clusterIP": f"10.96.1.{i + 10}", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP",
                 **({"nodePort": 30100 + i} if i % 2 else {})}]}
            if i % 2:
                spec["type"] = "NodePort"
            services.append({"metadata": {"namespace": "default", "name": f"s{i}",
                                          "resourceVersion": "1"}, "spec": spec})
            moved = shift if i == 0 else 0  # s0's endpoints move on each change
            eps = [{"addresses": [f"10.244.{1 + (i + k) % 3}.{10 + i * 4 + k + moved}"],
                    "nodeName": f"n{(i + k) % 3}", "conditions": {"ready": True}}
                   for k in range(3)]
            slices.append({"metadata": {"namespace": "default", "name": f"s{i}-x",
                                        "resourceVersion": str(shift),
                                        "labels": {"kubernetes.io/service-name": f"s{i}"}},
                           "addressType": "IPv4", "endpoints": eps,
                           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        services.append({"metadata": {"namespace": "kube-system", "name": "kube-dns"},
                         "spec": {"clusterIP": "10.96.0.10", "ports": [
                             {"name": "dns", "port": 53, "protocol": "UDP"}]}})
        slices.append({"metadata": {"namespace": "kube-system", "name": "kube-dns-x",
                                    "labels": {"kubernetes.io/service-name": "kube-dns"}},
                       "addressType": "IPv4", "endpoints": [
                           {"addresses": ["10.244.1.2"], "nodeName": "n1",
                            "conditions": {"ready": True}}],
                       "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]})
        return ProxySnapshot.from_objects(services, slices, node_name="n0",
                                          node_ips=["192.168.120.2"],
                                          cluster_cidr="10.244.0.0/16")

    syncer = IpvsSyncer(IpvsKernel(), Iptables())
    runs: dict[str, list[tuple[float, int]]] = {"first": [], "unchanged": [], "one_endpoint": []}
    last: dict[str, list[str]] = {}

    def one(kind: str, snap, changed) -> None:
        n0, t0 = len(starts), time.perf_counter()
        syncer.sync(snap, changed)
        if cleaner is not None:
            cleaner.clean(snap)
        else:
            conntrack.clean_stale_entries(snap)
        runs[kind].append((time.perf_counter() - t0, len(starts) - n0))
        last[kind] = starts[n0:]

    one("first", objects(0), None)
    for _ in range(ROUNDS):
        one("unchanged", objects(0), set())
    for r in range(ROUNDS):
        one("one_endpoint", objects(r + 1), {"default/s0"})
    table = real_run(["ipvsadm", "-Sn"], capture_output=True, text=True).stdout
    out = {"tree": tree, "services": SERVICES + 1,
           "virtual_servers": sum(1 for ln in table.splitlines() if ln.startswith("-A")),
           "real_servers": sum(1 for ln in table.splitlines() if ln.startswith("-a"))}
    for kind, vals in runs.items():
        out[kind] = {"median_s": round(statistics.median(v[0] for v in vals), 3),
                     "processes": statistics.median(v[1] for v in vals)}
    out["processes_of_each_kind"] = last
    print("NSIM probe=" + json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--inner":
        inner(sys.argv[2])
    else:
        sys.exit(outer(sys.argv[1], sys.argv[2:]))
