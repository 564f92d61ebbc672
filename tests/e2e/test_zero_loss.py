"""Issue 18: no request lost while endpoints change, in every proxy mode.

Continuous load (HTTP through the ClusterIP from a pod, the NodePort and the ingress from a
LAN client, DNS lookups through kube-dns from the pod; tests/zero_loss.py) during rolling
updates of 3 and of 30 replicas, a scale from 10 to 1, the deletion of a coredns pod and a
drain of the node holding most endpoints: each change is repeated back to back until the
scenario has sent its 10,000 requests (the issue's size), so every request meets one. The
web pods have a preStop sleep of zero_loss.PRESTOP_SECONDS: not one request may fail.
(Without it some do, as on a real cluster: tests/bench/bench_zero_loss.py prints both
counts.)

And the classic DNS black hole: a client sending every query from the same UDP source port
keeps one conntrack entry, DNATed to the coredns pod its first query went to; once that pod
is deleted, kube-proxy deletes the entry and the next query is answered by another coredns
pod (without the cleanup every query times out for as long as the client keeps sending).

iptables mode runs on the session cluster; nftables on a cluster of its own
(`$NETSIM_TEST_CLUSTER-nft`, LAN `$NETSIM_TEST_LAN_NFT` or 192.168.73.0/24, as
tests/netns/test_kube_proxy_nft.py); ipvs where the kernel has IP_VS (tests/vm otherwise).
Select one with `-k iptables` / `-k nftables`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from netsim.proxy.ipvs_apply import unsupported_reason
from tests import zero_loss
from tests.conftest import TEST_CLUSTER, Cluster, is_root, requires_root, wait_for

pytestmark = requires_root

MIN_REQUESTS = 10000  # per scenario, over the four kinds of load
RATE = 80.0  # requests/s per kind of load
MAX_SECONDS = 300.0
OWN_CLUSTERS = {  # mode -> (cluster, LAN env, default LAN)
    "nftables": (TEST_CLUSTER + "-nft", "NETSIM_TEST_LAN_NFT", "192.168.73.0/24"),
    "ipvs": (TEST_CLUSTER[:5] + "-ipvs", "NETSIM_TEST_LAN_IPVS", "192.168.74.0/24"),
}


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module", params=["iptables", "nftables", "ipvs"])
def env(request):
    mode = request.param
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    own = None
    if mode == "iptables":
        cluster = request.getfixturevalue("cluster")
    else:
        if mode == "ipvs" and unsupported_reason(None):
            pytest.skip(f"ipvs: {unsupported_reason(None)} (tests/vm covers IPVS in a VM)")
        name, lan_env, lan = OWN_CLUSTERS[mode]
        own = cluster = Cluster(name, os.environ.get(lan_env, lan))
        _cli("cluster", "down", "--name", cluster.name)
        up = _cli("cluster", "up", "--name", cluster.name, "--lan", cluster.lan,
                  "--proxy-mode", mode)
        assert up.returncode == 0, up.stdout + up.stderr
    assert cluster.cfg.proxy_mode == mode
    e = zero_loss.setup(cluster, replicas=3, prestop=True)
    yield e
    zero_loss.teardown(e)
    if own is not None:
        _cli("cluster", "down", "--name", own.name, timeout=120)


def _assert_no_loss(result: zero_loss.Result) -> None:
    print(result.line())
    assert result.requests >= MIN_REQUESTS, result.line()
    assert result.failures == 0, result.line() + "\n" + "\n".join(result.errors())


SCENARIOS = {
    "rolling-update-3": lambda: zero_loss.rolling_update(3),
    "rolling-update-30": lambda: zero_loss.rolling_update(30),
    "scale-10-to-1": lambda: zero_loss.scale_down(10, 1),
    "delete-coredns-pod": zero_loss.delete_coredns,
    "drain": lambda: zero_loss.drain(6),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_request_fails_with_a_pre_stop_sleep(env, scenario):
    env.prestop = True
    _assert_no_loss(zero_loss.run(env, SCENARIOS[scenario](), MIN_REQUESTS, RATE, MAX_SECONDS,
                                  repeat=True))


def _flow_target(env, node: str, sport: int) -> str | None:
    """The coredns pod IP the fixed-port client's conntrack entry is DNATed to."""
    p = env.cluster.in_netns(env.cluster.node_netns(node), "conntrack", "-L", "-p", "udp",
                             "--orig-dst", env.dns_ip, "--orig-port-src", str(sport))
    for line in p.stdout.splitlines():
        srcs = [w.split("=", 1)[1] for w in line.split() if w.startswith("src=")]
        if len(srcs) == 2:
            return srcs[1]
    return None


def test_a_fixed_port_dns_client_follows_a_deleted_coredns_pod(env):
    """The DNS black hole: one source port, its coredns pod deleted, the next query answered."""
    sport = 40053
    client = env.cluster.client.get("pods", "client", zero_loss.NS)
    node = client["spec"]["nodeName"]
    wait_for(lambda: zero_loss.settled(env.cluster, "kube-system", "k8s-app=kube-dns", 2), 120,
             0.2, what="2 coredns pods Ready")
    load = zero_loss.Load(env, rate=5, timeout=1)
    cmd = [sys.executable, "-m", "netsim.cli.main", "exec", "-n", zero_loss.NS, "client", "--",
           *load._args("pod"), "--dns-fixed",
           f"fixed={env.dns_ip}:kubernetes.default.svc.cluster.local@{sport}"]
    load.procs["pod"] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env={**os.environ,
                                                         "NETSIM_CLUSTER": env.cluster.name})
    try:
        def answered() -> int:
            c = load.counts().get("fixed", {})
            return c.get("requests", 0) - c.get("failures", 0)
        wait_for(lambda: answered() >= 5, 60, 0.1, what="the fixed-port client answered")
        target = wait_for(lambda: _flow_target(env, node, sport), 10, 0.1,
                          what="the client's conntrack entry")
        pods = {p["status"].get("podIP"): p["metadata"]["name"]
                for p in env.cluster.client.list("pods", "kube-system", "k8s-app=kube-dns")}
        victim = pods[target]
        env.netsim("delete", "pod", "-n", "kube-system", victim, timeout=120)
        wait_for(lambda: victim not in {p["metadata"]["name"] for p in env.cluster.client.list(
            "pods", "kube-system", "k8s-app=kube-dns")}, 60, 0.1, what=f"{victim} gone")
        gone_at, before = time.monotonic(), answered()
        wait_for(lambda: answered() >= before + 3, 15, 0.1,
                 what="answers from the same source port after its coredns pod was deleted "
                      f"(stale conntrack entry to {target}?)")
        took = time.monotonic() - gone_at
        now = _flow_target(env, node, sport)
        live = {p["status"].get("podIP") for p in env.cluster.client.list(
            "pods", "kube-system", "k8s-app=kube-dns") if not p["metadata"].get(
                "deletionTimestamp")}
        assert now in live and now != target, (now, target, live)
    finally:
        result = load.stop() if load.procs["pod"].poll() is None else {}
        load.kill()
    fixed = result.get("fixed", {})
    print(f"fixed-port client: {fixed.get('failures')} of {fixed.get('requests')} queries "
          f"unanswered while {victim} went away; answered again {took:.1f} s after it was gone")
