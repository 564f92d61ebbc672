"""The packet-flow interpreter over kube-proxy's IPVS mode: ipset matches (`-m set
--match-set NAME dst,dst`), `-m ipvs`, and netsim.inspect.ipvsflow's walk through
iptables + ipsets + IPVS virtual servers, on hand-written rules and on the renderer's
golden files (rules/ipvs-*.txt), checked against the iptables mode's golden rules."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from netsim import offline
from netsim.golden import EXAMPLE_NODE_LABELS
from netsim.inspect.ipsets import IpSets
from netsim.inspect.ipvsflow import IpvsModeRules
from netsim.inspect.ruleflow import IptablesRules, RuleSyntaxError, TraceError
from netsim.netpol import golden as netpol_golden
from netsim.netpol.render import Snapshot, jump_rules, render
from netsim.proxy import ipvs
from netsim.proxy.iptables import jump_rules as iptables_jumps

NODE = "192.168.0.2"
SETS = textwrap.dedent("""\
    create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 -exist
    add KUBE-CLUSTER-IP 10.96.0.5,tcp:80 -exist
    add KUBE-CLUSTER-IP 10.96.0.10,udp:53 -exist
    add KUBE-CLUSTER-IP 10.96.0.11,8443 -exist
    create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 -exist
    add KUBE-NODE-PORT-TCP 30080 -exist
    add KUBE-NODE-PORT-TCP 31000-31010
    create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 -exist
    add KUBE-LOOP-BACK 10.244.0.3,tcp:8080,10.244.0.3 -exist
    create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536 -exist
    add KUBE-IPVS-IPS 10.96.0.5 -exist
    create SRC-CIDR hash:ip,port,net family inet -exist
    add SRC-CIDR 10.96.0.5,tcp:80,203.0.113.0/24 -exist
    """)


def filter_rules(*lines: str, sets: str = SETS) -> IptablesRules:
    body = "".join(f"-A X {ln}\n" for ln in lines)
    return IptablesRules("*nat\nCOMMIT\n*filter\n:X - [0:0]\n-A FORWARD -j X\n" + body +
                         "COMMIT\n", ipsets=sets)


@pytest.mark.parametrize("match, dst, port, proto, src, hit", [
    ("KUBE-CLUSTER-IP dst,dst", "10.96.0.5", 80, "tcp", "10.0.0.1", True),
    ("KUBE-CLUSTER-IP dst,dst", "10.96.0.5", 81, "tcp", "10.0.0.1", False),
    ("KUBE-CLUSTER-IP dst,dst", "10.96.0.5", 80, "udp", "10.0.0.1", False),
    ("KUBE-CLUSTER-IP dst,dst", "10.96.0.10", 53, "udp", "10.0.0.1", True),
    ("KUBE-CLUSTER-IP dst,dst", "10.96.0.11", 8443, "tcp", "10.0.0.1", True),  # bare port: TCP
    ("KUBE-CLUSTER-IP dst", "10.96.0.5", 80, "tcp", "10.0.0.1", False),  # fewer flags: never
    ("KUBE-CLUSTER-IP dst,dst,src", "10.96.0.5", 80, "tcp", "10.0.0.1", True),  # extra: ignored
    ("KUBE-NODE-PORT-TCP dst", NODE, 30080, "tcp", "10.0.0.1", True),
    ("KUBE-NODE-PORT-TCP dst", NODE, 31005, "tcp", "10.0.0.1", True),  # a range entry
    ("KUBE-NODE-PORT-TCP dst", NODE, 30081, "tcp", "10.0.0.1", False),
    ("KUBE-LOOP-BACK dst,dst,src", "10.244.0.3", 8080, "tcp", "10.244.0.3", True),
    ("KUBE-LOOP-BACK dst,dst,src", "10.244.0.3", 8080, "tcp", "10.244.0.4", False),
    ("KUBE-IPVS-IPS dst", "10.96.0.5", 1, "tcp", "10.0.0.1", True),
    ("KUBE-IPVS-IPS src", "10.96.0.5", 1, "tcp", "10.0.0.1", False),
    ("SRC-CIDR dst,dst,src", "10.96.0.5", 80, "tcp", "203.0.113.77", True),
    ("SRC-CIDR dst,dst,src", "10.96.0.5", 80, "tcp", "198.51.100.1", False),
])
def test_match_set_flags_dimension_by_dimension(match, dst, port, proto, src, hit):
    rules = filter_rules(f"-m set --match-set {match} -j DROP")
    assert (rules.trace(src, dst, port, proto).verdict == "DROP") is hit
    negated = filter_rules(f"-m set ! --match-set {match} -j DROP")
    assert (negated.trace(src, dst, port, proto).verdict == "DROP") is not hit


def test_sets_as_ipset_restore_composes_them():
    sets = IpSets(SETS, "del KUBE-CLUSTER-IP 10.96.0.5,tcp:80\n"
                        "create TMP hash:ip,port family inet\nadd TMP 10.96.0.7,tcp:80\n"
                        "swap TMP KUBE-CLUSTER-IP\ndestroy TMP\nflush KUBE-NODE-PORT-TCP\n")
    rules = filter_rules("-m set --match-set KUBE-CLUSTER-IP dst,dst -j DROP",
                         "-m set --match-set KUBE-NODE-PORT-TCP dst -j DROP", sets=sets)
    assert rules.trace("10.0.0.1", "10.96.0.7", 80).verdict == "DROP"  # swapped in
    assert rules.trace("10.0.0.1", "10.96.0.10", 53, "udp").verdict == "ACCEPT"  # swapped out
    assert rules.trace("10.0.0.1", NODE, 30080).verdict == "ACCEPT"  # flushed
    assert "TMP" not in sets


@pytest.mark.parametrize("text, problem", [
    ("create S hash:mac\n", "not modelled"),
    ("create S hash:ip family inet6\n", "family inet"),
    ("add NOPE 10.0.0.1\n", "does not exist"),
    ("create S hash:ip,port\nadd S 10.0.0.1,icmp:ping\n", "protocol"),
    ("create S hash:ip\nadd S 10.0.0.0/24\n", "addresses"),
    ("create S hash:ip,port\nadd S 10.0.0.1\n", "entry"),
])
def test_ipset_text_it_does_not_understand_is_refused(text, problem):
    with pytest.raises(RuleSyntaxError, match=problem):
        IpSets(text)


def test_rules_on_missing_sets_or_source_ports_are_refused():
    with pytest.raises(RuleSyntaxError, match="Set KUBE-NOPE doesn't exist"):
        filter_rules("-m set --match-set KUBE-NOPE dst -j DROP")
    with pytest.raises(RuleSyntaxError, match="flags"):
        filter_rules("-m set --match-set KUBE-CLUSTER-IP dst,nope -j DROP")
    with pytest.raises(RuleSyntaxError, match="doesn't exist"):  # no sets given at all
        IptablesRules("*filter\n:X - [0:0]\n-A X -m set --match-set S dst -j DROP\nCOMMIT\n")
    with pytest.raises(TraceError, match="source ports"):
        filter_rules("-m set --match-set KUBE-CLUSTER-IP dst,src -j DROP").trace(
            "10.0.0.1", "10.96.0.5", 80)


# --- the IPVS-mode walk, hand-written -------------------------------------------------------

IPVSADM = textwrap.dedent("""\
    -A -t 10.96.0.5:80 -s rr
    -a -t 10.96.0.5:80 -r 10.244.0.3:8080 -m -w 1
    -a -t 10.96.0.5:80 -r 10.244.1.3:8080 -m -w 1
    -a -t 10.96.0.5:80 -r 10.244.1.4:8080 -m -w 0
    -A -t 10.96.0.6:80 -s rr
    -A -t 192.168.0.2:30080 -s rr
    -a -t 192.168.0.2:30080 -r 10.244.1.3:8080 -m -w 1
    """)
OUT_FILTER = textwrap.dedent("""\
    *filter
    :AFTER-IPVS - [0:0]
    -A OUTPUT -m ipvs --ipvs --vdir ORIGINAL -j AFTER-IPVS
    -A AFTER-IPVS -m ipvs --vaddr 10.96.0.5/32 --vport 80 --vproto tcp -d 10.244.1.3/32 -j DROP
    COMMIT
    """)


# the renderer's iptables part (rules/ipvs-services-*.txt) for these sets, node-port and
# hairpin rules included
IPT = textwrap.dedent("""\
    *nat
    :KUBE-SERVICES - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-NODE-PORT - [0:0]
    :KUBE-LOAD-BALANCER - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    -A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
    -A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
    -A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
    -A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
    -A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
    -A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
    -A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
    -A KUBE-POSTROUTING -m mark ! --mark 0x004000/0x004000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x004000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x004000
    COMMIT
    *filter
    :KUBE-FORWARD - [0:0]
    :KUBE-NODE-PORT - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    :KUBE-SOURCE-RANGES-FIREWALL - [0:0]
    :KUBE-IPVS-FILTER - [0:0]
    :KUBE-IPVS-OUT-FILTER - [0:0]
    -A KUBE-SOURCE-RANGES-FIREWALL -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x004000/0x004000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
    -A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
    COMMIT
    """)


def hand_written(extra: str = "") -> IpvsModeRules:
    sets = SETS + "add KUBE-IPVS-IPS 10.96.0.6\nadd KUBE-CLUSTER-IP 10.96.0.6,tcp:80\n"
    return IpvsModeRules(IPVSADM, sets, IPT + extra, ["10.96.0.5", "10.96.0.6"])


def test_ipvs_walk_real_servers_masquerade_and_no_endpoints():
    rules = hand_written()
    both = "10.244.0.3:8080, 10.244.1.3:8080"  # weight 0: not chosen
    t = rules.trace("10.244.0.9", "10.96.0.5", 80, local_ips=[NODE])
    assert (t.output, t.masquerade) == (both, False)
    assert [h.rule for h in t.hops if h.table == "ipvs"] == [
        "-A -t 10.96.0.5:80 -s rr", "-a -t 10.96.0.5:80 -r 10.244.0.3:8080 -m -w 1",
        "-a -t 10.96.0.5:80 -r 10.244.1.3:8080 -m -w 1"]
    assert "  ipvs/TCP 10.96.0.5:80: -A -t 10.96.0.5:80 -s rr\n" in t.describe()
    assert rules.trace("192.168.0.50", "10.96.0.5", 80, local_ips=[NODE]).masquerade  # LAN
    assert rules.trace(NODE, "10.96.0.5", 80, local_ips=[NODE]).masquerade  # the node
    hairpin = rules.trace("10.244.0.3", "10.96.0.5", 80, local_ips=[NODE])
    assert (hairpin.output, hairpin.masquerade) == (both, True)  # KUBE-LOOP-BACK
    assert rules.trace("10.244.0.9", "10.96.0.6", 80, local_ips=[NODE]).output == "REJECT"
    # a ClusterIP's other ports: KUBE-IPVS-FILTER refuses them in INPUT, before IPVS
    t = rules.trace("10.244.0.9", "10.96.0.5", 81, local_ips=[NODE])
    assert t.output == "REJECT" and t.hops[-1].chain == "KUBE-IPVS-FILTER"
    # a NodePort: marked in KUBE-NODE-PORT (bitmap:port), forwarded by its virtual server
    t = rules.trace("192.168.0.50", NODE, 30080, local_ips=[NODE])
    assert (t.output, t.masquerade) == ("10.244.1.3:8080", True)
    # not a Service: the pod network is forwarded, nothing rewritten
    assert rules.trace("10.244.0.9", "10.244.1.3", 8080, local_ips=[NODE]).output == ""


def test_ipvs_match_sees_the_virtual_server_in_output():
    rules = hand_written(OUT_FILTER)
    t = rules.trace("10.244.0.9", "10.96.0.5", 80, local_ips=[NODE])
    assert t.output == "10.244.0.3:8080, 10.244.1.3:8080, DROP"  # the second branch's
    # the same pod, straight to the pod IP: not through IPVS, so -m ipvs never matches
    assert rules.trace(NODE, "10.244.1.3", 8080, local_ips=[NODE]).verdict == "ACCEPT"


# --- the renderer's golden files ------------------------------------------------------------

RULES = Path(__file__).resolve().parents[2] / "rules"
PAIRS = sorted(p.name[len("ipvs-"):-len(".txt")] for p in RULES.glob("ipvs-*.txt"))


def _sets_entries(text: str, name: str) -> list[str]:
    return re.findall(rf"^add {name} (\S+)", text, re.M)


@pytest.mark.parametrize("pair", PAIRS)
def test_golden_ipvs_rules_walk_like_iptables_mode(pair):
    """rules/ipvs-X.txt against rules/iptables-X.rules: from a pod, the node's LAN, the
    node itself and a local endpoint (hairpin), every ClusterIP and every Cluster-policy
    NodePort reaches the same endpoints (masqueraded alike when delivered); a Local-policy
    NodePort reaches its virtual server's real servers unmasqueraded from the LAN."""
    text = (RULES / f"ipvs-{pair}.txt").read_text()
    ipv = IpvsModeRules.from_render_text(text)
    # (KUBE-NODE-PORT has no rules without NodePorts, as upstream leaves it)
    assert ipv.iptables.check_rule_jumps(fixed={c for _, c in ipvs.IPTABLES_CHAINS}) in (
        [], ["some chains in nat are jumped to but have no rules: ['KUBE-NODE-PORT']"])
    ipt = IptablesRules((RULES / f"iptables-{pair}.rules").read_text(), inserted=iptables_jumps())
    node_ip = "192.168.3." + pair.rsplit("-", 1)[1]
    hairpins = [e.split(",")[0] for e in _sets_entries(text, ipvs.LOOP_BACK)][:1]
    sources = ["10.244.1.99", "192.168.3.50", node_ip, *hairpins]
    local_np = {int(p) for p in _sets_entries(text, ipvs.NODE_PORT_LOCAL_TCP)}
    dests = [(proto.lower(), ip, int(port)) for proto, ip, port in
             (re.match(r"(\w+) (\S+):(\d+)", k).groups() for k in
              (f"{p} {ip}:{port}" for p, ip, port in ipv.services))]
    delivered = 0
    for proto, dst, port in dests:
        for src in sources:
            b = ipv.trace(src, dst, port, proto, local_ips=[node_ip])
            if dst == node_ip and port in local_np:
                if src == "192.168.3.50":
                    reals = sorted(r for r, w in ipv.services[(proto.upper(), dst, port)][1].items()
                                   if w)
                    assert (sorted(b.endpoints), b.masquerade) == (reals, False), b.describe()
                continue
            a = ipt.trace(src, dst, port, proto, local_ips=[node_ip])
            assert (sorted(a.endpoints), a.verdict) == (sorted(b.endpoints), b.verdict), \
                f"{a.describe()}\n{b.describe()}"
            if b.endpoints and b.verdict == "ACCEPT":
                assert a.masquerade == b.masquerade, f"{a.describe()}\n{b.describe()}"
                delivered += 1
    assert delivered >= len(sources)


def test_network_policy_in_ipvs_mode_is_judged_after_ipvs():
    """examples/netpol on k8s-slave-172 (web's local pod 10.244.1.3 behind ClusterIP
    10.109.211.50): only app=client may reach it, through the Service too; the policy
    meets the packet in OUTPUT, after IPVS chose the real server."""
    folder = Path(netpol_golden.EXAMPLES) / "netpol"
    snap = offline.build(netpol_golden._docs(str(folder)),
                         node_labels=EXAMPLE_NODE_LABELS.get("netpol", {}))
    node = "k8s-slave-172"
    pol = render(Snapshot.from_objects(snap.list("networkpolicies"), snap.list("pods"),
                                       snap.list("namespaces"), node), ipvs=True)
    text = (RULES / f"ipvs-netpol-{node}.txt").read_text()
    rules = IpvsModeRules.from_render_text(text, inserted=[*ipvs.jump_rules(),
                                                           *jump_rules(ipvs=True)])
    rules.iptables.restore(pol)
    pods = {p["metadata"]["labels"].get("app"): p["status"]["podIP"] for p in snap.list("pods")
            if p["spec"].get("nodeName") == node}
    client, web = pods["client"], pods["web"]
    cip = next(s["spec"]["clusterIP"] for s in snap.list("services")
               if s["metadata"]["name"] == "web")
    ok = rules.trace(client, cip, 80, local_ips=["192.168.3.172"])
    assert ok.verdict == "ACCEPT" and f"{web}:8080" in ok.endpoints, ok.describe()
    assert any("allow-from-client ingress[0]" in h.rule for h in ok.hops)
    bad = rules.trace("10.244.1.99", cip, 80, local_ips=["192.168.3.172"])
    assert bad.verdict == "REJECT", bad.describe()
    assert "default deny ingress to default/web" in bad.hops[-1].rule
    assert bad.hops[-1].chain.startswith("NETSIM-IN-")
    # INPUT let it pass to IPVS: the ClusterIP is in KUBE-CLUSTER-IP (judged later)
    assert any(h.chain == "NETSIM-NWPLCY-INPUT" and "RETURN" in h.rule for h in bad.hops)
