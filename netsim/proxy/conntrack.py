"""Stale UDP conntrack entries: find them (pure) and delete them (`conntrack -D`).

After upstream kube-proxy's `pkg/proxy/conntrack/cleanup.go` (CleanStaleEntries), run by
every proxy mode after each successful sync. UDP has no connection to end: a client that
keeps sending from one source port (a resolver's socket, a syslog or statsd agent) keeps
its conntrack entry alive, so every datagram is DNATed to the endpoint the first one went
to, also after that pod is gone — the classic DNS black hole after a coredns pod moves.
So, level-triggered (what the table holds now against what the Services want now, not a
diff of syncs, so an agent restart misses nothing):

- for each UDP service port with at least one *serving* endpoint (ready or not,
  terminating or not, whatever the traffic policy: changing a Service must not break flows
  that still work, as for TCP), the allowed reply sources are those endpoints' ip:port;
- an entry whose original destination is the port's ClusterIP, a LoadBalancer IP or an
  external IP with the service port, and whose reply source is none of them (a deleted or
  non-serving endpoint, an old target port, or no DNAT at all because the entry was made
  while the Service had no endpoint), is deleted;
- likewise an entry whose original destination port is the NodePort (any address);
- a Service without serving endpoints is left alone (nothing better to send to).

`conntrack -L -p udp` lists the node's entries; each distinct stale (orig-dst, orig-port,
reply-src, reply-port) is one `conntrack -D`, which deletes every entry it matches.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from netsim.proxy.model import ProxySnapshot

log = logging.getLogger("netsim.proxy")


@dataclass(frozen=True)
class Entry:
    """One conntrack entry as `conntrack -L` prints it (original and reply tuples)."""

    proto: str
    orig_src: str
    orig_dst: str
    orig_sport: int
    orig_dport: int
    reply_src: str
    reply_sport: int


@dataclass(frozen=True, order=True)
class Filter:
    """A `conntrack -D` filter: upstream filterForIPPortNAT (orig_dst set) or
    filterForPortNAT (orig_dst None: a NodePort on any address)."""

    orig_dst: str | None
    orig_dport: int
    reply_src: str
    reply_sport: int
    proto: str = "udp"

    def argv(self) -> list[str]:
        out = ["-p", self.proto]
        if self.orig_dst is not None:
            out += ["--orig-dst", self.orig_dst]
        return out + ["--orig-port-dst", str(self.orig_dport), "--reply-src", self.reply_src,
                      "--reply-port-src", str(self.reply_sport)]


def _fields(words: list[str]) -> list[tuple[str, str]]:
    return [tuple(w.split("=", 1)) for w in words if "=" in w]  # type: ignore[misc]


def parse_entries(text: str) -> list[Entry]:
    """`conntrack -L` output -> entries (lines it cannot read are skipped). A line is
    `udp 17 29 src=A dst=B sport=p dport=q [UNREPLIED] src=C dst=D sport=r dport=s ...`:
    the first src/dst/sport/dport are the original tuple, the second the reply tuple."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or not words[1].isdigit():
            continue
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        for k, v in _fields(words):
            if k not in ("src", "dst", "sport", "dport"):
                continue
            (reply if k in orig else orig).setdefault(k, v)
        try:
            out.append(Entry(words[0], orig["src"], orig["dst"], int(orig["sport"]),
                             int(orig["dport"]), reply["src"], int(reply["sport"])))
        except (KeyError, ValueError):
            continue
    return out


def _allowed(snapshot: ProxySnapshot) -> tuple[dict[tuple[str, int], set[str]],
                                                dict[int, set[str]]]:
    """The serving endpoints (ip:port) each UDP frontend (ip, port) and NodePort may reply
    from; ports without a serving endpoint are left out (nothing better to send to)."""
    by_frontend: dict[tuple[str, int], set[str]] = {}
    by_node_port: dict[int, set[str]] = {}
    for sp in snapshot.service_ports:
        if sp.proto != "udp":
            continue
        serving = {e.endpoint for e in sp.endpoints if e.serving}
        if not serving:
            continue
        for ip in (sp.cluster_ip, *sp.load_balancer_vips, *sp.external_ips):
            by_frontend.setdefault((ip, sp.port), set()).update(serving)
        if sp.node_port:
            by_node_port.setdefault(sp.node_port, set()).update(serving)
    return by_frontend, by_node_port


def cleanup_key(snapshot: ProxySnapshot) -> tuple[frozenset, frozenset]:
    """Everything the cleanup's verdicts depend on. While it stays the same no entry can
    turn stale: the rules only send new flows to these endpoints (upstream likewise cleans
    only for the services and endpoints a sync changed)."""
    by_frontend, by_node_port = _allowed(snapshot)
    return (frozenset((k, frozenset(v)) for k, v in by_frontend.items()),
            frozenset((k, frozenset(v)) for k, v in by_node_port.items()))


def stale_filters(snapshot: ProxySnapshot, entries: Iterable[Entry]) -> list[Filter]:
    """The filters that delete every UDP entry pointing at no serving endpoint (sorted,
    one per distinct target)."""
    by_frontend, by_node_port = _allowed(snapshot)
    if not by_frontend and not by_node_port:
        return []
    found: set[Filter] = set()
    for e in entries:
        if e.proto != "udp":
            continue
        reply = f"{e.reply_src}:{e.reply_sport}"
        allowed = by_frontend.get((e.orig_dst, e.orig_dport))
        if allowed is not None and reply not in allowed:
            found.add(Filter(e.orig_dst, e.orig_dport, e.reply_src, e.reply_sport))
        allowed = by_node_port.get(e.orig_dport)
        if allowed is not None and reply not in allowed:
            found.add(Filter(None, e.orig_dport, e.reply_src, e.reply_sport))
    return sorted(found, key=lambda f: (f.orig_dst or "", f.orig_dport, f.reply_src,
                                        f.reply_sport))


def wants_cleanup(snapshot: ProxySnapshot) -> bool:
    """Whether any UDP service port has a serving endpoint (else nothing can be stale)."""
    return any(sp.proto == "udp" and any(e.serving for e in sp.endpoints)
               for sp in snapshot.service_ports)


def _run(args: list[str], netns: str | None) -> subprocess.CompletedProcess:
    argv = ["conntrack", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def clean_stale_entries(snapshot: ProxySnapshot, netns: str | None = None) -> list[Filter]:
    """List the node's UDP entries, delete the stale ones; returns the filters applied.
    Without the conntrack tool (or when listing fails) nothing is done: the next sync tries
    again, as upstream logs and carries on."""
    return _clean(snapshot, netns) or []


def _clean(snapshot: ProxySnapshot, netns: str | None) -> list[Filter] | None:
    """As clean_stale_entries; None when the entries could not be listed."""
    if not wants_cleanup(snapshot):
        return []
    if not shutil.which("conntrack"):
        return None
    p = _run(["-L", "-p", "udp"], netns)
    if p.returncode != 0:
        log.warning("conntrack -L failed: %s", (p.stderr or "").strip().splitlines()[-1:])
        return None
    filters = stale_filters(snapshot, parse_entries(p.stdout))
    for f in filters:
        # exit status 1 with "0 flow entries" when another sync got there first: fine
        _run(["-D", *f.argv()], netns)
    if filters:
        log.info("conntrack: deleted stale UDP entries: %s",
                 ", ".join(f"{f.orig_dst or '*'}:{f.orig_dport} -> {f.reply_src}:{f.reply_sport}"
                           for f in filters))
    return filters


class StaleEntryCleaner:
    """The agent's cleanup after each sync: clean_stale_entries, but only when
    `cleanup_key` differs from that of the last cleanup that could list the table. A sync
    that changed no UDP endpoint (most syncs: TCP services, readiness of other pods) then
    starts no `conntrack` process, which under emulation costs a second or more."""

    def __init__(self) -> None:
        self.last: tuple[frozenset, frozenset] | None = None

    def clean(self, snapshot: ProxySnapshot, netns: str | None = None) -> list[Filter]:
        key = cleanup_key(snapshot)
        if key == self.last:
            return []
        done = _clean(snapshot, netns)
        if done is not None:
            self.last = key
        return done or []
