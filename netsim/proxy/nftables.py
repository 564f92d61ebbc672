"""Pure renderer: ProxySnapshot -> the `nft -f` transaction upstream kube-proxy (nftables
mode) runs.

Follows kubernetes/kubernetes `pkg/proxy/nftables/proxier.go` (`setupNFTables`,
`syncProxyRules`, `writeServiceToEndpointRules`, the `nftElementStorage` diffing) in the
shape of the release whose `TestOverallNFTablesRules` has `filter-prerouting-pre-dnat` /
`filter-output-pre-dnat` base chains and a `mark-for-masquerade` chain (v1.33-v1.35). The
transaction text is what knftables writes to `nft -f -`: one command per line, `add` /
`flush` / `delete`, never JSON (nft 1.0.6's JSON parser rejects some of these maps).

Strategy, as upstream:
- a *full* sync re-declares everything: `add table`, (first sync only) `add`+`delete` of
  every base chain so a changed hook priority can't fail the transaction, then `add`+`flush`
  of every base and top-level chain with their rules, `add` of every set and map, the
  per-service chains (`add`+`flush`+rules) and the map elements. The table itself is never
  flushed (that would also empty the affinity sets) and only deleted on cleanup;
- a *partial* sync rewrites only the chains of services in `changed`, and the map/set
  elements are diffed against what the table holds (`NftState`): new ones added, changed
  ones deleted and re-added, leftovers deleted — one transaction with only the changes;
- chains no service needs any more are flushed now and deleted at least a second later
  in a transaction of their own (`render_delete_chains`): before Linux 6.2 the kernel
  notices a deleted map element's chain reference only a bit later;
- stale affinity sets are deleted at once.

Beyond upstream (issue #16, costs that grow with the table): a service chain whose rules
would not change is not rewritten, also by a restarted process (its rules are read from the
listing); a partial sync computes only the changed services (`NftState.services`); small
transactions reach the kernel as our own netlink batch (netsim/proxy/nftnl.py), not nft.

Deliberate differences: services are written in sorted svcPortName order (upstream: Go
map order); topology hints are not modelled; IPv4 only; no health-check-node-port server.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import functools
import hashlib
import ipaddress
import itertools
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field

from netsim.proxy.model import (
    ProxySnapshot,
    ServicePort,
    categorize_endpoints,
    safe_comment,
)

FAMILY = "ip"
TABLE = "kube-proxy"
T = f"{FAMILY} {TABLE}"  # what every command names

# base chains
FILTER_PREROUTING_PRE_DNAT = "filter-prerouting-pre-dnat"
FILTER_OUTPUT_PRE_DNAT = "filter-output-pre-dnat"
FILTER_INPUT = "filter-input"
FILTER_FORWARD = "filter-forward"
FILTER_OUTPUT = "filter-output"
NAT_PREROUTING = "nat-prerouting"
NAT_OUTPUT = "nat-output"
NAT_POSTROUTING = "nat-postrouting"

# service dispatch
SERVICES_CHAIN = "services"
SERVICE_IPS_MAP = "service-ips"
SERVICE_NODEPORTS_MAP = "service-nodeports"
NODEPORT_IPS_SET = "nodeport-ips"
CLUSTER_IPS_SET = "cluster-ips"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS_MAP = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
CLUSTER_IPS_CHECK = "cluster-ips-check"
FIREWALL_IPS_MAP = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
MARK_MASQ_CHAIN = "mark-for-masquerade"
MASQUERADING_CHAIN = "masquerading"

# (name, type, hook, priority) — knftables' DNATPriority-10 = -110, FilterPriority = 0,
# DNATPriority = -100, SNATPriority = 100 for the ip family.
BASE_CHAINS: tuple[tuple[str, str, str, int], ...] = (
    (FILTER_PREROUTING_PRE_DNAT, "filter", "prerouting", -110),
    (FILTER_OUTPUT_PRE_DNAT, "filter", "output", -110),
    (FILTER_INPUT, "filter", "input", 0),
    (FILTER_FORWARD, "filter", "forward", 0),
    (FILTER_OUTPUT, "filter", "output", 0),
    (NAT_PREROUTING, "nat", "prerouting", -100),
    (NAT_OUTPUT, "nat", "output", -100),
    (NAT_POSTROUTING, "nat", "postrouting", 100),
)

# (destination chain, source base chain, extra match) — upstream nftablesJumpChains
JUMP_CHAINS: tuple[tuple[str, str, str], ...] = (
    (NODEPORT_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_FORWARD, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_OUTPUT, "ct state new"),
    (FIREWALL_CHECK, FILTER_PREROUTING_PRE_DNAT, "ct state new"),
    (FIREWALL_CHECK, FILTER_OUTPUT_PRE_DNAT, "ct state new"),
    (SERVICES_CHAIN, NAT_OUTPUT, ""),
    (SERVICES_CHAIN, NAT_PREROUTING, ""),
    (MASQUERADING_CHAIN, NAT_POSTROUTING, ""),
    (CLUSTER_IPS_CHECK, FILTER_FORWARD, "ct state new"),
    (CLUSTER_IPS_CHECK, FILTER_OUTPUT, "ct state new"),
)

# the maps/sets whose elements kube-proxy manages (upstream's nftElementStorage users)
ELEMENT_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("set", CLUSTER_IPS_SET),
    ("map", SERVICE_IPS_MAP),
    ("map", FIREWALL_IPS_MAP),
    ("map", NO_ENDPOINT_SERVICES_MAP),
    ("map", NO_ENDPOINT_NODEPORTS_MAP),
    ("map", SERVICE_NODEPORTS_MAP),
)

SERVICE_PREFIX = "service-"
LOCAL_PREFIX = "local-"
EXTERNAL_PREFIX = "external-"
ENDPOINT_PREFIX = "endpoint-"
AFFINITY_PREFIX = "affinity-"
FIREWALL_PREFIX = "firewall-"

NAME_LENGTH_MAX = 256  # knftables.NameLengthMax (NFT_NAME_MAXLEN)
CHAIN_NAME_PREFIX_LENGTH_MAX = 16
CHAIN_NAME_BASE_LENGTH_MAX = NAME_LENGTH_MAX - CHAIN_NAME_PREFIX_LENGTH_MAX


@dataclass(frozen=True)
class NftOptions:
    """kube-proxy flags that change the nftables text (upstream defaults)."""

    masquerade_mark: str = "0x4000"  # --nftables-masquerade-bit=14 -> "%#08x"
    masquerade_all: bool = False
    nodeport_addresses: tuple[str, ...] = ()  # --nodeport-addresses; () = every local IP
    service_cidrs: tuple[str, ...] = ()  # ServiceCIDRs: traffic to unallocated IPs is dropped
    recreate_base_chains: bool = True  # first sync of a process: add+delete base chains


@dataclass
class NftState:
    """What the kube-proxy table holds, as far as the syncer knows.

    `elements`: container name -> {key: value} (value "" in sets), as upstream's
    nftElementStorage keeps them ("a . b . c" joined). None = unknown: a full sync then
    flushes the maps instead of diffing them."""

    chains: set[str] = field(default_factory=set)
    sets: set[str] = field(default_factory=set)
    elements: dict[str, dict[str, str]] | None = None
    # service/endpoint chain -> the rules this process last wrote into it (None: unknown).
    # A sync leaves a chain whose rules would not change alone: every chain rewritten costs
    # the kernel an anonymous numgen map, and binding one walks the whole transaction
    # (__nft_set_trans_bind), which made a full sync quadratic in the number of services.
    chain_rules: dict[str, str] | None = None
    # What a render learnt and the next partial sync reuses, so that it visits only the
    # changed services (None: unknown, e.g. read from a listing): each service's chains,
    # affinity sets and elements ("ns/name" -> one _Contribution per port), which service
    # holds each map key, the service chains no service claims (flushed, to be deleted), and
    # the options and node all of it was rendered for.
    services: dict[str, list[_Contribution]] | None = None
    owner: dict[tuple[str, str], str] | None = None
    unclaimed: set[str] | None = None
    context: tuple | None = None

    def copy(self) -> NftState:
        return NftState(set(self.chains), set(self.sets),
                        None if self.elements is None
                        else {k: dict(v) for k, v in self.elements.items()},
                        None if self.chain_rules is None else dict(self.chain_rules),
                        None if self.services is None else dict(self.services),
                        None if self.owner is None else dict(self.owner),
                        None if self.unclaimed is None else set(self.unclaimed),
                        self.context)

    def forget_chains(self, gone: set[str]) -> None:
        """Chains deleted from the table (the stale ones, a second after their flush)."""
        self.chains -= gone
        if self.unclaimed is not None:
            self.unclaimed -= gone


@dataclass
class NftRender:
    """One sync's transaction and what the table will hold once it succeeded.

    `stages`: for the first sync into a table without service chains, the same text cut
    into several transactions (see STAGE_SERVICES); empty otherwise (one transaction)."""

    text: str
    _state: NftState | None  # None: base + advance_fn (see `state`)
    stale_chains: set[str]  # flushed now, to delete later (render_delete_chains)
    full: bool
    stages: list[str] = field(default_factory=list)
    # an incremental partial sync: the state it was rendered from and how this sync changes
    # it (copying a table of 10,000 services would cost more than the sync itself)
    base: NftState | None = None
    advance_fn: Callable[[NftState], None] | None = None

    @property
    def state(self) -> NftState:
        """What the table holds once this sync succeeded."""
        if self._state is None:
            assert self.base is not None and self.advance_fn is not None
            st = self.base.copy()
            self.advance_fn(st)
            self._state = st
        return self._state

    def advance(self, current: NftState | None) -> NftState:
        """The syncer's state after this sync succeeded: `current` itself, updated in place,
        when it is the state this sync was rendered from; else `state`."""
        if self._state is None and current is not None and current is self.base:
            assert self.advance_fn is not None
            self.advance_fn(current)
            self._state = current
            return current
        return self.state


# A first sync into a table that holds no service chains yet goes in stages: the base
# chains and maps, then the service and endpoint chains STAGE_SERVICES services at a time,
# then every map element in one last transaction. Binding each chain's anonymous numgen map
# walks the whole transaction in the kernel (__nft_set_trans_bind), so one transaction is
# quadratic in the number of services (5,000: ~20 s); stages make it linear. Nothing is
# reachable before the last stage (traffic enters service chains only through the maps),
# so every Service still appears at once, as with one transaction.
STAGE_SERVICES = 250


# --- names --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=262144)
def hash_and_truncate(name: str) -> str:
    """upstream hashAndTruncate: first 8 chars of base32(sha256(name)) + "-" + name.
    (8 base32 chars are exactly the first 5 digest bytes; cached: every sync names every
    endpoint chain again.)"""
    h = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    out = f"{h}-{name}"
    if len(out) > CHAIN_NAME_BASE_LENGTH_MAX:
        out = out[:CHAIN_NAME_BASE_LENGTH_MAX - 3] + "..."
    return out


def service_chain_base(namespace: str, name: str, protocol: str, port_name: str) -> str:
    """"HASH-ns/svc/tcp/p80" (servicePortChainNameBase); protocol lower-case."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}")


def endpoint_chain_base(namespace: str, name: str, protocol: str, port_name: str,
                        endpoint: str) -> str:
    """"HASH-ns/svc/tcp/p80__10.180.0.1/80" (servicePortEndpointChainNameBase)."""
    ip, _, port = endpoint.rpartition(":")
    ip = ip.strip("[]").replace(":", ".")
    return hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}__{ip}/{port}")


def _sp_base(sp: ServicePort) -> str:
    return service_chain_base(sp.namespace, sp.name, sp.proto, sp.port_name)


def service_chain(sp: ServicePort) -> str:
    return SERVICE_PREFIX + _sp_base(sp)


def local_chain(sp: ServicePort) -> str:
    return LOCAL_PREFIX + _sp_base(sp)


def external_chain(sp: ServicePort) -> str:
    return EXTERNAL_PREFIX + _sp_base(sp)


def firewall_chain(sp: ServicePort) -> str:
    return FIREWALL_PREFIX + _sp_base(sp)


def endpoint_chain(sp: ServicePort, endpoint: str) -> str:
    return ENDPOINT_PREFIX + endpoint_chain_base(sp.namespace, sp.name, sp.proto, sp.port_name,
                                                 endpoint)


def affinity_set(sp: ServicePort, endpoint: str) -> str:
    return AFFINITY_PREFIX + endpoint_chain_base(sp.namespace, sp.name, sp.proto, sp.port_name,
                                                 endpoint)


def is_service_chain_name(chain: str) -> bool:
    """Per-service chains always contain a "/"; the fixed chains never do."""
    return "/" in chain


def is_affinity_set_name(name: str) -> bool:
    return name.startswith(AFFINITY_PREFIX)


# --- the desired state --------------------------------------------------------------------

def _q(s: str) -> str:
    """A quoted nft string (comments hold at most 128 bytes): no `"` or newline can end it."""
    return f'"{safe_comment(s, 128)}"'


@dataclass
class _Element:
    key: str
    value: str = ""
    comment: str | None = None


@dataclass
class _ServiceObjects:
    """Everything one ServicePort contributes, in upstream's transaction order."""

    sp: ServicePort
    chains: list[str] = field(default_factory=list)  # ensureChain order
    rules: list[tuple[str, str]] = field(default_factory=list)  # (chain, rule)
    affinity_sets: list[tuple[str, int]] = field(default_factory=list)  # (set, timeout s)
    elements: list[tuple[str, _Element]] = field(default_factory=list)  # (container, elem)


def _local_ips(snapshot: ProxySnapshot, opts: NftOptions) -> list[str]:
    nets = [ipaddress.ip_network(c, strict=False) for c in opts.nodeport_addresses]
    out = []
    for ip in snapshot.node_ips:
        addr = ipaddress.ip_address(ip)
        if addr.version != 4 or addr.is_loopback or not any(addr in n for n in nets):
            continue
        out.append(str(addr))
    return out


def _service_objects(sp: ServicePort, snapshot: ProxySnapshot, opts: NftOptions,
                     with_rules: bool = True) -> _ServiceObjects:
    """Chains and map elements of one service port; its rules and affinity sets only when
    `with_rules` (a partial sync needs only the names and elements of unchanged services)."""
    o = _ServiceObjects(sp)
    proto = sp.proto
    cat = categorize_endpoints(sp)
    has_endpoints = cat.has_any
    cidr = snapshot.cluster_cidr
    mark_masq = MARK_MASQ_CHAIN

    for ep in cat.all_reachable:
        o.chains.append(endpoint_chain(sp, ep.endpoint))
    cluster_chain = service_chain(sp)
    uses_cluster_chain = bool(cat.cluster) and sp.uses_cluster_endpoints
    if uses_cluster_chain:
        o.chains.append(cluster_chain)
    loc_chain = local_chain(sp)
    uses_local_chain = bool(cat.local) and sp.uses_local_endpoints
    if uses_local_chain:
        o.chains.append(loc_chain)

    internal_chain = cluster_chain
    has_internal = has_endpoints
    if sp.internal_policy_local:
        internal_chain = loc_chain
        if not cat.local:
            has_internal = False
    external_policy_chain = cluster_chain
    has_external = has_endpoints
    if sp.external_policy_local:
        external_policy_chain = loc_chain
        if not cat.local:
            has_external = False
    ext_chain = external_chain(sp)
    uses_ext_chain = has_endpoints and sp.externally_accessible
    if uses_ext_chain:
        o.chains.append(ext_chain)

    internal_verdict = external_verdict = ""
    if not has_endpoints:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        if not has_internal:
            internal_verdict = "drop"
        if not has_external:
            external_verdict = "drop"

    name = sp.name_string
    el = o.elements
    port = str(sp.port)
    el.append((CLUSTER_IPS_SET, _Element(sp.cluster_ip)))
    if has_internal:
        el.append((SERVICE_IPS_MAP, _Element(f"{sp.cluster_ip} . {proto} . {port}",
                                             f"goto {internal_chain}")))
    else:
        el.append((NO_ENDPOINT_SERVICES_MAP, _Element(f"{sp.cluster_ip} . {proto} . {port}",
                                                      internal_verdict, name)))
    for eip in sp.external_ips:
        if has_endpoints:
            el.append((SERVICE_IPS_MAP, _Element(f"{eip} . {proto} . {port}", f"goto {ext_chain}")))
        if not has_external:
            el.append((NO_ENDPOINT_SERVICES_MAP, _Element(f"{eip} . {proto} . {port}",
                                                          external_verdict, name)))
    uses_fw = bool(sp.load_balancer_vips) and bool(sp.load_balancer_source_ranges)
    fw_chain = firewall_chain(sp)
    if uses_fw:
        o.chains.append(fw_chain)
    for lbip in sp.load_balancer_vips:
        if has_endpoints:
            el.append((SERVICE_IPS_MAP, _Element(f"{lbip} . {proto} . {port}", f"goto {ext_chain}")))
        if uses_fw:
            el.append((FIREWALL_IPS_MAP, _Element(f"{lbip} . {proto} . {port}", f"goto {fw_chain}")))
    if not has_external:
        for lbip in sp.load_balancer_vips:
            el.append((NO_ENDPOINT_SERVICES_MAP, _Element(f"{lbip} . {proto} . {port}",
                                                          external_verdict, name)))
    if sp.node_port:
        if has_endpoints:
            el.append((SERVICE_NODEPORTS_MAP, _Element(f"{proto} . {sp.node_port}",
                                                       f"goto {ext_chain}")))
        if not has_external:
            el.append((NO_ENDPOINT_NODEPORTS_MAP, _Element(f"{proto} . {sp.node_port}",
                                                           external_verdict, name)))

    if sp.session_affinity_client_ip:
        for ep in cat.all_reachable:
            o.affinity_sets.append((affinity_set(sp, ep.endpoint), sp.sticky_max_age_seconds))
    if not with_rules:
        return o

    r = o.rules
    # internal traffic: masquerade off-cluster sources of the cluster IP
    if has_internal:
        if opts.masquerade_all:
            r.append((internal_chain, f"ip daddr {sp.cluster_ip} jump {mark_masq}"))
        elif cidr:
            r.append((internal_chain, f"ip daddr {sp.cluster_ip} ip saddr != {cidr} jump {mark_masq}"))

    if uses_ext_chain:
        if not sp.external_policy_local:
            r.append((ext_chain, f"jump {mark_masq}"))
        else:
            if cidr:
                r.append((ext_chain, f"ip saddr {cidr} goto {cluster_chain} "
                                     f"comment {_q('short-circuit pod traffic')}"))
            r.append((ext_chain, f"fib saddr type local jump {mark_masq} "
                                 f"comment {_q('masquerade local traffic')}"))
            r.append((ext_chain, f"fib saddr type local goto {cluster_chain} "
                                 f"comment {_q('short-circuit local traffic')}"))
        if has_external:
            r.append((ext_chain, f"goto {external_policy_chain}"))

    if uses_fw:
        sources = list(sp.load_balancer_source_ranges)
        node_ip = ipaddress.ip_address(snapshot.node_ip) if snapshot.node_ip else None
        if node_ip is not None and any(node_ip in ipaddress.ip_network(c)
                                       for c in sp.load_balancer_source_ranges):
            sources += list(sp.load_balancer_vips)
        r.append((fw_chain, f"ip saddr != {{ {' , '.join(sources)} }} drop"))

    if uses_cluster_chain:
        _service_to_endpoint_rules(r, sp, cluster_chain, cat.cluster)
    if uses_local_chain:
        _service_to_endpoint_rules(r, sp, loc_chain, cat.local)

    for ep in cat.all_reachable:
        chain = endpoint_chain(sp, ep.endpoint)
        r.append((chain, f"ip saddr {ep.ip} jump {mark_masq}"))
        if sp.session_affinity_client_ip:
            r.append((chain, f"update @{affinity_set(sp, ep.endpoint)} {{ ip saddr }}"))
        r.append((chain, f"meta l4proto {proto} dnat to {ep.endpoint}"))
    return o


def _service_to_endpoint_rules(rules: list[tuple[str, str]], sp: ServicePort, chain: str,
                               endpoints) -> None:
    """Affinity lookups first, then one `numgen random mod N vmap` (writeServiceToEndpointRules)."""
    if sp.session_affinity_client_ip:
        for ep in endpoints:
            rules.append((chain, f"ip saddr @{affinity_set(sp, ep.endpoint)} "
                                 f"goto {endpoint_chain(sp, ep.endpoint)}"))
    parts = [f"{i} : goto {endpoint_chain(sp, ep.endpoint)}" for i, ep in enumerate(endpoints)]
    rules.append((chain, f"numgen random mod {len(endpoints)} vmap {{ {' , '.join(parts)} }}"))


# --- transaction text ---------------------------------------------------------------------

def _element_text(container: str, e: _Element) -> str:
    body = e.key
    if e.comment is not None:
        body += f" comment {_q(e.comment)}"
    if e.value:
        body += f" : {e.value}"
    return f"add element {T} {container} {{ {body} }}"


def _setup(out: list[str], snapshot: ProxySnapshot, opts: NftOptions, flush_elements: bool,
           recreate_base_chains: bool) -> None:
    """setupNFTables: the table, base chains, top-level chains, sets and maps."""
    match_all = not opts.nodeport_addresses
    out.append(f"add table {T} {{ comment {_q('rules for kube-proxy')} ; }}")
    if recreate_base_chains:
        for name, _, _, _ in BASE_CHAINS:
            out.append(f"add chain {T} {name}")
            out.append(f"delete chain {T} {name}")
    for name, typ, hook, prio in BASE_CHAINS:
        out.append(f"add chain {T} {name} {{ type {typ} hook {hook} priority {prio} ; }}")
        out.append(f"flush chain {T} {name}")
    created: set[str] = set()

    def ensure(chain: str) -> None:
        if chain not in created:
            created.add(chain)
            out.append(f"add chain {T} {chain}")
            out.append(f"flush chain {T} {chain}")

    for dst, src, extra in JUMP_CHAINS:
        ensure(dst)
        out.append(f"add rule {T} {src} {extra + ' ' if extra else ''}jump {dst}")
    for chain in (SERVICES_CHAIN, CLUSTER_IPS_CHECK, MASQUERADING_CHAIN, MARK_MASQ_CHAIN):
        ensure(chain)
    mark = opts.masquerade_mark
    out.append(f"add rule {T} {MARK_MASQ_CHAIN} mark set mark or {mark}")
    out.append(f"add rule {T} {MASQUERADING_CHAIN} mark and {mark} == 0 return")
    out.append(f"add rule {T} {MASQUERADING_CHAIN} mark set mark xor {mark}")
    out.append(f"add rule {T} {MASQUERADING_CHAIN} masquerade fully-random")

    out.append(f"add set {T} {CLUSTER_IPS_SET} {{ type ipv4_addr ; comment {_q('Active ClusterIPs')} ; }}")
    out.append(f"add rule {T} {CLUSTER_IPS_CHECK} ip daddr @{CLUSTER_IPS_SET} reject "
               f"comment {_q('Reject traffic to invalid ports of ClusterIPs')}")
    if opts.service_cidrs:
        out.append(f"add rule {T} {CLUSTER_IPS_CHECK} ip daddr {{ {','.join(opts.service_cidrs)} }} "
                   f"drop comment {_q('Drop traffic to unallocated ClusterIPs')}")

    out.append(f"add set {T} {NODEPORT_IPS_SET} {{ type ipv4_addr ; "
               f"comment {_q('IPs that accept NodePort traffic')} ; }}")
    if match_all:
        out.append(f"delete set {T} {NODEPORT_IPS_SET}")
    else:
        out.append(f"flush set {T} {NODEPORT_IPS_SET}")
        for ip in _local_ips(snapshot, opts):
            out.append(f"add element {T} {NODEPORT_IPS_SET} {{ {ip} }}")

    out.append(f"add map {T} {NO_ENDPOINT_SERVICES_MAP} {{ type ipv4_addr . inet_proto . "
               f"inet_service : verdict ; comment "
               f"{_q('vmap to drop or reject packets to services with no endpoints')} ; }}")
    out.append(f"add map {T} {NO_ENDPOINT_NODEPORTS_MAP} {{ type inet_proto . inet_service : "
               f"verdict ; comment "
               f"{_q('vmap to drop or reject packets to service nodeports with no endpoints')} ; }}")
    out.append(f"add chain {T} {REJECT_CHAIN} {{ comment "
               f"{_q('helper for @no-endpoint-services / @no-endpoint-nodeports')} ; }}")
    out.append(f"flush chain {T} {REJECT_CHAIN}")
    out.append(f"add rule {T} {REJECT_CHAIN} reject")
    out.append(f"add rule {T} {SERVICE_ENDPOINTS_CHECK} ip daddr . meta l4proto . th dport "
               f"vmap @{NO_ENDPOINT_SERVICES_MAP}")
    if match_all:
        out.append(f"add rule {T} {NODEPORT_ENDPOINTS_CHECK} ip daddr != 127.0.0.0/8 "
                   f"meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS_MAP}")
    else:
        out.append(f"add rule {T} {NODEPORT_ENDPOINTS_CHECK} ip daddr @{NODEPORT_IPS_SET} "
                   f"meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS_MAP}")

    out.append(f"add map {T} {FIREWALL_IPS_MAP} {{ type ipv4_addr . inet_proto . inet_service : "
               f"verdict ; comment {_q('destinations that are subject to LoadBalancerSourceRanges')} ; }}")
    ensure(FIREWALL_CHECK)
    out.append(f"add rule {T} {FIREWALL_CHECK} ip daddr . meta l4proto . th dport "
               f"vmap @{FIREWALL_IPS_MAP}")

    out.append(f"add map {T} {SERVICE_IPS_MAP} {{ type ipv4_addr . inet_proto . inet_service : "
               f"verdict ; comment {_q('ClusterIP, ExternalIP and LoadBalancer IP traffic')} ; }}")
    out.append(f"add map {T} {SERVICE_NODEPORTS_MAP} {{ type inet_proto . inet_service : "
               f"verdict ; comment {_q('NodePort traffic')} ; }}")
    out.append(f"add rule {T} {SERVICES_CHAIN} ip daddr . meta l4proto . th dport "
               f"vmap @{SERVICE_IPS_MAP}")
    if match_all:
        out.append(f"add rule {T} {SERVICES_CHAIN} fib daddr type local ip daddr != 127.0.0.0/8 "
                   f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS_MAP}")
    else:
        out.append(f"add rule {T} {SERVICES_CHAIN} ip daddr @{NODEPORT_IPS_SET} "
                   f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS_MAP}")
    if flush_elements:  # readOrReset could not read the elements: start from empty maps
        for kind, name in ELEMENT_CONTAINERS:
            out.append(f"flush {kind} {T} {name}")


# (container, key, value) of one element; a service port's part of the table
_Elem = tuple[str, str, str]


@dataclass(frozen=True)
class _Contribution:
    """What one service port put into the table: its chains, affinity sets and elements."""

    chains: tuple[str, ...]
    sets: tuple[str, ...]
    elements: tuple[_Elem, ...]


def _context(snapshot: ProxySnapshot, opts: NftOptions) -> tuple:
    """Everything besides a service's own objects that its chains and elements depend on: a
    contribution recorded under another context cannot be reused."""
    return (dataclasses.replace(opts, recreate_base_chains=False), snapshot.node_name,
            snapshot.node_ips, snapshot.cluster_cidr)


class _Sync:
    """One render's output and bookkeeping, shared by the scan over every service and the
    incremental partial sync (which visits only the changed ones)."""

    def __init__(self, prev: NftState, have: dict[str, MutableMapping[str, str]],
                 elements_out: list[str] | None = None) -> None:
        self.prev = prev
        self.out: list[str] = []
        self.elements_out = self.out if elements_out is None else elements_out
        self.have = have  # container -> key -> value, as the table holds it during the sync
        self.claimed: dict[str, set[str]] = {n: set() for _, n in ELEMENT_CONTAINERS}
        self.active_chains: set[str] = set()
        self.active_sets: set[str] = set()
        self.rules_after: dict[str, str] = {}
        self.contributions: dict[str, list[_Contribution]] = {}
        self.owner: dict[tuple[str, str], str] = {}  # (container, key) -> "ns/name"
        self.conflict = False  # a key claimed by two services: no incremental syncs then

    def service(self, o: _ServiceObjects, write: bool) -> None:
        """Emit one service port (chains, elements, affinity sets, rules: upstream's order);
        `write` False: only its elements are checked against the table."""
        prev, out = self.prev, self.out
        known_rules = prev.chain_rules
        skip: set[str] = set()
        if write:
            texts: dict[str, list[str]] = {c: [] for c in o.chains}
            for chain, rule in o.rules:
                texts.setdefault(chain, []).append(rule)
            for chain, rules in texts.items():
                text = "\n".join(rules)
                self.rules_after[chain] = text
                known = known_rules.get(chain) if known_rules is not None else None
                if known is not None and chain in prev.chains \
                        and (known == text or known == as_listed(text)):
                    skip.add(chain)
        elif known_rules is not None:
            for chain in o.chains:
                if chain in known_rules:
                    self.rules_after[chain] = known_rules[chain]
        for chain in o.chains:
            if chain in self.active_chains:
                continue
            self.active_chains.add(chain)
            if write and chain not in skip:
                out.append(f"add chain {T} {chain}")
                out.append(f"flush chain {T} {chain}")
        for s, _ in o.affinity_sets:
            self.active_sets.add(s)
        name = o.sp.service_name
        for container, e in o.elements:
            have = self.have[container]
            if self.owner.setdefault((container, e.key), name) != name:
                self.conflict = True
            if e.key in have:
                if have[e.key] != e.value:
                    self.elements_out.append(f"delete element {T} {container} {{ {e.key} }}")
                    self.elements_out.append(_element_text(container, e))
                    have[e.key] = e.value
            else:
                self.elements_out.append(_element_text(container, e))
                have[e.key] = e.value
            self.claimed[container].add(e.key)
        self.contributions.setdefault(name, []).append(_Contribution(
            tuple(o.chains), tuple(s for s, _ in o.affinity_sets),
            tuple((c, e.key, e.value) for c, e in o.elements)))
        if not write:
            return
        for s, timeout in o.affinity_sets:
            out.append(f"add set {T} {s} {{ type ipv4_addr ; flags dynamic,timeout ; "
                       f"timeout {timeout}s ; }}")
        for chain, rule in o.rules:
            if chain not in skip:
                out.append(f"add rule {T} {chain} {rule}")

    def tail(self, stale: Iterable[str], gone_sets: Iterable[str],
             leftover: dict[str, Iterable[str]]) -> None:
        """Stale chains flushed, stale affinity sets and leftover elements deleted."""
        for chain in sorted(stale):
            self.out.append(f"flush chain {T} {chain}")
        for s in sorted(gone_sets):
            self.out.append(f"delete set {T} {s}")
        for _, container in ELEMENT_CONTAINERS:
            for key in sorted(leftover.get(container, ())):
                self.out.append(f"delete element {T} {container} {{ {key} }}")


def render(snapshot: ProxySnapshot, options: NftOptions | None = None, *,
           changed: set[str] | None = None, existing: NftState | None = None) -> NftRender:
    """One sync. `changed` None = full sync; else the "ns/name" of services whose Service or
    endpoints changed (partial sync, needs `existing` with known elements).

    A partial sync whose `existing` came from an earlier render (it knows each service's
    chains and elements) visits only the changed services: the others' part of the table is
    the same by definition of `changed`. Otherwise (and after a conflict: one map key from
    two services) every service is looked at, as a full sync does."""
    opts = options or NftOptions()
    if changed is not None:
        if existing is None or existing.elements is None:
            raise ValueError("a partial sync needs the current elements (existing.elements)")
        if existing.services is not None and existing.context == _context(snapshot, opts):
            r = _render_changed(snapshot, opts, set(changed), existing)
            if r is not None:
                return r
    return _render_scan(snapshot, opts, changed, existing)


def _render_changed(snapshot: ProxySnapshot, opts: NftOptions, changed: set[str],
                    prev: NftState) -> NftRender | None:
    """The partial sync over the changed services only (None: a key conflict; scan)."""
    assert prev.services is not None and prev.elements is not None
    assert prev.owner is not None and prev.unclaimed is not None
    names = {c.partition("/")[2] for c in changed}
    ports = [sp for sp in snapshot.service_ports
             if sp.name in names and sp.service_name in changed]
    overlay: dict[str, dict[str, str]] = {n: {} for _, n in ELEMENT_CONTAINERS}
    have: dict[str, MutableMapping[str, str]] = {
        n: collections.ChainMap(overlay[n], prev.elements.get(n) or {})
        for _, n in ELEMENT_CONTAINERS}
    sync = _Sync(prev, have)
    for sp in ports:
        o = _service_objects(sp, snapshot, opts, with_rules=True)
        for container, e in o.elements:  # a key an unchanged service holds: scan instead
            holder = prev.owner.get((container, e.key))
            if holder is not None and holder not in changed:
                return None
        sync.service(o, write=True)
    if sync.conflict:
        return None
    old = [c for name in changed for c in prev.services.get(name, ())]
    old_chains = {ch for c in old for ch in c.chains}
    stale = (prev.unclaimed | old_chains) - sync.active_chains
    gone_sets = {s for c in old for s in c.sets} - sync.active_sets
    leftover: dict[str, set[str]] = {n: set() for _, n in ELEMENT_CONTAINERS}
    for c in old:
        for container, key, _ in c.elements:
            if key not in sync.claimed[container]:
                leftover[container].add(key)
    sync.tail(stale, gone_sets, leftover)
    text = "\n".join(sync.out) + "\n" if sync.out else ""

    def advance(st: NftState) -> None:
        """`st` (a copy of prev, or prev itself) becomes the table after this sync."""
        assert st.elements is not None and st.services is not None and st.owner is not None
        for n, values in overlay.items():
            st.elements.setdefault(n, {}).update(values)
        for n, keys in leftover.items():
            for key in keys:
                st.elements[n].pop(key, None)
                st.owner.pop((n, key), None)
        st.owner.update(sync.owner)
        st.chains |= sync.active_chains
        st.sets -= gone_sets
        st.sets |= sync.active_sets
        st.unclaimed = set(stale)
        if st.chain_rules is not None:
            for ch in stale:
                st.chain_rules.pop(ch, None)
            st.chain_rules.update(sync.rules_after)
        for name in changed:
            st.services.pop(name, None)
        st.services.update(sync.contributions)

    return NftRender(text, None, set(stale), False, base=prev, advance_fn=advance)


def _render_scan(snapshot: ProxySnapshot, opts: NftOptions, changed: set[str] | None,
                 existing: NftState | None) -> NftRender:
    """Every service looked at: a full sync, or a partial one without a known table."""
    full = changed is None
    prev = existing.copy() if existing is not None else NftState()
    known_elements = prev.elements
    setup: list[str] = []
    if full:
        _setup(setup, snapshot, opts, flush_elements=known_elements is None,
               recreate_base_chains=opts.recreate_base_chains)
    staged = full and len(snapshot.service_ports) > STAGE_SERVICES and not any(
        is_service_chain_name(c) for c in prev.chains)
    current: dict[str, dict[str, str]] = {n: {} for _, n in ELEMENT_CONTAINERS}
    if known_elements is not None:
        for n in current:
            current[n] = dict(known_elements.get(n) or {})
    initial = {n: set(v) for n, v in current.items()}
    # staged: chain lines stay in `out` (cut every STAGE_SERVICES services), elements wait
    sync = _Sync(prev, dict(current), [] if staged else None)
    out = sync.out
    out.extend(setup)
    cuts: list[int] = [len(out)]
    for i, sp in enumerate(snapshot.service_ports):
        if staged and i and i % STAGE_SERVICES == 0:
            cuts.append(len(out))
        write = full or sp.service_name in changed  # type: ignore[operator]
        sync.service(_service_objects(sp, snapshot, opts, with_rules=write), write)

    stages: list[str] = []
    last = 0
    if staged:
        cuts.append(len(out))
        stages = ["\n".join(out[a:b]) + "\n" for a, b in itertools.pairwise([0, *cuts])
                  if b > a]
        out.extend(sync.elements_out)
        last = len(out) - len(sync.elements_out)
    stale = {c for c in prev.chains
             if is_service_chain_name(c) and c not in sync.active_chains}
    gone_sets = {s for s in prev.sets if is_affinity_set_name(s) and s not in sync.active_sets}
    leftover = {n: initial[n] - sync.claimed[n] for n in initial}
    sync.tail(stale, gone_sets, leftover)
    for n, keys in leftover.items():
        for key in keys:
            del current[n][key]

    fixed = {n for n, _, _, _ in BASE_CHAINS} | {d for d, _, _ in JUMP_CHAINS} | {
        SERVICES_CHAIN, CLUSTER_IPS_CHECK, MASQUERADING_CHAIN, MARK_MASQ_CHAIN, REJECT_CHAIN}
    chains = sync.active_chains | stale | (fixed if full else {c for c in prev.chains
                                                               if not is_service_chain_name(c)})
    known_rules = prev.chain_rules
    state = NftState(chains=chains, sets=sync.active_sets | {s for s in prev.sets
                                                             if not is_affinity_set_name(s)},
                     elements=current,
                     chain_rules=sync.rules_after if (known_rules is not None or full) else None)
    if not sync.conflict and state.chain_rules is not None:
        # what the incremental partial syncs need (a conflict: they scan instead)
        state.services = sync.contributions
        state.owner = sync.owner
        state.unclaimed = set(stale)
        state.context = _context(snapshot, opts)
    text = "\n".join(out) + "\n" if out else ""
    if staged:
        stages.append("\n".join(out[last:]) + "\n")
    return NftRender(text, state, stale, full, stages)


def render_full(snapshot: ProxySnapshot, options: NftOptions | None = None, *,
                existing: NftState | None = None) -> str:
    """The transaction of a full sync. `existing`: what the table holds (chains and sets by
    name, for flushing stale service chains and deleting stale affinity sets; elements if
    known, to diff the maps instead of flushing them)."""
    return render(snapshot, options, existing=existing).text


def render_partial(snapshot: ProxySnapshot, changed: set[str], existing: NftState,
                   options: NftOptions | None = None) -> str:
    """A partial sync: chains only for services in `changed` ("ns/name"), element changes
    only, stale service chains flushed, stale affinity sets deleted. A failed partial sync
    must be followed by a full one (the caller's job)."""
    return render(snapshot, options, changed=set(changed), existing=existing).text


def render_delete_chains(chains: set[str]) -> str:
    """The follow-up transaction deleting stale (already flushed) service chains."""
    return "".join(f"delete chain {T} {c}\n" for c in sorted(chains))


def render_cleanup() -> str:
    """Remove everything kube-proxy made (upstream CleanupLeftovers): add+delete the table
    so that the transaction succeeds whether or not the table exists."""
    return f"add table {T}\ndelete table {T}\n"


def as_listed(rules: str) -> str:
    """Rules as `nft list` prints them: its anonymous sets separate elements by ", "."""
    return rules.replace(" , ", ", ")


def parse_listing(text: str) -> NftState:
    """Chain and set names from `nft list table ip kube-proxy`, and the rules of its service
    chains as nft prints them (elements unknown).

    With the rules a restarted kube-proxy's first (full, atomic) sync rewrites only the
    service chains whose rules differ from what it would write: rewriting every one costs
    the kernel an anonymous map per chain, bound by walking the whole transaction
    (quadratic; at 1,000 services 8 s against a 1.5 s first sync). A rule nft prints some
    other way only makes its chain be rewritten."""
    st = NftState(chain_rules={})
    rules: list[str] | None = None
    chain = ""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[-1] == "{" and words[0] in ("chain", "set", "map"):
            (st.chains if words[0] == "chain" else st.sets).add(words[1])
            if words[0] == "chain" and is_service_chain_name(words[1]):
                chain, rules = words[1], []
        elif rules is not None:
            if line.strip() == "}":
                st.chain_rules[chain] = "\n".join(rules)  # type: ignore[index]
                rules = None
            else:
                rules.append(line.strip())
    return st
