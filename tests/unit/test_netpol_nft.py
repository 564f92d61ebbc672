"""NetworkPolicy in nftables mode: the backend each proxy mode gets, the syncer's partial
transactions (judged by where packets go, against a fresh full render), bad objects left
out, and — as root, in a throwaway netns — the kernel taking every transaction.

The reachability matrices of upstream's cases run for both renderers in
tests/unit/test_netpol_render.py."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import pytest

from netsim.inspect.ruleflow import NftRules
from netsim.netpol import golden, nft
from netsim.netpol.agent import NftPolicySyncer, PolicyAgent, backend_for
from netsim.netpol.render import Snapshot, render
from tests.unit.test_netpol_render import (
    NAMESPACE_OBJS,
    NODES,
    PODS,
    admitted,
    key,
    netpol,
)

NODE = "node-1"


def snap(pols, pods=PODS, namespaces=NAMESPACE_OBJS) -> Snapshot:
    return Snapshot.from_objects(pols, pods, namespaces, NODE)


def pod(k: str) -> dict:
    return next(p for p in PODS if key(p) == k)


def ip(k: str) -> str:
    return pod(k)["status"]["podIP"]


def verdict(rules: NftRules, src: str, dst: str, port: int = 80, proto: str = "tcp") -> str:
    return rules.trace(ip(src), ip(dst), port, proto, local_ips=[NODES[NODE]]).verdict


@pytest.mark.parametrize("mode, want", [("nftables", "nftables"), ("iptables", "iptables"),
                                        ("ipvs", "iptables"), (None, "iptables"),
                                        ("NFTables", "nftables")])
def test_the_policy_backend_follows_kube_proxys(mode, want):
    # never two firewall backends in one node netns: nft mode's kube-proxy writes no
    # iptables rule, iptables and IPVS mode's do (IPVS needs iptables for masquerading)
    assert backend_for(mode) == want


def test_the_node_agent_picks_the_backend_from_the_cluster_config():
    class Factory:
        def informer(self, resource):
            return SimpleNamespace(add_handler=lambda **kw: None, indexer=None)
    for mode, want in (("nftables", "nftables"), ("ipvs", "iptables"), ("iptables", "iptables")):
        agent = PolicyAgent(None, SimpleNamespace(proxy_mode=mode), SimpleNamespace(name=NODE),
                            factory=Factory())  # type: ignore[arg-type]
        assert agent.backend == want


class FakeNft:
    """What NftPolicySyncer calls (apply, table_exists), kept in an NftRules."""

    def __init__(self):
        self.rules = NftRules()
        self.applied: list[str] = []

    def apply(self, text: str) -> float:
        self.applied.append(text)
        self.rules.run(text)
        return 0.0

    def table_exists(self, family: str, table: str) -> bool:
        assert (family, table) == ("ip", nft.TABLE)
        return self.rules.table == table


def same_verdicts(a: NftRules, b: NftRules) -> None:
    local = [key(p) for p in PODS if p["spec"]["nodeName"] == NODE]
    for s in [key(p) for p in PODS]:
        for d in local:
            if s != d:
                for port, proto in ((80, "tcp"), (81, "udp")):
                    assert verdict(a, s, d, port, proto) == verdict(b, s, d, port, proto), (s, d)


def test_syncer_writes_the_whole_table_once_then_only_differences():
    kernel = FakeNft()
    syncer = NftPolicySyncer(kernel)  # type: ignore[arg-type]
    allow_y, deny = admitted(
        netpol("allow-y", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
            {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]),
        netpol("deny", policyTypes=["Ingress"]))
    assert syncer.sync(snap([allow_y]))
    assert kernel.applied[-1].startswith(f"add table ip {nft.TABLE}\ndelete table")
    assert verdict(kernel.rules, "y/b", "x/a") == "ACCEPT"
    assert verdict(kernel.rules, "z/b", "x/a") == "REJECT"
    assert not syncer.sync(snap([allow_y]))  # nothing changed: no transaction
    assert len(kernel.applied) == 1

    # z's namespace gets labelled ns=y: only a set's elements change
    relabelled = [{"metadata": {**n["metadata"], "labels": {**n["metadata"]["labels"], "ns": "y"}}}
                  if n["metadata"]["name"] == "z" else n for n in NAMESPACE_OBJS]
    assert syncer.sync(snap([allow_y], namespaces=relabelled))
    part = kernel.applied[-1].splitlines()
    assert part and all(ln.startswith("add element") for ln in part), part
    assert verdict(kernel.rules, "z/b", "x/a") == "ACCEPT"

    # a second policy: its chain, the chains of the pods it isolates, the dispatch chain
    assert syncer.sync(snap([allow_y, deny], namespaces=relabelled))
    part = kernel.applied[-1]
    assert "delete table" not in part and "add element" not in part
    assert "add chain ip netsim-netpol ingress-" in part  # x/c is isolated now
    assert pod("x/c")["spec"]["nodeName"] == NODE
    assert verdict(kernel.rules, "y/b", "x/c") == "REJECT"
    assert verdict(kernel.rules, "y/b", "x/a") == "ACCEPT"
    fresh = NftRules(nft.render(snap([allow_y, deny], namespaces=relabelled)))
    same_verdicts(kernel.rules, fresh)

    # a pod gone: its address leaves the sets; every policy gone: the chains go too
    gone = [p for p in PODS if key(p) != "z/b"]
    assert syncer.sync(snap([allow_y, deny], pods=gone, namespaces=relabelled))
    assert "delete element" in kernel.applied[-1]
    assert syncer.sync(snap([]))
    assert "delete chain" in kernel.applied[-1] and "delete set" in kernel.applied[-1]
    assert set(kernel.rules.chains) == {"forward-egress", "input-egress", "forward-ingress",
                                        "egress-pods", "ingress-pods"}
    assert verdict(kernel.rules, "z/b", "x/a") == "ACCEPT"


def test_syncer_rewrites_the_table_when_someone_deleted_it():
    kernel = FakeNft()
    syncer = NftPolicySyncer(kernel)  # type: ignore[arg-type]
    deny = admitted(netpol("deny", policyTypes=["Ingress"]))
    assert syncer.sync(snap(deny))
    kernel.rules.run(f"delete table ip {nft.TABLE}")
    assert syncer.sync(snap(deny))
    assert "delete table" in kernel.applied[-1]
    assert verdict(kernel.rules, "y/a", "x/a") == "REJECT"


def test_a_bad_policy_is_left_out_and_the_others_are_served():
    good = admitted(netpol("deny", policyTypes=["Ingress"]))[0]
    bad = {**admitted(netpol("allow-80", ingress=[{"ports": [{"port": 80}]}]))[0]}
    bad["spec"] = {**bad["spec"], "ingress": [{"ports": [{"port": 80, "endPort": "x"}]}]}
    for name, render_it in (("nftables", lambda s, e: nft.render_full(nft.build(s, e))),
                            ("iptables", lambda s, e: render(s, errors=e))):
        errors: list = []
        text = render_it(snap([bad, good]), errors)
        assert [(p["metadata"]["name"], m.split(":")[0]) for p, m in errors] == [
            ("allow-80", "TypeError")], name
        assert "default deny ingress to x/a" in text and "allow-80" not in text, name


def test_comments_name_the_policy_the_pod_and_the_sets_selector():
    pols = admitted(netpol("ns-and-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                   "podSelector": {"matchLabels": {"pod": "b"}}}]}]))
    text = nft.render(snap(pols))
    assert 'comment "pods pod=b in namespaces ns=y"' in text
    assert 'comment "policy x/ns-and-pod"' in text
    assert 'counter accept comment "x/ns-and-pod ingress[0]"' in text
    assert 'counter reject comment "default deny ingress to x/a"' in text
    yb = ip("y/b")
    elems = [ln for ln in text.splitlines() if ln.startswith("add element")]
    assert elems == [f"add element ip {nft.TABLE} {elems[0].split()[4]} {{ {yb} }}"]


def test_end_port_is_an_nft_range():
    pols = admitted(netpol("range", ingress=[{"ports": [{"port": 81, "endPort": 90,
                                                         "protocol": "UDP"}]}]))
    assert "udp dport 81-90 counter accept" in nft.render(snap(pols))


# --- the kernel's word: every transaction, in a netns of its own (root) --------------------

def _unshare(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60)


needs_nft = pytest.mark.skipif(
    not shutil.which("nft") or not shutil.which("unshare")
    or subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0",
    reason="needs root, nft and unshare")


@needs_nft
def test_the_kernel_takes_the_goldens_and_a_run_of_partial_transactions(tmp_path):
    texts = [t for f, t in golden.cases() if f.endswith(".nft")]
    kernel = FakeNft()
    syncer = NftPolicySyncer(kernel)  # type: ignore[arg-type]
    deny, allow_y = admitted(netpol("deny", policyTypes=["Ingress", "Egress"]),
                             netpol("allow-y", ingress=[{"from": [
                                 {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                 {"ipBlock": {"cidr": "10.244.0.0/16",
                                              "except": ["10.244.2.0/24"]}}],
                                 "ports": [{"port": 80}, {"port": 81, "endPort": 82,
                                                          "protocol": "UDP"},
                                           {"port": "serve-81-udp", "protocol": "UDP"}]}]))
    for step in ([deny], [deny, allow_y], [allow_y], []):
        syncer.sync(snap(step))
    files = []
    for i, t in enumerate(texts + kernel.applied):
        f = tmp_path / f"{i}.nft"
        f.write_text(t)
        files.append(str(f))
    # each golden alone, then the syncer's sequence in order, each one transaction
    script = " && ".join(f"nft -f {f}" for f in files) + f" && nft list table ip {nft.TABLE}"
    p = _unshare(script)
    assert p.returncode == 0, p.stderr
    listed = NftRules.from_listing(p.stdout)
    assert set(listed.chains) == set(kernel.rules.chains)


def test_a_bad_policy_gets_one_warning_event_and_the_agent_goes_on():
    from netsim.api.admission import Admission
    from netsim.api.client import LocalClient
    from netsim.api.store import Store

    class Factory:
        def informer(self, resource):
            return SimpleNamespace(add_handler=lambda **kw: None, indexer=None)
    store = Store(":memory:", admission=Admission())
    store.bootstrap()
    client = LocalClient(store)
    try:
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        bad = client.create(netpol("allow-80", ingress=[{"ports": [{"port": 80}]}]))
        bad["spec"]["ingress"] = [{"ports": [{"port": 80, "endPort": "x"}]}]  # as if stored so
        good = admitted(netpol("deny", policyTypes=["Ingress"]))[0]
        agent = PolicyAgent(client, SimpleNamespace(proxy_mode="nftables"),
                            SimpleNamespace(name=NODE), factory=Factory())  # type: ignore[arg-type]
        kernel = FakeNft()
        agent.syncer = NftPolicySyncer(kernel)  # type: ignore[arg-type]
        for _ in range(3):  # every sync meets it; one event
            errors: list = []
            agent.syncer.sync(snap([bad, good]), errors=errors)
            agent._report(errors)
        events = client.list("events", "x")
        assert [(e["type"], e["reason"], e["involvedObject"]["name"], e.get("count", 1))
                for e in events] == [("Warning", "Rejected", "allow-80", 1)]
        assert events[0]["message"].startswith(
            "the network policy agent left it out of the rules: TypeError")
        assert verdict(kernel.rules, "y/a", "x/a") == "REJECT"  # the good one is served
    finally:
        store.close()


def test_ipvs_mode_judges_service_traffic_after_ipvs():
    """IPVS mode (the VM runs it; this kernel has no IP_VS): kube-proxy still writes
    iptables, so the policies are iptables chains, entered from FORWARD, from INPUT through
    a side chain that leaves ClusterIP-bound packets to IPVS, and from OUTPUT for the
    packets IPVS forwards (judged there with the real server as destination)."""
    from netsim.netpol.agent import PolicySyncer
    from netsim.netpol.render import IPVS_INPUT_CHAIN, JUMP_RULES, TOP_CHAIN, jump_rules
    assert jump_rules(False) == JUMP_RULES
    ipvs = {chain: args for _, chain, args in jump_rules(True)}
    assert ipvs["FORWARD"][-1] == TOP_CHAIN and ipvs["INPUT"][-1] == IPVS_INPUT_CHAIN
    assert ipvs["OUTPUT"][:5] == ["-m", "ipvs", "--ipvs", "--vdir", "ORIGINAL"]
    deny = admitted(netpol("deny", policyTypes=["Ingress"]))
    text = render(snap(deny), ipvs=True)
    assert (f"-A {IPVS_INPUT_CHAIN} -m set --match-set KUBE-CLUSTER-IP dst,dst" in text
            and f"-A {IPVS_INPUT_CHAIN} -j {TOP_CHAIN}" in text)
    assert IPVS_INPUT_CHAIN not in render(snap(deny))
    syncer = PolicySyncer(SimpleNamespace(), ipvs=True)  # type: ignore[arg-type]
    assert syncer.jumps == jump_rules(True)
    # and the rest of the rules are the iptables mode's, but what IPVS forwarded is refused
    # with ICMP (un-NATed on its way back), not with a reset from the real server's address
    plain = render(snap(deny)).splitlines()
    ipvs_reset = "-m conntrack ! --ctstate DNAT -m ipvs ! --ipvs "
    assert [ln.replace(ipvs_reset, "-m conntrack ! --ctstate DNAT ") for ln in text.splitlines()
            if IPVS_INPUT_CHAIN not in ln] == plain
    assert ipvs_reset in text
