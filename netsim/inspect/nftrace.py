"""nftables mode: every rule a probe really matched, from the kernel (`meta nftrace set 1`
and `nft monitor trace` in each node's netns).

For one trace, each node the probe may cross gets a table of its own,
`table ip netsim-trace-<id>`, whose base chains (prerouting and output, priority -400:
before conntrack and every other table) hold one rule setting `meta nftrace set 1` for
the probe's packets only: on the node it leaves from, its exact 5-tuple (the source port is
chosen before the probe is sent); on the nodes it may reach after a DNAT, its possible
sources and endpoints (the candidates the rule walk found), narrowed afterwards to the one
connection conntrack names. An `nft monitor trace` per node prints what every table did
with those packets (kube-proxy's, the NetworkPolicy table, any other). The tables and the
monitors are removed in `finally` (an error, ^C, or SIGTERM, which is turned into ^C for
the while): a trace leaves nothing behind.

`parse_monitor` and `packet_trace` are pure (recorded outputs in the unit tests).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field

from netsim.inspect import ruleflow

TRACE_TABLE_PREFIX = "netsim-trace-"
PRIORITY = -400

_LINE = re.compile(r"^trace id (\S+) (\S+) (\S+) (\S+) (packet|rule|verdict|policy):? ?(.*)$")
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")
_VERDICT = re.compile(r"\s*\(verdict (\w+)(?: (\S+))?\)\s*$")
_FIELDS = re.compile(r"\b(iif|oif) \"([^\"]+)\"|\bip (saddr|daddr) (\S+)|\b(?:tcp|udp) "
                     r"(sport|dport) (\d+)|\btcp flags == (\S+)|\bip id (\d+)")


class TraceSetupError(RuntimeError):
    """The trace table could not be added (the trace goes on without the kernel's view)."""


@dataclass
class Event:
    """One line of `nft monitor trace`."""

    id: str
    family: str
    table: str
    chain: str
    kind: str  # packet, rule, verdict, policy
    rule: str = ""  # the rule as listed (kind "rule")
    verdict: str = ""  # accept, drop, jump, goto, return, continue
    target: str = ""  # the chain of a jump/goto
    packet: dict = field(default_factory=dict)  # iif, oif, saddr, daddr, sport, dport, flags


def parse_monitor(text: str) -> list[Event]:
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        tid, family, table, chain, kind, rest = m.groups()
        ev = Event(tid, family, table, chain, kind)
        if kind == "packet":
            for f in _FIELDS.finditer(rest):
                if f.group(1):
                    ev.packet[f.group(1)] = f.group(2)
                elif f.group(3):
                    ev.packet[f.group(3)] = f.group(4)
                elif f.group(5):
                    ev.packet[f.group(5)] = int(f.group(6))
                elif f.group(7):
                    ev.packet["flags"] = f.group(7)
                else:
                    ev.packet["ipid"] = int(f.group(8))
        elif kind == "rule":
            v = _VERDICT.search(rest)
            ev.rule = rest[:v.start()].strip() if v else rest.strip()
            if v:
                ev.verdict, ev.target = v.group(1), v.group(2) or ""
        else:  # "verdict accept", "policy drop"
            words = rest.split()
            ev.verdict = words[0] if words else ""
            ev.target = words[1] if len(words) > 1 else ""
        out.append(ev)
    return out


def packets(events: list[Event], own_table: str) -> list[list[Event]]:
    """The events per traced packet, in the order packets came. A trace id is not the
    packet's for good: the kernel reuses ids, and a routed packet gets a new one after the
    routing decision. The IP header's id stays (forwarding and NAT keep it), so a packet
    is every event under a `packet:` line with its IP id, from the line where the tracing
    table (`own_table`) first saw it."""
    of_id: dict[str, int | None] = {}  # trace id -> the IP id of its latest packet line
    groups: dict[int, list[Event]] = {}
    out: list[list[Event]] = []
    for ev in events:
        if ev.kind == "packet":
            ipid = ev.packet.get("ipid")
            if ev.table == own_table:
                groups[ipid] = [ev]
                out.append(groups[ipid])
                of_id[ev.id] = ipid
                continue
            of_id[ev.id] = ipid if ipid in groups else None
        key = of_id.get(ev.id)
        if key is not None:
            groups[key].append(ev)
    return out


def first_packet(events: list[Event], own_table: str, match: dict | None = None
                 ) -> list[Event] | None:
    """The first traced packet of a new connection (a TCP SYN, else the first datagram)
    whose `packet:` line in the tracing table has every field of `match` (saddr, sport,
    daddr, dport; a None value matches anything)."""
    for pkt in packets(events, own_table):
        head = pkt[0].packet
        if match and any(head.get(k) != v for k, v in match.items() if v not in (None, "")):
            continue
        if head.get("flags", "syn") == "syn":
            return pkt
    return None


def packet_trace(pkt: list[Event], own_table: str, src: str, dst: str, port: int,
                 proto: str) -> tuple[ruleflow.Trace, str]:
    """One packet's events as a ruleflow.Trace (the rules that matched, in order, other
    tables' too; the DNAT it got; DROP/REJECT when a rule or a chain's policy dropped it),
    plus the interface it came in on."""
    trace = ruleflow.Trace(ruleflow.Packet(src, dst, port, proto))
    iif = next((e.packet.get("iif", "") for e in pkt if e.kind == "packet"), "")
    for e in pkt:
        if e.table == own_table:
            continue
        if e.kind == "rule":  # (the listing's counter values are nft's cache, not news)
            trace.hops.append(ruleflow.Hop(e.table, e.chain, _COUNTER.sub("counter", e.rule)))
            m = re.search(r"\bdnat to (\S+)", e.rule)
            if m:
                trace.endpoints.append(m.group(1))
            if e.verdict == "drop":
                trace.verdict = "REJECT" if re.search(r"\breject\b", e.rule) else "DROP"
            elif e.verdict == "accept" and not m:
                trace.accepted_by_rule = True
        elif e.kind == "policy":  # the end of a base chain no rule of which decided
            if e.verdict == "drop":
                trace.verdict = "DROP"
            if e.verdict == "drop" or not any(h.table == e.table and h.chain == e.chain
                                              for h in trace.hops):
                trace.hops.append(ruleflow.Hop(e.table, e.chain, f"policy {e.verdict}"))
        if trace.verdict in ("DROP", "REJECT"):
            break
    return trace, iif


# --- the live part -------------------------------------------------------------------------

def free_port() -> int:
    """A source port for the probe (ephemeral range, random: concurrent traces differ)."""
    return random.randint(33000, 60999)


def match_expr(proto: str, saddrs: list[str], sport: int | None, daddrs_ports: list[str]
               ) -> str:
    """The trace rule's match: `ip saddr {..} tcp sport N ip daddr . tcp dport {a . p}`."""
    parts = [f"ip saddr {{ {', '.join(sorted(set(saddrs)))} }}"]
    if sport:
        parts.append(f"{proto} sport {sport}")
    if daddrs_ports:
        elems = ", ".join(sorted({f"{a} . {p}" for a, p in
                                  (d.rsplit(":", 1) for d in daddrs_ports)}))
        parts.append(f"ip daddr . {proto} dport {{ {elems} }}")
    return " ".join(parts)


def table_text(table: str, match: str) -> str:
    return (f"table ip {table} {{\n"
            f"  chain pre {{ type filter hook prerouting priority {PRIORITY}; policy accept; "
            f"{match} meta nftrace set 1; }}\n"
            f"  chain out {{ type filter hook output priority {PRIORITY}; policy accept; "
            f"{match} meta nftrace set 1; }}\n"
            "}\n")


def _ns(netns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def _wait_listening(p: subprocess.Popen, timeout: float = 3.0) -> None:
    """Until `nft monitor` sits in its poll loop (subscribed), or the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{p.pid}/wchan") as f:
                wchan = f.read()
        except OSError:
            return
        if comm == "nft" and "poll" in wchan:
            return
        time.sleep(0.005)


class Session:
    """`with Session({netns: match}) as s: probe(); texts = s.collect()`: the trace tables
    and monitors exist only inside the block."""

    def __init__(self, matches: dict[str, str]):
        self.table = TRACE_TABLE_PREFIX + os.urandom(4).hex()
        self.matches = matches
        self.monitors: dict[str, subprocess.Popen] = {}
        self.tables: list[str] = []
        self._old_term = None

    def __enter__(self) -> Session:
        with contextlib.suppress(ValueError):  # not the main thread: no handler
            self._old_term = signal.signal(signal.SIGTERM, _term_as_interrupt)
        try:
            for ns, match in self.matches.items():
                # line-buffered: a monitor writing to a pipe keeps its last 4 KiB in stdio's
                # buffer, lost when it is stopped
                p = subprocess.Popen(_ns(ns, "stdbuf", "-oL", "nft", "monitor", "trace"),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
                self.monitors[ns] = p
                _wait_listening(p)
                r = subprocess.run(_ns(ns, "nft", "-f", "-"), input=table_text(self.table, match),
                                   capture_output=True, text=True, timeout=20)
                if r.returncode != 0:
                    raise TraceSetupError(f"nft: {r.stderr.strip()}")
                self.tables.append(ns)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def collect(self, settle: float = 0.3, timeout: float = 3.0) -> dict[str, str]:
        """Remove the trace rules, then read each monitor until it has been quiet for
        `settle` seconds (the kernel's events arrive after the probe returns)."""
        self._drop_tables()
        out = {}
        deadline = time.monotonic() + timeout
        for ns, p in self.monitors.items():
            out[ns] = _read_until_quiet(p, settle, deadline)
        self._stop_monitors()
        return out

    def _drop_tables(self) -> None:
        for ns in list(self.tables):
            subprocess.run(_ns(ns, "nft", "delete", "table", "ip", self.table),
                           capture_output=True, timeout=20)
            self.tables.remove(ns)

    def _stop_monitors(self) -> None:
        for p in self.monitors.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p.stdout:
                p.stdout.close()
        self.monitors.clear()

    def __exit__(self, *exc) -> None:
        try:
            self._drop_tables()
            self._stop_monitors()
        finally:
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, self._old_term)
                self._old_term = None


def _term_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _read_until_quiet(p: subprocess.Popen, settle: float, deadline: float) -> str:
    import selectors  # noqa: PLC0415
    assert p.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    fd = p.stdout.fileno()
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(min(settle, left)):
                break
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
    finally:
        sel.close()
    return b"".join(chunks).decode(errors="replace")
