"""kube-proxy in nftables mode with real packets, on a cluster of its own.

The cluster (`$NETSIM_TEST_CLUSTER-nft`, LAN `$NETSIM_TEST_LAN_NFT` or 192.168.73.0/24) is
made with `cluster up --proxy-mode nftables` for this module only, so the session cluster
of the iptables tests keeps its mode. Backends are `netsim/echo` pods (JSON answer with
`pod`, `pod_ip`, `client`); the master carries the control-plane taint and runs none.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys

import pytest

from netsim.proxy import nftables
from tests.conftest import TEST_CLUSTER, Cluster, is_root, requires_root, wait_for
from tests.proxy_fixtures import (
    MASTER,
    NS,
    W1,
    W2,
    check_live_flows,
    curl,
    curl_many,
    echo_deployment,
    echo_setup,
    lan_ip,
    pod_many,
    pod_on,
    selector_service,
)

pytestmark = requires_root

NFT_CLUSTER = TEST_CLUSTER + "-nft"
NFT_LAN = os.environ.get("NETSIM_TEST_LAN_NFT", "192.168.73.0/24")


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def nft_cluster():
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    c = Cluster(NFT_CLUSTER, NFT_LAN)
    _cli("cluster", "down", "--name", c.name)
    up = _cli("cluster", "up", "--name", c.name, "--lan", c.lan, "--proxy-mode", "nftables")
    assert up.returncode == 0, up.stdout + up.stderr
    assert c.cfg.proxy_mode == "nftables"
    yield c
    _cli("cluster", "down", "--name", c.name, timeout=120)


def _nft_table(cluster, node: str) -> str:
    p = cluster.in_netns(cluster.node_netns(node), "nft", "list", "table", "ip", "kube-proxy")
    return p.stdout if p.returncode == 0 else ""


@pytest.fixture(scope="module")
def echo(nft_cluster):
    yield from echo_setup(nft_cluster, "kn", (31180, 31181))


def test_clusterip_from_a_pod_on_another_node_keeps_the_pod_ip(nft_cluster, echo):
    client = pod_on(echo, W1)
    me = client["metadata"]["name"]
    seen: list[dict] = []

    def remote_answers() -> list[dict]:
        answers = pod_many(nft_cluster, me, f"http://{echo['cip']['cip']}/", 20)
        seen[:] = answers
        return [a for a in answers if echo["pods"][a["pod"]]["spec"]["nodeName"] == W2]
    # kube-proxy syncs at most once a second (minSyncPeriod): endpoints that became ready
    # one after the other may reach this node's rules a second apart
    remote = wait_for(remote_answers, 20, 0.5,
                      what="an answer from the pods on the other worker")
    assert len(seen) >= 10
    for a in remote:
        assert a["client"].rsplit(":", 1)[0] == client["status"]["podIP"]


def test_nodeport_on_every_node_from_the_host(nft_cluster, echo):
    for node, ip in echo["ips"].items():
        rc, ans = curl(nft_cluster, None, f"http://{ip}:31180/")
        assert rc == 0, f"NodePort on {node} from the host: curl exit {rc}"
        assert ans["pod"] in echo["pods"]


def test_300_requests_spread_over_3_endpoints(nft_cluster, echo):
    answers = curl_many(nft_cluster, nft_cluster.node_netns(MASTER),
                         f"http://{echo['cip']['cip']}/", 300)
    assert len(answers) == 300
    counts = collections.Counter(a["pod"] for a in answers)
    assert set(counts) == set(echo["pods"])
    assert min(counts.values()) >= 60, counts


def test_client_ip_affinity_sticks_to_one_pod(nft_cluster, echo):
    answers = curl_many(nft_cluster, nft_cluster.node_netns(W2),
                         f"http://{echo['cip']['sticky']}/", 50)
    assert len(answers) == 50
    assert len({a["pod"] for a in answers}) == 1
    table = _nft_table(nft_cluster, W2)
    assert "flags dynamic,timeout" in table and "timeout 3h" in table


def test_no_endpoints_is_refused_not_timed_out(nft_cluster, echo):
    p = nft_cluster.in_netns(nft_cluster.node_netns(W1), "curl", "-s", "-m", "10",
                             f"http://{echo['cip']['none']}/")
    assert p.returncode == 7, f"curl exit {p.returncode} (7 = refused, 28 = timeout)"
    pod = pod_on(echo, W2)["metadata"]["name"]
    p = nft_cluster.pod_exec(pod, "curl", "-s", "-m", "10", f"http://{echo['cip']['none']}/")
    assert p.returncode == 7


def test_local_policy_keeps_the_client_ip_and_uses_local_pods(nft_cluster, echo):
    client_ip = lan_ip(nft_cluster, 50)
    lan = nft_cluster.lan_client("knc1", client_ip)
    for node in (W1, W2):
        answers = curl_many(nft_cluster, lan, f"http://{echo['ips'][node]}:31181/", 10)
        assert len(answers) == 10
        assert {echo["pods"][a["pod"]]["spec"]["nodeName"] for a in answers} == {node}
        assert {a["client"].rsplit(":", 1)[0] for a in answers} == {client_ip}
    # the master has no local endpoint: dropped there (no-endpoint-nodeports: drop)
    rc, _ = curl(nft_cluster, lan, f"http://{echo['ips'][MASTER]}:31181/", max_time=2)
    assert rc == 28


def test_nft_table_shows_the_service_chains(nft_cluster, echo):
    table = wait_for(lambda: _nft_table(nft_cluster, W1), 10, what="table ip kube-proxy")
    base = nftables.service_chain_base(NS, "kn-echo", "tcp", "")
    assert f"chain service-{base} {{" in table
    for p in echo["pods"].values():
        ep = nftables.endpoint_chain_base(NS, "kn-echo", "tcp", "", f"{p['status']['podIP']}:8080")
        assert f"chain endpoint-{ep} {{" in table
        assert f"dnat to {p['status']['podIP']}:8080" in table
    assert "numgen random mod 3 vmap" in table
    assert f"{echo['cip']['cip']} . tcp . 80 : goto service-{base}" in table
    assert "ip daddr . meta l4proto . th dport vmap @service-ips" in table
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport " \
           "vmap @service-nodeports" in table
    # the NodePort is still held open by kube-proxy, and no KUBE-* iptables rules exist
    p = nft_cluster.in_netns(nft_cluster.node_netns(W1), "netstat", "-ntpl")
    assert any(":31180 " in ln and "kube-proxy" in ln for ln in p.stdout.splitlines())
    for tool in ("iptables-legacy-save", "iptables-save"):
        q = nft_cluster.in_netns(nft_cluster.node_netns(W1), tool)
        if q.returncode == 0:
            assert "KUBE-SVC-" not in q.stdout


def _endpoint_chains(cluster, node: str, svc: str) -> int:
    pat = re.compile(rf"^\s*chain endpoint-\w+-{NS}/{svc}/", re.M)
    return len(pat.findall(_nft_table(cluster, node)))


def test_scale_down_is_a_partial_sync_and_the_stale_chain_goes(nft_cluster):
    c = nft_cluster.client
    c.create(echo_deployment("kn-scale", {"app": "kn-scale"}, 3))
    svc = c.create(selector_service("kn-scale", {"app": "kn-scale"}))
    try:
        nft_cluster.wait_pods_ready(NS, "app=kn-scale", 3)
        for node in (MASTER, W1, W2):
            wait_for(lambda node=node: _endpoint_chains(nft_cluster, node, "kn-scale") == 3, 20,
                     what=f"3 endpoint chains on {node}")
        nft_cluster.netsim("scale", "deployment/kn-scale", "--replicas=2")
        for node in (MASTER, W1, W2):
            # flushed at once, deleted a second later by the next transaction
            wait_for(lambda node=node: _endpoint_chains(nft_cluster, node, "kn-scale") == 2, 30,
                     what=f"2 endpoint chains on {node}")
        answers = curl_many(nft_cluster, nft_cluster.node_netns(MASTER),
                             f"http://{svc['spec']['clusterIP']}/", 30)
        assert len(answers) == 30 and len({a["pod"] for a in answers}) == 2
        log = open(f"/var/lib/netsim/{nft_cluster.name}/logs/agent-{W1}.log").read()
        assert re.search(r"partial sync #\d+ \(\d+ changed\)", log)
    finally:
        c.delete("deployments", "kn-scale", NS)
        c.delete("services", "kn-scale", NS)


def test_deleted_table_triggers_a_full_resync(nft_cluster, echo):
    netns = nft_cluster.node_netns(W2)
    p = nft_cluster.in_netns(netns, "nft", "delete", "table", "ip", "kube-proxy")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: f"{echo['cip']['cip']} . tcp . 80 : goto" in _nft_table(nft_cluster, W2), 15,
             what="kube-proxy rebuilding table ip kube-proxy")
    rc, _ = curl(nft_cluster, netns, f"http://{echo['cip']['cip']}/")
    assert rc == 0


def test_root_netns_has_no_kube_proxy_table(nft_cluster, echo):
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    assert "kube-proxy" not in p.stdout
    from netsim.proxy.apply import Nft, RootNetnsError
    with pytest.raises(RootNetnsError):
        Nft()


def test_the_rule_interpreter_reads_a_node_and_agrees_with_the_packets(nft_cluster, echo):
    """netsim.inspect.ruleflow over a node's `nft list table ip kube-proxy` says what the
    packets in the tests above saw (tests/proxy_fixtures.py check_live_flows)."""
    from netsim.inspect.ruleflow import NftRules

    def rules_of(node):
        rules = NftRules.from_listing(_nft_table(nft_cluster, node))
        assert rules.check_rule_jumps() == []
        return rules
    check_live_flows(rules_of, nft_cluster, echo, (31180, 31181))
