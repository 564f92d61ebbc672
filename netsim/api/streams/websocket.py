"""WebSocket on an API request: what kubectl (1.29+) and the Python client speak for exec,
attach and port-forward. The opening handshake is answered on the request's own connection
(the HTTP server already parsed the request); the frames are wsproto's, a well-kept RFC 6455
implementation, so no frame parser is written here.

After `accept` the caller owns the connection: one thread may `recv` while another sends
(`send_binary`, `close`); writes and the protocol state are under one lock."""

from __future__ import annotations

import base64
import binascii
import json
import socket
import struct
import threading
import time
from collections import deque

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, generate_accept_token

from netsim.api import errors

# A client message larger than this closes the connection (1009: message too big). Stdin
# and port-forward data come in frames far below it.
MAX_MESSAGE = 16 * 1024 * 1024
# After our close frame, how long the client has to answer with its own before the socket
# is shut (a client that never answers must not hold the reading thread forever).
CLOSE_TIMEOUT = 2.0
_READ = 65536


def is_upgrade(headers) -> bool:
    """Whether the request asks for a WebSocket (Connection: upgrade, Upgrade: websocket)."""
    up = (headers.get("upgrade") or "").lower()
    conn = (headers.get("connection") or "").lower()
    return "websocket" in up and "upgrade" in conn


def offered_protocols(headers) -> list[str]:
    """Sec-WebSocket-Protocol's comma-separated list, in the client's order."""
    return [p.strip() for p in (headers.get("sec-websocket-protocol") or "").split(",")
            if p.strip()]


def accept(req, protocols: list[str]) -> Conn | None:
    """Answer the request's WebSocket handshake with the first protocol of `protocols` the
    client offered (the server's order decides, as wsstream's handshake does). None when
    the handshake was refused, the answer already sent: 400 for a request that is no
    WebSocket handshake, 403 when no protocol matches (kubectl then falls back to SPDY)."""
    h, handler = req.headers, req.handler
    key = (h.get("sec-websocket-key") or "").strip()
    if not is_upgrade(h) or not key or _bad_key(key):
        _refuse(handler, 400, "unable to upgrade: missing upgrade headers in request",
                "BadRequest")
        return None
    if (h.get("sec-websocket-version") or "").strip() != "13":
        _refuse(handler, 400, "unsupported websocket version", "BadRequest",
                b"Sec-WebSocket-Version: 13\r\n")
        return None
    offered = offered_protocols(h)
    chosen = next((p for p in protocols if p in offered), None)
    if chosen is None:
        _refuse(handler, 403, f"requested protocol(s) are not supported: [{' '.join(offered)}]"
                f"; supports [{' '.join(protocols)}]", "Forbidden")
        return None
    handler.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                        b"Sec-WebSocket-Protocol: %s\r\n\r\n"
                        % (generate_accept_token(key.encode()), chosen.encode()))
    handler.wfile.flush()
    handler.close_connection = True  # no HTTP request follows a WebSocket session
    return Conn(handler, chosen)


def _bad_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) != 16
    except (binascii.Error, ValueError):
        return True


def _refuse(handler, code: int, message: str, reason: str, extra: bytes = b"") -> None:
    body = json.dumps(errors.ApiError(message, code=code, reason=reason).status(),
                      separators=(",", ":")).encode()
    handler._send_raw(code, body, extra)


class Conn:
    """One open WebSocket: binary and text messages in, binary messages out; pings are
    answered by whichever thread reads. The socket's read timeout is lifted (a quiet exec
    or port-forward lasts as long as the client keeps it), keep-alive probes find a client
    that vanished."""

    def __init__(self, handler, protocol: str) -> None:
        self.protocol = protocol
        self._handler = handler
        self._sock = handler.connection
        self._rfile, self._wfile = handler.rfile, handler.wfile
        self._ws = Connection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._messages: deque[bytes] = deque()
        self._partial: list[bytes] = []
        self._partial_len = 0
        self._eof = False
        self.close_code: int | None = None
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for opt, v in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
                if hasattr(socket, opt) and self._sock.family != socket.AF_UNIX:
                    self._sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), v)
        except OSError:
            pass

    # ---- writing (any thread) --------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        """Under the lock. False once the client is gone."""
        if not data:
            return True
        try:
            self._wfile.write(data)
            return True
        except (OSError, ValueError):
            self._eof = True
            return False

    def send_binary(self, data: bytes) -> bool:
        """One binary message. False when it cannot be sent (closing, or client gone)."""
        with self._lock:
            if self._ws.state != ConnectionState.OPEN or self._eof:
                return False
            return self._write(self._ws.send(BytesMessage(data=data)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or finish) the closing handshake; the reader sees None once the client
        answers, or at the latest CLOSE_TIMEOUT later when the socket is shut."""
        with self._lock:
            if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                try:
                    self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
                except LocalProtocolError:
                    pass
        srv = getattr(self._handler, "server", None)
        if hasattr(srv, "set_deadline"):  # the server's reaper shuts the socket then
            srv.set_deadline(self._sock, time.monotonic() + CLOSE_TIMEOUT)
        else:
            threading.Timer(CLOSE_TIMEOUT, self.abort).start()

    def abort(self) -> None:
        """Shut the socket now: wakes a thread blocked in recv (it returns None)."""
        self._eof = True
        try:
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self._eof or self._ws.state == ConnectionState.CLOSED

    # ---- reading (one thread) --------------------------------------------------------
    def recv(self) -> bytes | None:
        """The next message's payload (text messages as UTF-8), None once the connection
        is closed, by the client, by us, or by a broken socket."""
        while not self._messages:
            if self._eof:
                return None
            try:
                data = self._rfile.read1(_READ)
            except (OSError, ValueError):
                data = b""
            with self._lock:
                if not data:
                    self._eof = True
                    if self._ws.state != ConnectionState.CLOSED:
                        self._ws.receive_data(None)
                    return None
                try:
                    self._ws.receive_data(data)
                except LocalProtocolError:
                    self._eof = True
                    return None
                self._events()
        return self._messages.popleft()

    def _events(self) -> None:
        """Under the lock: collect messages, answer pings and the client's close."""
        for ev in self._ws.events():
            if isinstance(ev, Message):
                chunk = ev.data.encode() if isinstance(ev, TextMessage) else bytes(ev.data)
                self._partial.append(chunk)
                self._partial_len += len(chunk)
                if self._partial_len > MAX_MESSAGE:
                    self._fail(1009, "message too big")
                    return
                if ev.message_finished:
                    self._messages.append(b"".join(self._partial))
                    self._partial, self._partial_len = [], 0
            elif isinstance(ev, Ping):
                if self._ws.state == ConnectionState.OPEN:
                    self._write(self._ws.send(ev.response()))
            elif isinstance(ev, CloseConnection):
                self.close_code = ev.code
                if self._ws.state == ConnectionState.REMOTE_CLOSING:
                    self._write(self._ws.send(ev.response()))
                elif self._ws.state == ConnectionState.OPEN:  # a protocol error on our side
                    self._fail(ev.code, ev.reason or "")
                    return
                self._eof = True
                return

    def _fail(self, code: int, reason: str) -> None:
        with_state = self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
        if with_state:
            try:
                self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
            except LocalProtocolError:
                pass
        self.close_code = code
        self._eof = True
