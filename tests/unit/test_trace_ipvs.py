"""IPVS mode for `netsim trace`, the pure half: a node's `ipvsadm -Sn` (recorded in the qemu VM,
tests/unit/recorded) as the trace's virtual server and real servers, the one IPVS chose, the
hops and verdict."""

from __future__ import annotations

from pathlib import Path

from netsim.inspect import ipvstrace
from netsim.inspect import trace as tr
from tests.unit.test_trace import NODES, PODS, client_source, pod

SAVE = (Path(__file__).parent / "recorded" / "ipvsadm-Sn.txt").read_text()
# the VM's virtual server, with real servers where the test cluster has pods
SAVE = SAVE.replace("10.244.1.5:8080", "10.244.1.3:8080").replace("10.244.1.6:8080",
                                                                  "10.244.2.3:8080")


def test_virtual_and_real_servers():
    rules = ipvstrace.IpvsRules(SAVE)
    t = rules.trace("10.244.1.9", "10.96.0.20", 80, "tcp")
    assert t.endpoints == ["10.244.1.3:8080", "10.244.2.3:8080"] and t.verdict == "ACCEPT"
    assert [(h.table, h.chain, h.rule) for h in t.hops] == [
        ("ipvs", "TCP 10.96.0.20:80", "-A -t 10.96.0.20:80 -s rr")]
    rules.only("10.244.2.3:8080")
    t = rules.trace("10.244.1.9", "10.96.0.20", 80, "tcp")
    assert t.endpoints == ["10.244.2.3:8080"]
    assert t.hops[-1].rule == "-a -t 10.96.0.20:80 -r 10.244.2.3:8080 -m -w 1"
    assert rules.trace("10.244.1.9", "10.96.0.20", 81).hops == []  # not a virtual server
    assert ipvstrace.IpvsRules(SAVE).trace("10.244.1.9", "10.96.0.53", 53, "udp").endpoints \
        == ["10.244.1.5:53"]


def test_actions():
    assert tr.rule_action("-A -t 10.96.0.20:80 -s rr") == \
        "IPVS virtual server 10.96.0.20:80 (scheduler rr)"
    assert tr.rule_action("-a -t 10.96.0.20:80 -r 10.244.2.3:8080 -m -w 1") == \
        "DNAT to 10.244.2.3:8080 (IPVS real server, masq, weight 1)"
    assert tr.rule_action("-A KUBE-SERVICES -j KUBE-NODEPORTS") == "jump KUBE-NODEPORTS"


def test_a_clusterip_through_ipvs_to_another_node():
    dst = tr.Dest("svc/default/web", "10.96.0.20", 80, "tcp")
    rules = ipvstrace.IpvsRules(SAVE)
    tr.prune_to_endpoint(rules, "10.244.2.3:8080")
    walk = rules.trace("10.244.1.9", "10.96.0.20", 80, "tcp")
    dest_walk = ipvstrace.IpvsRules(SAVE).trace("10.244.1.9", "10.244.2.3", 8080, "tcp")
    res = tr.assemble(client_source(), dst, NODES, [("k8s-slave-172", "cni0", walk),
                                                    ("k8s-slave-173", "eth0", dest_walk)],
                      {"result": "connected", "sport": 40000}, "10.244.2.3:8080",
                      PODS + [pod("x", "10.244.0.9", "k8s-master-171")])
    j = res.to_json()
    assert (j["verdict"], j["delivered_to"]) == (
        "delivered", {"pod": "default/web-2", "ip": "10.244.2.3", "port": 8080})
    assert [(h["at"], h["table"], h["action"]) for h in j["hops"] if h["table"]] == [
        ("node/k8s-slave-172", "ipvs", "IPVS virtual server 10.96.0.20:80 (scheduler rr)"),
        ("node/k8s-slave-172", "ipvs", "DNAT to 10.244.2.3:8080 (IPVS real server, masq, "
                                       "weight 1)")]
    actions = [h["action"] for h in j["hops"]]
    assert "forward to node/k8s-slave-173 (192.168.0.173)" in actions
    assert actions.count("bridge to the pod 10.244.2.3 on cni0") == 1  # walked there, once
