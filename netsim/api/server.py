"""The HTTP API: Kubernetes REST paths over a unix socket (netsim's own processes) and over
HTTPS with client certificates (kubectl and every other Kubernetes client), backed by the Store."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import ssl
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from netsim.api import authn, discovery, errors, listopts, routes, satoken, tables  # noqa: F401 (satoken: registers)
from netsim.api import authz as _authz  # noqa: F401  (auth can-i reviews)
from netsim.api import binding as _binding  # noqa: F401  (pods/binding, bindings)
from netsim.api import eviction as _eviction  # noqa: F401  (pods/eviction)
from netsim.api import fieldvalidation as fieldval  # fieldValidation=Strict|Warn|Ignore
from netsim.api import patch as _patches  # strategic/JSON patch, server-side apply, managedFields
from netsim.api import protobuf as _protobuf  # noqa: F401  (protobuf request bodies)
from netsim.api import scale as _scale  # noqa: F401  (deployments/scale, ...)
from netsim.api import streams as _streams  # noqa: F401  (pods/log, pods/exec)
from netsim.api.openapi import v3 as _openapi  # noqa: F401  (registers /openapi/v2, /openapi/v3)
from netsim.api.propagation import policy as delete_policy
from netsim.api.resources import (
    ACCEPTED_VERSIONS,
    BY_KIND,
    BY_PLURAL,
    DEPRECATED,
    RESOURCES,
    Resource,
)
from netsim.api.store import Store

log = logging.getLogger("netsim.api")

# kube-apiserver's defaults: 3 MiB request bodies (MaxRequestBodyBytes), 32 s to read a
# request's headers (ReadHeaderTimeout), 90 s for an idle keep-alive connection (IdleTimeout).
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
HEADER_TIMEOUT = 32.0
IDLE_TIMEOUT = 90.0
# Past this many open connections (each one a thread) a new one gets 429 at once.
MAX_CONNECTIONS = 1024
# After a 413 the rest of a body is read and dropped up to this much, so a client still
# busy sending sees the answer instead of a broken pipe; past it the connection is closed.
_DRAIN_MAX = 64 * 1024 * 1024
# PATCH bodies applied as a JSON merge patch when no module in routes.PATCH_TYPES claims them
# (strategic merge falls back to a merge patch until its module registers).
_MERGE_PATCH_TYPES = ("", "application/merge-patch+json", "application/json",
                      "application/strategic-merge-patch+json")

# /api/v1[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]
# /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]
_PATH = re.compile(
    r"^/(?:api/(?P<v1>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A thread per connection, at most max_connections of them; a reaper thread shuts
    the socket of any request whose headers or body are not in by their deadline
    (a per-read socket timeout alone lets a client trickle one byte at a time)."""

    daemon_threads = True
    allow_reuse_address = True
    # listen() backlog: socketserver's 5 overflowed when every node agent's informers
    # connected at once (EAGAIN on the unix socket: "node agents did not register")
    request_queue_size = 1024
    store: Store
    max_body_bytes = MAX_REQUEST_BODY_BYTES
    header_timeout = HEADER_TIMEOUT
    idle_timeout = IDLE_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def start_reaper(self) -> None:
        self._conn_lock = threading.Lock()
        self._deadlines: dict[socket.socket, float] = {}
        self._reaped: set[socket.socket] = set()
        self._active = 0
        self._closing = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)  # serve_forever
        threading.Thread(target=self._reap, daemon=True, name="api-reaper").start()

    def set_deadline(self, sock: socket.socket, deadline: float | None) -> None:
        with self._conn_lock:
            if deadline is None:
                self._deadlines.pop(sock, None)
            else:
                self._deadlines[sock] = deadline

    def _reap(self) -> None:
        tick = max(0.02, min(1.0, self.header_timeout / 4))
        while not self._closing.wait(tick):
            now = time.monotonic()
            with self._conn_lock:
                late = [s for s, d in self._deadlines.items() if d <= now]
                for s in late:
                    del self._deadlines[s]
                    self._reaped.add(s)
            for s in late:
                try:
                    # wakes the thread blocked reading it (the plain socket's shutdown: a TLS
                    # socket's own would drop its SSL object under the reading thread)
                    socket.socket.shutdown(s, socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def active_connections(self) -> int:
        return self._active

    def process_request(self, request, client_address):
        with self._conn_lock:
            busy = self._active >= self.max_connections
            if not busy:
                self._active += 1
        if busy:
            # kube-apiserver's max-in-flight answer; sent from the accept loop, so it must
            # not block: a fresh socket's send buffer takes these few bytes at once.
            body = json.dumps(errors.ApiError(
                "Too many requests, please try again later.", code=429,
                reason="TooManyRequests").status()).encode()
            try:
                request.setblocking(False)
                request.send(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                             b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._conn_lock:
                self._active -= 1
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._active -= 1
                self._deadlines.pop(request, None)
                self._reaped.discard(request)

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], OSError):  # a client that went away or timed out
            return
        log.exception("API connection failed")

    def server_close(self):
        self._closing.set()
        super().server_close()
        for fd in (getattr(self, "_wake_r", -1), getattr(self, "_wake_w", -1)):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    # socketserver's loop wakes every poll_interval to see whether shutdown() was called:
    # four API servers at 50 ms were 80 wake-ups a second of an idle control plane (under
    # emulation a tenth of a CPU). This one sleeps in select() until a connection comes or
    # shutdown() writes to its pipe, and shutdown() returns as soon as the loop has ended.
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        import selectors  # noqa: PLC0415
        if getattr(self, "_wake_r", -1) < 0:
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._loop_done = threading.Event()
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(self, selectors.EVENT_READ)
                sel.register(self._wake_r, selectors.EVENT_READ)
                while not getattr(self, "_stop_serving", False):
                    ready = sel.select()
                    if getattr(self, "_stop_serving", False):
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()
                    self.service_actions()
        finally:
            self._loop_done.set()

    def shutdown(self) -> None:
        self._stop_serving = True
        if getattr(self, "_wake_w", -1) >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        done = getattr(self, "_loop_done", None)
        if done is not None:
            done.wait()


# Linux's IP_FREEBIND: bind an address the host does not have yet (the LAN's host address
# appears when `cluster up` has built the host veth, after the control plane started).
_IP_FREEBIND = 15


class _TLSServer(_Server):
    """The same server on a TCP address, each connection's TLS handshake (client
    certificate required) done in its own thread under the header deadline."""

    address_family = socket.AF_INET
    ssl_context: ssl.SSLContext

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        super().server_bind()

    def finish_request(self, request, client_address):
        # No Nagle (Go's net package sets TCP_NODELAY too): a response's last TLS record
        # would otherwise wait for the client's delayed ACK (~40 ms a request).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = self.ssl_context.wrap_socket(request, server_side=True,
                                           do_handshake_on_connect=False)
        try:
            self.set_deadline(tls, time.monotonic() + self.header_timeout)
            try:
                tls.do_handshake()
            except (OSError, ValueError):  # a bad or missing certificate, a client gone
                return
            finally:
                self.set_deadline(tls, None)
            if tls in self._reaped:
                return
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with self._conn_lock:
                self._deadlines.pop(tls, None)
                self._reaped.discard(tls)
            try:
                tls.close()
            except OSError:
                pass


class _Headers(dict):
    """Request headers, keys lower-cased (http.server's email-parser Message costs ~1 ms)."""

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key):
        return dict.get(self, key.lower())

    def __contains__(self, key):
        return dict.__contains__(self, key.lower())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, fmt, *args):  # quiet: the API is chatty
        pass

    def setup(self) -> None:
        super().setup()
        # Every read or write on this connection is bounded by the kernel (SO_RCVTIMEO,
        # SO_SNDTIMEO: a Python socket timeout would add a poll() to every call); the
        # header and body reads also have a deadline (the server's reaper).
        t = self.server.idle_timeout
        tv = struct.pack("ll", int(t), int((t - int(t)) * 1e6))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        self._served = False
        self._body_raw = b""
        self._body_repeats: bool | None = None  # (known once a JSON body is parsed)
        self._deprecation = b""

    def _reaped(self) -> bool:
        return self.connection in self.server._reaped

    def handle_one_request(self) -> None:
        """One request: wait for it (idle timeout), read its headers and body by a deadline,
        then serve it with no deadline (a watch lasts as long as it asks)."""
        srv, sock = self.server, self.connection
        try:
            if self._served and not self.rfile.peek(1):
                self.close_connection = True
                return
            self._served = True
            srv.set_deadline(sock, time.monotonic() + srv.header_timeout)
            self.raw_requestline = self.rfile.readline(65537)
            if self._reaped() or not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414)
                return
            if not self.parse_request():
                return
            if self._reaped():
                self.close_connection = True
                return
            if not self._read_body():
                return
            srv.set_deadline(sock, None)
            if self._reaped():
                self.close_connection = True
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self.send_error(501, f"Unsupported method ({self.command!r})")
                return
            method()
            self.wfile.flush()
        except (TimeoutError, BlockingIOError):  # a read or write past the idle timeout
            self.close_connection = True
        finally:
            if sock in srv._deadlines:  # left early, before the deadline was cleared
                srv.set_deadline(sock, None)

    def parse_request(self) -> bool:
        """The request line and headers, parsed directly; anything unusual goes to
        http.server's own parser."""
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.command, self.path, self.request_version = words
        self.requestline = " ".join(words)
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = _Headers()
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            if len(line) > 65536 or len(headers) >= 100:
                self.send_error(431, "Request Header Fields Too Large")
                return False
            k, sep, v = line.decode("iso-8859-1").partition(":")
            if sep:
                k, v = k.strip().lower(), v.strip()
                if k == "content-length" and k in headers and headers[k] != v:
                    v = "multiple"  # refused below, as Go's server does
                headers[k] = v
        self.headers = headers
        conn = headers.get("connection", "").lower()
        self.close_connection = conn == "close" or (words[2] == "HTTP/1.0" and conn != "keep-alive")
        return True

    def _read_body(self) -> bool:
        """Read the whole body (Content-Length or chunked) up to the server's limit. Answers
        and returns False for a bad or too large body."""
        self._body_raw = b""
        self._body_repeats: bool | None = None  # (known once a JSON body is parsed)
        h = self.headers
        get = dict.get if type(h) is _Headers else type(h).get  # keys already lower-cased
        te, cl = get(h, "transfer-encoding"), get(h, "content-length")
        if te is None and cl is None:
            return True  # most requests: a GET
        te = (te or "").lower()
        limit = self.server.max_body_bytes
        expect = (get(h, "expect") or "").lower() == "100-continue"
        if te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                return self._refuse(501, f"unsupported transfer encoding: {te!r}", "BadRequest")
            if expect:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            return self._read_chunked(limit)
        if cl is None:
            return True
        if not (cl.isascii() and cl.isdigit()):
            return self._refuse(400, f'bad Content-Length "{cl}"', "BadRequest")
        n = int(cl)
        if n > limit:
            self._refuse(413, f"Request entity too large: limit is {limit}",
                         "RequestEntityTooLarge")
            if not expect:
                self._drain(min(n, _DRAIN_MAX))
            return False
        if n:
            if expect:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.wfile.flush()
            data = self.rfile.read(n) or b""  # None: SO_RCVTIMEO passed
            if len(data) < n:  # the client went away, or the reaper shut it out
                self.close_connection = True
                return False
            self._body_raw = data
        return True

    def _read_chunked(self, limit: int) -> bool:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1026)
            size = line.split(b";", 1)[0].strip()
            try:
                n = int(size, 16) if size and size.isalnum() else -1
            except ValueError:
                n = -1
            if n < 0:
                self.close_connection = True
                if line:
                    self._refuse(400, "invalid chunked request body", "BadRequest")
                return False
            if n == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += n
            if total > limit:
                return self._refuse(413, f"Request entity too large: limit is {limit}",
                                    "RequestEntityTooLarge")
            data = self.rfile.read(n) or b""  # None: SO_RCVTIMEO passed
            self.rfile.readline(3)
            if len(data) < n:
                self.close_connection = True
                return False
            parts.append(data)
        self._body_raw = b"".join(parts)
        return True

    def _refuse(self, code: int, message: str, reason: str) -> bool:
        """Answer before the body was read: the connection cannot carry another request."""
        self.close_connection = True
        self._send(code, errors.ApiError(message, code=code, reason=reason).status(),
                   b"Connection: close\r\n")
        self.wfile.flush()
        return False

    def _drain(self, n: int) -> None:
        """Read and drop what the client is still sending (fixed memory), within the
        request's deadline; the connection closes afterwards."""
        try:
            while n > 0:
                chunk = self.rfile.read1(min(n, 65536))
                if not chunk:
                    break
                n -= len(chunk)
        except OSError:
            pass

    def address_string(self) -> str:
        return "unix"

    # ---- helpers ---------------------------------------------------------------------
    def _send(self, code: int, body: dict, extra: bytes = b"") -> None:
        """`body` as JSON: the text the store just wrote when it is the object written."""
        text = self.server.store.text_of(body)
        if text is None:
            text = json.dumps(body, separators=(",", ":"))
        self._send_raw(code, text.encode(), extra)

    def _send_raw(self, code: int, data: bytes, extra: bytes = b"",
                  content_type: bytes = b"application/json") -> None:
        phrase = self.responses.get(code, ("",))[0].encode()
        extra = self._deprecation + extra
        self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                         b"Content-Length: %d\r\n\r\n%s"
                         % (code, phrase, content_type, extra, len(data), data))

    def _send_table(self, plural: str, objs: list[dict], rv: str | None) -> None:
        data = json.dumps(tables.table(plural, objs, rv), separators=(",", ":")).encode()
        self._send_raw(200, data, content_type=tables.TABLE_CONTENT_TYPE.encode())

    def _server_address(self) -> str | None:
        """host:port this connection reached (what /api reports to clients)."""
        if self.server.address_family != socket.AF_INET:
            return None
        host, port = self.connection.getsockname()[:2]
        return f"{host}:{port}"

    def _request(self, method: str, query: dict, res: Resource | None = None,
                 url_api: str | None = None, ns: str | None = None, name: str | None = None,
                 sub: str | None = None) -> routes.Request:
        return routes.Request(self, method, self.path, query, self.headers, self._body_raw,
                              self.server.store, res, url_api, ns, name, sub,
                              getattr(self, "user", None) or {})

    def _json_body(self, res: Resource):
        raw = self._body_raw
        ctype = (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if ctype in routes.BODY_DECODERS:  # protobuf, YAML, ...
            return routes.BODY_DECODERS[ctype](raw, self._request(self.command, {}, res))
        if not raw.strip():
            raise errors.BadRequest(
                f"the object provided is unrecognized (must be of type {res.kind}): couldn't "
                "get version/kind; json parse error: unexpected end of JSON input (<empty>)")
        try:
            obj, self._body_repeats = fieldval.parse_noting_repeats(raw)
            return obj
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise errors.BadRequest(
                f"the object provided is unrecognized (must be of type {res.kind}): couldn't "
                f"get version/kind; json parse error: {e} ({_summary(raw)})") from e

    def _object(self, res: Resource, url_api: str) -> dict:
        """The body as an object of the URL's resource, as kube-apiserver decodes it: the
        URL decides; kind and apiVersion default from it; a body that names another kind or
        version is refused with the apiserver's words."""
        obj = self._json_body(res)
        if not isinstance(obj, dict):
            raise errors.BadRequest(
                f"the object provided is unrecognized (must be of type {res.kind}): couldn't "
                "get version/kind; json parse error: json: cannot unmarshal "
                f"{_go_type(obj)} into Go value of type struct {{ APIVersion string "
                '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" } '
                f"({_summary(self._body_raw)})")
        for field in ("apiVersion", "kind"):
            if obj.get(field) is not None and not isinstance(obj[field], str):
                raise errors.BadRequest(
                    f"the object provided is unrecognized (must be of type {res.kind}): "
                    "couldn't get version/kind; json parse error: json: cannot unmarshal "
                    f"{_go_type(obj[field])} into Go struct field .{field} of type string "
                    f"({_summary(self._body_raw)})")
        kind = obj.get("kind") or res.kind
        api = obj.get("apiVersion") or url_api
        _check_kind(res, url_api, kind, api)
        obj["kind"], obj["apiVersion"] = kind, api
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        elif not isinstance(md, dict):
            raise errors.BadRequest(
                f'{kind} in version "{_version(api)}" cannot be handled as a {res.kind}: json: '
                f"cannot unmarshal {_go_type(md)} into Go struct field {res.kind}.metadata of "
                "type v1.ObjectMeta")
        for field in ("name", "namespace"):
            if md.get(field) is not None and not isinstance(md[field], str):
                raise errors.BadRequest(
                    f'{kind} in version "{_version(api)}" cannot be handled as a {res.kind}: '
                    f"json: cannot unmarshal {_go_type(md[field])} into Go struct field "
                    f"ObjectMeta.metadata.{field} of type string")
        return obj

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        query: dict[str, str] = {}
        for k, v in urllib.parse.parse_qsl(url.query):
            query.setdefault(k, v)  # the first value counts, as in the apiserver
        if url.path in ("/healthz", "/readyz", "/livez"):
            return None, None, None, None, None, query, url.path
        for prefix, fn in routes.PATHS.items():
            if url.path.startswith(prefix):
                return None, None, None, None, None, query, fn
        m = _PATH.match(url.path)
        if not m:
            doc = discovery.document(url.path, self._server_address())
            if doc is not None:
                return None, None, None, None, None, query, doc
            raise errors.NotFound(f"the server could not find the requested resource ({url.path})")
        plural = m.group("plural")
        res = BY_PLURAL.get(plural)
        url_api = "v1" if m.group("v1") else f"{m.group('group')}/{m.group('version')}"
        sub = m.group("sub")
        if res is None or url_api not in _served_versions(res) or \
                (sub not in (None, "status") and (plural, sub) not in routes.SUBRESOURCES) or \
                (sub == "status" and plural not in discovery.WITH_STATUS) or \
                (m.group("ns") and not res.namespaced):
            raise errors.NotFound("the server could not find the requested resource")
        ns = urllib.parse.unquote(m.group("ns")) if m.group("ns") else None
        name = urllib.parse.unquote(m.group("name")) if m.group("name") else None
        return res, url_api, ns, name, sub, query, None

    def _handle(self, method: str) -> None:
        store = self.server.store
        try:
            self.user = authn.authenticate(self)  # 401 before anything else (netsim.api.authn)
            res, url_api, ns, name, sub, query, special = self._route()
            self._deprecation = b""  # an old version's requests carry the apiserver's warning
            if res is not None and (url_api, res.kind) in DEPRECATED:
                self._deprecation = fieldval.warning_headers([DEPRECATED[(url_api, res.kind)]])
            if isinstance(special, dict):  # /version and discovery
                if method != "GET":
                    raise errors.method_not_allowed()
                return self._send(200, special)
            if callable(special):  # a path another module serves (routes.PATHS)
                return special(self._request(method, query))
            if sub is not None and sub != "status":  # routes.SUBRESOURCES
                return routes.SUBRESOURCES[(res.plural, sub)](
                    self._request(method, query, res, url_api, ns, name, sub))
            if res is not None and res.plural in routes.VIRTUAL:  # created and answered, never stored
                if method != "POST" or name is not None:
                    raise errors.method_not_allowed()
                return routes.VIRTUAL[res.plural](
                    self._request(method, query, res, url_api, ns, name, sub))
            if special:
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(data)
                return
            if method == "GET" and name is None:
                opts = listopts.parse(query, res.plural)
                if opts.watch:
                    return self._watch(res.plural, ns, opts)
                return self._list(res, ns, opts)
            if method == "GET":
                raw = store.get_raw(res.plural, name, ns)
                if sub is None and tables.wants_table(self.headers.get("accept")):
                    return self._send_raw(200, tables.object_table(res.plural, raw),
                                          content_type=tables.TABLE_CONTENT_TYPE.encode())
                return self._send_raw(200, raw.encode())
            if method == "POST" and name is None and sub is None:
                dry_run = _dry_run(query, "CreateOptions")
                fv = fieldval.directive(query, "CreateOptions")
                obj = self._object(res, url_api)
                warn = fieldval.check_body(self._body_raw, self.headers, obj, res.kind, fv,
                                            self._body_repeats)
                md = obj["metadata"]
                if res.namespaced and ns:
                    if md.get("namespace") and md["namespace"] != ns:
                        raise errors.BadRequest("the namespace of the provided object does not "
                                                "match the namespace sent on the request")
                    md["namespace"] = ns
                obj = _patches.record_create(obj, self._request(method, query, res, url_api, ns))
                return self._send(201, store.create(obj, dry_run=dry_run, owned=True), warn)
            if method == "PUT" and name:
                dry_run = _dry_run(query, "UpdateOptions")
                fv = fieldval.directive(query, "UpdateOptions")
                obj = self._object(res, url_api)
                warn = fieldval.check_body(self._body_raw, self.headers, obj, res.kind, fv,
                                            self._body_repeats)
                md = obj["metadata"]
                _check_name(md, name, ns if res.namespaced else None)
                if res.namespaced:
                    md["namespace"] = ns
                obj = _patches.record_update(obj, self._request(method, query, res, url_api, ns,
                                                                name, sub))
                return self._send(200, store.update(obj, subresource=sub, dry_run=dry_run,
                                                    owned=True), warn)
            if method == "PATCH" and name:
                dry_run = _dry_run(query, "PatchOptions")
                fv, warns = fieldval.directive(query, "PatchOptions"), []
                ctype = (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
                if ctype in routes.PATCH_TYPES:  # strategic, JSON patch, apply, ...
                    req = self._request(method, query, res, url_api, ns, name, sub)
                    fn = routes.PATCH_TYPES[ctype]
                    try:
                        return self._send(200, store.patch(
                            res.plural, name, ns, fieldval.checked(
                                lambda cur: fn(cur, self._body_raw, req), self._body_raw, ctype, fv,
                                warns), sub, dry_run), fieldval.warning_headers(warns))
                    except errors.NotFound:  # server-side apply creates a missing object
                        new = fieldval.checked_create(
                            lambda: _patches.on_missing(ctype, self._body_raw, req),
                            self._body_raw, ctype, fv, warns)
                        if new is None:
                            raise
                        return self._send(201, store.create(new, dry_run=dry_run),
                                          fieldval.warning_headers(warns))
                if ctype not in _MERGE_PATCH_TYPES:
                    raise errors.ApiError(
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml, "
                        "application/strategic-merge-patch+json", code=415,
                        reason="UnsupportedMediaType")
                patch = self._json_body(res)
                if not isinstance(patch, dict):
                    raise errors.BadRequest(f"json: cannot unmarshal {_go_type(patch)} into Go "
                                            "value of type map[string]interface {}")
                if "kind" in patch or "apiVersion" in patch:
                    _check_kind(res, res.api_version, patch.get("kind") or res.kind,
                                patch.get("apiVersion") or res.api_version)
                pmd = patch.get("metadata")
                if isinstance(pmd, dict):
                    _check_name({"name": pmd.get("name", name), **pmd}, name,
                                ns if res.namespaced else None)
                patch = _patches.recording_merge(patch, self._request(method, query, res, url_api,
                                                                      ns, name, sub))
                return self._send(200, store.patch(
                    res.plural, name, ns,
                    fieldval.checked(patch, self._body_raw, ctype, fv, warns), sub, dry_run),
                    fieldval.warning_headers(warns))
            if method == "DELETE" and name and sub is None:
                dry_run = _dry_run(query, "DeleteOptions")
                grace = listopts.int_param(query, "gracePeriodSeconds")
                opts = None
                if self._body_raw.strip():  # DeleteOptions in the body win over the query
                    opts = self._json_body(res)
                    g = opts.get("gracePeriodSeconds") if isinstance(opts, dict) else None
                    if g is not None and (not isinstance(g, int) or isinstance(g, bool)):
                        raise errors.BadRequest(
                            "json: cannot unmarshal " + _go_type(g) + " into Go struct field "
                            "DeleteOptions.gracePeriodSeconds of type int64")
                    if g is not None:
                        grace = g
                policy = delete_policy(query, opts)  # Orphan/Background/Foreground
                if dry_run:  # the object that would go, still there
                    return self._send_raw(200, store.get_raw(res.plural, name, ns).encode())
                return self._send(200, store.delete(res.plural, name, ns, grace, policy))
            raise errors.method_not_allowed()
        except errors.ApiError as e:
            self._send(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # the API must answer, never die
            self._send(500, errors.ApiError(f"internal error: {type(e).__name__}: {e}").status())

    def _list(self, res: Resource, ns: str | None, opts: listopts.ListOptions) -> None:
        """A list: the stored JSON texts go out as they are (no decode and re-encode), or
        as a Table (rows cached per object version); `limit` pages with a continue token."""
        store = self.server.store
        want = opts.resource_version
        if want and opts.rv_match == "Exact" and want != store.resource_version:
            if want < store.resource_version:
                raise errors.Gone("The resourceVersion for the provided list is too old.")
        if want and want > store.resource_version:
            # NotOlderThan a version this store has not reached: the apiserver waits ~3 s
            deadline = time.monotonic() + 3.0
            while store.resource_version < want and time.monotonic() < deadline:
                time.sleep(0.05)
            if store.resource_version < want:
                raise errors.ApiError(f"Timeout: Too large resource version: {want}, current: "
                                      f"{store.resource_version}", code=504, reason="Timeout")
        items, rv, nxt, left = store.list_page(res.plural, ns, opts.label_selector,
                                               opts.field_selector, opts.limit or None,
                                               opts.after)
        meta: dict = {}
        if nxt is not None:
            meta["continue"] = listopts.encode_continue(rv, nxt)
            if not opts.label_selector and not opts.field_selector:
                meta["remainingItemCount"] = left
        if tables.wants_table(self.headers.get("accept")):
            return self._send_raw(200, tables.table_bytes(res.plural, items, str(rv),
                                                          extra_meta=meta),
                                  content_type=tables.TABLE_CONTENT_TYPE.encode())
        head = json.dumps({"kind": res.kind + "List", "apiVersion": res.api_version,
                           "metadata": {"resourceVersion": str(rv), **meta}},
                          separators=(",", ":"))
        return self._send_raw(200, (head[:-1] + ',"items":[' + ",".join(items)
                                    + "]}").encode())

    def _watch(self, plural: str, ns: str | None, opts: listopts.ListOptions) -> None:
        timeout = opts.timeout
        # 0 or absent: the default; negative: the watch ends at once (the apiserver's timer).
        timeout = 300.0 if not timeout else max(0.0, float(timeout))
        # sendInitialEvents=true (kubectl 1.37's wait / rollout status): the state as ADDED,
        # then the bookmark that ends it (when bookmarks are allowed). A watch from no
        # version (or 0) that says neither is given the same (SetListOptionsDefaults with
        # WatchList on: the legacy "state first" semantics, now with the bookmark).
        initial: bool | str = False
        legacy = opts.send_initial_events is None and not opts.rv_match and \
            not opts.resource_version
        if opts.send_initial_events or legacy:
            initial = "bookmark" if opts.bookmarks else True
        # `kubectl get -w` watches with the Table Accept: each event's object is a Table of
        # one row (bookmarks stay the bare object, as the apiserver sends them)
        as_table = tables.wants_table(self.headers.get("accept"))
        stream = self.server.store.watch(plural, ns, opts.resource_version, timeout,
                                         opts.label_selector, raw=True,
                                         field_selector=opts.field_selector,
                                         initial_events=initial)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # named while it serves the watch: py-spy dump and per-thread CPU (bench_controlplane)
        # tell the watches' fan-out from the requests
        thread = threading.current_thread()
        thread_name, thread.name = thread.name, f"api-watch-{plural}"
        try:
            try:
                for etype, obj in stream:
                    if etype == "BOOKMARK" and not opts.bookmarks:
                        self._chunk(b"\n")  # keep-alive probe: detects a gone client
                        continue
                    data = obj.encode()
                    if as_table and etype != "BOOKMARK":
                        data = tables.object_table(plural, obj)
                    self._chunk(b'{"type":"%s","object":%s}\n' % (etype.encode(), data))
            except errors.ApiError as e:
                self._chunk(json.dumps({"type": "ERROR", "object": e.status()}).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            thread.name = thread_name

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")


# ---- request checks, in kube-apiserver's words ---------------------------------------
def _served_versions(res: Resource) -> set[str]:
    """The API versions whose paths serve `res` (old Ingress versions are converted)."""
    return ACCEPTED_VERSIONS.get(res.kind, set()) | {res.api_version}


def _version(api: str) -> str:
    return api.rsplit("/", 1)[-1]


def _check_kind(res: Resource, url_api: str, kind: str, api: str) -> None:
    """The body's kind/apiVersion against the URL's, in the order the apiserver checks:
    decoding into the URL's type first, then the version."""
    known = BY_KIND.get(kind)
    if known is None or api not in _served_versions(known):
        raise errors.BadRequest(
            f'{kind} in version "{_version(api)}" cannot be handled as a {res.kind}: no kind '
            f'"{kind}" is registered for version "{api}" in scheme '
            '"pkg/api/legacyscheme/scheme.go:30"')
    if kind != res.kind:
        internal = res.group.split(".")[0] if res.group else "core"
        raise errors.BadRequest(
            f'{kind} in version "{_version(api)}" cannot be handled as a {res.kind}: converting '
            f"({_version(api)}.{kind}) to ({internal}.{res.kind}): unknown conversion")
    if api != url_api:
        raise errors.BadRequest(f"the API version in the data ({api}) does not match the "
                                f"expected API version ({url_api})")


def _check_name(md: dict, name: str, ns: str | None) -> None:
    """PUT (and PATCH) address one object: the body cannot name another (checkName)."""
    if (md.get("name") or "") != name:
        raise errors.BadRequest(f"the name of the object ({md.get('name') or ''}) does not "
                                f"match the name on the URL ({name})")
    if ns and md.get("namespace") and md["namespace"] != ns:
        raise errors.BadRequest(f"the namespace of the object ({md['namespace']}) does not "
                                f"match the namespace on the URL ({ns})")


def _dry_run(query: dict, options_kind: str) -> bool:
    """dryRun=All, or nothing: any other value is refused, never taken for a real write."""
    v = query.get("dryRun")
    if v is None:
        return False
    if v != "All":
        raise errors.Invalid(
            f'{options_kind}.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
            f'[]string{{"{v}"}}: supported values: "All"')
    return True


def _go_type(v) -> str:
    """How Go's encoding/json names a JSON value's type in its errors."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(v), "null")


def _summary(raw: bytes, n: int = 30) -> str:
    """The apiserver's summarizeData: the start of a JSON body, or hex of anything else."""
    if raw[:1] == b"{":
        text = raw.decode("utf-8", "replace")
        return text[:n] + " ..." if len(text) > n else text
    return raw[:n].hex() + (" ..." if len(raw) > n else "")


def serve(store: Store, path: str, *, max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
          header_timeout: float = HEADER_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT,
          max_connections: int = MAX_CONNECTIONS) -> _Server:
    """Bind the API on a unix socket (mode 0600: root only). Caller runs serve_forever().
    The limits default to kube-apiserver's; tests shorten them."""
    if os.path.exists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = os.umask(0o177)
    try:
        srv = _Server(path, _Handler)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    srv.store = store
    srv.max_body_bytes, srv.header_timeout = max_body_bytes, header_timeout
    srv.idle_timeout, srv.max_connections = idle_timeout, max_connections
    srv.start_reaper()
    return srv


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    """The server side of TLS: this certificate, a client certificate verified against the
    cluster CA when one is sent (bearer tokens come without: netsim.api.authn decides per
    request), HTTP/1.1 through ALPN (kubectl offers h2 first)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def serve_tls(store: Store, host: str, port: int, context: ssl.SSLContext, *,
              max_body_bytes: int = MAX_REQUEST_BODY_BYTES, header_timeout: float = HEADER_TIMEOUT,
              idle_timeout: float = IDLE_TIMEOUT,
              max_connections: int = MAX_CONNECTIONS) -> _TLSServer:
    """Bind the API over HTTPS on host:port (port 0: a free one; see server_address).
    Caller runs serve_forever()."""
    srv = _TLSServer((host, port), _Handler)
    srv.ssl_context = context
    srv.store = store
    srv.max_body_bytes, srv.header_timeout = max_body_bytes, header_timeout
    srv.idle_timeout, srv.max_connections = idle_timeout, max_connections
    srv.start_reaper()
    return srv


__all__ = ["serve", "serve_tls", "tls_context", "RESOURCES"]
