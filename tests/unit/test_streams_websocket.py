"""The WebSocket upgrade on an API request (netsim.api.streams.websocket): the handshake
kubectl and the Python client make, refusals that make kubectl fall back, messages both
ways, pings, close, and the read timeout lifted for a quiet session."""

from __future__ import annotations

import threading
import time

import pytest

from netsim.api import routes
from netsim.api.streams import websocket
from tests.unit.streamhelpers import Api, WsClient

PROTOS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]


def _echo(req: routes.Request) -> None:
    conn = websocket.accept(req, PROTOS)
    if conn is None:
        return
    conn.send_binary(conn.protocol.encode())
    while (msg := conn.recv()) is not None:
        if msg == b"bye":
            conn.close()
            continue
        conn.send_binary(msg[::-1])


@pytest.fixture
def api():
    routes.SUBRESOURCES[("pods", "wstest")] = _echo
    a = Api(idle_timeout=0.5)
    yield a
    a.stop()
    routes.SUBRESOURCES.pop(("pods", "wstest"), None)


URL = "/api/v1/namespaces/default/pods/p/wstest"


def test_server_picks_its_preferred_protocol_among_the_offered(api):
    c = WsClient(api.connect(), URL, ["v4.channel.k8s.io", "v5.channel.k8s.io"])
    assert (c.status, c.protocol) == (101, "v5.channel.k8s.io")
    assert c.next_message() == b"v5.channel.k8s.io"
    c2 = WsClient(api.connect(), URL, ["v4.channel.k8s.io"])
    assert c2.protocol == "v4.channel.k8s.io"


def test_no_common_protocol_is_403_so_kubectl_falls_back(api):
    c = WsClient(api.connect(), URL, ["v3.channel.k8s.io"])
    assert c.status == 403
    assert b"requested protocol(s) are not supported: [v3.channel.k8s.io]" in c.reject_body


def test_a_plain_get_is_400(api):
    s = api.connect()
    s.sendall(b"GET " + URL.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"missing upgrade headers" in head


def test_messages_both_ways_text_and_fragmented(api):
    c = WsClient(api.connect(), URL, PROTOS)
    assert c.next_message() == b"v5.channel.k8s.io"
    c.send(b"\x00abc")
    assert c.next_message() == b"cba\x00"
    c.send_text("xyz")
    assert c.next_message() == b"zyx"
    big = bytes(range(256)) * 1000  # several TCP reads, one message
    c.send(big)
    assert c.next_message() == big[::-1]


def test_pings_are_answered_and_a_quiet_session_outlives_the_idle_timeout(api):
    c = WsClient(api.connect(), URL, PROTOS)
    assert c.next_message() == b"v5.channel.k8s.io"
    time.sleep(1.2)  # the server's idle timeout is 0.5 s: lifted after the upgrade
    c.ping(b"p1")
    c.send(b"ok")
    assert c.next_message() == b"ko"
    assert c.pongs == [b"p1"]


def test_server_close_is_answered_and_the_reader_ends(api):
    c = WsClient(api.connect(), URL, PROTOS)
    c.send(b"bye")
    assert c.messages() == [b"v5.channel.k8s.io"]
    assert c.closed_code == 1000


def test_client_close_ends_the_reader():
    ended = threading.Event()

    def handler(req):
        conn = websocket.accept(req, PROTOS)
        while conn.recv() is not None:
            pass
        ended.set()
    routes.SUBRESOURCES[("pods", "wstest2")] = handler
    a = Api()
    try:
        c = WsClient(a.connect(), "/api/v1/namespaces/default/pods/p/wstest2", PROTOS)
        c.close()
        assert ended.wait(5)
        c2 = WsClient(a.connect(), "/api/v1/namespaces/default/pods/p/wstest2", PROTOS)
        ended.clear()
        c2.sock.close()  # hang-up without a close frame
        assert ended.wait(5)
    finally:
        a.stop()
        routes.SUBRESOURCES.pop(("pods", "wstest2"), None)


def test_writer_thread_and_reader_thread_share_the_connection(api):
    """One thread sends while another reads (exec's output pumps beside its stdin)."""
    got = []

    def handler(req):
        conn = websocket.accept(req, PROTOS)

        def pump():
            for i in range(200):
                conn.send_binary(b"\x01%d" % i)
        t = threading.Thread(target=pump)
        t.start()
        while (m := conn.recv()) is not None:
            got.append(m)
            if len(got) == 200:
                t.join()
                conn.close()
    routes.SUBRESOURCES[("pods", "wstest3")] = handler
    c = WsClient(api.connect(), "/api/v1/namespaces/default/pods/p/wstest3", PROTOS)
    for i in range(200):
        c.send(b"\x00%d" % i)
    msgs = c.messages()
    routes.SUBRESOURCES.pop(("pods", "wstest3"), None)
    assert msgs == [b"\x01%d" % i for i in range(200)]
    assert got == [b"\x00%d" % i for i in range(200)]
