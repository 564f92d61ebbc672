"""ipsets for the packet-flow interpreter: what `-m set --match-set NAME dst,dst` tests.

kube-proxy's IPVS mode keeps its iptables rules constant and puts the Services in ipsets
(KUBE-CLUSTER-IP hash:ip,port, KUBE-NODE-PORT-TCP bitmap:port, KUBE-LOOP-BACK
hash:ip,port,ip, ...), so a walk through its rules needs the sets' contents. They are read
from the text the IPVS renderer writes (`ipset restore` input: netsim/proxy/ipvs.py
`ipset_text()`) or what a node holds (`ipset save`): `create`, `add`, `del`, `flush`,
`destroy` and `swap` lines, `-exist` and per-entry options (timeout, comment) ignored.

Matching follows the kernel's set match (net/netfilter/xt_set.c, ip_set_core.c): the flags
name, dimension by dimension, which address or port of the packet is looked up; fewer flags
than the set has dimensions never match (ip_set_test: `opt->dim < set->type->dimension`),
more are ignored. A port dimension holds the protocol too (`10.96.0.1,tcp:443`; a bare
port is TCP, as ipset reads it); a bitmap:port holds ports only (the rules say `-p tcp`).
The packet's source port is not modelled (a new connection's is arbitrary): a `src` flag on
a port dimension is a TraceError, not a guess. IPv4 only, like the interpreter.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from netsim.inspect.ruleflow import RuleSyntaxError, TraceError

__all__ = ["IpSet", "IpSets"]

# the set types kube-proxy and NetworkPolicy agents use: type -> its dimensions
_TYPES = {
    "hash:ip": ("ip",),
    "hash:net": ("net",),
    "hash:ip,port": ("ip", "port"),
    "hash:net,port": ("net", "port"),
    "hash:ip,port,ip": ("ip", "port", "ip"),
    "hash:ip,port,net": ("ip", "port", "net"),
    "bitmap:port": ("bport",),
}
_PROTOS = ("tcp", "udp", "sctp")
_Elem = tuple  # one entry: per dimension an IPv4Network or (proto | None, lo, hi)


@dataclass
class IpSet:
    name: str
    type: str
    entries: set[_Elem] = field(default_factory=set)

    @property
    def dims(self) -> tuple[str, ...]:
        return _TYPES[self.type]

    def parse_entry(self, text: str, where: str) -> _Elem:
        parts = text.split(",")
        if len(parts) != len(self.dims):
            raise RuleSyntaxError(f"{self.type} entry {text!r} in {where!r}")
        return tuple(_component(kind, p, where) for kind, p in zip(self.dims, parts, strict=True))

    def test(self, values: list) -> bool:
        """Is the packet (one value per dimension: an IPv4Address or (proto, port)) in it?"""
        return self.find(values) is not None

    def find(self, values: list) -> _Elem | None:
        """The entry holding the packet (the first in a stable order: sets are unordered)."""
        hits = [e for e in self.entries
                if all(_component_has(c, v) for c, v in zip(e, values, strict=True))]
        return min(hits, key=repr) if hits else None


def _component(kind: str, text: str, where: str):
    text = text.strip()
    try:
        if kind in ("ip", "net"):
            net = ipaddress.IPv4Network(text, strict=False)
            if kind == "ip" and "/" in text:
                raise RuleSyntaxError(f"hash:ip holds addresses, not {text!r}: {where!r}")
            return net
        if kind == "bport":
            lo, _, hi = text.partition("-")
            return (None, int(lo), int(hi or lo))
        proto, colon, port = text.partition(":")
        if not colon:
            proto, port = "tcp", text
        if proto.lower() not in _PROTOS:
            raise RuleSyntaxError(f"protocol {proto!r} in ipset entry: {where!r}")
        lo, _, hi = port.partition("-")
        return (proto.lower(), int(lo), int(hi or lo))
    except RuleSyntaxError:
        raise
    except ValueError as e:  # int() / IPv4Network()
        raise RuleSyntaxError(f"bad ipset entry part {text!r} in {where!r}") from e


def _entry_text(entry: _Elem) -> str:
    """An entry as `ipset save` writes it (`10.96.0.10,udp:53`, `10.244.0.0/16`, `30080`)."""
    parts = []
    for comp in entry:
        if isinstance(comp, ipaddress.IPv4Network):
            parts.append(str(comp.network_address) if comp.prefixlen == 32 else str(comp))
        else:
            proto, lo, hi = comp
            ports = str(lo) if lo == hi else f"{lo}-{hi}"
            parts.append(ports if proto is None else f"{proto}:{ports}")
    return ",".join(parts)


def _component_has(comp, value) -> bool:
    if isinstance(comp, ipaddress.IPv4Network):
        return value in comp
    proto, lo, hi = comp
    vproto, port = value
    return (proto is None or proto == vproto) and lo <= port <= hi


class IpSets:
    """The node's sets by name, built by `restore` texts in order (as `ipset restore`)."""

    def __init__(self, *texts: str) -> None:
        self.sets: dict[str, IpSet] = {}
        for t in texts:
            self.restore(t)

    def __contains__(self, name: str) -> bool:
        return name in self.sets

    def restore(self, text: str) -> None:
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#") or line == "COMMIT":
                continue
            try:
                self._apply([w for w in shlex.split(line) if w != "-exist"], line)
            except RuleSyntaxError as e:
                raise RuleSyntaxError(f"ipset line {n}: {e}") from None

    def _apply(self, w: list[str], line: str) -> None:
        op = {"-N": "create", "-A": "add", "-D": "del", "-F": "flush", "-X": "destroy",
              "-W": "swap"}.get(w[0], w[0])
        if len(w) < 2:
            raise RuleSyntaxError(f"cannot read {line!r}")
        name = w[1]
        if op == "create":
            if len(w) < 3 or w[2] not in _TYPES:
                raise RuleSyntaxError(f"set type not modelled in {line!r}")
            if "family" in w and w[w.index("family") + 1] != "inet":
                raise RuleSyntaxError(f"only family inet is modelled: {line!r}")
            old = self.sets.get(name)
            if old is not None and old.type != w[2]:
                raise RuleSyntaxError(f"set {name} exists with type {old.type}: {line!r}")
            self.sets.setdefault(name, IpSet(name, w[2]))
            return
        s = self.sets.get(name)
        if s is None:
            raise RuleSyntaxError(f"the set {name} does not exist: {line!r}")
        if op in ("add", "del"):
            if len(w) < 3:
                raise RuleSyntaxError(f"{op} without an entry: {line!r}")
            entry = s.parse_entry(w[2], line)
            if op == "add":
                s.entries.add(entry)
            else:
                s.entries.discard(entry)
        elif op == "flush":
            s.entries.clear()
        elif op == "destroy":
            del self.sets[name]
        elif op == "swap":
            other = self.sets.get(w[2]) if len(w) > 2 else None
            if other is None:
                raise RuleSyntaxError(f"swap with a missing set: {line!r}")
            s.entries, other.entries = other.entries, s.entries
            s.type, other.type = other.type, s.type
        else:
            raise RuleSyntaxError(f"cannot read {line!r}")

    def match(self, name: str, flags: list[str], src: str, dst: str, proto: str,
              port: int, where: str) -> bool:
        """xt_set's test of one packet against set `name` with its direction flags."""
        return self.lookup(name, flags, src, dst, proto, port, where)[1] is not None

    def lookup(self, name: str, flags: list[str], src: str, dst: str, proto: str,
               port: int, where: str) -> tuple[str, str | None]:
        """(what the packet is looked up as, `ipset test NAME <it>`'s argument; the entry
        holding it as `ipset save` writes it, None when the packet is not in the set)."""
        s = self.sets.get(name)
        if s is None:
            raise TraceError(f"the set {name} does not exist: {where!r}")
        values = []
        for kind, flag in zip(s.dims, flags[:len(s.dims)], strict=False):
            if kind in ("ip", "net"):
                values.append(ipaddress.IPv4Address(src if flag == "src" else dst))
            elif flag == "src":
                raise TraceError(f"source ports are not modelled: {where!r}")
            else:
                values.append((proto, port))
        key = ",".join(str(v) if isinstance(v, ipaddress.IPv4Address)
                       else (str(v[1]) if kind == "bport" else f"{v[0]}:{v[1]}")
                       for kind, v in zip(s.dims, values, strict=False))
        if len(flags) < len(s.dims):  # ip_set_test: fewer flags than dimensions never match
            return key, None
        entry = s.find(values)
        return key, None if entry is None else _entry_text(entry)
