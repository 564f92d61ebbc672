"""Issue #2 benchmark: cluster up/down time, sandboxes per second, pods per second end to end.

Small in CI (30 pods); `NETSIM_BENCH_FULL=1` for 300 pods across 3 nodes.
Run alone: `sudo python -m tests.bench.bench_cluster`. The last line is the headline figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.bench import series
from tests.conftest import is_root, wait_for

NAME = os.environ.get("NETSIM_BENCH_CLUSTER", "nsbench")
LAN = os.environ.get("NETSIM_BENCH_LAN", "192.168.79.0/24")
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
SIZES = series.sizes((300,) if FULL else (30,))  # pods; several for the chart (tests/bench/plots)

_PROBE = r"""
import socket, sys, time
ips = sys.argv[1:]
left = set(ips)
deadline = time.monotonic() + 120
while left and time.monotonic() < deadline:
    for ip in list(left):
        s = socket.socket(); s.settimeout(0.2)
        try:
            s.connect((ip, 8080)); s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if s.recv(12).startswith(b"HTTP/1."): left.discard(ip)
        except OSError: pass
        finally: s.close()
print(len(ips) - len(left))
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, "NETSIM_CLUSTER": NAME}, timeout=300)


def measure(N: int = SIZES[0]) -> dict:
    _cli("cluster", "down", "--name", NAME)
    t = time.monotonic()
    r = _cli("cluster", "up", "--name", NAME, "--lan", LAN)
    up_s = time.monotonic() - t
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        from netsim.api.client import HttpClient
        from netsim.net.topology import ClusterConfig
        cfg = ClusterConfig.load(NAME)
        sandbox_rate = _sandboxes(cfg, N)
        c = HttpClient(NAME)
        t = time.monotonic()
        for i in range(N):
            c.create({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"bench-{i}", "labels": {"app": "bench"}},
                      "spec": {"tolerations": [{"operator": "Exists"}],
                               "containers": [{"name": "echo", "image": "netsim/echo",
                                               "ports": [{"containerPort": 8080}]}]}})

        def running():
            ps = c.list("pods", "default", "app=bench")
            ips = [p["status"].get("podIP") for p in ps if p["status"].get("phase") == "Running"]
            return ips if len(ips) == N else None
        ips = wait_for(running, 300, 0.2, what=f"{N} pods Running")
        answered = subprocess.run(["ip", "netns", "exec", cfg.node_netns(cfg.nodes[0].name),
                                   sys.executable, "-c", _PROBE, *ips],
                                  capture_output=True, text=True, timeout=200).stdout.strip()
        e2e_s = time.monotonic() - t
        assert answered == str(N), answered
    finally:
        t = time.monotonic()
        _cli("cluster", "down", "--name", NAME)
        down_s = time.monotonic() - t
    return {"up_s": up_s, "down_s": down_s, "sandboxes_per_s": sandbox_rate,
            "pods": N, "e2e_pods_per_s": N / e2e_s}


def _sandboxes(cfg, N: int) -> float:
    """Sandbox setup alone: netns + veth + address + routes, in one node, then torn down."""
    code = r"""
import sys, time
from pyroute2 import netns
from netsim.kubelet import sandbox
from netsim.net.ledger import Ledger
cluster, node_ns, cidr, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
led = Ledger(cluster)
base = cidr.rsplit(".", 2)[0]
t = time.monotonic()
for i in range(n):
    sandbox.create(cluster, f"bench-sbx-{i:05d}", f"{base}.{100 + i // 200}.{2 + i % 200}", cidr, led)
dt = time.monotonic() - t
for i in range(n):
    sandbox.destroy(cluster, f"bench-sbx-{i:05d}", led)
print(n / dt)
"""
    node = cfg.nodes[-1]
    # a /16 so the bench addresses never collide with the node's real pods
    r = subprocess.run(["ip", "netns", "exec", cfg.node_netns(node.name), sys.executable, "-c",
                        code, cfg.name, cfg.node_netns(node.name), "10.250.0.0/16", str(N)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.strip())


def report(m: dict) -> None:
    for name, key in (("pods end to end", "e2e_pods_per_s"), ("sandboxes", "sandboxes_per_s")):
        series.point("cluster", name, m["pods"], m[key], x_label="pods created",
                     y_label="per second")
    print(f"cluster up (3 nodes):        {m['up_s']:.2f} s   (target <= 3 s)")
    print(f"cluster down:                {m['down_s']:.2f} s   (target <= 2 s)")
    print(f"sandboxes:                   {m['sandboxes_per_s']:.0f} /s (target >= 100/s)")
    print(f"pods end to end ({m['pods']}):      {m['e2e_pods_per_s']:.1f} /s (target >= 30/s)")
    print(f"headline: {m['e2e_pods_per_s']:.1f} pods/s end to end, up {m['up_s']:.2f} s, "
          f"down {m['down_s']:.2f} s")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_cluster():
    for n in SIZES:
        report(measure(n))


if __name__ == "__main__":
    for n in SIZES:
        report(measure(n))
