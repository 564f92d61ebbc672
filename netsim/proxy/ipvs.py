"""Pure renderer: ProxySnapshot -> what upstream kube-proxy's IPVS mode programs.

Follows kubernetes/kubernetes `pkg/proxy/ipvs/proxier.go` (`syncProxyRules`,
`writeIptablesRules`, `syncEndpoint`) and `ipset.go`. One render gives four things, all data
(no kernel access):

- the IPVS virtual servers: one per ClusterIP:port, externalIP:port, LB VIP:port and
  NodeIP:NodePort, scheduler `rr` by default, ClientIP affinity as persistence (`-p T`),
  every real server weight 1 (`ipvsadm_text()` is the `ipvsadm -R` / `ipvsadm -Sn` form);
- the ipsets (KUBE-CLUSTER-IP hash:ip,port, KUBE-LOOP-BACK hash:ip,port,ip,
  KUBE-NODE-PORT-TCP bitmap:port, ...; `ipset_text()` is `ipset restore` input);
- the iptables rules, whose count does not grow with the number of services: every match
  is `-m set --match-set` (`iptables` field, `iptables-restore --noflush` input);
- the addresses to bind on the dummy device `kube-ipvs0` (ClusterIPs, and externalIPs /
  LB VIPs that are not already a node address).

Deliberate differences from upstream, documented:
- Services are written in sorted svcPortName order (upstream iterates a Go map); ipset
  entries and bound addresses are sorted.
- NodePort virtual servers are made for the node IPs given (`IpvsOptions.node_ips`, default
  the snapshot's node IPs); upstream lists every local address not on kube-ipvs0 — the
  applier passes exactly that list.
- Removed real servers are deleted at once (upstream first sets weight 0 and deletes them
  when their connections are gone: the graceful-termination manager).
- IPv4 only; the `mh` scheduler's flags are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.proxy.model import ProxySnapshot, ServicePort, categorize_endpoints

DUMMY_DEVICE = "kube-ipvs0"
DEFAULT_SCHEDULER = "rr"

# chains (upstream constants)
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_SOURCE_RANGES_FIREWALL = "KUBE-SOURCE-RANGES-FIREWALL"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_NODE_PORT = "KUBE-NODE-PORT"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_LOAD_BALANCER = "KUBE-LOAD-BALANCER"
KUBE_IPVS_FILTER = "KUBE-IPVS-FILTER"
KUBE_IPVS_OUT_FILTER = "KUBE-IPVS-OUT-FILTER"

# ipsets (ipset.go): name -> (type, comment)
LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP = "hash:ip"
HASH_IP_PORT = "hash:ip,port"
HASH_IP_PORT_IP = "hash:ip,port,ip"
HASH_IP_PORT_NET = "hash:ip,port,net"
BITMAP_PORT = "bitmap:port"

# upstream ipsetInfo, in its order
IPSET_INFO: tuple[tuple[str, str, str], ...] = (
    (LOOP_BACK, HASH_IP_PORT_IP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (EXTERNAL_IP, HASH_IP_PORT, "Kubernetes service external ip + port for masquerade and filter purpose"),
    (EXTERNAL_IP_LOCAL, HASH_IP_PORT, "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (LOAD_BALANCER_FW, HASH_IP_PORT, "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    (LOAD_BALANCER_LOCAL, HASH_IP_PORT, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER_SOURCE_IP, HASH_IP_PORT_IP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    (LOAD_BALANCER_SOURCE_CIDR, HASH_IP_PORT_NET, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (NODE_PORT_LOCAL_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (NODE_PORT_LOCAL_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (NODE_PORT_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    (NODE_PORT_LOCAL_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
)
_IPSET_TYPE = {name: typ for name, typ, _ in IPSET_INFO}
_IPSET_COMMENT = {name: comment for name, _, comment in IPSET_INFO}

# upstream ipsetWithIptablesChain: (set, table, from chain, to, match type, protocol match).
# The Local node-port sets must come before the plain ones.
IPSET_WITH_IPTABLES_CHAIN: tuple[tuple[str, str, str, str, str, str], ...] = (
    (LOOP_BACK, "nat", KUBE_POSTROUTING, "MASQUERADE", "dst,dst,src", ""),
    (LOAD_BALANCER, "nat", KUBE_SERVICES, KUBE_LOAD_BALANCER, "dst,dst", ""),
    (LOAD_BALANCER_LOCAL, "nat", KUBE_LOAD_BALANCER, "RETURN", "dst,dst", ""),
    (NODE_PORT_LOCAL_TCP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "tcp"),
    (NODE_PORT_TCP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "tcp"),
    (NODE_PORT_LOCAL_UDP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "udp"),
    (NODE_PORT_UDP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "udp"),
    (NODE_PORT_LOCAL_SCTP, "nat", KUBE_NODE_PORT, "RETURN", "dst,dst", "sctp"),
    (NODE_PORT_SCTP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst,dst", "sctp"),
    (LOAD_BALANCER_FW, "filter", KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL, "dst,dst", ""),
    (LOAD_BALANCER_SOURCE_CIDR, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
    (LOAD_BALANCER_SOURCE_IP, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
)

# upstream iptablesChains (declared, so flushed, by every restore)
IPTABLES_CHAINS: tuple[tuple[str, str], ...] = (
    ("nat", KUBE_SERVICES),
    ("nat", KUBE_POSTROUTING),
    ("nat", KUBE_NODE_PORT),
    ("nat", KUBE_LOAD_BALANCER),
    ("nat", KUBE_MARK_MASQ),
    ("filter", KUBE_FORWARD),
    ("filter", KUBE_NODE_PORT),
    ("filter", KUBE_PROXY_FIREWALL),
    ("filter", KUBE_SOURCE_RANGES_FIREWALL),
    ("filter", KUBE_IPVS_FILTER),
    ("filter", KUBE_IPVS_OUT_FILTER),
)

# upstream iptablesJumpChain: (table, from, to, comment) — ensured with -C/-I, out of band
IPTABLES_JUMP_CHAINS: tuple[tuple[str, str, str, str], ...] = (
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    ("filter", "INPUT", KUBE_NODE_PORT, "kubernetes health check rules"),
    ("filter", "INPUT", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "INPUT", KUBE_IPVS_FILTER, "kubernetes ipvs access filter"),
    ("filter", "OUTPUT", KUBE_IPVS_OUT_FILTER, "kubernetes ipvs access filter"),
)

# sysctls the IPVS proxier sets (NewProxier); arp_* as with --ipvs-strict-arp
SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.vs.conntrack", "1"),
    ("net.ipv4.vs.expire_nodest_conn", "1"),
    ("net.ipv4.vs.expire_quiescent_template", "1"),
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
)

_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


def jump_rules() -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, argv) for `iptables -t T -I CHAIN *argv` (comment unquoted)."""
    return [(t, src, ["-m", "comment", "--comment", c, "-j", dst])
            for t, src, dst, c in IPTABLES_JUMP_CHAINS]


# --- data -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RealServer:
    """One IPVS destination (masquerading, i.e. NAT forwarding, as kube-proxy uses)."""

    ip: str
    port: int
    weight: int = 1

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    """One IPVS service. `persistent` is the ClientIP affinity timeout (0: none)."""

    protocol: str  # TCP | UDP | SCTP
    ip: str
    port: int
    scheduler: str = DEFAULT_SCHEDULER
    persistent: int = 0
    real_servers: tuple[RealServer, ...] = ()
    service: str = ""  # svcPortName, for humans and logs
    bind: bool = False  # address goes on kube-ipvs0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol, self.ip, self.port)

    @property
    def address(self) -> str:
        """`-t 10.96.0.1:443` as ipvsadm names the service."""
        return f"{_PROTO_FLAG[self.protocol]} {self.ip}:{self.port}"

    def service_args(self) -> str:
        """The `-A` arguments after the address, as `ipvsadm -Sn` prints them."""
        s = f"-s {self.scheduler}"
        if self.persistent:
            s += f" -p {self.persistent}"
        return s

    def __str__(self) -> str:  # upstream VirtualServer.String(): "ip:port/proto"
        return f"{self.ip}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class IPSet:
    name: str
    type: str
    comment: str
    entries: tuple[str, ...] = ()

    def create_line(self, name: str | None = None) -> str:
        """upstream ipset createSet arguments (hash sets: family/hashsize/maxelem; bitmap:
        the port range)."""
        args = f"create {name or self.name} {self.type}"
        if self.type == BITMAP_PORT:
            args += " range 0-65535"
        else:
            args += " family inet hashsize 1024 maxelem 65536"
        return args


@dataclass(frozen=True)
class IpvsOptions:
    scheduler: str = DEFAULT_SCHEDULER
    masquerade_bit: int = 14
    masquerade_all: bool = False
    random_fully: bool = True
    node_ips: tuple[str, ...] | None = None  # NodePort addresses; None: snapshot.node_ips

    @property
    def masquerade_mark(self) -> str:
        return f"{1 << self.masquerade_bit:#08x}"  # upstream "%#08x": 0x004000


@dataclass
class IpvsRender:
    virtual_servers: list[VirtualServer] = field(default_factory=list)
    ipsets: dict[str, IPSet] = field(default_factory=dict)
    bind_addresses: list[str] = field(default_factory=list)
    iptables: str = ""

    def virtual_server(self, protocol: str, ip: str, port: int) -> VirtualServer | None:
        return next((v for v in self.virtual_servers if v.key == (protocol, ip, port)), None)

    def ipvsadm_text(self) -> str:
        return ipvsadm_text(self.virtual_servers)

    def ipset_text(self, swap: bool = False) -> str:
        return ipset_text(self.ipsets.values(), swap=swap)


# --- entry strings (upstream utilipset Entry.String()) -----------------------------------

def entry_ip_port(ip: str, proto: str, port: int) -> str:
    return f"{ip},{proto}:{port}"


def entry_ip_port_ip(ip: str, proto: str, port: int, ip2: str) -> str:
    return f"{ip},{proto}:{port},{ip2}"


def entry_ip_port_net(ip: str, proto: str, port: int, net: str) -> str:
    return f"{ip},{proto}:{port},{net}"


# --- rendering ----------------------------------------------------------------------------

def _endpoints_for(sp: ServicePort, only_node_local: bool) -> tuple[RealServer, ...]:
    """upstream syncEndpoint's choice: Local policy -> the local endpoints, or (PR 97081)
    the cluster ones when there are none; otherwise the cluster endpoints."""
    cat = categorize_endpoints(sp)
    eps = (cat.local or cat.cluster) if only_node_local else cat.cluster
    uniq = sorted({e.endpoint: e for e in eps}.values(), key=lambda e: e.endpoint)
    return tuple(RealServer(e.ip, e.port) for e in uniq)


def render(snapshot: ProxySnapshot, options: IpvsOptions | None = None) -> IpvsRender:
    """The whole desired IPVS-mode state for one node (upstream syncProxyRules)."""
    opts = options or IpvsOptions()
    node_ips = tuple(opts.node_ips if opts.node_ips is not None else snapshot.node_ips)
    node_addr_set = set(node_ips)
    active: dict[str, set[str]] = {name: set() for name, _, _ in IPSET_INFO}
    vss: list[VirtualServer] = []
    bind: set[str] = set()
    no_node_access: list[tuple[str, str, int]] = []

    def vs(sp: ServicePort, ip: str, port: int, only_local: bool, bind_addr: bool) -> None:
        vss.append(VirtualServer(
            protocol=sp.protocol, ip=ip, port=port, scheduler=opts.scheduler,
            persistent=sp.sticky_max_age_seconds if sp.session_affinity_client_ip else 0,
            real_servers=_endpoints_for(sp, only_local), service=sp.name_string,
            bind=bind_addr))
        if bind_addr:
            bind.add(ip)

    for sp in snapshot.service_ports:
        proto = sp.proto
        # hairpin: local endpoints (ready or not, as upstream's endpointsMap) in LOOP-BACK
        for e in sp.endpoints:
            if e.is_local:
                active[LOOP_BACK].add(entry_ip_port_ip(e.ip, proto, e.port, e.ip))
        active[CLUSTER_IP].add(entry_ip_port(sp.cluster_ip, proto, sp.port))
        vs(sp, sp.cluster_ip, sp.port, sp.internal_policy_local, True)

        for ext in sp.external_ips:
            entry = entry_ip_port(ext, proto, sp.port)
            active[EXTERNAL_IP_LOCAL if sp.external_policy_local else EXTERNAL_IP].add(entry)
            vs(sp, ext, sp.port, sp.external_policy_local, ext not in node_addr_set)

        for vip in sp.load_balancer_vips:
            entry = entry_ip_port(vip, proto, sp.port)
            active[LOAD_BALANCER].add(entry)
            if sp.external_policy_local:
                active[LOAD_BALANCER_LOCAL].add(entry)
            if sp.load_balancer_source_ranges:
                active[LOAD_BALANCER_FW].add(entry)
                allow_from_node = False
                for cidr in sp.load_balancer_source_ranges:
                    active[LOAD_BALANCER_SOURCE_CIDR].add(entry_ip_port_net(vip, proto, sp.port, cidr))
                    if snapshot.node_ip and _in_cidr(snapshot.node_ip, cidr):
                        allow_from_node = True
                if allow_from_node:
                    active[LOAD_BALANCER_SOURCE_IP].add(entry_ip_port_ip(vip, proto, sp.port, vip))
                else:
                    no_node_access.append((vip, proto, sp.port))
            vs(sp, vip, sp.port, sp.external_policy_local, vip not in node_addr_set)

        if sp.node_port and node_ips:
            if proto == "sctp":
                entries = [entry_ip_port(ip, proto, sp.node_port) for ip in node_ips]
                plain, local = NODE_PORT_SCTP, NODE_PORT_LOCAL_SCTP
            else:
                entries = [str(sp.node_port)]
                plain, local = ((NODE_PORT_TCP, NODE_PORT_LOCAL_TCP) if proto == "tcp"
                                else (NODE_PORT_UDP, NODE_PORT_LOCAL_UDP))
            active[plain].update(entries)
            if sp.external_policy_local:
                active[local].update(entries)
            for ip in node_ips:
                vs(sp, ip, sp.node_port, sp.external_policy_local, False)

        if sp.health_check_node_port:
            active[HEALTH_CHECK_NODE_PORT].add(str(sp.health_check_node_port))

    active[IPVS_IPS] = set(bind)
    ipsets = {name: IPSet(name, typ, comment, tuple(sorted(active[name], key=_entry_sort_key)))
              for name, typ, comment in IPSET_INFO}
    return IpvsRender(
        virtual_servers=vss,
        ipsets=ipsets,
        bind_addresses=sorted(bind, key=_ip_key),
        iptables=_iptables(snapshot, ipsets, no_node_access, opts),
    )


def _ip_key(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in ip.split("."))
    except ValueError:
        return (1 << 16,)


def _entry_sort_key(entry: str):
    if entry.isdigit():
        return (0, int(entry), entry)
    return (1, _ip_key(entry.split(",")[0]), entry)


def _in_cidr(ip: str, cidr: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _iptables(snapshot: ProxySnapshot, ipsets: dict[str, IPSet],
              no_node_access: list[tuple[str, str, int]], opts: IpvsOptions) -> str:
    """upstream createAndLinkKubeChain (chain lines) + writeIptablesRules, nat then filter."""
    nat_chains = ["*nat"] + [f":{c} - [0:0]" for t, c in IPTABLES_CHAINS if t == "nat"]
    filter_chains = ["*filter"] + [f":{c} - [0:0]" for t, c in IPTABLES_CHAINS if t == "filter"]
    nat: list[str] = []
    flt: list[str] = []

    def empty(name: str) -> bool:
        return not ipsets[name].entries

    def comment(name: str) -> str:
        return f'"{_IPSET_COMMENT[name]}"'

    nat.append(f"-A {KUBE_SERVICES} -s 127.0.0.0/8 -j RETURN")
    for name, table, frm, to, match, proto in IPSET_WITH_IPTABLES_CHAIN:
        if empty(name):
            continue
        args = f"-A {frm}"
        if proto:
            args += f" -p {proto}"
        args += f" -m comment --comment {comment(name)} -m set --match-set {name} {match} -j {to}"
        (flt if table == "filter" else nat).append(args)

    if not empty(CLUSTER_IP):
        base = f"-A {KUBE_SERVICES} -m comment --comment {comment(CLUSTER_IP)} -m set --match-set {CLUSTER_IP}"
        if opts.masquerade_all:
            nat.append(f"{base} dst,dst -j {KUBE_MARK_MASQ}")
        elif snapshot.cluster_cidr:
            nat.append(f"{base} dst,dst ! -s {snapshot.cluster_cidr} -j {KUBE_MARK_MASQ}")
        else:
            nat.append(f"{base} src,dst -j {KUBE_MARK_MASQ}")

    def external_ip_rules(base: str) -> None:
        nat.append(f"{base} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT")
        nat.append(f"{base} -m addrtype --dst-type LOCAL -j ACCEPT")

    if not empty(EXTERNAL_IP):
        base = (f"-A {KUBE_SERVICES} -m comment --comment {comment(EXTERNAL_IP)} "
                f"-m set --match-set {EXTERNAL_IP} dst,dst")
        nat.append(f"{base} -j {KUBE_MARK_MASQ}")
        external_ip_rules(base)
    if not empty(EXTERNAL_IP_LOCAL):
        external_ip_rules(f"-A {KUBE_SERVICES} -m comment --comment {comment(EXTERNAL_IP_LOCAL)} "
                          f"-m set --match-set {EXTERNAL_IP_LOCAL} dst,dst")

    nat.append(f"-A {KUBE_SERVICES} -m addrtype --dst-type LOCAL -j {KUBE_NODE_PORT}")
    nat.append(f"-A {KUBE_LOAD_BALANCER} -j {KUBE_MARK_MASQ}")
    flt.append(f"-A {KUBE_SOURCE_RANGES_FIREWALL} -j DROP")
    for ip, proto, port in no_node_access:
        flt.append(f"-A {KUBE_IPVS_OUT_FILTER} -s {ip} -m ipvs --vaddr {ip} --vproto {proto} "
                   f"--vport {port} -j DROP")
    # acceptIPVSTraffic: must end KUBE-SERVICES
    for name in (CLUSTER_IP, LOAD_BALANCER):
        if not empty(name):
            nat.append(f"-A {KUBE_SERVICES} -m set --match-set {name} dst,dst -j ACCEPT")

    mark = opts.masquerade_mark
    flt.append(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" '
               f"-m mark --mark {mark}/{mark} -j ACCEPT")
    flt.append(f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" '
               "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    flt.append(f"-A {KUBE_NODE_PORT} -m comment --comment {comment(HEALTH_CHECK_NODE_PORT)} "
               f"-m set --match-set {HEALTH_CHECK_NODE_PORT} dst -j ACCEPT")
    for name, match in ((LOAD_BALANCER, "dst,dst"), (CLUSTER_IP, "dst,dst"),
                        (EXTERNAL_IP, "dst,dst"), (EXTERNAL_IP_LOCAL, "dst,dst"),
                        (HEALTH_CHECK_NODE_PORT, "dst")):
        flt.append(f"-A {KUBE_IPVS_FILTER} -m set --match-set {name} {match} -j RETURN")
    flt.append(f"-A {KUBE_IPVS_FILTER} -m conntrack --ctstate NEW -m set --match-set {IPVS_IPS} "
               "dst -j REJECT")

    nat.append(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    nat.append(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    masq = (f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring '
            f'SNAT" -j MASQUERADE')
    if opts.random_fully:
        masq += " --random-fully"
    nat.append(masq)
    nat.append(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")
    return "\n".join([*nat_chains, *nat, "COMMIT", *filter_chains, *flt, "COMMIT"]) + "\n"


# --- texts --------------------------------------------------------------------------------

def ipvsadm_text(vss: list[VirtualServer]) -> str:
    """`ipvsadm -R` input; the same lines `ipvsadm -Sn` prints for this state."""
    out: list[str] = []
    for v in vss:
        out.append(f"-A {v.address} {v.service_args()}")
        for rs in v.real_servers:
            out.append(f"-a {v.address} -r {rs} -m -w {rs.weight}")
    return "\n".join(out) + ("\n" if out else "")


SWAP_PREFIX = "NSIM-SWAP-"


def ipset_text(sets, swap: bool = False) -> str:
    """`ipset restore` input. Plain: create (-exist) + add, for reading and for an empty
    node. swap=True: each set is filled as a temporary set and swapped in atomically, so a
    set is never seen half-updated and stale entries vanish without a diff."""
    out: list[str] = []
    for i, s in enumerate(sets):
        out.append(f"{s.create_line()} -exist")
        if not swap:
            out += [f"add {s.name} {e} -exist" for e in s.entries]
            continue
        tmp = f"{SWAP_PREFIX}{i:02d}"
        out.append(f"{s.create_line(tmp)} -exist")
        out.append(f"flush {tmp}")
        out += [f"add {tmp} {e} -exist" for e in s.entries]
        out.append(f"swap {tmp} {s.name}")
        out.append(f"destroy {tmp}")
    return "\n".join(out) + "\n"


def ipset_update_text(pairs: list[tuple[IPSet | None, IPSet]]) -> str:
    """`ipset restore` input that turns each (as last restored, wanted) set into the wanted
    one: only the entries that differ (`add` / `del`), as upstream's syncIPSetEntries, so a
    one-endpoint change touches one entry, not the 5,000 of KUBE-LOOP-BACK (refilling it by
    swap took 18-23 s of every sync at 1,000 services in the emulated VM). A set never
    restored, or whose type changed, is filled and swapped in whole (`ipset_text`)."""
    whole: list[IPSet] = []
    out: list[str] = []
    for old, new in pairs:
        if old is None or old.type != new.type:
            whole.append(new)
            continue
        have, want = set(old.entries), set(new.entries)
        out += [f"del {new.name} {e} -exist" for e in old.entries if e not in want]
        out += [f"add {new.name} {e} -exist" for e in new.entries if e not in have]
    text = ipset_text(whole, swap=True) if whole else ""
    return text + ("\n".join(out) + "\n" if out else "")


def parse_ipset_save(text: str) -> dict[str, IPSet]:
    """kube-proxy's sets in `ipset save` output, entries in the renderer's order, to diff
    the wanted sets against (upstream lists a set's entries before syncing it)."""
    types: dict[str, str] = {}
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] == "create" and w[1] in _IPSET_COMMENT:
            types[w[1]] = w[2]
            entries[w[1]] = []
        elif len(w) >= 3 and w[0] == "add" and w[1] in types:
            e = w[2]
            if types[w[1]].endswith("net") and "/" not in e.rsplit(",", 1)[-1]:
                e += "/32"  # the kernel prints a /32 net as an address
            entries[w[1]].append(e)
    return {name: IPSet(name, typ, _IPSET_COMMENT[name],
                        tuple(sorted(entries[name], key=_entry_sort_key)))
            for name, typ in types.items()}


def render_text(snapshot: ProxySnapshot, options: IpvsOptions | None = None) -> str:
    """Everything of one render, for humans and golden files (`netsim render --mode ipvs`)."""
    r = render(snapshot, options)
    parts = [
        "# IPVS virtual servers (ipvsadm -R input; `ipvsadm -Sn` on the node shows the same)",
        r.ipvsadm_text().rstrip("\n"),
        "",
        "# ipsets (ipset restore input)",
        r.ipset_text().rstrip("\n"),
        "",
        "# iptables (iptables-restore --noflush input)",
        r.iptables.rstrip("\n"),
        "",
        f"# addresses on {DUMMY_DEVICE} (ip addr add ADDR/32 dev {DUMMY_DEVICE})",
        *r.bind_addresses,
    ]
    return "\n".join(parts) + "\n"
