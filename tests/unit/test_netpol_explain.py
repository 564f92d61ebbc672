"""netsim.netpol.explain names the NetworkPolicy or the default deny behind a rule: for the
hops the packet-flow interpreter reports (iptables and nftables), for bare comments, for
nft chain names without a comment, and for an nft rule handle in a `nft -a list` listing."""

from __future__ import annotations

import pytest

from netsim.netpol.explain import Explanation, explain, rule_by_handle
from tests.unit.test_netpol_render import NODES, PODS, Cluster, admitted, key, netpol


def _ip(k: str) -> str:
    return next(p for p in PODS if key(p) == k)["status"]["podIP"]


def _node(k: str) -> str:
    return next(p for p in PODS if key(p) == k)["spec"]["nodeName"]


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_the_last_hop_names_the_policy_or_the_default_deny(backend):
    cluster = Cluster(admitted(netpol("allow-y", ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])), backend)
    rules = cluster.rules[_node("x/a")]
    ok = rules.trace(_ip("y/a"), _ip("x/a"), 80, local_ips=[NODES[_node("x/a")]])
    named = [explain(h.chain, h.rule) for h in ok.hops]
    assert ok.verdict == "ACCEPT"
    rule = next(e for e in named if e and e.kind == "policy-rule")
    assert rule == Explanation("policy-rule", "x", "allow-y", "ingress", 0, "allow")
    assert str(rule) == "allowed by NetworkPolicy x/allow-y (ingress[0])"
    assert Explanation("pod", "x", "a", "ingress") in named
    bad = rules.trace(_ip("z/a"), _ip("x/a"), 81, "udp", local_ips=[NODES[_node("x/a")]])
    last = explain(bad.hops[-1].chain, bad.hops[-1].rule)
    assert bad.verdict == "REJECT"
    assert last == Explanation("default-deny", "x", "a", "ingress", verdict="reject")
    assert str(last) == ("dropped by the default deny of x/a (ingress): no NetworkPolicy "
                         "selecting the pod allows it")
    assert last.policy is None and rule.policy == "x/allow-y"


def test_comments_alone_and_rule_texts_as_the_tools_print_them():
    assert explain("", "default deny egress from y/web-1").kind == "default-deny"
    assert explain("NETSIM-NPE-ABC", '-A NETSIM-NPE-ABC -d 10.244.1.5/32 -m comment '
                   '--comment "x/db-access egress[2]" -j MARK --set-xmark 0x10000/0x10000'
                   ) == Explanation("policy-rule", "x", "db-access", "egress", 2, "allow")
    jump = explain("NETSIM-IN-XYZ", '-m comment --comment "policy x/allow-y" -j NETSIM-NPI-Q')
    assert (jump.kind, jump.policy, jump.direction) == ("policy", "x/allow-y", "ingress")
    est = explain("forward-ingress", 'ct state established,related accept comment '
                  '"replies and established connections"')
    assert est.kind == "established" and est.verdict == "allow"
    assert explain("KUBE-SERVICES", '-m comment --comment "default/web cluster IP" -j X') is None
    assert explain("services", "ip daddr . meta l4proto . th dport vmap @service-ips") is None


def test_nft_chain_names_are_enough_without_a_comment():
    deny = explain("ingress-KNLBO24S-x/a", "counter packets 3 bytes 180 reject")
    assert deny == Explanation("default-deny", "x", "a", "ingress", verdict="reject")
    allow = explain("policy-egress-NKJQLXJC-x/eg", "udp dport 53 counter accept")
    assert (allow.kind, allow.policy, allow.direction) == ("policy-rule", "x/eg", "egress")


LISTING = """table ip netsim-netpol { # handle 12
	chain ingress-KNLBO24S-x/a { # handle 9
		jump policy-ingress-GFKPY5TO-x/allow-y comment "policy x/allow-y" # handle 31
		meta l4proto tcp counter packets 2 bytes 120 reject with tcp reset comment "default deny ingress to x/a" # handle 32
		counter packets 1 bytes 60 reject comment "default deny ingress to x/a" # handle 33
	}
	chain policy-ingress-GFKPY5TO-x/allow-y { # handle 10
		ip saddr @pods-GIUBDUERITM6CPWY counter packets 9 bytes 540 accept comment "x/allow-y ingress[0]" # handle 34
	}
}
"""


def test_an_nft_rule_handle_from_a_trace():
    assert rule_by_handle(LISTING, 34)[0] == "policy-ingress-GFKPY5TO-x/allow-y"
    assert explain("", handle=33, listing=LISTING).kind == "default-deny"
    assert explain("", handle=34, listing=LISTING).policy == "x/allow-y"
    assert explain("", handle=31, listing=LISTING).kind == "policy"
    assert explain("", handle=99, listing=LISTING) is None
    assert explain("", handle=9, listing=LISTING) is None  # a chain's handle, not a rule's


# --- counters: what `netsim netpol stats` sums ------------------------------------------------

SAVE = """*filter
:NETSIM-NWPLCY - [0:0]
[5:300] -A NETSIM-NWPLCY -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies and established connections" -j RETURN
[9:540] -A NETSIM-NPI-AAAA -m set --match-set x -m comment --comment "x/allow-y ingress[0]" -j MARK --set-xmark 0x10000/0x10000
[1:60] -A NETSIM-NPI-AAAA -s 10.244.2.0/24 -m comment --comment "x/allow-y ingress[1]" -j MARK --set-xmark 0x10000/0x10000
[2:120] -A NETSIM-IN-BBBB -p tcp -m comment --comment "default deny ingress to x/a" -j REJECT --reject-with tcp-reset
[3:90] -A NETSIM-IN-BBBB -m comment --comment "default deny ingress to x/a" -j REJECT
[7:7] -A KUBE-SERVICES -m comment --comment "default/web cluster IP" -j KUBE-SVC-X
COMMIT
"""


def test_counters_from_iptables_save_and_nft_json_and_their_summary():
    from netsim.netpol.counters import RuleCount, parse_iptables_save, parse_nft_json, summarize
    from netsim.netpol.render import Snapshot
    from tests.unit.test_netpol_render import NAMESPACE_OBJS
    ipt = parse_iptables_save(SAVE)
    assert [c.comment for c in ipt][1:] == ["x/allow-y ingress[0]", "x/allow-y ingress[1]",
                                            "default deny ingress to x/a",
                                            "default deny ingress to x/a"]
    nft_json = ('{"nftables": [{"metainfo": {}}, {"rule": {"family": "ip", "table": '
                '"netsim-netpol", "chain": "policy-ingress-GFKPY5TO-x/allow-y", "handle": 34, '
                '"comment": "x/allow-y ingress[0]", "expr": [{"match": {}}, {"counter": '
                '{"packets": 4, "bytes": 240}}, {"accept": null}]}}, {"rule": {"chain": '
                '"egress-pods", "expr": [{"jump": {"target": "x"}}]}}]}')
    assert parse_nft_json(nft_json) == [
        RuleCount("policy-ingress-GFKPY5TO-x/allow-y", "x/allow-y ingress[0]", 4, 240)]
    pols = admitted(netpol("allow-y", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]),
        netpol("deny-egress", policyTypes=["Egress"]))
    snap = Snapshot.from_objects(pols, PODS, NAMESPACE_OBJS, "")
    rows, pods = summarize(ipt + parse_nft_json(nft_json), snap)
    by = {r.name: r for r in rows}
    assert (by["allow-y"].allowed_packets, by["allow-y"].allowed_bytes) == (14, 840)
    assert (by["allow-y"].denied_packets, by["allow-y"].denied_bytes) == (5, 210)
    assert by["allow-y"].pods == 1 and by["allow-y"].directions == ("Ingress",)
    assert by["deny-egress"].pods == 3 and by["deny-egress"].allowed_packets == 0
    xa_in = next(p for p in pods if (p.pod, p.direction) == ("a", "Ingress"))
    assert (xa_in.policies, xa_in.packets, xa_in.bytes) == (["allow-y"], 5, 210)
    assert sorted(p.pod for p in pods if p.direction == "Egress") == ["a", "b", "c"]
