"""pods/portforward, as kube-apiserver, the kubelet and containerd answer it together:

- kubectl (1.30+) first asks for a WebSocket with the protocol `SPDY/3.1+portforward.k8s.io`
  and speaks SPDY/3.1 inside its binary messages (the apiserver's TunnelingHandler); when
  that upgrade fails it falls back to plain `Upgrade: SPDY/3.1` with
  `X-Stream-Protocol-Version: portforward.k8s.io`. Either way each forwarded connection is
  a pair of SPDY streams with the same `requestid` header: `streamtype: error` and
  `streamtype: data`, both with a `port` header. The server dials the port once it has the
  pair, copies bytes both ways, and ends by closing (FIN) the data stream and the error
  stream — kubectl waits for the error stream's end, and prints what it carried.
- The Python client asks for a WebSocket with `v4.channel.k8s.io` and `?ports=80,...`:
  channel 2i carries port i's bytes both ways, channel 2i+1 its errors, and each channel's
  first message is the port as a little-endian uint16 (the kubelet's websocket.go).

The pod's port is dialled at 127.0.0.1 (then ::1) inside the pod's network namespace, as
containerd does, by the node side the control plane installs (backend.py: port_forward),
which also words a failed dial (the kubelet's line around containerd's).

One thread (the request's) runs a poll loop over the client's socket and the pod sockets:
the TLS socket is never read and written by two threads at once (OpenSSL does not allow
it), and backpressure is what the loop polls for: the pod is not read while the client is
behind, the client not while a pod is."""

from __future__ import annotations

import base64
import select
import socket
import ssl
import struct
import time
import urllib.parse

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from netsim.api import errors, routes
from netsim.api.streams import backend, spdy, websocket
from netsim.api.streams.backend import StreamError

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
V4_BINARY = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
# the kubelet's defaults: --streaming-connection-idle-timeout and the wait for both
# streams of one forwarded connection
IDLE_TIMEOUT = 4 * 3600.0
STREAM_CREATION_TIMEOUT = 30.0
# containerd: once one direction of a forwarded connection ends, the other gets a second
LINGER = 1.0
# after our WebSocket close frame, how long the client has to answer before the socket goes
CLOSE_TIMEOUT = 2.0
_HIGH_WATER = 1 << 20
# a channel message past this closes the WebSocket (1009), as websocket.py's reader does
MAX_MESSAGE = 16 * 1024 * 1024
_CHUNK = 64 * 1024


def _dial(pod: dict, port: int) -> socket.socket:
    """backend.current().port_forward: raises StreamError in the kubelet's words."""
    return backend.current().port_forward(pod, port)


# ---- the request ---------------------------------------------------------------------

@routes.subresource("pods", "portforward")
def portforward(req: routes.Request) -> None:
    if req.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    pod = req.store.get("pods", req.name, req.namespace)
    h = req.headers
    upgrade = (h.get("upgrade") or "").lower()
    if not upgrade or "upgrade" not in (h.get("connection") or "").lower():
        raise errors.BadRequest("Upgrade request required")
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.BadRequest(f"pod {req.name} does not have a host assigned")
    backend.current()  # 503 before any upgrade when no node side is installed
    if "websocket" in upgrade:
        _websocket(req, pod)
    elif "spdy/3.1" in upgrade:
        _plain_spdy(req, pod)
    else:
        raise errors.BadRequest("Upgrade request required")


def _plain_spdy(req: routes.Request, pod: dict) -> None:
    handler = req.handler
    offered = [p.strip() for p in (req.headers.get("x-stream-protocol-version") or "").split(",")
               if p.strip()]
    if offered and PROTOCOL not in offered:
        # httpstream.Handshake's refusal (http.Error's text/plain)
        msg = (f"unable to upgrade: unable to negotiate protocol: client supports "
               f"[{' '.join(offered)}], server accepts [{PROTOCOL}]")
        handler._send_raw(403, msg.encode() + b"\n",
                          b"X-Accepted-Stream-Protocol-Versions: %s\r\n"
                          b"X-Content-Type-Options: nosniff\r\n" % PROTOCOL.encode(),
                          b"text/plain; charset=utf-8")
        return
    handler.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                        b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n"
                        % PROTOCOL.encode())
    handler.wfile.flush()
    handler.close_connection = True
    link = _Link(handler)
    _run(link, _SpdySession(link, _Raw(), pod))


def _websocket(req: routes.Request, pod: dict) -> None:
    offered = websocket.offered_protocols(req.headers)
    if any(p.startswith("SPDY/3.1+") for p in offered):
        protocols = [TUNNEL_PROTOCOL]
        ports: list[int] = []
    else:
        try:
            ports = _query_ports(req.path)
        except ValueError as e:
            # the kubelet's NewV4Options refusal, as its http.Error writes it
            req.handler._send_raw(400, str(e).encode() + b"\n", b"",
                                  b"text/plain; charset=utf-8")
            return
        protocols = [V4_BINARY, V4_BASE64]
    conn = websocket.accept(req, protocols)
    if conn is None:  # refused, answered
        return
    link = _Link(req.handler)
    if conn.protocol == TUNNEL_PROTOCOL:
        _run(link, _SpdySession(link, _WebSocket(link, framed=False), pod))
    else:
        wire = _WebSocket(link, text=conn.protocol == V4_BASE64)
        _run(link, _ChannelSession(link, wire, pod, ports))


def _query_ports(path: str) -> list[int]:
    """`ports` of the query (repeated or comma-separated), as the kubelet parses `port`."""
    values = [v for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query,
                                                    keep_blank_values=True) if k == "ports"]
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for p in value.split(","):
            if not p.isdigit() or int(p) > 65535:
                raise ValueError(f'unable to parse "{value}" as a port: strconv.ParseUint: '
                                 f'parsing "{p}": invalid syntax' if not p.isdigit() else
                                 f'unable to parse "{value}" as a port: strconv.ParseUint: '
                                 f'parsing "{p}": value out of range')
            if int(p) < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(int(p))
    return ports


# ---- the client's connection -----------------------------------------------------------

class _Link:
    """The client's socket, non-blocking from here on: what arrived, what waits to go."""

    def __init__(self, handler) -> None:
        self.sock: socket.socket = handler.connection
        self.tls = isinstance(self.sock, ssl.SSLSocket)
        self.out = bytearray()
        self.eof = False
        zero = struct.pack("ll", 0, 0)
        try:  # the server's idle timeouts: a quiet forward lasts as long as both ends want
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, zero)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, zero)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError:
            pass
        self.sock.setblocking(False)
        # bytes the HTTP parser's buffer already holds (a client that did not wait for 101)
        self.early = b""
        try:
            self.early = handler.rfile.read1(65536) or b""
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (OSError, ValueError):
            self.eof = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def has_pending(self) -> bool:
        """Bytes poll cannot see: the HTTP parser's leftovers, decrypted bytes already
        inside the TLS object."""
        return bool(self.early) or (self.tls and not self.eof and self.sock.pending() > 0)

    def read(self) -> bytes:
        got: list[bytes] = []
        if self.early:
            got.append(self.early)
            self.early = b""
        total = 0
        while total < _HIGH_WATER:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                break
            except (OSError, ValueError):
                data = b""
            if not data:
                self.eof = True
                break
            got.append(data)
            total += len(data)
        return b"".join(got)

    def flush(self) -> None:
        while self.out and not self.eof:
            try:
                n = self.sock.send(self.out[:65536])
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                    ssl.SSLWantWriteError):
                return
            except (OSError, ValueError):
                self.eof = True
                self.out.clear()
                return
            del self.out[:n]

    def finish(self, timeout: float) -> None:
        """Send what is left (bounded), then leave the socket blocking for the server."""
        deadline = time.monotonic() + timeout
        while self.out and not self.eof and time.monotonic() < deadline:
            self.flush()
            if self.out:
                select.select([], [self.sock], [], max(0.0, deadline - time.monotonic()))
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(timeout)
        except OSError:
            pass


class _Raw:
    """Plain SPDY: the socket's bytes are the session's."""

    closed = False

    def unwrap(self, data: bytes) -> list[bytes]:
        return [data]

    def ended(self) -> None:
        self.closed = True

    def wrap(self, payload: bytes) -> bytes:
        return payload

    def close(self) -> bytes:
        return b""

    def closing_done(self) -> bool:
        return True


class _WebSocket:
    """WebSocket framing (wsproto) on the link, driven by the loop: each payload out is
    one binary message (or, for v4.base64, a text message), pings are answered, the
    client's close is answered and ends the session."""

    def __init__(self, link: _Link, text: bool = False, framed: bool = True) -> None:
        self.ws = Connection(ConnectionType.SERVER)
        self.link = link
        self.text = text
        # framed: each message is a unit (channels); else the messages are one byte
        # stream (the SPDY tunnel: Go's TunnelingConnection splits frames anywhere)
        self.framed = framed
        self.closed = False  # the client closed, or the connection broke
        self._partial: list[bytes] = []
        self._partial_len = 0

    def unwrap(self, data: bytes) -> list[bytes]:
        """Whole messages' payloads (text messages as their UTF-8 bytes); unframed, the
        bytes as they come."""
        out: list[bytes] = []
        try:
            self.ws.receive_data(data)
        except LocalProtocolError:
            self.closed = True
            return out
        for ev in self.ws.events():
            if isinstance(ev, Message):
                chunk = ev.data.encode() if isinstance(ev, TextMessage) else bytes(ev.data)
                if not self.framed:
                    if chunk:
                        out.append(chunk)
                    continue
                self._partial.append(chunk)
                self._partial_len += len(chunk)
                if self._partial_len > MAX_MESSAGE:  # 1009: message too big
                    self.link.out += self.close(1009)
                    self.closed = True
                    break
                if ev.message_finished:
                    out.append(b"".join(self._partial))
                    self._partial, self._partial_len = [], 0
            elif isinstance(ev, Ping):
                if self.ws.state == ConnectionState.OPEN:
                    self.link.out += self.ws.send(ev.response())
            elif isinstance(ev, CloseConnection):
                if self.ws.state == ConnectionState.REMOTE_CLOSING:
                    self.link.out += self.ws.send(ev.response())
                self.closed = True
        return out

    def ended(self) -> None:
        """The socket's end (no close frame came)."""
        self.closed = True

    def wrap(self, payload: bytes) -> bytes:
        if self.ws.state != ConnectionState.OPEN:
            return b""
        if self.text:
            return self.ws.send(TextMessage(data=payload.decode("ascii")))
        return self.ws.send(BytesMessage(data=payload))

    def close(self, code: int = 1000) -> bytes:
        if self.ws.state == ConnectionState.OPEN:
            try:
                return self.ws.send(CloseConnection(code=code))
            except LocalProtocolError:
                pass
        return b""

    def closing_done(self) -> bool:
        return self.ws.state == ConnectionState.CLOSED or self.closed


# ---- one TCP connection into the pod ---------------------------------------------------

class _Pipe:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.to_pod = bytearray()
        self.reading = True  # the pod has not ended its side yet
        self.shut_pending = False  # the client ended its side: half-close once flushed
        self.failed = False  # a write failed: the pod's side is gone
        self.open = True

    def write(self) -> None:
        while self.to_pod:
            try:
                n = self.sock.send(self.to_pod[:65536])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.to_pod.clear()
                self.shut_pending = False
                self.failed = True
                return
            del self.to_pod[:n]
        if self.shut_pending:
            self.shut_pending = False
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def read(self) -> bytes | None:
        """Bytes from the pod, b"" at its end, None when nothing is there yet."""
        try:
            data = self.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""
        return data

    def close(self) -> None:
        if self.open:
            self.open = False
            self.reading = False
            self.to_pod.clear()  # nobody will take it: it must not hold the client back
            self.shut_pending = False
            self.sock.close()


# ---- the loop --------------------------------------------------------------------------

def _run(link: _Link, session) -> None:
    """Poll the client and the session's pod sockets until the session is over."""
    try:
        session.start()
        last_activity = time.monotonic()
        while not session.over():
            link.flush()
            if link.eof:
                break
            now = time.monotonic()
            if now - last_activity > IDLE_TIMEOUT:
                break
            poll = select.poll()
            mask = 0
            if not session.client_backlogged() and not session.wire.closed:
                mask |= select.POLLIN
            if link.out:
                mask |= select.POLLOUT
            if mask:
                poll.register(link.fileno(), mask)
            pipes = {}
            for pipe in session.pipes():
                pm = 0
                if pipe.reading and len(link.out) < _HIGH_WATER:
                    pm |= select.POLLIN
                if pipe.to_pod or pipe.shut_pending:
                    pm |= select.POLLOUT
                if pm:
                    pipes[pipe.sock.fileno()] = pipe
                    poll.register(pipe.sock.fileno(), pm)
            deadline = session.next_deadline()
            timeout = min(60.0, max(0.0, deadline - now)) if deadline else 60.0
            if link.has_pending() and mask & select.POLLIN:
                timeout = 0.0
            events = poll.poll(timeout * 1000)
            if events:
                last_activity = time.monotonic()
            link_ready = link.has_pending() and bool(mask & select.POLLIN)
            for fd, ev in events:
                if fd == link.fileno():
                    if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        link_ready = True
                    continue
                pipe = pipes.get(fd)
                if pipe is None or not pipe.open:
                    continue
                if ev & select.POLLOUT or (ev & (select.POLLERR | select.POLLHUP)
                                           and pipe.to_pod):
                    pipe.write()
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and pipe.reading:
                    data = pipe.read()
                    if data:
                        session.from_pod(pipe, data)
                    elif data == b"":
                        pipe.failed = True
                if pipe.failed and pipe.reading:
                    pipe.reading = False
                    session.pod_ended(pipe)
            if link_ready:
                data = link.read()  # b"" too when a TLS record is not complete yet
                if data:
                    for payload in session.wire.unwrap(data):
                        session.from_client(payload)
                if link.eof:
                    session.wire.ended()
            session.tick(time.monotonic())
            if session.wire.closed and not link.out:
                break
    finally:
        session.stop()
        link.out += session.wire.close()
        link.finish(CLOSE_TIMEOUT)
        if isinstance(session.wire, _WebSocket) and not session.wire.closing_done():
            _await_close(link, session.wire)


def _await_close(link: _Link, wire: _WebSocket) -> None:
    """Give the client CLOSE_TIMEOUT to answer our close frame (then the socket goes)."""
    deadline = time.monotonic() + CLOSE_TIMEOUT
    while not wire.closing_done() and not link.eof:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            link.sock.settimeout(left)
            data = link.sock.recv(65536)
        except (OSError, ValueError):
            break
        if not data:
            break
        wire.unwrap(data)


# ---- SPDY: kubectl ---------------------------------------------------------------------

class _Pair:
    """One forwarded connection: its error and data streams, and its pod socket."""

    def __init__(self, request_id: str, now: float) -> None:
        self.request_id = request_id
        self.error_sid = 0
        self.data_sid = 0
        self.port = 0
        self.pipe: _Pipe | None = None
        self.expires = now + STREAM_CREATION_TIMEOUT
        self.client_fin = False  # kubectl ended the data stream (its local side closed)
        self.data_fin = False  # we ended it (the pod closed)
        self.linger_until = 0.0  # set when the first direction ended
        self.done = False


class _SpdySession:
    """The kubelet's httpStreamHandler on a SPDY session: streams paired by request id,
    each pair forwarded to its port once both are there."""

    def __init__(self, link: _Link, wire, pod: dict) -> None:
        self.link, self.wire, self.pod = link, wire, pod
        self.framer = spdy.Framer()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self.by_pipe: dict[_Pipe, _Pair] = {}
        self.finished = False
        self.last_stream = 0

    def send(self, frame) -> None:
        self.link.out += self.wire.wrap(self.framer.encode(frame))

    def start(self) -> None:
        pass

    def over(self) -> bool:
        return self.finished

    def pipes(self) -> list[_Pipe]:
        return [p for p in self.by_pipe if p.open]

    def client_backlogged(self) -> bool:
        return any(len(p.to_pod) >= _HIGH_WATER for p in self.by_pipe)

    def next_deadline(self) -> float:
        times = [p.linger_until if p.linger_until else p.expires
                 for p in self.pairs.values() if p.linger_until or p.pipe is None]
        return min(times) if times else 0.0

    # -- frames from kubectl
    def from_client(self, payload: bytes) -> None:
        try:
            frames = self.framer.feed(payload)
        except spdy.SpdyError:
            self.send(spdy.GoAway(self.last_stream, 1))  # PROTOCOL_ERROR
            self.finished = True
            return
        for f in frames:
            if isinstance(f, spdy.SynStream):
                self._new_stream(f)
            elif isinstance(f, spdy.Data):
                self._data(f)
            elif isinstance(f, spdy.RstStream):
                pair = self.by_stream.get(f.stream_id)
                if pair is not None:
                    self._end(pair, reset=f.stream_id)
            elif isinstance(f, spdy.Ping):
                self.send(f)  # the client's (odd) pings come back as they are
            elif isinstance(f, spdy.GoAway):
                self.finished = True
            # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do (spdystream has no flow control)

    def _new_stream(self, f: spdy.SynStream) -> None:
        self.last_stream = max(self.last_stream, f.stream_id)
        h = f.headers
        port_s, stype = spdy.first(h, "port"), spdy.first(h, "streamtype")
        # httpStreamReceived: a stream without a valid port and type is refused
        if not port_s.isdigit() or not 0 < int(port_s) < 65536 or stype not in ("error", "data"):
            self.send(spdy.RstStream(f.stream_id, spdy.REFUSED_STREAM))
            return
        self.send(spdy.SynReply(f.stream_id, {}))
        request_id = spdy.first(h, "requestid")
        if not request_id:  # an old client: consecutive stream ids stand in for one
            request_id = str(f.stream_id if stype == "error" else f.stream_id - 2)
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id, time.monotonic())
        if pair.error_sid if stype == "error" else pair.data_sid:
            if pair.error_sid:
                self.send(spdy.Data(pair.error_sid, (
                    f"error processing stream for request {request_id}: "
                    f"{stype} stream already assigned").encode()))
            return
        if stype == "error":
            pair.error_sid = f.stream_id
        else:
            pair.data_sid, pair.port = f.stream_id, int(port_s)
        self.by_stream[f.stream_id] = pair
        if pair.error_sid and pair.data_sid:
            self._forward(pair)

    def _forward(self, pair: _Pair) -> None:
        try:
            sock = _dial(self.pod, pair.port)
        except StreamError as e:
            self.send(spdy.Data(pair.error_sid, str(e).encode()))
            self._end(pair)
            return
        pair.pipe = _Pipe(sock)
        self.by_pipe[pair.pipe] = pair

    def _data(self, f: spdy.Data) -> None:
        pair = self.by_stream.get(f.stream_id)
        if pair is None or pair.done or f.stream_id != pair.data_sid or pair.pipe is None:
            return  # the error stream carries nothing from the client
        if f.data:
            pair.pipe.to_pod += f.data
        if f.fin and not pair.client_fin:
            pair.client_fin = True
            pair.pipe.shut_pending = True  # the pod sees the client's end once flushed
            self._side_ended(pair)

    # -- the pod's side
    def from_pod(self, pipe: _Pipe, data: bytes) -> None:
        pair = self.by_pipe[pipe]
        self.send(spdy.Data(pair.data_sid, data))

    def pod_ended(self, pipe: _Pipe) -> None:
        pair = self.by_pipe[pipe]
        if not pair.data_fin:
            pair.data_fin = True
            self.send(spdy.Data(pair.data_sid, b"", fin=True))
        self._side_ended(pair)

    def _side_ended(self, pair: _Pair) -> None:
        """containerd: once one direction is over the other has LINGER; both over: done."""
        if pair.client_fin and pair.data_fin:
            self._end(pair)
        elif not pair.linger_until:
            pair.linger_until = time.monotonic() + LINGER

    def _end(self, pair: _Pair, reset: int = 0) -> None:
        """The kubelet's deferred closes: the data stream, then the error stream (FIN
        each), which tells kubectl this connection is over."""
        if pair.done:
            return
        pair.done = True
        if pair.pipe is not None:
            pair.pipe.write()
            pair.pipe.close()
            self.by_pipe.pop(pair.pipe, None)
        if pair.data_sid and not pair.data_fin and pair.data_sid != reset:
            self.send(spdy.Data(pair.data_sid, b"", fin=True))
        if pair.error_sid and pair.error_sid != reset:
            self.send(spdy.Data(pair.error_sid, b"", fin=True))
        self.pairs.pop(pair.request_id, None)
        for sid in (pair.data_sid, pair.error_sid):
            self.by_stream.pop(sid, None)

    def tick(self, now: float) -> None:
        for pair in list(self.pairs.values()):
            if pair.linger_until and now >= pair.linger_until:
                self._end(pair)
            elif pair.pipe is None and not pair.done and now >= pair.expires:
                if pair.error_sid:  # monitorStreamPair's timeout
                    self.send(spdy.Data(pair.error_sid, (
                        f"(conn=netsim, request={pair.request_id}) timed out waiting for "
                        "streams").encode()))
                self._end(pair)

    def stop(self) -> None:
        for pipe in list(self.by_pipe):
            pipe.close()
        self.pairs.clear()
        self.by_pipe.clear()


# ---- v4 channels: the Python client ----------------------------------------------------

class _ChannelSession:
    """wsstream's channel protocol: message = channel byte + payload (base64 variant: the
    channel as an ASCII digit, the payload in base64, in text messages)."""

    def __init__(self, link: _Link, wire: _WebSocket, pod: dict, ports: list[int]) -> None:
        self.link, self.wire, self.pod, self.ports = link, wire, pod, ports
        self.pipes_by_index: dict[int, _Pipe] = {}
        self.index_of: dict[_Pipe, int] = {}
        self.done: set[int] = set()

    def send(self, channel: int, data: bytes) -> None:
        if self.wire.text:
            payload = str(channel).encode() + base64.b64encode(data)
        else:
            payload = bytes([channel]) + data
        self.link.out += self.wire.wrap(payload)

    def start(self) -> None:
        for i, port in enumerate(self.ports):
            le = struct.pack("<H", port)
            self.send(2 * i, le)
            self.send(2 * i + 1, le)
        for i, port in enumerate(self.ports):
            try:
                sock = _dial(self.pod, port)
            except StreamError as e:
                self.send(2 * i + 1, str(e).encode())
                self.done.add(i)
                continue
            pipe = _Pipe(sock)
            self.pipes_by_index[i] = pipe
            self.index_of[pipe] = i

    def over(self) -> bool:
        return len(self.done) == len(self.ports)

    def pipes(self) -> list[_Pipe]:
        return [p for p in self.index_of if p.open]

    def client_backlogged(self) -> bool:
        return any(len(p.to_pod) >= _HIGH_WATER for p in self.index_of)

    def next_deadline(self) -> float:
        return 0.0

    def from_client(self, payload: bytes) -> None:
        if not payload:
            return
        if self.wire.text:
            try:
                channel, data = int(payload[:1]), base64.b64decode(payload[1:])
            except ValueError:
                return
        else:
            channel, data = payload[0], payload[1:]
        pipe = self.pipes_by_index.get(channel // 2) if channel % 2 == 0 else None
        if pipe is not None and pipe.open and data:
            pipe.to_pod += data

    def from_pod(self, pipe: _Pipe, data: bytes) -> None:
        self.send(2 * self.index_of[pipe], data)

    def pod_ended(self, pipe: _Pipe) -> None:
        """The pod closed this port's connection: the channel pair is over (the client
        cannot half-close a channel, so nothing more is waited for)."""
        i = self.index_of[pipe]
        pipe.write()
        pipe.close()
        self.done.add(i)

    def tick(self, now: float) -> None:
        pass

    def stop(self) -> None:
        for pipe in self.index_of:
            pipe.close()

