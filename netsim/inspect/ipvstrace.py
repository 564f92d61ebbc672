"""IPVS mode for `netsim trace`: the virtual server a probe met and the real server IPVS
chose for it.

In IPVS mode the load balancing is not in netfilter rules but in the kernel's IPVS tables
(kube-proxy's iptables rules there only mark for masquerade and accept, matching ipsets).
`IpvsRules` reads a node's `ipvsadm -Sn` (netsim/proxy/ipvs_apply.parse_ipvsadm_save) and
answers the trace's question with ruleflow's shape: the virtual server for the packet's
destination (its hop: the `-A` line) and its real servers as the possible endpoints; once
the probe went out, the node's IPVS connection entries (`ipvsadm -Lnc`, the probe's source
address and port) name the real server chosen, and `only(endpoint)` keeps that one (its
hop: the `-a` line). Pure but for `node_rules`/`chosen_real_server`.
"""

from __future__ import annotations

import subprocess

from netsim.inspect import ruleflow
from netsim.proxy.ipvs_apply import parse_ipvsadm_save

TABLE = "ipvs"
_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
_FORWARD = {"-m": "masq", "-g": "direct routing", "-i": "tunnel"}


class IpvsRules:
    def __init__(self, save_text: str):
        self.services = parse_ipvsadm_save(save_text)
        self.only_endpoint: str | None = None

    def only(self, endpoint: str) -> None:
        """Keep only this real server (the one IPVS chose for the probe)."""
        self.only_endpoint = endpoint

    def virtual(self, proto: str, ip: str, port: int):
        return self.services.get((proto.upper(), ip, port))

    def trace(self, src: str, dst: str, port: int, proto: str = "tcp", *,
              local_ips=()) -> ruleflow.Trace:
        t = ruleflow.Trace(ruleflow.Packet(src, dst, port, proto.lower()))
        vs = self.virtual(proto, dst, port)
        if vs is None:
            return t  # not a virtual server: plain routing
        args, reals = vs
        flag = _PROTO_FLAG.get(proto.upper(), "-t")
        chain = f"{proto.upper()} {dst}:{port}"
        t.hops.append(ruleflow.Hop(TABLE, chain, f"-A {flag} {dst}:{port} {args}".strip()))
        live = [r for r, w in reals.items() if w > 0]
        if self.only_endpoint is not None:
            live = [r for r in live if r == self.only_endpoint] or [self.only_endpoint]
            w = reals.get(self.only_endpoint, 0)
            t.hops.append(ruleflow.Hop(TABLE, chain, f"-a {flag} {dst}:{port} -r "
                                       f"{self.only_endpoint} -m -w {w}"))
        t.endpoints = live
        return t


def rule_action(rule: str) -> str | None:
    """The action of an ipvsadm -S line (None: not one)."""
    w = rule.split()
    if len(w) < 3 or w[0] not in ("-A", "-a") or w[1] not in _PROTO_FLAG.values():
        return None
    if w[0] == "-A":
        sched = w[w.index("-s") + 1] if "-s" in w else "wlc"
        return f"IPVS virtual server {w[2]} (scheduler {sched})"
    real = w[w.index("-r") + 1] if "-r" in w else "?"
    how = next((v for k, v in _FORWARD.items() if k in w), "masq")
    weight = w[w.index("-w") + 1] if "-w" in w else "1"
    return f"DNAT to {real} (IPVS real server, {how}, weight {weight})"


class NodeIpvsRules:
    """A node's whole IPVS-mode dataplane for the live trace: its iptables rules and ipsets
    walked with its virtual servers (netsim.inspect.ipvsflow.IpvsModeRules: the iptables
    hops, the ipset lookups, the virtual server, the real server, then OUTPUT and
    POSTROUTING), or, when something in them is not modelled, the virtual server and real
    server alone (IpvsRules), so a trace still says where the packet went."""

    def __init__(self, ipvsadm: str, ipsets: str, iptables: str, bound: list[str]) -> None:
        from netsim.inspect.ipvsflow import IpvsModeRules  # noqa: PLC0415 (imports ruleflow)
        self.simple = IpvsRules(ipvsadm)
        self.full = None
        self.why = ""
        try:  # the live iptables-save already holds the jumps from the built-in chains
            self.full = IpvsModeRules(ipvsadm, ipsets, iptables, bound, inserted=())
        except (ruleflow.RuleSyntaxError, ruleflow.TraceError) as e:
            self.why = str(e)

    def only(self, endpoint: str) -> None:
        self.simple.only(endpoint)
        if self.full is not None:
            self.full.only(endpoint)

    def trace(self, src: str, dst: str, port: int, proto: str = "tcp", *,
              local_ips=()) -> ruleflow.Trace:
        if self.full is not None:
            try:
                return self.full.trace(src, dst, port, proto, local_ips=local_ips)
            except ruleflow.TraceError as e:
                self.why = str(e)
        return self.simple.trace(src, dst, port, proto, local_ips=local_ips)


_PART = "@@netsim-trace-part@@"


def node_dump(iptables: str | None = None) -> str:
    """The shell script node_rules runs in the node. Its iptables-save is that of the
    backend kube-proxy writes with (netsim.proxy.apply.backend_prefix: iptables-legacy
    where installed): plain `iptables-save` is the nf_tables one on Debian, which shows
    none of kube-proxy's legacy rules (in the qemu VM, whose kernel can't load nf_tables,
    it printed nothing, and every IPVS trace lost its iptables and ipset hops)."""
    if iptables is None:
        from netsim.proxy.apply import backend_prefix  # noqa: PLC0415
        iptables = backend_prefix()
    return (f"ipvsadm -Sn; echo {_PART}; ipset save; echo {_PART}; {iptables}-save; "
            f"echo {_PART}; ip -4 -o addr show dev kube-ipvs0")


def parse_node_dump(text: str) -> NodeIpvsRules:
    """node_dump()'s output (four parts) -> the node's rules."""
    parts = (text.split(_PART + "\n") + ["", "", "", ""])[:4]
    bound = [w[i + 1] for line in parts[3].splitlines()
             if "inet" in (w := line.split()) and (i := w.index("inet")) + 1 < len(w)]
    return NodeIpvsRules(parts[0], parts[1], parts[2], bound)


def node_rules(netns: str) -> NodeIpvsRules:
    """Read in one process (under emulation each start costs seconds): `ipvsadm -Sn`,
    `ipset save`, `iptables-save` and kube-ipvs0's addresses."""
    p = subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", node_dump()],
                       capture_output=True, text=True, timeout=60)
    return parse_node_dump(p.stdout)


def chosen_real_server(netns: str, proto: str, src: str, sport: int) -> str | None:
    """The real server of the probe's IPVS connection entry on that node."""
    from netsim.inspect.proxystats import ipvs_conn_for, node_ipvs_conns  # noqa: PLC0415
    c = ipvs_conn_for(node_ipvs_conns(netns), proto, src, sport)
    return c.destination if c else None
