"""Image catalog resolution and the built-in programs, run for real on 127.0.0.1 (no root)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from netsim.images import catalog
from netsim.images.catalog import ImageSpec, expand, known, parse_ref, resolve
from tests.conftest import wait_for

# --- catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize("image, want", [
    ("192.168.3.171:5000/myblog:v1", ("192.168.3.171:5000", "myblog", "v1")),
    ("192.168.3.171:5000/mysql:5.7", ("192.168.3.171:5000", "mysql", "5.7")),
    ("nginx", ("docker.io", "nginx", "latest")),
    ("docker.io/library/nginx:1.25", ("docker.io", "nginx", "1.25")),
    ("library/busybox:1.36", ("docker.io", "busybox", "1.36")),
    ("ealen/echo-server:0.9.2", ("docker.io", "ealen/echo-server", "0.9.2")),
    ("localhost:5000/team/app:v3", ("localhost:5000", "team/app", "v3")),
    ("localhost/app", ("localhost", "app", "latest")),
    ("registry.k8s.io/pause:3.9", ("registry.k8s.io", "pause", "3.9")),
    ("busybox@sha256:" + "a" * 64, ("docker.io", "busybox", "latest")),
    ("nginx:1.25@sha256:" + "b" * 64, ("docker.io", "nginx", "1.25")),
])
def test_parse_ref(image, want):
    assert parse_ref(image) == want


@pytest.mark.parametrize("image", ["", "  ", "a b", "/nginx", "nginx/", "reg.io//x"])
def test_parse_ref_rejects_garbage(image):
    with pytest.raises(ValueError):
        parse_ref(image)


def _res(image, container=None, **kw) -> ImageSpec | None:
    kw.setdefault("user_catalog", None)
    return resolve(image, container or {}, **kw)


def _module(spec: ImageSpec) -> str:
    return os.path.basename(spec.argv[2]) if spec.argv[0] == sys.executable else spec.argv[0]


def _flag(spec: ImageSpec, name: str) -> list[str]:
    return [spec.argv[i + 1] for i, a in enumerate(spec.argv[:-1]) if a == name]


@pytest.mark.parametrize("image, ports, module, version, want_ports", [
    ("192.168.3.171:5000/myblog:v1", [8002], "blog.py", "v1", [8002]),
    ("192.168.3.171:5000/myblog:v2", [], "blog.py", "v2", [8002]),
    ("myblog:anything", [], "blog.py", "anything", [8002]),
    ("192.168.3.171:5000/mysql:5.7", [3306], "mysql.py", "5.7", [3306]),
    ("mysql", [], "mysql.py", "latest", [3306]),
    ("nginx:1.25-alpine", [], "echo.py", "1.25-alpine", [80]),
    ("httpd", [], "echo.py", "latest", [80]),
    ("netsim/echo:v2", [], "echo.py", "v2", [8080]),
    ("echo", [], "echo.py", "latest", [8080]),
    ("ealen/echo-server", [], "echo.py", "latest", [80]),
    ("hashicorp/http-echo:1.0", [], "echo.py", "1.0", [5678]),
    ("netsim/echo", [8080, 8443], "echo.py", "latest", [8080, 8443]),
    ("nginx", [8000], "echo.py", "latest", [8000]),
    ("netsim/tcp-echo:v3", [], "tcp_echo.py", "v3", [9000]),
])
def test_resolve_builtins(image, ports, module, version, want_ports):
    spec = _res(image, {"ports": [{"containerPort": p} for p in ports]})
    assert spec is not None
    assert spec.argv[:2] == [sys.executable, "-S"]
    assert _module(spec) == module
    assert spec.version == version
    assert spec.ports == want_ports
    assert _flag(spec, "--port") == [str(p) for p in want_ports]
    assert _flag(spec, "--version") == [version]


def test_resolve_ignores_udp_and_bad_container_ports():
    spec = _res("nginx", {"ports": [{"containerPort": 53, "protocol": "UDP"},
                                    {"containerPort": "x"}, {"containerPort": 81}]})
    assert spec.ports == [81]


@pytest.mark.parametrize("image", ["busybox", "alpine:3.19", "debian:12", "ubuntu:22.04",
                                   "docker.io/library/busybox:1.28"])
def test_resolve_shell_images_sleep_without_command(image):
    spec = _res(image, {"ports": [{"containerPort": 80}]})
    assert _module(spec) == "sleep.py" and spec.builtin == "sleep"
    assert spec.ports == []  # nothing listens


def test_resolve_pause():
    for image in ("registry.k8s.io/pause:3.9", "k8s.gcr.io/pause", "pause"):
        spec = _res(image)
        assert _module(spec) == "sleep.py" and spec.builtin == "pause"


def test_resolve_command_replaces_entrypoint():
    spec = _res("busybox:1.28", {"command": ["sh", "-c"], "args": ["echo hi; sleep 5"]})
    assert spec.argv == ["sh", "-c", "echo hi; sleep 5"]
    assert spec.builtin is None and spec.version == "1.28"
    spec = _res("nginx", {"command": ["python3", "-m", "http.server", 80],
                          "ports": [{"containerPort": 80}]})
    assert spec.argv == ["python3", "-m", "http.server", "80"] and spec.ports == [80]


def test_resolve_args_only():
    # no ENTRYPOINT in busybox: args alone are the command
    assert _res("busybox", {"args": ["sleep", "3600"]}).argv == ["sleep", "3600"]
    # a built-in gets them as flags, after the catalog's own
    spec = _res("hashicorp/http-echo", {"args": ["-text=apple"]})
    assert spec.argv[-1] == "-text=apple" and spec.ports == [5678]
    spec = _res("mysql:8.0", {"args": ["--default-authentication-plugin=mysql_native_password"]})
    assert spec.argv[-1].startswith("--default-auth") and spec.ports == [3306]
    # port flags in args win over containerPort: the program listens where args say
    spec = _res("hashicorp/http-echo", {"args": ["-listen=:5679", "-text=x"],
                                        "ports": [{"containerPort": 5678}]})
    assert spec.ports == [5679] and "--port" not in spec.argv
    spec = _res("netsim/echo", {"args": ["--port", "7000"]})
    assert spec.ports == [7000] and spec.argv.count("--port") == 1


def test_resolve_command_image():
    spec = _res("curlimages/curl:8.5.0", {"args": ["-s", "http://svc/"]})
    assert spec.argv == ["curl", "-s", "http://svc/"] and spec.builtin is None


@pytest.mark.parametrize("image", ["doesnotexist/app:v1", "192.168.3.171:5000/ublog:v1",
                                   "", "bad image", "nginx/"])
def test_resolve_unknown_is_none(image):
    assert _res(image) is None


USER_CATALOG = """
- image: registry.local/shop/api:v3
  builtin: echo
  port: 7000
- image: shop/worker
  command: [python3, /srv/worker.py]
  args: [--queue, default]
- image: myblog:v9
  builtin: blog
  version: nine
- image: redis
  builtin: tcp-echo
  port: 6379
- image: 12
- image: oops
  builtin: nosuchprogram
- image: nginx
  builtin: tcp-echo
"""


def test_user_catalog(tmp_path):
    path = tmp_path / "images.yaml"
    path.write_text(USER_CATALOG)
    uc = str(path)
    spec = resolve("shop/api:v3", {}, user_catalog=uc)
    assert _module(spec) == "echo.py" and spec.ports == [7000] and spec.version == "v3"
    assert resolve("shop/api:v4", {}, user_catalog=uc) is None  # tagged entry: that tag only
    spec = resolve("192.168.3.171:5000/shop/worker:v1", {}, user_catalog=uc)
    assert spec.argv == ["python3", "/srv/worker.py", "--queue", "default"]
    spec = resolve("shop/worker", {"args": ["--queue", "urgent"]}, user_catalog=uc)
    assert spec.argv == ["python3", "/srv/worker.py", "--queue", "urgent"]  # args replace CMD
    spec = resolve("myblog:v9", {}, user_catalog=uc)
    assert _module(spec) == "blog.py" and spec.version == "nine" and spec.ports == [8002]
    assert resolve("myblog:v1", {}, user_catalog=uc).version == "v1"  # built-in still there
    spec = resolve("redis:7", {"ports": [{"containerPort": 6380}]}, user_catalog=uc)
    assert _module(spec) == "tcp_echo.py" and spec.ports == [6380]
    assert _module(resolve("nginx", {}, user_catalog=uc)) == "tcp_echo.py"  # user wins
    assert resolve("oops", {}, user_catalog=uc) is None  # bad entries skipped, others kept
    # edits are picked up (cache keyed by mtime)
    path.write_text("images:\n- {image: brandnew, builtin: mysql}\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert _module(resolve("brandnew:8.0", {}, user_catalog=uc)) == "mysql.py"
    assert _module(resolve("nginx", {}, user_catalog=uc)) == "echo.py"


def test_user_catalog_missing_or_broken(tmp_path):
    assert _module(resolve("nginx", {}, user_catalog=str(tmp_path / "none.yaml"))) == "echo.py"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- image: [unclosed\n")
    assert _module(resolve("nginx", {}, user_catalog=str(bad))) == "echo.py"


def test_expand_vars():
    env = {"MYSQL_HOST": "svc-mysql", "PORT": "3306"}
    assert expand(["mysql", "-h", "$(MYSQL_HOST)", "-P$(PORT)", "$(NOPE)", "$$(PORT)", "a$$b"],
                  env) == ["mysql", "-h", "svc-mysql", "-P3306", "$(NOPE)", "$(PORT)", "a$b"]


# --- the programs ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, deadline: float = 5.0) -> float:
    """Seconds until 127.0.0.1:port accepts; fails if the program exits or the deadline passes."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        assert proc.poll() is None, f"program exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.002)
    raise AssertionError(f"nothing listens on {port} after {deadline}s")


class Program:
    def __init__(self, proc: subprocess.Popen, port: int, log_path) -> None:
        self.proc, self.port, self.log_path = proc, port, log_path

    def log(self) -> str:
        return self.log_path.read_text()

    def connect(self, timeout: float = 3.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def http(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str]:
        c = self.http()
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def wait_log(self, text: str, deadline: float = 3.0) -> None:
        end = time.monotonic() + deadline
        while text not in self.log():
            assert time.monotonic() < end, f"{text!r} not in log:\n{self.log()}"
            time.sleep(0.01)


@pytest.fixture
def start(tmp_path):
    """start(image, container=None, env=None) -> Program, via the argv the kubelet would exec."""
    procs: list[subprocess.Popen] = []

    def _start(image: str, container: dict | None = None, env: dict | None = None) -> Program:
        port = free_port()
        container = dict(container or {})
        container.setdefault("ports", [{"containerPort": port}])
        spec = resolve(image, container, user_catalog=None)
        assert spec is not None and spec.ports == [port]
        log_path = tmp_path / f"{len(procs)}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(spec.argv + ["--bind", "127.0.0.1"], stdout=out,
                                    stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
        procs.append(proc)
        wait_port(port, proc)
        return Program(proc, port, log_path)

    yield _start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def assert_sigterm_exits(prog: Program) -> None:
    prog.proc.send_signal(signal.SIGTERM)
    assert prog.proc.wait(timeout=2) == 0


def test_echo_answers_who_served_and_who_asked(start):
    prog = start("192.168.3.171:5000/netsim/echo:v7",
                 env={"NETSIM_POD_NAMESPACE": "uit", "NETSIM_NODE_NAME": "k8s-slave-172"})
    c = prog.http()
    c.request("POST", "/a/b?x=1&y=2", body=b"hello",
              headers={"X-Netsim-Service": "uit/svc-echo", "X-Netsim-Ingress": "uit/ing",
                       "X-Custom": "1"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    got = json.loads(r.read())
    client_port = c.sock.getsockname()[1]
    assert got["pod"] == socket.gethostname()
    assert (got["namespace"], got["node"]) == ("uit", "k8s-slave-172")
    assert got["pod_ip"] == "127.0.0.1" and got["version"] == "v7"
    assert got["client"] == f"127.0.0.1:{client_port}"
    assert (got["method"], got["path"], got["query"]) == ("POST", "/a/b", "x=1&y=2")
    assert got["host"] == f"127.0.0.1:{prog.port}"
    assert got["headers"]["X-Custom"] == "1" and got["body_length"] == 5
    assert (got["service"], got["ingress"]) == ("uit/svc-echo", "uit/ing")
    # keep-alive: the next request rides the same TCP connection
    c.request("GET", "/again")
    r = c.getresponse()
    again = json.loads(r.read())
    assert again["client"] == f"127.0.0.1:{client_port}" and again["path"] == "/again"
    assert "service" not in again and again["body_length"] == 0
    c.close()
    prog.wait_log('"GET /again HTTP/1.1" 200')
    assert '"POST /a/b?x=1&y=2 HTTP/1.1" 200' in prog.log()
    assert_sigterm_exits(prog)


def test_echo_chunked_body_head_and_http10(start):
    prog = start("nginx")
    c = prog.http()
    c.request("PUT", "/up", body=iter([b"abc", b"defg"]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    assert json.loads(c.getresponse().read())["body_length"] == 7
    c.request("HEAD", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"" and int(r.getheader("Content-Length")) > 0
    c.close()
    with prog.connect() as s:  # HTTP/1.0 without keep-alive: answer, then close
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b'"path": "/old"' in data


def test_echo_healthz_follows_fail_file(start, tmp_path):
    flag = tmp_path / "unhealthy"
    prog = start("netsim/echo", env={"ECHO_FAIL_HEALTHZ_FILE": str(flag)})
    assert prog.get("/healthz") == (200, "ok\n")
    flag.touch()
    assert prog.get("/healthz")[0] == 500
    flag.unlink()
    assert prog.get("/healthz") == (200, "ok\n")


def test_echo_text_mode_like_hashicorp(start):
    prog = start("hashicorp/http-echo", {"args": ["-text=apple"]})
    assert prog.get("/anything") == (200, "apple\n")


def test_echo_serves_concurrently(start):
    prog = start("netsim/echo")
    idle = prog.connect()  # holds a thread without sending anything
    half = prog.connect()
    half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a request stuck mid-headers
    assert prog.get("/")[0] == 200
    idle.close()
    half.close()


GARBAGE = [
    b"\x00\x01\x02\xff\xfe\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\n : empty name\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort",  # then the client closes
    b"GET / HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
    b"GET /" + b"\xc3\x28" * 10 + b" HTTP/1.1\r\nHost: \xff\r\n\r\n",
    b"\r\n\r\n\r\n",
]


@pytest.mark.parametrize("image", ["netsim/echo", "myblog:v1"])
def test_http_garbage_never_kills_the_server(start, image):
    prog = start(image)
    for junk in GARBAGE:
        with prog.connect() as s:
            try:
                s.sendall(junk)
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(65536)
            except OSError:  # reset while we were still sending: also a fine answer
                reply = b""
        assert reply == b"" or reply.startswith(b"HTTP/1.1 "), (junk[:40], reply[:80])
        if reply[9:12] in (b"400", b"431"):  # refused requests end the connection
            assert b"Connection: close" in reply
    assert prog.get("/healthz") == (200, "ok\n")
    assert prog.proc.poll() is None
    assert '"-" 400' in prog.log()


def test_tcp_echo_greets_then_echoes(start):
    prog = start("netsim/tcp-echo:v3")
    with prog.connect() as s:
        f = s.makefile("rb")
        assert f.readline() == f"hello from {socket.gethostname()} 127.0.0.1 v3\n".encode()
        s.sendall(b"ping\x00\xff")
        assert f.read(6) == b"ping\x00\xff"
    with prog.connect() as s, prog.connect() as s2:  # two clients at once
        s.recv(100), s2.recv(100)
        s2.sendall(b"two")
        assert s2.recv(100) == b"two"
    prog.wait_log("connection from 127.0.0.1:")
    assert_sigterm_exits(prog)


def _read_packet(s: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        assert chunk, "closed before a packet"
        head += chunk
    n = int.from_bytes(head[:3], "little")
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        assert chunk
        body += chunk
    return head[3], body


def _parse_greeting(payload: bytes) -> dict:
    """Protocol::HandshakeV10, parsed independently of the server's builder."""
    end = payload.index(b"\x00", 1)
    p = end + 1
    conn_id = int.from_bytes(payload[p:p + 4], "little")
    salt1 = payload[p + 4:p + 12]
    assert payload[p + 12] == 0
    caps = int.from_bytes(payload[p + 13:p + 15], "little")
    caps |= int.from_bytes(payload[p + 18:p + 20], "little") << 16
    salt_len = payload[p + 20]
    assert payload[p + 21:p + 31] == b"\x00" * 10
    q = p + 31
    n2 = max(13, salt_len - 8)
    salt2 = payload[q:q + n2]
    plugin = payload[q + n2:].rstrip(b"\x00").decode()
    return {"protocol": payload[0], "version": payload[1:end].decode(), "conn_id": conn_id,
            "salt": salt1 + salt2[:-1], "caps": caps, "plugin": plugin}


def test_mysql_sends_a_protocol_v10_greeting(start):
    prog = start("192.168.3.171:5000/mysql:5.7", {"args": ["--timeout", "0.3"]})
    with prog.connect() as s:
        seq, payload = _read_packet(s)
        g = _parse_greeting(payload)
    assert seq == 0 and g["protocol"] == 10
    assert g["version"] == "5.7.44-netsim"
    assert g["plugin"] == "mysql_native_password" and len(g["salt"]) == 20
    assert g["caps"] & 0x200 and g["caps"] & 0x80000  # PROTOCOL_41, PLUGIN_AUTH
    assert not g["caps"] & 0x800  # no SSL: clients log in in clear and get our ERR

    # a client login (HandshakeResponse41) gets Access denied
    with prog.connect() as s:
        _read_packet(s)
        resp = ((0x200 | 0x8000 | 0x80000).to_bytes(4, "little") + (1 << 24).to_bytes(4, "little")
                + b"\x21" + b"\x00" * 23 + b"root\x00" + b"\x00")
        s.sendall(len(resp).to_bytes(3, "little") + b"\x01" + resp)
        seq, err = _read_packet(s)
        assert err[0] == 0xFF and int.from_bytes(err[1:3], "little") == 1045
        assert err[3:9] == b"#28000" and b"'root'@'127.0.0.1'" in err
        assert s.recv(10) == b""  # then closed

    # curl-style garbage gets MySQL's "Bad handshake"; silence is closed after --timeout
    with prog.connect() as s:
        _read_packet(s)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, err = _read_packet(s)
        assert int.from_bytes(err[1:3], "little") == 1043 and b"Bad handshake" in err
    with prog.connect(timeout=3) as s:
        _read_packet(s)
        t = time.monotonic()
        assert s.recv(10) == b""
        assert time.monotonic() - t < 2
    prog.wait_log("Access denied for user 'root'@'127.0.0.1'")
    assert "5.7.44-netsim" in prog.log()
    assert_sigterm_exits(prog)


@pytest.mark.parametrize("tag, version, plugin", [
    ("8.0", "8.0.40-netsim", "caching_sha2_password"),
    ("5.6.40", "5.6.40-netsim", "mysql_native_password"),
    ("8.0.36-oracle", "8.0.36-netsim", "caching_sha2_password"),
    ("latest", "9.1.0-netsim", "caching_sha2_password"),
])
def test_mysql_version_from_tag(tag, version, plugin):
    from netsim.images import mysql

    assert mysql.server_version(tag) == version
    g = _parse_greeting(mysql.greeting(version, 7, b"x" * 20)[4:])
    assert (g["version"], g["conn_id"], g["plugin"]) == (version, 7, plugin)


def test_blog_shows_version_and_database_status(start):
    closed = free_port()
    prog = start("192.168.3.171:5000/myblog:v1",
                 env={"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(closed)})
    status, page = prog.get("/blog/index/")
    assert status == 200 and "myblog v1" in page and socket.gethostname() in page
    assert "database: unreachable (" in page

    db = socket.socket()
    db.bind(("127.0.0.1", 0))
    db.listen()
    with db:
        prog2 = start("myblog:v2", env={"MYSQL_HOST": "localhost",
                                        "MYSQL_PORT": str(db.getsockname()[1])})
        status, page = prog2.get("/blog/index/")
    assert status == 200 and "myblog v2" in page
    assert "database: connected to localhost (127.0.0.1)" in page

    assert prog.get("/nope/")[0] == 404 and "<h1>Not Found</h1>" in prog.get("/nope/")[1]
    c = prog.http()
    c.request("GET", "/blog/index")
    r = c.getresponse()
    assert r.status == 301 and r.getheader("Location") == "/blog/index/"
    c.close()
    assert prog.get("/healthz") == (200, "ok\n")
    prog.wait_log('"GET /blog/index/ HTTP/1.1" 200')
    assert_sigterm_exits(prog)
    assert_sigterm_exits(prog2)


def test_blog_without_mysql_host(start):
    prog = start("myblog:v1", env={"MYSQL_HOST": ""})
    status, page = prog.get("/blog/index/")
    assert status == 200 and "database: unreachable (MYSQL_HOST not set)" in page


def test_sleep_runs_until_sigterm(tmp_path):
    spec = resolve("busybox", {}, user_catalog=None)
    proc = subprocess.Popen(spec.argv)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=2) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_clash_exits_nonzero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        spec = resolve("netsim/echo", {"ports": [{"containerPort": s.getsockname()[1]}]},
                       user_catalog=None)
        r = subprocess.run(spec.argv + ["--bind", "127.0.0.1"], capture_output=True, timeout=10)
    assert r.returncode == 1 and b"cannot listen" in r.stderr


def test_programs_run_with_python_m(tmp_path):
    """`python -m netsim.images.X` works too (the documented form), not only the -S path."""
    port = free_port()
    root = os.path.dirname(os.path.dirname(os.path.dirname(catalog.__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "netsim.images.tcp_echo", "--bind",
                             "127.0.0.1", "--port", str(port), "--version", "vm"],
                            cwd=root, stdout=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            assert s.recv(100).endswith(b" vm\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=2) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_echo_start_to_listening_time(capsys):
    """Printed, not asserted tightly: timing claims belong to tests/bench."""
    times, first = [], []
    for _ in range(5):
        port = free_port()
        spec = resolve("netsim/echo", {"ports": [{"containerPort": port}]}, user_catalog=None)
        t0 = time.monotonic()
        proc = subprocess.Popen(spec.argv + ["--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
        try:
            times.append(wait_port(port, proc))
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            c.request("GET", "/")
            assert c.getresponse().status == 200
            first.append(time.monotonic() - t0)
            c.close()
        finally:
            proc.kill()
            proc.wait()
    with capsys.disabled():
        print(f"\necho start-to-listening: min {min(times) * 1000:.1f} ms, "
              f"median {sorted(times)[2] * 1000:.1f} ms; to first answer: "
              f"min {min(first) * 1000:.1f} ms")
    assert min(times) < 2.0


@pytest.mark.parametrize("image", ["python:3.12", "doesnotexist/app:v1",
                                   "192.168.3.171:5000/ublog:v1"])
def test_resolve_command_runs_whatever_the_image(image):
    """Pods share the host's filesystem: a `command` is the host's program (issue 12)."""
    spec = _res(image, {"command": ["python3", "-m", "http.server"], "args": ["8000"],
                        "ports": [{"containerPort": 8000}]})
    assert spec is not None and spec.argv == ["python3", "-m", "http.server", "8000"]
    assert spec.builtin is None and spec.ports == [8000]
    assert not known(image, user_catalog=None)
    assert _res(image, {"args": ["8000"]}) is None  # without a command: a failed pull
    assert known("nginx:1.25", user_catalog=None)


def test_resolve_command_with_bad_reference_is_none():
    assert _res("bad image", {"command": ["true"]}) is None


def test_http_images_answer_clients_and_close_probes_in_the_accept_loop():
    """serve(client_first=True): a connection closed without a byte (a tcpSocket probe)
    never reaches a handler thread, however soon it was accepted; one that sends gets its
    thread; one that waits longer than the idle timeout is closed."""
    import threading

    from netsim.images import _common

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    handled: list[bytes] = []

    def handle(conn, peer):
        handled.append(conn.recv(100))
        conn.sendall(b"ok")

    threading.Thread(target=_common.serve, args=([lsock], handle, 0.5),
                     kwargs={"client_first": True}, daemon=True).start()
    for _ in range(20):  # probes: connect, then close at once or a moment later
        with socket.create_connection(("127.0.0.1", port)):
            time.sleep(0.005)
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"GET")
        assert c.recv(10) == b"ok"
    assert handled == [b"GET"]
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.settimeout(5)
        assert idle.recv(10) == b""  # closed by the server after its 0.5 s idle timeout
    assert handled == [b"GET"]


def _read_answers(s: socket.socket, n: int) -> list[bytes]:
    """n HTTP answers (each with a Content-Length) read off one connection."""
    data, out = b"", []
    while len(out) < n:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                out.append(head + sep + rest[:length])
                data = rest[length:]
                continue
        chunk = s.recv(1 << 20)
        assert chunk, f"closed after {len(out)} answers"
        data += chunk
    return out


def test_at_once_answers_whole_requests_in_the_accept_loop(monkeypatch):
    """serve_http(at_once=True), as echo serves: a request that has arrived whole and has no
    body is answered without a thread, keep-alive and pipelined ones too; one still
    arriving, one with a body, and an answer the client is slow to read get a thread
    (http_loop), and every client gets the same answers as before."""
    import threading

    from netsim.images import _common

    threads: list[str] = []
    real = _common.http_loop

    def counting(conn, peer, app, server="netsim"):
        threads.append("http_loop")
        return real(conn, peer, app, server=server)

    monkeypatch.setattr(_common, "http_loop", counting)
    monkeypatch.setattr(_common, "access_log", lambda *a: None)

    def app(conn, req):
        if req.path == "/big":
            return 200, b"x" * (16 << 20), "text/plain", None
        return 200, f"{req.method} {req.path} {req.body_length}".encode(), "text/plain", None

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    threading.Thread(target=_common.serve_http, args=([lsock], app, "t"),
                     kwargs={"at_once": True}, daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answers(s, 1)[0].endswith(b"GET /a 0")
        s.sendall(b"GET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                  b"GET /d HTTP/1.1\r\n"
                  b"Connection: close\r\n\r\n")
        b, c, d = _read_answers(s, 3)
        assert b.endswith(b"GET /b 0") and c.endswith(b"GET /c 0") and d.endswith(b"GET /d 0")
        assert b"Connection: close" in d and s.recv(10) == b""
    assert threads == []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /split HTTP/1.1\r\n")  # the accept loop does not wait for the rest:
        wait_for(lambda: threads == ["http_loop"], 5, what="a thread for the half request")
        s.sendall(b"Host: x\r\n\r\n")
        assert _read_answers(s, 1)[0].endswith(b"GET /split 0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        assert _read_answers(s, 1)[0].endswith(b"POST /p 3")
    assert threads == ["http_loop", "http_loop"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /big HTTP/1.1\r\n\r\n")  # 16 MB, not read yet: its rest waits in a
        with socket.create_connection(("127.0.0.1", port), timeout=5) as other:
            other.sendall(b"GET /meanwhile HTTP/1.1\r\n\r\n")  # thread, the loop answers
            assert _read_answers(other, 1)[0].endswith(b"GET /meanwhile 0")
        big = _read_answers(s, 1)[0]
        assert big.endswith(b"x" * 1000) and len(big.split(b"\r\n\r\n", 1)[1]) == 16 << 20
        s.sendall(b"GET /after HTTP/1.1\r\n\r\n")  # keep-alive goes on, in that thread
        assert _read_answers(s, 1)[0].endswith(b"GET /after 0")
    assert threads == ["http_loop"] * 3
