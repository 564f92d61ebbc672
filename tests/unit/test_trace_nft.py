"""nftables-mode trace, the pure half: `nft monitor trace` output (recorded, see
tests/unit/recorded/README.md) -> the probe's packet -> hops; the trace table's text; the
NetworkPolicy default deny named from the rule comments."""

from __future__ import annotations

from pathlib import Path

from netsim.inspect import nftrace, policy
from netsim.inspect import trace as tr

REC = Path(__file__).parent / "recorded"


def _events(name: str) -> list[nftrace.Event]:
    return nftrace.parse_monitor((REC / name).read_text())


def test_monitor_lines_are_parsed():
    ev = _events("nft-monitor-trace-bridged-svc.txt")
    head = ev[0]
    assert (head.id, head.family, head.table, head.chain, head.kind) == (
        "2e7c848a", "ip", "netsim-trace", "pre", "packet")
    assert head.packet == {"iif": "cni0", "saddr": "10.244.1.2", "daddr": "10.97.62.76",
                           "ipid": 58776, "sport": 45678, "dport": 80, "flags": "syn"}
    vmap = next(e for e in ev if e.chain == "services")
    assert (vmap.kind, vmap.rule, vmap.verdict, vmap.target) == (
        "rule", "ip daddr . meta l4proto . th dport vmap @service-ips", "goto",
        "service-QW72D56W-h6/web/tcp/")
    pol = next(e for e in ev if e.kind == "policy")
    assert (pol.chain, pol.verdict) == ("pre", "accept")


def test_packets_split_by_ip_id_though_trace_ids_are_reused():
    pkts = nftrace.packets(_events("nft-monitor-trace-bridged-svc.txt"), "netsim-trace")
    assert [p[0].packet["flags"] for p in pkts] == ["syn", "ack", "0x11", "ack"]
    syn = nftrace.first_packet(_events("nft-monitor-trace-bridged-svc.txt"), "netsim-trace",
                               {"saddr": "10.244.1.2", "sport": 45678})
    assert syn == pkts[0]
    assert nftrace.first_packet(_events("nft-monitor-trace-bridged-svc.txt"), "netsim-trace",
                                {"sport": 1}) is None


def test_a_bridged_service_connection_as_hops():
    syn = nftrace.first_packet(_events("nft-monitor-trace-bridged-svc.txt"), "netsim-trace")
    t, iif = nftrace.packet_trace(syn, "netsim-trace", "10.244.1.2", "10.97.62.76", 80, "tcp")
    assert iif == "cni0" and t.endpoints == ["10.244.1.3:8080"] and t.verdict == "ACCEPT"
    hops = tr.netfilter_hops(t, "node/w1", "cni0")
    assert [(h.table, h.chain, h.action) for h in hops] == [
        ("kube-proxy", "filter-prerouting-pre-dnat", "jump firewall-check"),
        ("kube-proxy", "nat-prerouting", "jump services"),
        ("kube-proxy", "services", "verdict map @service-ips -> service-QW72D56W-h6/web/tcp/"),
        ("kube-proxy", "service-QW72D56W-h6/web/tcp/",
         "numgen random -> endpoint-GUST4JYE-h6/web/tcp/__10.244.1.3/8080"),
        ("kube-proxy", "endpoint-GUST4JYE-h6/web/tcp/__10.244.1.3/8080",
         "DNAT to 10.244.1.3:8080"),
        ("kube-proxy", "filter-forward", "jump service-endpoints-check"),
        ("kube-proxy", "filter-forward", "jump cluster-ips-check"),
        # the NetworkPolicy table's base chains, which no rule of decided
        ("netsim-netpol", "forward-egress", "ACCEPT"),
        ("netsim-netpol", "forward-ingress", "ACCEPT"),
        ("kube-proxy", "nat-postrouting", "jump masquerading"),
        ("kube-proxy", "masquerading", "RETURN"),
    ]


def test_a_routed_packet_keeps_its_hops_across_the_new_trace_id():
    ev = _events("nft-monitor-trace-routed-w1.txt")
    syn = nftrace.first_packet(ev, "netsim-trace-256edebc",
                               {"saddr": "10.244.1.2", "sport": 33796})
    t, _ = nftrace.packet_trace(syn, "netsim-trace-256edebc", "10.244.1.2", "10.244.2.2",
                                8080, "tcp")
    assert [h.chain for h in t.hops] == [
        "filter-prerouting-pre-dnat", "nat-prerouting", "filter-forward", "filter-forward",
        "forward-egress", "forward-ingress", "nat-postrouting", "masquerading"]
    assert t.verdict == "ACCEPT" and t.endpoints == []


def test_a_network_policy_reject_is_named():
    ev = _events("nft-monitor-trace-netpol-reject-w2.txt")
    syn = nftrace.first_packet(ev, "netsim-trace-256edebc",
                               {"saddr": "10.244.1.2", "daddr": "10.244.2.2", "dport": 8080})
    t, iif = nftrace.packet_trace(syn, "netsim-trace-256edebc", "10.244.1.2", "10.244.2.2",
                                  8080, "tcp")
    assert iif == "eth0" and t.verdict == "REJECT"
    last = t.hops[-1]
    assert (last.table, last.rule) == (  # the counter's cached values are left out
        "netsim-netpol", 'counter reject comment "default deny ingress to '
        'h6/web-7c45c44b88-cx8ff"')
    hops = tr.netfilter_hops(t, "node/w2", "eth0")
    d = policy.explain(hops, len(hops) - 1)
    assert d == policy.Denial("ingress", "h6/web-7c45c44b88-cx8ff", ("h6/web-deny",))
    assert d.text() == ("default deny ingress to pod/h6/web-7c45c44b88-cx8ff (isolated by "
                        "NetworkPolicy h6/web-deny; no rule of it allows this packet)")


def test_iptables_policy_rules_are_named_the_same_way():
    H = tr.Hop
    hops = [H("node/n", "eth0", "filter", "NETSIM-NWPLCY", '-A NETSIM-NWPLCY -d 10.244.1.3/32 '
              '-m comment --comment "ingress to default/web" -j NETSIM-IN-X', "jump NETSIM-IN-X"),
            H("node/n", "eth0", "filter", "NETSIM-IN-X", '-A NETSIM-IN-X -m comment --comment '
              '"policy default/a" -j NETSIM-NPI-A', "jump NETSIM-NPI-A"),
            H("node/n", "eth0", "filter", "NETSIM-IN-X", '-A NETSIM-IN-X -m comment --comment '
              '"policy default/b" -j NETSIM-NPI-B', "jump NETSIM-NPI-B"),
            H("node/n", "eth0", "filter", "NETSIM-IN-X", '-A NETSIM-IN-X -m comment --comment '
              '"default deny egress from default/web" -j REJECT', "REJECT")]
    d = policy.explain(hops, 3)
    assert (d.direction, d.pod, d.policies) == ("egress", "default/web",
                                                ("default/a", "default/b"))
    assert "isolated by NetworkPolicy default/a, NetworkPolicy default/b; no rule of them" \
        in d.text()
    assert policy.explain(hops, 1) is None  # not a deny


def test_trace_table_matches_the_probe_alone():
    m = nftrace.match_expr("tcp", ["10.244.1.2"], 40001, [])
    assert m == "ip saddr { 10.244.1.2 } tcp sport 40001"
    m = nftrace.match_expr("udp", ["10.244.1.2", "192.168.3.172"], None,
                           ["10.244.2.2:53", "10.244.2.3:53"])
    assert m == ("ip saddr { 10.244.1.2, 192.168.3.172 } ip daddr . udp dport "
                 "{ 10.244.2.2 . 53, 10.244.2.3 . 53 }")
    text = nftrace.table_text("netsim-trace-ab", m)
    assert text.startswith("table ip netsim-trace-ab {\n")
    assert "type filter hook prerouting priority -400; policy accept; " + m + \
        " meta nftrace set 1;" in text
    assert "hook output priority -400" in text


def test_policies_that_allow_nothing_are_named_from_the_api():
    pods = [{"metadata": {"name": "web", "namespace": "h6", "labels": {"app": "web"}},
             "spec": {"nodeName": "n"}, "status": {"podIP": "10.244.1.3", "phase": "Running"}}]
    pols = [{"metadata": {"name": n, "namespace": ns},
             "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": types}}
            for n, ns, app, types in (("deny", "h6", "web", ["Ingress"]),
                                      ("other", "h6", "db", ["Ingress"]),
                                      ("eg", "h6", "web", ["Egress"]),
                                      ("elsewhere", "x", "web", ["Ingress"]))]
    d = policy.with_selecting(policy.Denial("ingress", "h6/web", ()), pols, pods)
    assert d.policies == ("h6/deny",)
    kept = policy.Denial("ingress", "h6/web", ("h6/a",))
    assert policy.with_selecting(kept, pols, pods) is kept
