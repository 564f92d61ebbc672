"""Pure renderer: ProxySnapshot -> the `iptables-restore` text upstream kube-proxy writes.

Follows kubernetes/kubernetes `pkg/proxy/iptables/proxier.go` (`syncProxyRules`,
`writeServiceToEndpointRules`) line for line: the same chains, the same rule order, the same
argument order and quoting, so that `iptables-save` inside a netsim node looks like a real
node. Differences are deliberate and documented:

- Services are written in sorted svcPortName order (upstream iterates a Go map); stale
  chains to delete are written in sorted order (upstream: set order).
- Topology-aware hints are not modelled (every ready endpoint is a cluster endpoint).
- IPv4 only.

What is *not* in the restore text, because upstream does it out of band:
- the jump rules from the built-in chains (`iptables -I`), see `jump_rules()`;
- the empty KUBE-PROXY-CANARY chains (created by `ipt.Monitor` with `iptables -N`), see
  `CANARY_CHAINS`;
- nfacct counters (created over netlink before rules may reference them), see
  `NFACCT_COUNTERS` and `RenderOptions.nfacct`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from netsim.proxy.model import (
    ProxySnapshot,
    ServicePort,
    categorize_endpoints,
    safe_comment,
)

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBELET_FIREWALL = "KUBE-FIREWALL"

SVC_PREFIX = "KUBE-SVC-"
SVL_PREFIX = "KUBE-SVL-"
FW_PREFIX = "KUBE-FW-"
EXT_PREFIX = "KUBE-EXT-"
SEP_PREFIX = "KUBE-SEP-"
SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SVL_PREFIX, SEP_PREFIX, FW_PREFIX, EXT_PREFIX)

# Above this many endpoints (summed over all service ports) upstream drops the per-rule
# comments on SVC->SEP and SEP rules ("large cluster mode").
LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000

NFACCT_CT_STATE_INVALID = "ct_state_invalid_dropped_pkts"
NFACCT_LOCALHOST_NODEPORT = "localhost_nps_accepted_pkts"
NFACCT_COUNTERS = (NFACCT_CT_STATE_INVALID, NFACCT_LOCALHOST_NODEPORT)

# ipt.Monitor creates these empty chains; if one disappears, someone flushed iptables and
# kube-proxy does a full resync.
CANARY_CHAINS: tuple[tuple[str, str], ...] = (
    ("mangle", KUBE_PROXY_CANARY),
    ("nat", KUBE_PROXY_CANARY),
    ("filter", KUBE_PROXY_CANARY),
)

_NEW = ("-m", "conntrack", "--ctstate", "NEW")

# upstream iptablesJumpChains + iptablesKubeletJumpChains:
# (table, dstChain, srcChain, comment, extraArgs)
_JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", KUBE_EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports", ()),
    ("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    ("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", KUBE_PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
    ("filter", KUBELET_FIREWALL, "INPUT", "", ()),
    ("filter", KUBELET_FIREWALL, "OUTPUT", "", ()),
)


@dataclass(frozen=True)
class RenderOptions:
    """kube-proxy flags and host capabilities that change the rendered text.

    Defaults are upstream's defaults for a real node, except `nfacct`: upstream only writes
    `-m nfacct` matches once the counters exist, and creating them is the applier's job, so it
    is opt-in. Upstream's unit tests use `random_fully=False, nfacct=True`.
    """

    masquerade_mark: str = "0x4000"  # --iptables-masquerade-bit=14
    masquerade_all: bool = False
    localhost_nodeports: bool = True  # --iptables-localhost-nodeports
    random_fully: bool = True  # iptables >= 1.6.2 supports MASQUERADE --random-fully
    nfacct: bool = False
    conntrack_tcp_be_liberal: bool = False  # nf_conntrack_tcp_be_liberal=1 drops the INVALID rule
    nodeport_addresses: tuple[str, ...] = ()  # --nodeport-addresses CIDRs; () = all local IPs


# --- chain names --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 17)
def _hash16(s: str) -> str:
    """Cached: upstream computes a service port's chain names once, when it changes
    (servicePortInfo), not on every sync; here they were a third of a full sync's CPU."""
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """portProtoHash: base32(sha256(svcPortName + protocol))[:16], protocol lower-case."""
    return _hash16(service_port_name + protocol)


def service_port_chain_name(service_port_name: str, protocol: str) -> str:
    """KUBE-SVC-: the Cluster-policy dispatch chain."""
    return SVC_PREFIX + port_proto_hash(service_port_name, protocol)


def service_local_chain_name(service_port_name: str, protocol: str) -> str:
    """KUBE-SVL-: the Local-policy dispatch chain (local endpoints only)."""
    return SVL_PREFIX + port_proto_hash(service_port_name, protocol)


def service_firewall_chain_name(service_port_name: str, protocol: str) -> str:
    """KUBE-FW-: loadBalancerSourceRanges filtering."""
    return FW_PREFIX + port_proto_hash(service_port_name, protocol)


def service_external_chain_name(service_port_name: str, protocol: str) -> str:
    """KUBE-EXT-: entry for NodePort / external IP / LB traffic."""
    return EXT_PREFIX + port_proto_hash(service_port_name, protocol)


def endpoint_chain_name(service_port_name: str, protocol: str, endpoint: str) -> str:
    """KUBE-SEP-: base32(sha256(svcPortName + protocol + "ip:port"))[:16]."""
    return SEP_PREFIX + _hash16(service_port_name + protocol + endpoint)


def is_service_chain_name(chain: str) -> bool:
    """True for per-service chains kube-proxy owns (and may delete when stale)."""
    return chain.startswith(SERVICE_CHAIN_PREFIXES)


def compute_probability(n: int) -> str:
    """Go's fmt.Sprintf("%0.10f", 1.0/float64(n))."""
    return f"{1.0 / n:.10f}"


# --- jump rules ---------------------------------------------------------------------------

def jump_rules() -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, rule args) that upstream ensures with `iptables -I` before a
    full sync; they are not part of the restore text. Args are ready for
    `iptables -t TABLE -I CHAIN *args` (comment unquoted: argv, not restore syntax)."""
    out: list[tuple[str, str, list[str]]] = []
    for table, dst, src, comment, extra in _JUMP_CHAINS:
        args = list(extra)
        if comment:
            args += ["-m", "comment", "--comment", comment]
        args += ["-j", dst]
        out.append((table, src, args))
    return out


# --- rendering ----------------------------------------------------------------------------

def _q(text: str) -> str:
    """A quoted `--comment` argument (xt_comment holds at most 255 bytes)."""
    return f'"{safe_comment(text, 255)}"'


_BARE_OK = re.compile(r"[A-Za-z0-9./:_-]+")


def _bare(text: str) -> str:
    """A `--comment` argument written bare as upstream does (`ns/svc:port`), quoted if it
    holds anything else."""
    return text if _BARE_OK.fullmatch(text) and len(text) <= 255 else _q(text)


class _Buffers:
    def __init__(self) -> None:
        self.filter_chains: list[str] = []
        self.filter_rules: list[str] = []
        self.nat_chains: list[str] = []
        self.nat_rules: list[str] = []


class RenderCache:
    """What a full render wrote for each service port, for the next full render: a periodic
    or forced full sync of a snapshot whose Services did not change renders each of them
    again to the same lines (the snapshot reuses unchanged ServicePort objects, and they are
    frozen). Keyed by the object and everything else its lines depend on; each render keeps
    only the entries it used. Owned by one syncer (not shared between threads)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple] = {}
        self._ctx: tuple | None = None

    def begin(self, ctx: tuple) -> None:
        """A render in context `ctx` (options, cluster CIDR, ...): other contexts' lines go."""
        if ctx != self._ctx:
            self._entries, self._ctx = {}, ctx

    def get(self, sp: ServicePort) -> tuple | None:
        hit = self._entries.get(id(sp))
        return hit[1] if hit is not None and hit[0] is sp else None

    def keep(self, used: dict[int, tuple]) -> None:
        self._entries = used


def _chain_line(chain: str) -> str:
    return f":{chain} - [0:0]"


@dataclass
class RenderedChains:
    """The nat chains a restore text declares and the ones it deletes (`-X`), as the
    renderer wrote them: the syncer's record of the table without parsing megabytes of its
    own text again (that parse was ~7% of a full sync at 5,000 services)."""

    declared: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)


def _render(
    snapshot: ProxySnapshot,
    opts: RenderOptions,
    changed: set[str] | None,
    existing_chains: set[str] | None,
    chains: RenderedChains | None = None,
    cache: RenderCache | None = None,
) -> str:
    b = _Buffers()
    mark = opts.masquerade_mark
    for c in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL):
        b.filter_chains.append(_chain_line(c))
    for c in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        b.nat_chains.append(_chain_line(c))

    b.nat_rules.append(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    b.nat_rules.append(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    masq = f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
    if opts.random_fully:
        masq += " --random-fully"
    b.nat_rules.append(masq)
    b.nat_rules.append(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")

    if opts.localhost_nodeports:
        b.filter_chains.append(_chain_line(KUBELET_FIREWALL))
        b.filter_rules.append(
            f'-A {KUBELET_FIREWALL} -m comment --comment "block incoming localnet connections" '
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )

    active_nat: set[str] = set()
    total_endpoints = sum(len(sp.endpoints) for sp in snapshot.service_ports)
    large = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
    cidr = snapshot.cluster_cidr

    if cache is None or changed is not None:
        for sp in snapshot.service_ports:
            _render_service_port(b, sp, snapshot, opts, cidr, large, changed, active_nat)
    else:
        _render_service_ports_cached(b, snapshot, opts, cidr, large, active_nat, cache)

    if existing_chains:
        for chain in sorted(existing_chains - active_nat):
            if not is_service_chain_name(chain):
                continue  # not ours
            b.nat_chains.append(_chain_line(chain))
            b.nat_rules.append(f"-X {chain}")
            if chains is not None:
                chains.deleted.add(chain)

    tail = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    if not opts.nodeport_addresses:
        dest = "-m addrtype --dst-type LOCAL"
        if not opts.localhost_nodeports:
            dest += " ! -d 127.0.0.0/8"
        b.nat_rules.append(f"-A {KUBE_SERVICES} {tail} {dest} -j {KUBE_NODEPORTS}")
    else:
        nets = [ipaddress.ip_network(c, strict=False) for c in opts.nodeport_addresses]
        for ip in snapshot.node_ips:
            addr = ipaddress.ip_address(ip)
            if addr.version != 4 or not any(addr in n for n in nets):
                continue
            if addr.is_loopback and not opts.localhost_nodeports:
                continue
            b.nat_rules.append(f"-A {KUBE_SERVICES} {tail} -d {ip} -j {KUBE_NODEPORTS}")

    if not opts.conntrack_tcp_be_liberal:
        rule = f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID"
        if opts.nfacct:
            rule += f" -m nfacct --nfacct-name {NFACCT_CT_STATE_INVALID}"
        b.filter_rules.append(rule + " -j DROP")
    b.filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {mark}/{mark} -j ACCEPT"
    )
    b.filter_rules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )

    if chains is not None:  # ":NAME - [0:0]"
        chains.declared.update(line[1:-8] for line in b.nat_chains)
    lines = ["*filter", *b.filter_chains, *b.filter_rules, "COMMIT",
             "*nat", *b.nat_chains, *b.nat_rules, "COMMIT"]
    return "\n".join(lines) + "\n"


def _render_service_ports_cached(b: _Buffers, snapshot: ProxySnapshot, opts: RenderOptions,
                                 cidr: str, large: bool, active_nat: set[str],
                                 cache: RenderCache) -> None:
    """A full render's service ports, each one's lines taken from `cache` when the same
    object was rendered in the same context before: the same text as rendering it again."""
    cache.begin((opts, cidr, large, snapshot.node_ip))
    used: dict[int, tuple] = {}
    for sp in snapshot.service_ports:
        out = cache.get(sp)
        if out is None:
            one, act = _Buffers(), set()
            _render_service_port(one, sp, snapshot, opts, cidr, large, None, act)
            out = (one.filter_chains, one.filter_rules, one.nat_chains, one.nat_rules, act)
        used[id(sp)] = (sp, out)
        b.filter_chains += out[0]
        b.filter_rules += out[1]
        b.nat_chains += out[2]
        b.nat_rules += out[3]
        active_nat |= out[4]
    cache.keep(used)


def _render_service_port(
    b: _Buffers,
    sp: ServicePort,
    snapshot: ProxySnapshot,
    opts: RenderOptions,
    cidr: str,
    large: bool,
    changed: set[str] | None,
    active_nat: set[str],
) -> None:
    proto = sp.proto
    name = sp.name_string
    cat = categorize_endpoints(sp)
    has_endpoints = cat.has_any

    cluster_chain = service_port_chain_name(name, proto)
    local_chain = service_local_chain_name(name, proto)
    ext_chain = service_external_chain_name(name, proto)
    fw_chain = service_firewall_chain_name(name, proto)
    uses_cluster_chain = bool(cat.cluster) and sp.uses_cluster_endpoints
    uses_local_chain = bool(cat.local) and sp.uses_local_endpoints

    internal_chain = cluster_chain
    has_internal = has_endpoints
    if sp.internal_policy_local:
        internal_chain = local_chain
        if not cat.local:
            has_internal = False
    external_policy_chain = cluster_chain
    has_external = has_endpoints
    if sp.external_policy_local:
        external_policy_chain = local_chain
        if not cat.local:
            has_external = False
    uses_ext_chain = has_endpoints and sp.externally_accessible
    lb_chain = ext_chain
    uses_fw = has_endpoints and bool(sp.load_balancer_vips) and bool(sp.load_balancer_source_ranges)
    if uses_fw:
        lb_chain = fw_chain

    int_target = int_comment = ext_target = ext_comment = ""
    if not has_endpoints:
        int_target = ext_target = "REJECT"
        int_comment = ext_comment = _q(f"{name} has no endpoints")
    else:
        if not has_internal:
            int_target, int_comment = "DROP", _q(f"{name} has no local endpoints")
        if not has_external:
            ext_target, ext_comment = "DROP", _q(f"{name} has no local endpoints")

    mp = f"-m {proto} -p {proto}"
    fr = b.filter_rules
    nr_top = b.nat_rules  # KUBE-SERVICES / KUBE-NODEPORTS rules are always written

    # Capture the clusterIP.
    if has_internal:
        nr_top.append(
            f"-A {KUBE_SERVICES} -m comment --comment {_q(name + ' cluster IP')} {mp} "
            f"-d {sp.cluster_ip} --dport {sp.port} -j {internal_chain}"
        )
    else:
        fr.append(
            f"-A {KUBE_SERVICES} -m comment --comment {int_comment} {mp} "
            f"-d {sp.cluster_ip} --dport {sp.port} -j {int_target}"
        )

    # Capture externalIPs.
    for eip in sp.external_ips:
        if has_endpoints:
            nr_top.append(
                f"-A {KUBE_SERVICES} -m comment --comment {_q(name + ' external IP')} {mp} "
                f"-d {eip} --dport {sp.port} -j {ext_chain}"
            )
        if not has_external:
            fr.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {mp} "
                f"-d {eip} --dport {sp.port} -j {ext_target}"
            )

    # Capture load-balancer ingress.
    for lbip in sp.load_balancer_vips:
        if has_endpoints:
            nr_top.append(
                f"-A {KUBE_SERVICES} -m comment --comment {_q(name + ' loadbalancer IP')} {mp} "
                f"-d {lbip} --dport {sp.port} -j {lb_chain}"
            )
        if uses_fw:
            fr.append(
                f"-A {KUBE_PROXY_FIREWALL} -m comment --comment "
                f"{_q(f'{name} traffic not accepted by {fw_chain}')} {mp} "
                f"-d {lbip} --dport {sp.port} -j DROP"
            )
    if not has_external:
        for lbip in sp.load_balancer_vips:
            fr.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {mp} "
                f"-d {lbip} --dport {sp.port} -j {ext_target}"
            )

    # Capture nodeports.
    if sp.node_port:
        if has_endpoints:
            if opts.localhost_nodeports and opts.nfacct:
                nr_top.append(
                    f"-A {KUBE_NODEPORTS} -m comment --comment {_bare(name)} {mp} -d 127.0.0.0/8 "
                    f"--dport {sp.node_port} -m nfacct --nfacct-name {NFACCT_LOCALHOST_NODEPORT} "
                    f"-j {ext_chain}"
                )
            nr_top.append(
                f"-A {KUBE_NODEPORTS} -m comment --comment {_bare(name)} {mp} "
                f"--dport {sp.node_port} -j {ext_chain}"
            )
        if not has_external:
            fr.append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} "
                f"-m addrtype --dst-type LOCAL {mp} --dport {sp.node_port} -j {ext_target}"
            )

    # Capture healthCheckNodePorts.
    if sp.health_check_node_port:
        fr.append(
            f"-A {KUBE_NODEPORTS} -m comment --comment {_q(name + ' health check node port')} "
            f"-m tcp -p tcp --dport {sp.health_check_node_port} -j ACCEPT"
        )

    # Per-service chains: skipped in a partial sync unless this service changed (but still
    # counted as active, so they are not deleted as stale).
    write = changed is None or sp.service_name in changed
    nat_chains: list[str] = b.nat_chains if write else []
    nat_rules: list[str] = b.nat_rules if write else []

    if has_internal:
        args = (f"-m comment --comment {_q(name + ' cluster IP')} {mp} "
                f"-d {sp.cluster_ip} --dport {sp.port}")
        if opts.masquerade_all:
            nat_rules.append(f"-A {internal_chain} {args} -j {KUBE_MARK_MASQ}")
        elif cidr:
            nat_rules.append(f"-A {internal_chain} {args} ! -s {cidr} -j {KUBE_MARK_MASQ}")

    if uses_ext_chain:
        nat_chains.append(_chain_line(ext_chain))
        active_nat.add(ext_chain)
        if not sp.external_policy_local:
            nat_rules.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_q(f'masquerade traffic for {name} external destinations')} -j {KUBE_MARK_MASQ}"
            )
        else:
            if cidr:
                nat_rules.append(
                    f"-A {ext_chain} -m comment --comment "
                    f"{_q(f'pod traffic for {name} external destinations')} -s {cidr} -j {cluster_chain}"
                )
            nat_rules.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_q(f'masquerade LOCAL traffic for {name} external destinations')} "
                f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
            )
            nat_rules.append(
                f"-A {ext_chain} -m comment --comment "
                f"{_q(f'route LOCAL traffic for {name} external destinations')} "
                f"-m addrtype --src-type LOCAL -j {cluster_chain}"
            )
        if has_external:
            nat_rules.append(f"-A {ext_chain} -j {external_policy_chain}")

    if uses_fw:
        nat_chains.append(_chain_line(fw_chain))
        active_nat.add(fw_chain)
        args = f"-A {fw_chain} -m comment --comment {_q(name + ' loadbalancer IP')}"
        allow_from_node = False
        node_ip = ipaddress.ip_address(snapshot.node_ip) if snapshot.node_ip else None
        for rng in sp.load_balancer_source_ranges:
            nat_rules.append(f"{args} -s {rng} -j {ext_chain}")
            if node_ip is not None and node_ip in ipaddress.ip_network(rng):
                allow_from_node = True
        if allow_from_node:
            for lbip in sp.load_balancer_vips:
                nat_rules.append(f"{args} -s {lbip} -j {ext_chain}")
        nat_rules.append(
            f"-A {fw_chain} -m comment --comment "
            f"{_q(f'other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL')}"
        )

    if uses_cluster_chain:
        nat_chains.append(_chain_line(cluster_chain))
        active_nat.add(cluster_chain)
        _write_service_to_endpoint_rules(nat_rules, sp, cluster_chain, cat.cluster, large)
    if uses_local_chain:
        nat_chains.append(_chain_line(local_chain))
        active_nat.add(local_chain)
        _write_service_to_endpoint_rules(nat_rules, sp, local_chain, cat.local, large)

    for ep in cat.all_reachable:
        sep = endpoint_chain_name(name, proto, ep.endpoint)
        nat_chains.append(_chain_line(sep))
        active_nat.add(sep)
        head = f"-A {sep}" if large else f"-A {sep} -m comment --comment {_bare(name)}"
        nat_rules.append(f"{head} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        affinity = f" -m recent --name {sep} --set" if sp.session_affinity_client_ip else ""
        nat_rules.append(f"{head}{affinity} {mp} -j DNAT --to-destination {ep.endpoint}")


def _write_service_to_endpoint_rules(nat_rules: list[str], sp: ServicePort, chain: str,
                                     endpoints, large: bool) -> None:
    """Session-affinity `recent` checks first, then the statistic load-balancing ladder."""
    name, proto = sp.name_string, sp.proto

    def head(ep) -> str:
        if large:
            return f"-A {chain}"
        return f"-A {chain} -m comment --comment {_q(f'{name} -> {ep.endpoint}')}"

    if sp.session_affinity_client_ip:
        for ep in endpoints:
            sep = endpoint_chain_name(name, proto, ep.endpoint)
            nat_rules.append(
                f"{head(ep)} -m recent --name {sep} --rcheck --seconds "
                f"{sp.sticky_max_age_seconds} --reap -j {sep}"
            )
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        sep = endpoint_chain_name(name, proto, ep.endpoint)
        if i < n - 1:
            nat_rules.append(
                f"{head(ep)} -m statistic --mode random --probability {compute_probability(n - i)} -j {sep}"
            )
        else:
            nat_rules.append(f"{head(ep)} -j {sep}")


def render_full(snapshot: ProxySnapshot, options: RenderOptions | None = None, *,
                existing_chains: set[str] | None = None,
                chains: RenderedChains | None = None,
                cache: RenderCache | None = None) -> str:
    """The complete restore text of a full sync (`iptables-restore --noflush --counters`).

    `existing_chains`: nat chains found by iptables-save; stale KUBE-SVC/SVL/EXT/FW/SEP ones
    among them are flushed and deleted, as upstream does on every (full or partial) sync.
    `chains` (optional) is filled with the nat chains the text declares and deletes;
    `cache` (optional) holds each service port's lines from the previous full render."""
    return _render(snapshot, options or RenderOptions(), None, existing_chains, chains, cache)


def render_partial(snapshot: ProxySnapshot, changed: set[str], existing_chains: set[str],
                   options: RenderOptions | None = None, *,
                   chains: RenderedChains | None = None) -> str:
    """A partial sync (KEP-3453): the top-level chains (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES,
    KUBE-NODEPORTS, KUBE-FORWARD, ...) are rewritten in full; per-service chains only for the
    services in `changed` ("ns/name"); chains in `existing_chains` that no service needs any
    more are declared and `-X`'d. If restoring this fails, the caller must do a full sync."""
    return _render(snapshot, options or RenderOptions(), set(changed), existing_chains, chains)


_TABLE_HEADER = re.compile(r"^\*(\S+)", re.M)
_CHAIN_DECL = re.compile(r"^:(\S+)", re.M)


def parse_chains(restore_or_save_text: str, table: str = "nat") -> set[str]:
    """Chain names declared (`:NAME ...`) in one table of iptables-save/restore text — what
    upstream's GetChainsFromTable reads to find stale chains. (Regexes over the text: a
    line-by-line loop was a fifth of a full sync's own CPU at 1,000 services.)"""
    chains: set[str] = set()
    heads = list(_TABLE_HEADER.finditer(restore_or_save_text))
    for i, m in enumerate(heads):
        if m.group(1) == table:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(restore_or_save_text)
            chains.update(_CHAIN_DECL.findall(restore_or_save_text, m.end(), end))
    return chains
