"""Shared plumbing of the image programs: flags, SIGTERM, listeners, access log, HTTP/1.1.

Every pod runs one of these programs, so start-up time counts hundreds of times: only
os/sys/socket/select/signal/threading/time are imported here, never netsim or http.server.
The programs run both as `python -m netsim.images.X` and as `python -S .../images/X.py`
(the faster form the catalog uses), hence no imports from the netsim package.
"""

import os
import select
import signal
import socket
import sys
import threading
import time

# flags that take a value; anything else starting with '-' is ignored (real images get
# extra flags such as mysqld's --character-set-server=... through `args`)
VALUE_FLAGS = {"port", "p", "listen", "version", "bind", "text", "status-code", "timeout"}
IDLE_TIMEOUT = 60.0  # keep-alive idle time before the server closes a connection
MAX_HEAD = 65536  # request line + headers
MAX_LINE = 8192  # one chunk-size line


def warn(msg: str) -> None:
    """One line on stderr: bad flags must not crash a container that would run on Kubernetes."""
    try:
        os.write(2, (msg + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def log(line: str) -> None:
    """One flushed line on stdout (the container log `netsim logs` shows); atomic via write(2)."""
    try:
        os.write(1, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def parse_port(value: str) -> int | None:
    """'8080', ':8080' or 'host:8080' -> 8080; None when not a TCP port."""
    value = value.rsplit(":", 1)[-1].strip()
    if value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    return None


def parse_args(argv: list[str], default_port: int | None) -> dict:
    """Parse `--name value`, `--name=value`, `-name=value` (Go-style, as hashicorp/http-echo).

    Returns {"ports": [...], "version", "bind", "text", "status-code", "timeout", "rest"}.
    `--port` may repeat; `--listen [host]:port` also adds a port. Unknown flags are ignored.
    """
    opts: dict = {"ports": [], "version": "latest", "bind": "0.0.0.0", "rest": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            opts["rest"].append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in VALUE_FLAGS:
            warn(f"ignoring unknown flag {arg}")
            continue
        if not eq:
            if i >= len(argv):
                warn(f"flag {arg} needs a value")
                break
            value = argv[i]
            i += 1
        if name in ("port", "p", "listen"):
            for part in value.split(","):
                port = parse_port(part)
                if port is None:
                    warn(f"ignoring bad port {part!r}")
                elif port not in opts["ports"]:
                    opts["ports"].append(port)
            if name == "listen" and value.rpartition(":")[0]:
                opts["bind"] = value.rpartition(":")[0].strip("[]") or opts["bind"]
        else:
            opts[name] = value
    if not opts["ports"] and default_port:
        opts["ports"] = [default_port]
    return opts


def _exit_now(signum, frame) -> None:  # noqa: ARG001
    """SIGTERM: a container must stop promptly with status 0; daemon threads die with us."""
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


def install_signals() -> None:
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)


def listen(bind: str, ports: list[int]) -> list[socket.socket]:
    """Bind every port or exit 1 (a port clash is a crashing container, as on Kubernetes)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    socks = []
    for port in ports:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
            s.listen(512)
        except OSError as e:
            warn(f"cannot listen on {bind}:{port}: {e.strerror or e}")
            sys.exit(1)
        socks.append(s)
    return socks


def serve(socks: list[socket.socket], handle, timeout: float | None = IDLE_TIMEOUT,
          client_first: bool = False, until=None, answer=None) -> None:
    """Accept forever; one daemon thread per connection runs handle(conn, peer).

    `client_first` (HTTP: the client speaks first): a connection gets its thread
    only once it has sent something; until then it waits in the accept loop's poll, and one
    closed without a byte (the kubelet's tcpSocket probe, once a second per pod, mostly
    still open when accepted) is closed there. A thread per probe was most of an idle
    pod's CPU. A waiting connection idle for `timeout` is closed, as its handler would.
    `until` (client_first only): a callable; serve returns once it is true, looked at every
    10 ms (the image server runs this very loop once before it forks: zygote.warm_up).
    `answer` (client_first only): answer(conn, peer), tried in this loop when a connection
    has sent something, before any thread: True when it answered and the connection waits
    for its next request here, False when it answered and closed it, None when the
    connection needs a thread after all (handle), or a callable to run in a thread instead."""

    def run(conn: socket.socket, peer, fn) -> None:
        try:
            fn(conn, peer)
        except Exception:  # noqa: BLE001 - garbage from a client never kills the server
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def start(conn: socket.socket, peer, fn=handle) -> None:
        conn.settimeout(timeout)
        try:
            threading.Thread(target=run, args=(conn, peer, fn), daemon=True).start()
        except RuntimeError:
            conn.close()

    def accept(s: socket.socket):
        try:
            conn, peer = s.accept()
        except OSError:  # EMFILE and friends: back off instead of spinning
            time.sleep(0.05)
            return None
        if _closed_already(conn):  # connected, closed, said nothing
            conn.close()
            return None
        return conn, peer

    if not client_first:
        while True:
            ready = select.select(socks, [], [])[0] if len(socks) > 1 else socks
            for s in ready:
                got = accept(s)
                if got is not None:
                    start(*got)

    poller = select.poll()
    listeners = {s.fileno(): s for s in socks}
    for fd in listeners:
        poller.register(fd, select.POLLIN)
    waiting: dict[int, tuple] = {}  # fd -> (conn, peer, deadline or None)

    def wait(conn: socket.socket, peer) -> None:
        waiting[conn.fileno()] = (conn, peer, None if timeout is None
                                  else time.monotonic() + timeout)
        poller.register(conn.fileno(), select.POLLIN)

    while until is None or not until():
        wait_ms = None
        if timeout is not None and waiting:
            first = min(w[2] for w in waiting.values())
            wait_ms = max(0.0, first - time.monotonic()) * 1000
        if until is not None:
            wait_ms = 10.0 if wait_ms is None else min(wait_ms, 10.0)
        for fd, _ in poller.poll(wait_ms):
            s = listeners.get(fd)
            if s is not None:
                got = accept(s)
                if got is not None:
                    wait(*got)
                continue
            conn, peer, _ = waiting.pop(fd)
            poller.unregister(fd)
            if _closed_already(conn):
                conn.close()
                continue
            done = None if answer is None else answer(conn, peer)
            if done is True:
                wait(conn, peer)
            elif done is None:
                start(conn, peer)
            elif done is not False:
                start(conn, peer, done)
        if timeout is not None and waiting:
            now = time.monotonic()
            for fd, (conn, _, deadline) in list(waiting.items()):
                if deadline <= now:
                    poller.unregister(fd)
                    del waiting[fd]
                    conn.close()


def _closed_already(conn: socket.socket) -> bool:
    """Whether the peer has already closed (or reset) an accepted connection without
    sending a byte: the kubelet's tcpSocket probe, once a second per pod. Handled in the
    accept loop, with no thread started for it (a thread per probe was most of what an
    idle pod cost)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing sent yet: an ordinary client
    except OSError:
        return True  # reset


def addr(sockaddr) -> str:
    """('10.0.0.1', 5555) -> '10.0.0.1:5555'; IPv6 gets brackets."""
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hostname() -> str:
    return socket.gethostname()


def now_clf() -> str:
    """Common Log Format timestamp, as nginx writes it."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- HTTP/1.1 -------------------------------------------------------------------------------

REASONS = {
    100: "Continue", 200: "OK", 301: "Moved Permanently", 400: "Bad Request",
    404: "Not Found", 408: "Request Timeout", 413: "Payload Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x; answered with `status` then closed."""

    def __init__(self, status: int = 400, why: str = "bad request") -> None:
        super().__init__(why)
        self.status = status


class Request:
    __slots__ = ("method", "target", "version", "path", "query", "headers", "hdr",
                 "body_length", "keep_alive")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}  # original spelling, repeated headers joined
        self.hdr: dict[str, str] = {}  # lower-case name -> value
        self.body_length = 0
        self.keep_alive = True


class HttpConn:
    """A buffered reader over one client socket that yields parsed requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _line(self, limit: int) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line.rstrip(b"\r")
            if len(self.buf) > limit:
                raise BadRequest(400, "line too long")
            if not self._fill():
                raise BadRequest(400, "connection closed mid-request")

    def _skip(self, n: int) -> None:
        while n > 0:
            if not self.buf and not self._fill():
                raise BadRequest(400, "connection closed mid-body")
            take = min(n, len(self.buf))
            self.buf = self.buf[take:]
            n -= take

    def read_request(self) -> Request | None:
        """Next request, None on a clean close between requests; BadRequest on garbage."""
        while True:  # RFC 9112: ignore empty lines before the request line
            while b"\n" not in self.buf:
                if len(self.buf) > MAX_HEAD:
                    raise BadRequest(431, "request line too long")
                if not self._fill():
                    if self.buf.strip():
                        raise BadRequest(400, "connection closed mid-request")
                    return None
            if self.buf[:1] in (b"\r", b"\n"):
                self.buf = self.buf[1:]
                continue
            break
        while b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise BadRequest(431, "headers too large")
            if not self._fill():
                raise BadRequest(400, "connection closed mid-headers")
        cut, sep = min((i, n) for i, n in ((self.buf.find(b"\r\n\r\n"), 4),
                                           (self.buf.find(b"\n\n"), 2)) if i >= 0)
        head, self.buf = self.buf[:cut], self.buf[cut + sep:]
        if len(head) > MAX_HEAD:
            raise BadRequest(431, "headers too large")
        lines = head.decode("latin-1").split("\n")
        parts = lines[0].rstrip("\r").split(" ")
        req = Request()
        if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
            raise BadRequest(400, "malformed request line")
        req.method, req.target, req.version = parts
        if req.version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest(400, "unsupported protocol")
        for raw in lines[1:]:
            raw = raw.rstrip("\r")
            name, colon, value = raw.partition(":")
            if not colon or not name or name != name.strip() or " " in name or "\t" in name:
                raise BadRequest(400, "malformed header")
            value = value.strip()
            low = name.lower()
            if low in req.hdr:
                if low == "content-length" and req.hdr[low] != value:
                    raise BadRequest(400, "conflicting Content-Length")
                req.hdr[low] += ", " + value
                for k in req.headers:
                    if k.lower() == low:
                        req.headers[k] += ", " + value
                        break
            else:
                req.hdr[low] = value
                req.headers[name] = value
        target = req.target
        if "://" in target:  # absolute-form, as sent to proxies
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        req.path, _, req.query = target.partition("?")
        conn = req.hdr.get("connection", "").lower()
        if req.version == "HTTP/1.0":
            req.keep_alive = "keep-alive" in conn
        else:
            req.keep_alive = "close" not in conn
        return req

    def read_body(self, req: Request) -> None:
        """Consume (and count) the body so the next keep-alive request parses cleanly."""
        te = req.hdr.get("transfer-encoding", "").lower()
        cl = req.hdr.get("content-length", "").split(",")[0].strip()
        wants_body = "chunked" in te or (cl and cl != "0")
        if wants_body and req.hdr.get("expect", "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in te:
            total = 0
            while True:
                size = self._line(MAX_LINE).split(b";")[0].strip()
                try:
                    n = int(size, 16)
                except ValueError:
                    raise BadRequest(400, "bad chunk size") from None
                if n < 0:
                    raise BadRequest(400, "bad chunk size")
                if n == 0:
                    while self._line(MAX_LINE):  # trailers up to the empty line
                        pass
                    break
                self._skip(n)
                total += n
                self._line(MAX_LINE)  # CRLF after the chunk data
            req.body_length = total
        elif cl:
            if not cl.isdigit():
                raise BadRequest(400, "bad Content-Length")
            self._skip(int(cl))
            req.body_length = int(cl)


def send_response(sock: socket.socket, req: Request | None, status: int, body: bytes,
                  ctype: str = "text/plain; charset=utf-8", extra: list | None = None,
                  server: str = "netsim") -> None:
    sock.sendall(response(req, status, body, ctype, extra, server))


def response(req: Request | None, status: int, body: bytes,
             ctype: str = "text/plain; charset=utf-8", extra: list | None = None,
             server: str = "netsim") -> bytes:
    """The bytes of one answer: status line, headers, body (none to a HEAD)."""
    keep = req is not None and req.keep_alive and status != 400
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
        f"Server: {server}",
        "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        "Connection: " + ("keep-alive" if keep else "close"),
    ]
    lines += extra or []
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    if req is not None and req.method == "HEAD":
        body = b""
    return head + body


def access_log(peer, req: Request | None, status: int, size: int) -> None:
    """nginx's `combined` format, so `netsim logs` looks like a web server's log."""
    ip = peer[0] if peer else "-"
    if req is None:
        line, ref, ua = "-", "-", "-"
    else:
        line = f"{req.method} {req.target} {req.version}"
        ref, ua = req.hdr.get("referer", "-"), req.hdr.get("user-agent", "-")
    log(f'{ip} - - [{now_clf()}] "{line}" {status} {size} "{ref}" "{ua}"')


def http_loop(conn: socket.socket, peer, app, server: str = "netsim") -> None:
    """Serve requests on one connection until close; app(conn, req) -> (status, body, ctype, extra)."""
    hc = HttpConn(conn)
    while True:
        try:
            req = hc.read_request()
            if req is None:
                return
            hc.read_body(req)
        except BadRequest as e:
            body = f"{e.status} {REASONS.get(e.status, 'Bad Request')}: {e}\n".encode()
            try:
                send_response(conn, None, e.status, body, server=server)
            except OSError:
                pass
            access_log(peer, None, e.status, len(body))
            return
        except (OSError, UnicodeError):
            return
        status, body, ctype, extra = _call(app, conn, req)
        send_response(conn, req, status, body, ctype, extra, server=server)
        access_log(peer, req, status, len(body))
        if not req.keep_alive:
            return


def _call(app, conn: socket.socket, req: Request) -> tuple:
    try:
        return app(conn, req)
    except Exception as e:  # noqa: BLE001 - a bug in one answer must not kill the server
        return 500, f"internal error: {e!r}\n".encode(), "text/plain", None


class _Incomplete(Exception):
    """answer_at_once: the request is not all there yet."""


class _Peeked:
    """What a connection has sent so far, read without taking it (MSG_PEEK), as a socket
    whose next recv would have to wait."""

    def recv(self, _n: int) -> bytes:
        raise _Incomplete


def answer_at_once(conn: socket.socket, peer, app, server: str = "netsim"):
    """serve's `answer` for an app that answers at once (echo's): one request that has
    arrived whole, without a body, is answered in the accept loop; no thread starts for it
    nor waits for the keep-alive's next request. What a thread per request left behind in
    every pod (its stack, thread state, malloc arena, ~100 KB after the first request) was
    a twentieth of an idle pod's memory. Anything else (a request still arriving, a body,
    garbage) is for http_loop in a thread, which then reads the connection from the start:
    nothing is taken from it here unless it is answered here."""
    try:
        data = conn.recv(MAX_HEAD + 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        hc = HttpConn(_Peeked())  # type: ignore[arg-type]
        hc.buf = data
        req = hc.read_request()
    except (_Incomplete, BadRequest, OSError, UnicodeError):
        return None
    if req is None or "transfer-encoding" in req.hdr or req.hdr.get("content-length", "0") != "0":
        return None
    try:
        left = len(data) - len(hc.buf)  # the request's bytes: now taken from the socket
        while left > 0:
            got = conn.recv(left, socket.MSG_DONTWAIT)
            if not got:
                raise ConnectionResetError
            left -= len(got)
        status, body, ctype, extra = _call(app, conn, req)
        out = response(req, status, body, ctype, extra, server)
        try:
            sent = conn.send(out, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
    except OSError:
        conn.close()
        return False
    access_log(peer, req, status, len(body))
    if sent < len(out):  # a client slow to read a large answer: a thread waits for it
        return lambda conn, peer: _finish(conn, peer, out[sent:], req.keep_alive, app, server)
    if not req.keep_alive:
        conn.close()
        return False
    return True


def _finish(conn: socket.socket, peer, rest: bytes, keep: bool, app, server: str) -> None:
    conn.sendall(rest)
    if keep:
        http_loop(conn, peer, app, server=server)


def serve_http(socks: list[socket.socket], app, server: str, at_once: bool = False,
               until=None) -> None:
    """serve() for HTTP/1.1: a thread per connection runs http_loop, or with `at_once`
    (an app that never waits) most requests are answered in the accept loop itself."""
    def answer(conn: socket.socket, peer):
        return answer_at_once(conn, peer, app, server)

    serve(socks, lambda conn, peer: http_loop(conn, peer, app, server=server),
          client_first=True, until=until, answer=answer if at_once else None)


def health_failing() -> bool:
    """Tests flip readiness/liveness by creating the file named in ECHO_FAIL_HEALTHZ_FILE."""
    path = os.environ.get("ECHO_FAIL_HEALTHZ_FILE")
    return bool(path) and os.path.exists(path)
