"""NetworkPolicy rules, judged by where packets go: upstream's netpol e2e model without root.

The model of test/e2e/network/netpol: namespaces x, y, z, pods a, b, c in each (labels
`pod: <name>`, namespaces labelled `ns: <name>`), serving TCP and UDP on 80 and 81 (ports
named `serve-80-tcp` ...). Each case renders every node's policy rules (iptables chains,
and the nftables table of netsim/netpol/nft.py), restores them into the packet-flow
interpreter (netsim/inspect/ruleflow.py) and walks the WHOLE matrix:
a connection passes when the source node's rules (egress) and the destination node's
rules (ingress) both let it through, as on a cluster; a pod always reaches itself (its
own IP stays inside its netns; upstream's AllowLoopback). A failure prints the matrix as
upstream's Reachability table does (. = allowed, X = blocked, * = differs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netsim.api.admission import Admission
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.inspect.ruleflow import IptablesRules, NftRules
from netsim.netpol import golden, nft
from netsim.netpol.render import JUMP_RULES, Snapshot, render

NODES = {"node-1": "192.168.9.11", "node-2": "192.168.9.12"}
NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
PORTS = [(80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp")]


def _pod(ns: str, name: str, ip: str, node: str, labels: dict, ports) -> dict:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": pname, "containerPort": num, "protocol": proto}
                for pname, num, proto in ports]}]},
            "status": {"phase": "Running", "podIP": ip}}


def model() -> tuple[list[dict], list[dict]]:
    """(pods, namespaces): 9 model pods over two nodes, plus kube-system's coredns."""
    pods, n = [], 0
    serve = [(f"serve-{p}-{proto}", p, proto.upper()) for p, proto in PORTS]
    for ns in NAMESPACES:
        for name in POD_NAMES:
            node = ("node-1", "node-2")[n % 2]
            ip = f"10.244.{1 + n % 2}.{10 + n}"
            pods.append(_pod(ns, name, ip, node, {"pod": name}, serve))
            n += 1
    pods.append(_pod("kube-system", "coredns", "10.244.2.53", "node-2", {"k8s-app": "kube-dns"},
                     [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]))
    namespaces = [{"metadata": {"name": ns, "labels": {
        "ns": ns, "kubernetes.io/metadata.name": ns}}} for ns in (*NAMESPACES, "kube-system")]
    return pods, namespaces


PODS, NAMESPACE_OBJS = model()
MODEL_PODS = [p for p in PODS if p["metadata"]["namespace"] in NAMESPACES]


def key(p: dict) -> str:
    return f"{p['metadata']['namespace']}/{p['metadata']['name']}"


def admitted(*policies: dict) -> list[dict]:
    """The policies as the API server stores them (defaults applied, validated)."""
    store = Store(":memory:", admission=Admission())
    store.bootstrap()
    client = LocalClient(store)
    try:
        for ns in ("x", "y", "z"):
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        return [client.create(p) for p in policies]
    finally:
        store.close()


def netpol(name: str, ns: str = "x", **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


BACKENDS = ("iptables", "nftables")


class Cluster:
    """Every node's restored policy rules (iptables chains, or the nftables table), and
    the two-node verdict of a connection."""

    def __init__(self, policies: list[dict], backend: str = "iptables", pods=None,
                 namespaces=None):
        self.rules: dict[str, IptablesRules | NftRules] = {}
        for node in NODES:
            snap = Snapshot.from_objects(policies, PODS if pods is None else pods,
                                         NAMESPACE_OBJS if namespaces is None else namespaces,
                                         node)
            if backend == "nftables":
                text = nft.render(snap)
                rules = NftRules(text)
                assert rules.check_rule_jumps(fixed=()) == [], text
            else:
                text = render(snap)
                rules = IptablesRules("*nat\nCOMMIT\n", text, inserted=JUMP_RULES)
                assert rules.check_rule_jumps() == [], text
            self.rules[node] = rules

    def passes(self, src: dict, dst: dict, port: int, proto: str) -> bool:
        nodes = dict.fromkeys([src["spec"]["nodeName"], dst["spec"]["nodeName"]])
        for node in nodes:
            t = self.rules[node].trace(src["status"]["podIP"], dst["status"]["podIP"], port,
                                       proto, local_ips=[NODES[node]])
            if t.verdict != "ACCEPT":
                return False
        return True


def assert_matrix(policies: list[dict], expect: Callable[[dict, dict, int, str], bool], *,
                  sources=MODEL_PODS, dests=MODEL_PODS, ports=PORTS) -> None:
    """The whole matrix, through the iptables rules and through the nftables table."""
    stored = admitted(*policies)
    for backend in BACKENDS:
        _assert_matrix(Cluster(stored, backend), backend, expect, sources, dests, ports)


def _assert_matrix(cluster: Cluster, backend: str, expect, sources, dests, ports) -> None:
    wrong = []
    tables = []
    for port, proto in ports:
        lines = [f"{proto}/{port}  " + " ".join(f"{key(d):>5}" for d in dests)]
        for s in sources:
            row = []
            for d in dests:
                if s is d:  # a pod's packets to its own IP never leave its netns
                    got = want = True  # (upstream's Reachability.AllowLoopback)
                else:
                    got, want = cluster.passes(s, d, port, proto), expect(s, d, port, proto)
                row.append("." if got else "X")
                if got != want:
                    row[-1] = "*"
                    wrong.append(f"{key(s)} -> {key(d)} {proto}/{port}: "
                                 f"{'allowed' if got else 'blocked'}, expected "
                                 f"{'allowed' if want else 'blocked'}")
            lines.append(f"{key(s):>8} " + " ".join(f"{c:>5}" for c in row))
        tables.append("\n".join(lines))
    assert not wrong, f"{backend}:\n" + "\n".join(wrong[:20]) + "\n\n" + "\n\n".join(tables)


def ns(p: dict) -> str:
    return p["metadata"]["namespace"]


def name(p: dict) -> str:
    return p["metadata"]["name"]


# --- upstream's cases (network_policy.go) -------------------------------------------------

def test_no_policy_allows_everything():
    assert_matrix([], lambda s, d, port, proto: True)


def test_default_deny_ingress_isolates_namespace_x():
    # "should support a 'default-deny-ingress' policy"
    assert_matrix([netpol("deny-ingress", policyTypes=["Ingress"])],
                  lambda s, d, port, proto: ns(d) != "x")


def test_allow_all_ingress_beside_default_deny():
    # "should support allow-all policy": a union; allow-all wins over deny
    assert_matrix([netpol("deny-ingress"), netpol("allow-all", ingress=[{}])],
                  lambda s, d, port, proto: True)


def test_allow_from_namespace_y():
    # "should enforce policy to allow traffic only from a different namespace, based on
    # NamespaceSelector"
    pol = netpol("allow-from-y", ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(d) != "x" or ns(s) == "y")


def test_allow_from_pod_b_in_its_own_namespace():
    # "should enforce policy to allow traffic from pods within server namespace based on
    # PodSelector": x/a accepts only x/b
    pol = netpol("allow-b", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}])
    assert_matrix([pol], lambda s, d, port, proto: key(d) != "x/a" or key(s) == "x/b")


def test_namespace_and_pod_selector_in_one_peer_is_an_and():
    # "should enforce policy based on PodSelector and NamespaceSelector": pods b of y and z
    pol = netpol("ns-and-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchExpressions": [
            {"key": "ns", "operator": "NotIn", "values": ["x"]}]},
         "podSelector": {"matchLabels": {"pod": "b"}}}]}])
    assert_matrix([pol], lambda s, d, port, proto: key(d) != "x/a" or (
        ns(s) != "x" and name(s) == "b"))


def test_namespace_or_pod_selector_as_two_peers_is_an_or():
    # "should enforce policy based on any PodSelectors" / "... NamespaceSelector OR
    # PodSelector": y's pods, or x's b
    pol = netpol("ns-or-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}},
        {"podSelector": {"matchLabels": {"pod": "b"}}}]}])
    assert_matrix([pol], lambda s, d, port, proto: key(d) != "x/a" or ns(s) == "y"
                  or key(s) == "x/b")


def test_allow_port_80_only():
    # "should enforce policy to allow traffic only from ... on a specific port"
    pol = netpol("allow-80", ingress=[{"ports": [{"port": 80}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(d) != "x" or (port, proto) == (80, "tcp"))


def test_named_port_resolves_from_the_destination_pod():
    # "should allow ingress access on one named port"
    pol = netpol("allow-named", ingress=[{"ports": [{"port": "serve-81-udp",
                                                     "protocol": "UDP"}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(d) != "x" or (port, proto) == (81, "udp"))


def test_end_port_is_a_range():
    # "should support allow-all policy on a range of ports" (endPort)
    pol = netpol("range", ingress=[{"ports": [{"port": 81, "endPort": 90, "protocol": "UDP"}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(d) != "x" or (port, proto) == (81, "udp"))


def test_ip_block_with_except():
    # "should enforce except clause while egress access to server in CIDR block" (here as
    # ingress): every pod address but y/b's
    yb = next(p for p in PODS if key(p) == "y/b")["status"]["podIP"]
    pol = netpol("cidr", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
        {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{yb}/32"]}}]}])
    assert_matrix([pol], lambda s, d, port, proto: key(d) != "x/a" or key(s) != "y/b")


def test_multiple_policies_are_a_union():
    # "should enforce multiple, stacked policies with overlapping podSelectors"
    pols = [netpol("from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]),
            netpol("from-z-on-81", ingress=[{"from": [
                {"namespaceSelector": {"matchLabels": {"ns": "z"}}}], "ports": [{"port": 81}]}])]
    assert_matrix(pols, lambda s, d, port, proto: ns(d) != "x" or ns(s) == "y" or (
        ns(s) == "z" and (port, proto) == (81, "tcp")))


def test_default_deny_egress_but_dns():
    # "should allow egress access to DNS" shape: x may only reach kube-dns on 53
    pol = netpol("egress-dns", policyTypes=["Egress"], egress=[{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}])
    dns = next(p for p in PODS if key(p) == "kube-system/coredns")
    assert_matrix([pol], lambda s, d, port, proto: ns(s) != "x",
                  dests=[*MODEL_PODS, dns])
    assert_matrix([pol], lambda s, d, port, proto: True, dests=[dns],
                  ports=[(53, "udp"), (53, "tcp")])


def test_egress_only_policy_without_types_also_isolates_ingress():
    # the defaulting: policyTypes [Ingress, Egress] when egress rules exist
    pol = netpol("egress-to-y", egress=[{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(d) != "x" and (ns(s) != "x" or ns(d) == "y"))


def test_egress_named_port_resolves_from_each_peer():
    pol = netpol("egress-named", policyTypes=["Egress"], egress=[{"ports": [
        {"port": "serve-80-tcp"}]}])
    assert_matrix([pol], lambda s, d, port, proto: ns(s) != "x" or (port, proto) == (80, "tcp"))


# --- the rules themselves ---------------------------------------------------------------------

def test_only_this_nodes_pods_get_firewall_chains_and_comments_name_them():
    pols = admitted(netpol("deny-ingress"))
    text = render(Snapshot.from_objects(pols, PODS, NAMESPACE_OBJS, "node-1"))
    on_1 = {key(p) for p in MODEL_PODS if p["spec"]["nodeName"] == "node-1" and ns(p) == "x"}
    assert {line.split('"')[1] for line in text.splitlines() if '"ingress to' in line} == {
        f"ingress to {k}" for k in on_1}
    assert '"default deny ingress to x/a"' in text


def test_stale_chains_are_flushed_and_deleted():
    pols = admitted(netpol("deny-ingress"))
    first = render(Snapshot.from_objects(pols, PODS, NAMESPACE_OBJS, "node-1"))
    chains = {line[1:].split()[0] for line in first.splitlines() if line.startswith(":")}
    second = render(Snapshot.from_objects([], PODS, NAMESPACE_OBJS, "node-1"), chains)
    rules = IptablesRules("*nat\nCOMMIT\n", first, second, inserted=JUMP_RULES)
    assert rules.chains("filter") - {"INPUT", "FORWARD", "OUTPUT"} == {"NETSIM-NWPLCY"}
    src, dst = [p for p in MODEL_PODS if p["spec"]["nodeName"] == "node-1"][:2]
    assert ns(dst) == "x"
    assert rules.trace(src["status"]["podIP"], dst["status"]["podIP"], 80,
                       local_ips=[NODES["node-1"]]).verdict == "ACCEPT"


def test_the_trace_names_the_policy_or_the_default_deny():
    pols = admitted(netpol("allow-y", ingress=[{"from": [
        {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]))
    cluster = Cluster(pols)
    xa = next(p for p in PODS if key(p) == "x/a")
    ya = next(p for p in PODS if key(p) == "y/a")
    za = next(p for p in PODS if key(p) == "z/a")
    node = xa["spec"]["nodeName"]
    ok = cluster.rules[node].trace(ya["status"]["podIP"], xa["status"]["podIP"], 80,
                                   local_ips=[NODES[node]])
    assert ok.verdict == "ACCEPT" and "x/allow-y ingress[0]" in ok.describe()
    bad = cluster.rules[node].trace(za["status"]["podIP"], xa["status"]["podIP"], 80,
                                    local_ips=[NODES[node]])
    assert bad.verdict == "REJECT" and "default deny ingress to x/a" in bad.hops[-1].rule


@pytest.mark.parametrize("fname, text", golden.cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_golden(fname, text):
    path = Path(golden.RULES) / fname
    assert path.read_text() == text, f"{path} differs (regenerate: {golden.REGEN})"


def test_every_golden_file_restores_and_is_consistent():
    cases = golden.cases()
    assert cases
    for fname, text in cases:
        if fname.endswith(".nft"):
            assert NftRules(text).check_rule_jumps(fixed=()) == [], fname
            continue
        rules = IptablesRules("*nat\nCOMMIT\n", text, inserted=JUMP_RULES)
        assert rules.check_rule_jumps() == []



# --- the node agent's syncer, over a fake iptables that restores into the interpreter ---------

class FakeIptables:
    """What PolicySyncer calls (run -C/-I/-N, save, restore), kept in an IptablesRules."""

    def __init__(self):
        self.rules = IptablesRules("*nat\nCOMMIT\n*filter\nCOMMIT\n")
        self.restores: list[str] = []
        self.inserted = 0

    def run(self, *args):
        from subprocess import CompletedProcess
        if "-C" in args:
            chain = args[args.index("-C") + 1]
            have = any(r.target == "NETSIM-NWPLCY"
                       for r in self.rules.tables["filter"][chain].rules)
            return CompletedProcess(args, 0 if have else 1, "", "")
        if "-I" in args:
            i = args.index("-I")
            assert args[i + 2] == "1"  # at the top, above kube-proxy's jumps
            self.inserted += 1
            self.rules.insert("filter", args[i + 1], list(args[i + 3:]))
        return CompletedProcess(args, 0, "", "")

    def ensure_chain(self, table, chain):
        self.rules.tables[table].setdefault(chain, type(self.rules.tables[table]["FORWARD"])())

    def save(self, table):
        self.saves = getattr(self, "saves", 0) + 1
        chains = self.rules.tables[table]
        return "*filter\n" + "".join(f":{c} - [0:0]\n" for c in chains) + "".join(
            "-A" + r.raw[2:] + "\n" for c in chains.values() for r in c.rules) + "COMMIT\n"

    def restore(self, text):
        self.restores.append(text)
        self.rules.restore(text)
        return 0.0


def test_syncer_applies_once_per_change_and_cleans_up():
    from netsim.netpol.agent import PolicySyncer
    ipt = FakeIptables()
    syncer = PolicySyncer(ipt)  # type: ignore[arg-type]
    deny = Snapshot.from_objects(admitted(netpol("deny-ingress")), PODS, NAMESPACE_OBJS, "node-1")
    open_ = Snapshot.from_objects([], PODS, NAMESPACE_OBJS, "node-1")
    xa = next(p for p in PODS if key(p) == "x/a")
    yb = next(p for p in PODS if key(p) == "y/b")

    def verdict():
        return ipt.rules.trace(yb["status"]["podIP"], xa["status"]["podIP"], 80,
                               local_ips=[NODES["node-1"]]).verdict

    assert syncer.sync(deny) and verdict() == "REJECT"
    assert ipt.inserted == 2  # FORWARD and INPUT
    assert not syncer.sync(deny)  # nothing changed: no restore
    assert len(ipt.restores) == 1
    assert syncer.sync(open_) and verdict() == "ACCEPT"
    assert ipt.rules.chains("filter") == {"INPUT", "FORWARD", "OUTPUT", "NETSIM-NWPLCY"}
    assert ipt.inserted == 2  # the jumps are checked, not re-inserted


def test_an_event_that_changes_nothing_starts_no_process_and_a_flush_is_repaired():
    """Most events (pod status updates) change no rule of the node: no iptables process
    then (each costs a second under emulation); the periodic check (one iptables-save)
    puts back a jump someone flushed, and only it."""
    from netsim.netpol.agent import PolicySyncer
    ipt = FakeIptables()
    syncer = PolicySyncer(ipt)  # type: ignore[arg-type]
    deny = Snapshot.from_objects(admitted(netpol("deny-ingress")), PODS, NAMESPACE_OBJS, "node-1")
    assert syncer.sync(deny, check=False)  # the first sync always looks
    runs = []
    ipt.run = lambda *a, _run=ipt.run: (runs.append(a), _run(*a))[1]
    saves = ipt.saves
    assert not syncer.sync(deny, check=False)
    assert (runs, ipt.saves) == ([], saves)
    assert not syncer.sync(deny, check=True)  # the check: one save, the jumps are there
    assert (runs, ipt.saves) == ([], saves + 1)
    ipt.rules.tables["filter"]["FORWARD"].rules.clear()  # `iptables -F FORWARD`
    assert syncer.sync(deny, check=True)  # put back (-C, -I) and everything rewritten
    assert [a[a.index("-C") if "-C" in a else a.index("-I")] for a in runs] == ["-C", "-I"]
    assert ipt.inserted == 3 and len(ipt.restores) == 2


def test_failed_syncs_back_off_to_thirty_seconds():
    from netsim.netpol.agent import MAX_RETRY_SECONDS, retry_delay
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5, 6, 20)] == [1, 2, 4, 8, 16, 30, 30]
    assert MAX_RETRY_SECONDS == 30


def test_kubelet_probes_from_the_node_pass_and_egress_to_the_node_is_policed():
    pols = admitted(netpol("deny-ingress"), netpol("deny-egress", policyTypes=["Egress"]))
    node = "node-1"
    rules = Cluster(pols).rules[node]
    xa = next(p for p in PODS if ns(p) == "x" and p["spec"]["nodeName"] == node)
    ya = next(p for p in PODS if ns(p) == "y" and p["spec"]["nodeName"] == node)
    # the node's own packets (OUTPUT): a probe reaches an isolated pod
    assert rules.trace(NODES[node], xa["status"]["podIP"], 80,
                       local_ips=[NODES[node]]).verdict == "ACCEPT"
    # a pod's packets to its node (INPUT) meet its egress policy
    assert rules.trace(xa["status"]["podIP"], NODES[node], 10250,
                       local_ips=[NODES[node]]).verdict == "REJECT"
    assert rules.trace(ya["status"]["podIP"], NODES[node], 10250,
                       local_ips=[NODES[node]]).verdict == "ACCEPT"


def test_sctp_ports_and_pods_policies_never_select():
    pols = admitted(netpol("sctp-80", ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}]))
    # a hostNetwork pod and a finished pod in x: no firewall chain of their own
    extra = [dict(_pod("x", "host", "192.168.9.11", "node-1", {"pod": "host"}, []),
                  spec={"nodeName": "node-1", "hostNetwork": True, "containers": []}),
             {**_pod("x", "done", "10.244.1.99", "node-1", {"pod": "done"}, []),
              "status": {"phase": "Succeeded", "podIP": "10.244.1.99"}}]
    text = render(Snapshot.from_objects(pols, PODS + extra, NAMESPACE_OBJS, "node-1"))
    assert "x/host" not in text and "x/done" not in text
    assert "-p sctp -m sctp --dport 80" in text
    rules = IptablesRules("*nat\nCOMMIT\n", text, inserted=JUMP_RULES)
    xa = next(p for p in PODS if key(p) == "x/a")
    ya = next(p for p in PODS if key(p) == "y/a")
    for proto, want in (("sctp", "ACCEPT"), ("tcp", "REJECT"), ("udp", "REJECT")):
        assert rules.trace(ya["status"]["podIP"], xa["status"]["podIP"], 80, proto,
                           local_ips=[NODES["node-1"]]).verdict == want, proto


def test_later_syncs_write_only_the_chains_that_changed():
    from netsim.netpol.agent import PolicySyncer
    ipt = FakeIptables()
    syncer = PolicySyncer(ipt)  # type: ignore[arg-type]
    deny = admitted(netpol("deny-ingress"))[0]
    allow_y = admitted(netpol("allow-y", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]))[0]
    snap = lambda pols, pods=PODS: Snapshot.from_objects(pols, pods, NAMESPACE_OBJS, "node-1")  # noqa: E731
    assert syncer.sync(snap([deny]))
    full = ipt.restores[-1]
    assert syncer.sync(snap([deny, allow_y]))
    part = ipt.restores[-1]
    # only x/a's ingress chain (now jumping to allow-y) and allow-y's chain are written
    assert '"ingress to x/' not in part and "NETSIM-NWPLCY " not in part
    assert part.count("\n:") == 2 and '"policy x/allow-y"' in part
    xa = next(p for p in PODS if key(p) == "x/a")
    others = [p for p in PODS if p["spec"]["nodeName"] == "node-1" and p is not xa]
    trace = lambda s, d: ipt.rules.trace(s["status"]["podIP"], d["status"]["podIP"], 80,  # noqa: E731
                                         local_ips=[NODES["node-1"]]).verdict
    ya = next(p for p in PODS if key(p) == "y/a")
    assert trace(ya, xa) == "ACCEPT" and trace(xa, next(p for p in others if ns(p) == "x")) == "REJECT"
    # the same state as a full render of it
    fresh = IptablesRules("*nat\nCOMMIT\n", render(snap([deny, allow_y])), inserted=JUMP_RULES)
    for s_, d_ in [(a, b) for a in PODS for b in PODS if a is not b][:40]:
        assert fresh.trace(s_["status"]["podIP"], d_["status"]["podIP"], 80,
                           local_ips=[NODES["node-1"]]).verdict == trace(s_, d_)
    # a pod gone: only what depends on it changes; no policy at all deletes the rest
    assert syncer.sync(snap([deny, allow_y], [p for p in PODS if p is not xa]))
    assert syncer.sync(snap([]))
    assert "-X " in ipt.restores[-1] and len(ipt.restores[-1]) < len(full)
    assert ipt.rules.chains("filter") == {"INPUT", "FORWARD", "OUTPUT", "NETSIM-NWPLCY"}
    assert not syncer.sync(snap([]))
