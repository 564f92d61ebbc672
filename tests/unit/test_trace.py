"""netsim.inspect.trace's pure parts: resolving FROM/TO from API objects, the hops assembled
from a ruleflow walk (one branch: the endpoint conntrack named), the routing decision, the
JSON shape `netsim trace -o json` prints."""

from __future__ import annotations

import pytest

from netsim.inspect import trace as tr
from netsim.inspect.ruleflow import IptablesRules, NftRules
from netsim.net.topology import ClusterConfig
from tests.unit.test_ruleflow import NFT, SAVE

CFG = ClusterConfig.make("tt", lan="192.168.0.0/24")
NODE_OBJS = [
    {"metadata": {"name": "k8s-master-171"}, "spec": {"podCIDR": "10.244.0.0/24"},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.171"}]}},
    {"metadata": {"name": "k8s-slave-172"}, "spec": {"podCIDR": "10.244.1.0/24"},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.172"}]}},
    {"metadata": {"name": "k8s-slave-173"}, "spec": {},  # no podCIDR yet: the config's
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.173"}]}},
]
NODES = tr.nodes_of(NODE_OBJS, CFG)


def pod(name: str, ip: str, node: str, ns: str = "default", port: int | None = 8080) -> dict:
    c = {"name": "c", "ports": [{"containerPort": port}] if port else []}
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "containers": [c]},
            "status": {"podIP": ip, "phase": "Running"}}


PODS = [pod("client", "10.244.1.9", "k8s-slave-172"), pod("web-1", "10.244.1.3", "k8s-slave-172"),
        pod("web-2", "10.244.2.3", "k8s-slave-173"), pod("web-3", "10.244.2.4", "k8s-slave-173")]
SVC = {"metadata": {"name": "web", "namespace": "default"},
       "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80, "protocol": "TCP"},
                                                    {"port": 53, "protocol": "UDP"}]}}


def test_nodes_from_node_objects_with_the_config_filling_gaps():
    assert [(n.name, n.ip, n.pod_cidr) for n in NODES] == [
        ("k8s-master-171", "192.168.0.171", "10.244.0.0/24"),
        ("k8s-slave-172", "192.168.0.172", "10.244.1.0/24"),
        ("k8s-slave-173", "192.168.0.173", "10.244.2.0/24")]
    assert tr.node_for_ip(NODES, "10.244.2.4").name == "k8s-slave-173"
    assert tr.node_for_ip(NODES, "10.96.0.5") is None


def test_sources():
    s = tr.resolve_source("pod/client", pod=PODS[0], nodes=NODES, namespace="default", cfg=CFG)
    assert (s.at, s.ip, s.node, s.interface) == ("pod/default/client", "10.244.1.9",
                                                  "k8s-slave-172", "eth0")
    assert s.netns.startswith("tt-pod-") and s.node_interface.startswith("veth")
    s = tr.resolve_source("node/k8s-slave-173", pod=None, nodes=NODES, namespace="x", cfg=CFG)
    assert (s.at, s.ip, s.netns, s.node) == ("node/k8s-slave-173", "192.168.0.173",
                                             "tt-k8s-slave-173", "k8s-slave-173")
    s = tr.resolve_source("host", pod=None, nodes=NODES, namespace="x", cfg=CFG)
    assert (s.at, s.ip, s.netns, s.node) == ("host", "192.168.0.1", None, None)
    with pytest.raises(tr.TraceUsageError, match='pods "nope" not found'):
        tr.resolve_source("pod/nope", pod=None, nodes=NODES, namespace="x", cfg=CFG)
    with pytest.raises(tr.TraceUsageError, match='nodes "n9" not found'):
        tr.resolve_source("node/n9", pod=None, nodes=NODES, namespace="x", cfg=CFG)
    with pytest.raises(tr.TraceUsageError, match='resource type "deploy"'):
        tr.resolve_source("deploy/x", pod=None, nodes=NODES, namespace="x", cfg=CFG)


def test_destinations():
    d = tr.resolve_dest("svc/web", obj=SVC, nodes=NODES, namespace="default", port=None,
                        proto=None)
    assert (d.label, d.ip, d.port, d.proto) == ("svc/default/web", "10.96.0.5", 80, "tcp")
    d = tr.resolve_dest("svc/web", obj=SVC, nodes=NODES, namespace="default", port=53,
                        proto=None)
    assert (d.port, d.proto) == (53, "udp")  # the Service port's protocol
    d = tr.resolve_dest("pod/web-2", obj=PODS[2], nodes=NODES, namespace="default", port=None,
                        proto=None)
    assert (d.label, d.ip, d.port) == ("pod/default/web-2", "10.244.2.3", 8080)
    d = tr.resolve_dest("node/k8s-slave-172", obj=None, nodes=NODES, namespace="d", port=30080,
                        proto="tcp")
    assert (d.label, d.ip, d.port) == ("node/k8s-slave-172", "192.168.0.172", 30080)
    d = tr.resolve_dest("10.244.2.4", obj=None, nodes=NODES, namespace="d", port=8080, proto=None)
    assert (d.label, d.ip, d.port, d.proto) == ("10.244.2.4", "10.244.2.4", 8080, "tcp")
    for spec, msg in (("node/k8s-slave-172", "--port"), ("10.0.0.1", "--port")):
        with pytest.raises(tr.TraceUsageError, match=msg):
            tr.resolve_dest(spec, obj=None, nodes=NODES, namespace="d", port=None, proto=None)
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": []}}
    with pytest.raises(tr.TraceUsageError, match="headless"):
        tr.resolve_dest("svc/h", obj=headless, nodes=NODES, namespace="d", port=None, proto=None)
    with pytest.raises(tr.TraceUsageError, match='services "x" not found'):
        tr.resolve_dest("svc/x", obj=None, nodes=NODES, namespace="d", port=None, proto=None)


@pytest.mark.parametrize("rule,action", [
    ("-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -m comment --comment \"ns/a cluster IP\" -m tcp "
     "--dport 80 -j KUBE-SVC-A", "jump KUBE-SVC-A"),
    ("-A KUBE-SEP-2 -p tcp -m tcp -j DNAT --to-destination 10.244.2.3:8080",
     "DNAT to 10.244.2.3:8080"),
    ("-A KUBE-SERVICES -d 10.96.0.9/32 -p tcp -m comment --comment \"ns/none has no "
     "endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable", "REJECT"),
    ("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000", "MARK --or-mark 0x4000"),
    ("-A A -g B", "goto B"),
    ("-A KUBE-POSTROUTING -j MASQUERADE --random-fully", "MASQUERADE"),
    ("meta l4proto tcp dnat to 10.244.1.3:8080", "DNAT to 10.244.1.3:8080"),
    ("numgen random mod 2 vmap { 0 : goto ep1 , 1 : goto ep2 }",
     "numgen random: goto ep1, goto ep2"),
    ("ip daddr . meta l4proto . th dport vmap @service-ips", "verdict map @service-ips"),
    ('reject comment "x"', "REJECT"),
    ("ip saddr 10.244.1.3 jump mark-for-masquerade", "jump mark-for-masquerade"),
])
def test_rule_actions(rule, action):
    assert tr.rule_action(rule) == action


def test_iptables_walk_pruned_to_the_endpoint_conntrack_named():
    for ep in ("10.244.1.3:8080", "10.244.2.3:8080", "10.244.2.4:8080"):
        rules = IptablesRules(SAVE)
        tr.prune_to_endpoint(rules, ep)
        t = rules.trace("10.244.9.9", "10.96.0.5", 80, local_ips=["192.168.0.2"])
        assert (t.output, t.masquerade) == (ep, False)
    # a hairpin masquerades only on its own endpoint's branch (all branches: always)
    rules = IptablesRules(SAVE)
    tr.prune_to_endpoint(rules, "10.244.2.4:8080")
    t = rules.trace("10.244.2.3", "10.96.0.5", 80, local_ips=["192.168.0.2"])
    assert (t.output, t.masquerade) == ("10.244.2.4:8080", False)
    assert "KUBE-SEP-2" not in {h.chain for h in t.hops}
    rules = IptablesRules(SAVE)
    tr.prune_to_endpoint(rules, "10.244.2.3:8080")
    t = rules.trace("10.244.2.3", "10.96.0.5", 80, local_ips=["192.168.0.2"])
    assert (t.output, t.masquerade) == ("10.244.2.3:8080", True)


def test_iptables_endpoint_named_by_the_sep_chain_counter_that_moved():
    """A rejected SYN leaves no conntrack entry: the KUBE-SEP chain whose DNAT counted the
    probe says which endpoint it took; none or several moved: unknown."""
    rules = IptablesRules(SAVE)
    eps = ["10.244.1.3:8080", "10.244.2.3:8080", "10.244.2.4:8080"]
    before = {"KUBE-SEP-1": 4, "KUBE-SEP-2": 7, "KUBE-SEP-3": 0}
    assert tr.endpoint_by_counters(before, {**before, "KUBE-SEP-2": 8}, rules, eps) == \
        "10.244.2.3:8080"
    assert tr.endpoint_by_counters(before, before, rules, eps) is None
    assert tr.endpoint_by_counters(before, {"KUBE-SEP-1": 5, "KUBE-SEP-2": 8, "KUBE-SEP-3": 0},
                                   rules, eps) is None
    # kube-proxy rewrote the chains between the reads: counters restart from zero
    assert tr.endpoint_by_counters(before, {"KUBE-SEP-1": 0, "KUBE-SEP-2": 0}, rules, eps) is None


def test_nft_walk_pruned_to_the_endpoint():
    rules = NftRules(NFT)
    tr.prune_to_endpoint(rules, "10.244.2.3:8080")
    t = rules.trace("10.244.1.3", "10.96.0.5", 80, local_ips=["192.168.0.2"])
    assert (t.output, t.masquerade) == ("10.244.2.3:8080", False)  # ep1's hairpin not taken
    assert "ep1" not in {h.chain for h in t.hops}
    actions = [h.action for h in tr.netfilter_hops(t, "node/n", "cni0")]
    assert "numgen random -> ep2" in actions  # the branch taken, not the whole map
    assert "verdict map @service-ips -> svc" in actions


def walk(endpoint: str | None, src="10.244.1.9", dst="10.96.0.5", port=80):
    rules = IptablesRules(SAVE)
    if endpoint:
        tr.prune_to_endpoint(rules, endpoint)
    return rules.trace(src, dst, port, local_ips=["192.168.0.172", "10.244.1.1"])


def client_source() -> tr.Source:
    return tr.resolve_source("pod/client", pod=PODS[0], nodes=NODES, namespace="default", cfg=CFG)


def test_clusterip_to_another_node_json_shape():
    dst = tr.resolve_dest("svc/web", obj=SVC, nodes=NODES, namespace="default", port=None,
                          proto=None)
    ep = "10.244.2.3:8080"
    res = tr.assemble(client_source(), dst, NODES, [("k8s-slave-172", "cni0", walk(ep))],
                      {"result": "connected", "sport": 40000}, ep, PODS)
    j = res.to_json()
    assert list(j) == ["from", "to", "verdict", "delivered_to", "hops"]
    assert (j["from"], j["to"], j["verdict"]) == ("pod/default/client", "svc/default/web",
                                                  "delivered")
    assert j["delivered_to"] == {"pod": "default/web-2", "ip": "10.244.2.3", "port": 8080}
    assert all(list(h) == ["at", "interface", "table", "chain", "rule", "action"]
               for h in j["hops"])
    chains = [h["chain"] for h in j["hops"] if h["table"]]
    assert chains[:3] == ["PREROUTING", "KUBE-SERVICES", "KUBE-SVC-A"]
    assert "KUBE-SEP-2" in chains and "KUBE-SEP-1" not in chains and "KUBE-SEP-3" not in chains
    actions = [h["action"] for h in j["hops"]]
    assert "DNAT to 10.244.2.3:8080" in actions
    # routing after the nat PREROUTING hops, before the filter FORWARD ones
    i = actions.index("forward to node/k8s-slave-173 (192.168.0.173)")
    assert j["hops"][i]["rule"] == "route 10.244.2.0/24 via 192.168.0.173 dev eth0"
    assert j["hops"][i - 1]["action"] == "DNAT to 10.244.2.3:8080"
    after = j["hops"][i + 1:]
    assert after[0]["chain"] == "FORWARD" and after[0]["interface"] == "eth0"  # out via eth0
    arrive = next(k for k, h in enumerate(after) if h["at"] == "node/k8s-slave-173")
    assert all(h["at"] == "node/k8s-slave-172" for h in after[:arrive])
    assert after[arrive]["rule"] == "route 10.244.2.0/24 dev cni0"
    assert j["hops"][0] == {"at": "pod/default/client", "interface": "eth0", "table": "",
                            "chain": "", "rule": "",
                            "action": "send tcp 10.244.1.9 -> 10.96.0.5:80"}
    assert j["hops"][-1]["at"] == "pod/default/web-2"
    text = res.text()
    assert text.splitlines()[0] == ("tcp 10.244.1.9 -> 10.96.0.5:80  "
                                    "(pod/default/client -> svc/default/web)")
    assert "  nat/KUBE-SVC-A: -A KUBE-SVC-A -m statistic" in text
    assert text.endswith("verdict: delivered (pod/default/web-2 10.244.2.3:8080)")
    res.conntrack = "node/k8s-slave-172: tcp 6 119 TIME_WAIT src=10.244.1.9 ..."
    assert res.text().splitlines()[-2] == "conntrack " + res.conntrack
    assert res.to_json() == j  # text only: the JSON keeps the shape


def test_no_endpoints_is_rejected_by_the_reject_rule():
    dst = tr.Dest("svc/default/none", "10.96.0.9", 80, "tcp")
    res = tr.assemble(client_source(), dst, NODES,
                      [("k8s-slave-172", "cni0", walk(None, dst="10.96.0.9"))],
                      {"result": "refused", "sport": 1}, None, PODS)
    j = res.to_json()
    assert (j["verdict"], j["delivered_to"]) == ("rejected", None)
    assert j["hops"][-1]["action"] == "REJECT"
    assert "has no endpoints" in j["hops"][-1]["rule"]


def test_pod_ip_on_the_same_node_is_bridged():
    dst = tr.resolve_dest("pod/web-1", obj=PODS[1], nodes=NODES, namespace="default",
                          port=None, proto=None)
    res = tr.assemble(client_source(), dst, NODES,
                      [("k8s-slave-172", "cni0", walk(None, dst="10.244.1.3", port=8080))],
                      {"result": "connected", "sport": 1}, None, PODS)
    j = res.to_json()
    assert j["verdict"] == "delivered"
    assert j["delivered_to"] == {"pod": "default/web-1", "ip": "10.244.1.3", "port": 8080}
    assert not any(h["action"].startswith("DNAT") for h in j["hops"])
    assert any(h["rule"] == "route 10.244.1.0/24 dev cni0" for h in j["hops"])


def test_probe_outcomes_without_rules_to_explain_them():
    dst = tr.Dest("10.244.2.9", "10.244.2.9", 80, "tcp")
    for result, verdict in (("timeout", "dropped"), ("unreachable", "no-route"),
                            ("refused", "rejected")):
        res = tr.assemble(client_source(), dst, NODES, [], {"result": result}, None, PODS)
        assert (res.verdict, res.delivered_to) == (verdict, None)
    host = tr.resolve_source("host", pod=None, nodes=NODES, namespace="x", cfg=CFG)
    res = tr.assemble(host, tr.Dest("svc/default/web", "10.96.0.5", 80, "tcp"), NODES, [],
                      {"result": "unreachable"}, None, PODS,
                      host_route="RTNETLINK answers: No route to host")
    assert res.verdict == "no-route" and res.hops[-1].action == "no route"


def test_conntrack_lines():
    line = ("tcp      6 117 TIME_WAIT src=10.244.1.9 dst=10.96.0.5 sport=40000 dport=80 "
            "src=10.244.2.3 dst=10.244.1.9 sport=8080 dport=40000 [ASSURED] mark=0 use=1")
    assert tr.parse_conntrack(line + "\nconntrack v1.4.7: 1 flow entries\n") == [
        {"orig": {"src": "10.244.1.9", "dst": "10.96.0.5", "sport": "40000", "dport": "80"},
         "reply": {"src": "10.244.2.3", "dst": "10.244.1.9", "sport": "8080",
                   "dport": "40000"}, "line": " ".join(line.split())}]


def test_last_trace_is_written_for_the_topology(tmp_path, monkeypatch):
    from netsim.net import ledger
    monkeypatch.setattr(ledger, "RUN_ROOT", str(tmp_path))
    (tmp_path / "c1").mkdir()
    doc = {"from": "host", "to": "node/n1", "verdict": "delivered", "delivered_to": None,
           "hops": []}
    path = tr.save_last_trace("c1", doc)
    assert path == str(tmp_path / "c1" / "last-trace.json")
    import json
    assert json.loads((tmp_path / "c1" / "last-trace.json").read_text()) == doc
    assert sorted(p.name for p in (tmp_path / "c1").iterdir()) == ["last-trace.json"]
    assert tr.save_last_trace("gone", doc) is None  # no run dir: no file, no error
