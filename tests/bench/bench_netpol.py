"""Issue 13 benchmark: how long a NetworkPolicy change takes to reach every node's rules,
and connection setup latency to a pod selected by 0 vs 100 policies.

Runs on the session test cluster (NETSIM_TEST_CLUSTER / NETSIM_TEST_LAN, tests/conftest.py):
`NETSIM_TEST_CLUSTER=x NETSIM_TEST_LAN=... pytest tests/bench/bench_netpol.py -s`.
Propagation: from the API's answer to the create until the filter table of the node
whose pod the policy selects (read with iptables-save in the node netns every 10 ms) holds
the policy's chain; likewise for the delete. Latency: the median and p99 of 300 TCP connects (connect + close) from a
client pod to a server pod on another node, with no policy, then with 100 policies
selecting the server (each allowing the client on one of 100 ports, the last one 8080),
so the allowed packet walks every policy chain.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import pytest

from netsim.netpol.render import POLICY_IN_PREFIX, _hash16
from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "netpol-bench"
PYTHON = sys.executable
CONNECTS = 300

_CONNECT = """
import socket, sys, time, json
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    t = time.perf_counter(); s = socket.create_connection((ip, port), timeout=2); s.close()
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def _policy(i: int, port: int) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i:03d}", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                  "ports": [{"port": port}]}]}}


def _has_chain(cluster, node: str, chain: str) -> bool:
    r = subprocess.run(["ip", "netns", "exec", cluster.node_netns(node), "iptables-legacy-save",
                        "-t", "filter"], capture_output=True, text=True, timeout=10)
    return f":{chain} " in r.stdout


def _latency(cluster, ip: str) -> tuple[float, float]:
    r = cluster.pod_exec("client", PYTHON, "-c", _CONNECT, ip, "8080", str(CONNECTS),
                         namespace=NS, timeout=120)
    assert r.returncode == 0, r.stderr
    times = sorted(json.loads(r.stdout))
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def test_bench_netpol(cluster):
    cluster.netsim("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                             f"  name: {NS}\n")
    nodes = [n.name for n in cluster.cfg.nodes]
    try:
        web = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
               "spec": {"nodeName": nodes[1], "containers": [
                   {"name": "c", "image": "netsim/echo", "ports": [{"containerPort": 8080}]}]}}
        client = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "client", "namespace": NS, "labels": {"app": "client"}},
                  "spec": {"nodeName": nodes[2], "containers": [
                      {"name": "c", "image": "busybox", "args": ["sleep", "3600"]}]}}
        for o in (web, client):
            cluster.netsim("apply", "-f", "-", input=json.dumps(o))
        cluster.wait_pods_ready(NS, "app=web", 1)
        cluster.wait_pods_ready(NS, "app=client", 1)
        ip = cluster.client.get("pods", "web", NS)["status"]["podIP"]
        wait_for(lambda: _latency(cluster, ip), timeout=30, what="web answering")

        # propagation: only web's node has a pod the policy selects, so only its rules
        # change (the other nodes render the same text and write nothing)
        chain = POLICY_IN_PREFIX + _hash16(f"{NS}/p000/ingress")
        t0 = time.monotonic()
        cluster.client.create(_policy(0, 8080))
        wait_for(lambda: _has_chain(cluster, nodes[1], chain), timeout=10, interval=0.01,
                 what="the policy chain on web's node")
        create_ms = (time.monotonic() - t0) * 1000
        t0 = time.monotonic()
        cluster.client.delete("networkpolicies", "p000", NS)
        wait_for(lambda: not _has_chain(cluster, nodes[1], chain), timeout=10, interval=0.01,
                 what="the policy chain gone")
        delete_ms = (time.monotonic() - t0) * 1000

        base = _latency(cluster, ip)
        for i in range(100):
            cluster.client.create(_policy(i, 8080 if i == 99 else 9000 + i))
        last = POLICY_IN_PREFIX + _hash16(f"{NS}/p099/ingress")
        wait_for(lambda: _has_chain(cluster, nodes[1], last), timeout=30, interval=0.05,
                 what="100 policies applied")
        loaded = _latency(cluster, ip)
        print(f"\nnetpol: policy create -> rules on the node {create_ms:.0f} ms, delete -> gone "
              f"{delete_ms:.0f} ms; TCP connect to the pod, median/p99: 0 policies "
              f"{base[0]:.2f}/{base[1]:.2f} ms, 100 policies {loaded[0]:.2f}/{loaded[1]:.2f} ms")
    finally:
        cluster.netsim("delete", "namespace", NS, check=False, timeout=120)
