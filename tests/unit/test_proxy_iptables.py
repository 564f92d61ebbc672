"""netsim.proxy.iptables against upstream kube-proxy's own expected texts.

The `UPSTREAM_*` texts are copied from kubernetes/kubernetes
pkg/proxy/iptables/proxier_test.go (TestOverallIPTablesRules, TestSyncProxyRulesRepeated,
TestSyncProxyRulesLargeClusterMode). Upstream compares them after `sortIPTablesRules`, a
normaliser that sorts chains and groups rules by chain (its map iteration order is random);
`sort_iptables_rules` below is a line-for-line port, applied to our output only, exactly as
upstream's `assertIPTablesRulesEqual` does. Our own raw (unsorted) output is pinned by the
golden files under golden/iptables/ (regenerate with NETSIM_UPDATE_GOLDEN=1).
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from netsim.inspect.ruleflow import IptablesRules
from netsim.proxy import iptables
from netsim.proxy.iptables import (
    LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    RenderOptions,
    compute_probability,
    endpoint_chain_name,
    is_service_chain_name,
    jump_rules,
    parse_chains,
    service_port_chain_name,
)
from netsim.proxy.model import ProxySnapshot, categorize_endpoints
from tests.proxy_fixtures import (
    TEST_NODE,
    check_flow,
    cluster_ip_general_objects,
    ep,
    eps,
    flow_cases,
    flow_id,
    no_endpoints_objects,
    overall_objects,
    port,
    snap,
    svc,
)

GOLDEN = Path(__file__).parent / "golden" / "iptables"

# upstream NewFakeProxier: nodeName test-node, nodeIP 192.168.0.2, pod CIDR 10.0.0.0/8,
# masquerade bit 14, localhostNodePorts, nfacct counters present, no --random-fully.
FAKE_OPTS = RenderOptions(random_fully=False, nfacct=True)
FAKE_OPTS_NO_NFACCT = RenderOptions(random_fully=False, nfacct=False)


# --- every render goes through these: upstream checkIPTablesRuleJumps on each ------------

def assert_consistent(*texts: str) -> IptablesRules:
    """Restore the texts in order (as a node would) and check every jump lands on a chain
    with rules and every chain is used; returns the rules, ready to trace."""
    rules = IptablesRules(*texts, inserted=jump_rules())
    assert rules.check_rule_jumps() == []
    return rules


def assert_chains_reported(text: str, chains: iptables.RenderedChains) -> None:
    """The chains the renderer reports are those its text declares and deletes (the syncer
    keeps them instead of parsing the text)."""
    assert chains.declared == iptables.parse_chains(text, "nat")
    assert chains.deleted == set(re.findall(r"^-X (\S+)", text, re.M))


def render_full(snapshot: ProxySnapshot, options: RenderOptions | None = None, **kw) -> str:
    chains = iptables.RenderedChains()
    text = iptables.render_full(snapshot, options, chains=chains, **kw)
    assert_consistent(text)
    assert_chains_reported(text, chains)
    cache = iptables.RenderCache()  # filled, then used: the same text both times
    for _ in range(2):
        assert iptables.render_full(snapshot, options, cache=cache, **kw) == text
    return text


def test_a_render_cache_gives_the_text_of_a_fresh_render_as_services_and_options_change():
    from tests.proxy_fixtures import snap as fixtures_snap
    from tests.unit.test_bad_objects import eps as slice_of
    from tests.unit.test_bad_objects import svc as service

    def snapshot(svcs, slices):
        return fixtures_snap(svcs, slices, node_name="n1", node_ips=["192.168.3.171"],
                             cluster_cidr="10.244.0.0/16")
    svcs = [service("a", cip="10.96.0.10"), service("b", cip="10.96.0.11")]
    slices = [slice_of("a", ["10.244.1.2"]), slice_of("b", ["10.244.1.3"])]
    cache = iptables.RenderCache()
    one = snapshot(svcs, slices)
    assert iptables.render_full(one, cache=cache) == iptables.render_full(one)
    two = snapshot(svcs, [slices[0], slice_of("b", ["10.244.1.3", "10.244.2.9"])])
    assert iptables.render_full(two, cache=cache) == iptables.render_full(two)
    assert "10.244.2.9" in iptables.render_full(two, cache=cache)
    opts = RenderOptions(masquerade_all=True)
    assert iptables.render_full(two, opts, cache=cache) == iptables.render_full(two, opts)
    assert iptables.render_full(one, cache=cache) == iptables.render_full(one)


def render_partial(snapshot: ProxySnapshot, changed: set[str], existing_chains: set[str],
                   options: RenderOptions | None = None) -> str:
    """A partial sync, checked on top of a node holding the full sync of the same state."""
    chains = iptables.RenderedChains()
    text = iptables.render_partial(snapshot, changed, existing_chains, options, chains=chains)
    assert_consistent(iptables.render_full(snapshot, options), text)
    assert_chains_reported(text, chains)
    return text


# --- port of upstream sortIPTablesRules / IPTablesDump.String ------------------------------

_WORD = re.compile(r'(?:^|\s)("[^"]*"|[^"]\S*)')


def _comment(rule: str) -> str | None:
    words = [w.strip('"') for w in _WORD.findall(rule)]
    for i, w in enumerate(words[:-1]):
        if w == "--comment":
            return words[i + 1]
    return None


def _svc_name_key(rule: str) -> str:
    c = _comment(rule) or ""
    m = re.search(r"[ :]", c)
    return c[: m.start()] if m else c


def sort_iptables_rules(data: str) -> str:
    tables: list[tuple[str, list[str], dict[str, list[str]], set[str]]] = []
    cur = None
    for raw in data.strip("\n").split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            cur = (line[1:], [], {}, set())
            tables.append(cur)
        elif line.startswith(":"):
            chain = line[1:].split(" ", 1)[0]
            cur[1].append(chain)
            cur[2][chain] = []
        elif line.startswith("-A "):
            chain = line.split(" ", 2)[1]
            assert chain in cur[2], f"rule for undeclared chain: {line}"
            assert chain not in cur[3], f"rule for deleted chain: {line}"
            cur[2][chain].append(line)
        elif line.startswith("-X "):
            chain = line[3:]
            assert chain in cur[2] and not cur[2][chain]
            cur[3].add(chain)
        elif line == "COMMIT":
            cur = None
        else:
            raise AssertionError(f"cannot parse {line!r}")
    assert cur is None, "no COMMIT"
    tables.sort(key=lambda t: t[0])

    def chain_key(c: str):
        if c == "KUBE-NODEPORTS":
            return (0, c)
        if c == "KUBE-SERVICES":
            return (1, c)
        return (2 if c.startswith("KUBE-") else 3, c)

    out = []
    for name, chains, rules, deleted in tables:
        chains = sorted(chains, key=chain_key)
        if "KUBE-NODEPORTS" in rules:
            rules["KUBE-NODEPORTS"].sort(key=_svc_name_key)
        if "KUBE-SERVICES" in rules:
            if name == "nat":
                rules["KUBE-SERVICES"].sort(
                    key=lambda r: ("must be the last rule" in (_comment(r) or ""), _svc_name_key(r)))
            else:
                rules["KUBE-SERVICES"].sort(key=_svc_name_key)
        out.append(f"*{name}")
        out += [f":{c} - [0:0]" for c in chains]
        for c in chains:
            out += rules[c]
        out += [f"-X {c}" for c in chains if c in deleted]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def assert_rules_equal(expected: str, result: str) -> None:
    exp = textwrap.dedent(expected).lstrip(" \t\n")
    assert sort_iptables_rules(result) == exp


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NETSIM_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"golden {path} differs (NETSIM_UPDATE_GOLDEN=1 rewrites)"


class Node:
    """What iptables-save would report for the nat table after successive restores."""

    def __init__(self) -> None:
        self.nat_chains: set[str] = set()
        self.texts: list[str] = []

    def restore(self, text: str) -> str:
        nat = text.split("*nat\n", 1)[1]
        self.nat_chains |= parse_chains("*nat\n" + nat)
        self.nat_chains -= set(re.findall(r"^-X (\S+)$", nat, re.M))
        self.texts.append(text)
        rules = assert_consistent(*self.texts)  # what the node holds after every restore
        builtin = {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}
        assert rules.chains("nat") - builtin == self.nat_chains
        return text


# --- hashes ---------------------------------------------------------------------------------

def test_reference_check_values():
    assert service_port_chain_name("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert endpoint_chain_name("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_seed_hashes_use_the_legacy_unnamed_port_name():
    # The seed's kube-proxy printed "uit/svc-np-ublog:" for an unnamed port...
    assert service_port_chain_name("uit/svc-np-ublog:", "tcp") == "KUBE-SVC-FQQJWIJEBH5A6SF6"
    assert endpoint_chain_name("uit/svc-np-ublog:", "tcp", "10.244.1.35:8002") == "KUBE-SEP-U4JA5WF5RRIRERN5"
    assert endpoint_chain_name("uit/svc-np-ublog:", "tcp", "10.244.2.32:8002") == "KUBE-SEP-ME7MACTOWWVFKRBM"
    # ...current upstream (fmtPortName) prints "uit/svc-np-ublog", so the hash moves.
    assert service_port_chain_name("uit/svc-np-ublog", "tcp") == "KUBE-SVC-AQ4WZNG75OLVC3D2"


def test_probability_format():
    assert compute_probability(2) == "0.5000000000"
    assert compute_probability(3) == "0.3333333333"
    assert compute_probability(6) == "0.1666666667"


def test_is_service_chain_name():
    assert is_service_chain_name("KUBE-SEP-SXIVWICOYRO3J4NJ")
    assert not is_service_chain_name("KUBE-SERVICES")
    assert not is_service_chain_name("KUBE-NODEPORTS")


# --- TestOverallIPTablesRules --------------------------------------------------------------

UPSTREAM_OVERALL = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    -A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
    -A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
    -A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
    -A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
    COMMIT
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXT-4SW47YFZTEDKD3PK - [0:0]
    :KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-MARK-MASQ - [0:0]
    :KUBE-POSTROUTING - [0:0]
    :KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
    :KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
    :KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
    :KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
    :KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
    :KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
    :KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
    :KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
    :KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
    :KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
    :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3003 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-X27LE4BHSL4DOUIK
    -A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
    -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3002 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
    -A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
    -A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
    -A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
    -A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
    -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
    -A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
    -A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
    -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
    -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
    -A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
    -A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
    COMMIT
    """


def test_overall_iptables_rules():
    out = render_full(snap(*overall_objects()), FAKE_OPTS)
    assert_rules_equal(UPSTREAM_OVERALL, out)
    check_golden("overall.txt", out)


def test_overall_raw_order_is_upstreams_write_order():
    out = render_full(snap(*overall_objects()), FAKE_OPTS)
    lines = out.splitlines()
    # chain headers come before all rules, top-level chains first, in upstream's order
    assert lines[1:7] == [":KUBE-SERVICES - [0:0]", ":KUBE-EXTERNAL-SERVICES - [0:0]",
                          ":KUBE-FORWARD - [0:0]", ":KUBE-NODEPORTS - [0:0]",
                          ":KUBE-PROXY-FIREWALL - [0:0]", ":KUBE-FIREWALL - [0:0]"]
    nat = lines[lines.index("*nat") + 1:]
    assert nat[:4] == [":KUBE-SERVICES - [0:0]", ":KUBE-NODEPORTS - [0:0]",
                       ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    # the nodeports jump is the last nat rule, the KUBE-FORWARD trio the last filter rules
    assert nat[-2].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    assert lines[lines.index("*nat") - 2].startswith("-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\"")


# --- runPacketFlowTests: the same flow table as the nftables tests --------------------------

@pytest.mark.parametrize("case", flow_cases(), ids=flow_id)
def test_packet_flows(case):
    """Upstream's packet-flow tables (TestTracePacket over the TestOverall objects,
    TestClusterIPGeneral, TestNoEndpointsReject, TestLoadBalancer, TestNodePorts,
    TestExternalTrafficPolicy*) traced through the rendered rules."""
    _, objects, flow = case
    check_flow(assert_consistent(render_full(snap(*objects()), FAKE_OPTS)), flow, "iptables")


def test_packet_flows_without_localhost_nodeports_or_secondary_ips():
    """TestNodePorts' other cases: localhost and non-listed node IPs get no NodePort."""
    from tests.proxy_fixtures import Flow, node_ports_objects
    s = snap(*node_ports_objects())
    both = "10.180.0.1:80, 10.180.2.1:80"
    rules = assert_consistent(render_full(s, RenderOptions(localhost_nodeports=False)))
    check_flow(rules, Flow("localhost to nodePort is ignored", "127.0.0.1", "127.0.0.1", 3001,
                           ""), "iptables")
    rules = assert_consistent(render_full(s, RenderOptions(
        localhost_nodeports=False, nodeport_addresses=("192.168.0.0/24", "127.0.0.1/32"))))
    check_flow(rules, Flow("secondary nodeIP ignores NodePorts", "203.0.113.2", "192.168.1.2",
                           3001, ""), "iptables")
    check_flow(rules, Flow("primary nodeIP takes it", "203.0.113.2", "192.168.0.2", 3001,
                           both, masq=True), "iptables")


def test_health_check_node_port_accepted_then_gone():
    """TestHealthCheckNodePort: the firewall accepts it while the Service exists."""
    from tests.proxy_fixtures import Flow
    svc1 = svc("ns1", "svc1", type="LoadBalancer", clusterIP="172.30.0.42",
               externalTrafficPolicy="Local", healthCheckNodePort=30000,
               ports=[port("p80", 80, nodePort=3001)])
    opts = RenderOptions(random_fully=False, nodeport_addresses=("127.0.0.0/8",))
    flow = Flow("firewall accepts HealthCheckNodePort", "1.2.3.4", "192.168.0.2", 30000, "ACCEPT")
    check_flow(assert_consistent(render_full(snap([svc1], []), opts)), flow, "iptables")
    gone = Flow("HealthCheckNodePort no longer has any rule", "1.2.3.4", "192.168.0.2", 30000, "")
    check_flow(assert_consistent(render_full(snap([], []), opts)), gone, "iptables")


# --- TestSyncProxyRulesRepeated: full then partial syncs (KEP-3453) ------------------------

UPSTREAM_REPEATED_FILTER = """
    *filter
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
    :KUBE-EXTERNAL-SERVICES - [0:0]
    :KUBE-FIREWALL - [0:0]
    :KUBE-FORWARD - [0:0]
    :KUBE-PROXY-FIREWALL - [0:0]
    {extra}-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
    -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
    -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    COMMIT
"""

NAT_HEAD = """\
    *nat
    :KUBE-NODEPORTS - [0:0]
    :KUBE-SERVICES - [0:0]
"""

NAT_FIXED = """\
    -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
    -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
    -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
    -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
"""

SVC1_RULE = '    -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n'
SVC2_RULE = '    -A KUBE-SERVICES -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 -j KUBE-SVC-2VJB64SDSIJUP5T6\n'
SVC3_RULE = '    -A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK\n'
SVC4_RULE = '    -A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK\n'
NODEPORTS_RULE = '    -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n'


def _expected(filter_extra: str, chains: list[str], svc_rules: str, per_service: str,
              deletes: str = "") -> str:
    chain_lines = "".join(f"    :{c} - [0:0]\n" for c in
                          sorted(["KUBE-MARK-MASQ", "KUBE-POSTROUTING", *chains]))
    return (UPSTREAM_REPEATED_FILTER.format(extra=filter_extra) + NAT_HEAD + chain_lines
            + svc_rules + NODEPORTS_RULE + NAT_FIXED + per_service + deletes + "    COMMIT\n")


def test_sync_proxy_rules_repeated_partial_syncs():
    services = [
        svc("ns1", "svc1", type="ClusterIP", clusterIP="172.30.0.41", ports=[port("p80", 80)]),
        svc("ns2", "svc2", type="ClusterIP", clusterIP="172.30.0.42", ports=[port("p8080", 8080)]),
    ]
    slices = [
        eps("ns1", "svc1", [ep("10.0.1.1")], [port("p80", 80)]),
        eps("ns2", "svc2", [ep("10.0.2.1")], [port("p8080", 8080)]),
    ]
    node = Node()
    out = node.restore(render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-SNQ3ZNILQDEJNDQO", "KUBE-SEP-UHEGFW77JX3KXTOV",
             "KUBE-SVC-2VJB64SDSIJUP5T6", "KUBE-SVC-XPGD46QRK7WJZT7O"],
        SVC1_RULE + SVC2_RULE,
        """\
    -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -s 10.0.1.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-SNQ3ZNILQDEJNDQO -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
    -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -s 10.0.2.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-UHEGFW77JX3KXTOV -m comment --comment ns2/svc2:p8080 -m tcp -p tcp -j DNAT --to-destination 10.0.2.1:8080
    -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 8080 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-2VJB64SDSIJUP5T6 -m comment --comment "ns2/svc2:p8080 -> 10.0.2.1:8080" -j KUBE-SEP-UHEGFW77JX3KXTOV
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.0.1.1:80" -j KUBE-SEP-SNQ3ZNILQDEJNDQO
"""), out)

    # Add a new service and its endpoints: only its SVC and SEP chains are written.
    services.append(svc("ns3", "svc3", type="ClusterIP", clusterIP="172.30.0.43",
                        ports=[port("p80", 80)]))
    slices.append(eps("ns3", "svc3", [ep("10.0.3.1")], [port("p80", 80)]))
    out = node.restore(render_partial(snap(services, slices), {"ns3/svc3"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-BSWRHOQ77KEXZLNL", "KUBE-SVC-X27LE4BHSL4DOUIK"],
        SVC1_RULE + SVC2_RULE + SVC3_RULE,
        """\
    -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -s 10.0.3.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-BSWRHOQ77KEXZLNL -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.1:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.1:80" -j KUBE-SEP-BSWRHOQ77KEXZLNL
"""), out)

    # Delete a service: its chains are flushed and deleted, the others untouched.
    del services[1], slices[1]
    out = node.restore(render_partial(snap(services, slices), {"ns2/svc2"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-UHEGFW77JX3KXTOV", "KUBE-SVC-2VJB64SDSIJUP5T6"],
        SVC1_RULE + SVC3_RULE, "",
        "    -X KUBE-SEP-UHEGFW77JX3KXTOV\n    -X KUBE-SVC-2VJB64SDSIJUP5T6\n"), out)

    # Add a service without endpoints: only a REJECT rule.
    services.append(svc("ns4", "svc4", type="ClusterIP", clusterIP="172.30.0.44",
                        ports=[port("p80", 80)]))
    out = node.restore(render_partial(snap(services, slices), {"ns4/svc4"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        '-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j REJECT\n    ',
        [], SVC1_RULE + SVC3_RULE, ""), out)

    # ...then its endpoints.
    slices.append(eps("ns4", "svc4", [ep("10.0.4.1")], [port("p80", 80)]))
    out = node.restore(render_partial(snap(services, slices), {"ns4/svc4"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-AYCN5HPXMIRJNJXU", "KUBE-SVC-4SW47YFZTEDKD3PK"],
        SVC1_RULE + SVC3_RULE + SVC4_RULE,
        """\
    -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -s 10.0.4.1 -j KUBE-MARK-MASQ
    -A KUBE-SEP-AYCN5HPXMIRJNJXU -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.4.1:80
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.0.4.1:80" -j KUBE-SEP-AYCN5HPXMIRJNJXU
"""), out)

    # Change an endpoint: SVC and SEP rewritten, the old SEP deleted.
    slices[1] = eps("ns3", "svc3", [ep("10.0.3.2")], [port("p80", 80)])
    out = node.restore(render_partial(snap(services, slices), {"ns3/svc3"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-BSWRHOQ77KEXZLNL", "KUBE-SEP-DKCFIS26GWF2WLWC", "KUBE-SVC-X27LE4BHSL4DOUIK"],
        SVC1_RULE + SVC3_RULE + SVC4_RULE,
        """\
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -j KUBE-SEP-DKCFIS26GWF2WLWC
""", "    -X KUBE-SEP-BSWRHOQ77KEXZLNL\n"), out)

    # Add an endpoint: the probability ladder appears.
    slices[1] = eps("ns3", "svc3", [ep("10.0.3.2"), ep("10.0.3.3")], [port("p80", 80)])
    out = node.restore(render_partial(snap(services, slices), {"ns3/svc3"}, node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected(
        "", ["KUBE-SEP-DKCFIS26GWF2WLWC", "KUBE-SEP-JVVZVJ7BSEPPRNBS", "KUBE-SVC-X27LE4BHSL4DOUIK"],
        SVC1_RULE + SVC3_RULE + SVC4_RULE,
        """\
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -s 10.0.3.2 -j KUBE-MARK-MASQ
    -A KUBE-SEP-DKCFIS26GWF2WLWC -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.2:80
    -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -s 10.0.3.3 -j KUBE-MARK-MASQ
    -A KUBE-SEP-JVVZVJ7BSEPPRNBS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.3.3:80
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-DKCFIS26GWF2WLWC
    -A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.0.3.3:80" -j KUBE-SEP-JVVZVJ7BSEPPRNBS
"""), out)

    # No changes: no per-service chain is written.
    out = node.restore(render_partial(snap(services, slices), set(), node.nat_chains,
                                      FAKE_OPTS_NO_NFACCT))
    assert_rules_equal(_expected("", [], SVC1_RULE + SVC3_RULE + SVC4_RULE, ""), out)
    # ...and a full sync of the same state writes them all again.
    full = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT,
                       existing_chains=node.nat_chains)
    assert full.count(":KUBE-SVC-") == 3 and "-X " not in full


# --- TestSyncProxyRulesLargeClusterMode ----------------------------------------------------

def _dnat_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("-A KUBE-SEP-") and "-j DNAT" in ln]


def test_large_cluster_mode_drops_comments():
    opts = RenderOptions(random_fully=False, nfacct=True, masquerade_all=True)
    half = LARGE_CLUSTER_ENDPOINTS_THRESHOLD // 2 - 1
    services = [
        svc("ns1", "svc1", type="ClusterIP", clusterIP="172.30.0.41", ports=[port("p80", 80)]),
        svc("ns2", "svc2", type="ClusterIP", clusterIP="172.30.0.42", ports=[port("p8080", 8080)]),
        svc("ns3", "svc3", type="ClusterIP", clusterIP="172.30.0.43", ports=[port("p8081", 8081)]),
    ]
    slices = [
        eps("ns1", "svc1", [ep(f"10.0.{i % 256}.{i // 256}") for i in range(half)], [port("p80", 80)]),
        eps("ns2", "svc2", [ep(f"10.1.{i % 256}.{i // 256}") for i in range(half)], [port("p8080", 8080)]),
    ]
    node = Node()
    out = node.restore(render_full(snap(services, slices), opts))
    dnat = _dnat_lines(out)
    assert len(dnat) == 2 * half and all("--comment" in ln for ln in dnat)
    assert ("-A KUBE-SEP-DKGQUZGBKLTPAR56 -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
            "-j DNAT --to-destination 10.0.0.0:80") in dnat
    # masqueradeAll: the SVC chain marks everything, no pod-CIDR match
    assert ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" '
            "-m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ") in out

    slices.append(eps("ns3", "svc3", [ep("203.0.113.4"), ep("203.0.113.8"), ep("203.0.113.12")],
                      [port("p8081", 8081)]))
    out = node.restore(render_partial(snap(services, slices), {"ns3/svc3"}, node.nat_chains, opts))
    dnat = _dnat_lines(out)
    assert len(dnat) == 3 and not any("--comment" in ln for ln in dnat)
    assert "-A KUBE-SEP-RUVVH7YV3PHQBDOS -m tcp -p tcp -j DNAT --to-destination 203.0.113.4:8081" in dnat

    out = node.restore(render_full(snap(services, slices), opts, existing_chains=node.nat_chains))
    dnat = _dnat_lines(out)
    assert len(dnat) == 2 * half + 3 and not any("--comment" in ln for ln in dnat)
    assert "-A KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80" in dnat
    # SVC -> SEP rules lose their comments too, the SVC masquerade rule keeps its own
    assert not any(ln.startswith("-A KUBE-SVC-") and "->" in ln for ln in out.splitlines())

    services.append(svc("ns4", "svc4", type="ClusterIP", clusterIP="172.30.0.44",
                        ports=[port("p8082", 8082)]))
    slices.append(eps("ns4", "svc4", [ep("10.4.0.1")], [port("p8082", 8082)]))
    out = node.restore(render_partial(snap(services, slices), {"ns4/svc4"}, node.nat_chains, opts))
    assert _dnat_lines(out) == ["-A KUBE-SEP-SU5STNODRYEWJAUF -m tcp -p tcp -j DNAT --to-destination 10.4.0.1:8082"]
    del services[3], slices[3]
    out = node.restore(render_partial(snap(services, slices), {"ns4/svc4"}, node.nat_chains, opts))
    assert _dnat_lines(out) == []
    assert "-X KUBE-SVC-EBDQOQU5SJFXRIL3" in out and "-X KUBE-SEP-SU5STNODRYEWJAUF" in out


# --- more upstream behaviour, pinned as golden whole texts ---------------------------------

def test_no_endpoints_reject_everywhere():
    """TestNoEndpointsReject's service: REJECT for cluster IP, external IP, LB IP, NodePort."""
    s = snap(*no_endpoints_objects())
    out = render_full(s, FAKE_OPTS)
    c = '-m comment --comment "ns1/svc1:p80 has no endpoints"'
    for line in (
        f"-A KUBE-SERVICES {c} -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES {c} -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES {c} -m tcp -p tcp -d 1.2.3.4 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES {c} -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT",
    ):
        assert line in out.splitlines()
    assert "KUBE-SVC-" not in out and "KUBE-EXT-" not in out
    check_golden("no_endpoints.txt", out)


def test_cluster_ip_general_multiple_ports_udp_sctp():
    """TestClusterIPGeneral's services: several ports, UDP and SCTP, local + remote endpoints."""
    out = render_full(snap(*cluster_ip_general_objects()), FAKE_OPTS)
    lines = out.splitlines()
    assert ('-A KUBE-SERVICES -m comment --comment "ns2/svc2:dns-udp cluster IP" -m udp -p udp '
            "-d 172.30.0.42 --dport 53 -j " + service_port_chain_name("ns2/svc2:dns-udp", "udp")) in lines
    sep = endpoint_chain_name("ns2/svc2:dns-tcp", "tcp", "10.180.2.1:5353")
    assert f"-A {sep} -m comment --comment ns2/svc2:dns-tcp -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:5353" in lines
    sep = endpoint_chain_name("ns2/svc2:dns-sctp", "sctp", "10.180.0.1:53")
    assert f"-A {sep} -m comment --comment ns2/svc2:dns-sctp -m sctp -p sctp -j DNAT --to-destination 10.180.0.1:53" in lines
    assert out.count(":KUBE-SVC-") == 6 and out.count(":KUBE-SEP-") == 11
    check_golden("cluster_ip_general.txt", out)


def test_external_policy_local_with_local_endpoint():
    """KUBE-EXT short-circuits pods/LOCAL to KUBE-SVC, everything else goes to KUBE-SVL
    (local endpoints only, no masquerade: the client IP survives)."""
    services = [svc("ns1", "svc1", type="NodePort", externalTrafficPolicy="Local",
                    clusterIP="172.30.0.41", ports=[port("p80", 80, nodePort=3001)])]
    slices = [eps("ns1", "svc1", [ep("10.180.0.1", TEST_NODE), ep("10.180.2.1", "node2")],
                  [port("p80", 80)])]
    out = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT)
    svc_c = service_port_chain_name("ns1/svc1:p80", "tcp")
    svl = "KUBE-SVL-" + svc_c.removeprefix("KUBE-SVC-")
    ext = "KUBE-EXT-" + svc_c.removeprefix("KUBE-SVC-")
    local_sep = endpoint_chain_name("ns1/svc1:p80", "tcp", "10.180.0.1:80")
    ext_rules = [ln for ln in out.splitlines() if ln.startswith(f"-A {ext} ")]
    assert ext_rules == [
        f'-A {ext} -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j {svc_c}',
        f'-A {ext} -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        f'-A {ext} -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j {svc_c}',
        f"-A {ext} -j {svl}",
    ]
    assert [ln for ln in out.splitlines() if ln.startswith(f"-A {svl} ")] == [
        f'-A {svl} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j {local_sep}']
    assert "KUBE-EXTERNAL-SERVICES -m" not in out  # no DROP: there is a local endpoint
    check_golden("external_policy_local.txt", out)


def test_external_policy_local_without_local_endpoint_drops():
    services = [svc("ns1", "svc1", type="NodePort", externalTrafficPolicy="Local",
                    clusterIP="172.30.0.41", ports=[port("p80", 80, nodePort=3001)])]
    slices = [eps("ns1", "svc1", [ep("10.180.2.1", "node2")], [port("p80", 80)])]
    out = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT)
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" '
            "-m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP") in out.splitlines()
    assert ":KUBE-SVL-" not in out


def test_internal_traffic_policy_local():
    services = [svc("ns1", "svc1", clusterIP="172.30.0.41", internalTrafficPolicy="Local",
                    ports=[port("p80", 80)]),
                svc("ns2", "svc2", clusterIP="172.30.0.42", internalTrafficPolicy="Local",
                    ports=[port("p80", 80)])]
    slices = [eps("ns1", "svc1", [ep("10.180.0.1", TEST_NODE), ep("10.180.2.1", "node2")],
                  [port("p80", 80)]),
              eps("ns2", "svc2", [ep("10.180.2.2", "node2")], [port("p80", 80)])]
    out = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT)
    svl = "KUBE-SVL-" + service_port_chain_name("ns1/svc1:p80", "tcp").removeprefix("KUBE-SVC-")
    lines = out.splitlines()
    assert (f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
            f"-d 172.30.0.41 --dport 80 -j {svl}") in lines
    assert (f'-A {svl} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 '
            "--dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ") in lines
    assert ":KUBE-SVC-" not in out  # only the local chain, one SEP
    assert out.count(":KUBE-SEP-") == 1
    assert ('-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" '
            "-m tcp -p tcp -d 172.30.0.42 --dport 80 -j DROP") in lines
    check_golden("internal_policy_local.txt", out)


def test_session_affinity_custom_timeout_and_three_endpoints():
    services = [svc("ns1", "svc1", clusterIP="172.30.0.41", sessionAffinity="ClientIP",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}},
                    ports=[port("p80", 80)]),
                svc("ns2", "svc2", clusterIP="172.30.0.42", sessionAffinity="ClientIP",
                    ports=[port("p80", 80)])]
    slices = [eps("ns1", "svc1", [ep("10.180.0.3"), ep("10.180.0.1"), ep("10.180.0.2")],
                  [port("p80", 80)]),
              eps("ns2", "svc2", [ep("10.180.1.1")], [port("p80", 80)])]
    out = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT)
    chain = service_port_chain_name("ns1/svc1:p80", "tcp")
    rules = [ln for ln in out.splitlines() if ln.startswith(f"-A {chain} ")]
    seps = [endpoint_chain_name("ns1/svc1:p80", "tcp", f"10.180.0.{i}:80") for i in (1, 2, 3)]
    assert [r.split(" -m comment --comment ")[1] for r in rules[1:]] == [
        f'"ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name {seps[0]} --rcheck --seconds 300 --reap -j {seps[0]}',
        f'"ns1/svc1:p80 -> 10.180.0.2:80" -m recent --name {seps[1]} --rcheck --seconds 300 --reap -j {seps[1]}',
        f'"ns1/svc1:p80 -> 10.180.0.3:80" -m recent --name {seps[2]} --rcheck --seconds 300 --reap -j {seps[2]}',
        f'"ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j {seps[0]}',
        f'"ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j {seps[1]}',
        f'"ns1/svc1:p80 -> 10.180.0.3:80" -j {seps[2]}',
    ]
    assert "--rcheck --seconds 10800 --reap" in out  # default timeout for svc2
    check_golden("session_affinity.txt", out)


def test_terminating_fallback_and_not_ready():
    """Not-ready endpoints are skipped; with no ready endpoint at all, serving+terminating
    ones are used (upstream CategorizeEndpoints)."""
    services = [svc("ns1", "svc1", clusterIP="172.30.0.41", ports=[port("p80", 80)])]
    slices = [eps("ns1", "svc1", [
        ep("10.180.0.1", ready=False, serving=True, terminating=True),
        ep("10.180.0.2", ready=False, serving=False, terminating=True),
        ep("10.180.0.3", ready=False, serving=False, terminating=False),
    ], [port("p80", 80)])]
    s = snap(services, slices)
    cat = categorize_endpoints(s.service_ports[0])
    assert [e.ip for e in cat.cluster] == ["10.180.0.1"]
    out = render_full(s, FAKE_OPTS_NO_NFACCT)
    assert "--to-destination 10.180.0.1:80" in out and out.count(":KUBE-SEP-") == 1
    slices[0]["endpoints"].append(ep("10.180.0.4"))
    out = render_full(snap(services, slices), FAKE_OPTS_NO_NFACCT)
    assert out.count(":KUBE-SEP-") == 1 and "--to-destination 10.180.0.4:80" in out


def test_snapshot_skips_headless_externalname_and_sorts():
    services = [
        svc("b", "x", clusterIP="10.96.0.20", ports=[port("", 80)]),
        svc("a", "headless", clusterIP="None", ports=[port("", 80)]),
        svc("a", "ext", type="ExternalName", externalName="example.com"),
        svc("a", "y", clusterIP="10.96.0.21", ports=[port("b", 81), port("a", 80)]),
    ]
    s = snap(services, [])
    assert [sp.name_string for sp in s.service_ports] == ["a/y:a", "a/y:b", "b/x"]


def test_nodeport_addresses_and_no_localhost_nodeports():
    services = [svc("ns1", "svc1", type="NodePort", clusterIP="172.30.0.41",
                    ports=[port("p80", 80, nodePort=3001)])]
    slices = [eps("ns1", "svc1", [ep("10.180.0.1")], [port("p80", 80)])]
    s = snap(services, slices, node_ips=["192.168.0.2", "192.168.1.2"])
    out = render_full(s, RenderOptions(localhost_nodeports=False))
    assert out.splitlines()[-2] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS')
    assert "KUBE-FIREWALL" not in out
    assert "-j MASQUERADE --random-fully" in out
    out = render_full(s, RenderOptions(nodeport_addresses=("192.168.0.0/24",)))
    assert out.splitlines()[-2].endswith("-d 192.168.0.2 -j KUBE-NODEPORTS")


def test_jump_rules():
    rules = jump_rules()
    assert ("nat", "PREROUTING", ["-m", "comment", "--comment", "kubernetes service portals",
                                  "-j", "KUBE-SERVICES"]) in rules
    assert ("nat", "POSTROUTING", ["-m", "comment", "--comment", "kubernetes postrouting rules",
                                   "-j", "KUBE-POSTROUTING"]) in rules
    assert ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                                "kubernetes externally-visible service portals",
                                "-j", "KUBE-EXTERNAL-SERVICES"]) in rules
    assert ("filter", "OUTPUT", ["-j", "KUBE-FIREWALL"]) in rules
    assert len(rules) == 14
    # the canary chain is never part of the restore text
    assert "KUBE-PROXY-CANARY" not in render_full(snap(*overall_objects()))


# --- the seed: uit/svc-np-ublog ------------------------------------------------------------

SEED_LINES = [  # `iptables-save | grep ...` in the seed, section 2.4 (older kube-proxy)
    '-A KUBE-SERVICES -d 10.107.82.31/32 -p tcp -m comment --comment "uit/svc-np-ublog: cluster IP" -m tcp --dport 80 -j KUBE-SVC-FQQJWIJEBH5A6SF6',
    "-A KUBE-SVC-FQQJWIJEBH5A6SF6 -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-U4JA5WF5RRIRERN5",
    "-A KUBE-SVC-FQQJWIJEBH5A6SF6 -j KUBE-SEP-ME7MACTOWWVFKRBM",
    "-A KUBE-SEP-U4JA5WF5RRIRERN5 -s 10.244.1.35/32 -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-U4JA5WF5RRIRERN5 -p tcp -m tcp -j DNAT --to-destination 10.244.1.35:8002",
    "-A KUBE-SEP-ME7MACTOWWVFKRBM -s 10.244.2.32/32 -j KUBE-MARK-MASQ",
    "-A KUBE-SEP-ME7MACTOWWVFKRBM -p tcp -m tcp -j DNAT --to-destination 10.244.2.32:8002",
]


def _save_form(rule: str) -> tuple:
    """What iptables-save would print, as a comparable value: option order, `-m tcp`
    placement, /32 suffixes and the probability's digits are canonicalised by the kernel.
    Comments are left out: the seed's kube-proxy did not comment SVC->SEP and SEP rules."""
    words = [w.strip('"') for w in _WORD.findall(rule)]
    opts: list[tuple] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w == "-m":
            i += 2
            continue
        neg = False
        if w == "!":
            neg, i = True, i + 1
            w = words[i]
        val = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("-") else None
        if w in ("-s", "-d") and val and "/" not in val:
            val += "/32"
        if w == "--probability":
            val = float(val)
        if w != "--comment":
            opts.append((neg, w, val))
        i += 2 if val is not None else 1
    return tuple(sorted(opts, key=repr))


def seed_objects():
    services = [svc("uit", "svc-np-ublog", type="NodePort", clusterIP="10.107.82.31",
                    selector={"app": "myblog"},
                    ports=[{"port": 80, "protocol": "TCP", "targetPort": 8002, "nodePort": 32333}])]
    slices = [eps("uit", "svc-np-ublog", [
        {"addresses": ["10.244.2.32"], "nodeName": "k8s-slave-173",
         "conditions": {"ready": True, "serving": True, "terminating": False}},
        {"addresses": ["10.244.1.35"], "nodeName": "k8s-slave-172",
         "conditions": {"ready": True, "serving": True, "terminating": False}},
    ], [{"name": "", "port": 8002, "protocol": "TCP"}])]
    return services, slices


def _seed_snapshot(**kw) -> ProxySnapshot:
    return ProxySnapshot.from_objects(*seed_objects(), node_name="k8s-slave-172",
                                      node_ips=["192.168.3.172"], cluster_cidr="10.244.0.0/16", **kw)


def test_seed_scenario_legacy_names_reproduce_the_seed_rules():
    out = render_full(_seed_snapshot(legacy_unnamed_port_colon=True))
    ours = {_save_form(ln) for ln in out.splitlines() if ln.startswith("-A ")}
    for line in SEED_LINES:
        assert _save_form(line) in ours, line
    assert ":KUBE-SVC-FQQJWIJEBH5A6SF6 - [0:0]" in out
    assert '-m comment --comment "uit/svc-np-ublog: cluster IP"' in out
    check_golden("seed_svc_np_ublog_legacy_names.txt", out)


def test_seed_scenario_current_upstream():
    out = render_full(_seed_snapshot())
    lines = out.splitlines()
    svc_c = "KUBE-SVC-AQ4WZNG75OLVC3D2"
    sep1 = endpoint_chain_name("uit/svc-np-ublog", "tcp", "10.244.1.35:8002")
    sep2 = endpoint_chain_name("uit/svc-np-ublog", "tcp", "10.244.2.32:8002")
    for line in (
        f'-A KUBE-SERVICES -m comment --comment "uit/svc-np-ublog cluster IP" -m tcp -p tcp -d 10.107.82.31 --dport 80 -j {svc_c}',
        "-A KUBE-NODEPORTS -m comment --comment uit/svc-np-ublog -m tcp -p tcp --dport 32333 -j KUBE-EXT-AQ4WZNG75OLVC3D2",
        f'-A {svc_c} -m comment --comment "uit/svc-np-ublog -> 10.244.1.35:8002" -m statistic --mode random --probability 0.5000000000 -j {sep1}',
        f'-A {svc_c} -m comment --comment "uit/svc-np-ublog -> 10.244.2.32:8002" -j {sep2}',
        f"-A {sep1} -m comment --comment uit/svc-np-ublog -s 10.244.1.35 -j KUBE-MARK-MASQ",
        f"-A {sep1} -m comment --comment uit/svc-np-ublog -m tcp -p tcp -j DNAT --to-destination 10.244.1.35:8002",
        f"-A {sep2} -m comment --comment uit/svc-np-ublog -m tcp -p tcp -j DNAT --to-destination 10.244.2.32:8002",
    ):
        assert line in lines, line
    check_golden("seed_svc_np_ublog.txt", out)


@pytest.mark.parametrize("changed", [set(), {"uit/svc-np-ublog"}])
def test_partial_with_no_stale_chains_is_subset_of_full(changed):
    s = _seed_snapshot()
    full = render_full(s)
    part = render_partial(s, changed, set())
    assert set(part.splitlines()) <= set(full.splitlines())
    if changed:
        assert part == full


def test_both_policies_local_nodeport_still_declares_the_svc_chain():
    """upstream UsesClusterEndpoints: an externally accessible service always uses Cluster
    endpoints (the EXT chain's short-circuit rules jump to KUBE-SVC). Without the chain the
    whole iptables-restore would fail."""
    s = snap([svc("ns1", "loc", type="NodePort", clusterIP="172.30.0.50",
                  externalTrafficPolicy="Local", internalTrafficPolicy="Local",
                  ports=[port("", 80, nodePort=3010)])],
             [eps("ns1", "loc", [ep("10.180.0.1", "other-node")], [port("", 80)])])
    text = render_full(s, FAKE_OPTS)
    chain = service_port_chain_name("ns1/loc", "tcp")
    declared = parse_chains(text, "nat")
    jumped = set(re.findall(r"-j (KUBE-(?:SVC|SVL|EXT|SEP)-\S+)", text))
    assert chain in declared and jumped <= declared
