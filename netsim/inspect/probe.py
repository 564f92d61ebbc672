"""One real connection attempt, run inside a netns by `netsim trace`:
`ip netns exec NS <venv python> -m netsim.inspect.probe tcp|udp DST PORT [TIMEOUT]
[--sport N] [--http HOST PATH USER-AGENT]`.

Prints one JSON line: {"result": "connected"|"refused"|"timeout"|"unreachable"|"sent"|
"error", "src", "sport", "error"} (+ "http_status" for --http). A TCP probe is a connect()
and a close (no payload); with --http it sends `GET PATH` with that Host and User-Agent
(the caller finds the request in nginx's access log by it) and reads the status line. A
UDP probe is one datagram, then a short wait for an answer or an ICMP error ("sent":
neither came). The source port (chosen by the kernel, or --sport, so a trace rule can match
the probe alone before it is sent) lets the caller find the connection's conntrack entry.
"""

from __future__ import annotations

import errno
import json
import socket
import sys


def probe(proto: str, dst: str, port: int, timeout: float = 3.0, *, sport: int = 0,
          http: tuple[str, str, str] | None = None) -> dict:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    out: dict = {"result": "error", "src": "", "sport": 0, "error": ""}
    try:
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if proto == "tcp":
            s.bind(("0.0.0.0", sport))
            out["sport"] = s.getsockname()[1]
            s.connect((dst, port))
            out["result"] = "connected"
            if http is not None:
                out["http_status"] = _http(s, *http)
        else:
            if sport:
                s.bind(("0.0.0.0", sport))
            s.connect((dst, port))
            out["sport"] = s.getsockname()[1]
            s.send(b"netsim-trace\n")
            try:
                s.recv(1)
                out["result"] = "connected"
            except TimeoutError:
                out["result"] = "sent"
    except TimeoutError:
        out["result"] = "timeout"
    except OSError as e:
        out["error"] = e.strerror or str(e)
        out["result"] = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
                         errno.ENETUNREACH: "unreachable", errno.ETIMEDOUT: "timeout"
                         }.get(e.errno or 0, "error")
    finally:
        try:
            out["src"] = s.getsockname()[0]
        except OSError:
            pass
        s.close()
    return out


def _http(s: socket.socket, host: str, path: str, agent: str) -> int:
    """One GET on the connected socket; the status of the answer (0: none came)."""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n"
              "Accept: */*\r\nConnection: close\r\n\r\n".encode())
    head = b""
    try:
        while b"\r\n" not in head and len(head) < 4096:
            chunk = s.recv(1024)
            if not chunk:
                break
            head += chunk
        while s.recv(65536):  # the rest, so nginx logs a whole request, not a 499
            pass
    except (TimeoutError, OSError):
        pass
    words = head.split(b"\r\n", 1)[0].split()
    return int(words[1]) if len(words) > 1 and words[1].isdigit() else 0


def main(argv: list[str]) -> int:
    args = list(argv)
    sport, http = 0, None
    if "--sport" in args:
        i = args.index("--sport")
        sport = int(args[i + 1])
        del args[i:i + 2]
    if "--http" in args:
        i = args.index("--http")
        http = (args[i + 1], args[i + 2], args[i + 3])
        del args[i:i + 4]
    proto, dst, port = args[0], args[1], int(args[2])
    timeout = float(args[3]) if len(args) > 3 else 3.0
    print(json.dumps(probe(proto, dst, port, timeout, sport=sport, http=http)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
