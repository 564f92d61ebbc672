"""HTTP echo server: answers every request with who served it (pod, IP, version) and who asked.

The basis of load-balancing, source-IP and ingress tests. Usage:
  python -m netsim.images.echo [--port P ...] [--version V] [--bind ADDR] [-text=T]
`-text`/`-listen`/`-status-code` follow hashicorp/http-echo, whose manifests pass them as args.
Env: NETSIM_POD_NAMESPACE, NETSIM_NODE_NAME, ECHO_FAIL_HEALTHZ_FILE.
"""

import os
import sys

try:
    from . import _common as c
except ImportError:  # run as a script: python -S .../netsim/images/echo.py
    import _common as c

json = None  # imported after listen(): json pulls in `re`, which costs start-up time


def make_app(opts: dict):
    host = c.hostname()
    namespace = os.environ.get("NETSIM_POD_NAMESPACE", "")
    node = os.environ.get("NETSIM_NODE_NAME", "")
    version = opts["version"]
    text = opts.get("text")
    try:
        text_status = int(opts.get("status-code", 200))
    except ValueError:
        text_status = 200

    def app(conn, req):
        if req.path == "/healthz":
            if c.health_failing():
                return 500, b"fail\n", "text/plain", None
            return 200, b"ok\n", "text/plain", None
        if text is not None:
            return text_status, (text + "\n").encode(), "text/plain; charset=utf-8", None
        local = conn.getsockname()
        out = {
            "pod": host,
            "namespace": namespace,
            "node": node,
            "pod_ip": local[0],
            "port": local[1],
            "version": version,
            "client": c.addr(conn.getpeername()),
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "host": req.hdr.get("host", ""),
            "headers": req.headers,
            "body_length": req.body_length,
        }
        if "x-netsim-service" in req.hdr:
            out["service"] = req.hdr["x-netsim-service"]
        if "x-netsim-ingress" in req.hdr:
            out["ingress"] = req.hdr["x-netsim-ingress"]
        body = json.dumps(out, indent=2).encode() + b"\n"
        return 200, body, "application/json", None

    return app


def main(argv: list[str] | None = None) -> None:
    global json
    c.install_signals()
    opts = c.parse_args(sys.argv[1:] if argv is None else argv, 8080)
    socks = c.listen(opts["bind"], opts["ports"])
    import json as _json

    json = _json
    app = make_app(opts)
    c.log(f"echo {opts['version']} listening on "
          + ", ".join(f"{opts['bind']}:{p}" for p in opts["ports"]))
    c.serve_http(socks, app, "netsim-echo", at_once=True)


if __name__ == "__main__":
    main()
