"""netsim.proxy.ipvs (pure renderer) and the pure parts of netsim.proxy.ipvs_apply.

The expectations are ported from kubernetes/kubernetes pkg/proxy/ipvs/proxier_test.go
(TestNodePortIPv4, TestClusterIP*, TestSessionAffinity, TestLoadBalancerSourceRanges...):
upstream checks the fake IPVS table (virtual servers and destinations), the fake ipset
entries and which `-m set` jumps each chain holds. Its fake proxier: node test-hostname,
node IP 100.101.102.103, service ns1/svc1 10.20.30.41:80 "p80", nodePort 3001.
Here the whole IPVS table is compared as `ipvsadm -R` text (the same lines `ipvsadm -Sn`
prints, which the VM test checks on a real kernel).
"""

from __future__ import annotations

import re
import textwrap

from netsim.proxy import ipvs
from netsim.proxy.ipvs_apply import ipvs_diff, parse_ipvsadm_save
from netsim.proxy.model import ProxySnapshot
from tests.proxy_fixtures import ep, eps, port, svc
from tests.proxy_fixtures import snap as fixtures_snap

NODE = "test-hostname"
NODE_IP = "100.101.102.103"


def snap(services, slices, node_ips=(NODE_IP,), cidr="10.0.0.0/8") -> ProxySnapshot:
    return fixtures_snap(services, slices, node_name=NODE, node_ips=list(node_ips),
                         cluster_cidr=cidr)


def text(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


def chain_jumps(iptables: str) -> dict[str, list[tuple[str, str]]]:
    """upstream checkIptables' view: chain -> [(jump target, --match-set name or "")], both
    tables together, in rule order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in iptables.splitlines():
        if not line.startswith("-A "):
            continue
        chain = line.split()[1]
        jump = line.rsplit(" -j ", 1)[1].split()[0]
        m = re.search(r"--match-set (\S+)", line)
        out.setdefault(chain, []).append((jump, m.group(1) if m else ""))
    return out


NODEPORT_SVC = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41",
                   ports=[port("p80", 80, nodePort=3001)])


# --- TestNodePortIPv4 -----------------------------------------------------------------------

def test_nodeport_service_with_two_endpoint_slices_ipv6_one_ignored():
    slices = [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80)]),
              {**eps("ns1", "svc1", [ep("1002:ab8::2:10")], [port("p80", 80)], n=2),
               "addressType": "IPv6"}]
    r = ipvs.render(snap([NODEPORT_SVC], slices, node_ips=(NODE_IP,)))
    assert r.ipvsadm_text() == text("""
        -A -t 10.20.30.41:80 -s rr
        -a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
        -A -t 100.101.102.103:3001 -s rr
        -a -t 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
        """)
    assert r.bind_addresses == ["10.20.30.41"]
    assert r.ipsets[ipvs.CLUSTER_IP].entries == ("10.20.30.41,tcp:80",)
    assert r.ipsets[ipvs.NODE_PORT_TCP].entries == ("3001",)
    assert r.ipsets[ipvs.IPVS_IPS].entries == ("10.20.30.41",)


def test_udp_nodeport_sets_and_chains():
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41",
            ports=[port("p80", 80, "UDP", nodePort=3001)])
    r = ipvs.render(snap([s], [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80, "UDP")])]))
    assert r.ipvsadm_text() == text("""
        -A -u 10.20.30.41:80 -s rr
        -a -u 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
        -A -u 100.101.102.103:3001 -s rr
        -a -u 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
        """)
    assert r.ipsets[ipvs.NODE_PORT_UDP].entries == ("3001",)
    jumps = chain_jumps(r.iptables)
    # upstream expectedIptablesChains (nat and filter KUBE-NODE-PORT together)
    assert jumps["KUBE-NODE-PORT"] == [("KUBE-MARK-MASQ", "KUBE-NODE-PORT-UDP"),
                                       ("ACCEPT", "KUBE-HEALTH-CHECK-NODE-PORT")]
    assert jumps["KUBE-SERVICES"] == [("RETURN", ""), ("KUBE-MARK-MASQ", "KUBE-CLUSTER-IP"),
                                      ("KUBE-NODE-PORT", ""), ("ACCEPT", "KUBE-CLUSTER-IP")]


def test_nodeport_without_endpoints_has_virtual_servers_and_no_destinations():
    r = ipvs.render(snap([NODEPORT_SVC], []))
    assert r.ipvsadm_text() == "-A -t 10.20.30.41:80 -s rr\n-A -t 100.101.102.103:3001 -s rr\n"


def test_sctp_nodeport_on_a_node_with_several_ips():
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41",
            ports=[port("p80", 80, "SCTP", nodePort=3001)])
    ips = ("100.101.102.103", "100.101.102.104", "100.101.102.105")
    r = ipvs.render(snap([s], [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80, "SCTP")])],
                         node_ips=ips))
    assert [str(v) for v in r.virtual_servers] == [
        "10.20.30.41:80/SCTP", "100.101.102.103:3001/SCTP", "100.101.102.104:3001/SCTP",
        "100.101.102.105:3001/SCTP"]
    assert all([str(rs) for rs in v.real_servers] == ["10.180.0.1:80"] for v in r.virtual_servers)
    assert r.ipsets[ipvs.NODE_PORT_SCTP].entries == tuple(f"{ip},sctp:3001" for ip in ips)
    assert "-A --sctp-service 10.20.30.41:80 -s rr" in r.ipvsadm_text()


def test_sctp_nodeport_with_external_traffic_policy_local():
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41", externalTrafficPolicy="Local",
            ports=[port("p80", 80, "SCTP", nodePort=3001)])
    sl = eps("ns1", "svc1", [ep("10.180.0.1", NODE), ep("10.180.1.1", "otherHost")],
             [port("p80", 80, "SCTP")])
    r = ipvs.render(snap([s], [sl]))
    cip = r.virtual_server("SCTP", "10.20.30.41", 80)
    np_ = r.virtual_server("SCTP", NODE_IP, 3001)
    assert [str(x) for x in cip.real_servers] == ["10.180.0.1:80", "10.180.1.1:80"]
    assert [str(x) for x in np_.real_servers] == ["10.180.0.1:80"]
    assert r.ipsets[ipvs.NODE_PORT_SCTP].entries == (f"{NODE_IP},sctp:3001",)
    assert r.ipsets[ipvs.NODE_PORT_LOCAL_SCTP].entries == (f"{NODE_IP},sctp:3001",)
    assert chain_jumps(r.iptables)["KUBE-NODE-PORT"] == [
        ("RETURN", "KUBE-NODE-PORT-LOCAL-SCTP-HASH"), ("KUBE-MARK-MASQ", "KUBE-NODE-PORT-SCTP-HASH"),
        ("ACCEPT", "KUBE-HEALTH-CHECK-NODE-PORT")]


def test_local_policy_without_local_endpoints_falls_back_to_cluster_endpoints():
    # upstream PR 97081: rather than a black hole, route to the cluster endpoints
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41", externalTrafficPolicy="Local",
            ports=[port("p80", 80, nodePort=3001)])
    r = ipvs.render(snap([s], [eps("ns1", "svc1", [ep("10.180.1.1", "otherHost")],
                                   [port("p80", 80)])]))
    assert [str(x) for x in r.virtual_server("TCP", NODE_IP, 3001).real_servers] == ["10.180.1.1:80"]


# --- TestClusterIP / hairpin ----------------------------------------------------------------

def test_cluster_ip_services_and_loop_back_entries_for_local_endpoints():
    s1 = svc("ns1", "svc1", clusterIP="10.20.30.41", ports=[port("p80", 80)])
    s2 = svc("ns2", "svc2", clusterIP="10.20.30.42", ports=[port("p8080", 8080)])
    r = ipvs.render(snap([s1, s2], [
        eps("ns1", "svc1", [ep("10.180.0.1", NODE), ep("10.180.0.2")], [port("p80", 80)]),
        eps("ns2", "svc2", [ep("10.180.0.1", NODE)], [port("p8080", 8080)])]))
    assert r.ipvsadm_text() == text("""
        -A -t 10.20.30.41:80 -s rr
        -a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
        -a -t 10.20.30.41:80 -r 10.180.0.2:80 -m -w 1
        -A -t 10.20.30.42:8080 -s rr
        -a -t 10.20.30.42:8080 -r 10.180.0.1:8080 -m -w 1
        """)
    assert r.bind_addresses == ["10.20.30.41", "10.20.30.42"]
    assert r.ipsets[ipvs.LOOP_BACK].entries == ("10.180.0.1,tcp:80,10.180.0.1",
                                                "10.180.0.1,tcp:8080,10.180.0.1")
    assert r.ipsets[ipvs.CLUSTER_IP].entries == ("10.20.30.41,tcp:80", "10.20.30.42,tcp:8080")
    assert ("MASQUERADE", "KUBE-LOOP-BACK") in chain_jumps(r.iptables)["KUBE-POSTROUTING"]


def test_not_ready_endpoints_are_not_destinations():
    s1 = svc("ns1", "svc1", clusterIP="10.20.30.41", ports=[port("p80", 80)])
    sl = eps("ns1", "svc1", [ep("10.180.0.1"), {"addresses": ["10.180.0.2"],
                                                "conditions": {"ready": False}}],
             [port("p80", 80)])
    r = ipvs.render(snap([s1], [sl]))
    assert [str(x) for x in r.virtual_servers[0].real_servers] == ["10.180.0.1:80"]


# --- TestSessionAffinity / externalIPs / load balancers ---------------------------------------

def test_session_affinity_is_persistence_on_every_virtual_server():
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41", externalIPs=["50.60.70.81"],
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}},
            ports=[port("p80", 80, nodePort=3001)])
    r = ipvs.render(snap([s], []))
    assert [str(v) for v in r.virtual_servers] == [
        "10.20.30.41:80/TCP", "50.60.70.81:80/TCP", "100.101.102.103:3001/TCP"]
    assert all(v.persistent == 10800 for v in r.virtual_servers)
    assert "-A -t 50.60.70.81:80 -s rr -p 10800\n" in r.ipvsadm_text()
    # an external IP that is not a node address is bound too; masquerade + accept rules
    assert r.bind_addresses == ["10.20.30.41", "50.60.70.81"]
    assert r.ipsets[ipvs.EXTERNAL_IP].entries == ("50.60.70.81,tcp:80",)
    assert ("-A KUBE-SERVICES -m comment --comment \"Kubernetes service external ip + port for "
            "masquerade and filter purpose\" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m physdev "
            "! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT") in r.iptables


def test_load_balancer_source_ranges():
    s = svc("ns1", "svc1", type="LoadBalancer", clusterIP="10.20.30.41",
            loadBalancerSourceRanges=["192.168.0.0/24"],
            ports=[port("p80", 80, nodePort=3001)])
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    r = ipvs.render(snap([s], [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80)])]))
    assert r.ipsets[ipvs.LOAD_BALANCER].entries == ("1.2.3.4,tcp:80",)
    assert r.ipsets[ipvs.LOAD_BALANCER_FW].entries == ("1.2.3.4,tcp:80",)
    assert r.ipsets[ipvs.LOAD_BALANCER_SOURCE_CIDR].entries == ("1.2.3.4,tcp:80,192.168.0.0/24",)
    jumps = chain_jumps(r.iptables)
    assert jumps["KUBE-PROXY-FIREWALL"] == [("KUBE-SOURCE-RANGES-FIREWALL", "KUBE-LOAD-BALANCER-FW")]
    assert jumps["KUBE-SOURCE-RANGES-FIREWALL"] == [
        ("RETURN", "KUBE-LOAD-BALANCER-SOURCE-CIDR"), ("DROP", "")]
    # the node (100.101.102.103) is outside the ranges: LB access from the node is dropped
    assert ("-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 "
            "-j DROP") in r.iptables


# --- the whole iptables text for the simplest case -------------------------------------------

def test_iptables_text_of_a_cluster_ip_service():
    s1 = svc("ns1", "svc1", clusterIP="10.20.30.41", ports=[port("p80", 80)])
    r = ipvs.render(snap([s1], [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80)])]),
                    ipvs.IpvsOptions(random_fully=False))
    assert r.iptables == text('''
        *nat
        :KUBE-SERVICES - [0:0]
        :KUBE-POSTROUTING - [0:0]
        :KUBE-NODE-PORT - [0:0]
        :KUBE-LOAD-BALANCER - [0:0]
        :KUBE-MARK-MASQ - [0:0]
        -A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
        -A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
        -A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
        -A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
        -A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
        -A KUBE-POSTROUTING -m mark ! --mark 0x004000/0x004000 -j RETURN
        -A KUBE-POSTROUTING -j MARK --xor-mark 0x004000
        -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
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
        -A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
        -A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
        -A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
        -A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
        -A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
        -A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
        -A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
        COMMIT
        ''')


def test_rule_count_does_not_grow_with_services():
    def rules(n):
        services = [svc("ns", f"s{i}", type="NodePort", clusterIP=f"10.20.{i // 250}.{i % 250 + 1}",
                        ports=[port("p", 80, nodePort=30000 + i)]) for i in range(n)]
        return ipvs.render(snap(services, [])).iptables.count("\n-A ")
    assert rules(1) == rules(300)


def test_ipset_restore_text_plain_and_swap():
    r = ipvs.render(snap([NODEPORT_SVC], []))
    plain = r.ipset_text()
    assert "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 -exist\nadd KUBE-NODE-PORT-TCP 3001 -exist\n" in plain
    swap = r.ipset_text(swap=True).splitlines()
    i = swap.index("create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 -exist")
    assert swap[i + 1:i + 6] == [
        "create NSIM-SWAP-01 hash:ip,port family inet hashsize 1024 maxelem 65536 -exist",
        "flush NSIM-SWAP-01", "add NSIM-SWAP-01 10.20.30.41,tcp:80 -exist",
        "swap NSIM-SWAP-01 KUBE-CLUSTER-IP", "destroy NSIM-SWAP-01"]
    assert all(len(name) <= 31 for name, _, _ in ipvs.IPSET_INFO)


def test_jump_rules_match_upstream_iptables_jump_chain():
    assert ipvs.jump_rules()[0] == ("nat", "OUTPUT", ["-m", "comment", "--comment",
                                                      "kubernetes service portals", "-j",
                                                      "KUBE-SERVICES"])
    assert len(ipvs.jump_rules()) == 9


# --- the applier's diff (pure) ---------------------------------------------------------------

SAVED = """-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-a -t 10.20.30.41:80 -r 10.180.0.9:80 -m -w 1
-A -u 10.20.30.50:53 -s rr
-A -f 7 -s rr
"""


def test_parse_ipvsadm_save():
    cur = parse_ipvsadm_save(SAVED)
    assert cur == {("TCP", "10.20.30.41", 80): ("-s rr", {"10.180.0.1:80": 1, "10.180.0.9:80": 1}),
                   ("UDP", "10.20.30.50", 53): ("-s rr", {})}


def test_diff_adds_edits_and_deletes_only_what_changed():
    s = svc("ns1", "svc1", type="NodePort", clusterIP="10.20.30.41", sessionAffinity="ClientIP",
            ports=[port("p80", 80, nodePort=3001)])
    r = ipvs.render(snap([s], [eps("ns1", "svc1", [ep("10.180.0.1"), ep("10.180.0.2")],
                                   [port("p80", 80)])]))
    assert ipvs_diff(parse_ipvsadm_save(SAVED), r.virtual_servers) == [
        "-E -t 10.20.30.41:80 -s rr -p 10800",
        "-a -t 10.20.30.41:80 -r 10.180.0.2:80 -m -w 1",
        "-d -t 10.20.30.41:80 -r 10.180.0.9:80",
        "-A -t 100.101.102.103:3001 -s rr -p 10800",
        "-a -t 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1",
        "-a -t 100.101.102.103:3001 -r 10.180.0.2:80 -m -w 1",
        "-D -u 10.20.30.50:53",
    ]
    # applied state -> nothing to do
    assert ipvs_diff(parse_ipvsadm_save(r.ipvsadm_text()), r.virtual_servers) == []


def test_agent_refuses_ipvs_on_a_kernel_without_ip_vs_and_says_why(caplog):
    import os

    import pytest

    from netsim.net.topology import ClusterConfig
    from netsim.proxy.agent import KubeProxy
    if os.path.exists("/proc/net/ip_vs"):
        pytest.skip("this kernel has IP_VS")

    class Client:
        created: list = []

        def get(self, resource, name, namespace=None):
            return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": "u"}}

        def create(self, obj):
            self.created.append(obj)
            return obj

    cfg = ClusterConfig.make(name="unit", nodes=1, proxy_mode="ipvs")
    kp = KubeProxy(Client(), cfg, cfg.nodes[0], hold_node_ports=False)
    kp.start()
    assert kp.stopped.is_set() and kp.syncer is None
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "no IP_VS" in msg and "--proxy-mode iptables or nftables" in msg


# --- terminating endpoints (upstream CategorizeEndpoints in syncEndpoint) ---------------------

# (scenario of tests/proxy_fixtures.TERMINATING_SCENARIOS) -> destinations of the ClusterIP
# and of the LB IP virtual servers: ready endpoints, else the serving-terminating ones; a
# Local policy without a local one falls back to the cluster's (PR 97081) as above.
TERMINATING_DESTINATIONS = {
    "terminating-local: ready endpoints exist": (["1", "2", "5"], ["1", "2"]),
    "terminating-local: only terminating endpoints exist": (["5"], ["2", "3"]),
    "terminating-local: terminating endpoints on remote node": (["5"], ["5"]),
    "terminating-local: no usable endpoints on any node": ([], []),
    "terminating-cluster: ready endpoints exist": (["1", "2", "5"], ["1", "2", "5"]),
    "terminating-cluster: only terminating endpoints exist": (["2", "3", "5"], ["2", "3", "5"]),
    "terminating-cluster: terminating endpoints on remote node": (["5"], ["5"]),
    "terminating-cluster: no usable endpoints on any node": ([], []),
}


def test_terminating_endpoints_are_destinations_only_without_ready_ones():
    from tests.proxy_fixtures import TERMINATING_SCENARIOS, TEST_NODE, terminating_objects
    assert set(TERMINATING_DESTINATIONS) == {s[0] for s in TERMINATING_SCENARIOS}
    for name, policy, endpoints, _ in TERMINATING_SCENARIOS:
        r = ipvs.render(fixtures_snap(*terminating_objects(policy, endpoints),
                                      node_name=TEST_NODE))
        got = tuple([str(x) for x in r.virtual_server("TCP", ip, 80).real_servers]
                    for ip in ("172.30.1.1", "1.2.3.4"))
        want = tuple([f"10.0.1.{i}:80" for i in w] for w in TERMINATING_DESTINATIONS[name])
        assert got == want, name


def test_ipset_save_reads_back_as_the_rendered_sets():
    """What the kernel prints (`ipset save`, a /32 net without its prefix) is the renderer's
    entry text, so a periodic check finds nothing to change in a set nobody touched."""
    text = ("create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 "
            "bucketsize 12 initval 0xa3b4dd4d\n"
            "add KUBE-LOOP-BACK 10.244.1.2,udp:53,10.244.1.2\n"
            "add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2\n"
            "create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 "
            "maxelem 65536\nadd KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,10.0.0.1\n"
            "add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,10.0.0.0/24\n"
            "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\nadd KUBE-NODE-PORT-TCP 30080\n"
            "create someone-elses hash:ip\nadd someone-elses 1.1.1.1\n")
    got = ipvs.parse_ipset_save(text)
    assert set(got) == {ipvs.LOOP_BACK, ipvs.LOAD_BALANCER_SOURCE_CIDR, ipvs.NODE_PORT_TCP}
    assert got[ipvs.LOOP_BACK].entries == ("10.244.1.2,tcp:8080,10.244.1.2",
                                           "10.244.1.2,udp:53,10.244.1.2")
    assert set(got[ipvs.LOAD_BALANCER_SOURCE_CIDR].entries) == {"1.2.3.4,tcp:80,10.0.0.1/32",
                                                                 "1.2.3.4,tcp:80,10.0.0.0/24"}
    assert got[ipvs.NODE_PORT_TCP] == ipvs.IPSet(ipvs.NODE_PORT_TCP, ipvs.BITMAP_PORT,
                                                 got[ipvs.NODE_PORT_TCP].comment, ("30080",))
