"""`netsim proxy stats` in nftables and IPVS modes: which endpoint took how much, per node.

iptables mode counts with the packet counters of the KUBE-SEP DNAT rules
(netsim/proxy/counters.py). The other modes have no such counters:

- nftables: kube-proxy's table carries no `counter` on its endpoint chains (upstream's
  nftables proxier writes none, and netsim/proxy/nftables.py writes what upstream writes),
  so the numbers come from each node's conntrack table instead: every entry whose
  original destination is one of the Service's addresses (ClusterIP:port, a node's
  address:nodePort, an external or load-balancer IP:port) and whose reply comes from an
  endpoint is one connection that node sent there; with `nf_conntrack_acct` on (netsim's
  nodes have it on from `cluster up`) the entries carry packets and bytes both ways. They
  are the connections conntrack holds *now*: open ones, and closed ones until their
  timeout (TCP TIME_WAIT: 120 s; UDP: 30-120 s), not a count since boot.
- IPVS: the kernel keeps per virtual and real server totals since the server was created,
  `ipvsadm -Ln --stats --exact` prints them (connections, packets and bytes in and out).

The parsers and the aggregation are pure (unit tested on recorded outputs); `collect_*`
run the tools in the node netns.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

# --- IPVS -------------------------------------------------------------------------------------

_MULT = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _num(text: str) -> int:
    """ipvsadm's numbers: exact, or (without --exact) 1234K / 56M / 7G."""
    if text and text[-1] in _MULT:
        return int(text[:-1]) * _MULT[text[-1]]
    return int(text)


@dataclass
class IpvsCounters:
    addr: str  # ip:port
    conns: int
    inpkts: int
    outpkts: int
    inbytes: int
    outbytes: int


@dataclass
class IpvsVirtual(IpvsCounters):
    proto: str = "TCP"  # TCP / UDP / SCTP (ipvsadm's words)
    reals: list[IpvsCounters] = field(default_factory=list)


_STATS_LINE = re.compile(r"^(?:(TCP|UDP|SCTP)\s+|\s+->\s+)(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+"
                         r"(\S+)\s*$")


def parse_ipvs_stats(text: str) -> list[IpvsVirtual]:
    """`ipvsadm -Ln --stats [--exact]`: each virtual server with its real servers."""
    out: list[IpvsVirtual] = []
    for line in text.splitlines():
        m = _STATS_LINE.match(line)
        if not m or m.group(2) in ("LocalAddress:Port", "RemoteAddress:Port"):
            continue
        proto, addr, *nums = m.groups()
        try:
            vals = [_num(n) for n in nums]
        except ValueError:
            continue
        if proto:
            out.append(IpvsVirtual(addr, *vals, proto=proto))
        elif out:
            out[-1].reals.append(IpvsCounters(addr, *vals))
    return out


@dataclass(frozen=True)
class IpvsConn:
    proto: str
    expire: str
    state: str
    source: str  # ip:port
    virtual: str
    destination: str


def parse_ipvs_conns(text: str) -> list[IpvsConn]:
    """`ipvsadm -Lnc`: IPVS's connection entries."""
    out = []
    for line in text.splitlines():
        w = line.split()
        if len(w) == 6 and w[0] in ("TCP", "UDP", "SCTP") and ":" in w[3]:
            out.append(IpvsConn(*w))
    return out


def ipvs_conn_for(conns: list[IpvsConn], proto: str, src: str, sport: int) -> IpvsConn | None:
    """The entry of the probe's connection (its source address and port)."""
    return next((c for c in conns if c.proto == proto.upper() and
                 c.source == f"{src}:{sport}"), None)


# --- conntrack (nftables mode) ---------------------------------------------------------------

@dataclass
class EndpointStats:
    conns: int = 0
    packets: int = 0  # both directions (0 when conntrack accounting is off)
    bytes: int = 0
    accounted: bool = False  # some entry carried packets/bytes


def conntrack_by_endpoint(entries: list[dict], service_addrs: set[tuple[str, str, str]]
                          ) -> dict[str, EndpointStats]:
    """{endpoint ip:port: stats} over one node's conntrack entries (trace.parse_conntrack's
    shape, with "proto"), counting those whose original destination is in `service_addrs`
    ((proto, ip, port) strings) and whose reply source differs (the node NATed them)."""
    out: dict[str, EndpointStats] = {}
    for e in entries:
        o, r = e["orig"], e["reply"]
        if (e.get("proto", "tcp"), o.get("dst"), o.get("dport")) not in service_addrs:
            continue
        ep = f"{r.get('src')}:{r.get('sport')}"
        if (r.get("src"), r.get("sport")) == (o.get("dst"), o.get("dport")):
            continue  # not NATed (e.g. the endpoint node's own entry of a forwarded packet)
        st = out.setdefault(ep, EndpointStats())
        st.conns += 1
        if "packets" in o or "packets" in r:
            st.accounted = True
            st.packets += int(o.get("packets", 0)) + int(r.get("packets", 0))
            st.bytes += int(o.get("bytes", 0)) + int(r.get("bytes", 0))
    return out


def service_addresses(svc: dict, node_ips: list[str]) -> dict[int, set[tuple[str, str, str]]]:
    """{service port: the (proto, ip, port) a client connects to for it}: ClusterIP(s),
    each node address with the nodePort, externalIPs and load-balancer IPs."""
    sp = svc.get("spec") or {}
    ips = [ip for ip in [sp.get("clusterIP"), *(sp.get("clusterIPs") or [])] if ip and ip != "None"]
    ext = list(sp.get("externalIPs") or []) + [
        i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress") or [] if i.get("ip")]
    out: dict[int, set[tuple[str, str, str]]] = {}
    for p in sp.get("ports") or []:
        proto = (p.get("protocol") or "TCP").lower()
        addrs = {(proto, ip, str(p["port"])) for ip in ips + ext}
        if p.get("nodePort"):
            addrs |= {(proto, ip, str(p["nodePort"])) for ip in node_ips}
        out[p["port"]] = addrs
    return out


# --- the live part -----------------------------------------------------------------------------

def _in(netns: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=30)


def node_conntrack(netns: str) -> tuple[list[dict], bool]:
    """The node's conntrack entries (TCP, UDP, SCTP) with "proto", and whether
    nf_conntrack_acct is on there."""
    from netsim.inspect.trace import parse_conntrack  # noqa: PLC0415
    entries = []
    for proto in ("tcp", "udp", "sctp"):
        for e in parse_conntrack(_in(netns, "conntrack", "-L", "-p", proto).stdout):
            e["proto"] = proto
            entries.append(e)
    acct = _in(netns, "cat", "/proc/sys/net/netfilter/nf_conntrack_acct").stdout.strip() == "1"
    return entries, acct


def node_ipvs_stats(netns: str) -> list[IpvsVirtual]:
    return parse_ipvs_stats(_in(netns, "ipvsadm", "-Ln", "--stats", "--exact").stdout)


def node_ipvs_conns(netns: str) -> list[IpvsConn]:
    return parse_ipvs_conns(_in(netns, "ipvsadm", "-Lnc").stdout)
