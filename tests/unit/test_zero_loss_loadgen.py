"""The zero-loss load generator's DNS client makes a lookup as glibc's resolver does with one
nameserver (timeout:5 attempts:2): a lost query is sent again from the same socket, an ICMP
error ends a try at once; only a lookup that fails every try is lost (issue #18)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from tests import zero_loss_loadgen as lg


def answer(query: bytes) -> bytes:
    """NOERROR with one A record for the query's question."""
    qid = query[:2]
    header = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton("10.96.0.20")
    return header + query[12:] + rr


class Server:
    """A UDP server on 127.0.0.1 that drops the first `drop` queries it gets."""

    def __init__(self, drop: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.sources: list[int] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                return
            self.sources.append(addr[1])
            if len(self.sources) > self.drop:
                self.sock.sendto(answer(data), addr)


def test_a_lost_query_is_sent_again_from_the_same_port_and_the_lookup_is_not_lost():
    srv = Server(drop=1)
    try:
        assert lg.lookup("127.0.0.1", srv.port, "web.zero-loss.svc.cluster.local", 0.3,
                         2) == "dns (retried)"
        assert len(srv.sources) == 2 and srv.sources[0] == srv.sources[1]
        assert lg.lookup("127.0.0.1", srv.port, "web.zero-loss.svc.cluster.local", 0.3,
                         2) == "dns"
    finally:
        srv.sock.close()


def test_a_lookup_fails_when_every_try_does():
    srv = Server(drop=2)
    try:
        with pytest.raises(TimeoutError, match="try 1: no answer.*try 2: no answer"):
            lg.lookup("127.0.0.1", srv.port, "web.zero-loss.svc.cluster.local", 0.2, 2)
    finally:
        srv.sock.close()


def test_nothing_listening_ends_each_try_at_once_and_the_next_comes_from_a_new_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing there: ICMP port unreachable
    with pytest.raises(TimeoutError) as e:
        lg.lookup("127.0.0.1", port, "web.zero-loss.svc.cluster.local", 5, 2)
    text = str(e.value)
    assert text.count("Connection refused") == 2, text
    ports = [w.rstrip(")") for w in text.split() if w.rstrip(");").isdigit()]
    assert len(set(ports)) == 2, text


def test_http_connect_errors_name_the_source_port_the_kernel_chose():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: RST
    with pytest.raises(ConnectionRefusedError, match=r"connect from port \d+"):
        lg.http_once("127.0.0.1", port, "web", 2)


def test_http_once_reads_the_serving_pod_from_the_echo_body():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"pod": "web-1"}')
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        assert lg.http_once("127.0.0.1", srv.getsockname()[1], "web", 2) == "web-1"
    finally:
        srv.close()
