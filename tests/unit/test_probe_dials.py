"""tcpSocket probes dialled without a thread each (netsim.kubelet.probes.TcpDials), with the
kubelet's words for what went wrong; and the images' accept loop, which answers such a
probe without starting a thread."""

from __future__ import annotations

import select
import socket
import threading
import time

from netsim.images import _common
from netsim.kubelet.probes import TcpDials


def _dial(host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
    dials, stopped = TcpDials(), threading.Event()
    done = dials.start("key", "state", host, port, timeout)
    deadline = time.monotonic() + timeout + 1
    while done is None and time.monotonic() < deadline:
        out = dials.wait(0.05, stopped)
        if out:
            assert [o[:2] for o in out] == [("key", "state")]
            done = out[0][2:]
    assert done is not None
    return done


def test_a_listening_port_is_a_success():
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        assert _dial("127.0.0.1", srv.getsockname()[1]) == (True, "")
    finally:
        srv.close()


def test_a_closed_port_says_connection_refused():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    assert _dial("127.0.0.1", port) == (
        False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


def test_nothing_in_flight_waits_on_the_stop_event():
    stopped = threading.Event()
    stopped.set()
    t = time.monotonic()
    assert TcpDials().wait(5.0, stopped) == []
    assert time.monotonic() - t < 1


def test_a_probe_connection_is_seen_closed_and_a_client_is_not():
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        port = srv.getsockname()[1]
        probe = socket.create_connection(("127.0.0.1", port))
        probe.close()
        conn, _ = srv.accept()
        deadline = time.monotonic() + 2
        while not _common._closed_already(conn) and time.monotonic() < deadline:
            time.sleep(0.01)  # the FIN may come a moment after the accept
        assert _common._closed_already(conn)
        conn.close()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        assert not _common._closed_already(conn)  # open, nothing sent yet
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert select.select([conn], [], [], 2)[0]
        assert not _common._closed_already(conn)  # data waits to be read
        assert conn.recv(3) == b"GET"
        conn.close()
        client.close()
    finally:
        srv.close()
