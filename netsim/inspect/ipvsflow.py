"""kube-proxy's IPVS mode for the packet-flow interpreter: netfilter rules, ipsets and
IPVS virtual servers walked together, offline (no root).

In IPVS mode the iptables rules only mark, accept and filter (their matches are ipsets);
the DNAT is IPVS's, done at LOCAL_IN after the filter table's INPUT (the kernel's IPVS hooks
sit at priority NF_IP_PRI_NAT_SRC - 2, after filter), and the rewritten packet leaves
through LOCAL_OUT (filter OUTPUT, where `-m ipvs --vdir ORIGINAL` matches) and POSTROUTING
(KUBE-POSTROUTING: the masquerade mark, KUBE-LOOP-BACK for hairpins). ClusterIPs are
local addresses (bound on kube-ipvs0), so a packet to one is routed to INPUT.

`IpvsModeRules` reads the four parts `netsim render --mode ipvs` writes (the rules/ipvs-*.txt
golden files: `ipvsadm -R` lines, `ipset restore` lines, the iptables-restore text, the
kube-ipvs0 addresses) or the same parts read from a node (`ipvsadm -Sn`, `ipset save`,
`iptables-save`, `ip -4 -o addr show dev kube-ipvs0`), and walks one new connection:

- nat PREROUTING (OUTPUT, nat then filter, for a local source);
- a local destination (node address or kube-ipvs0 address): INPUT (after POSTROUTING for a
  local source, as the kernel's loopback path), then IPVS: a virtual server for the packet's
  (protocol, address, port) takes every real server of weight > 0 (every branch, as for
  iptables' random rules: all are the trace's endpoints), and each branch goes on through
  filter OUTPUT and nat POSTROUTING with the destination rewritten (a drop in one ends the
  walk: the output lists the endpoints, then REJECT/DROP); a virtual server with no such real server
  answers ICMP port unreachable (ip_vs_leave): REJECT; no virtual server: delivered here;
- otherwise FORWARD and POSTROUTING, as in iptables mode.

The result is ruleflow's `Trace` (endpoints, verdict, masquerade, hops; the IPVS hops are
in table "ipvs", chain "TCP 10.96.0.1:443", as netsim.inspect.ipvstrace names them).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from netsim.inspect.ipsets import IpSets
from netsim.inspect.ruleflow import (
    IptablesRules,
    Packet,
    RuleSyntaxError,
    Trace,
    _local_nets,
    _Walk,
)
from netsim.proxy.ipvs import jump_rules
from netsim.proxy.ipvs_apply import parse_ipvsadm_save

__all__ = ["IpvsModeRules"]

TABLE = "ipvs"
_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
_SECTIONS = ("# IPVS virtual servers", "# ipsets", "# iptables", "# addresses on")


class IpvsModeRules:
    """One node's IPVS-mode dataplane. `inserted`: the built-in chains' jumps (default
    kube-proxy IPVS mode's own, netsim.proxy.ipvs.jump_rules(); add NetworkPolicy's)."""

    def __init__(self, ipvsadm: str, ipsets: str, iptables: str, bound: Iterable[str] = (), *,
                 inserted: Iterable[tuple[str, str, list[str]]] | None = None) -> None:
        self.ipsets = IpSets(ipsets)
        self.iptables = IptablesRules(
            "*nat\nCOMMIT\n*filter\nCOMMIT\n", iptables,
            inserted=jump_rules() if inserted is None else inserted, ipsets=self.ipsets)
        self.services = parse_ipvsadm_save(ipvsadm)
        self.bound = [b.split("/")[0] for b in bound]
        self.only_endpoint: str | None = None

    def only(self, endpoint: str) -> None:
        """Walk only this real server's branch (the one IPVS chose for a live probe: its
        connection entry says so), whatever the virtual server's other real servers."""
        self.only_endpoint = endpoint

    @classmethod
    def from_render_text(cls, text: str, **kw) -> IpvsModeRules:
        """The text of netsim.proxy.ipvs.render_text (`netsim render --mode ipvs`)."""
        parts: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in text.splitlines():
            head = next((h for h in _SECTIONS if line.startswith(h)), None)
            if head is not None:
                current = parts.setdefault(head, [])
            elif current is not None:
                current.append(line)
            elif line.strip():
                raise RuleSyntaxError(f"not in a section of the IPVS render: {line!r}")
        missing = [h for h in _SECTIONS if h not in parts]
        if missing:
            raise RuleSyntaxError(f"the IPVS render has no {missing[0]!r} section")
        ipvsadm, ipsets, iptables, bound = ("\n".join(parts[h]) + "\n" for h in _SECTIONS)
        return cls(ipvsadm, ipsets, iptables, bound.split(), **kw)

    def trace(self, src: str, dst: str, port: int, proto: str = "tcp", *,
              local_ips: Iterable[str] = ()) -> Trace:
        """Walk a new connection (module docstring); `local_ips`: the node's addresses
        (the kube-ipvs0 ones are added)."""
        trace = Trace(Packet(src, dst, port, proto.lower()))
        walk = _Walk(trace, _local_nets([*local_ips, *self.bound]), src, dst, port,
                     proto.lower())
        ipt = self.iptables
        local_src = walk.is_local(src)
        ipt._hook(walk, "output" if local_src else "prerouting")
        walk.apply_dnat()  # not kube-proxy's in this mode, but a rule may DNAT
        if not walk.is_local(walk.dst):
            for hook in ("postrouting",) if local_src else ("forward", "postrouting"):
                if not walk.stopped:
                    ipt._hook(walk, hook)
            return trace
        for hook in ("postrouting", "input") if local_src else ("input",):
            if not walk.stopped:
                ipt._hook(walk, hook)
        if not walk.stopped:
            self._ipvs(walk, local_src)
        return trace

    def _ipvs(self, walk: _Walk, postrouted: bool) -> None:
        key = (walk.proto.upper(), walk.dst, walk.port)
        vs = self.services.get(key)
        if vs is None:
            return  # an ordinary local destination
        args, reals = vs
        flag = _PROTO_FLAG.get(key[0], "-t")
        chain = f"{key[0]} {walk.dst}:{walk.port}"
        vaddr = f"{walk.dst}:{walk.port}"
        walk.hop(TABLE, chain, f"-A {flag} {vaddr} {args}".strip())
        live = [r for r, w in reals.items() if w > 0]
        if self.only_endpoint in reals:  # chosen (a draining one, weight 0, is still used
            live = [self.only_endpoint]  # by its established connections)
        if not live:
            walk.trace.verdict = "REJECT"  # ip_vs_leave: ICMP port unreachable
            return
        walk.ipvs = (walk.proto, walk.dst, walk.port)
        walk.trace.endpoints.extend(live)
        start = copy.copy(walk)
        for real in live:
            branch = copy.copy(start)
            branch.hop(TABLE, chain, f"-a {flag} {vaddr} -r {real} -m -w {reals[real]}")
            branch.to(real)
            branch.dnat_done = True
            self.iptables.run_builtin(branch, "filter", "OUTPUT")
            if not branch.stopped and not postrouted:
                self.iptables._hook(branch, "postrouting")
            if branch.stopped:
                return
