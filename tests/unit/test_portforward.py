"""pods/portforward against a real API server on a unix socket, the node side faked: plain
SPDY/3.1 and SPDY tunnelled in WebSocket as kubectl speaks them (error + data stream per
connection, the server closing both), the v4 channels of the Python client, and the
refusals a client sees before any upgrade."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time

import pytest

import netsim.api.streams.portforward  # noqa: F401  (registers pods/portforward)
from netsim.api.streams import backend, spdy
from netsim.api.streams.backend import StreamError
from tests.conftest import requires_root
from tests.unit.streamhelpers import Api, WsClient

PATH = "/api/v1/namespaces/default/pods/web/portforward"
REFUSED = ("error forwarding port {port} to pod sb1, uid : failed to execute portforward in "
           "network namespace \"/var/run/netns/sb1\": failed to connect to localhost:{port} "
           "inside namespace \"sb1\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection "
           "refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused ")


class LineServer:
    """The pod's port: answers each connection's first line with `echo:<line>` and closes
    (or, after the client's end without a newline, answers what came)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    @staticmethod
    def _one(c: socket.socket) -> None:
        buf = b""
        with c:
            while b"\n" not in buf:
                data = c.recv(65536)
                if not data:
                    break
                buf += data
            c.sendall(b"echo:" + buf)


class FakeNode:
    """backend.Backend's port_forward: port 80 is the LineServer, others refuse."""

    def __init__(self, server: LineServer) -> None:
        self.server = server
        self.dialled: list[tuple[str, int]] = []

    def port_forward(self, pod: dict, port: int) -> socket.socket:
        self.dialled.append((pod["metadata"]["name"], port))
        if port != 80:
            raise StreamError(REFUSED.format(port=port))
        return socket.create_connection(("127.0.0.1", self.server.port))


@pytest.fixture
def api():
    a = Api()
    a.store.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}})
    a.store.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "pending", "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}})
    yield a
    a.stop()


@pytest.fixture
def node():
    srv = LineServer()
    fake = FakeNode(srv)
    old = backend._backend
    backend.install(fake)
    yield fake
    backend.install(old)
    srv.sock.close()


# ---- a SPDY client, as spdystream/kubectl behave -------------------------------------

class SpdyClient:
    def __init__(self, send, recv) -> None:
        self._send, self._recv = send, recv
        self.framer = spdy.Framer()
        self.frames: list = []
        self.next_id = 1

    def send(self, frame) -> None:
        self._send(self.framer.encode(frame))

    def read_until(self, pred, limit: int = 200) -> list:
        """Frames until pred(frames so far) holds."""
        for _ in range(limit):
            if pred(self.frames):
                return self.frames
            data = self._recv()
            if not data:
                break
            self.frames += self.framer.feed(data)
        assert pred(self.frames), f"frames so far: {self.frames}"
        return self.frames

    def forward(self, port: int, request_id: int, payload: bytes, fin: bool = True):
        """kubectl's handleConnection: error stream (closed at once), data stream, bytes."""
        err, data = self.next_id, self.next_id + 2
        self.next_id += 4
        headers = {"streamtype": "error", "port": str(port), "requestid": str(request_id)}
        self.send(spdy.SynStream(err, headers))
        self.send(spdy.Data(err, b"", fin=True))
        self.send(spdy.SynStream(data, {**headers, "streamtype": "data"}))
        if payload:
            self.send(spdy.Data(data, payload))
        if fin:
            self.send(spdy.Data(data, b"", fin=True))
        return err, data


def received(frames, sid: int) -> bytes:
    return b"".join(f.data for f in frames if isinstance(f, spdy.Data) and f.stream_id == sid)


def ended(frames, sid: int) -> bool:
    return any(isinstance(f, spdy.Data) and f.stream_id == sid and f.fin for f in frames)


def upgrade_spdy(api: Api, protocol: str = "portforward.k8s.io") -> tuple[socket.socket, bytes]:
    s = api.connect()
    s.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
              f"X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        assert data, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return s, head + b"\r\n\r\n" + rest


def spdy_session(api: Api) -> SpdyClient:
    s, head = upgrade_spdy(api)
    assert head.startswith(b"HTTP/1.1 101 ")
    lines = head.decode().lower()
    assert "upgrade: spdy/3.1" in lines and "connection: upgrade" in lines
    assert "x-stream-protocol-version: portforward.k8s.io" in lines
    return SpdyClient(s.sendall, lambda: s.recv(65536))


# ---- plain SPDY ----------------------------------------------------------------------

def test_plain_spdy_forwards_and_closes_both_streams(api, node):
    c = spdy_session(api)
    err, data = c.forward(80, 0, b"GET / HTTP/1.1\r\n")
    frames = c.read_until(lambda fs: ended(fs, err))
    # each stream got its SYN_REPLY before anything else on it
    assert [f.stream_id for f in frames if isinstance(f, spdy.SynReply)] == [err, data]
    assert received(frames, data) == b"echo:GET / HTTP/1.1\r\n"
    assert ended(frames, data) and received(frames, err) == b""
    assert node.dialled == [("web", 80)]


def test_the_client_half_close_reaches_the_pod(api, node):
    c = spdy_session(api)
    err, data = c.forward(80, 0, b"no newline, then EOF")
    frames = c.read_until(lambda fs: ended(fs, err))
    assert received(frames, data) == b"echo:no newline, then EOF"


def test_a_refused_port_reports_the_runtime_error_and_closes(api, node):
    c = spdy_session(api)
    err, data = c.forward(81, 0, b"x", fin=False)
    frames = c.read_until(lambda fs: ended(fs, err) and ended(fs, data))
    assert received(frames, err).decode() == REFUSED.format(port=81)
    assert received(frames, data) == b""


def test_connections_share_one_session_and_pings_come_back(api, node):
    c = spdy_session(api)
    pairs = [c.forward(80, i, f"req {i}\n".encode(), fin=False) for i in range(3)]
    c.send(spdy.Ping(1))
    frames = c.read_until(lambda fs: all(ended(fs, e) for e, _ in pairs)
                          and spdy.Ping(1) in fs)
    for i, (_, data) in enumerate(pairs):
        assert received(frames, data) == f"echo:req {i}\n".encode()
    assert node.server.accepted == 3


def test_a_stream_without_port_or_type_is_refused(api, node):
    c = spdy_session(api)
    c.send(spdy.SynStream(1, {"streamtype": "data"}))
    c.send(spdy.SynStream(3, {"streamtype": "bogus", "port": "80"}))
    frames = c.read_until(lambda fs: len(fs) >= 2)
    assert frames == [spdy.RstStream(1, spdy.REFUSED_STREAM),
                      spdy.RstStream(3, spdy.REFUSED_STREAM)]


def test_a_reset_data_stream_still_gets_the_error_stream_closed(api, node):
    c = spdy_session(api)
    err, data = c.forward(80, 0, b"", fin=False)
    c.send(spdy.RstStream(data, spdy.CANCEL))  # kubectl's dataStream.Reset()
    frames = c.read_until(lambda fs: ended(fs, err))
    assert not ended(frames, data)


def test_a_quiet_forward_outlives_the_servers_idle_timeout(node):
    a = Api(idle_timeout=0.3)
    try:
        a.store.create({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "x"}]}})
        c = spdy_session(a)
        err, data = c.forward(80, 0, b"part1 ", fin=False)
        c.read_until(lambda fs: len(fs) >= 2)  # both SYN_REPLYs
        time.sleep(1.0)  # > idle_timeout, nothing on the wire
        c.send(spdy.Data(data, b"part2\n"))
        frames = c.read_until(lambda fs: ended(fs, err))
        assert received(frames, data) == b"echo:part1 part2\n"
    finally:
        a.stop()


def test_another_stream_protocol_is_refused(api, node):
    s, head = upgrade_spdy(api, "v4.channel.k8s.io")
    assert head.startswith(b"HTTP/1.1 403 ")
    assert head.endswith(b"unable to upgrade: unable to negotiate protocol: client supports "
                         b"[v4.channel.k8s.io], server accepts [portforward.k8s.io]\n")
    assert b"\r\nX-Accepted-Stream-Protocol-Versions: portforward.k8s.io\r\n" in head


# ---- SPDY in WebSocket (kubectl 1.30+ tries it first) ------------------------------------

def test_spdy_tunnelled_in_websocket(api, node):
    ws = WsClient(api.connect(), PATH, ["SPDY/3.1+portforward.k8s.io"])
    assert (ws.status, ws.protocol) == (101, "SPDY/3.1+portforward.k8s.io")

    def send(raw: bytes) -> None:  # Go's tunnel writes a frame in several messages
        for i in range(0, len(raw), 5):
            ws.send(raw[i:i + 5])

    c = SpdyClient(send, lambda: ws.next_message() or b"")
    err, data = c.forward(80, 0, b"tunnelled\n")
    frames = c.read_until(lambda fs: ended(fs, err))
    assert received(frames, data) == b"echo:tunnelled\n"


# ---- v4 channels (the Python client) ------------------------------------------------------

def test_v4_channels_carry_the_port_then_the_bytes(api, node):
    ws = WsClient(api.connect(), PATH + "?ports=80", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
    assert (ws.status, ws.protocol) == (101, "v4.channel.k8s.io")
    port = struct.pack("<H", 80)
    assert [ws.next_message(), ws.next_message()] == [b"\x00" + port, b"\x01" + port]
    ws.send(b"\x00hello\n")
    rest = ws.messages()  # until the server closes (the pod closed its end)
    assert b"".join(m[1:] for m in rest if m[:1] == b"\x00") == b"echo:hello\n"
    assert not [m for m in rest if m[:1] == b"\x01"]
    assert ws.closed_code == 1000


def test_v4_refused_port_on_the_error_channel(api, node):
    ws = WsClient(api.connect(), PATH + "?ports=80,81", ["v4.channel.k8s.io"])
    msgs = [ws.next_message() for _ in range(4)]
    assert msgs == [b"\x00P\x00", b"\x01P\x00", b"\x02Q\x00", b"\x03Q\x00"]
    assert ws.next_message() == b"\x03" + REFUSED.format(port=81).encode()
    ws.send(b"\x00bye\n")
    rest = ws.messages()
    assert b"".join(m[1:] for m in rest if m[:1] == b"\x00") == b"echo:bye\n"


def test_v4_base64(api, node):
    ws = WsClient(api.connect(), PATH + "?ports=80", ["v4.base64.channel.k8s.io"])
    assert ws.protocol == "v4.base64.channel.k8s.io"
    assert [ws.next_message(), ws.next_message()] == [b"0UAA=", b"1UAA="]
    ws.send_text("0aGkK")  # "hi\n"
    rest = ws.messages()
    assert b"".join(base64.b64decode(m[1:]) for m in rest if m[:1] == b"0") == b"echo:hi\n"


def test_v4_needs_ports(api, node):
    ws = WsClient(api.connect(), PATH, ["v4.channel.k8s.io"])
    assert ws.status == 400
    assert ws.reject_body == b'query parameter "port" is required\n'


# ---- refusals before any upgrade ----------------------------------------------------------

def _plain(api: Api, path: str, headers: str = "") -> tuple[int, dict]:
    s = api.connect()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    buf = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        buf += data
        head, _, body = buf.partition(b"\r\n\r\n")
        n = [int(v) for k, _, v in (ln.partition(b": ") for ln in head.split(b"\r\n"))
             if k.lower() == b"content-length"]
        if n and len(body) >= n[0]:
            break
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_refusals(api, node):
    code, st = _plain(api, PATH)
    assert (code, st["reason"], st["message"]) == (400, "BadRequest", "Upgrade request required")
    code, st = _plain(api, PATH.replace("web", "nope"), "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n")
    assert (code, st["message"]) == (404, 'pods "nope" not found')
    code, st = _plain(api, PATH.replace("web", "pending"),
                      "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n")
    assert (code, st["message"]) == (400, "pod pending does not have a host assigned")


def test_without_a_node_side_503(api):
    old = backend._backend
    backend.install(None)
    try:
        code, st = _plain(api, PATH, "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n")
    finally:
        backend.install(old)
    assert code == 503


# ---- the node side: a socket made in the pod's netns ---------------------------------

@requires_root
def test_the_node_side_dials_the_pods_loopback_in_its_netns():
    from netsim.kubelet import portforward as node_pf
    from netsim.kubelet.runtime import PodRecord

    pod = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}}
    # this process's own netns stands in for the pod's (setns into it needs root, as into
    # any other); the kubelet's record names it
    rec = PodRecord(uid="u-1", namespace="default", name="web", netns="/proc/self/ns/net")
    srv = LineServer()
    s = node_pf.dial(pod, rec, srv.port)
    s.sendall(b"hi\n")
    assert s.recv(100) == b"echo:hi\n"
    s.close()
    srv.sock.close()
    free = socket.socket()  # a port nobody listens on
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    sandbox = hashlib.sha256(b"u-1").hexdigest()
    with pytest.raises(StreamError) as e:
        node_pf.dial(pod, rec, port)
    free.close()
    v6 = str(e.value).rsplit(f"[::1]:{port}: ", 1)[1]  # refused, or no ::1 on this machine
    assert str(e.value) == (
        f"error forwarding port {port} to pod {sandbox}, uid : failed to execute "
        f"portforward in network namespace \"/proc/self/ns/net\": failed to connect to "
        f"localhost:{port} inside namespace \"{sandbox}\", IPv4: dial tcp4 "
        f"127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: {v6}")
    assert v6 in ("connect: connection refused ", "connect: cannot assign requested address ",
                  "socket: address family not supported by protocol ")
    with pytest.raises(StreamError, match=f'to pod {sandbox}, uid : failed to find sandbox'):
        node_pf.dial(pod, None, 80)
