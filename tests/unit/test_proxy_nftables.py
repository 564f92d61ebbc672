"""netsim.proxy.nftables against upstream kube-proxy's own expected ruleset.

`UPSTREAM_BASE` + `UPSTREAM_OVERALL` are upstream's expected table from
kubernetes/kubernetes pkg/proxy/nftables/proxier_test.go (`baseRules`,
`TestOverallNFTablesRules`, the release with filter-*-pre-dnat base chains and the
mark-for-masquerade chain). Upstream compares `knftables.Fake.Dump()` (the table's final
state, as `add ...` lines) after `sortNFTablesTransaction`; here `FakeNft` plays knftables'
Fake: it runs our transaction text (add / flush / delete, refusing to delete a referenced
chain or set, or a missing element, like the kernel) and dumps the result, and
`sort_nft` is a port of `sortNFTablesTransaction`.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from netsim.inspect.ruleflow import NftRules
from netsim.proxy import nftables as _nft
from netsim.proxy.model import ProxySnapshot, categorize_endpoints
from tests.proxy_fixtures import (
    FLOW_SCENARIOS,
    check_flow,
    ep,
    eps,
    flow_cases,
    flow_id,
    overall_objects,
    port,
    snap,
    svc,
)

UPSTREAM_OPTS = _nft.NftOptions(nodeport_addresses=("192.168.0.2/32",),
                               service_cidrs=("172.30.0.0/16",))


# --- a fake `nft -f` (knftables.Fake in spirit) --------------------------------------------

class NftError(Exception):
    pass


class FakeNft:
    """The kube-proxy table as add-lines; applies a transaction atomically."""

    def __init__(self) -> None:
        self.table: str | None = None
        self.chains: dict[str, tuple[str, list[str]]] = {}  # name -> (add line, rules)
        self.sets: dict[str, tuple[str, dict[str, str]]] = {}  # sets and maps
        self.rules = NftRules()

    def _snapshot(self):
        return (self.table, {k: (v[0], list(v[1])) for k, v in self.chains.items()},
                {k: (v[0], dict(v[1])) for k, v in self.sets.items()})

    def _referenced(self, name: str, sigil: str) -> bool:
        pat = re.compile(rf"(^|\s){re.escape(sigil + name)}(\s|$)")
        for _, rules in self.chains.values():
            if any(pat.search(r.split(" ", 5)[5]) for r in rules):
                return True
        if sigil == "":
            for _, elems in self.sets.values():
                if any(pat.search(e.split("{", 1)[1]) for e in elems.values()):
                    return True
        return False

    def run(self, text: str) -> None:
        saved = self._snapshot()
        try:
            for line in text.splitlines():
                if line.strip():
                    self._apply(line)
        except Exception:
            self.table, self.chains, self.sets = saved
            raise
        # the same transaction through the interpreter: it must read every rule, and the
        # table it leaves must be consistent (checkIPTablesRuleJumps' nftables twin)
        self.rules.run(text)
        assert self.rules.check_rule_jumps() == []

    def _apply(self, line: str) -> None:
        w = line.split(" ")
        op, kind = w[0], w[1]
        assert w[2:4] == ["ip", "kube-proxy"], line
        if kind == "table":
            if op == "add":
                self.table = self.table or line
            elif op == "delete":
                self.table, self.chains, self.sets = None, {}, {}
            return
        if self.table is None:
            raise NftError(f"no table: {line}")
        name = w[4]
        if kind == "chain":
            if op == "add":
                self.chains.setdefault(name, (line, []))
            elif name not in self.chains:
                raise NftError(f"no such chain: {line}")
            elif op == "flush":
                self.chains[name][1].clear()
            elif op == "delete":
                if self._referenced(name, ""):
                    raise NftError(f"chain in use: {line}")
                del self.chains[name]
        elif kind == "rule":
            if name not in self.chains:
                raise NftError(f"no such chain: {line}")
            for ref in re.findall(r"(?:jump|goto) (\S+)", line) + re.findall(r"@(\S+)", line):
                if ref not in self.chains and ref not in self.sets:
                    raise NftError(f"unknown reference {ref}: {line}")
            self.chains[name][1].append(line)
        elif kind in ("set", "map"):
            if op == "add":
                self.sets.setdefault(name, (line, {}))
            elif name not in self.sets:
                raise NftError(f"no such {kind}: {line}")
            elif op == "flush":
                self.sets[name][1].clear()
            elif op == "delete":
                if self._referenced(name, "@"):
                    raise NftError(f"{kind} in use: {line}")
                del self.sets[name]
        elif kind == "element":
            if name not in self.sets:
                raise NftError(f"no such set: {line}")
            body = line.split("{", 1)[1].rsplit("}", 1)[0].strip()
            key = re.split(r" comment | : ", body, maxsplit=1)[0].strip()
            elems = self.sets[name][1]
            if op == "add":
                for ref in re.findall(r"goto (\S+)", body):
                    if ref not in self.chains:
                        raise NftError(f"unknown chain {ref}: {line}")
                elems.setdefault(key, line)
            elif op == "delete":
                if key not in elems:
                    raise NftError(f"no such element: {line}")
                del elems[key]
        else:
            raise NftError(f"unknown command: {line}")

    def dump(self) -> str:
        out = [self.table or ""]
        for add, rules in self.chains.values():
            out += [add, *rules]
        for add, elems in self.sets.values():
            out += [add, *elems.values()]
        return "\n".join(out)

    def state(self) -> nft.NftState:
        elements = {}
        for name, (_, elems) in self.sets.items():
            if name in {n for _, n in nft.ELEMENT_CONTAINERS}:
                elements[name] = {k: _value(v) for k, v in elems.items()}
        return nft.NftState(chains=set(self.chains), sets=set(self.sets), elements=elements)


def _value(element_line: str) -> str:
    body = element_line.split("{", 1)[1].rsplit("}", 1)[0]
    return body.split(" : ", 1)[1].strip() if " : " in body else ""


_ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}


def sort_nft(text: str) -> str:
    """Port of upstream sortNFTablesTransaction: drop blanks/comments; by object type, then
    object name; rules keep their order, everything else sorts by the whole line."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]

    def key(ln: str):
        w = ln.split(" ")
        if len(w) < 5:
            return (0, "", "")
        return (-_ORDER.get(w[1], 0), w[4], "" if w[1] == "rule" else ln)
    return "\n".join(sorted(lines, key=key))


def dump_of(*texts: str) -> FakeNft:
    f = FakeNft()
    for t in texts:
        f.run(t)
    return f


# --- every render goes through these: the interpreter reads and checks each one ----------

class _Checked:
    """netsim.proxy.nftables, with every rendered transaction read by ruleflow and (for a
    full sync, which stands alone) checked for consistency."""

    def __getattr__(self, name):
        return getattr(_nft, name)

    @staticmethod
    def render(snapshot, options=None, **kw):
        r = _nft.render(snapshot, options, **kw)
        if r.full and kw.get("existing") is None:
            assert_consistent(r.text)
        return r

    @staticmethod
    def render_full(snapshot, options=None, **kw):
        text = _nft.render_full(snapshot, options, **kw)
        if kw.get("existing") is None:
            assert_consistent(text)
        return text


nft = _Checked()


def assert_consistent(*texts: str) -> NftRules:
    rules = NftRules(*texts)
    assert rules.check_rule_jumps() == []
    return rules


# --- upstream's TestOverallNFTablesRules ---------------------------------------------------

UPSTREAM_BASE = textwrap.dedent("""
    add table ip kube-proxy { comment "rules for kube-proxy" ; }

    add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
    add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

    add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
    add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
    add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
    add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
    add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }

    add chain ip kube-proxy cluster-ips-check
    add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
    add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
    add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
    add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
    add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
    add chain ip kube-proxy firewall-check
    add chain ip kube-proxy mark-for-masquerade
    add chain ip kube-proxy masquerading
    add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
    add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
    add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
    add chain ip kube-proxy nodeport-endpoints-check
    add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
    add chain ip kube-proxy services
    add chain ip kube-proxy service-endpoints-check

    add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
    add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
    add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
    add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
    add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
    add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
    add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
    add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
    add rule ip kube-proxy masquerading mark set mark xor 0x4000
    add rule ip kube-proxy masquerading masquerade fully-random
    add rule ip kube-proxy nat-output jump services
    add rule ip kube-proxy nat-postrouting jump masquerading
    add rule ip kube-proxy nat-prerouting jump services
    add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    add rule ip kube-proxy reject-chain reject
    add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
    add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

    add element ip kube-proxy nodeport-ips { 192.168.0.2 }
    add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    """)

UPSTREAM_OVERALL = textwrap.dedent("""
    # svc1
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }

    add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

    # svc2
    add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
    add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
    add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80

    add element ip kube-proxy cluster-ips { 172.30.0.42 }
    add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }

    add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

    # svc3
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
    add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

    add element ip kube-proxy cluster-ips { 172.30.0.43 }
    add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

    # svc4
    add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
    add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
    add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
    add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80

    add element ip kube-proxy cluster-ips { 172.30.0.44 }
    add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

    # svc5
    add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
    add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80

    add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

    add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop

    add element ip kube-proxy cluster-ips { 172.30.0.45 }
    add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

    # svc6
    add element ip kube-proxy cluster-ips { 172.30.0.46 }
    add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
    """)


def overall_snapshot() -> ProxySnapshot:
    return snap(*overall_objects())


# --- runPacketFlowTests: the same flow table as the iptables tests --------------------------

@pytest.mark.parametrize("case", flow_cases(), ids=flow_id)
def test_packet_flows(case):
    """Upstream's packet-flow tables traced through the rendered transaction (upstream's
    nftables fake proxier: NodePorts on the primary node IP, service CIDR 172.30.0.0/16)."""
    _, objects, flow = case
    check_flow(dump_of(nft.render_full(snap(*objects()), UPSTREAM_OPTS)).rules, flow, "nftables")


def test_packet_flows_follow_partial_syncs():
    """A partial sync changes where packets go exactly as a full sync of the same state."""
    from tests.proxy_fixtures import Flow
    first = nft.render(overall_snapshot(), UPSTREAM_OPTS)
    f = dump_of(first.text)
    part = nft.render(snap(*_changed_objects()), UPSTREAM_OPTS,
                      changed={"ns1/svc1", "ns3/svc3", "ns6/svc6", "ns7/svc7"},
                      existing=first.state)
    f.run(part.text)
    for flow in (
        Flow("scaled up", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80, 10.180.0.7:80"),
        Flow("lost its endpoints", "203.0.113.2", "192.168.0.2", 3003, "REJECT"),
        Flow("deleted: an unallocated cluster IP", "10.0.0.2", "172.30.0.46", 80, "DROP"),
        Flow("new, with affinity", "10.0.0.2", "172.30.0.47", 80, "10.180.0.8:80, 10.180.0.9:80"),
        Flow("unchanged", "10.0.0.2", "172.30.0.44", 80, "10.180.0.4:80, 10.180.0.5:80"),
    ):
        check_flow(f.rules, flow, "nftables")
    f.run(nft.render_delete_chains(part.stale_chains))
    check_flow(f.rules, Flow("after the stale chains went", "10.0.0.2", "172.30.0.43", 80,
                             "REJECT"), "nftables")


def test_overall_rules_equal_upstreams_expected_table():
    text = nft.render_full(overall_snapshot(), UPSTREAM_OPTS)
    assert sort_nft(dump_of(text).dump()) == sort_nft(UPSTREAM_BASE + UPSTREAM_OVERALL)


def test_upstream_chain_name_hashes():
    assert nft.service_chain_base("ns1", "svc1", "tcp", "p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert nft.endpoint_chain_base("ns1", "svc1", "tcp", "p80", "10.180.0.1:80") == \
        "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    assert nft.endpoint_chain_base("ns5", "svc5", "tcp", "p80", "10.180.0.3:80").startswith(
        "GTK6MW7G-")
    long = nft.hash_and_truncate("x" * 300)
    assert len(long) == nft.CHAIN_NAME_BASE_LENGTH_MAX and long.endswith("...")


def test_full_sync_is_a_transaction_of_adds_flushes_and_deletes_only():
    text = nft.render_full(overall_snapshot(), UPSTREAM_OPTS)
    ops = {ln.split(" ", 2)[0] + " " + ln.split(" ", 2)[1] for ln in text.splitlines()}
    assert "flush table" not in {o for o in ops} and "delete table" not in ops
    assert text.startswith('add table ip kube-proxy { comment "rules for kube-proxy" ; }\n')
    # first sync: base chains are re-created (add+delete) so a priority change can't fail
    assert "add chain ip kube-proxy nat-prerouting\ndelete chain ip kube-proxy nat-prerouting\n" in text
    again = nft.render_full(overall_snapshot(), nft.NftOptions(
        nodeport_addresses=("192.168.0.2/32",), service_cidrs=("172.30.0.0/16",),
        recreate_base_chains=False))
    assert "delete chain" not in again
    # applying the same full sync twice is idempotent
    f = dump_of(text, again)
    assert sort_nft(f.dump()) == sort_nft(UPSTREAM_BASE + UPSTREAM_OVERALL)


def test_match_all_nodeports_use_fib_and_no_nodeport_ips_set():
    text = nft.render_full(overall_snapshot(), nft.NftOptions(service_cidrs=("172.30.0.0/16",)))
    f = dump_of(text)
    assert "nodeport-ips" not in f.sets
    rules = f.chains["services"][1]
    assert rules[1].endswith("services fib daddr type local ip daddr != 127.0.0.0/8 "
                             "meta l4proto . th dport vmap @service-nodeports")
    assert f.chains["nodeport-endpoints-check"][1][0].endswith(
        "ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports")


def _changed_objects():
    services, slices = overall_objects()
    services = [s for s in services if s["metadata"]["name"] != "svc6"]  # svc6 deleted
    slices = [s for s in slices if s["metadata"]["namespace"] not in ("ns1", "ns3")]
    slices.append(eps("ns1", "svc1", [ep("10.180.0.1"), ep("10.180.0.7")]))  # scaled up
    # ns3/svc3 lost its endpoints: its chains go stale, its NodePort rejects
    services.append(svc("ns7", "svc7", clusterIP="172.30.0.47", sessionAffinity="ClientIP",
                        ports=[port("p80", 80)]))
    slices.append(eps("ns7", "svc7", [ep("10.180.0.8"), ep("10.180.0.9")]))
    return services, slices


def test_partial_sync_writes_only_changed_services_and_converges_to_a_full_sync():
    before = overall_snapshot()
    first = nft.render(before, UPSTREAM_OPTS)
    f = dump_of(first.text)
    after = snap(*_changed_objects())
    changed = {"ns1/svc1", "ns3/svc3", "ns6/svc6", "ns7/svc7"}
    part = nft.render(after, UPSTREAM_OPTS, changed=changed, existing=first.state)
    assert not part.full
    text = part.text
    assert "add table" not in text and "filter-input" not in text
    # unchanged services' chains are not rewritten
    assert "service-LAUZTJTB-ns4/svc4" not in text and "HVFWP5L3" not in text
    assert "add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 2" in text
    assert "delete element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 }" in text
    assert "delete element ip kube-proxy cluster-ips { 172.30.0.46 }" in text
    # svc3: NodePort map element replaced by a reject; its chains flushed, deleted later
    assert 'add element ip kube-proxy no-endpoint-nodeports { tcp . 3003 comment "ns3/svc3:p80" ' \
           ': goto reject-chain }' in text
    assert part.stale_chains == {"service-4AT6LBPK-ns3/svc3/tcp/p80",
                                 "external-4AT6LBPK-ns3/svc3/tcp/p80",
                                 "endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80"}
    assert all(f"flush chain ip kube-proxy {c}" in text for c in part.stale_chains)
    f.run(text)
    # the stale chains can only go once no map element points at them any more
    f.run(nft.render_delete_chains(part.stale_chains))
    fresh = dump_of(nft.render_full(after, UPSTREAM_OPTS))
    assert sort_nft(f.dump()) == sort_nft(fresh.dump())
    # and our bookkeeping agrees with the table
    st = part.state
    st.chains -= part.stale_chains
    assert st.chains == set(f.chains)
    assert st.elements == f.state().elements


def test_partial_sync_with_nothing_changed_is_empty():
    first = nft.render(overall_snapshot(), UPSTREAM_OPTS)
    again = nft.render(overall_snapshot(), UPSTREAM_OPTS, changed=set(), existing=first.state)
    assert again.text == ""


def test_endpoint_chain_names_follow_the_endpoint_change_on_partial_sync():
    first = nft.render(overall_snapshot(), UPSTREAM_OPTS)
    services, slices = overall_objects()
    slices = [s if s["metadata"]["namespace"] != "ns5" else eps("ns5", "svc5", [ep("10.180.0.9")])
              for s in slices]
    part = nft.render(snap(services, slices), UPSTREAM_OPTS, changed={"ns5/svc5"},
                      existing=first.state)
    f = dump_of(first.text, part.text)
    # the old affinity set is deleted at once, the new one added
    assert "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80" not in f.sets
    assert any(s.startswith("affinity-") and s.endswith("__10.180.0.9/80") for s in f.sets)
    with pytest.raises(NftError):  # deleting a chain still referenced is refused...
        FakeNft().run("add table ip kube-proxy\nadd chain ip kube-proxy a/b\n"
                      "add chain ip kube-proxy c\nadd rule ip kube-proxy c goto a/b\n"
                      "delete chain ip kube-proxy a/b\n")
    f.run(nft.render_delete_chains(part.stale_chains))  # ...these are no longer referenced


def test_full_sync_with_known_state_flushes_stale_chains_and_diffs_elements():
    first = nft.render(overall_snapshot(), UPSTREAM_OPTS)
    after = snap(*_changed_objects())
    full = nft.render(after, UPSTREAM_OPTS, existing=first.state)
    assert "flush map ip kube-proxy service-ips" not in full.text  # elements known: diffed
    assert full.stale_chains
    f = dump_of(first.text, full.text, nft.render_delete_chains(full.stale_chains))
    assert sort_nft(f.dump()) == sort_nft(dump_of(nft.render_full(after, UPSTREAM_OPTS)).dump())


def test_full_sync_without_known_elements_flushes_the_maps():
    text = nft.render_full(overall_snapshot(), UPSTREAM_OPTS,
                           existing=nft.NftState(chains={"service-OLD-x/y/tcp/p"}))
    for _, name in nft.ELEMENT_CONTAINERS:
        assert f"flush {'set' if name == 'cluster-ips' else 'map'} ip kube-proxy {name}\n" in text
    assert "flush chain ip kube-proxy service-OLD-x/y/tcp/p\n" in text


def test_local_policy_without_local_endpoints_and_internal_local():
    services = [svc("ns1", "loc", type="NodePort", clusterIP="172.30.0.50",
                    externalTrafficPolicy="Local", internalTrafficPolicy="Local",
                    ports=[port("", 80, nodePort=3010)])]
    slices = [eps("ns1", "loc", [ep("10.180.0.1", "other-node")], [port("", 80)])]
    f = dump_of(nft.render_full(snap(services, slices), UPSTREAM_OPTS))
    assert f.sets["no-endpoint-services"][1]["172.30.0.50 . tcp . 80"].endswith(
        'comment "ns1/loc" : drop }')
    assert f.sets["no-endpoint-nodeports"][1]["tcp . 3010"].endswith('comment "ns1/loc" : drop }')
    # the external chain still short-circuits pod/node traffic to the Cluster chain
    assert "tcp . 3010" in f.sets["service-nodeports"][1]
    assert "service-LOBLMDOU-ns1/loc/tcp/" in f.chains
    assert not [c for c in f.chains if c.startswith("local-")]


def test_parse_listing_reads_chain_and_set_names():
    listing = textwrap.dedent("""\
        table ip kube-proxy {
        \tcomment "rules for kube-proxy"
        \tset affinity-AB-ns/s/tcp/__10.0.0.1/80 {
        \t\ttype ipv4_addr
        \t}
        \tmap service-ips {
        \t\ttype ipv4_addr . inet_proto . inet_service : verdict
        \t}
        \tchain services {
        \t\tip daddr . meta l4proto . th dport vmap @service-ips
        \t}
        \tchain endpoint-XY-ns/s/tcp/__10.0.0.1/80 {
        \t}
        }
        """)
    st = nft.parse_listing(listing)
    assert st.chains == {"services", "endpoint-XY-ns/s/tcp/__10.0.0.1/80"}
    assert "affinity-AB-ns/s/tcp/__10.0.0.1/80" in st.sets and st.elements is None


# --- the agent's mode choice ---------------------------------------------------------------

class _FakeClient:
    def __init__(self):
        self.created = []

    def get(self, resource, name, namespace=None):
        assert resource == "nodes"
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "uid": "u-1", "resourceVersion": "1"}}

    def create(self, obj):
        self.created.append(obj)
        return obj


def _cfg(mode):
    from netsim.net.topology import ClusterConfig
    return ClusterConfig.make(name="unit", nodes=2, proxy_mode=mode)


def test_ipvs_mode_is_refused_in_the_log_and_a_node_event(caplog):
    from netsim.proxy.agent import KubeProxy
    cfg = _cfg("ipvs")
    client = _FakeClient()
    kp = KubeProxy(client, cfg, cfg.nodes[0], hold_node_ports=False)
    kp.start()  # no netns check, no rules: it refuses before touching anything
    assert kp.stopped.is_set() and kp.syncer is None
    assert any("ipvs" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    (ev,) = client.created
    assert ev["kind"] == "Event" and ev["type"] == "Warning"
    assert ev["involvedObject"]["kind"] == "Node" and "not supported" in ev["message"]


def test_mode_defaults_to_iptables():
    from netsim.proxy.agent import KubeProxy
    cfg = _cfg("iptables")
    assert KubeProxy(_FakeClient(), cfg, cfg.nodes[0], hold_node_ports=False).mode == "iptables"
    cfg = _cfg("nftables")
    assert KubeProxy(_FakeClient(), cfg, cfg.nodes[0], hold_node_ports=False).mode == "nftables"


def test_syncer_forgets_a_stale_chain_that_is_in_use_again():
    """An endpoint that leaves and comes back within a second must not be deleted later
    (the kernel refuses: the chain is referenced again)."""
    from netsim.proxy import agent

    class Fake(FakeNft):
        def apply(self, text):
            self.run(text)
            return 0.0

        def list_table(self):
            return None

        def table_exists(self):
            return self.table is not None

    fake = Fake()
    syncer = agent.NftSyncer(fake, UPSTREAM_OPTS)  # type: ignore[arg-type]
    base = overall_snapshot()
    services, slices = overall_objects()
    moved = [s if s["metadata"]["namespace"] != "ns1" else eps("ns1", "svc1", [ep("10.180.0.9")])
             for s in slices]
    syncer.sync(base, None)
    syncer.sync(snap(services, moved), {"ns1/svc1"})
    assert syncer.stale_pending
    syncer.sync(base, {"ns1/svc1"})  # back again: the old chain is active, the new one stale
    assert all("10.180.0.1/80" not in c for c in syncer.stale)
    syncer.stale = {c: 0.0 for c in syncer.stale}  # pretend a second has passed
    syncer.sync(base, set())
    assert not syncer.stale_pending and not syncer.force_full
    assert sort_nft(fake.dump()) == sort_nft(UPSTREAM_BASE + UPSTREAM_OVERALL)


# --- both modes, one behaviour -------------------------------------------------------------

@pytest.mark.parametrize("scenario", [s[0] for s in FLOW_SCENARIOS])
def test_iptables_and_nftables_renders_send_every_packet_to_the_same_place(scenario):
    """Every source (pods, a hairpinning endpoint, the node, external clients) against every
    address of every service port: both modes agree, but for what upstream's own modes do
    differently: localhost NodePorts (iptables only, --iptables-localhost-nodeports) and the
    node's own connections to an external/LB IP without endpoints (iptables hooks
    KUBE-EXTERNAL-SERVICES into INPUT and FORWARD only; nftables rejects them in output)."""
    from netsim.inspect.ruleflow import IptablesRules
    from netsim.proxy import iptables
    from tests.proxy_fixtures import (
        TEST_EXTERNAL_CLIENT,
        TEST_EXTERNAL_CLIENT_BLOCKED,
        TEST_NODE_IP,
        TEST_NODE_IP_ALT,
        TEST_NODE_IPS,
    )
    objects = dict((s[0], s[1]) for s in FLOW_SCENARIOS)[scenario]
    s = snap(*objects())
    ipt = IptablesRules(iptables.render_full(s, iptables.RenderOptions(random_fully=False)),
                        inserted=iptables.jump_rules())
    nf = assert_consistent(nft.render_full(s, nft.NftOptions(service_cidrs=("172.30.0.0/16",))))
    sources = ["10.0.0.2", "10.180.0.1", "10.180.0.3", TEST_NODE_IP, TEST_EXTERNAL_CLIENT,
               TEST_EXTERNAL_CLIENT_BLOCKED]
    checked = 0
    for sp in s.service_ports:
        dests = [(ip, sp.port) for ip in (sp.cluster_ip, *sp.external_ips, *sp.load_balancer_vips)]
        if sp.node_port:
            dests += [(TEST_NODE_IP, sp.node_port), (TEST_NODE_IP_ALT, sp.node_port)]
        for src in sources:
            for dst, p in dests:
                a = ipt.trace(src, dst, p, sp.proto, local_ips=TEST_NODE_IPS)
                b = nf.trace(src, dst, p, sp.proto, local_ips=TEST_NODE_IPS)
                no_usable = not categorize_endpoints(sp).has_any  # none ready or serving
                if src == TEST_NODE_IP and no_usable and dst != sp.cluster_ip \
                        and dst not in TEST_NODE_IPS:
                    assert (a.output, b.output) == ("", "REJECT")
                    continue
                assert (a.output, a.masquerade) == (b.output, b.masquerade), \
                    f"{src} -> {dst}:{p}/{sp.proto}\n{a.describe()}\n{b.describe()}"
                checked += 1
    assert checked >= 6


# --- the first sync into an empty table, in stages ------------------------------------------

def test_first_sync_of_many_services_goes_in_stages_with_every_element_last():
    from tests.bench.bench_proxy_sync import snap  # noqa: PLC0415
    n = 2 * _nft.STAGE_SERVICES + 10
    r = _nft.render(snap(n), _nft.NftOptions(service_cidrs=("10.96.0.0/12",)))
    # setup, three chunks of service chains, then the elements
    assert len(r.stages) == 5
    assert "".join(r.stages) == r.text  # the same commands, cut into transactions
    assert r.stages[0].startswith(f"add table {_nft.T}")
    assert all("add element" not in t for t in r.stages[:-1])
    assert all(line.startswith(("add element", "delete element"))
               for line in r.stages[-1].splitlines())
    # a chunk holds whole services: each chain is created in the stage that fills it
    for t in r.stages[1:-1]:
        made = {ln.split()[4] for ln in t.splitlines() if ln.startswith("add chain")}
        filled = {ln.split()[4] for ln in t.splitlines() if ln.startswith("add rule")}
        assert filled <= made
    assert r.stages[1].count("add chain") > 0


def test_no_stages_when_few_services_or_service_chains_exist():
    from tests.bench.bench_proxy_sync import snap  # noqa: PLC0415
    opts = _nft.NftOptions(service_cidrs=("10.96.0.0/12",))
    assert _nft.render(snap(_nft.STAGE_SERVICES), opts).stages == []
    big = snap(_nft.STAGE_SERVICES + 1)
    first = _nft.render(big, opts)
    assert first.stages
    # the next full sync (elements known) and a restarted agent's (names only) are one
    # transaction: the table already holds service chains that traffic may be using
    assert _nft.render(big, opts, existing=first.state).stages == []
    names_only = _nft.NftState(chains=set(first.state.chains), sets=set(first.state.sets))
    assert _nft.render(big, opts, existing=names_only).stages == []
