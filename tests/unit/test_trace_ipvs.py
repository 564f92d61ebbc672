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


def _save_text(restore: str) -> str:
    """What a node's iptables-save shows for kube-proxy's restore text in IPVS mode: the
    jumps from the built-in chains are there too (inserted out of band)."""
    from netsim.proxy.ipvs import IPTABLES_JUMP_CHAINS
    out, table = [], None
    for line in restore.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line == "COMMIT":
            out += [f'-A {chain} -m comment --comment "{c}" -j {to}'
                    for t, chain, to, c in IPTABLES_JUMP_CHAINS if t == table]
        out.append(line)
    return "\n".join(out) + "\n"


def test_live_node_rules_walk_iptables_ipsets_and_ipvs():
    """A node's dump (ipvsadm -Sn, ipset save, iptables-save, kube-ipvs0's addresses, one
    process) walked whole: the iptables hops with the ipset lookups they made, the virtual
    server, the real server IPVS chose, the routing, the pod."""
    from tests.unit.test_ruleflow_ipvs import IPT, IPVSADM, SETS
    dump = ipvstrace._PART.join([IPVSADM, SETS, _save_text(IPT),
                                 "9: kube-ipvs0    inet 10.96.0.5/32 scope global kube-ipvs0\\"
                                 "       valid_lft forever preferred_lft forever\n"])
    rules = ipvstrace.parse_node_dump(dump.replace(ipvstrace._PART, ipvstrace._PART + "\n"))
    assert rules.full is not None, rules.why
    assert rules.full.bound == ["10.96.0.5"]
    tr.prune_to_endpoint(rules, "10.244.1.3:8080")
    walk = rules.trace("10.244.1.9", "10.96.0.5", 80, "tcp",
                       local_ips=["192.168.0.172", "10.244.1.1"])
    assert walk.endpoints == ["10.244.1.3:8080"] and walk.verdict == "ACCEPT"
    dst = tr.Dest("svc/default/web", "10.96.0.5", 80, "tcp")
    res = tr.assemble(client_source(), dst, NODES, [("k8s-slave-172", "cni0", walk)],
                      {"result": "connected", "sport": 40000}, "10.244.1.3:8080", PODS)
    j = res.to_json()
    assert (j["verdict"], j["delivered_to"]) == (
        "delivered", {"pod": "default/web-1", "ip": "10.244.1.3", "port": 8080})
    hops = [(h["table"], h["chain"], h["action"]) for h in j["hops"] if h["table"]]
    member = "10.96.0.5,tcp:80 is in KUBE-CLUSTER-IP, looked up by dst,dst"
    assert hops[:4] == [
        ("nat", "PREROUTING", "jump KUBE-SERVICES"),
        ("nat", "KUBE-SERVICES", "jump KUBE-NODE-PORT"),  # a local address: no NodePort
        ("ipset", "KUBE-CLUSTER-IP", member), ("nat", "KUBE-SERVICES", "ACCEPT")]
    i = hops.index(("filter", "KUBE-IPVS-FILTER", "RETURN"))  # a Service port: on to IPVS
    assert hops[i - 1] == ("ipset", "KUBE-CLUSTER-IP", member)
    ipvs_hops = [h for h in hops if h[0] == "ipvs"]
    assert ipvs_hops == [
        ("ipvs", "TCP 10.96.0.5:80", "IPVS virtual server 10.96.0.5:80 (scheduler rr)"),
        ("ipvs", "TCP 10.96.0.5:80", "DNAT to 10.244.1.3:8080 (IPVS real server, masq, "
                                     "weight 1)")]
    actions = [h["action"] for h in j["hops"]]
    # IPVS routes to the real server (after its hop), then the pod gets it
    i = actions.index(ipvs_hops[-1][2])
    assert actions[i + 1] == "bridge to the pod 10.244.1.3 on cni0"
    assert actions[-1] == "delivered to 10.244.1.3:8080 on node/k8s-slave-172"
    ipset_hop = next(h for h in j["hops"] if h["table"] == "ipset")
    assert ipset_hop["rule"] == "ipset test KUBE-CLUSTER-IP 10.96.0.5,tcp:80"


def test_live_node_rules_fall_back_to_the_virtual_server_alone():
    """Something the walk does not model (here: a set type it does not know) leaves the
    virtual and real servers, still enough to say where the packet went."""
    dump = ipvstrace._PART.join([SAVE, "create X list:set size 8\n", "", ""])
    rules = ipvstrace.parse_node_dump(dump.replace(ipvstrace._PART, ipvstrace._PART + "\n"))
    assert rules.full is None and "list:set" in rules.why
    t = rules.trace("10.244.1.9", "10.96.0.20", 80, "tcp")
    assert t.endpoints == ["10.244.1.3:8080", "10.244.2.3:8080"]


def test_node_dump_reads_the_rules_of_kube_proxys_iptables_backend(monkeypatch):
    """The live trace reads the iptables rules with the save tool of the backend kube-proxy
    wrote them with: plain iptables-save (nf_tables on Debian) shows none of the legacy
    rules, and in the qemu VM the trace of pod/client svc/web lost every iptables hop."""
    from netsim.proxy import apply
    monkeypatch.setattr(apply, "backend_prefix", lambda: "iptables-legacy")
    assert "; iptables-legacy-save;" in ipvstrace.node_dump()
    assert "; iptables-save;" in ipvstrace.node_dump("iptables")
