"""Where does a packet end up? A small interpreter over rendered kube-proxy rules.

Reads the text netsim's renderers write (or what a node holds) and walks one new
connection through it, the way upstream kube-proxy's unit tests do (`tracePacket` /
`runPacketFlowTests` in pkg/proxy/iptables/proxier_test.go and pkg/proxy/nftables/
helpers_test.go), so that a renderer test can say "10.0.0.2 -> 172.30.0.41:80 reaches
10.180.0.1:80, masqueraded" instead of comparing lines. Pure Python, no root.

Two front ends, one result (`Trace`):
- `IptablesRules`: iptables-restore / iptables-save text, restored with `--noflush`
  semantics (a `:CHAIN` line creates or flushes that chain, `-X` deletes it), so a full
  sync followed by partial syncs composes like on a node. The built-in chains' jumps
  (which kube-proxy inserts out of band, `iptables -I`) come from the text when it has them
  (iptables-save) or from `inserted`.
- `NftRules`: an `nft -f` transaction (`add` / `flush` / `delete` of tables, chains, rules,
  sets, maps and elements), base chains ordered by hook and priority as the kernel runs them.

The walk follows the kernel's hooks for a NEW connection: PREROUTING (or OUTPUT when the
source is a local address), routing (INPUT if the destination, after DNAT, is local, else
FORWARD), POSTROUTING; a locally generated packet to a local address goes OUTPUT,
POSTROUTING, INPUT. Marks, `RETURN`/`return`, `-g`/`goto`, `MARK`, `MASQUERADE` and the
`masquerading` chain are interpreted, not guessed: `masquerade` is true when the
POSTROUTING rules masquerade the packet. Random load balancing (`-m statistic`,
`numgen random`) takes every branch and reports every endpoint, in rule order, as
upstream's tracer does ("10.180.0.1:80, 10.180.0.2:80"). Session-affinity lookups
(`-m recent --rcheck`, `ip saddr @affinity-...`) never match: the client is new.

`-m set --match-set NAME dst,dst` (kube-proxy's IPVS mode, NetworkPolicy agents) tests the
sets given as `ipsets=` (netsim.inspect.ipsets: the renderer's `ipset restore` text or a
node's `ipset save`); `-m ipvs` matches what IPVS forwarded. The IPVS mode's whole walk
(netfilter, then the IPVS virtual servers' DNAT at LOCAL_IN) is netsim.inspect.ipvsflow.

Only the syntax netsim's renderers (and kube-proxy) emit is understood; anything else
raises `RuleSyntaxError` naming the rule, so an unknown match can never silently pass.
IPv4 only.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "IptablesRules",
    "NftRules",
    "Packet",
    "Hop",
    "Trace",
    "RuleSyntaxError",
    "TraceError",
]

MAX_DEPTH = 64  # chain nesting; deeper means a loop


class RuleSyntaxError(ValueError):
    """The text holds a line or a match this interpreter does not understand."""


class TraceError(RuntimeError):
    """The rules cannot be walked (a jump to a missing chain, a loop, a missing hook)."""


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection."""

    src: str
    dst: str
    port: int
    proto: str = "tcp"  # tcp, udp or sctp (lower case, as in the rules)


@dataclass(frozen=True)
class SetLookup:
    """One `-m set` match of a rule that matched: the packet looked up in an ipset."""

    name: str
    flags: str  # "dst,dst"
    key: str  # what was looked up: `ipset test NAME KEY`
    entry: str  # the set's entry holding it ("": not in the set, a `!` match)


@dataclass(frozen=True)
class Hop:
    """One rule that matched on the way (in the order they matched); `sets`: the ipset
    lookups its matches made."""

    table: str
    chain: str
    rule: str
    sets: tuple[SetLookup, ...] = ()


@dataclass
class Trace:
    """What happened to the packet.

    `endpoints`: every DNAT destination the packet may take ("ip:port"); `verdict`:
    "ACCEPT" when nothing dropped it (it passes, DNATed or not), else "DROP" or "REJECT";
    `masquerade`: whether POSTROUTING source-NATs it; `hops`: the rules that matched."""

    packet: Packet
    hops: list[Hop] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    verdict: str = "ACCEPT"
    masquerade: bool = False
    accepted_by_rule: bool = False  # an explicit ACCEPT (e.g. a health check node port)

    @property
    def output(self) -> str:
        """Upstream's tracePacket output: the endpoints, or DROP / REJECT, or ACCEPT for a
        packet a rule accepted without DNAT, or "" when no rule had anything to say."""
        outs = list(self.endpoints)
        if self.verdict in ("DROP", "REJECT"):
            outs.append(self.verdict)
        elif self.accepted_by_rule and not outs:
            outs.append("ACCEPT")
        return ", ".join(outs)

    def describe(self) -> str:
        """A human-readable account: one line per hop, then the outcome."""
        p = self.packet
        lines = [f"{p.proto} {p.src} -> {p.dst}:{p.port}"]
        lines += [f"  {h.table}/{h.chain}: {h.rule}" for h in self.hops]
        lines.append(f"  => {self.output or 'no rule applies (' + self.verdict + ')'}"
                     f"{', masqueraded' if self.masquerade else ''}")
        return "\n".join(lines)


# --- shared helpers -----------------------------------------------------------------------

def _net(text: str, where: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError as e:
        raise RuleSyntaxError(f"bad address {text!r} in {where!r}") from e


def _in(ip: str, nets: Iterable[ipaddress.IPv4Network]) -> bool:
    addr = ipaddress.IPv4Address(ip)
    return any(addr in n for n in nets)


def _int(text: str, where: str) -> int:
    try:
        return int(text, 0)
    except ValueError as e:
        raise RuleSyntaxError(f"bad number {text!r} in {where!r}") from e


@dataclass
class _Walk:
    """The packet while it is walked: addresses (dst changes on DNAT), mark, results."""

    trace: Trace
    local: list[ipaddress.IPv4Network]
    src: str
    dst: str
    port: int
    proto: str
    mark: int = 0
    dnat_done: bool = False
    ipvs: tuple[str, str, int] | None = None  # the IPVS virtual server that forwarded it

    def is_local(self, ip: str) -> bool:
        return _in(ip, self.local)

    def hop(self, table: str, chain: str, rule: str, sets=()) -> None:
        self.trace.hops.append(Hop(table, chain, rule, tuple(sets)))

    @property
    def stopped(self) -> bool:
        return self.trace.verdict in ("DROP", "REJECT")

    def apply_dnat(self) -> None:
        if self.trace.endpoints and not self.dnat_done:
            self.dnat_done = True
            self.to(self.trace.endpoints[0])

    def to(self, endpoint: str) -> None:
        """The destination rewritten to "ip[:port]" (a DNAT, or IPVS's real server)."""
        ip, colon, port = endpoint.rpartition(":")
        self.dst, self.port = (ip, int(port)) if colon else (endpoint, self.port)


def _local_nets(local_ips: Iterable[str]) -> list[ipaddress.IPv4Network]:
    nets = [ipaddress.IPv4Network("127.0.0.0/8")]
    nets += [ipaddress.IPv4Network(f"{ip}/32") for ip in local_ips]
    return nets


def _walk_hooks(run_hook, packet: Packet, local_ips: Iterable[str]) -> Trace:
    """A new connection through the hooks, as the kernel runs them: PREROUTING (OUTPUT
    when the source is local), the DNAT, routing (INPUT for a local destination, else
    FORWARD), POSTROUTING; a local packet to a local address then comes in (INPUT)."""
    trace = Trace(packet)
    walk = _Walk(trace, _local_nets(local_ips), packet.src, packet.dst, packet.port,
                 packet.proto)
    local_src = walk.is_local(walk.src)
    run_hook(walk, "output" if local_src else "prerouting")
    walk.apply_dnat()
    dst_local = walk.is_local(walk.dst)
    if local_src:
        after = ["postrouting", "input"] if dst_local else ["postrouting"]
    else:
        after = ["input", "postrouting"] if dst_local else ["forward", "postrouting"]
    for hook in after:
        if walk.stopped:
            break
        run_hook(walk, hook)
    return trace


# --- iptables -----------------------------------------------------------------------------

BUILTIN_CHAINS = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}
# the targets iptables provides (everything else must be a chain)
_IPT_TARGETS = {"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "DNAT", "MASQUERADE"}
# chains kube-proxy always creates, used or not (upstream checkIPTablesRuleJumps' list)
KUBE_FIXED_CHAINS = frozenset({
    "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING",
    "KUBE-FORWARD", "KUBE-MARK-MASQ", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL",
})
_IPT_MODULES = {"comment", "tcp", "udp", "sctp", "addrtype", "statistic", "recent", "mark",
                "conntrack", "nfacct", "set", "ipvs", "physdev"}
# the negatable options (`! --opt`), as iptables-save prints them
_IPT_NEGATABLE = {"-s", "--source", "-d", "--destination", "-p", "--protocol", "--dport",
                  "--destination-port", "--dst-type", "--src-type", "--mark", "--ctstate",
                  "--match-set", "--ipvs", "--vdir", "--vaddr", "--vproto", "--vport",
                  "--physdev-is-in"}
_IPVS_OPTS = {"--vdir", "--vaddr", "--vproto", "--vport"}


@dataclass
class IptRule:
    """One `-A` rule: its matches (kind, negated, value) and its target."""

    raw: str
    matches: list[tuple[str, bool, object]]
    target: str | None = None
    goto: bool = False
    target_args: dict[str, str] = field(default_factory=dict)

    @property
    def probabilistic(self) -> bool:
        return any(k == "probability" for k, _, _ in self.matches)


def _parse_ipt_rule(raw: str, words: list[str]) -> IptRule:
    rule = IptRule(raw, [])
    i, neg = 0, False

    def value(n: int = 1) -> str:
        if i + n >= len(words):
            raise RuleSyntaxError(f"{words[i]} needs a value in {raw!r}")
        return words[i + n]

    while i < len(words):
        w = words[i]
        if w == "!":
            neg, i = True, i + 1
            continue
        step = 2
        if w in ("-s", "--source", "-d", "--destination"):
            kind = "src" if w in ("-s", "--source") else "dst"
            rule.matches.append((kind, neg, [_net(c, raw) for c in value().split(",")]))
        elif w in ("-p", "--protocol"):
            rule.matches.append(("proto", neg, value().lower()))
        elif w == "-m":
            if value() not in _IPT_MODULES:
                raise RuleSyntaxError(f"unknown match module -m {value()} in {raw!r}")
        elif w == "--comment" or w == "--nfacct-name":
            pass
        elif w in ("--dport", "--destination-port"):
            lo, colon, hi = value().partition(":")  # a range (NetworkPolicy endPort): lo:hi
            rule.matches.append(("dport", neg, (_int(lo, raw), _int(hi, raw) if colon
                                                 else _int(lo, raw))))
        elif w in ("--dst-type", "--src-type"):
            rule.matches.append((w[2:10], neg, value()))
        elif w == "--mode":
            if value() != "random":
                raise RuleSyntaxError(f"statistic --mode {value()} in {raw!r}")
        elif w == "--probability":
            rule.matches.append(("probability", neg, float(value())))
        elif w == "--name":
            rule.matches.append(("recent-name", neg, value()))
        elif w in ("--rcheck", "--update"):
            rule.matches.append(("recent-check", neg, None))
            step = 1
        elif w in ("--set", "--reap", "--rsource"):
            step = 1
        elif w == "--seconds":
            _int(value(), raw)
        elif w == "--mask":
            _net(value(), raw)
        elif w == "--mark":
            v, _, m = value().partition("/")
            rule.matches.append(("mark", neg, (_int(v, raw), _int(m or "0xffffffff", raw))))
        elif w == "--ctstate":
            rule.matches.append(("ctstate", neg, set(value().upper().split(","))))
        elif w == "--match-set":  # -m set: NAME and the direction flags (dst,dst)
            flags = value(2).split(",")
            if not 1 <= len(flags) <= 6 or set(flags) - {"src", "dst"}:
                raise RuleSyntaxError(f"bad --match-set flags {value(2)!r} in {raw!r}")
            rule.matches.append(("set", neg, (value(), flags)))
            step = 3
        elif w in ("--ipvs", "--physdev-is-in"):  # -m ipvs / -m physdev flags
            rule.matches.append((w[2:], neg, None))
            step = 1
        elif w in _IPVS_OPTS:
            v = value()
            if w == "--vdir" and v not in ("ORIGINAL", "REPLY"):
                raise RuleSyntaxError(f"--vdir {v} in {raw!r}")
            rule.matches.append(("ipvs-" + w[3:], neg,
                                 _net(v, raw) if w == "--vaddr" else
                                 _int(v, raw) if w == "--vport" else
                                 v.lower() if w == "--vproto" else v))
        elif w in ("-j", "--jump", "-g", "--goto"):
            rule.target, rule.goto = value(), w in ("-g", "--goto")
            i += 2
            _parse_target_args(rule, words[i:])
            break
        else:
            raise RuleSyntaxError(f"unknown option {w!r} in {raw!r}")
        if neg and w not in _IPT_NEGATABLE:
            raise RuleSyntaxError(f"'!' before {w} in {raw!r}")
        neg = False
        i += step
    return rule


_TARGET_OPTS = {
    "MARK": {"--or-mark", "--xor-mark", "--set-xmark", "--set-mark", "--and-mark"},
    "DNAT": {"--to-destination"},
    "MASQUERADE": {"--random-fully", "--random"},
    "REJECT": {"--reject-with"},
}


def _parse_target_args(rule: IptRule, words: list[str]) -> None:
    allowed = _TARGET_OPTS.get(rule.target or "", set())
    i = 0
    while i < len(words):
        w = words[i]
        if w not in allowed:
            raise RuleSyntaxError(f"unknown option {w!r} for -j {rule.target} in {rule.raw!r}")
        if w in ("--random-fully", "--random"):
            rule.target_args[w] = ""
            i += 1
        else:
            if i + 1 >= len(words):
                raise RuleSyntaxError(f"{w} needs a value in {rule.raw!r}")
            rule.target_args[w] = words[i + 1]
            i += 2
    if rule.target == "DNAT" and "--to-destination" not in rule.target_args:
        raise RuleSyntaxError(f"DNAT without --to-destination in {rule.raw!r}")
    if rule.target == "MARK" and not rule.target_args:
        raise RuleSyntaxError(f"MARK without a mark in {rule.raw!r}")


@dataclass
class _IptChain:
    rules: list[IptRule] = field(default_factory=list)
    policy: str = "-"


class IptablesRules:
    """Tables of chains, built by restoring texts in order (`iptables-restore --noflush`)."""

    def __init__(self, *texts: str, inserted: Iterable[tuple[str, str, list[str]]] = (),
                 ipsets=None) -> None:
        """`ipsets`: the sets `-m set` rules test (netsim.inspect.ipsets.IpSets, or its
        `ipset restore` / `ipset save` text); a rule naming a set not in them is refused,
        as iptables-restore refuses it."""
        if isinstance(ipsets, str):
            from netsim.inspect.ipsets import IpSets  # noqa: PLC0415 (it imports this module)
            ipsets = IpSets(ipsets)
        self.ipsets = ipsets
        self.tables: dict[str, dict[str, _IptChain]] = {}
        for t in texts:
            self.restore(t)
        for table, chain, args in inserted:
            self.insert(table, chain, args)

    # -- loading --

    def _table(self, name: str) -> dict[str, _IptChain]:
        if name not in self.tables:
            if name not in BUILTIN_CHAINS:
                raise RuleSyntaxError(f"unknown table *{name}")
            self.tables[name] = {c: _IptChain(policy="ACCEPT") for c in BUILTIN_CHAINS[name]}
        return self.tables[name]

    def restore(self, text: str) -> None:
        """Apply one restore text: per table, `:CHAIN` creates/flushes, `-A` appends,
        `-X` deletes; checked at COMMIT (every jump target exists), as iptables-restore."""
        table: str | None = None
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                table = line[1:].strip()
                self._table(table)
                continue
            if table is None:
                raise RuleSyntaxError(f"line {n}: {line!r} outside a table")
            chains = self.tables[table]
            if line == "COMMIT":
                self._check_targets(table)
                table = None
            elif line.startswith(":"):
                name, _, rest = line[1:].partition(" ")
                policy = rest.split()[0] if rest.split() else "-"
                old = chains.get(name)
                chains[name] = _IptChain(policy=policy if policy != "-" else
                                         (old.policy if old else "-"))
            elif line.startswith(("-A ", "-I ")):
                words = shlex.split(line)
                if len(words) < 2 or words[1] not in chains:
                    raise RuleSyntaxError(f"line {n}: rule for a chain not declared: {line!r}")
                rule = self._checked(_parse_ipt_rule(line, words[2:]))
                if words[0] == "-A":
                    chains[words[1]].rules.append(rule)
                else:
                    chains[words[1]].rules.insert(0, rule)
            elif line.startswith("-X "):
                name = line[3:].strip()
                if name not in chains or chains[name].rules:
                    raise RuleSyntaxError(f"line {n}: -X of a missing or non-empty chain {name}")
                del chains[name]
            else:
                raise RuleSyntaxError(f"line {n}: cannot read {line!r}")
        if table is not None:
            raise RuleSyntaxError(f"table *{table} has no COMMIT")

    def insert(self, table: str, chain: str, args: list[str]) -> None:
        """kube-proxy's out-of-band jump: `iptables -N TARGET` (EnsureChain), then
        `iptables -t TABLE -I CHAIN args...` (the rule goes to the top of the chain)."""
        chains = self._table(table)
        if chain not in chains:
            raise RuleSyntaxError(f"-I into a missing chain {table}/{chain}")
        raw = f"-I {chain} " + " ".join(shlex.quote(a) for a in args)
        rule = self._checked(_parse_ipt_rule(raw, list(args)))
        if rule.target and rule.target not in _IPT_TARGETS:
            chains.setdefault(rule.target, _IptChain())
        chains[chain].rules.insert(0, rule)

    def _checked(self, rule: IptRule) -> IptRule:
        for kind, _, v in rule.matches:
            if kind == "set" and (self.ipsets is None or v[0] not in self.ipsets):
                raise RuleSyntaxError(f"Set {v[0]} doesn't exist: {rule.raw!r}")
        return rule

    def _check_targets(self, table: str) -> None:
        chains = self.tables[table]
        for name, ch in chains.items():
            for r in ch.rules:
                if r.target and r.target not in _IPT_TARGETS and r.target not in chains:
                    raise RuleSyntaxError(f"{table}/{name}: jump to a missing chain "
                                          f"{r.target}: {r.raw!r}")

    # -- checks --

    def check_rule_jumps(self, fixed: Iterable[str] = KUBE_FIXED_CHAINS) -> list[str]:
        """Upstream checkIPTablesRuleJumps over the restored state: every chain a rule jumps
        to has rules (KUBE-NODEPORTS may be empty), every chain is jumped to (built-ins and
        `fixed` excepted). Missing targets are refused while loading. [] = consistent."""
        problems = []
        for table, chains in sorted(self.tables.items()):
            builtin = set(BUILTIN_CHAINS[table])
            jumps = [(name, r.target) for name, ch in chains.items() for r in ch.rules
                     if r.target and r.target in chains]
            jumped = {t for _, t in jumps}
            # the built-in chains' jumps are kube-proxy's out-of-band ones (-I): their
            # targets may be empty, as upstream's check (over the restore text) allows
            empty = sorted({t for src, t in jumps if src not in builtin and not chains[t].rules
                            and t != "KUBE-NODEPORTS"})
            if empty:
                problems.append(f"some chains in {table} are jumped to but have no rules: {empty}")
            unused = sorted(set(chains) - jumped - builtin - set(fixed))
            if unused:
                problems.append(f"some chains in {table} are created but not used: {unused}")
        return problems

    def chains(self, table: str) -> set[str]:
        return set(self.tables.get(table, {}))

    # -- walking --

    def trace(self, src: str, dst: str, port: int, proto: str = "tcp", *,
              local_ips: Iterable[str] = ()) -> Trace:
        """Walk a new connection from src to dst:port; `local_ips`: the node's addresses
        (`--src-type/--dst-type LOCAL`, and whether the packet is delivered locally)."""
        return _walk_hooks(self._hook, Packet(src, dst, port, proto.lower()), local_ips)

    _HOOK_TABLES = {"prerouting": ("nat",), "output": ("nat", "filter"),
                    "input": ("filter",), "forward": ("filter",), "postrouting": ("nat",)}

    def _hook(self, walk: _Walk, hook: str) -> None:
        for table in self._HOOK_TABLES[hook]:
            if walk.stopped:
                return
            if table == "filter" and hook == "output":
                walk.apply_dnat()  # nat OUTPUT ran first
            self.run_builtin(walk, table, hook.upper())

    def run_builtin(self, walk: _Walk, table: str, name: str) -> None:
        """One built-in chain of one table, its policy applied (filter) when nothing
        decided."""
        chains = self.tables.get(table)
        if chains is None or name not in chains:
            raise TraceError(f"no {table} table with a {name} chain in the rules")
        done = self._run(walk, table, name, 0)
        if not done and chains[name].policy in ("DROP", "REJECT") and table == "filter":
            walk.trace.verdict = chains[name].policy

    def _matches(self, walk: _Walk, r: IptRule, sets: list | None = None) -> bool:
        """Whether `r` matches the packet; the set lookups that decided it go to `sets`."""
        for kind, neg, v in r.matches:
            if kind in ("src", "dst"):
                ok = _in(walk.src if kind == "src" else walk.dst, v)  # type: ignore[arg-type]
            elif kind == "proto":
                ok = v in ("all", walk.proto)
            elif kind == "dport":
                ok = v[0] <= walk.port <= v[1]  # type: ignore[index]
            elif kind in ("src-type", "dst-type"):
                if v != "LOCAL":
                    raise TraceError(f"addrtype {v} is not modelled (only LOCAL): {r.raw!r}")
                ok = walk.is_local(walk.src if kind == "src-type" else walk.dst)
            elif kind in ("probability", "recent-name"):
                ok = True  # every random branch is taken
            elif kind == "recent-check":
                ok = False  # a new client has no affinity entry yet
            elif kind == "mark":
                val, mask = v  # type: ignore[misc]
                ok = (walk.mark & mask) == val
            elif kind == "ctstate":
                states = {"NEW"} | ({"DNAT"} if walk.dnat_done else set())
                ok = bool(states & v)  # type: ignore[operator]
            elif kind == "set":
                name, flags = v  # type: ignore[misc]
                key, entry = self.ipsets.lookup(name, flags, walk.src, walk.dst, walk.proto,
                                                walk.port, r.raw)
                ok = entry is not None
                if sets is not None:
                    sets.append(SetLookup(name, ",".join(flags), key, entry or ""))
            elif kind.startswith("ipvs"):
                ok = _ipvs_match(walk, kind, v)
            elif kind == "physdev-is-in":
                raise TraceError(f"bridge ports (physdev) are not modelled: {r.raw!r}")
            else:
                raise TraceError(f"cannot evaluate {kind} in {r.raw!r}")
            if ok == neg:
                return False
        return True

    def _run(self, walk: _Walk, table: str, chain: str, depth: int) -> bool:
        """Run one chain; True when a terminating target was hit."""
        if depth > MAX_DEPTH:
            raise TraceError(f"chains nest deeper than {MAX_DEPTH} at {table}/{chain}: a loop?")
        for r in self.tables[table][chain].rules:
            sets: list = []
            if not self._matches(walk, r, sets):
                continue
            walk.hop(table, chain, r.raw, sets)
            t = r.target
            if t is None:
                continue
            if t == "MARK":
                walk.mark = _mark(walk.mark, r.target_args)
            elif t == "RETURN":
                return False
            elif t in ("ACCEPT", "DROP", "REJECT"):
                if t == "ACCEPT":
                    walk.trace.accepted_by_rule = True
                else:
                    walk.trace.verdict = t
                return True
            elif t == "DNAT":
                walk.trace.endpoints.append(r.target_args["--to-destination"])
                return True
            elif t == "MASQUERADE":
                walk.trace.masquerade = True
                return True
            else:
                done = self._run(walk, table, t, depth + 1)
                if r.goto:
                    return done
                if done and not r.probabilistic:
                    return True
        return False


def _ipvs_match(walk: _Walk, kind: str, v) -> bool:
    """-m ipvs: the packet was forwarded by IPVS (`--ipvs`), in the original direction (a
    new connection's first packet is), to that virtual address / protocol / port."""
    if walk.ipvs is None:
        return False
    proto, vip, vport = walk.ipvs
    if kind == "ipvs-dir":
        return v == "ORIGINAL"
    if kind == "ipvs-addr":
        return ipaddress.IPv4Address(vip) in v
    if kind == "ipvs-proto":
        return v == proto
    if kind == "ipvs-port":
        return v == vport
    return True  # --ipvs


def _mark(mark: int, args: dict[str, str]) -> int:
    for opt, text in args.items():
        v, _, m = text.partition("/")
        val = int(v, 0)
        if opt == "--or-mark":
            mark |= val
        elif opt == "--xor-mark":
            mark ^= val
        elif opt == "--and-mark":
            mark &= val
        else:  # --set-xmark / --set-mark value[/mask]
            mask = int(m, 0) if m else 0xFFFFFFFF
            mark = (mark & ~mask) ^ val if opt == "--set-xmark" else (mark & ~mask) | val
    return mark


# --- nftables -----------------------------------------------------------------------------

# kube-proxy's helper chains, which exist whether or not anything uses them yet
KUBE_NFT_FIXED_CHAINS = frozenset({"reject-chain", "mark-for-masquerade"})


@dataclass
class NftChain:
    name: str
    hook: str | None = None
    kind: str | None = None  # filter / nat for base chains
    priority: int = 0
    policy: str = "accept"
    rules: list[tuple[str, list[tuple]]] = field(default_factory=list)  # (raw, ops)


@dataclass
class NftSet:
    name: str
    is_map: bool
    elements: dict[tuple[str, ...], tuple | None] = field(default_factory=dict)  # key -> verdict


_COMMENT = re.compile(r'\s*comment "[^"]*"\s*$')
_VERDICT = re.compile(r"^(jump|goto) (\S+)$|^(accept|drop|reject|return|continue)$")
_NFT_OPS: list[tuple[re.Pattern, str]] = [(re.compile(p), k) for p, k in (
    (r"^ip (saddr|daddr) \. meta l4proto \. th dport (vmap )?@(\S+)", "concat3"),
    (r"^meta l4proto \. th dport (vmap )?@(\S+)", "concat2"),
    (r"^ip (saddr|daddr) (!= )?@(\S+)", "in_set"),
    (r"^ip (saddr|daddr) (!= )?\{([^}]*)\}", "addr"),
    (r"^ip (saddr|daddr) (!= )?([0-9./]+)(?=\s|$)", "addr"),
    (r"^fib (saddr|daddr) type (!= )?local", "fib_local"),
    (r"^ct state (\S+)", "ct_state"),
    (r"^ct status (! |!= )?dnat(?=\s|$)", "ct_dnat"),
    (r"^meta l4proto (!= )?(tcp|udp|sctp)(?=\s|$)", "l4proto"),
    (r"^(tcp|udp|sctp) dport (!= )?(\d+)(?:-(\d+))?", "dport"),
    (r"^(?:meta )?mark (?:and|&) (\S+) (==|!=) (\S+)", "mark_cmp"),
    (r"^(?:meta )?mark set (?:meta )?mark (or|xor|and|\||\^|&) (\S+)", "mark_set"),
    (r"^numgen random mod (\d+) vmap \{([^}]*)\}", "numgen"),
    (r"^update @(\S+) \{ ip saddr \}", "update"),
    (r"^dnat to (\S+)", "dnat"),
    (r"^masquerade(?: fully-random| random| persistent)*(?=\s|$)", "masquerade"),
    (r"^(jump|goto) (\S+)", "verdict"),
    (r"^reject with (?:tcp reset|icmpx? (?:type )?[\w-]+)(?=\s|$)", "reject_with"),
    (r"^(accept|drop|reject|return)(?=\s|$)", "verdict"),
    (r"^counter(?=\s|$)", "counter"),
)]


def _parse_nft_rule(raw: str) -> list[tuple]:
    rest = _COMMENT.sub("", raw).strip()
    ops: list[tuple] = []
    while rest:
        kind, m = next(((k, m) for p, k in _NFT_OPS if (m := p.match(rest))), ("", None))
        if m is None:
            raise RuleSyntaxError(f"cannot read {rest!r} in nft rule {raw!r}")
        g = m.groups()
        if kind == "concat3":
            ops.append(("lookup", (g[0], "proto", "dport"), g[2], bool(g[1])))
        elif kind == "concat2":
            ops.append(("lookup", ("proto", "dport"), g[1], bool(g[0])))
        elif kind == "in_set":
            ops.append(("in_set", g[0], bool(g[1]), g[2]))
        elif kind == "addr":
            nets = [_net(a, raw) for a in g[2].replace(" ", "").split(",") if a]
            ops.append(("addr", g[0], bool(g[1]), nets))
        elif kind == "fib_local":
            ops.append(("fib_local", g[0], bool(g[1])))
        elif kind == "ct_state":
            ops.append(("ct_state", set(g[0].split(","))))
        elif kind == "ct_dnat":
            ops.append(("ct_dnat", bool(g[0])))
        elif kind == "l4proto":
            ops.append(("l4proto", bool(g[0]), g[1]))
        elif kind == "dport":
            ops.append(("dport", g[0], bool(g[1]), (int(g[2]), int(g[3] or g[2]))))
        elif kind == "mark_cmp":
            ops.append(("mark_cmp", _int(g[0], raw), g[1], _int(g[2], raw)))
        elif kind == "mark_set":
            how = {"|": "or", "^": "xor", "&": "and"}.get(g[0], g[0])
            ops.append(("mark_set", how, _int(g[1], raw)))
        elif kind == "numgen":
            branches = [_parse_verdict(b.split(":", 1)[1].strip(), raw)
                        for b in g[1].split(",") if b.strip()]
            if len(branches) != int(g[0]):
                raise RuleSyntaxError(f"numgen mod {g[0]} with {len(branches)} branches: {raw!r}")
            ops.append(("numgen", branches))
        elif kind == "update":
            ops.append(("update", g[0]))
        elif kind == "dnat":
            ops.append(("dnat", g[0]))
        elif kind == "masquerade":
            ops.append(("masquerade",))
        elif kind == "verdict":
            ops.append(_parse_verdict(m.group(0), raw))
        elif kind == "reject_with":  # how it is refused does not change the verdict
            ops.append(("verdict", "reject", None))
        rest = rest[m.end():].strip()
    return ops


def _parse_verdict(text: str, where: str) -> tuple:
    m = _VERDICT.match(text.strip())
    if not m:
        raise RuleSyntaxError(f"cannot read verdict {text!r} in {where!r}")
    if m.group(1):
        return ("verdict", m.group(1), m.group(2))
    return ("verdict", m.group(3), None)


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside quotes."""
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


_CHAIN_SPEC = re.compile(r"type (\w+) hook (\w+) priority (-?\d+)")
_POLICY = re.compile(r"policy (accept|drop)")
# the ip family's named priorities, as `nft list` prints them ("dstnat - 10")
_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
               "srcnat": 100}
_LISTED_PRIORITY = re.compile(r"priority (\w+|-?\d+)(?: ([+-]) (\d+))?")


class NftRules:
    """One nftables table, built by running `nft -f` transactions in order."""

    def __init__(self, *texts: str) -> None:
        self.table: str | None = None
        self.chains: dict[str, NftChain] = {}
        self.sets: dict[str, NftSet] = {}
        for t in texts:
            self.run(t)

    @classmethod
    def from_listing(cls, text: str) -> NftRules:
        """The table as `nft list table ip NAME` prints it (what a node holds)."""
        return cls(_listing_to_transaction(text))

    def run(self, text: str) -> None:
        """Apply a transaction (no rollback: a failing line raises RuleSyntaxError)."""
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith("#"):
                try:
                    self._apply(line)
                except RuleSyntaxError as e:
                    raise RuleSyntaxError(f"line {n}: {e}") from None

    def _apply(self, line: str) -> None:
        w = line.split(" ", 5)
        if len(w) < 4 or w[0] not in ("add", "flush", "delete") or w[2] != "ip":
            raise RuleSyntaxError(f"cannot read {line!r}")
        op, kind, table = w[0], w[1], w[3]
        if kind == "table":
            if op == "delete":
                self.table, self.chains, self.sets = None, {}, {}
            elif op == "add":
                self.table = table
            else:
                for c in self.chains.values():
                    c.rules.clear()
                for s in self.sets.values():
                    s.elements.clear()
            return
        if self.table is None or table != self.table:
            raise RuleSyntaxError(f"table ip {table} does not exist: {line!r}")
        if len(w) < 5:
            raise RuleSyntaxError(f"cannot read {line!r}")
        name, rest = w[4], (w[5] if len(w) > 5 else "")
        if kind == "chain":
            self._chain(op, name, rest, line)
        elif kind == "rule":
            if name not in self.chains:
                raise RuleSyntaxError(f"no chain {name}: {line!r}")
            ops = _parse_nft_rule(rest)
            for ref in _refs(ops):
                if ref not in self.chains:
                    raise RuleSyntaxError(f"jump to a missing chain {ref}: {line!r}")
            for s in _set_refs(ops):
                if s not in self.sets:
                    raise RuleSyntaxError(f"no set or map {s}: {line!r}")
            self.chains[name].rules.append((rest, ops))
        elif kind in ("set", "map"):
            if op == "add":
                self.sets.setdefault(name, NftSet(name, kind == "map"))
            elif name not in self.sets:
                raise RuleSyntaxError(f"no {kind} {name}: {line!r}")
            elif op == "flush":
                self.sets[name].elements.clear()
            else:
                del self.sets[name]
        elif kind == "element":
            self._element(op, name, rest, line)
        else:
            raise RuleSyntaxError(f"cannot read {line!r}")

    def _chain(self, op: str, name: str, rest: str, line: str) -> None:
        if op == "add":
            m = _CHAIN_SPEC.search(rest)
            ch = self.chains.setdefault(name, NftChain(name))
            if m:
                ch.kind, ch.hook, ch.priority = m.group(1), m.group(2), int(m.group(3))
            pol = _POLICY.search(rest)
            if pol:
                ch.policy = pol.group(1)
            return
        if name not in self.chains:
            raise RuleSyntaxError(f"no chain {name}: {line!r}")
        if op == "flush":
            self.chains[name].rules.clear()
        else:
            users = [c.name for c in self.chains.values() for _, ops in c.rules
                     if name in _refs(ops)]
            users += [s.name for s in self.sets.values()
                      for v in s.elements.values() if v and v[2] == name]
            if users:
                raise RuleSyntaxError(f"chain {name} is still used by {users[0]}: {line!r}")
            del self.chains[name]

    def _element(self, op: str, name: str, rest: str, line: str) -> None:
        s = self.sets.get(name)
        if s is None:
            raise RuleSyntaxError(f"no set or map {name}: {line!r}")
        body = rest.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise RuleSyntaxError(f"cannot read elements in {line!r}")
        for elem in _split_top(body[1:-1]):
            key_text, _, value = elem.partition(" : ")
            key_text = re.sub(r'\s*comment "[^"]*"', "", key_text).strip()
            key = tuple(k.strip() for k in key_text.split(" . "))
            if op == "delete":
                if key not in s.elements:
                    raise RuleSyntaxError(f"no element {key_text} in {name}: {line!r}")
                del s.elements[key]
                continue
            verdict = _parse_verdict(value, line) if s.is_map else None
            if s.is_map and verdict[2] and verdict[2] not in self.chains:  # type: ignore[index]
                raise RuleSyntaxError(f"element points at a missing chain: {line!r}")
            s.elements[key] = verdict

    # -- checks --

    def check_rule_jumps(self, fixed: Iterable[str] = KUBE_NFT_FIXED_CHAINS) -> list[str]:
        """checkIPTablesRuleJumps for a table: every chain jumped to (from a rule or a map
        element) has rules, every non-base chain with rules is jumped to (`fixed`
        excepted). (An empty, unused chain is a flushed stale chain waiting for its
        deletion: allowed.)"""
        jumped: set[str] = set()
        for c in self.chains.values():
            for _, ops in c.rules:
                jumped |= _refs(ops)
        for s in self.sets.values():
            jumped |= {v[2] for v in s.elements.values() if v and v[2]}
        problems = []
        empty = sorted(c for c in jumped if not self.chains[c].rules)
        if empty:
            problems.append(f"some chains are jumped to but have no rules: {empty}")
        unused = sorted(c.name for c in self.chains.values() if c.hook is None and c.rules
                        and c.name not in jumped and c.name not in set(fixed))
        if unused:
            problems.append(f"some chains are created but not used: {unused}")
        return problems

    # -- walking --

    def trace(self, src: str, dst: str, port: int, proto: str = "tcp", *,
              local_ips: Iterable[str] = ()) -> Trace:
        """Walk a new connection (see the module docstring); `local_ips` as for iptables."""
        if not any(c.hook for c in self.chains.values()):
            raise TraceError("no base chains in the table")
        return _walk_hooks(self._hook, Packet(src, dst, port, proto.lower()), local_ips)

    def _hook(self, walk: _Walk, hook: str) -> None:
        base = sorted((c for c in self.chains.values() if c.hook == hook),
                      key=lambda c: c.priority)
        for c in base:
            if walk.stopped:
                return
            if c.kind == "nat" and walk.dnat_done and hook in ("prerouting", "output"):
                continue
            if not self._run(walk, c, 0) and c.policy == "drop":
                walk.trace.verdict = "DROP"
            if c.kind == "nat":
                walk.apply_dnat()

    def _run(self, walk: _Walk, chain: NftChain, depth: int) -> bool:
        """Run one chain; True when a terminal verdict or statement was reached."""
        if depth > MAX_DEPTH:
            raise TraceError(f"chains nest deeper than {MAX_DEPTH} at {chain.name}: a loop?")
        for raw, ops in chain.rules:
            result = self._rule(walk, chain, raw, ops, depth)
            if result is not None:
                return result
        return False

    def _rule(self, walk: _Walk, chain: NftChain, raw: str, ops: list[tuple],
              depth: int) -> bool | None:
        """None: go on with the next rule; True/False: the chain ends (terminal or not)."""
        recorded = False

        def hop() -> None:
            nonlocal recorded
            if not recorded:
                walk.hop(self.table or "", chain.name, raw)
                recorded = True

        for op in ops:
            kind = op[0]
            if kind in ("lookup", "in_set", "addr", "fib_local", "ct_state", "ct_dnat",
                        "l4proto", "dport", "mark_cmp"):
                if kind == "lookup" and op[3]:  # a vmap: its element is the verdict
                    verdict = self._lookup(walk, op)
                    if verdict is None:
                        return None
                    hop()
                    return self._verdict(walk, verdict, depth)
                if not self._match(walk, op):
                    return None
                continue
            hop()
            if kind == "mark_set":
                _, how, val = op
                walk.mark = (walk.mark | val if how == "or" else
                             walk.mark ^ val if how == "xor" else walk.mark & val)
            elif kind in ("update", "counter"):
                pass
            elif kind == "dnat":
                walk.trace.endpoints.append(op[1])
                return True
            elif kind == "masquerade":
                walk.trace.masquerade = True
                return True
            elif kind == "numgen":
                for branch in op[1]:
                    self._verdict(walk, branch, depth)
                return True
            elif kind == "verdict":
                return self._verdict(walk, op, depth)
        return None

    def _verdict(self, walk: _Walk, op: tuple, depth: int) -> bool | None:
        _, what, target = op
        if what in ("jump", "goto"):
            if target not in self.chains:
                raise TraceError(f"{what} to a missing chain {target}")
            done = self._run(walk, self.chains[target], depth + 1)
            if what == "goto" or done:
                return done
            return None
        if what == "return":
            return False
        if what == "continue":
            return None
        if what == "accept":
            walk.trace.accepted_by_rule = True
        else:
            walk.trace.verdict = what.upper()
        return True

    def _key(self, walk: _Walk, fields: tuple[str, ...]) -> tuple[str, ...]:
        vals = {"saddr": walk.src, "daddr": walk.dst, "proto": walk.proto,
                "dport": str(walk.port)}
        return tuple(vals[f] for f in fields)

    def _lookup(self, walk: _Walk, op: tuple) -> tuple | None:
        _, fields, name, _ = op
        s = self.sets[name]
        key = self._key(walk, fields)
        if key in s.elements:
            return s.elements[key]
        return None

    def _match(self, walk: _Walk, op: tuple) -> bool:
        kind = op[0]
        if kind == "lookup":
            return self._key(walk, op[1]) in self.sets[op[2]].elements
        if kind == "in_set":
            _, fld, neg, name = op
            if name.startswith("affinity-"):
                return neg  # a new client is in no affinity set
            ip = walk.src if fld == "saddr" else walk.dst
            return ((ip,) in self.sets[name].elements) != neg
        if kind == "addr":
            _, fld, neg, nets = op
            return _in(walk.src if fld == "saddr" else walk.dst, nets) != neg
        if kind == "fib_local":
            _, fld, neg = op
            return walk.is_local(walk.src if fld == "saddr" else walk.dst) != neg
        if kind == "ct_state":
            return "new" in op[1]
        if kind == "ct_dnat":  # the connection's destination was rewritten
            return walk.dnat_done != op[1]
        if kind == "l4proto":
            _, neg, proto = op
            return (walk.proto == proto) != neg
        if kind == "dport":
            _, proto, neg, (lo, hi) = op
            return (walk.proto == proto and lo <= walk.port <= hi) != neg
        if kind == "mark_cmp":
            _, mask, cmp, val = op
            return ((walk.mark & mask) == val) == (cmp == "==")
        raise TraceError(f"cannot evaluate {op!r}")


def _listed_priority(spec: str) -> str:
    """`type nat hook prerouting priority dstnat; policy accept;` -> transaction form."""
    m = _LISTED_PRIORITY.search(spec)
    if not m:
        raise RuleSyntaxError(f"cannot read chain spec {spec!r}")
    base = m.group(1)
    prio = _PRIORITIES[base] if base in _PRIORITIES else _int(base, spec)
    if m.group(2):
        prio += int(m.group(3)) * (1 if m.group(2) == "+" else -1)
    typ = re.search(r"type (\w+) hook (\w+)", spec)
    if not typ:
        raise RuleSyntaxError(f"cannot read chain spec {spec!r}")
    pol = _POLICY.search(spec)
    return (f"{{ type {typ.group(1)} hook {typ.group(2)} priority {prio} ; "
            f"policy {pol.group(1) if pol else 'accept'} ; }}")


def _listing_to_transaction(text: str) -> str:
    """`nft list table` output as the equivalent `nft -f` transaction: table, chains, sets
    and maps, then rules, then elements (dynamic sets' elements, i.e. affinity entries
    with their expiry, are left out: a traced client is new)."""
    lines = [ln.strip() for ln in text.splitlines()]
    head = next((ln for ln in lines if ln.startswith("table ")), None)
    if head is None or not re.fullmatch(r"table ip \S+ \{", head):
        raise RuleSyntaxError("not an `nft list table ip ...` listing")
    table = head.split()[2]
    chains: list[str] = []
    sets: list[str] = []
    rules: list[str] = []
    elements: list[str] = []
    block: tuple[str, str] | None = None  # (kind, name)
    elems: str | None = None
    dynamic, block_type = False, ""
    for ln in lines:
        if not ln or ln == head or (ln.startswith("comment ") and block is None):
            continue
        if elems is not None:  # inside a multi-line `elements = { ... }`
            elems += " " + ln
            if ln.endswith("}"):
                if not dynamic:
                    elements.append(f"add element ip {table} {block[1]} {elems}")  # type: ignore[index]
                elems = None
            continue
        m = re.fullmatch(r"(chain|set|map) (\S+) \{", ln)
        if m:
            block, dynamic = (m.group(1), m.group(2)), False
            if m.group(1) == "chain":
                chains.append(m.group(2))
            continue
        if ln == "}":
            if block and block[0] != "chain":
                sets.append(f"add {block[0]} ip {table} {block[1]} {{ {block_type} ; }}")
            block = None
            continue
        if block is None:
            raise RuleSyntaxError(f"cannot read {ln!r} in the listing")
        kind, name = block
        if kind == "chain":
            if ln.startswith("type "):
                chains[-1] = f"{name} {_listed_priority(ln)}"
            elif not ln.startswith("comment "):
                rules.append(f"add rule ip {table} {name} {ln}")
        elif ln.startswith("type "):
            block_type = ln
        elif ln.startswith("flags ") and "dynamic" in ln:
            dynamic = True
        elif ln.startswith("elements = "):
            elems = ln[len("elements = "):]
            if elems.endswith("}"):
                if not dynamic:
                    elements.append(f"add element ip {table} {name} {elems}")
                elems = None
        elif not ln.startswith(("comment ", "flags ", "size ", "timeout ", "policy ")):
            raise RuleSyntaxError(f"cannot read {ln!r} in {kind} {name}")
    out = [f"add table ip {table}"]
    out += [f"add chain ip {table} {c}" for c in chains]
    return "\n".join(out + sets + rules + elements) + "\n"


def _refs(ops: list[tuple]) -> set[str]:
    out = set()
    for op in ops:
        if op[0] == "verdict" and op[2]:
            out.add(op[2])
        elif op[0] == "numgen":
            out |= {b[2] for b in op[1] if b[2]}
    return out


def _set_refs(ops: list[tuple]) -> set[str]:
    out = set()
    for op in ops:
        if op[0] == "lookup":
            out.add(op[2])
        elif op[0] in ("in_set", "update"):
            out.add(op[-1])
    return out
