"""A real API server on a temporary unix socket, and a small WebSocket client (wsproto's
client side) for the streaming subresources' tests: exec channels, port-forward."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from netsim.api.server import serve
from netsim.api.store import Store


class Api:
    """store + server on a unix socket; stop() ends both."""

    def __init__(self, **kw) -> None:
        self.dir = tempfile.mkdtemp(prefix="netsim-streams-")
        self.store = Store()
        self.store.bootstrap()
        self.path = os.path.join(self.dir, "api.sock")
        self.srv = serve(self.store, self.path, **kw)
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.store.close()

    def connect(self, timeout: float = 10.0) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s


class WsClient:
    """A WebSocket client over an open socket. `status` and `rejected` tell how the
    handshake went (101: status 101 and `protocol` set)."""

    def __init__(self, sock: socket.socket, target: str, protocols: list[str],
                 extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.protocol: str | None = None
        self.status = 0
        self.reject_body = b""
        self.closed_code: int | None = None
        self.pongs: list[bytes] = []
        self._events: list = []
        sock.sendall(self.ws.send(Request(host="x", target=target, subprotocols=protocols,
                                          extra_headers=extra_headers or [])))
        while not self.status:
            self._pump()
            evs = self._take()
            for i, ev in enumerate(evs):
                if isinstance(ev, AcceptConnection):
                    self.status, self.protocol = 101, ev.subprotocol
                    self._events = evs[i + 1:] + self._events
                    break
                elif isinstance(ev, RejectConnection):
                    self.status = ev.status_code
                    if not ev.has_body:
                        return
                elif isinstance(ev, RejectData):
                    self.reject_body += ev.data
                    if ev.body_finished:
                        return

    def _pump(self) -> bool:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        self._events.extend(self.ws.events())
        return bool(data)

    def _take(self) -> list:
        evs, self._events = self._events, []
        return evs

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def send_text(self, data: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=data)))

    def ping(self, payload: bytes = b"hi") -> None:
        self.sock.sendall(self.ws.send(Ping(payload=payload)))

    def close(self, code: int = 1000) -> None:
        self.sock.sendall(self.ws.send(CloseConnection(code=code)))

    def messages(self) -> list[bytes]:
        """Every message until the server closes (its close is answered)."""
        out: list[bytes] = []
        buf: list[bytes] = []
        while True:
            for ev in self._take():
                if isinstance(ev, (BytesMessage, TextMessage)):
                    buf.append(ev.data if isinstance(ev.data, bytes) else ev.data.encode())
                    if ev.message_finished:
                        out.append(b"".join(buf))
                        buf = []
                elif isinstance(ev, Pong):
                    self.pongs.append(bytes(ev.payload))
                elif isinstance(ev, CloseConnection):
                    self.closed_code = ev.code
                    try:
                        self.sock.sendall(self.ws.send(ev.response()))
                    except Exception:  # already closed both ways
                        pass
                    return out
            try:
                if not self._pump():
                    return out
            except OSError:
                return out

    def next_message(self) -> bytes | None:
        """One message (None at close)."""
        buf: list[bytes] = []
        while True:
            evs = self._take()
            for i, ev in enumerate(evs):
                if isinstance(ev, (BytesMessage, TextMessage)):
                    buf.append(ev.data if isinstance(ev.data, bytes) else ev.data.encode())
                    if ev.message_finished:
                        self._events = evs[i + 1:] + self._events
                        return b"".join(buf)
                elif isinstance(ev, Pong):
                    self.pongs.append(bytes(ev.payload))
                elif isinstance(ev, CloseConnection):
                    self.closed_code = ev.code
                    self._events = evs[i:] + self._events
                    return None
            if not self._pump():
                return None
