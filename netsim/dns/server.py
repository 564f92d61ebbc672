"""The cluster DNS server (runs as the `coredns` pods): asyncio UDP + TCP over a swapped Zone.

- Answers come from the *current* `Zone` (records.py); a `ZoneSource` follows Services,
  EndpointSlices, Pods and Namespaces through netsim.machinery informers and swaps in a
  Zone rebuilt from their caches (one attribute assignment, so readers never see half a
  zone). Until every cache has synced there is no zone: SERVFAIL, and `/ready` says 503.
- UDP answers are cached as packed bytes keyed by the question, as CoreDNS' cache keys
  them (qname lower-cased, qtype, qclass; plus the RD/CD bits, EDNS presence, DO and the
  UDP size that decides truncation), bounded in entries and bytes and tied to the Zone
  object: a hit costs parsing the question, one dict lookup and splicing the query's ID
  and spelling of the name into the packed reply. EDNS options (cookies, padding) are
  not part of the key.
- Hostile input gets an answer, not a traceback: a name over 255 bytes or a label over
  63 is FORMERR, EDNS version > 0 is BADVERS (RFC 6891), UDP replies are at most
  min(client's EDNS size, 1232) bytes (TC beyond that). Bad queries are logged as one
  short line at most every 10 s.
- Names outside the zone: forwarded to `upstream` (UDP, 2 s, then SERVFAIL) when one is
  configured, else REFUSED at once. Malformed packets never raise out of the loop.
- Prometheus text on `metrics_port` (`/metrics`, plus `/health` and `/ready`) with
  CoreDNS' metric names; `/health` and `/ready` also on CoreDNS' own ports (`health` :8080,
  `ready` :8181) when the Corefile names those plugins.
- `main` reads the Corefile from a ConfigMap (kube-system/coredns) through an informer and
  follows it: `ttl`, the zone and `forward` take effect at once, without a restart (CoreDNS'
  `reload` plugin does the same within ~2 min). Listening ports need a pod restart.

Corefile subset understood by `parse_corefile` (everything else is ignored)::

    .:53 {
        kubernetes cluster.local in-addr.arpa ip6.arpa {   # first zone = cluster domain
            pods insecure
            ttl 30                                         # record TTL
        }
        prometheus :9153                                   # metrics port
        health [:8080] { lameduck 5s }                     # /health listener; on SIGTERM
                                                           # keep serving 5 s, then exit
        ready [:8181]                                      # /ready listener
        forward . 10.0.0.2[:53]                            # upstream; /etc/resolv.conf = none
    }

`forward . /etc/resolv.conf` is deliberately ignored: cluster traffic must not leave the
machine, so without an explicit address outside names get REFUSED.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import os
import re
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RCODE, DNSLabel, DNSRecord

from netsim.api import events
from netsim.dns.records import Zone, pod_view
from netsim.machinery import Handler, InformerFactory, SharedInformer

log = logging.getLogger("netsim.dns")

UDP_MAX = 512
EDNS_SIZE = 1232  # what we advertise and the most we send over UDP (DNS flag day 2020)
CACHE_MAX = 10000  # entries (CoreDNS' cache default capacity)
CACHE_BYTES = 4 << 20  # packed answers plus keys; oldest entries go first
BADVERS = 16  # extended RCODE (RFC 6891): 4 bits in the header, 8 in the OPT TTL
LOG_EVERY = 10.0  # seconds between log lines about bad queries
_HEADER_KEEP = 0x0110  # RD and CD are echoed; a query's other flag bits are not
TCP_IDLE_TIMEOUT = 10.0
# CoreDNS: prometheus.ExponentialBuckets(0.00025, 2, 16)
BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))
KNOWN_TYPES = {"A", "AAAA", "CNAME", "HINFO", "TXT", "NS", "PTR", "SOA", "MX", "SRV", "NAPTR",
               "DS", "DNSKEY", "RRSIG", "NSEC", "NSEC3", "IXFR", "AXFR", "ANY", "OPT"}

ZoneProvider = Callable[[], "Zone | None"]


def _rcode_name(rcode: int) -> str:
    try:
        return RCODE[rcode]
    except Exception:
        return str(rcode)


def _type_name(qtype: int) -> str:
    try:
        name = QTYPE[qtype]
    except Exception:
        return "other"
    return name if name in KNOWN_TYPES else "other"


# ------------------------------------------------------------------------- metrics
class Metrics:
    """Counters and one histogram, rendered in Prometheus text format (no client library)."""

    def __init__(self, server: str):
        self.server = server
        self.requests: dict[tuple[str, str, str, str], int] = {}
        self.responses: dict[tuple[str, str], int] = {}
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}
        self.forwards: dict[str, int] = {}

    def observe(self, proto: str, family: str, zone: str, qtype: str, rcode: str,
                seconds: float) -> None:
        key = (zone, proto, family, qtype)
        self.requests[key] = self.requests.get(key, 0) + 1
        rkey = (zone, rcode)
        self.responses[rkey] = self.responses.get(rkey, 0) + 1
        hkey = (zone, qtype)
        counts = self.buckets.get(hkey)
        if counts is None:
            counts = self.buckets[hkey] = [0] * (len(BUCKETS) + 1)
            self.sums[hkey] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[hkey] += seconds

    def render(self) -> str:
        s = self.server
        out = ["# HELP coredns_dns_requests_total Counter of DNS requests made per zone, "
               "protocol and family.",
               "# TYPE coredns_dns_requests_total counter"]
        for (zone, proto, family, qtype), n in sorted(self.requests.items()):
            out.append(f'coredns_dns_requests_total{{server="{s}",zone="{zone}",view="",'
                       f'proto="{proto}",family="{family}",type="{qtype}"}} {n}')
        out += ["# HELP coredns_dns_responses_total Counter of response status codes.",
                "# TYPE coredns_dns_responses_total counter"]
        for (zone, rcode), n in sorted(self.responses.items()):
            out.append(f'coredns_dns_responses_total{{server="{s}",zone="{zone}",view="",'
                       f'rcode="{rcode}",plugin=""}} {n}')
        out += ["# HELP coredns_dns_request_duration_seconds Histogram of the time (in "
                "seconds) each request took per zone.",
                "# TYPE coredns_dns_request_duration_seconds histogram"]
        for (zone, qtype), counts in sorted(self.buckets.items()):
            labels = f'server="{s}",zone="{zone}",view="",type="{qtype}"'
            total = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'coredns_dns_request_duration_seconds_bucket{{{labels},le="{le}"}} '
                           f'{total}')
            out.append(f"coredns_dns_request_duration_seconds_sum{{{labels}}} "
                       f"{self.sums[(zone, qtype)]!r}")
            out.append(f"coredns_dns_request_duration_seconds_count{{{labels}}} {total}")
        out += ["# HELP coredns_forward_requests_total Counter of requests made per upstream.",
                "# TYPE coredns_forward_requests_total counter"]
        for to, n in sorted(self.forwards.items()):
            out.append(f'coredns_forward_requests_total{{to="{to}"}} {n}')
        return "\n".join(out) + "\n"


# -------------------------------------------------------------------------- server
def _header_reply(data: bytes, rcode: int) -> bytes | None:
    """A bare reply (no sections) built from a query's header alone; None if not a query."""
    if len(data) < 12:
        return None
    ident, flags = struct.unpack("!HH", data[:4])
    if flags & 0x8000:  # a response: never answer it (no reflection loops)
        return None
    flags = 0x8000 | (flags & 0x7900) | 0x0080 | (rcode & 0xF)  # QR, opcode+RD, RA
    return struct.pack("!HHHHHH", ident, flags, 0, 0, 0, 0)


class _Throttled:
    """One log line per `every` seconds at most: a flood of bad packets must not flood the
    log (or the disk); the next line says how many were left out."""

    def __init__(self, every: float = LOG_EVERY):
        self.every = every
        self.next_at = 0.0
        self.skipped = 0

    def __call__(self, level: int, msg: str, *args, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now < self.next_at:
            self.skipped += 1
            return
        self.next_at = now + self.every
        if self.skipped:
            msg, args = msg + " (and %d more like it)", (*args, self.skipped)
            self.skipped = 0
        log.log(level, msg, *args, exc_info=exc_info)


def _name_problem(labels: tuple[bytes, ...]) -> str | None:
    """Why a query name cannot be a DNS name (RFC 1035 2.3.4), or None."""
    if any(len(label) > 63 for label in labels):
        return "a label is longer than 63 bytes"
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        return "the name is longer than 255 bytes"
    return None


def _qname_end(data: bytes) -> int | None:
    """Where the question name of a one-question query ends (after its zero byte); None when
    it is not a plain uncompressed name of at most 255 bytes. (On every cache hit: short.)"""
    if len(data) < 17 or data[4:6] != b"\0\1":
        return None
    i = 12
    length = data[12]
    try:
        while length:
            if length > 63:  # a pointer or a reserved label type
                return None
            i += length + 1
            if i > 266:  # 12 + 254: the name would be over 255 bytes
                return None
            length = data[i]
    except IndexError:
        return None
    return i + 1


def _question_key(data: bytes) -> tuple[bytes, int] | None:
    """(cache key, end of the question name) of a plain query, read straight off the wire.

    The key is what decides the packed answer: the question lower-cased, the RD/CD bits,
    EDNS presence with its DO bit, and the UDP size limit. None for anything unusual (the
    full parser then answers it, uncached): not exactly one question, other sections,
    compression in the question, more than an OPT record, EDNS version > 0.
    """
    qend = _qname_end(data)
    if qend is None or data[2] & 0xF8 or data[6:10] != b"\0\0\0\0":  # QR, opcode; an, ns
        return None
    end = qend + 4
    n = len(data)
    flags = bytes((data[2] & 0x01, data[3] & 0x10))  # RD, CD
    ar = data[10:12]
    if ar == b"\0\0":
        return (data[12:end].lower() + flags + b"\0\0\0", qend) if end == n else None
    # one OPT: root name, type 41, class = UDP size, TTL = ext-RCODE, version, DO+Z, rdlen
    if ar != b"\0\1" or end + 11 > n or data[end:end + 3] != b"\0\0\x29" or data[end + 6] \
            or end + 11 + int.from_bytes(data[end + 9:end + 11], "big") != n:
        return None
    limit = min(max(UDP_MAX, int.from_bytes(data[end + 3:end + 5], "big")), EDNS_SIZE)
    edns = bytes((1 | (2 if data[end + 7] & 0x80 else 0), limit >> 8, limit & 0xFF))
    return data[12:end].lower() + flags + edns, qend


def _parse_upstream(upstream: str | None) -> tuple[str, int] | None:
    if not upstream:
        return None
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9a-fA-F:]+)",
                     upstream.strip().removeprefix("dns://"))
    if not m:
        raise ValueError(f"bad upstream address: {upstream!r}")
    host = m.group(1) or m.group(3) or m.group(5)
    port = m.group(2) or m.group(4) or "53"
    return host, int(port)


class _UdpSocket:
    """The UDP listener without asyncio's transport: each wake-up drains up to BATCH datagrams.

    asyncio's datagram transport reads one datagram per selector wake-up, so every query paid
    an epoll_wait and a callback round; draining the socket in one go roughly doubles the
    cache-hit rate. Replies are sent straight away; a full send buffer drops the reply (UDP).
    """

    BATCH = 256

    def __init__(self, server: DnsServer, sock: socket.socket):
        self.server = server
        self.sock = sock

    def sendto(self, data: bytes, addr) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:  # EAGAIN, or the client's ICMP error surfacing here
            pass

    def readable(self) -> None:
        recvfrom, handle = self.sock.recvfrom, self.server._udp_datagram
        for _ in range(self.BATCH):
            try:
                data, addr = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ECONNREFUSED queued by an earlier ICMP error
                continue
            try:
                handle(data, addr, self)
            except Exception:  # never let one packet take the loop down (nor fill the log)
                self.server._log_error(logging.ERROR, "dns: unexpected error on a UDP query",
                                       exc_info=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


class _ForwardProtocol(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes, fut: asyncio.Future):
        self.ident = ident
        self.fut = fut

    def datagram_received(self, data: bytes, addr) -> None:
        if data[:2] == self.ident and not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


class DnsServer:
    """UDP+TCP DNS on (host, port) answering from `zone_provider()`; metrics on HTTP."""

    def __init__(self, zone_provider: ZoneProvider | Zone, *, host: str, port: int = 53,
                 upstream: str | None = None, metrics_port: int | None = 9153,
                 upstream_timeout: float = 2.0, cache: bool = True,
                 probe_ports: Iterable[int] = ()):
        if isinstance(zone_provider, Zone):
            zone = zone_provider
            zone_provider = lambda: zone  # noqa: E731
        self.zone_provider = zone_provider
        self.host = host
        self.port = port
        self.upstream = _parse_upstream(upstream)
        self.metrics_port = metrics_port
        self.upstream_timeout = upstream_timeout
        self.cache_enabled = cache
        self.family = "2" if ":" in host else "1"
        self.metrics = Metrics(f"dns://{host}:{port}")
        self.cache_max = CACHE_MAX
        self.cache_bytes_max = CACHE_BYTES
        # key -> (header after the ID, reply after the question name, zone, qtype, rcode,
        #         bytes counted for the entry)
        self._cache: dict[bytes, tuple[bytes, bytes, str, str, str, int]] = {}
        self.cache_bytes = 0
        self._cache_zone: Zone | None = None
        self._log_bad = _Throttled()  # hostile or broken queries
        self._log_error = _Throttled()  # our own failures: a traceback now and then
        self._udp: _UdpSocket | None = None
        self._tcp: asyncio.AbstractServer | None = None
        self._http: asyncio.AbstractServer | None = None
        self.probe_ports = [p for p in probe_ports if p is not None]
        self.draining = False  # lame duck: still answering, /ready says 503
        self._probes: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task] = set()
        self._stopped: asyncio.Event | None = None

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind UDP, TCP (same port; port 0 picks a free one) and the metrics listener."""
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for attempt in range(20):
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                sock.bind((self.host, self.port))
                sock.setblocking(False)
                port = sock.getsockname()[1]
                self._tcp = await asyncio.start_server(self._tcp_client, self.host, port,
                                                       reuse_address=True)
            except OSError:
                sock.close()
                if self.port or attempt == 19:
                    raise
                continue
            self._udp, self.port = _UdpSocket(self, sock), port
            loop.add_reader(sock.fileno(), self._udp.readable)
            break
        self.metrics.server = f"dns://{self.host}:{self.port}"
        if self.metrics_port is not None:
            self._http = await asyncio.start_server(self._http_client, self.host,
                                                    self.metrics_port, reuse_address=True)
            self.metrics_port = self._http.sockets[0].getsockname()[1]
        for port in self.probe_ports:  # CoreDNS `health` / `ready` listeners
            self._probes.append(await asyncio.start_server(self._http_client, self.host, port,
                                                           reuse_address=True))
        log.info("dns: serving on %s:%d (udp+tcp), metrics on %s", self.host, self.port,
                 self.metrics_port)

    async def stop(self) -> None:
        if self._udp:
            self._udp.close()
        for srv in (self._tcp, self._http, *self._probes):
            if srv:
                srv.close()
        for task in list(self._tasks):
            task.cancel()
        if self._stopped:
            self._stopped.set()

    async def serve_forever(self) -> None:
        if self._stopped is None:
            await self.start()
        await self._stopped.wait()

    def set_upstream(self, upstream: str | None) -> None:
        """Change the forwarder (call on the server's loop); cached REFUSED answers go."""
        self.upstream = _parse_upstream(upstream)
        self._cache_clear()

    def _cache_clear(self) -> None:
        self._cache = {}
        self.cache_bytes = 0

    def _cache_put(self, key: bytes, qend: int, payload: bytes, zname: str, qtype: str,
                   rcode: str) -> None:
        """Keep the packed reply minus its ID and question name; oldest entries go first."""
        size = len(key) + len(payload) + 200  # + dict slot, tuple and bytes headers
        cache = self._cache
        if key in cache:
            return
        while cache and (len(cache) >= self.cache_max
                         or self.cache_bytes + size > self.cache_bytes_max):
            self.cache_bytes -= cache.pop(next(iter(cache)))[5]
        cache[key] = (payload[2:12], payload[qend:], zname, qtype, rcode, size)
        self.cache_bytes += size

    # ------------------------------------------------------------- answering
    def _zone(self) -> Zone | None:
        zone = self.zone_provider()
        if zone is not self._cache_zone:  # new generation: drop every packed answer
            self._cache_clear()
            self._cache_zone = zone
        return zone

    def _udp_datagram(self, data: bytes, addr, transport) -> None:
        t0 = time.perf_counter()
        zone = self._zone()
        keyed = _question_key(data) if self.cache_enabled else None
        if keyed is not None:
            key, qend = keyed
            hit = self._cache.get(key)
            if hit is not None:  # the query's own ID and spelling of the name
                transport.sendto(data[:2] + hit[0] + data[12:qend] + hit[1], addr)
                self.metrics.observe("udp", self.family, hit[2], hit[3], hit[4],
                                     time.perf_counter() - t0)
                return
        result = self.resolve(data, zone, "udp")
        if result is None:
            return
        kind, payload, zname, qtype = result
        if kind == "forward":
            self._spawn(self._forward_udp(data, addr, transport, zname, qtype, t0))
            return
        transport.sendto(payload, addr)
        rcode = _rcode_name(payload[3] & 0xF)
        if kind == "cache" and keyed is not None \
                and payload[12:qend].lower() == data[12:qend].lower():
            self._cache_put(key, qend, payload, zname, qtype, rcode)
        self.metrics.observe("udp", self.family, zname, qtype, rcode, time.perf_counter() - t0)

    def resolve(self, data: bytes, zone: Zone | None, proto: str
                ) -> tuple[str, bytes, str, str] | None:
        """Answer one wire query: ('cache'|'nocache'|'forward', reply bytes, zone, type).

        Returns None for packets that deserve silence (too short, or a response). The
        answer is built for the name in lower case, then the query's own spelling is put
        back into the question, which the answer's names point at: so the bytes depend on
        the spelling only there, and a cached answer fits every spelling (DNS 0x20).
        """
        result = self._resolve(data, zone, proto)
        if result is None or result[0] == "forward":
            return result
        kind, payload, zname, qtype = result
        qend = _qname_end(data)
        if qend is not None and payload[4:6] == b"\0\1" and \
                payload[12:qend] != data[12:qend] and \
                payload[12:qend].lower() == data[12:qend].lower():
            payload = payload[:12] + data[12:qend] + payload[qend:]
        return kind, payload, zname, qtype

    def _resolve(self, data: bytes, zone: Zone | None, proto: str
                 ) -> tuple[str, bytes, str, str] | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            reply = _header_reply(data, RCODE.FORMERR)
            return None if reply is None else ("nocache", reply, ".", "other")
        if request.header.qr:
            return None
        if request.header.opcode != 0:
            return "nocache", _header_reply(data, RCODE.NOTIMP) or b"", ".", "other"
        opts = [rr for rr in request.ar if rr.rtype == QTYPE.OPT]
        if len(request.questions) != 1 or len(opts) > 1:  # RFC 6891 6.1.1: one OPT at most
            return "nocache", _header_reply(data, RCODE.FORMERR) or b"", ".", "other"
        problem = _name_problem(request.q.qname.label)
        if problem is not None:
            self._log_bad(logging.WARNING, "dns: FORMERR for a %s query: %s", proto, problem)
            return "nocache", _header_reply(data, RCODE.FORMERR) or b"", ".", "other"
        # A reply echoes RD and CD (miekg/dns SetReply); the query's other bits are noise.
        request.header.bitmap &= 0x7800 | _HEADER_KEEP
        request.q.qname = DNSLabel([label.lower() for label in request.q.qname.label])
        qtype = _type_name(request.q.qtype)
        opt = opts[0] if opts else None
        if proto != "udp":
            limit = 65535
        elif opt is None:
            limit = UDP_MAX
        else:  # never more than we advertise, whatever the client offers
            limit = min(max(UDP_MAX, opt.rclass), EDNS_SIZE)
        if opt is not None and (opt.ttl >> 16) & 0xFF:
            # EDNS version we do not speak: BADVERS with our version, 0 (RFC 6891 6.1.3).
            reply = request.reply(aa=0)
            reply.header.rcode = BADVERS & 0xF
            reply.add_ar(EDNS0(udp_len=EDNS_SIZE, ext_rcode=BADVERS >> 4, version=0))
            return "nocache", reply.pack(), ".", qtype
        if zone is None:  # not synced with the API yet
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return "nocache", self._pack(reply, opt, limit), ".", qtype
        try:
            reply = zone.answer(request)
            if reply is None:
                if self.upstream is not None:
                    return "forward", b"", ".", qtype
                reply = request.reply()
                reply.header.aa = 0
                reply.header.rcode = RCODE.REFUSED
                return "cache", self._pack(reply, opt, limit), ".", qtype
            return "cache", self._pack(reply, opt, limit), zone.origin, qtype
        except Exception:
            self._log_error(logging.ERROR, "dns: answering %s failed", request.q.qname,
                            exc_info=True)
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return "nocache", self._pack(reply, opt, limit), zone.origin, qtype

    @staticmethod
    def _opt(query_opt) -> EDNS0:
        """Our OPT record: 1232 advertised, DO echoed (RFC 3225 3)."""
        return EDNS0(udp_len=EDNS_SIZE, flags="do" if query_opt.ttl & 0x8000 else "")

    @classmethod
    def _pack(cls, reply: DNSRecord, opt, limit: int) -> bytes:
        if opt is not None:
            reply.add_ar(cls._opt(opt))
        packed = reply.pack()
        if len(packed) <= limit:
            return packed
        # Does not fit: header + question (+ OPT) with TC set; the client retries over TCP.
        short = DNSRecord(reply.header, q=reply.q)
        short.header.tc = 1
        if opt is not None:
            short.add_ar(cls._opt(opt))
        return short.pack()

    # ------------------------------------------------------------ forwarding
    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def forward(self, data: bytes) -> bytes:
        """Send the query as is to the upstream over UDP; SERVFAIL after the timeout."""
        assert self.upstream is not None
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        to = f"{self.upstream[0]}:{self.upstream[1]}"
        self.metrics.forwards[to] = self.metrics.forwards.get(to, 0) + 1
        transport = None
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _ForwardProtocol(data[:2], fut), remote_addr=self.upstream)
            transport.sendto(data)
            return await asyncio.wait_for(fut, self.upstream_timeout)
        except (OSError, asyncio.TimeoutError):
            return _header_reply(data, RCODE.SERVFAIL) or b""
        finally:
            if transport is not None:
                transport.close()

    async def _forward_udp(self, data: bytes, addr, transport, zname: str, qtype: str,
                           t0: float) -> None:
        try:
            reply = await self.forward(data)
            if reply:
                transport.sendto(reply, addr)
                self.metrics.observe("udp", self.family, zname, qtype,
                                     _rcode_name(reply[3] & 0xF), time.perf_counter() - t0)
        except Exception:
            log.exception("dns: forwarding failed")

    # ------------------------------------------------------------------- TCP
    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                (length,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                t0 = time.perf_counter()
                result = self.resolve(data, self._zone(), "tcp")
                if result is None:
                    continue
                kind, payload, zname, qtype = result
                if kind == "forward":
                    payload = await self.forward(data)
                if not payload:
                    continue
                writer.write(struct.pack("!H", len(payload)) + payload)
                await writer.drain()
                self.metrics.observe("tcp", self.family, zname, qtype,
                                     _rcode_name(payload[3] & 0xF), time.perf_counter() - t0)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("dns: TCP connection failed")
        finally:
            writer.close()

    # --------------------------------------------------------------- metrics
    async def _http_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1].decode("ascii", "replace") if b" " in request else ""
            path = path.split("?", 1)[0]
            if path == "/metrics":
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", self.metrics.render()
            elif path in ("/health", "/ready"):
                ready = path == "/health" or (self.zone_provider() is not None
                                              and not self.draining)
                status = "200 OK" if ready else "503 Service Unavailable"
                ctype, body = "text/plain", "OK" if ready else "not ready"
            else:
                status, ctype, body = "404 Not Found", "text/plain", "404 page not found\n"
            raw = body.encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                         f"{len(raw)}\r\nConnection: close\r\n\r\n".encode() + raw)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, asyncio.LimitOverrunError,
                ConnectionError, IndexError):
            pass
        finally:
            writer.close()


class BackgroundDnsServer:
    """Run a DnsServer on its own event loop thread (tests, embedding in sync code)."""

    def __init__(self, server: DnsServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="dns-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_until_complete(self.server.serve_forever())
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def start(self, timeout: float = 10) -> BackgroundDnsServer:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("dns server did not start")
        if self._error:
            raise self._error
        return self

    def stop(self, timeout: float = 10) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout)
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundDnsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------- zone source
class ZoneSource:
    """Services/EndpointSlices/Pods/Namespaces from netsim.machinery informers; rebuilds
    the Zone.

    One shared informer per resource (list, watch, relist on 410 Gone, one backoff) keeps
    its cache; its handlers only mark the zone dirty. A rebuild thread renders a new Zone
    from the caches ~`debounce` seconds after the first change and swaps it in. There is
    no zone until every informer has synced (half a picture would answer NXDOMAIN for
    live names): `current()` (or calling the object) is None until then, so queries get
    SERVFAIL and `/ready` says 503, as CoreDNS' kubernetes plugin waits for HasSynced.
    An object the zone had to leave out (`Zone.skipped`) is logged once and gets a Warning
    event (reason FailedToBuildDNSRecords) for each version of it that is still unusable.
    """

    RESOURCES = ("services", "endpointslices", "pods", "namespaces")
    EVENT_REASON = "FailedToBuildDNSRecords"
    REBUILD_SPACING = 4.0  # wait at least this many times the last rebuild's CPU time

    def __init__(self, client, *, domain: str = "cluster.local", ttl: int = 30,
                 debounce: float = 0.05, component: str = "coredns",
                 host: str | None = None, factory: InformerFactory | None = None):
        self.client = client
        self.component = component
        self.host = host
        self._reported: set[tuple] = set()
        self.domain = domain
        self.ttl = ttl
        self.debounce = debounce
        self.generation = 0
        self._zone: Zone | None = None
        # A factory handed in is shared with other consumers in the process (one watch
        # per resource); stop() then only releases it.
        self.factory = factory or InformerFactory(client)
        self.informers: dict[str, SharedInformer] = {
            r: self.factory.informer(r) for r in self.RESOURCES}
        self._handlers: list[tuple[SharedInformer, Handler]] = []
        self._lock = threading.Lock()
        self._dirty = threading.Condition(self._lock)
        self._changed = True  # the first zone is built as soon as every cache has synced
        self._last_build = 0.0  # CPU seconds the last rebuild took
        self._stop = threading.Event()
        self._zone_changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def current(self) -> Zone | None:
        return self._zone

    __call__ = current

    def has_synced(self) -> bool:
        """True once a zone built from every synced cache is being served."""
        return self._zone is not None

    def start(self) -> ZoneSource:
        self.factory.retain()
        for res, inf in self.informers.items():
            if res == "pods":  # most pod changes leave the zone as it is
                handler = inf.add_handler(on_add=self._on_pod, on_delete=self._on_pod,
                                          on_update=self._on_pod_update)
            else:
                handler = inf.add_handler(on_add=self._on_event, on_delete=self._on_event,
                                          on_update=lambda old, new: self._kick())
            self._handlers.append((inf, handler))
        self.factory.start()
        self._thread = threading.Thread(target=self._rebuild_loop, daemon=True,
                                        name="dns-rebuild")
        self._thread.start()
        return self

    def stop(self) -> None:
        """At once: no rebuild starts after this. The informers' threads end at their next
        event or bookmark (about a second over LocalClient); join() waits for them."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._dirty:
            self._dirty.notify_all()
        for inf, handler in self._handlers:
            inf.remove_handler(handler)
        self._handlers.clear()
        self.factory.release()

    def join(self, timeout: float | None = None) -> bool:
        """After stop(): wait for the rebuild thread and (if ours alone) the informers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.factory.join(left)

    def configure(self, *, domain: str | None = None, ttl: int | None = None) -> bool:
        """New zone name / TTL (an edited Corefile): rebuild now. True when anything changed."""
        with self._lock:
            changed = (domain is not None and domain != self.domain) or (
                ttl is not None and ttl != self.ttl)
            if domain is not None:
                self.domain = domain
            if ttl is not None:
                self.ttl = ttl
        if changed:
            self._kick()
        return changed

    def wait_for(self, predicate: Callable[[Zone], bool], timeout: float = 5.0) -> Zone:
        """Block until a built Zone satisfies `predicate` (tests, startup)."""
        deadline = time.monotonic() + timeout
        with self._zone_changed:
            while True:
                zone = self._zone
                if zone is not None and predicate(zone):
                    return zone
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("zone condition not met")
                self._zone_changed.wait(left)

    def _on_event(self, obj: dict) -> None:
        self._kick()

    def _on_pod(self, pod: dict) -> None:
        if pod_view(pod) is not None:
            self._kick()

    def _on_pod_update(self, old: dict, new: dict) -> None:
        if pod_view(old) != pod_view(new):
            self._kick()

    def _kick(self) -> None:
        with self._dirty:
            self._changed = True
            self._dirty.notify_all()

    def _rebuild_loop(self) -> None:
        if not self.factory.wait_for_sync(stop=self._stop, resources=list(self.RESOURCES)):
            return  # stopped before the caches were complete
        while not self._stop.is_set():
            with self._dirty:
                while not self._changed and not self._stop.is_set():
                    self._dirty.wait()
            # Let a burst of events land in one rebuild, and under a steady stream of them
            # (a 1,000-pod Deployment coming up: a new address every few ms) spend at most
            # about 1/(REBUILD_SPACING+1) of a core on rebuilds: each reads every object.
            if self._stop.wait(max(self.debounce, self.REBUILD_SPACING * self._last_build)):
                return
            with self._lock:
                self._changed = False
                domain, ttl = self.domain, self.ttl
            services, slices, pods, namespaces = (self.informers[r].indexer.list()
                                                  for r in self.RESOURCES)
            began = time.thread_time()  # this thread's CPU: not inflated by the others'
            try:
                zone = Zone.build(services, slices, pods, namespaces=namespaces, domain=domain,
                                  ttl=ttl)
            except Exception:
                log.exception("dns: zone build failed")
                continue
            finally:
                self._last_build = time.thread_time() - began
            self.generation += 1
            zone.generation = self.generation
            with self._zone_changed:
                self._zone = zone
                self._zone_changed.notify_all()
            self._report(zone.skipped)

    def _report(self, skipped: list[tuple[dict, str]]) -> None:
        """Log and record a Warning event once per (object version, reason)."""
        seen: set[tuple] = set()
        for obj, why in skipped:
            md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            key = (obj.get("kind"), md.get("namespace"), md.get("name"), md.get("uid"),
                   md.get("resourceVersion"), why)
            seen.add(key)
            if key in self._reported:
                continue
            message = f"no DNS records for this {obj.get('kind') or 'object'}: {why}"
            log.warning("dns: %s %s/%s skipped: %s", obj.get("kind"), md.get("namespace"),
                        md.get("name"), why)
            try:
                events.record(self.client, obj, "Warning", self.EVENT_REASON, message,
                              self.component, self.host)
            except Exception as exc:  # the API is down: the log line is all we can do
                log.warning("dns: cannot record an event for %s: %s", md.get("name"), exc)
        self._reported = seen  # a fixed object that breaks again is reported again


# --------------------------------------------------------------------------- config
HEALTH_PORT = 8080  # CoreDNS `health` plugin default
READY_PORT = 8181  # CoreDNS `ready` plugin default


@dataclass
class CorefileConfig:
    zone: str = "cluster.local"
    ttl: int = 30
    upstream: str | None = None
    metrics_port: int = 9153
    health_port: int | None = None  # `health` plugin present
    lameduck: float = 0.0  # `health { lameduck 5s }`: keep answering this long after SIGTERM
    ready_port: int | None = None  # `ready` plugin present


def _plugin_port(words: list[str], default: int) -> int:
    if len(words) > 1:
        port = words[1].rsplit(":", 1)[-1]
        if port.isdigit():
            return int(port)
    return default


def parse_corefile(text: str) -> CorefileConfig:
    """Read the tiny Corefile subset documented at the top of this module."""
    cfg = CorefileConfig()
    seen_zone = False
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].replace("{", " ").replace("}", " ").split()
        if not words:
            continue
        if words[0] == "kubernetes" and len(words) > 1:
            cfg.zone, seen_zone = words[1].strip(".").lower(), True
        elif words[0] == "ttl" and len(words) > 1 and words[1].isdigit():
            cfg.ttl = int(words[1])
        elif words[0] == "forward" and len(words) > 2:
            target = words[2]
            cfg.upstream = None if target.startswith("/") else target
        elif words[0] == "prometheus":
            cfg.metrics_port = _plugin_port(words, cfg.metrics_port)
        elif words[0] == "health":
            cfg.health_port = _plugin_port(words, HEALTH_PORT)
        elif words[0] == "lameduck" and len(words) > 1:
            m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", words[1])
            if m:
                cfg.lameduck = float(m.group(1)) * {"ms": 0.001, "m": 60.0}.get(m.group(2), 1.0)
        elif words[0] == "ready":
            cfg.ready_port = _plugin_port(words, READY_PORT)
        elif not seen_zone and len(words) == 1 and ":" in words[0] and \
                not words[0].startswith("."):
            cfg.zone = words[0].split(":", 1)[0].strip(".").lower()  # `cluster.local:53 {`
    return cfg


class CorefileWatch:
    """Reads the Corefile from a ConfigMap (key `Corefile`) and applies edits as they land.

    The ConfigMaps of that one namespace come from a netsim.machinery informer (list,
    watch, relist on 410 Gone); its handlers pass the named ConfigMap on. `ttl`, the zone
    and `forward` are applied live (ZoneSource.configure rebuilds the zone, which also
    empties the answer cache); a change of listening ports is only logged: the pod must be
    restarted for it (`netsim -n kube-system rollout restart deploy coredns`).
    """

    def __init__(self, client, namespace: str, name: str, *,
                 informer: SharedInformer | None = None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.informer = informer or SharedInformer(client, "configmaps", namespace=namespace)
        self.applied: CorefileConfig | None = None
        self.text: str | None = None
        self.on_change: Callable[[CorefileConfig, CorefileConfig], None] | None = None
        self._stop = threading.Event()
        self._handler: Handler | None = None

    def load(self, timeout: float = 30.0) -> CorefileConfig:
        """The Corefile now: waits for the informer's first list (up to `timeout`);
        defaults when the ConfigMap or its `Corefile` key is missing."""
        self.informer.start()
        if self.informer.wait_for_sync(timeout, stop=self._stop):
            cm = self.informer.indexer.get_by_name(self.name, self.namespace)
            if cm is None:
                log.warning("dns: configmap %s/%s not found; using defaults", self.namespace,
                            self.name)
            self.text = _corefile_text(cm)
        else:
            log.warning("dns: cannot read configmap %s/%s (%s); using defaults",
                        self.namespace, self.name, self.informer.reflector.last_error)
            self.text = None
        self.applied = parse_corefile(self.text) if self.text else CorefileConfig()
        return self.applied

    def start(self) -> CorefileWatch:
        """Follow edits from now on (an edit since load() is applied at once)."""
        self._handler = self.informer.add_handler(
            on_add=self._seen, on_update=lambda old, new: self._seen(new),
            on_delete=self._gone)
        self.informer.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._handler is not None:
            self.informer.remove_handler(self._handler)
        self.informer.stop()

    def _mine(self, cm: dict) -> bool:
        return (cm.get("metadata") or {}).get("name") == self.name

    def _seen(self, cm: dict) -> None:
        if self._mine(cm):
            self._update(cm)

    def _gone(self, cm: dict) -> None:
        if self._mine(cm):
            self._update(None)

    def _update(self, cm: dict | None) -> None:
        text = _corefile_text(cm)
        if text == self.text:
            return
        self.text = text
        new = parse_corefile(text) if text else CorefileConfig()
        old, self.applied = self.applied or CorefileConfig(), new
        log.info("dns: Corefile changed: zone %s ttl %d upstream %s", new.zone, new.ttl,
                 new.upstream)
        if (old.metrics_port, old.health_port, old.ready_port) != (
                new.metrics_port, new.health_port, new.ready_port):
            log.warning("dns: listening ports changed in the Corefile; restart the pod to "
                        "apply them")
        if self.on_change is not None:
            self.on_change(old, new)


def _corefile_text(cm: dict | None) -> str | None:
    data = (cm or {}).get("data")
    return data.get("Corefile") if isinstance(data, dict) else None


def main(argv: Iterable[str] | None = None) -> int:
    """`python -m netsim.dns`: serve the cluster zone from the netsim API."""
    ap = argparse.ArgumentParser(prog="netsim-dns", description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--metrics-port", type=int, default=None)
    ap.add_argument("--config", "-conf", help="Corefile-like config file (see module docs); "
                    "when the file does not exist the ConfigMap is read instead")
    ap.add_argument("--configmap", default=None,
                    help="NAMESPACE/NAME of a ConfigMap whose `Corefile` key is read and "
                         "watched (default: <pod namespace or kube-system>/coredns)")
    ap.add_argument("--cluster", default=os.environ.get("NETSIM_CLUSTER", "netsim"))
    ap.add_argument("--upstream", help="override the Corefile's forward address")
    args = ap.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from netsim.api.client import HttpClient  # the control plane may not be importable in tests

    client = HttpClient(args.cluster)
    watch: CorefileWatch | None = None
    if args.config and os.path.exists(args.config):
        with open(args.config, encoding="utf-8") as fh:
            cfg = parse_corefile(fh.read())
    else:
        if args.config:  # a kubeadm manifest's `-conf /etc/coredns/Corefile`: no volumes here
            log.info("dns: %s does not exist; reading the Corefile from the ConfigMap",
                     args.config)
        ref = args.configmap or (os.environ.get("NETSIM_POD_NAMESPACE", "kube-system")
                                 + "/coredns")
        ns, _, name = ref.rpartition("/")
        watch = CorefileWatch(client, ns or "kube-system", name)
        cfg = watch.load()
    source = ZoneSource(client, domain=cfg.zone, ttl=cfg.ttl,
                        host=os.environ.get("NETSIM_POD_NAME")).start()
    server = DnsServer(source, host=args.listen, port=args.port,
                       upstream=args.upstream or cfg.upstream,
                       metrics_port=args.metrics_port if args.metrics_port is not None
                       else cfg.metrics_port,
                       probe_ports=[p for p in (cfg.health_port, cfg.ready_port)
                                    if p is not None and p != cfg.metrics_port])

    async def run() -> None:
        await server.start()
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            # CoreDNS `health { lameduck 5s }`: keep answering while the endpoint is taken
            # out of the Service, so clients never hit a dead server; a second signal ends it.
            if server.draining or cfg.lameduck <= 0:
                loop.create_task(server.stop())
                return
            log.info("dns: going lame duck for %.1fs", cfg.lameduck)
            server.draining = True
            loop.call_later(cfg.lameduck, lambda: loop.create_task(server.stop()))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, terminate)
        if watch is not None:
            def changed(old: CorefileConfig, new: CorefileConfig) -> None:
                if not args.upstream and new.upstream != old.upstream:
                    loop.call_soon_threadsafe(server.set_upstream, new.upstream)
                source.configure(domain=new.zone, ttl=new.ttl)
            watch.on_change = changed
            watch.start()
        await server.serve_forever()

    try:
        asyncio.run(run())
    finally:
        source.stop()
        if watch is not None:
            watch.stop()
    return 0
