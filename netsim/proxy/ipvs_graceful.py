"""IPVS graceful termination, as upstream's pkg/proxy/ipvs/graceful_termination.go.

A real server that leaves a TCP virtual server (its endpoint went away) is not deleted at
once when IPVS still counts connections to it (ActiveConn + InActConn): it is set to weight
0 (`ipvsadm -e ... -w 0`: no new connection picks it, the established ones keep flowing)
and kept on a list; a later check deletes it once its connections are gone. UDP and SCTP
real servers are deleted at once, as upstream (`IsRsGracefulTerminationNeeded`: with
`expire_nodest_conn=1` their flows end on the next packet). A real server wanted again
while it drains gets its weight back (upstream deletes and re-adds it, which drops the
connections it still had; keeping them costs nothing here).

Differences from upstream, said plainly: the check runs every CHECK_INTERVAL seconds while
something drains (upstream: once a minute), and a real server that still has connections
after `timeout` seconds (NETSIM_IPVS_GRACEFUL_TIMEOUT, default 900 s: IPVS's own idle
timeout of an established TCP connection) is deleted anyway, so a stuck client can't keep a
deleted pod's address in the table for ever.

Pure: `apply_graceful` rewrites the `ipvsadm -R` lines of a diff (netsim.proxy.ipvs_apply)
given the kernel's connection counts (`ipvsadm -Ln`, parsed by `parse_ipvsadm_list`).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

log = logging.getLogger("netsim.proxy")

CHECK_INTERVAL = 2.0  # seconds between checks while a real server drains (upstream: 60)
DEFAULT_TIMEOUT = 900.0

_FLAG_PROTO = {"-t": "TCP", "-u": "UDP", "--sctp-service": "SCTP"}
GRACEFUL_PROTOCOLS = ("TCP",)  # upstream: every protocol but UDP and SCTP

Key = tuple[str, str, int]  # (PROTO, vip, port), as netsim.proxy.ipvs.VirtualServer.key


@dataclass(frozen=True)
class RealServerStats:
    weight: int
    active: int
    inactive: int

    @property
    def connections(self) -> int:
        return self.active + self.inactive


def default_timeout() -> float:
    try:
        return float(os.environ.get("NETSIM_IPVS_GRACEFUL_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _key(proto: str, addr: str) -> Key:
    host, _, port = addr.rpartition(":")
    return (proto, host.strip("[]"), int(port))


def _hex_addr(text: str) -> str:
    """`0A600001:0050` (/proc/net/ip_vs, IPv4) -> `10.96.0.1:80`; IPv6 `[..]:0050` kept."""
    host, _, port = text.rpartition(":")
    if host.startswith("["):
        return f"{host}:{int(port, 16)}"
    return f"{socket.inet_ntoa(bytes.fromhex(host))}:{int(port, 16)}"


def parse_proc_ip_vs(text: str) -> dict[Key, dict[str, RealServerStats]]:
    """/proc/net/ip_vs (what `ipvsadm -Ln` shows, addresses in hex) -> the same mapping as
    `parse_ipvsadm_list`. Read in-process: under emulation an ipvsadm start costs ~1 s."""
    lines = []
    for line in text.splitlines():
        parts = line.split()
        try:
            if len(parts) >= 2 and parts[0] in ("TCP", "UDP", "SCTP"):
                parts[1] = _hex_addr(parts[1])
            elif len(parts) >= 6 and parts[0] == "->":
                parts[1] = _hex_addr(parts[1])
                if parts[1][0] == "[":
                    continue
        except ValueError:
            continue
        lines.append(" ".join(parts))
    return parse_ipvsadm_list("\n".join(lines))


def parse_ipvsadm_list(text: str) -> dict[Key, dict[str, RealServerStats]]:
    """`ipvsadm -Ln` -> {(PROTO, vip, port): {"ip:port": stats}} (fwmark services skipped)."""
    out: dict[Key, dict[str, RealServerStats]] = {}
    cur: dict[str, RealServerStats] | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] in ("TCP", "UDP", "SCTP") and len(parts) >= 2:
            cur = out.setdefault(_key(parts[0], parts[1]), {})
        elif parts[0] == "FWM":
            cur = None
        elif parts[0] == "->" and cur is not None and len(parts) >= 6 and parts[1][0].isdigit():
            try:
                cur[parts[1]] = RealServerStats(int(parts[3]), int(parts[4]), int(parts[5]))
            except ValueError:
                continue
    return out


@dataclass
class GracefulTermination:
    """The list of real servers draining at weight 0, with when each started."""

    timeout: float = field(default_factory=default_timeout)
    pending: dict[tuple[Key, str], float] = field(default_factory=dict)

    def needs_stats(self, lines: list[str]) -> bool:
        """Whether the diff deletes a real server of a protocol that drains (then the
        caller reads `ipvsadm -Ln` for the connection counts)."""
        return any(_rs_delete(line, GRACEFUL_PROTOCOLS) for line in lines)

    def apply(self, lines: list[str], stats: dict[Key, dict[str, RealServerStats]],
              now: float) -> list[str]:
        """The diff with each TCP real server deletion that still has connections turned
        into weight 0 (or dropped when it is at 0 already). Updates `pending`: exactly the
        real servers left draining by this diff."""
        out: list[str] = []
        pending: dict[tuple[Key, str], float] = {}
        for line in lines:
            d = _rs_delete(line, GRACEFUL_PROTOCOLS)
            if d is None:
                out.append(line)
                continue
            key, flag, addr, rs = d
            st = stats.get(key, {}).get(rs)
            since = self.pending.get((key, rs), now)
            if st is None or st.connections == 0:
                if (key, rs) in self.pending:
                    log.info("ipvs: real server %s of %s:%s drained: deleted", rs, key[1], key[2])
                out.append(line)
            elif now - since >= self.timeout:
                log.info("ipvs: real server %s of %s:%s still has %d connections after %.0f s:"
                         " deleted", rs, key[1], key[2], st.connections, now - since)
                out.append(line)
            else:
                if (key, rs) not in self.pending:
                    log.info("ipvs: real server %s of %s:%s has %d connections: weight 0 until "
                             "they end", rs, key[1], key[2], st.connections)
                pending[(key, rs)] = since
                if st.weight != 0:
                    out.append(f"-e {flag} {addr} -r {rs} -m -w 0")
        self.pending = pending
        return out

    def clear(self) -> None:
        self.pending.clear()


def _rs_delete(line: str, protocols) -> tuple[Key, str, str, str] | None:
    """(key, flag, address, real server) of a `-d FLAG VIP:PORT -r RS` line of `protocols`."""
    parts = line.split()
    if len(parts) < 5 or parts[0] != "-d" or parts[3] != "-r":
        return None
    proto = _FLAG_PROTO.get(parts[1])
    if proto not in protocols:
        return None
    return _key(proto, parts[2]), parts[1], parts[2], parts[4]
