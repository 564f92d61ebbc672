"""`netsim trace` beyond Services (issue 14, second part), with real packets, in iptables and
nftables mode: an Ingress host through the controller's nginx, a NetworkPolicy's reject
named, every nftables rule a probe matched (`nft monitor trace`, nftables mode), and
`netsim proxy stats` in nftables mode.

Pods are pinned: tm-client and tm-web on k8s-slave-172, tm-locked on k8s-slave-173, the
ingress controller (hostNetwork) on k8s-slave-173, so every path crosses nodes.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys

import pytest

from netsim.inspect.capture import pod_netns
from tests.conftest import requires_root, wait_for

# the cluster in iptables mode, then brought up again in nftables mode (and back after)
from tests.e2e.test_trace_capture import mode  # noqa: F401

pytestmark = requires_root

NS = "trm"
W1, W2 = "k8s-slave-172", "k8s-slave-173"
HOST = "web.trm.test"
CONTROLLER_NS = "ingress-nginx"


def _pod(name: str, node: str) -> dict:
    c = {"name": "echo", "image": "netsim/echo", "args": ["--port", "8080"],
         "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [c]}}


def _svc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}


INGRESS = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "tm-web", "namespace": NS},
    "spec": {"ingressClassName": "nginx", "rules": [{"host": HOST, "http": {"paths": [
        {"path": "/app", "pathType": "Prefix",
         "backend": {"service": {"name": "tm-web", "port": {"number": 80}}}}]}}]},
}

# tm-locked admits only tm-client's port 9999 (nothing listens there): 8080 is denied
POLICY = {
    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "only-9999", "namespace": NS},
    "spec": {"podSelector": {"matchLabels": {"app": "tm-locked"}}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "tm-client"}}}],
                          "ports": [{"port": 9999, "protocol": "TCP"}]}]},
}


@pytest.fixture(scope="module")
def trm(cluster, mode):  # noqa: F811 (the imported fixture)
    c = cluster.client
    cluster.netsim("delete", "namespace", NS, "--ignore-not-found", timeout=120)
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.netsim("label", "node", W2, "ingress=true", "--overwrite")
    for name, node in (("tm-client", W1), ("tm-web", W1), ("tm-locked", W2)):
        c.create(_pod(name, node))
    for name in ("tm-web", "tm-locked"):
        c.create(_svc(name))
    c.create(INGRESS)
    c.create(POLICY)
    for app in ("tm-client", "tm-web", "tm-locked"):
        cluster.wait_pods_ready(NS, f"app={app}", 1, timeout=90)
    cluster.wait_pods_ready(CONTROLLER_NS, "app.kubernetes.io/component=controller", 1,
                            timeout=90)
    pods = {p["metadata"]["name"]: p for p in c.list("pods", NS)}
    w2_ip = next(n.ip for n in cluster.cfg.nodes if n.name == W2)

    def served() -> bool:  # nginx has the Ingress once the host's path answers from W1
        p = cluster.in_netns(cluster.node_netns(W1), "curl", "-s", "-o", "/dev/null", "-w",
                             "%{http_code}", "-m", "2", "-H", f"Host: {HOST}",
                             f"http://{w2_ip}/app")
        return p.stdout == "200"
    wait_for(served, 60, what=f"nginx serving {HOST}/app")
    yield {"pods": pods, "mode": mode, "w2_ip": w2_ip}
    cluster.netsim("delete", "namespace", NS, check=False, timeout=120)
    cluster.netsim("label", "node", W2, "ingress-", check=False)


def trace(cluster, *args: str) -> dict:
    p = cluster.netsim("-n", NS, "trace", *args, "-o", "json", timeout=60)
    return json.loads(p.stdout)


def test_ingress_host_through_nginx_to_the_pod(cluster, trm):
    web_ip = trm["pods"]["tm-web"]["status"]["podIP"]
    j = trace(cluster, "pod/tm-client", f"ingress/{HOST}/app/page")
    assert (j["from"], j["to"], j["verdict"]) == (f"pod/{NS}/tm-client", f"ingress/{HOST}/app/page",
                                                  "delivered")
    assert j["delivered_to"] == {"pod": f"{NS}/tm-web", "ip": web_ip, "port": 8080}
    ctl = [h for h in j["hops"] if h["at"].startswith(f"pod/{CONTROLLER_NS}/")]
    # the hop to nginx: the node and its address, port 80
    assert any(h["action"].startswith(f"send tcp {trm['pods']['tm-client']['status']['podIP']}"
                                      f" -> {trm['w2_ip']}:80: GET /app/page Host: {HOST}")
               for h in j["hops"])
    loc = next(h for h in ctl if h["table"] == "nginx.conf")
    assert (loc["chain"], loc["rule"]) == (f"server {HOST}",
                                           f"location /app/ (Prefix '/app' of ingress {NS}/tm-web)")
    assert loc["action"].startswith(f"proxy_pass http://{NS}-tm-web-80 (ingress {NS}/tm-web, "
                                    f"service {NS}/tm-web: {web_ip}:8080)")
    log = next(h for h in ctl if h["rule"].startswith("access.log: "))
    assert f"upstream={web_ip}:8080" in log["rule"] and log["action"] == \
        f"proxied to {web_ip}:8080: 200"
    assert any(h["action"] == f"nginx connects to the upstream {web_ip}:8080 (from "
                              f"{trm['w2_ip']})" for h in ctl)
    assert j["hops"][-1]["at"] == f"pod/{NS}/tm-web"
    # a path no Ingress serves: nginx's catch-all answers 404 itself
    j = trace(cluster, "host", f"ingress/{HOST}/elsewhere")
    assert (j["verdict"], j["delivered_to"]) == ("rejected", None)
    assert any(h["table"] == "nginx.conf" and h["action"].startswith("return 404")
               for h in j["hops"])
    # and the text form, as a user reads it
    p = cluster.netsim("-n", NS, "trace", "pod/tm-client", f"ingress/{HOST}/app")
    assert re.search(rf"^  nginx.conf/server {re.escape(HOST)}: location = /app ", p.stdout,
                     re.M), p.stdout
    assert p.stdout.rstrip().endswith(f"verdict: delivered (pod/{NS}/tm-web {web_ip}:8080)")


def test_a_network_policy_reject_names_the_policy(cluster, trm):
    locked_ip = trm["pods"]["tm-locked"]["status"]["podIP"]
    for to in ("svc/tm-locked", "pod/tm-locked"):
        j = trace(cluster, "pod/tm-client", to)
        assert (j["verdict"], j["delivered_to"]) == ("rejected", None), j["hops"]
        last = j["hops"][-1]
        # the reject is on the pod's node, in the policy table of the proxy mode's backend
        assert last["at"] == f"node/{W2}"
        assert last["table"] == ("filter" if trm["mode"] == "iptables" else "netsim-netpol")
        assert f'"default deny ingress to {NS}/tm-locked"' in last["rule"]
        assert last["action"] == (
            f"REJECT: default deny ingress to pod/{NS}/tm-locked (isolated by NetworkPolicy "
            f"{NS}/only-9999; no rule of it allows this packet)")
        assert any(h["action"].startswith("DNAT to " + locked_ip) for h in j["hops"]) == \
            (to.startswith("svc/"))
    p = cluster.netsim("-n", NS, "trace", "pod/tm-client", "svc/tm-locked")
    assert f"NetworkPolicy {NS}/only-9999" in p.stdout and \
        p.stdout.rstrip().endswith("verdict: rejected")


def test_a_reject_on_the_endpoint_node_of_a_two_node_service_is_named(cluster, trm):
    """A Service with a locked endpoint on each node: whichever one the probe's DNAT picks,
    the trace follows it to that pod's node and names the policy's reject there. (With
    two endpoints the walk cannot say which one the packet took, and a SYN answered by a
    RST leaves no conntrack entry: the trace stopped at the first node and blamed "nothing
    listens" when the remote pod was picked. nftables mode reads the DNAT taken from the
    kernel's trace, iptables mode from the KUBE-SEP chain counter the probe moved.)"""
    c = cluster.client
    twin = _pod("tm-locked-w1", W1)
    twin["metadata"]["labels"] = {"app": "tm-locked", "pair": "locked"}
    c.create(twin)
    c.patch("pods", "tm-locked", NS, {"metadata": {"labels": {"pair": "locked"}}})
    svc = _svc("tm-pair")
    svc["spec"]["selector"] = {"pair": "locked"}
    c.create(svc)
    try:
        wait_for(lambda: len([e for s in c.list("endpointslices", NS,
                                                "kubernetes.io/service-name=tm-pair")
                              for e in s.get("endpoints") or []
                              if (e.get("conditions") or {}).get("ready")]) == 2, 60,
                 what="tm-pair's two endpoints ready")

        def programmed() -> bool:  # kube-proxy on W1 (the DNAT node) has both endpoints
            argv = (["iptables-legacy-save", "-t", "nat"] if trm["mode"] == "iptables"
                    else ["nft", "list", "ruleset"])
            lines = [ln for ln in cluster.in_netns(cluster.node_netns(W1), *argv).stdout
                     .splitlines() if f"{NS}/tm-pair" in ln]  # its SEP / endpoint chains
            return all(any(p["status"]["podIP"] in ln for ln in lines) for p in
                       (c.get("pods", "tm-locked", NS), c.get("pods", "tm-locked-w1", NS)))
        wait_for(programmed, 30, what="kube-proxy on W1 programming tm-pair's endpoints")
        seen = set()
        for _ in range(16):
            j = trace(cluster, "pod/tm-client", "svc/tm-pair")
            assert j["verdict"] == "rejected", json.dumps(j, indent=1)
            last = j["hops"][-1]
            pod = re.search(rf"default deny ingress to pod/{NS}/(\S+) ", last["action"])
            assert pod and "isolated by NetworkPolicy " + NS + "/only-9999" in last["action"], \
                last
            assert last["at"] == f"node/{W1 if pod.group(1) == 'tm-locked-w1' else W2}", last
            seen.add(last["at"])
            if len(seen) == 2:
                break
        assert seen == {f"node/{W1}", f"node/{W2}"}  # 2**-15 to see one node only
        # the client itself: every connection refused at once, whichever endpoint it met.
        # A reset for the endpoint on the client's own node left the kernel un-DNATed
        # (from the pod's address): ignored, the SYN was sent again 1 s later
        netns = pod_netns(cluster.cfg, c.get("pods", "tm-client", NS))
        vip = c.get("services", "tm-pair", NS)["spec"]["clusterIP"]
        outcomes = [json.loads(cluster.in_netns(
            netns, sys.executable, "-m", "netsim.inspect.probe", "tcp", vip, "80", "0.8"
        ).stdout)["result"] for _ in range(12)]
        assert outcomes == ["refused"] * 12, outcomes
    finally:
        c.delete("services", "tm-pair", NS)
        c.delete("pods", "tm-locked-w1", NS, grace_period_seconds=0)


def _node_state(cluster) -> list[str]:
    """Every node's tables (names only) and the nft monitors running there."""
    out = []
    for n in cluster.cfg.nodes:
        ns = cluster.node_netns(n.name)
        p = cluster.in_netns(ns, "nft", "list", "tables")
        out += [f"{n.name} {t}" for t in p.stdout.split("\n") if t]
        ps = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in ps.stdout.split():
            try:
                with open(f"/proc/{pid}/cmdline") as f:
                    cmd = f.read().replace("\0", " ")
            except OSError:
                continue
            if "monitor" in cmd and "nft" in cmd:
                out.append(f"{n.name} monitor {pid}")
    return out


def test_nft_monitor_trace_lists_every_table_the_probe_crossed(cluster, trm):
    if trm["mode"] != "nftables":
        pytest.skip("nftables mode only")
    before = _node_state(cluster)
    assert not any("netsim-trace" in t or "monitor" in t for t in before), before
    web_ip = trm["pods"]["tm-web"]["status"]["podIP"]
    j = trace(cluster, "host", f"node/{W2}", "--port", "80")  # the ingress node's nginx
    assert j["verdict"] == "delivered"
    j = trace(cluster, "pod/tm-client", "svc/tm-web")
    assert j["delivered_to"]["ip"] == web_ip
    tables = {(h["at"], h["table"], h["chain"]) for h in j["hops"] if h["table"]}
    # kube-proxy's rules and the NetworkPolicy table's chains the kernel ran, on W1
    assert (f"node/{W1}", "kube-proxy", "nat-prerouting") in tables
    assert (f"node/{W1}", "netsim-netpol", "forward-egress") in tables
    assert (f"node/{W1}", "netsim-netpol", "forward-ingress") in tables
    dnat = next(h for h in j["hops"] if h["action"].startswith("DNAT"))
    assert dnat["action"] == f"DNAT to {web_ip}:8080" and dnat["rule"].endswith(
        f"dnat to {web_ip}:8080")
    assert _node_state(cluster) == before  # no trace table, no monitor left


def test_interrupted_trace_leaves_nothing(cluster, trm):
    """SIGTERM (as a timeout would send) while the probe is out: tables and monitors go."""
    import os
    import signal
    if trm["mode"] != "nftables":
        pytest.skip("nftables mode only")
    before = _node_state(cluster)
    env = {**os.environ, "NETSIM_CLUSTER": cluster.name}
    # a UDP probe to a LAN address nobody has waits its whole timeout (ARP gets no answer):
    # time to interrupt it. (A closed port of a pod answered with ICMP port unreachable
    # at once whenever the peer's ICMP rate limit had a token left: CI saw the trace end
    # before its table was looked for.)
    nobody = str(ipaddress.ip_network(cluster.cfg.lan)[250])
    assert all(n.ip != nobody for n in cluster.cfg.nodes)
    p = subprocess.Popen([sys.executable, "-m", "netsim.cli.main", "-n", NS, "trace",
                          "pod/tm-client", nobody, "--port", "9", "--protocol", "udp"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def tracing() -> bool:
        if p.poll() is not None:  # it ended before the poll saw its table: say how
            out, err = p.communicate()
            pytest.fail(f"the trace ended (exit {p.returncode}) before its table was seen:\n"
                        f"{out.decode()}\n{err.decode()}")
        return any("netsim-trace" in t for t in _node_state(cluster))
    try:
        wait_for(tracing, 30, what="the trace table in place")
    except AssertionError as e:  # say what the trace was doing (CI: 20 s without a table)
        p.kill()
        out, err = p.communicate(timeout=30)
        raise AssertionError(f"{e}; the trace printed:\n{out.decode()}\n{err.decode()}\n"
                             f"nodes: {_node_state(cluster)}") from None
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    wait_for(lambda: _node_state(cluster) == before, 10, what="no trace table, no monitor")


def test_proxy_stats_counts_connections_in_both_modes(cluster, trm):
    cip = cluster.client.get("services", "tm-web", NS)["spec"]["clusterIP"]
    web_ip = trm["pods"]["tm-web"]["status"]["podIP"]
    for _ in range(5):
        r = cluster.pod_exec("tm-client", "curl", "-s", "-o", "/dev/null", "-m", "3",
                             f"http://{cip}/", namespace=NS)
        assert r.returncode == 0, r.stderr
    p = cluster.netsim("-n", NS, "proxy", "stats", "tm-web")
    lines = p.stdout.splitlines()
    header = next(ln.split() for ln in lines if ln.startswith("PORT"))
    row = next(ln.split() for ln in lines if f"{web_ip}:8080" in ln)
    cells = dict(zip(header[:3] + ["POD NODE"] + header[5:], row, strict=True))
    assert cells["POD"] == "tm-web" and int(cells[W1]) >= 5, p.stdout
    if trm["mode"] == "nftables":
        assert lines[0].startswith("Counted from: each node's conntrack table")
        assert header[-3:] == ["PACKETS", "BYTES", "SHARE"]
        assert int(cells["PACKETS"]) >= 5 * 4 and int(cells["BYTES"]) > 0, p.stdout
    else:
        assert header[-2:] == ["TOTAL", "SHARE"]
    # without a Service: every one of the namespace with endpoints
    p = cluster.netsim("-n", NS, "proxy", "stats")
    assert f"service/tm-web in {NS}:" in p.stdout and f"service/tm-locked in {NS}:" in p.stdout
