"""The cluster's network as data (ClusterConfig) and the code that builds and removes it.

LAN netns with a bridge; one netns per node (eth0 on the LAN, cni0 with the node's pod /24
gateway, host-gw routes to the other nodes); optional host access from the root netns.
Everything created is written to the ledger first, so teardown can undo it after a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, field

from netsim.net import batch, rtnl
from netsim.net import netlink as nl
from netsim.net.ledger import Ledger, state_dir

DEFAULT_LAN = "192.168.3.0/24"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_MAX_PODS = 110  # the kubelet's maxPods default
FIRST_NODE_OFFSET = 171  # nodes take the LAN's .171, .172, ... (kubeadm-like names)

# A cluster name becomes paths (/var/lib/netsim/<name>, /run/netsim/<name>), netns names
# (<name>-lan, <name>-<node>, <name>-pod-<hash>) and the host's veth `nsim-<name>`. kind's
# rule (a DNS-1123 label) keeps it a single harmless path component; the length keeps the
# veth name readable within the kernel's 15-byte interface names (IFNAMSIZ - 1).
HOST_IF_PREFIX = "nsim-"
CLUSTER_NAME_MAX = 15 - len(HOST_IF_PREFIX)
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
              "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
              "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def cluster_name_error(name: object, source: str = "") -> str | None:
    """Why `name` cannot name a cluster, in one line (None when it can); `source` says
    where the name came from (`--name`, `NETSIM_CLUSTER`)."""
    shown = (json.dumps(name) if isinstance(name, str) else repr(name)) + \
        (f" (from {source})" if source else "")
    if not isinstance(name, str) or not _DNS1123_LABEL.fullmatch(name):
        return f"invalid cluster name {shown}: {_LABEL_MSG}"
    if len(name) > CLUSTER_NAME_MAX:
        return (f"invalid cluster name {shown}: must be no more than {CLUSTER_NAME_MAX} "
                f"characters (the host's veth {HOST_IF_PREFIX}<name> must fit in 15 bytes)")
    return None


def check_cluster_name(name: str) -> str:
    """`name` when it is a valid cluster name; ValueError (one line) otherwise."""
    msg = cluster_name_error(name)
    if msg:
        raise ValueError(msg)
    return name


@dataclass
class NodeSpec:
    name: str
    ip: str
    pod_cidr: str
    control_plane: bool = False

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


@dataclass
class ClusterConfig:
    name: str = "netsim"
    lan: str = DEFAULT_LAN
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    proxy_mode: str = "iptables"
    host_access: bool = True
    node_port_range: str = "30000-32767"
    cluster_domain: str = "cluster.local"
    max_pods: int = DEFAULT_MAX_PODS
    nodes: list[NodeSpec] = field(default_factory=list)
    addons: bool = True  # CoreDNS, ingress-nginx, the default StorageClass (`--no-addons`)

    # ---- derived names -----------------------------------------------------------------
    @property
    def lan_netns(self) -> str:
        return f"{self.name}-lan"

    def node_netns(self, node: str) -> str:
        return f"{self.name}-{node}"

    @property
    def host_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.lan).hosts()))

    @property
    def lan_prefix(self) -> int:
        return ipaddress.ip_network(self.lan).prefixlen

    @property
    def host_ifname(self) -> str:
        return _ifname(HOST_IF_PREFIX, self.name)

    @property
    def route_metric(self) -> int:
        """Each cluster's `unreachable` routes get their own metric so two clusters with
        the same CIDRs can add and remove theirs independently."""
        return 3000 + int(hashlib.sha256(self.name.encode()).hexdigest()[:4], 16) % 1000

    @property
    def dns_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def kubernetes_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[1])

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    # ---- persistence -------------------------------------------------------------------
    def save(self) -> None:
        check_cluster_name(self.name)
        os.makedirs(state_dir(self.name), mode=0o700, exist_ok=True)
        path = os.path.join(state_dir(self.name), "cluster.json")
        # Written aside and renamed: an agent starting while `node add` saves reads a whole file.
        tmp = path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            os.fchmod(f.fileno(), 0o600)  # private to root, like everything in the state dir
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, name: str) -> ClusterConfig | None:
        if cluster_name_error(name):
            return None  # no such cluster: an invalid name was never saved
        path = os.path.join(state_dir(name), "cluster.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            data = json.load(f)
        data["nodes"] = [NodeSpec(**n) for n in data.get("nodes", [])]
        return cls(**data)

    @classmethod
    def make(cls, name: str = "netsim", nodes: int = 3, lan: str = DEFAULT_LAN,
             pod_cidr: str = DEFAULT_POD_CIDR, service_cidr: str = DEFAULT_SERVICE_CIDR,
             proxy_mode: str = "iptables", host_access: bool = True,
             max_pods: int = DEFAULT_MAX_PODS, addons: bool = True) -> ClusterConfig:
        """kubeadm-like defaults: k8s-master-171 (control plane), k8s-slave-172, -173 ..."""
        check_cluster_name(name)
        net = ipaddress.ip_network(lan, strict=False)
        pods = ipaddress.ip_network(pod_cidr, strict=False)
        if nodes < 1:
            raise ValueError("--nodes must be at least 1")
        check_max_pods(max_pods)
        subnets = pods.subnets(new_prefix=24) if pods.prefixlen <= 24 else iter(())
        specs = []
        for i in range(nodes):
            octet = FIRST_NODE_OFFSET + i
            if octet >= net.num_addresses - 1:
                raise ValueError(f"the LAN {lan} is too small for {nodes} nodes")
            sub = next(subnets, None)
            if sub is None:
                raise ValueError(f"the pod CIDR {pod_cidr} has room for fewer than {nodes} /24s")
            specs.append(NodeSpec(node_name(octet, i == 0), str(net[octet]), str(sub), i == 0))
        return cls(name=name, lan=str(net), pod_cidr=str(pods),
                   service_cidr=str(ipaddress.ip_network(service_cidr, strict=False)),
                   proxy_mode=proxy_mode, host_access=host_access, max_pods=max_pods,
                   nodes=specs, addons=addons)


def pod_addresses_per_node() -> int:
    """Pod IPs a node's /24 holds: 254 usable addresses, less cni0's gateway (.1); the
    node's IPAM hands out .2 to .254."""
    return ipaddress.ip_network("10.0.0.0/24").num_addresses - 3


def check_max_pods(max_pods: int) -> int:
    """`max_pods` when a node's pod /24 can hold it; ValueError (one line) otherwise."""
    room = pod_addresses_per_node()
    if max_pods < 1:
        raise ValueError("--max-pods must be at least 1")
    if max_pods > room:
        raise ValueError(f"--max-pods {max_pods} is more than a node's pod /24 holds: {room} "
                         "addresses (254 usable, less the node's cni0 gateway .1)")
    return max_pods


def node_name(offset: int, control_plane: bool = False) -> str:
    """The name `cluster up` (and `node add`) gives the node on the LAN's .<offset>."""
    return f"k8s-{'master' if control_plane else 'slave'}-{offset}"


def _ifname(prefix: str, name: str) -> str:
    """An interface name of at most 15 bytes: the readable name when it fits, else a hash."""
    if len(prefix + name) <= 15:
        return prefix + name
    return prefix + hashlib.sha256(name.encode()).hexdigest()[: 15 - len(prefix)]


def lan_port_name(node: str) -> str:
    return node if len(node) <= 15 else _ifname("n-", node)


def _lan_port(lan: rtnl.Rtnl, port: str, peer: str, peer_fd: int) -> None:
    """veth `port` on the LAN bridge, its peer `peer` in the netns of `peer_fd`."""
    lan0 = lan.link_index("lan0")
    idx = lan.link_index(port)
    if idx is None:
        lan.veth(port, peer, peer_fd, master=lan0)
    else:
        lan.set_up(idx, master=lan0)


def _eth0(sock: rtnl.Rtnl, ip: str, prefix: int) -> int:
    sock.set_up(1)
    eth0 = sock.link_index("eth0")
    sock.add_addr(eth0, ip, prefix)
    sock.set_up(eth0)
    return eth0


def build_lan(cfg: ClusterConfig, ledger: Ledger) -> None:
    ledger.add("netns", name=cfg.lan_netns)
    fd, lan = nl.open_netns(cfg.lan_netns)
    with lan:
        os.close(fd)
        lan.set_up(1)
        lan.bridge("lan0")
        lan.set_up(lan.link_index("lan0"))


def build_node(cfg: ClusterConfig, node: NodeSpec, ledger: Ledger) -> None:
    ns = cfg.node_netns(node.name)
    ledger.add("netns", name=ns)
    fd, sock = nl.open_netns(ns)
    try:
        lan_fd, lan = nl.open_netns(cfg.lan_netns)
        with lan:
            os.close(lan_fd)
            _lan_port(lan, lan_port_name(node.name), "eth0", fd)
        eth0 = _eth0(sock, node.ip, cfg.lan_prefix)
        pod_net = ipaddress.ip_network(node.pod_cidr)
        # cni0 keeps one address (the CNI bridge plugin's MAC for the gateway IP), so the
        # pods' permanent neighbour entry for their gateway never goes stale.
        sock.bridge("cni0", mac=rtnl.mac_for_ip(node.gateway))
        cni0 = sock.link_index("cni0")
        sock.add_addr(cni0, node.gateway, pod_net.prefixlen)
        sock.set_up(cni0)
        for other in cfg.nodes:
            if other.name != node.name:
                sock.add_route(other.pod_cidr, gateway=other.ip)
        # Node-originated traffic to a ClusterIP needs a route before kube-proxy's DNAT
        # (real nodes have a default route); it never leaves the LAN.
        sock.add_route(cfg.service_cidr, oif=eth0, prefsrc=node.ip)
        with rtnl.in_netns(os.path.join(nl.NETNS_DIR, ns)):  # /proc/sys/net is per thread
            nl.set_sysctl("net.ipv4.ip_forward", "1")
            nl.set_sysctl("net.bridge.bridge-nf-call-iptables", "1")
            nl.set_sysctl("net.ipv4.conf.all.route_localnet", "1")
            # packets/bytes per conntrack entry: `netsim proxy stats` in nftables mode
            nl.set_sysctl("net.netfilter.nf_conntrack_acct", "1")
    finally:
        sock.close()
        os.close(fd)


def node_route(cfg: ClusterConfig, on: NodeSpec, to: NodeSpec, *, add: bool = True) -> None:
    """host-gw: node `on`'s route to `to`'s pod /24 via `to`'s LAN address, added (as
    build_node adds them) or removed; nothing when `on` has no netns."""
    ns = cfg.node_netns(on.name)
    if not nl.netns_exists(ns):
        return
    fd, sock = nl.open_netns(ns)
    try:
        if add:
            sock.add_route(to.pod_cidr, gateway=to.ip)
        else:
            sock.del_route(to.pod_cidr)
    finally:
        sock.close()
        os.close(fd)


def build_host_access(cfg: ClusterConfig, ledger: Ledger) -> None:
    """The root netns joins the LAN through one veth; cluster CIDRs become unreachable."""
    name = cfg.host_ifname
    ledger.add("link", name=name)
    lan_fd, lan = nl.open_netns(cfg.lan_netns)
    with lan:
        try:
            if rtnl.index(name) is None:
                with rtnl.Rtnl() as root:
                    root.veth(name, "host", lan_fd, up=False)
        finally:
            os.close(lan_fd)
        lan.set_up(lan.link_index("host"), master=lan.link_index("lan0"))
    _root_routes(cfg, ledger)


def _root_routes(cfg: ClusterConfig, ledger: Ledger) -> None:
    with rtnl.Rtnl() as root:
        idx = rtnl.index(cfg.host_ifname)
        if idx is not None:
            root.add_addr(idx, cfg.host_ip, cfg.lan_prefix)
            root.set_up(idx)
        for cidr in (cfg.pod_cidr, cfg.service_cidr):
            ledger.add("route", dst=cidr, type="unreachable", metric=cfg.route_metric)
            root.add_route(cidr, rtype="unreachable", priority=cfg.route_metric)


def build_unreachable_only(cfg: ClusterConfig, ledger: Ledger) -> None:
    _root_routes(cfg, ledger)


def teardown(ledger: Ledger, recs: list[dict] | None = None) -> list[str]:
    """Remove every recorded link, route and netns (reverse order). Returns what it removed.
    `recs`: the ledger's records when the caller has just read them (thousands of pods'
    lines: one read fewer)."""
    done = []
    recs = ledger.records() if recs is None else recs
    with rtnl.Rtnl() as root:
        for rec in reversed(recs):
            if rec["kind"] == "route":
                with contextlib.suppress(OSError):
                    root.del_route(rec["dst"], rtype=rec.get("type", "unicast"),
                                   priority=rec.get("metric"))
                done.append(f"route {rec['dst']}")
            elif rec["kind"] == "link" and not rec.get("ns"):
                idx = rtnl.index(rec["name"])
                if idx is not None:
                    with contextlib.suppress(OSError):
                        root.del_link(idx)
                done.append(f"link {rec['name']}")
    # every namespace at once: each unmount waits for an RCU grace period (netsim.net.batch)
    names = list(dict.fromkeys(r["name"] for r in reversed(recs) if r["kind"] == "netns"))
    batch.each(nl.remove_netns, names)
    done.extend(f"netns {n}" for n in names)
    return done


def build_lan_client(cfg: ClusterConfig, ledger: Ledger, name: str, ip: str) -> str:
    """An extra machine on the LAN (a netns with eth0 on the LAN bridge): tests' clients."""
    ns = f"{cfg.name}-{name}"
    ledger.add("netns", name=ns)
    fd, sock = nl.open_netns(ns)
    try:
        lan_fd, lan = nl.open_netns(cfg.lan_netns)
        with lan:
            os.close(lan_fd)
            _lan_port(lan, _ifname("c-", name), "eth0", fd)
        _eth0(sock, ip, cfg.lan_prefix)
    finally:
        sock.close()
        os.close(fd)
    return ns
