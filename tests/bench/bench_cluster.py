"""Issues #2 and #16: cluster up/down time, the control plane's CPU per pod, sandboxes per
second, pods per second end to end.

What is measured, in the order printed:
- `cluster up` of NODES nodes, wall clock of the CLI: it returns when every Node is Ready
  (kubelet, kube-proxy and the NetworkPolicy agent running on each) and the add-ons'
  objects exist; then how long after that CoreDNS answers (its Deployment Available), and
  the CPU the whole start used (CLI, control plane, agents: what a 2-core machine pays);
- `cluster down` of that cluster with no pods;
- sandboxes per second (netns + veth + address + routes alone, in one node);
- a Deployment of PODS echo pods: Running and answering HTTP per second from the create,
  the control plane's CPU per pod (its CPU over the rollout less its idle rate, divided
  by the pods) and the agents' CPU per pod;
- `cluster down` with those pods.

Small in CI (3 nodes, 30 pods); `NETSIM_BENCH_FULL=1` for 10 nodes and 300 pods
(NETSIM_BENCH_NODES / NETSIM_BENCH_SIZES override). NETSIM_BENCH_SERVICE=1 puts a Service in
front of the Deployment: the EndpointSlice controller's writes and every node's kube-proxy
syncs count in the CPU per pod. Run alone:
`sudo python -m tests.bench.bench_cluster`. The last line is the headline figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.bench import series, stop_on_sigterm
from tests.conftest import is_root, wait_for

NAME = os.environ.get("NETSIM_BENCH_CLUSTER", "nsbench")
LAN = os.environ.get("NETSIM_BENCH_LAN", "192.168.79.0/24")
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
NODES = int(os.environ.get("NETSIM_BENCH_NODES") or (10 if FULL else 3))
SIZES = series.sizes((300,) if FULL else (30,))  # pods; several for the chart (tests/bench/plots)
SERVICE = os.environ.get("NETSIM_BENCH_SERVICE") == "1"
TICK = os.sysconf("SC_CLK_TCK")

_PROBE = r"""
import errno, resource, selectors, socket, sys, time
# Every pod at once (non-blocking, as many in flight as descriptors allow): one by one,
# 1,000 pods took ~2 s of the measurement itself.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = hard if hard != resource.RLIM_INFINITY else 1 << 16
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, 1 << 16)), hard))
room = max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64)
ips = sys.argv[1:]
left = set(ips)
deadline = time.monotonic() + 120
while left and time.monotonic() < deadline:
    for batch in [sorted(left)[i:i + room] for i in range(0, len(left), room)]:
        sel, until = selectors.DefaultSelector(), time.monotonic() + 5.0
        for ip in batch:
            s = socket.socket(); s.setblocking(False)
            if s.connect_ex((ip, 8080)) in (0, errno.EINPROGRESS):
                sel.register(s, selectors.EVENT_WRITE, ip)
            else:
                s.close()
        while sel.get_map() and time.monotonic() < until:
            for key, ev in sel.select(until - time.monotonic()):
                s, ip = key.fileobj, key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            raise OSError
                        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                        sel.modify(s, selectors.EVENT_READ, ip)
                        continue
                    if s.recv(12).startswith(b"HTTP/1."):
                        left.discard(ip)
                except OSError:
                    pass
                sel.unregister(s); s.close()
        for key in list(sel.get_map().values()):
            sel.unregister(key.fileobj); key.fileobj.close()
        sel.close()
    if left:
        time.sleep(0.2)
print(len(ips) - len(left))
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, "NETSIM_CLUSTER": NAME}, timeout=300)


def _timed_cli(*args: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the CLI and the children it waited for, result)."""
    before = os.times()
    t = time.monotonic()
    r = _cli(*args)
    wall = time.monotonic() - t
    after = os.times()
    return wall, (after.children_user + after.children_system
                  - before.children_user - before.children_system), r


def _daemons() -> dict[str, int]:
    """role -> pid of the cluster's recorded daemons."""
    out = {}
    with open(f"/var/lib/netsim/{NAME}/ledger.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("kind") == "process":
                out[rec["role"]] = rec["pid"]
    return out


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _cpu_by_role() -> dict[str, float]:
    return {role: _cpu(pid) for role, pid in _daemons().items()}


def _up() -> tuple[float, float]:
    """Bring the cluster up; (wall s of the CLI, CPU s of the whole start)."""
    _cli("cluster", "down", "--name", NAME)
    wall, cli_cpu, r = _timed_cli("cluster", "up", "--name", NAME, "--lan", LAN,
                                  "--nodes", str(NODES))
    assert r.returncode == 0, r.stdout + r.stderr
    return wall, cli_cpu + sum(_cpu_by_role().values())


def _available(c, name: str, namespace: str, want: int) -> bool:
    d = c.get("deployments", name, namespace)
    return (d.get("status") or {}).get("availableReplicas", 0) >= want


def measure(N: int = SIZES[0]) -> dict:
    from netsim.api.client import HttpClient
    from netsim.net.topology import ClusterConfig
    m: dict = {"pods": N, "nodes": NODES}
    # 1. up and down of an empty cluster
    m["up_s"], m["up_cpu_s"] = _up()
    c = HttpClient(NAME)
    t = time.monotonic()
    wait_for(lambda: _available(c, "coredns", "kube-system", 1), 120, 0.05,
             what="CoreDNS available")
    m["addons_s"] = time.monotonic() - t
    m["down_empty_s"], _, r = _timed_cli("cluster", "down", "--name", NAME)
    assert r.returncode == 0, r.stdout + r.stderr
    # 2. sandboxes, pods
    _up()
    try:
        cfg = ClusterConfig.load(NAME)
        m["sandboxes_per_s"] = _sandboxes(cfg, N)
        c = HttpClient(NAME)
        time.sleep(2)  # the start's own work settles; then the control plane's idle rate
        cp = _daemons()["controlplane"]
        agents = [pid for role, pid in _daemons().items() if role.startswith("agent/")]
        t, cpu0 = time.monotonic(), _cpu(cp)
        time.sleep(2)
        idle_rate = (_cpu(cp) - cpu0) / (time.monotonic() - t)
        t, cpu0 = time.monotonic(), _cpu(cp)
        agents0 = sum(_cpu(p) for p in agents)
        if SERVICE:
            c.create({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": "bench", "namespace": "default"},
                      "spec": {"selector": {"app": "bench"},
                               "ports": [{"port": 80, "targetPort": 8080}]}})
        c.create({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "bench", "namespace": "default"},
                  "spec": {"replicas": N, "selector": {"matchLabels": {"app": "bench"}},
                           "template": {"metadata": {"labels": {"app": "bench"}},
                                        "spec": {"containers": [{
                                            "name": "echo", "image": "netsim/echo",
                                            "ports": [{"containerPort": 8080}]}]}}}})

        def running():
            ps = c.list("pods", "default", "app=bench")
            ips = [p["status"].get("podIP") for p in ps if p["status"].get("phase") == "Running"]
            return ips if len(ips) == N else None
        ips = wait_for(running, 300, 0.2, what=f"{N} pods Running")
        answered = subprocess.run(["ip", "netns", "exec", cfg.node_netns(cfg.nodes[0].name),
                                   sys.executable, "-c", _PROBE, *ips],
                                  capture_output=True, text=True, timeout=200).stdout.strip()
        m["e2e_pods_per_s"] = N / (time.monotonic() - t)
        assert answered == str(N), answered
        # the rollout's tail: the Deployment's status, the last EndpointSlice writes
        wait_for(lambda: _available(c, "bench", "default", N), 120, 0.2,
                 what=f"{N} replicas available")
        time.sleep(1)
        spent = time.monotonic() - t
        m["cp_ms_per_pod"] = 1000 * (_cpu(cp) - cpu0 - idle_rate * spent) / N
        m["agents_ms_per_pod"] = 1000 * (sum(_cpu(p) for p in agents) - agents0) / N
    finally:
        m["down_s"], _, r = _timed_cli("cluster", "down", "--name", NAME)
    assert r.returncode == 0, r.stdout + r.stderr
    return m


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
    n, p = m["nodes"], m["pods"]
    print(f"load average:                     {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"cluster up ({n} nodes):            {m['up_s']:.2f} s   (target <= 2 s; "
          f"{m['up_cpu_s']:.2f} s CPU in all)")
    print(f"  CoreDNS available after up:     {m['addons_s']:.2f} s")
    print(f"cluster down (no pods):           {m['down_empty_s']:.2f} s   (target <= 2 s)")
    print(f"sandboxes:                        {m['sandboxes_per_s']:.0f} /s (target >= 100/s)")
    print(f"pods end to end ({p}):           {m['e2e_pods_per_s']:.1f} /s (target >= 30/s)")
    print(f"control plane CPU per pod:        {m['cp_ms_per_pod']:.1f} ms "
          f"(agents {m['agents_ms_per_pod']:.1f} ms)")
    print(f"cluster down ({p} pods):         {m['down_s']:.2f} s   (target <= 2 s)")
    behind = " behind a Service" if SERVICE else ""
    print(f"headline: up {m['up_s']:.2f} s ({n} nodes), down {m['down_s']:.2f} s ({p} pods{behind}), "
          f"control plane {m['cp_ms_per_pod']:.1f} ms CPU/pod, "
          f"{m['e2e_pods_per_s']:.1f} pods/s end to end")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_cluster():
    for n in SIZES:
        report(measure(n))


if __name__ == "__main__":
    stop_on_sigterm()
    for n in SIZES:
        report(measure(n))
