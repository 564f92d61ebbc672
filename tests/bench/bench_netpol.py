"""Issue 13 benchmark: how long a NetworkPolicy change takes to reach every node, and TCP
connection setup latency to a pod selected by 0 vs 100 policies — in iptables and in
nftables mode (root; one cluster per mode, as tests/e2e/test_netpol_matrix.py).

    NETSIM_TEST_CLUSTER=x NETSIM_TEST_LAN=... pytest tests/bench/bench_netpol.py -s

Propagation: a `web` pod on every node (nodeName, so the control-plane node too) and a
policy selecting them all; from the API's answer to the create until every node's policy
rules hold it (the filter table read with iptables-save, or `nft list table ip
netsim-netpol`, in each node's netns every 10 ms, all nodes at once), likewise for the
delete; ROUNDS creates and deletes, the median and the worst; then the client pod
relabelled out of the policy's peers and back (its address leaves and re-enters every
node's rules: a partial update). Latency: ROUNDS x CONNECTS
sequential TCP connects (connect + close) from a client pod's netns to a web pod on
another node, with no policy, then with 100 policies selecting the server (each allowing
the client on one of 100 ports, 8080 last), so an allowed SYN walks every policy's rules.
The last line is the headline: the slowest node's median propagation time per mode.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import threading
import time

import pytest

from netsim.net.rtnl import in_netns
from netsim.netpol import nft
from netsim.netpol.agent import backend_for
from netsim.proxy.apply import Iptables, Nft
from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "netpol-bench"
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
ROUNDS = 10 if FULL else 3
CONNECTS = 1000 if FULL else 300
RESULTS: dict[str, dict] = {}


def _policy(i: int, port: int) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{i:03d}", "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                  "ports": [{"port": port}]}]}}


def _rules(netns: str, backend: str) -> str:
    if backend == "nftables":
        return Nft(netns=netns).list_table(nft.FAMILY, nft.TABLE) or ""
    return Iptables(netns=netns).save("filter")


def _until_every_node(netnss: list[str], backend: str, present: bool, text: str,
                      t0: float, timeout: float = 10) -> list[float]:
    """Seconds from t0 until each node's rules hold `text` (or no longer do): a plain
    string, or an address (`ip:` prefix: not part of a longer one)."""
    if text.startswith("ip:"):
        pat = re.compile(rf"(?<![\d.]){re.escape(text[3:])}(?![\d])")
        holds = lambda rules: bool(pat.search(rules))  # noqa: E731
    else:
        holds = lambda rules: text in rules  # noqa: E731
    out = [0.0] * len(netnss)
    errors: list[str] = []

    def watch(i: int, ns: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if holds(_rules(ns, backend)) == present:
                out[i] = time.monotonic() - t0
                return
            time.sleep(0.01)
        errors.append(ns)
    ts = [threading.Thread(target=watch, args=(i, ns)) for i, ns in enumerate(netnss)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, f"not {'applied' if present else 'removed'} on {errors} in {timeout}s"
    return out


def _connect_times(netns: str, ip: str, port: int, n: int) -> list[float]:
    res: list[float] = []

    def run() -> None:
        with in_netns(f"/run/netns/{netns}"):
            for _ in range(n):
                t = time.perf_counter()
                s = socket.create_connection((ip, port), timeout=2)
                s.close()
                res.append(time.perf_counter() - t)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert len(res) == n, "a connect failed"
    return res


def _ms(xs: list[float], q: float = 0.5) -> float:
    xs = sorted(xs)
    return xs[min(int(len(xs) * q), len(xs) - 1)] * 1000


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def mode(request, cluster):
    if (cluster.cfg.proxy_mode or "iptables") != request.param:
        cluster.recreate(request.param)
    yield request.param
    if request.param != "iptables":
        cluster.recreate("iptables")


def test_bench_netpol(cluster, mode):
    from netsim.inspect.capture import pod_netns  # noqa: PLC0415
    c = cluster.client
    backend = backend_for(cluster.cfg.proxy_mode)
    cluster.netsim("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                             f"  name: {NS}\n")
    nodes = [n.name for n in cluster.cfg.nodes]
    try:
        for i, node in enumerate(nodes):
            cluster.netsim("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"web-{i}", "namespace": NS, "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [
                    {"name": "c", "image": "netsim/echo", "ports": [{"containerPort": 8080}]}]}}))
        cluster.netsim("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "client", "namespace": NS, "labels": {"app": "client"}},
            "spec": {"nodeName": nodes[-1], "containers": [
                {"name": "c", "image": "busybox", "args": ["sleep", "3600"]}]}}))
        webs = cluster.wait_pods_ready(NS, "app=web", len(nodes))
        client = cluster.wait_pods_ready(NS, "app=client", 1)[0]
        target = next(p for p in webs if p["spec"]["nodeName"] != nodes[-1])
        ip, cns = target["status"]["podIP"], pod_netns(cluster.cfg, client)
        wait_for(lambda: _connect_times(cns, ip, 8080, 1), timeout=30, what="web answering")
        netnss = [cluster.node_netns(n) for n in nodes]

        # propagation: every node holds a selected pod, so every node's rules change
        marker = f"policy {NS}/p000"
        creates, deletes = [], []
        for _ in range(ROUNDS):
            t0 = time.monotonic()
            c.create(_policy(0, 8080))
            creates.append(_until_every_node(netnss, backend, True, marker, t0))
            t0 = time.monotonic()
            c.delete("networkpolicies", "p000", NS)
            deletes.append(_until_every_node(netnss, backend, False, marker, t0))
        slowest_create = [max(r) for r in creates]
        slowest_delete = [max(r) for r in deletes]

        # a pod's labels: the client relabelled out of the policy's peers and back (a set's
        # elements in nftables mode, the policy chain's lines in iptables mode), every node
        c.create(_policy(0, 8080))
        cip = client["status"]["podIP"]
        _until_every_node(netnss, backend, True, f"ip:{cip}", time.monotonic())
        relabels = []
        for _ in range(ROUNDS):
            for labels, present in (({"app": "client-x"}, False), ({"app": "client"}, True)):
                cur = c.get("pods", "client", NS)
                t0 = time.monotonic()
                c.update({**cur, "metadata": {**cur["metadata"], "labels": labels}})
                relabels.append(max(_until_every_node(netnss, backend, present, f"ip:{cip}",
                                                      t0)))
        c.delete("networkpolicies", "p000", NS)
        _until_every_node(netnss, backend, False, marker, time.monotonic())

        base = []
        for _ in range(ROUNDS):
            base += _connect_times(cns, ip, 8080, CONNECTS // ROUNDS)
        for i in range(100):
            c.create(_policy(i, 8080 if i == 99 else 9000 + i))
        t0 = time.monotonic()
        _until_every_node(netnss, backend, True, f"policy {NS}/p099", t0, timeout=30)
        loaded = []
        for _ in range(ROUNDS):
            loaded += _connect_times(cns, ip, 8080, CONNECTS // ROUNDS)
        r = RESULTS[mode] = {
            "create_ms": statistics.median(slowest_create) * 1000,
            "create_max_ms": max(slowest_create) * 1000,
            "delete_ms": statistics.median(slowest_delete) * 1000,
            "delete_max_ms": max(slowest_delete) * 1000,
            "relabel_ms": statistics.median(relabels) * 1000,
            "relabel_max_ms": max(relabels) * 1000,
            "base": (_ms(base), _ms(base, 0.99)), "loaded": (_ms(loaded), _ms(loaded, 0.99))}
        print(f"\nnetpol {mode}: policy create -> on all {len(nodes)} nodes: median "
              f"{r['create_ms']:.0f} ms, worst {r['create_max_ms']:.0f} ms; delete -> gone "
              f"everywhere: median {r['delete_ms']:.0f} ms, worst {r['delete_max_ms']:.0f} ms "
              f"({ROUNDS} rounds); a peer pod relabelled -> every node: median "
              f"{r['relabel_ms']:.0f} ms, worst {r['relabel_max_ms']:.0f} ms")
        print(f"netpol {mode}: TCP connect to a pod on another node, median/p99 of {CONNECTS}: "
              f"0 policies {r['base'][0]:.3f}/{r['base'][1]:.3f} ms, 100 policies selecting it "
              f"{r['loaded'][0]:.3f}/{r['loaded'][1]:.3f} ms")
        if len(RESULTS) == 2:
            ipt, nf = RESULTS["iptables"], RESULTS["nftables"]
            print(f"netpol headline: a policy change reaches every node in "
                  f"{ipt['create_ms']:.0f} ms (iptables) / {nf['create_ms']:.0f} ms (nftables) "
                  f"median; connect with 100 policies +{ipt['loaded'][0] - ipt['base'][0]:.3f} ms "
                  f"(iptables) / +{nf['loaded'][0] - nf['base'][0]:.3f} ms (nftables)")
    finally:
        cluster.netsim("delete", "namespace", NS, check=False, timeout=120)
        wait_for(lambda: not c.list("networkpolicies", NS), timeout=60, what="policies gone")
