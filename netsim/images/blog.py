"""The seed's blog app (`myblog`): `/blog/index/` shows its version, pod and database status.

Always 200 on /blog/index/ (the seed's probes hit it), whether or not MySQL answers; the page
says which. Other paths 404 like Django with DEBUG off; `/blog/index` redirects (APPEND_SLASH).
Usage: python -m netsim.images.blog [--port P ...] [--version V] [--bind ADDR]
Env: MYSQL_HOST, MYSQL_PORT (default 3306), ECHO_FAIL_HEALTHZ_FILE (for /healthz).
"""

import os
import socket
import sys
import threading

try:
    from . import _common as c
except ImportError:  # run as a script: python -S .../netsim/images/blog.py
    import _common as c

CONNECT_TIMEOUT = 0.5
RESOLVE_TIMEOUT = 1.0  # a hung DNS must not make the probe (timeoutSeconds: 2) fail

NOT_FOUND = b"""<!doctype html>
<html lang="en">
<head>
  <title>Not Found</title>
</head>
<body>
  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>
</body>
</html>
"""


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def resolve(host: str, port: int) -> tuple:
    """getaddrinfo with a deadline: returns (sockaddr, family) or raises OSError."""
    result: list = []

    def run() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except OSError as e:
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(RESOLVE_TIMEOUT)
    if not result:
        raise OSError(f"resolving {host} timed out")
    if isinstance(result[0], OSError):
        raise result[0]
    family, _, _, _, sockaddr = result[0][0]
    return sockaddr, family


def db_status() -> str:
    """What the page says about MySQL, from a plain TCP connect as the real app's pool would."""
    host = os.environ.get("MYSQL_HOST", "").strip()
    if not host:
        return "database: unreachable (MYSQL_HOST not set)"
    raw_port = os.environ.get("MYSQL_PORT", "3306").strip() or "3306"
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        return f"database: unreachable (bad MYSQL_PORT {raw_port!r})"
    try:
        sockaddr, family = resolve(host, int(raw_port))
    except OSError as e:
        return f"database: unreachable ({e.strerror or e})"
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect(sockaddr)
    except TimeoutError:
        return f"database: unreachable (connect to {sockaddr[0]}:{sockaddr[1]} timed out)"
    except OSError as e:
        return f"database: unreachable ({e.strerror or e})"
    finally:
        s.close()
    return f"database: connected to {host} ({sockaddr[0]})"


def make_app(version: str):
    host = c.hostname()

    def app(conn, req):
        if req.path == "/healthz":
            if c.health_failing():
                return 500, b"fail\n", "text/plain", None
            return 200, b"ok\n", "text/plain", None
        if req.path == "/blog/index":
            return 301, b"", "text/html; charset=utf-8", ["Location: /blog/index/"]
        if req.path != "/blog/index/":
            return 404, NOT_FOUND, "text/html", None
        page = (
            "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\">"
            f"<title>myblog {esc(version)}</title></head>\n<body>\n"
            f"<h1>myblog {esc(version)}</h1>\n"
            f"<p>host: {esc(host)}</p>\n"
            f"<p>{esc(db_status())}</p>\n"
            "</body>\n</html>\n"
        )
        return 200, page.encode(), "text/html; charset=utf-8", None

    return app


def main(argv: list[str] | None = None) -> None:
    c.install_signals()
    opts = c.parse_args(sys.argv[1:] if argv is None else argv, 8002)
    socks = c.listen(opts["bind"], opts["ports"])
    app = make_app(opts["version"])
    c.log(f"myblog {opts['version']}: starting development server at "
          + ", ".join(f"http://{opts['bind']}:{p}/" for p in opts["ports"]))
    c.serve_http(socks, app, "WSGIServer/0.2")  # not at_once: a page waits for MySQL


if __name__ == "__main__":
    main()
