"""One real connection attempt, run inside a netns by `netsim trace`:
`ip netns exec NS <venv python> -m netsim.inspect.probe tcp|udp DST PORT [TIMEOUT]`.

Prints one JSON line: {"result": "connected"|"refused"|"timeout"|"unreachable"|"sent"|
"error", "src", "sport", "error"}. A TCP probe is a connect() and a close (no payload); a UDP
probe one datagram, then a short wait for an answer or an ICMP error ("sent": neither came).
The source port lets the caller find the connection's conntrack entry (the DNAT it got).
"""

from __future__ import annotations

import errno
import json
import socket
import sys


def probe(proto: str, dst: str, port: int, timeout: float = 3.0) -> dict:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    out: dict = {"result": "error", "src": "", "sport": 0, "error": ""}
    try:
        if proto == "tcp":
            s.bind(("0.0.0.0", 0))
            out["sport"] = s.getsockname()[1]
            s.connect((dst, port))
            out["result"] = "connected"
        else:
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


def main(argv: list[str]) -> int:
    proto, dst, port = argv[0], argv[1], int(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 3.0
    print(json.dumps(probe(proto, dst, port, timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
