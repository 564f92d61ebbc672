"""kube-proxy (iptables mode) with real packets: ClusterIP, NodePort, policies, affinity.

Backends are `netsim/echo` pods (JSON answer with `pod`, `pod_ip`, `client`). The master
(k8s-master-171) carries the control-plane taint, so it runs no backend: the "node without
a backend" of the NodePort tests.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import uuid

import pytest

from tests.conftest import requires_root, wait_for
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

TAG = uuid.uuid4().hex[:6]


def _ipt_save(cluster, node: str) -> str:
    from netsim.proxy.apply import Iptables
    return Iptables(netns=cluster.node_netns(node)).save()


def _hairpin_on(cluster, node: str) -> bool:
    p = cluster.in_netns(cluster.node_netns(node), "bridge", "-d", "link", "show")
    return "hairpin on" in p.stdout


@pytest.fixture(scope="module")
def echo(cluster):
    """3 echo pods (Deployment kp-echo) and its services; returns handy facts."""
    yield from echo_setup(cluster, "kp", (31080, 31081))


# --- ClusterIP -----------------------------------------------------------------------------

def test_clusterip_from_pods_on_both_workers_keeps_the_pod_ip(cluster, echo):
    url = f"http://{echo['cip']['cip']}/"
    for node in (W1, W2):
        client = pod_on(echo, node)
        me = client["metadata"]["name"]
        others = {n for p in echo["pods"].values() if p["metadata"]["name"] != me
                  for n in [p["spec"]["nodeName"]]}
        seen: list[dict] = []

        def from_every_node(me=me, others=others, seen=seen) -> bool:
            seen[:] = pod_many(cluster, me, url, 20)
            return {echo["pods"][a["pod"]]["spec"]["nodeName"] for a in seen
                    if a["pod"] != me} == others
        # kube-proxy syncs at most once a second (minSyncPeriod): endpoints that became
        # ready one after the other may reach a node's rules a second apart (CI: 20 requests
        # all answered by the local pods)
        wait_for(from_every_node, 20, 0.5, what="answers from pods on this node and the other")
        answers = seen
        assert len(answers) >= 10
        for a in answers:
            if a["pod"] != client["metadata"]["name"]:  # self-hits are hairpin-masqueraded
                assert a["client"].rsplit(":", 1)[0] == client["status"]["podIP"]


def test_clusterip_from_a_node(cluster, echo):
    rc, ans = curl(cluster, cluster.node_netns(MASTER), f"http://{echo['cip']['cip']}/")
    assert rc == 0 and ans["pod"] in echo["pods"]


def test_300_requests_spread_over_3_endpoints(cluster, echo):
    answers = curl_many(cluster, cluster.node_netns(MASTER), f"http://{echo['cip']['cip']}/", 300)
    assert len(answers) == 300
    counts = collections.Counter(a["pod"] for a in answers)
    assert set(counts) == set(echo["pods"])
    assert min(counts.values()) >= 60, counts


def test_client_ip_affinity_sticks_to_one_pod(cluster, echo):
    answers = curl_many(cluster, cluster.node_netns(W2), f"http://{echo['cip']['sticky']}/", 50)
    assert len(answers) == 50
    assert len({a["pod"] for a in answers}) == 1


def test_hairpin_pod_reaches_itself_through_its_service(cluster, echo):
    me = pod_on(echo, W1)["metadata"]["name"]
    assert _hairpin_on(cluster, W1), "hairpin_mode off on the pod's cni0 port"
    answers = pod_many(cluster, me, f"http://{echo['cip']['cip']}/", 40)
    assert me in {a["pod"] for a in answers}, "40 tries over 3 endpoints never hit itself"


def test_no_endpoints_is_refused_not_timed_out(cluster, echo):
    p = cluster.in_netns(cluster.node_netns(W1), "curl", "-s", "-m", "10",
                         f"http://{echo['cip']['none']}/")
    assert p.returncode == 7, f"curl exit {p.returncode} (7 = refused, 28 = timeout)"
    pod = pod_on(echo, W2)["metadata"]["name"]
    p = cluster.pod_exec(pod, "curl", "-s", "-m", "10", f"http://{echo['cip']['none']}/")
    assert p.returncode == 7


# --- NodePort ------------------------------------------------------------------------------

def test_nodeport_on_every_node_from_host_and_lan(cluster, echo):
    lan = cluster.lan_client("kpc1", lan_ip(cluster, 50))
    for node, ip in echo["ips"].items():
        for netns in (None, lan):  # None: the host (root netns) through its LAN veth
            rc, ans = curl(cluster, netns, f"http://{ip}:31080/")
            assert rc == 0, f"NodePort on {node} from {netns or 'host'}: curl exit {rc}"
            assert ans["pod"] in echo["pods"]
            # Cluster policy: SNAT to the node, the client address is not the LAN client's
            assert ans["client"].rsplit(":", 1)[0] != lan_ip(cluster, 50)


def test_nodeport_local_policy_keeps_client_ip_and_uses_local_pods(cluster, echo):
    lan = cluster.lan_client("kpc1", lan_ip(cluster, 50))
    for node in (W1, W2):
        answers = curl_many(cluster, lan, f"http://{echo['ips'][node]}:31081/", 10)
        assert len(answers) == 10
        assert {echo["pods"][a["pod"]]["spec"]["nodeName"] for a in answers} == {node}
        assert {a["client"].rsplit(":", 1)[0] for a in answers} == {lan_ip(cluster, 50)}
    # the master has no local endpoint: the traffic is dropped there
    rc, _ = curl(cluster, lan, f"http://{echo['ips'][MASTER]}:31081/", max_time=2)
    assert rc == 28


def test_nodeport_is_held_open_by_kube_proxy(cluster, echo):
    for node in echo["ips"]:
        p = cluster.in_netns(cluster.node_netns(node), "netstat", "-ntpl")
        line = next((ln for ln in p.stdout.splitlines() if ":31080 " in ln), "")
        assert "kube-proxy" in line, p.stdout


# --- endpoints following pods ------------------------------------------------------------

def _sep_count(cluster, node: str, svc: str) -> int:
    pat = re.compile(rf'--comment "?{NS}/{svc}"? .*-j DNAT')
    return sum(1 for ln in _ipt_save(cluster, node).splitlines() if pat.search(ln))


def test_readiness_failure_removes_the_endpoint(cluster):
    c = cluster.client
    flag = f"/tmp/netsim-kp-{TAG}-healthz"
    labels = {"app": "kp-ready"}
    pods = []
    for i in range(2):
        env = [{"name": "ECHO_FAIL_HEALTHZ_FILE", "value": f"{flag}-{i}"}]
        dep = echo_deployment(f"kp-ready-{i}", {**labels, "i": str(i)}, 1, env=env)
        c.create(dep)
        pods.append(f"kp-ready-{i}")
    svc = c.create(selector_service("kp-ready", labels))
    try:
        cluster.wait_pods_ready(NS, "app=kp-ready", 2)
        cip = svc["spec"]["clusterIP"]
        wait_for(lambda: _sep_count(cluster, MASTER, "kp-ready") == 2, 20, what="2 endpoints")
        open(f"{flag}-0", "w").close()
        wait_for(lambda: _sep_count(cluster, MASTER, "kp-ready") == 1, 20,
                 what="the unready endpoint leaves the rules")
        answers = curl_many(cluster, cluster.node_netns(MASTER), f"http://{cip}/", 20)
        assert len(answers) == 20
        assert {a["pod"].rsplit("-", 2)[0] for a in answers} == {"kp-ready-1"}
        os.unlink(f"{flag}-0")
        wait_for(lambda: _sep_count(cluster, MASTER, "kp-ready") == 2, 20, what="back again")
    finally:
        for i in range(2):
            if os.path.exists(f"{flag}-{i}"):
                os.unlink(f"{flag}-{i}")
            c.delete("deployments", f"kp-ready-{i}", NS)
        c.delete("services", "kp-ready", NS)


def test_scale_down_drops_one_endpoint(cluster):
    c = cluster.client
    c.create(echo_deployment("kp-scale", {"app": "kp-scale"}, 3))
    svc = c.create(selector_service("kp-scale", {"app": "kp-scale"}))
    try:
        cluster.wait_pods_ready(NS, "app=kp-scale", 3)
        for node in (MASTER, W1, W2):
            wait_for(lambda node=node: _sep_count(cluster, node, "kp-scale") == 3, 20,
                     what=f"3 endpoints on {node}")
        cluster.netsim("scale", "deployment/kp-scale", "--replicas=2")
        for node in (MASTER, W1, W2):
            wait_for(lambda node=node: _sep_count(cluster, node, "kp-scale") == 2, 30,
                     what=f"2 endpoints on {node}")
        answers = curl_many(cluster, cluster.node_netns(MASTER),
                             f"http://{svc['spec']['clusterIP']}/", 30)
        assert len(answers) == 30 and len({a["pod"] for a in answers}) == 2
    finally:
        c.delete("deployments", "kp-scale", NS)
        c.delete("services", "kp-scale", NS)


# --- what a user sees in iptables-save --------------------------------------------------

def test_seed_svc_np_ublog_chains_and_a_clean_root_netns(cluster):
    from netsim.proxy.iptables import (
        endpoint_chain_name,
        service_external_chain_name,
        service_port_chain_name,
    )
    c = cluster.client
    try:
        c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "uit"}})
    except Exception:
        pass
    dep = echo_deployment("myblog", {"app": "myblog"}, 2, port=8002)
    dep["metadata"]["namespace"] = "uit"
    c.create(dep)
    c.create(selector_service("svc-np-ublog", {"app": "myblog"}, typ="NodePort", node_port=32333,
                  target=8002, ns="uit"))
    try:
        pods = cluster.wait_pods_ready("uit", "app=myblog", 2)
        svc_chain = service_port_chain_name("uit/svc-np-ublog", "tcp")
        ext_chain = service_external_chain_name("uit/svc-np-ublog", "tcp")
        seps = {endpoint_chain_name("uit/svc-np-ublog", "tcp", f"{p['status']['podIP']}:8002")
                for p in pods}

        def rules():
            text = _ipt_save(cluster, W1)
            return text if all(s in text for s in seps) else None
        text = wait_for(rules, 20, what="svc-np-ublog rules on a node")
        lines = [ln for ln in text.splitlines() if "svc-np-ublog" in ln]
        assert any(f"--dport 32333 -j {ext_chain}" in ln and ln.startswith("-A KUBE-NODEPORTS")
                   for ln in lines)
        assert any(ln.startswith("-A KUBE-SERVICES") and f"-j {svc_chain}" in ln for ln in lines)
        assert any("--probability 0.5000000000" in ln and ln.startswith(f"-A {svc_chain}")
                   for ln in lines)
        for p in pods:
            assert f"-j DNAT --to-destination {p['status']['podIP']}:8002" in text
        for chain in ("KUBE-PROXY-CANARY", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"):
            assert f":{chain} - " in text
        p = cluster.in_netns(cluster.node_netns(W1), "netstat", "-ntpl")
        assert any(":32333 " in ln and "kube-proxy" in ln for ln in p.stdout.splitlines())
        # the seed's own command, as a user types it inside a node
        p = cluster.netsim("node", "exec", W1, "--", "sh", "-c", "iptables-save | grep svc-np-ublog")
        assert f"-j {svc_chain}" in p.stdout and "--dport 32333" in p.stdout, p.stdout + p.stderr
        for node, ip in ((MASTER, cluster.cfg.nodes[0].ip),):
            rc, _ = curl(cluster, None, f"http://{ip}:32333/blog/index/")
            assert rc == 0, node
    finally:
        c.delete("services", "svc-np-ublog", "uit")
        c.delete("deployments", "myblog", "uit")
    for tool in ("iptables-legacy-save", "iptables-nft-save", "iptables-save"):
        if subprocess.run(["which", tool], capture_output=True).returncode == 0:
            root = subprocess.run([tool], capture_output=True, text=True).stdout
            assert "KUBE-" not in root, f"{tool} in the root netns shows KUBE rules"


def test_canary_loss_triggers_a_full_resync(cluster, echo):
    from netsim.proxy.apply import Iptables
    ipt = Iptables(netns=cluster.node_netns(W2))
    ipt.run("-t", "nat", "-F", "KUBE-SERVICES")
    ipt.run("-t", "nat", "-X", "KUBE-PROXY-CANARY")
    assert ipt.run("-t", "nat", "-n", "-L", "KUBE-PROXY-CANARY").returncode != 0
    # KUBE-SVC chains survived the flush and mention the ClusterIP too: wait for the
    # KUBE-SERVICES rule itself, which only the full resync can bring back.
    wait_for(lambda: ipt.canaries_present()
             and f"-A KUBE-SERVICES -d {echo['cip']['cip']}/32" in ipt.save("nat"), 15,
             what="kube-proxy rebuilding the flushed rules")
    rc, _ = curl(cluster, cluster.node_netns(W2), f"http://{echo['cip']['cip']}/")
    assert rc == 0


def test_kube_proxy_refuses_the_root_netns(cluster):
    from netsim.proxy.agent import KubeProxy
    from netsim.proxy.apply import Iptables, RootNetnsError
    cfg = cluster.cfg
    kp = KubeProxy(cluster.client, cfg, cfg.nodes[0])
    with pytest.raises(RootNetnsError):
        kp.start()
    with pytest.raises(RootNetnsError):
        Iptables()


def test_the_rule_interpreter_reads_a_node_and_agrees_with_the_packets(cluster, echo):
    """netsim.inspect.ruleflow over a node's own iptables-save says what the packets in the
    tests above saw (tests/proxy_fixtures.py check_live_flows)."""
    from netsim.inspect.ruleflow import IptablesRules
    check_live_flows(lambda node: IptablesRules(_ipt_save(cluster, node)), cluster, echo,
                     (31080, 31081))
