"""The HTTP API: Kubernetes REST paths over a unix socket, backed by the Store."""

from __future__ import annotations

import json
import os
import re
import socketserver
import urllib.parse
from http.server import BaseHTTPRequestHandler

from netsim.api import errors
from netsim.api.resources import BY_PLURAL, RESOURCES
from netsim.api.store import Store

# /api/v1[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]
# /apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]
_PATH = re.compile(
    r"^/(?:api/(?P<v1>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True
    store: Store


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
                headers[k.strip().lower()] = v.strip()
        self.headers = headers
        conn = headers.get("connection", "").lower()
        self.close_connection = conn == "close" or (words[2] == "HTTP/1.0" and conn != "keep-alive")
        return True

    def address_string(self) -> str:
        return "unix"

    # ---- helpers ---------------------------------------------------------------------
    def _send(self, code: int, body: dict) -> None:
        self._send_raw(code, json.dumps(body, separators=(",", ":")).encode())

    def _send_raw(self, code: int, data: bytes) -> None:
        phrase = self.responses.get(code, ("",))[0].encode()
        self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (code, phrase, len(data), data))

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            raise errors.BadRequest(f"invalid JSON body: {e}") from e

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path in ("/healthz", "/readyz", "/livez"):
            return None, None, None, None, query, url.path
        m = _PATH.match(url.path)
        if not m:
            raise errors.NotFound(f"the server could not find the requested resource ({url.path})")
        plural = m.group("plural")
        if plural == "namespaces" and m.group("ns") is None and m.group("name") is None:
            pass
        res = BY_PLURAL.get(plural)
        if res is None:
            # /api/v1/namespaces/{name} is the namespace object itself.
            raise errors.NotFound(f"the server could not find the requested resource ({plural})")
        ns = urllib.parse.unquote(m.group("ns")) if m.group("ns") else None
        name = urllib.parse.unquote(m.group("name")) if m.group("name") else None
        return res, ns, name, m.group("sub"), query, None

    def _handle(self, method: str) -> None:
        store = self.server.store
        try:
            res, ns, name, sub, query, special = self._route()
            if special:
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(data)
                return
            if method == "GET" and name is None:
                if query.get("watch") in ("1", "true"):
                    return self._watch(res.plural, ns, query)
                # The stored JSON texts go out as they are (no decode and re-encode).
                items, rv = store.list_raw(res.plural, ns, query.get("labelSelector"))
                head = json.dumps({"kind": res.kind + "List", "apiVersion": res.api_version,
                                   "metadata": {"resourceVersion": str(rv)}},
                                  separators=(",", ":"))
                return self._send_raw(200, (head[:-1] + ',"items":[' + ",".join(items)
                                            + "]}").encode())
            if method == "GET":
                return self._send_raw(200, store.get_raw(res.plural, name, ns).encode())
            if method == "POST" and name is None:
                obj = self._body()
                if res.namespaced and ns:
                    obj.setdefault("metadata", {})["namespace"] = ns
                return self._send(201, store.create(obj, dry_run=query.get("dryRun") == "All"))
            if method == "PUT" and name:
                obj = self._body()
                obj.setdefault("metadata", {})["name"] = name
                if res.namespaced:
                    obj["metadata"]["namespace"] = ns
                return self._send(200, store.update(obj, subresource=sub,
                                                   dry_run=query.get("dryRun") == "All"))
            if method == "PATCH" and name:
                return self._send(200, store.patch(res.plural, name, ns, self._body(), sub))
            if method == "DELETE" and name:
                grace = query.get("gracePeriodSeconds")
                return self._send(200, store.delete(res.plural, name, ns,
                                                    int(grace) if grace not in (None, "") else None))
            raise errors.ApiError(f"method {method} not allowed here", code=405,
                                  reason="MethodNotAllowed")
        except errors.ApiError as e:
            self._send(e.code, e.status())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # the API must answer, never die
            self._send(500, errors.ApiError(f"internal error: {type(e).__name__}: {e}").status())

    def _watch(self, plural: str, ns: str | None, query: dict) -> None:
        rv = query.get("resourceVersion")
        timeout = float(query.get("timeoutSeconds") or 300)
        stream = self.server.store.watch(plural, ns, int(rv) if rv else None, timeout,
                                         query.get("labelSelector"), raw=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            try:
                for etype, obj in stream:
                    if etype == "BOOKMARK" and query.get("allowWatchBookmarks") not in ("1", "true"):
                        self._chunk(b"\n")  # keep-alive probe: detects a gone client
                        continue
                    self._chunk(b'{"type":"%s","object":%s}\n' % (etype.encode(), obj.encode()))
            except errors.ApiError as e:
                self._chunk(json.dumps({"type": "ERROR", "object": e.status()}).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

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


def serve(store: Store, path: str) -> _Server:
    """Bind the API on a unix socket (mode 0600: root only). Caller runs serve_forever()."""
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
    return srv


__all__ = ["serve", "RESOURCES"]
