"""`netsim trace` and `netsim capture` on a live cluster, with real packets (issue 14), in
iptables and nftables mode (the test cluster is brought up again in nftables mode for the
second half, and back in iptables mode after it).

Pods are pinned to nodes (spec.nodeName) so that "on another node" and "on the same node"
are facts, not luck: trc-client and trc-peer on k8s-slave-172, trc-server on k8s-slave-173.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = requires_root

NS = "trc"
W1, W2 = "k8s-slave-172", "k8s-slave-173"
NODE_PORT = 31390


def _pod(name: str, node: str, app: str) -> dict:
    c = {"name": "echo", "image": "netsim/echo", "args": ["--port", "8080"],
         "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
            "spec": {"nodeName": node, "containers": [c]}}


def _svc(name: str, app: str, node_port: int | None = None) -> dict:
    port = {"port": 80, "targetPort": 8080, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "selector": {"app": app},
                     "ports": [port]}}


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def mode(request, cluster):
    """The session's cluster in iptables mode, then the same cluster in nftables mode."""
    if request.param == "nftables":
        cluster.recreate("nftables")
    yield request.param
    if request.param == "nftables":
        cluster.recreate("iptables")


@pytest.fixture(scope="module")
def trc(cluster, mode):
    c = cluster.client
    cluster.netsim("delete", "namespace", NS, "--ignore-not-found", timeout=120)
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for name, node, app in (("trc-client", W1, "trc-client"), ("trc-peer", W1, "trc-peer"),
                            ("trc-server", W2, "trc-srv")):
        c.create(_pod(name, node, app))
    for svc in (_svc("trc-srv", "trc-srv"), _svc("trc-np", "trc-srv", NODE_PORT),
                _svc("trc-none", "trc-nobody")):
        c.create(svc)
    for app in ("trc-client", "trc-peer", "trc-srv"):
        cluster.wait_pods_ready(NS, f"app={app}", 1, timeout=90)
    pods = {p["metadata"]["name"]: p for p in c.list("pods", NS)}
    cip = c.get("services", "trc-srv", NS)["spec"]["clusterIP"]

    def answers() -> bool:  # the rules are in place on W1 once the ClusterIP answers there
        p = cluster.in_netns(cluster.node_netns(W1), "curl", "-s", "-m", "2", f"http://{cip}/")
        return p.returncode == 0
    wait_for(answers, 30, what="trc-srv answering on " + W1)
    yield {"pods": pods, "cip": cip, "mode": mode}
    cluster.netsim("delete", "namespace", NS, check=False, timeout=120)


def trace(cluster, *args: str) -> dict:
    p = cluster.netsim("-n", NS, "trace", *args, "-o", "json", timeout=60)
    return json.loads(p.stdout)


def test_pod_to_clusterip_on_another_node(cluster, trc):
    from netsim.proxy.iptables import endpoint_chain_name, service_port_chain_name
    from netsim.proxy.nftables import endpoint_chain_base, service_chain_base
    server_ip = trc["pods"]["trc-server"]["status"]["podIP"]
    j = trace(cluster, "pod/trc-client", "svc/trc-srv")
    assert (j["from"], j["to"], j["verdict"]) == (f"pod/{NS}/trc-client", f"svc/{NS}/trc-srv",
                                                  "delivered")
    assert j["delivered_to"] == {"pod": f"{NS}/trc-server", "ip": server_ip, "port": 8080}
    if trc["mode"] == "iptables":
        nat = [h for h in j["hops"] if h["table"] == "nat" and h["at"] == f"node/{W1}"]
        svc_chain = service_port_chain_name(f"{NS}/trc-srv", "tcp")
        sep_chain = endpoint_chain_name(f"{NS}/trc-srv", "tcp", f"{server_ip}:8080")
        first = ["PREROUTING", "KUBE-SERVICES", svc_chain]
    else:
        nat = [h for h in j["hops"] if h["table"] == "kube-proxy" and h["at"] == f"node/{W1}"
               and not h["chain"].startswith("filter-")]
        svc_chain = "service-" + service_chain_base(NS, "trc-srv", "tcp", "")
        sep_chain = "endpoint-" + endpoint_chain_base(NS, "trc-srv", "tcp", "",
                                                      f"{server_ip}:8080")
        first = ["nat-prerouting", "services", svc_chain]
    chains = [h["chain"] for h in nat]
    assert chains[:3] == first, chains
    assert sep_chain in chains
    dnat = next(h for h in nat if h["action"].startswith("DNAT"))
    assert (dnat["chain"], dnat["action"]) == (sep_chain, f"DNAT to {server_ip}:8080")
    w2_ip = next(n.ip for n in cluster.cfg.nodes if n.name == W2)
    assert any(h["action"] == f"forward to node/{W2} ({w2_ip})" for h in j["hops"])
    assert j["hops"][-1]["at"] == f"pod/{NS}/trc-server"
    # the text form walks the same chains, like the seed's iptables-save greps
    p = cluster.netsim("-n", NS, "trace", "pod/trc-client", "svc/trc-srv")
    table = "nat" if trc["mode"] == "iptables" else "kube-proxy"
    assert f"  {table}/{svc_chain}: " in p.stdout
    # the probe's conntrack entry on the NATing node: replies come back from the endpoint
    assert re.search(rf"^conntrack node/{W1}: tcp .* src={server_ip} dst=\S+ sport=8080 ",
                     p.stdout, re.M), p.stdout
    assert p.stdout.rstrip().endswith(f"verdict: delivered (pod/{NS}/trc-server {server_ip}:8080)")


def test_service_without_endpoints_is_rejected(cluster, trc):
    j = trace(cluster, "pod/trc-client", "svc/trc-none")
    assert (j["verdict"], j["delivered_to"]) == ("rejected", None)
    last = j["hops"][-1]
    if trc["mode"] == "iptables":
        assert (last["at"], last["table"], last["chain"], last["action"]) == (
            f"node/{W1}", "filter", "KUBE-SERVICES", "REJECT")
        assert f'"{NS}/trc-none has no endpoints"' in last["rule"]
    else:  # the no-endpoint-services map sends it to reject-chain
        assert (last["at"], last["chain"], last["rule"], last["action"]) == (
            f"node/{W1}", "reject-chain", "reject", "REJECT")
        assert j["hops"][-2]["action"] == "verdict map @no-endpoint-services -> reject-chain"


def test_pod_to_pod_ip_on_the_same_node(cluster, trc):
    peer_ip = trc["pods"]["trc-peer"]["status"]["podIP"]
    j = trace(cluster, "pod/trc-client", "pod/trc-peer")
    assert j["verdict"] == "delivered"
    assert j["delivered_to"] == {"pod": f"{NS}/trc-peer", "ip": peer_ip, "port": 8080}
    assert not any(h["action"].startswith("DNAT") for h in j["hops"])
    assert any(h["at"] == f"node/{W1}" and h["interface"] == "cni0" and "dev cni0" in h["rule"]
               for h in j["hops"])
    j = trace(cluster, "pod/trc-client", peer_ip, "--port", "8080")  # the bare IP, too
    assert j["delivered_to"]["pod"] == f"{NS}/trc-peer"


def test_host_to_nodeport_on_every_node(cluster, trc):
    from netsim.proxy.nftables import service_chain_base
    server_ip = trc["pods"]["trc-server"]["status"]["podIP"]
    for node in cluster.cfg.nodes:
        j = trace(cluster, "host", f"node/{node.name}", "--port", str(NODE_PORT))
        assert (j["from"], j["to"], j["verdict"]) == ("host", f"node/{node.name}", "delivered")
        assert j["delivered_to"] == {"pod": f"{NS}/trc-server", "ip": server_ip, "port": 8080}
        chains = [h["chain"] for h in j["hops"] if h["at"] == f"node/{node.name}"]
        if trc["mode"] == "iptables":
            assert "KUBE-NODEPORTS" in chains, chains
        else:  # services' vmap of node ports sends it to the Service's external chain
            ext = "external-" + service_chain_base(NS, "trc-np", "tcp", "")
            assert any(h["chain"] == "services" and h["action"].endswith(f"nodeports -> {ext}")
                       for h in j["hops"]), j["hops"]


def test_a_trace_leaves_no_rule_and_no_process(cluster, trc):
    from netsim.proxy.apply import Iptables, Nft
    ipt = Iptables(netns=cluster.node_netns(W1))
    nft = Nft(netns=cluster.node_netns(W1))

    def rules() -> list[str]:  # chains and rules, without the policies' packet counters
        text = ipt.save() + (nft.run("list", "ruleset").stdout if trc["mode"] == "nftables"
                             else "")
        return [re.sub(r" \[\d+:\d+\]$| counter packets \d+ bytes \d+", "", ln)
                for ln in text.splitlines() if not ln.startswith("#")]
    before = rules()
    trace(cluster, "pod/trc-client", "svc/trc-srv")
    assert rules() == before
    left = subprocess.run(["pgrep", "-f", "netsim.inspect.probe"], capture_output=True, text=True)
    assert left.stdout == ""


def _tcpdumps_in(netns: str) -> list[str]:
    p = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    out = []
    for pid in p.stdout.split():
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "tcpdump":
                    out.append(pid)
        except OSError:
            pass
    return out


def _start_capture(cluster, *args: str) -> subprocess.Popen:
    env = {**os.environ, "NETSIM_CLUSTER": cluster.name}
    # SIGINT as a terminal sends it: a run started in the background by a shell without job
    # control inherits SIGINT ignored, and the Ctrl-C below would then never end the capture
    p = subprocess.Popen([sys.executable, "-m", "netsim.cli.main", "-n", NS, "capture", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = b""
    deadline = time.monotonic() + 20
    while b"listening on" not in seen and time.monotonic() < deadline:
        line = p.stderr.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen += line
    assert b"listening on" in seen, seen
    return p


def test_capture_holds_the_syn_to_the_pod(cluster, trc, tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap

    from netsim.inspect.capture import pod_netns
    client_ip = trc["pods"]["trc-client"]["status"]["podIP"]
    server = trc["pods"]["trc-server"]
    server_ip = server["status"]["podIP"]
    out = tmp_path / "syn.pcap"
    p = _start_capture(cluster, "pod/trc-server", "-c", "1", "--timeout", "20", "-w", str(out),
                       "tcp", "port", "8080", "and", "src", "host", client_ip)
    r = cluster.pod_exec("trc-client", "curl", "-s", "-m", "5", f"http://{server_ip}:8080/",
                         namespace=NS)
    assert r.returncode == 0, r.stderr
    assert p.wait(25) == 0, p.stderr.read()  # type: ignore[union-attr]
    pkts = rdpcap(str(out))
    assert len(pkts) == 1
    syn = pkts[0]
    assert (syn[IP].src, syn[IP].dst, syn[TCP].dport) == (client_ip, server_ip, 8080)
    assert syn[TCP].flags == "S"
    assert _tcpdumps_in(pod_netns(cluster.cfg, server)) == []


def test_capture_of_a_service_to_stdout_and_ctrl_c(cluster, trc):
    from scapy.layers.inet import TCP
    from scapy.utils import PcapReader

    client_ip = trc["pods"]["trc-client"]["status"]["podIP"]
    p = _start_capture(cluster, "svc/trc-srv", "-w", "-", "tcp", "and", "src", "host",
                       client_ip)
    r = cluster.pod_exec("trc-client", "curl", "-s", "-m", "5", f"http://{trc['cip']}/",
                         namespace=NS)
    assert r.returncode == 0, r.stderr
    p.send_signal(signal.SIGINT)  # Ctrl-C
    data, _ = p.communicate(timeout=30)
    from io import BytesIO
    pkts = list(PcapReader(BytesIO(data)))
    assert any(pk.haslayer(TCP) and pk[TCP].flags == "S" and pk[TCP].dport == 8080
               for pk in pkts), [pk.summary() for pk in pkts]
    server = trc["pods"]["trc-server"]
    from netsim.inspect.capture import pod_netns
    assert _tcpdumps_in(pod_netns(cluster.cfg, server)) == []


def test_capture_on_a_node_prints_the_path_through_its_interfaces(cluster, trc):
    """Without -w the packets are printed; `-i any` on the node shows the SYN from another
    node entering on eth0, leaving on cni0 and on the server pod's veth, named as the node
    names them."""
    from netsim.kubelet.sandbox import veth_name
    server = trc["pods"]["trc-server"]
    server_ip = server["status"]["podIP"]
    w1_ip = next(n.ip for n in cluster.cfg.nodes if n.name == W1)
    p = _start_capture(cluster, f"node/{W2}", "-c", "3", "--timeout", "20", "tcp", "port",
                       "8080", "and", "tcp[tcpflags] & tcp-syn != 0", "and", "src", "host",
                       w1_ip)
    r = cluster.in_netns(cluster.node_netns(W1), "curl", "-s", "-m", "5",
                         f"http://{server_ip}:8080/")
    assert r.returncode == 0, r.stderr
    out, errs = p.communicate(timeout=25)
    assert p.returncode == 0, errs
    lines = out.decode().splitlines()
    assert [ln.split()[1:3] for ln in lines] == [["eth0", "In"], ["cni0", "Out"],
                                                 [veth_name(server["metadata"]["uid"]), "Out"]]
    assert all(f"{w1_ip}." in ln and f"> {server_ip}.8080: Flags [S]" in ln for ln in lines)
