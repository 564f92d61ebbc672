"""Bench: kube-proxy sync cost in one throw-away netns (root).

For N services x 5 endpoints: the agent's full sync (render + one iptables-restore) against
a bare `iptables-restore` of the same text (the kernel's own cost), then a partial sync
after one endpoint change. Small N by default (pytest and CI); NETSIM_BENCH_FULL=1 runs
100 / 1,000 / 5,000. Run as a script or with pytest; the last line is the headline.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from netsim.proxy.agent import Syncer  # noqa: E402
from netsim.proxy.apply import Iptables  # noqa: E402
from netsim.proxy.model import ProxySnapshot  # noqa: E402
from tests.bench import series  # noqa: E402

SIZES = series.sizes((100, 1000, 5000) if os.environ.get("NETSIM_BENCH_FULL") == "1" else (50,))
EPS = 5


BACKEND = "10.250.0.2"  # a real listener behind the first and the last service


def objects(n: int, shift: int = 0):
    svcs, slices = [], []
    for i in range(n):
        name = f"svc-{i}"
        svcs.append({"metadata": {"namespace": "bench", "name": name},
                     "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 2}",
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        eps = [{"addresses": [f"10.244.{(i * EPS + j) // 250 % 250}.{(i * EPS + j) % 250 + 2}"],
                "conditions": {"ready": True}, "nodeName": "n1"} for j in range(EPS)]
        if i in (0, n - 1):
            eps = [{"addresses": [BACKEND], "conditions": {"ready": True}, "nodeName": "n1"}]
        if shift and i == n - 1:  # a new ready endpoint: the service's rules change
            eps.append({"addresses": ["10.250.0.99"], "conditions": {"ready": True},
                        "nodeName": "n1"})
        slices.append({"metadata": {"namespace": "bench", "name": name + "-x",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "endpoints": eps})
    return svcs, slices


def snap(n: int, shift: int = 0) -> ProxySnapshot:
    s, e = objects(n, shift)
    return ProxySnapshot.from_objects(s, e, node_name="n1", node_ips=["192.168.3.171"],
                                      cluster_cidr="10.244.0.0/16")


def bench(n: int, netns: str) -> dict:
    ipt = Iptables(netns=netns)
    syncer = Syncer(ipt)
    base = snap(n)
    first = syncer.sync(base, None)  # includes jump rules, canaries, one iptables-save
    fulls, bares, partials, full_cpu, bare_cpu = [], [], [], [], []
    for _ in range(3):
        c0 = _cpu()
        fulls.append(syncer.sync(base, None).seconds)
        full_cpu.append(_cpu() - c0)
        t0, c0 = time.perf_counter(), _cpu()
        ipt.restore(syncer.last_text)
        bares.append(time.perf_counter() - t0)
        bare_cpu.append(_cpu() - c0)
    changed = snap(n, shift=1)
    for k in range(3):
        s = changed if k % 2 == 0 else base
        partials.append(syncer.sync(s, {f"bench/svc-{n - 1}"}).seconds)
    assert f"bench/svc-{n - 1}" in syncer.last_text
    syncer.sync(base, None)
    lat_first = connect_latency(netns, "10.96.0.2")
    last = n - 1
    lat_last = connect_latency(netns, f"10.96.{last // 250}.{last % 250 + 2}")
    return {"n": n, "first": first.seconds, "full": statistics.median(fulls),
            "bare": statistics.median(bares), "partial": statistics.median(partials),
            "bytes": first.text_bytes, "lat_first": lat_first, "lat_last": lat_last,
            "cpu_ratio": statistics.median(full_cpu) / statistics.median(bare_cpu)}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (render + iptables-restore):
    unlike wall time, not inflated by whatever else the machine runs."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_CONNECT = r"""
import socket, statistics, sys, time
ip, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    s = socket.socket()
    t = time.perf_counter()
    s.connect((ip, port))
    out.append(time.perf_counter() - t)
    s.close()
out.sort()
print(statistics.median(out), out[int(len(out) * 0.99) - 1])
"""


def connect_latency(netns: str, ip: str, count: int = 300, port: int = 80) -> tuple[float, float]:
    """(p50, p99) seconds of a TCP connect to a ClusterIP: the first packet walks the rules."""
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _CONNECT, ip,
                        str(count), str(port)], capture_output=True, text=True, timeout=120,
                       check=True)
    p50, p99 = (float(x) for x in r.stdout.split())
    return p50, p99


def backend(netns: str) -> subprocess.Popen:
    """A second netns at 10.250.0.2 with an HTTP echo, wired to the bench netns."""
    be = netns + "-be"
    subprocess.run(["ip", "netns", "add", be], check=True)
    cmds = [["ip", "-n", netns, "link", "add", "be0", "type", "veth", "peer", "name", "eth0",
             "netns", be],
            ["ip", "-n", netns, "addr", "add", "10.250.0.1/24", "dev", "be0"],
            ["ip", "-n", netns, "link", "set", "be0", "up"],
            ["ip", "-n", netns, "link", "set", "lo", "up"],
            # a route for ClusterIPs, as a node has, so OUTPUT reaches the DNAT rules
            ["ip", "-n", netns, "route", "add", "10.96.0.0/12", "dev", "be0"],
            ["ip", "-n", be, "addr", "add", f"{BACKEND}/24", "dev", "eth0"],
            ["ip", "-n", be, "link", "set", "eth0", "up"],
            ["ip", "-n", be, "link", "set", "lo", "up"]]
    for c in cmds:
        subprocess.run(c, check=True)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.Popen(["ip", "netns", "exec", be, sys.executable, "-S",
                          os.path.join(here, "netsim", "images", "echo.py"), "--port", "8080"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ok = subprocess.run(["ip", "netns", "exec", netns, "curl", "-s", "-m", "1",
                             f"http://{BACKEND}:8080/healthz"], capture_output=True)
        if ok.returncode == 0:
            break
        time.sleep(0.05)
    return p


def run() -> list[dict]:
    netns = f"bench-kp-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    server = backend(netns)
    try:
        results = []
        for n in SIZES:
            r = bench(n, netns)
            results.append(r)
            print(f"N={n:5d} x {EPS} eps: text {r['bytes'] / 1024:8.0f} KiB  first sync "
                  f"{r['first'] * 1e3:7.1f} ms  full {r['full'] * 1e3:7.1f} ms  bare restore "
                  f"{r['bare'] * 1e3:7.1f} ms  ratio {r['full'] / r['bare']:.2f}x (CPU "
                  f"{r['cpu_ratio']:.2f}x)  partial "
                  f"(1 endpoint) {r['partial'] * 1e3:6.1f} ms  first-packet connect p50/p99: "
                  f"first service {r['lat_first'][0] * 1e3:.3f}/{r['lat_first'][1] * 1e3:.3f} ms, "
                  f"last {r['lat_last'][0] * 1e3:.3f}/{r['lat_last'][1] * 1e3:.3f} ms", flush=True)
            for name, key in (("iptables full sync", "full"), ("iptables partial sync", "partial"),
                              ("bare iptables-restore", "bare")):
                series.point("proxy_iptables", name, n, r[key] * 1e3, x_label="services",
                             y_label="ms")
        last = results[-1]
        print(f"headline: N={last['n']} full sync {last['full'] / last['bare']:.2f}x bare "
              f"iptables-restore (CPU {last['cpu_ratio']:.2f}x), partial sync {last['partial'] * 1e3:.1f} ms, connect to the "
              f"last service p50 {last['lat_last'][0] * 1e3:.3f} ms")
        return results
    finally:
        server.terminate()
        server.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", netns + "-be"])
        subprocess.run(["ip", "netns", "del", netns])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_bench_proxy_sync():
    results = run()
    assert all(r["full"] > 0 and r["partial"] > 0 for r in results)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_proxy_sync needs root (it makes a throw-away netns)")
    run()
