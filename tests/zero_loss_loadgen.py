"""Continuous load for the zero-loss scenarios (issue #18), run *inside* a namespace.

Standalone (stdlib only), so a test starts it in a client pod (`netsim exec client --
python zero_loss_loadgen.py ...`) or in a LAN client's netns (`ip netns exec ...`). Each
target gets its own thread sending one request after the other (a new TCP connection per
HTTP request, a new UDP socket — a new source port — per DNS lookup, as curl and glibc's
stub resolver do), at most --rate a second. Every --progress seconds the counts are written
to --progress-file (atomically); when --stop-file appears the threads finish their request
and the final report goes to stdout as one JSON object:

  {"kind": {"requests": n, "failures": n, "served_by": {pod: n}, "errors": [[t, what], ...],
            "retries": [[t, why the first try failed], ...], "seconds": s, "slowest": s}}

Targets:
  --http NAME=IP:PORT[,HOST]     GET / (Host: HOST), success = status 200 within --timeout
  --dns NAME=SERVER:QNAME        an A lookup as glibc's resolver makes it with one nameserver
                                 (resolv.conf's defaults timeout:5 attempts:2, see
                                 `lookup`): success = NOERROR with an answer within
                                 --dns-attempts tries of --timeout each; a lookup answered
                                 only by its second try counts as `dns (retried)` in served_by
  --dns-fixed NAME=SERVER:QNAME[@PORT]  one query per lookup, one try, all from one UDP
                                 socket (one source port, PORT when given) for the whole run:
                                 the stale-conntrack case (a client that never changes port)
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

MAX_ERRORS = 50  # kept per target (the count is exact, the list is a sample)


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.served_by: dict[str, int] = {}
        self.errors: list[tuple[float, str]] = []
        self.retries: list[tuple[float, str]] = []  # why a first try failed (a sample)
        self.started = time.time()
        self.ended = 0.0
        self.slowest = 0.0  # the longest a successful request took
        self.lock = threading.Lock()

    def ok(self, who: str, seconds: float = 0.0) -> None:
        with self.lock:
            self.requests += 1
            self.served_by[who] = self.served_by.get(who, 0) + 1
            self.slowest = max(self.slowest, seconds)

    def fail(self, what: str) -> None:
        with self.lock:
            self.requests += 1
            self.failures += 1
            if len(self.errors) < MAX_ERRORS:
                self.errors.append((round(time.time(), 3), what))

    def retry(self, what: str) -> None:
        with self.lock:
            if len(self.retries) < MAX_ERRORS:
                self.retries.append((round(time.time(), 3), what))

    def report(self) -> dict:
        with self.lock:
            end = self.ended or time.time()
            return {"requests": self.requests, "failures": self.failures,
                    "served_by": dict(self.served_by), "errors": list(self.errors),
                    "retries": list(self.retries),
                    "seconds": round(end - self.started, 3), "slowest": round(self.slowest, 3)}


def connect(s: socket.socket, ip: str, port: int, timeout: float) -> None:
    """connect() as curl does it (the kernel picks the source port, the next free one for
    this destination, so a port comes back only after the whole range; a bind() first
    would draw it at random and could meet a recent attempt's conntrack entry), but
    non-blocking, so the port is known once the SYN is out and a failure can name it."""
    s.setblocking(False)
    err = s.connect_ex((ip, port))
    sport = s.getsockname()[1]
    if err not in (0, errno.EINPROGRESS):
        raise OSError(err, f"{os.strerror(err)} (connect from port {sport})")
    if err:
        _, writable, _ = select.select([], [s], [], timeout)
        if not writable:
            raise TimeoutError(f"timed out (connect from port {sport})")
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, f"{os.strerror(err)} (connect from port {sport})")


def http_once(ip: str, port: int, host: str, timeout: float) -> str:
    """One GET over a new connection; the serving pod's name (from the echo body)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        connect(s, ip, port, timeout)
        s.settimeout(timeout)
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                  "User-Agent: zero-loss\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    parts = status.split()
    if len(parts) < 2 or parts[1] != b"200":
        raise RuntimeError(f"status {status.decode(errors='replace') or 'none (connection closed)'}")
    try:
        return json.loads(body).get("pod") or "?"
    except ValueError:
        return "?"


def dns_query(qname: str, qid: int) -> bytes:
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def dns_check(reply: bytes, qid: int) -> None:
    rid, flags, _qd, an = struct.unpack("!HHHH", reply[:8])
    if rid != qid:
        raise RuntimeError("reply id mismatch")
    rcode = flags & 0xF
    if rcode != 0 or an == 0:
        raise RuntimeError(f"rcode {rcode}, {an} answers")


def dns_once(s: socket.socket, server: str, port: int, qname: str, timeout: float) -> str:
    """One query, one try, from the caller's (unconnected) socket: --dns-fixed."""
    qid = random.randrange(1, 65535)
    s.sendto(dns_query(qname, qid), (server, port))
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            reply, _ = s.recvfrom(4096)
        except TimeoutError as e:  # the query is lost
            raise TimeoutError(f"no answer (from port {s.getsockname()[1]})") from e
        if struct.unpack("!H", reply[:2])[0] == qid:  # a late answer to an older query
            break
    dns_check(reply, qid)
    return "dns"


def lookup(server: str, port: int, qname: str, timeout: float, attempts: int,
           on_retry=None) -> str:
    """One lookup as glibc's res_send makes it with a single nameserver: a new UDP socket
    connect()ed to the server (so only its replies count and an ICMP error is seen), the
    query sent, `timeout` seconds to answer, then sent again on the same socket (the same
    source port), `attempts` tries in all. An ICMP error (port or host unreachable: nothing
    listens there any more) ends the try at once and the socket is closed, so the next try
    comes from a new one (a new source port). A reply with an error rcode is an answer: no
    retry. `on_retry(why)` hears why a try failed when another one follows."""
    qid = random.randrange(1, 65535)
    query = dns_query(qname, qid)
    tries: list[str] = []
    s: socket.socket | None = None
    try:
        for n in range(attempts):
            if s is None:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((server, port))
            sport = s.getsockname()[1]
            try:
                s.send(query)
                deadline = time.monotonic() + timeout
                while True:
                    s.settimeout(max(deadline - time.monotonic(), 0.001))
                    reply = s.recv(4096)
                    if reply[:2] == query[:2]:  # a late answer to an earlier try is fine too
                        break
            except TimeoutError:
                tries.append(f"no answer in {timeout:g} s (port {sport})")
            except OSError as e:  # ECONNREFUSED, EHOSTUNREACH: a new socket next time
                tries.append(f"{e.strerror or e} (port {sport})")
                s.close()
                s = None
            else:
                dns_check(reply, qid)
                return "dns" if n == 0 else "dns (retried)"
            if on_retry is not None and n + 1 < attempts:
                on_retry(f"try {n + 1}: {tries[-1]}")
    finally:
        if s is not None:
            s.close()
    raise TimeoutError("; ".join(f"try {i + 1}: {t}" for i, t in enumerate(tries)))


def worker(kind: str, spec: str, stats: Stats, stop: threading.Event, rate: float,
           timeout: float, attempts: int = 2) -> None:
    interval = 1.0 / rate if rate > 0 else 0.0
    fixed = None
    if kind == "http":
        addr, _, host = spec.partition(",")
        ip, _, port = addr.rpartition(":")
        host = host or ip

        def once() -> str:
            return http_once(ip, int(port), host, timeout)
    else:
        addr, _, qname = spec.partition(":")
        qname, _, sport = qname.partition("@")
        server, port = addr, 53
        if kind == "dns-fixed":
            fixed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            fixed.bind(("0.0.0.0", int(sport or 0)))

        def once() -> str:
            if fixed is None:
                return lookup(server, port, qname, timeout, attempts, stats.retry)
            return dns_once(fixed, server, port, qname, timeout)
    next_at = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            who = once()
            stats.ok(who, time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001 - every failure is counted, whatever it is
            stats.fail(f"{type(e).__name__}: {e} after {time.monotonic() - t0:.2f} s")
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            else:
                next_at = time.monotonic()
    stats.ended = time.time()


def write_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--http", action="append", default=[])
    ap.add_argument("--dns", action="append", default=[])
    ap.add_argument("--dns-fixed", action="append", default=[])
    ap.add_argument("--rate", type=float, default=100.0, help="requests/s per target (0: no cap)")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--dns-attempts", type=int, default=2,
                    help="tries per --dns lookup (resolv.conf's attempts, glibc's default 2)")
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--progress-file")
    ap.add_argument("--progress", type=float, default=0.5)
    a = ap.parse_args(argv)
    stop = threading.Event()
    stats: dict[str, Stats] = {}
    threads = []
    for kind, specs in (("http", a.http), ("dns", a.dns), ("dns-fixed", a.dns_fixed)):
        for item in specs:
            name, _, spec = item.partition("=")
            stats[name] = Stats()
            t = threading.Thread(target=worker, args=(kind, spec, stats[name], stop, a.rate,
                                                      a.timeout, a.dns_attempts), daemon=True)
            threads.append(t)
    for t in threads:
        t.start()
    while not os.path.exists(a.stop_file):
        if a.progress_file:
            write_atomic(a.progress_file, {n: s.report() for n, s in stats.items()})
        time.sleep(a.progress)
    stop.set()
    for t in threads:
        t.join(a.timeout * max(a.dns_attempts, 1) + 5)
    report = {n: s.report() for n, s in stats.items()}
    if a.progress_file:
        write_atomic(a.progress_file, report)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
