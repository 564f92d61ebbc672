"""TCP echo: greets with `hello from <hostname> <local-ip> <version>` then echoes bytes back.

For tests of plain TCP services (ClusterIP/NodePort without HTTP), conntrack and affinity.
Usage: python -m netsim.images.tcp_echo [--port P ...] [--version V] [--bind ADDR]
"""

import sys

try:
    from . import _common as c
except ImportError:  # run as a script: python -S .../netsim/images/tcp_echo.py
    import _common as c


def make_handler(version: str):
    host = c.hostname()

    def handle(conn, peer) -> None:
        local = conn.getsockname()
        c.log(f"{c.now_iso()} connection from {c.addr(peer)} to {c.addr(local)}")
        conn.sendall(f"hello from {host} {local[0]} {version}\n".encode())
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    return handle


def main(argv: list[str] | None = None) -> None:
    c.install_signals()
    opts = c.parse_args(sys.argv[1:] if argv is None else argv, 9000)
    socks = c.listen(opts["bind"], opts["ports"])
    c.log(f"tcp-echo {opts['version']} listening on "
          + ", ".join(f"{opts['bind']}:{p}" for p in opts["ports"]))
    # echo sessions may idle for long (conntrack tests hold them open): no idle timeout
    c.serve(socks, make_handler(opts["version"]), timeout=None)


if __name__ == "__main__":
    main()
