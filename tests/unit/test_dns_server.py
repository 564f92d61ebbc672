"""The DNS server on 127.0.0.1 (free ports): UDP, TCP, TC, REFUSED, forwarding, fuzz, metrics,
hostile queries (over-long names, EDNS sizes and versions, cache keys); ZoneSource and
CorefileWatch following a real in-memory store through netsim.machinery informers (410 Gone,
an API that is away, readiness before sync, stop, objects it cannot use)."""

from __future__ import annotations

import collections
import logging
import queue
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord, EDNSOption

from netsim.api import errors, events
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.dns.records import Zone
from netsim.dns.server import (
    CACHE_MAX,
    EDNS_SIZE,
    BackgroundDnsServer,
    CorefileWatch,
    DnsServer,
    ZoneSource,
    parse_corefile,
)
from netsim.machinery import Backoff, InformerFactory
from tests.conftest import wait_for
from tests.unit.test_machinery import LossyClient

HOST = "127.0.0.1"


def svc(name, ns="default", cluster_ip="10.96.0.20", ports=(("http", 80, "TCP"),), rv="1",
        **spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
            "spec": {"clusterIP": cluster_ip,
                     "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports],
                     **spec}}


def eps(service, ips, ns="default", ready=True, rv="1"):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-x", "namespace": ns, "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": service}},
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip in ips],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}


BIG = [f"10.244.{i // 250}.{i % 250 + 1}" for i in range(100)]  # ~1.7 kB of A records
MID = [f"10.245.0.{i + 1}" for i in range(50)]  # ~0.9 kB: over 512, under 1232


def cluster_zone() -> Zone:
    return Zone.build(
        [svc("kubernetes", cluster_ip="10.96.0.1", ports=(("https", 443, "TCP"),)),
         svc("big", cluster_ip="None"), svc("mid", cluster_ip="None")],
        [eps("big", BIG), eps("mid", MID)], [])


def query(port: int, name: str, qtype: str = "A", tcp: bool = False, timeout: float = 3,
          edns: int | None = None) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    reply = DNSRecord.parse(q.send(HOST, port, tcp=tcp, timeout=timeout))
    assert reply.header.id == q.header.id
    return reply


@pytest.fixture
def server():
    with BackgroundDnsServer(DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=0)) as bg:
        yield bg.server


def test_udp_and_tcp_answer(server):
    for tcp in (False, True):
        r = query(server.port, "kubernetes.default.svc.cluster.local", tcp=tcp)
        assert r.header.rcode == RCODE.NOERROR
        assert [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]
    r = query(server.port, "nope.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NXDOMAIN and QTYPE[r.auth[0].rtype] == "SOA"


def test_cached_answers_keep_each_query_id_and_case(server):
    for _ in range(3):  # the second and third come from the packed-answer cache
        r = query(server.port, "KUBERNETES.default.svc.cluster.local")
        assert str(r.rr[0].rname) == "KUBERNETES.default.svc.cluster.local."
        r = query(server.port, "kubernetes.default.svc.cluster.local")
        assert str(r.rr[0].rname) == "kubernetes.default.svc.cluster.local."


def test_big_headless_answer_truncates_on_udp_then_tcp_has_it_all(server):
    r = query(server.port, "big.default.svc.cluster.local")
    assert r.header.tc == 1 and not r.rr
    r = query(server.port, "big.default.svc.cluster.local", tcp=True)
    assert r.header.tc == 0
    assert sorted(str(rr.rdata) for rr in r.rr) == sorted(BIG)


def raw_query(port: int, q: DNSRecord, timeout: float = 3) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q.pack(), (HOST, port))
        return s.recv(65535)


def opt_of(r: DNSRecord):
    return next(rr for rr in r.ar if rr.rtype == QTYPE.OPT)


def test_edns_buffer_size_lifts_the_512_byte_limit_up_to_what_we_advertise(server):
    assert query(server.port, "mid.default.svc.cluster.local").header.tc == 1  # no EDNS: 512
    for size in (1232, 4096):
        r = query(server.port, "mid.default.svc.cluster.local", edns=size)
        assert r.header.tc == 0 and len(r.rr) == 50
        assert opt_of(r).rclass == EDNS_SIZE == 1232  # what we advertise
    # A client offering 4 or 64 KiB still gets at most 1232 bytes over UDP: TC, then TCP.
    for size in (4096, 65535):
        q = DNSRecord.question("big.default.svc.cluster.local")
        q.add_ar(EDNS0(udp_len=size))
        wire = raw_query(server.port, q)
        r = DNSRecord.parse(wire)
        assert len(wire) <= 1232 and r.header.tc == 1 and not r.rr
        assert opt_of(r).rclass == 1232
    r = query(server.port, "big.default.svc.cluster.local", tcp=True, edns=4096)
    assert r.header.tc == 0 and len(r.rr) == 100


def test_edns_version_1_gets_badvers_with_our_version_0(server):
    """RFC 6891 6.1.3, as CoreDNS' request/edns.go: BADVERS (16) = 0 in the header and 1 in
    the OPT's extended-RCODE byte; the OPT says version 0; no answer."""
    for tcp in (False, True):
        q = DNSRecord.question("kubernetes.default.svc.cluster.local")
        q.add_ar(EDNS0(udp_len=1232, version=1))
        r = DNSRecord.parse(q.send(HOST, server.port, tcp=tcp, timeout=3))
        opt = opt_of(r)
        ext_rcode, version = opt.ttl >> 24, (opt.ttl >> 16) & 0xFF
        assert (ext_rcode << 4 | r.header.rcode, version) == (16, 0)
        assert r.header.id == q.header.id and not r.rr and opt.rclass == 1232
    r = query(server.port, "kubernetes.default.svc.cluster.local", edns=1232)  # version 0
    assert r.header.rcode == RCODE.NOERROR and [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]


def test_do_bit_is_echoed_in_our_opt(server):
    q = DNSRecord.question("kubernetes.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=1232, flags="do"))
    r = DNSRecord.parse(q.send(HOST, server.port, timeout=3))
    assert opt_of(r).ttl & 0x8000 and [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]


def wire_query(labels: list[bytes], ident: int) -> bytes:
    """A query whose name is whatever `labels` say (dnslib refuses to build bad names)."""
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)


LONG_NAMES = {
    "64-byte label": [b"a" * 64, b"default", b"svc", b"cluster", b"local"],
    "270-byte name": [b"b" * 63] * 4 + [b"cluster", b"local"],
    "256-byte name": [b"c" * 63] * 3 + [b"d" * 44, b"svc", b"cluster", b"local"],
}
LONGEST = [b"c" * 63] * 3 + [b"d" * 43, b"svc", b"cluster", b"local"]  # 255 bytes: fine


def test_over_long_names_get_formerr_and_no_traceback(server, caplog):
    caplog.set_level(logging.DEBUG, logger="netsim.dns")
    assert len(wire_query(LONG_NAMES["256-byte name"], 0)) - 16 == 256  # just over the limit
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(wire_query(LONGEST, 5), (HOST, server.port))
        assert DNSRecord.parse(s.recv(1232)).header.rcode == RCODE.NXDOMAIN
        for i in range(60):  # a flood of them: every one answered, the log barely noticed
            for what, labels in LONG_NAMES.items():
                s.sendto(wire_query(labels, i), (HOST, server.port))
                r = DNSRecord.parse(s.recv(512))
                assert (r.header.id, r.header.qr, r.header.rcode) == (i, 1, RCODE.FORMERR), what
    with socket.create_connection((HOST, server.port), timeout=3) as t:
        pkt = wire_query(LONG_NAMES["64-byte label"], 77)
        t.sendall(struct.pack("!H", len(pkt)) + pkt)
        n = struct.unpack("!H", t.recv(2))[0]
        r = DNSRecord.parse(t.recv(n))
        assert (r.header.id, r.header.rcode) == (77, RCODE.FORMERR)
    assert [str(rr.rdata) for rr in query(server.port, "kubernetes.default.svc.cluster."
                                          "local").rr] == ["10.96.0.1"]
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"
    lines = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(lines) <= 1 and all(len(line) < 200 for line in lines), lines


class Sent:
    """Stands in for the UDP socket: collects what the server sends."""

    def __init__(self):
        self.out: list[bytes] = []

    def sendto(self, data: bytes, addr) -> None:
        self.out.append(data)


def ask_server(server: DnsServer, q: DNSRecord) -> bytes:
    sent = Sent()
    server._udp_datagram(bytes(q.pack()), ("127.0.0.1", 5353), sent)  # as recvfrom gives
    assert len(sent.out) == 1
    return sent.out[0]


def mixed_case(name: str, rnd: random.Random) -> str:
    """DNS 0x20: resolvers randomise the case of every letter."""
    return "".join(c.upper() if rnd.random() < 0.5 else c for c in name)


def test_cache_is_keyed_by_the_question_not_the_raw_query():
    """300 queries for one name, each padded (RFC 7830) with 4 kB and carrying its own cookie,
    in random case: one cache entry, and every reply is what an uncached server says."""
    cached = DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None)
    plain = DnsServer(cached.zone_provider, host=HOST, port=0, metrics_port=None, cache=False)
    rnd = random.Random(7)
    for i in range(300):
        q = DNSRecord.question(mixed_case("kubernetes.default.svc.cluster.local", rnd))
        q.header.id = i
        q.add_ar(EDNS0(udp_len=1232, opts=[EDNSOption(10, rnd.randbytes(8)),
                                           EDNSOption(12, bytes(4000 + i))]))
        got = ask_server(cached, q)
        assert got == ask_server(plain, q)
        r = DNSRecord.parse(got)
        assert r.header.id == i and str(r.rr[0].rname) == str(q.q.qname)
        assert [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]
    assert len(cached._cache) == 1 and cached.cache_bytes < 2000


def test_cached_answers_equal_uncached_ones_for_every_kind_of_reply():
    cached = DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None)
    plain = DnsServer(cached.zone_provider, host=HOST, port=0, metrics_port=None, cache=False)
    rnd = random.Random(3)
    cases = [("kubernetes.default.svc.cluster.local", "A", None),
             ("_https._tcp.kubernetes.default.svc.cluster.local", "SRV", None),
             ("mid.default.svc.cluster.local", "A", None),  # TC without EDNS
             ("mid.default.svc.cluster.local", "A", 1232),
             ("big.default.svc.cluster.local", "A", 4096),  # TC at 1232
             ("nope.default.svc.cluster.local", "A", None),  # NXDOMAIN + SOA
             ("kubernetes.default.svc.cluster.local", "AAAA", 1232),  # NODATA + SOA
             ("dns-version.cluster.local", "TXT", None),
             ("example.com", "A", None)]  # REFUSED
    for name, qtype, edns in cases:
        for rd in (1, 0, 1, 0):
            q = DNSRecord.question(mixed_case(name, rnd), qtype)
            q.header.rd = rd
            if edns:
                q.add_ar(EDNS0(udp_len=edns))
            assert ask_server(cached, q) == ask_server(plain, q), (name, qtype, edns, rd)
    assert len(cached._cache) == 2 * len(cases)  # RD on and off


def test_cache_is_bounded_in_entries_and_bytes():
    server = DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None)
    assert server.cache_max == CACHE_MAX == 10000  # CoreDNS' default capacity
    server.cache_max, server.cache_bytes_max = 500, 60_000
    for i in range(2000):  # distinct names: REFUSED and NXDOMAIN answers are cached too
        name = f"n{i}.example.com" if i % 2 else f"n{i}.default.svc.cluster.local"
        ask_server(server, DNSRecord.question(name))
        assert len(server._cache) <= 500 and server.cache_bytes <= 60_000
    assert len(server._cache) > 100  # it still caches, the oldest went first
    r = DNSRecord.parse(ask_server(server, DNSRecord.question(
        "kubernetes.default.svc.cluster.local")))
    assert [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]


def test_several_queries_on_one_tcp_connection(server):
    names = ["kubernetes.default.svc.cluster.local", "nope.default.svc.cluster.local",
             "dns-version.cluster.local"]
    with socket.create_connection((HOST, server.port), timeout=3) as s:
        wire = b""
        for i, name in enumerate(names):
            q = DNSRecord.question(name, "TXT" if name.startswith("dns") else "A")
            q.header.id = 100 + i
            packed = q.pack()
            wire += struct.pack("!H", len(packed)) + packed
        s.sendall(wire)
        got = []
        buf = b""
        while len(got) < len(names):
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = s.recv(65535)
                assert chunk, "server closed the connection early"
                buf += chunk
            n = struct.unpack("!H", buf[:2])[0]
            got.append(DNSRecord.parse(buf[2:2 + n]))
            buf = buf[2 + n:]
    assert [r.header.id for r in got] == [100, 101, 102]
    assert [RCODE[r.header.rcode] for r in got] == ["NOERROR", "NXDOMAIN", "NOERROR"]


def test_outside_names_are_refused_quickly_without_upstream(server):
    t0 = time.monotonic()
    r = query(server.port, "example.com", timeout=2)
    assert r.header.rcode == RCODE.REFUSED and not r.rr
    assert time.monotonic() - t0 < 1.5  # a user's dig must not hang
    assert query(server.port, "example.com", tcp=True).header.rcode == RCODE.REFUSED


def test_forwarding_to_an_upstream_server():
    upstream_zone = Zone.build([svc("web", cluster_ip="10.1.2.3")], [], [],
                               domain="corp.internal")
    with BackgroundDnsServer(DnsServer(upstream_zone, host=HOST, port=0,
                                       metrics_port=None)) as up:
        main = DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None,
                         upstream=f"{HOST}:{up.server.port}")
        with BackgroundDnsServer(main):
            for tcp in (False, True):
                r = query(main.port, "web.default.svc.corp.internal", tcp=tcp)
                assert [str(rr.rdata) for rr in r.rr] == ["10.1.2.3"]
            # the upstream's own REFUSED comes back unchanged
            assert query(main.port, "example.com").header.rcode == RCODE.REFUSED
            # our own zone is still answered locally
            assert query(main.port, "kubernetes.default.svc.cluster.local").rr


def test_dead_upstream_gives_servfail():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind((HOST, 0))  # bound but never read: the upstream that does not answer
        main = DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None,
                         upstream=f"{HOST}:{hole.getsockname()[1]}", upstream_timeout=0.3)
        with BackgroundDnsServer(main):
            assert query(main.port, "example.com").header.rcode == RCODE.SERVFAIL


def test_malformed_datagrams_never_break_the_server(server, caplog):
    caplog.set_level(logging.ERROR, logger="netsim.dns")
    rnd = random.Random(1234)
    valid = DNSRecord.question("kubernetes.default.svc.cluster.local").pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for i in range(10_000):
            kind = i % 4
            if kind == 0:
                pkt = rnd.randbytes(rnd.randrange(0, 600))
            elif kind == 1:
                pkt = valid[:rnd.randrange(0, len(valid))]
            elif kind == 2:
                pkt = bytearray(valid)
                for _ in range(rnd.randrange(1, 6)):
                    pkt[rnd.randrange(len(pkt))] = rnd.randrange(256)
                pkt = bytes(pkt)
            else:  # header says 40 questions / huge counts, body is garbage
                pkt = struct.pack("!HHHHHH", i, 0x0100, 40, 9, 9, 9) + rnd.randbytes(30)
            try:
                s.sendto(pkt, (HOST, server.port))
            except (BlockingIOError, OSError):
                pass
            try:
                while True:
                    s.recv(65535)
            except (BlockingIOError, OSError):
                pass
    # The flood may still fill the socket buffer and drop one datagram: retry as dig does.
    for attempt in range(5):
        try:
            r = query(server.port, "kubernetes.default.svc.cluster.local", timeout=1)
            break
        except TimeoutError:
            if attempt == 4:
                raise
    assert [str(rr.rdata) for rr in r.rr] == ["10.96.0.1"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_formerr_and_notimp_where_the_header_parses(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(struct.pack("!HHHHHH", 4321, 0x0100, 1, 0, 0, 0) + b"\x05abc", (HOST, server.port))
        reply = DNSRecord.parse(s.recv(512))
        assert reply.header.id == 4321 and reply.header.rcode == RCODE.FORMERR
        q = DNSRecord.question("kubernetes.default.svc.cluster.local")
        q.header.opcode = 2  # STATUS
        s.sendto(q.pack(), (HOST, server.port))
        assert DNSRecord.parse(s.recv(512)).header.rcode == RCODE.NOTIMP


def test_zone_swap_is_seen_by_the_next_query():
    holder = {"zone": Zone.build([svc("web", cluster_ip="10.96.1.1")], [], [])}
    with BackgroundDnsServer(DnsServer(lambda: holder["zone"], host=HOST, port=0,
                                       metrics_port=None)) as bg:
        name = "web.default.svc.cluster.local"
        assert [str(rr.rdata) for rr in query(bg.server.port, name).rr] == ["10.96.1.1"]
        holder["zone"] = Zone.build([svc("web", cluster_ip="10.96.2.2")], [], [])
        assert [str(rr.rdata) for rr in query(bg.server.port, name).rr] == ["10.96.2.2"]


def test_not_synced_yet_is_servfail():
    with BackgroundDnsServer(DnsServer(lambda: None, host=HOST, port=0,
                                       metrics_port=None)) as bg:
        r = query(bg.server.port, "kubernetes.default.svc.cluster.local")
        assert r.header.rcode == RCODE.SERVFAIL


def test_metrics_use_coredns_names(server):
    query(server.port, "kubernetes.default.svc.cluster.local")
    query(server.port, "kubernetes.default.svc.cluster.local")
    query(server.port, "nope.default.svc.cluster.local", "AAAA", tcp=True)
    query(server.port, "example.com")
    with urllib.request.urlopen(f"http://{HOST}:{server.metrics_port}/metrics", timeout=3) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    assert (f'coredns_dns_requests_total{{server="dns://127.0.0.1:{server.port}",'
            'zone="cluster.local.",view="",proto="udp",family="1",type="A"} 2') in text
    assert 'proto="tcp",family="1",type="AAAA"} 1' in text
    assert 'rcode="NXDOMAIN"' in text and 'rcode="REFUSED"' in text
    assert "# TYPE coredns_dns_request_duration_seconds histogram" in text
    assert 'coredns_dns_request_duration_seconds_bucket{' in text and 'le="+Inf"} 2' in text
    with urllib.request.urlopen(f"http://{HOST}:{server.metrics_port}/ready", timeout=3) as resp:
        assert resp.status == 200


QPS_NAMES = (("kubernetes.default.svc.cluster.local", "A"),
             ("nope.default.svc.cluster.local", "A"),
             ("big.default.svc.cluster.local", "A"),
             ("_https._tcp.kubernetes.default.svc.cluster.local", "SRV"))


def measure_qps(port: int, total: int = 6000, window: int = 32
                ) -> tuple[float, int, collections.Counter]:
    """One Python client thread keeping `window` UDP queries in flight; bounded count.
    Returns the rate, the number of answers and how often each distinct reply came."""
    names = []
    for i, (name, qtype) in enumerate(QPS_NAMES):
        q = DNSRecord.question(name, qtype)
        q.header.id = 1000 + i
        names.append(q.pack())
    result: dict = {"replies": collections.Counter()}

    def client() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            sent = received = 0
            t0 = time.perf_counter()
            while received < total:
                while sent < total and sent - received < window:
                    s.sendto(names[sent % len(names)], (HOST, port))
                    sent += 1
                try:
                    result["replies"][s.recv(4096)] += 1
                    received += 1
                except TimeoutError:
                    break  # a dropped datagram: stop rather than hang
            result["qps"] = received / (time.perf_counter() - t0)
            result["received"] = received

    t = threading.Thread(target=client)
    t.start()
    t.join(60)
    return result.get("qps", 0.0), result.get("received", 0), result["replies"]


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "uncached"])
def test_qps_is_measured_and_printed(cache):
    """A rough figure, printed and not asserted (benchmarks live in tests/bench)."""
    with BackgroundDnsServer(DnsServer(cluster_zone(), host=HOST, port=0, metrics_port=None,
                                       cache=cache)) as bg:
        qps, received, replies = measure_qps(bg.server.port)
    print(f"\ndns qps (udp, {'cached' if cache else 'uncached'}, 1 client thread, "
          f"32 in flight): {qps:.0f} ({received} answers)")
    # Every query answered, and each name always got the one right answer.
    assert received == 6000
    assert sorted(replies.values()) == [1500] * 4, "different replies to the same query"
    by_id = {r.header.id: r for r in map(DNSRecord.parse, replies)}
    assert [str(rr.rdata) for rr in by_id[1000].rr] == ["10.96.0.1"]
    assert by_id[1001].header.rcode == RCODE.NXDOMAIN
    assert by_id[1002].header.tc == 1  # 100 A records do not fit in 512 bytes
    assert [str(rr.rdata) for rr in by_id[1003].rr] == [
        "0 100 443 kubernetes.default.svc.cluster.local."]


# --------------------------------------------------------------------------- ZoneSource
def store_client(cls: type[LocalClient] = LocalClient) -> LocalClient:
    """A client of a real in-memory store (no admission: tests write what they like)."""
    client = cls(Store(":memory:"))
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return client


class AwayClient(LocalClient):
    """Lists of the resources in `away` fail as an unreachable API server's do."""

    def __init__(self, store: Store):
        super().__init__(store)
        self.away: set[str] = set()

    def list_rv(self, resource, namespace=None, label_selector=None):
        if resource in self.away:
            raise errors.ApiError("The connection to the netsim API server was refused",
                                  code=503)
        return super().list_rv(resource, namespace, label_selector)


def a_of(zone: Zone, name: str) -> list[str]:
    reply = zone.answer(DNSRecord.question(name))
    return sorted(str(rr.rdata) for rr in reply.rr) if reply else []


@pytest.fixture
def api():
    client = store_client(LossyClient)
    client.create(svc("kubernetes", cluster_ip="10.96.0.1"))
    client.create(svc("db", cluster_ip="None"))
    client.create(eps("db", ["10.244.1.2", "10.244.1.3"]))
    source = ZoneSource(client, debounce=0.02).start()
    yield client, source
    source.stop()
    source.join(5)
    client.store.close()


def test_zone_source_initial_sync_and_watch_updates(api):
    client, source = api
    db = "db.default.svc.cluster.local"
    zone = source.wait_for(lambda z: a_of(z, db) == ["10.244.1.2", "10.244.1.3"])
    assert source() is zone and zone.generation >= 1 and source.has_synced()
    client.update(eps("db", ["10.244.1.2", "10.244.1.3"], ready=False) | {
        "metadata": client.get("endpointslices", "db-x", "default")["metadata"]})
    source.wait_for(lambda z: a_of(z, db) == [])
    client.create(svc("web", cluster_ip="10.96.5.5"))
    source.wait_for(lambda z: a_of(z, "web.default.svc.cluster.local") == ["10.96.5.5"])
    client.delete("services", "web", "default")
    source.wait_for(lambda z: a_of(z, "web.default.svc.cluster.local") == [])
    # One list per resource: everything after came from the watches.
    assert [inf.reflector.lists for inf in source.informers.values()] == [1, 1, 1, 1]


def rcode_of(zone: Zone, name: str) -> int:
    return zone.answer(DNSRecord.question(name)).header.rcode


def test_zone_source_follows_namespaces(api):
    """A namespace with nothing in it exists for DNS while its Namespace object does."""
    client, source = api
    name = "quiet.svc.cluster.local"
    source.wait_for(lambda z: rcode_of(z, name) == RCODE.NXDOMAIN)
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quiet"}})
    zone = source.wait_for(lambda z: rcode_of(z, name) == RCODE.NOERROR)
    assert a_of(zone, "10-244-7-7.quiet.pod.cluster.local") == ["10.244.7.7"]
    ns = client.delete("namespaces", "quiet")  # Terminating: it still exists (as upstream)
    source.wait_for(lambda z: z.serial >= int(ns["metadata"]["resourceVersion"]))
    assert rcode_of(source(), name) == RCODE.NOERROR
    client.update({**ns, "metadata": {**ns["metadata"], "finalizers": []}})  # finalized: gone
    source.wait_for(lambda z: rcode_of(z, name) == RCODE.NXDOMAIN)


def test_zone_source_relists_after_410_gone(api):
    client, source = api
    source.wait_for(lambda z: a_of(z, "kubernetes.default.svc.cluster.local") == ["10.96.0.1"])
    client.lose.set()  # these changes never arrive as events ...
    client.create(svc("missed", cluster_ip="10.96.9.9"))
    client.delete("services", "kubernetes", "default")
    client.expire.set()  # ... only the relist after the watch's 410 Gone sees them
    zone = source.wait_for(lambda z: a_of(z, "missed.default.svc.cluster.local")
                           == ["10.96.9.9"])
    source.wait_for(lambda z: a_of(z, "kubernetes.default.svc.cluster.local") == [])
    assert a_of(zone, "db.default.svc.cluster.local") == ["10.244.1.2", "10.244.1.3"]
    assert source.informers["services"].reflector.lists == 2
    client.create(svc("after", cluster_ip="10.96.9.10"))  # and it watches on from there
    source.wait_for(lambda z: a_of(z, "after.default.svc.cluster.local") == ["10.96.9.10"])


def test_zone_source_debounces_bursts(api):
    client, source = api
    source.wait_for(lambda z: a_of(z, "kubernetes.default.svc.cluster.local") != [])
    before = source.generation
    for i in range(50):
        client.create(svc(f"s{i}", cluster_ip=f"10.96.10.{i + 1}"))
    source.wait_for(lambda z: a_of(z, "s49.default.svc.cluster.local") == ["10.96.10.50"])
    assert source.generation - before < 50


def test_server_follows_the_zone_source(api):
    client, source = api
    source.wait_for(lambda z: True)
    with BackgroundDnsServer(DnsServer(source, host=HOST, port=0, metrics_port=None)) as bg:
        name = "late.default.svc.cluster.local"
        assert query(bg.server.port, name).header.rcode == RCODE.NXDOMAIN
        client.create(svc("late", cluster_ip="10.96.3.3"))
        source.wait_for(lambda z: a_of(z, name) == ["10.96.3.3"])
        assert [str(rr.rdata) for rr in query(bg.server.port, name).rr] == ["10.96.3.3"]


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ready", timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_no_answers_and_not_ready_until_every_cache_has_synced():
    """Services and slices are listed but pods are not (the API went away): answering from
    that would say NXDOMAIN for pod names, so it is SERVFAIL and /ready 503 until then."""
    client = store_client(AwayClient)
    client.create(svc("web", cluster_ip="10.96.0.50"))
    client.away.add("pods")
    source = ZoneSource(client, debounce=0.02)
    source.informers["pods"].reflector.backoff = Backoff(0.01, 0.05)
    source.start()
    try:
        with BackgroundDnsServer(DnsServer(source, host=HOST, port=0, metrics_port=0)) as bg:
            wait_for(lambda: source.informers["services"].has_synced()
                     and source.informers["endpointslices"].has_synced()
                     and source.informers["pods"].reflector.lists == 0
                     and source.informers["pods"].reflector.last_error is not None,
                     5, what="services and slices listed, pods failing")
            assert source() is None and not source.has_synced()
            r = query(bg.server.port, "web.default.svc.cluster.local")
            assert r.header.rcode == RCODE.SERVFAIL
            assert ready_status(bg.server.metrics_port) == 503
            client.away.clear()
            source.wait_for(lambda z: a_of(z, "web.default.svc.cluster.local") == ["10.96.0.50"])
            assert [str(rr.rdata) for rr in query(bg.server.port, "web.default.svc."
                                                  "cluster.local").rr] == ["10.96.0.50"]
            assert ready_status(bg.server.metrics_port) == 200
    finally:
        source.stop()
        source.join(5)


def test_stop_is_honoured_at_once(api):
    client, source = api
    source.wait_for(lambda z: True)
    t0 = time.monotonic()
    source.stop()
    assert source._thread is not None
    source._thread.join(0.5)
    assert not source._thread.is_alive() and time.monotonic() - t0 < 0.5  # no more rebuilds
    generation = source.generation
    client.create(svc("after-stop", cluster_ip="10.96.7.7"))
    assert source.join(3), "the informers' threads did not end"  # LocalClient: ~1 s
    assert source.generation == generation


def test_stop_before_the_first_sync_returns_at_once():
    client = store_client(AwayClient)
    client.away.update(ZoneSource.RESOURCES)
    source = ZoneSource(client).start()
    wait_for(lambda: all(inf.reflector.last_error for inf in source.informers.values()), 5,
             what="every list failing")
    t0 = time.monotonic()
    source.stop()
    assert source.join(1.0) and time.monotonic() - t0 < 1.0  # backoff waits end too
    assert source() is None


def test_zone_source_shares_a_factory_with_other_consumers():
    """Handed a process's InformerFactory, the DNS zone reads the same caches (one watch per
    resource) and stopping it leaves the informers running for the others."""
    client = store_client()
    client.create(svc("web", cluster_ip="10.96.0.50"))
    factory = InformerFactory(client)
    other = factory.informer("services")
    factory.retain()  # another consumer
    source = ZoneSource(client, factory=factory).start()
    try:
        source.wait_for(lambda z: a_of(z, "web.default.svc.cluster.local") == ["10.96.0.50"])
        assert source.informers["services"] is other
        source.stop()
        client.create(svc("web2", cluster_ip="10.96.0.51"))
        wait_for(lambda: other.indexer.get("default/web2"), 5, what="the other consumer's cache")
    finally:
        factory.release()
        factory.join(3)


def corefile_cm(ttl: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": f".:53 {{\n  kubernetes cluster.local {{\n    ttl {ttl}\n  }}\n"
                                 "  ready\n}\n"}}


def test_corefile_is_read_then_followed_through_edits_and_deletes():
    client = store_client()
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
    client.create(corefile_cm(7))
    client.create({"apiVersion": "v1", "kind": "ConfigMap",  # another one, ignored
                   "metadata": {"name": "other", "namespace": "kube-system"}, "data": {}})
    watch = CorefileWatch(client, "kube-system", "coredns")
    changes: queue.Queue = queue.Queue()
    try:
        cfg = watch.load(timeout=5)
        assert (cfg.ttl, cfg.ready_port) == (7, 8181)
        watch.on_change = lambda old, new: changes.put((old.ttl, new.ttl))
        watch.start()
        cm = client.get("configmaps", "coredns", "kube-system")
        cm["data"] = corefile_cm(12)["data"]
        client.update(cm)
        assert changes.get(timeout=5) == (7, 12)
        client.update(client.get("configmaps", "other", "kube-system") | {"data": {"x": "1"}})
        client.delete("configmaps", "coredns", "kube-system")
        assert changes.get(timeout=5) == (12, 30)  # gone: the defaults
        client.create(corefile_cm(5))
        assert changes.get(timeout=5) == (30, 5)
        assert changes.empty() and watch.applied.ttl == 5
    finally:
        watch.stop()


def test_corefile_missing_at_start_means_defaults_until_it_appears(caplog):
    caplog.set_level(logging.WARNING, logger="netsim.dns")
    client = store_client()
    watch = CorefileWatch(client, "default", "coredns")
    changes: queue.Queue = queue.Queue()
    try:
        assert watch.load(timeout=5).ttl == 30
        assert any("configmap default/coredns not found" in r.getMessage()
                   for r in caplog.records)
        watch.on_change = lambda old, new: changes.put(new.ttl)
        watch.start()
        client.create(corefile_cm(9) | {"metadata": {"name": "coredns",
                                                     "namespace": "default"}})
        assert changes.get(timeout=5) == 9
    finally:
        watch.stop()


# ------------------------------------------------------------------------------- config
KUBEADM_COREFILE = """\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def test_parse_kubeadm_corefile():
    cfg = parse_corefile(KUBEADM_COREFILE)
    assert (cfg.zone, cfg.ttl, cfg.upstream, cfg.metrics_port) == ("cluster.local", 30, None, 9153)
    cfg = parse_corefile("corp.internal:53 {\n  kubernetes corp.internal\n  ttl 5\n"
                         "  forward . 10.0.0.2:5353\n  prometheus 0.0.0.0:9253\n}\n")
    assert (cfg.zone, cfg.ttl, cfg.upstream, cfg.metrics_port) == (
        "corp.internal", 5, "10.0.0.2:5353", 9253)


def test_module_entry_point_has_help():
    out = subprocess.run([sys.executable, "-m", "netsim.dns", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--listen", "--port", "--metrics-port", "--config"):
        assert flag in out.stdout


# ------------------------------------------------------------- objects DNS cannot use
def bad_objects() -> list[dict]:
    """What admission refuses, as if written into the store directly (or by an old version)."""
    bad_address = eps("db", ["127.0.0.1 max_fails=0; } server { listen 80"])
    bad_address["metadata"]["name"] = "db-bad-address"
    bad_port = eps("db", ["10.244.1.9"])
    bad_port["metadata"]["name"] = "db-bad-port"
    bad_port["ports"][0]["port"] = "abc"
    return [svc("web\n", cluster_ip="10.96.0.51"),
            svc("x" * 64, cluster_ip="10.96.0.52"),
            svc("badip", cluster_ip="10.96.0.999"),
            svc("badport", cluster_ip="10.96.0.53", ports=(("http", "abc", "TCP"),)),
            svc("badportname", cluster_ip="10.96.0.54", ports=(("http\n", 80, "TCP"),)),
            svc("badext", cluster_ip=None, ports=(), type="ExternalName",
                externalName="one.example.com\n"),
            bad_address, bad_port]


def test_objects_dns_cannot_use_are_skipped_with_a_warning_event(caplog):
    caplog.set_level(logging.WARNING, logger="netsim.dns")
    client = store_client()
    client.store.admission = None  # straight into the store, as admission never saw them
    client.create(svc("web", cluster_ip="10.96.0.50"))
    client.create(svc("db", cluster_ip="None"))
    client.create(eps("db", ["10.244.1.2"]))
    stored = [client.create(o) for o in bad_objects()]
    source = ZoneSource(client, debounce=0.02).start()
    try:
        client.create(svc("late", cluster_ip="10.96.0.60"))  # the zone keeps following the API
        zone = source.wait_for(lambda z: a_of(z, "late.default.svc.cluster.local")
                               == ["10.96.0.60"])
        assert a_of(zone, "web.default.svc.cluster.local") == ["10.96.0.50"]
        assert a_of(zone, "db.default.svc.cluster.local") == ["10.244.1.2"]
        with BackgroundDnsServer(DnsServer(source, host=HOST, port=0,
                                           metrics_port=None)) as bg:
            for name, qtype in (("web.default.svc.cluster.local", "A"),
                                ("_http._tcp.db.default.svc.cluster.local", "SRV"),
                                ("badport.default.svc.cluster.local", "SRV"),
                                ("badext.default.svc.cluster.local", "CNAME")):
                r = query(bg.server.port, name, qtype)
                want = RCODE.NXDOMAIN if name.startswith("bad") else RCODE.NOERROR
                assert r.header.rcode == want, (name, r)
            assert [str(rr.rdata) for rr in query(bg.server.port, "_http._tcp.db.default.svc."
                                                  "cluster.local", "SRV").rr] == [
                "0 100 80 10-244-1-2.db.default.svc.cluster.local."]

        def warnings(obj: dict) -> list[dict]:
            return [e for e in events.for_object(client, obj)
                    if e["type"] == "Warning" and e["reason"] == "FailedToBuildDNSRecords"]

        deadline = time.monotonic() + 5
        while not all(warnings(o) for o in stored) and time.monotonic() < deadline:
            time.sleep(0.02)
        wanted = {"web\n": 'metadata.name: Invalid value: "web\\n": a DNS-1035 label must '
                            "consist of lower case alphanumeric characters",
                  "x" * 64: f'metadata.name: Invalid value: "{"x" * 64}": must be no more '
                            "than 63 characters",
                  "badip": 'spec.clusterIP: Invalid value: "10.96.0.999": must be a valid IP',
                  "badport": 'spec.ports[0].port: Invalid value: "abc": must be between 1 and '
                             "65535, inclusive",
                  "badportname": 'spec.ports[0].name: Invalid value: "http\\n"',
                  "badext": 'spec.externalName: Invalid value: "one.example.com\\n"',
                  "db-bad-address": "endpoints[0].addresses[0]: Invalid value: \"127.0.0.1 "
                                    "max_fails=0; } server { listen 80\": must be a valid IP",
                  "db-bad-port": 'ports[0].port: Invalid value: "abc"'}
        for obj in stored:
            evs = warnings(obj)
            assert len(evs) == 1, (obj["metadata"]["name"], evs)
            assert evs[0]["source"]["component"] == "coredns"
            assert wanted[obj["metadata"]["name"]] in evs[0]["message"], evs[0]["message"]
            assert evs[0]["involvedObject"]["uid"] == obj["metadata"]["uid"]

        # More rebuilds: no new log lines or events for the same versions of the same objects.
        for i in range(3):
            client.create(svc(f"more{i}", cluster_ip=f"10.96.0.7{i}"))
            source.wait_for(lambda z, i=i: a_of(z, f"more{i}.default.svc.cluster.local") != [])
        lines = [r.getMessage() for r in caplog.records if "badport " in r.getMessage()
                 or "badport:" in r.getMessage() or "/badport " in r.getMessage()]
        assert len(lines) == 1, lines
        assert all(ev["count"] == 1 for o in stored for ev in warnings(o))

        # Fixed by the user: it resolves.
        fixed = client.get("services", "badport", "default")
        fixed["spec"]["ports"][0]["port"] = 8080
        client.update(fixed)
        zone = source.wait_for(lambda z: a_of(z, "badport.default.svc.cluster.local")
                               == ["10.96.0.53"])
        assert not [o for o, _ in zone.skipped if o["metadata"]["name"] == "badport"]
    finally:
        source.stop()
