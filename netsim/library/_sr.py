"""The child of `Pod.send` / `Node.send` / `LanHost.send`: scapy's sr (or srp for a packet
starting with Ether) from inside the namespaces it was started in.

stdin: the pickled packet (or list of packets); argv: timeout iface multi retry inter;
stdout: the pickled list of answers (the received packets, in the order of what they
answer). Pickle, because both ends are the same Python with the same scapy: the packets
come back as the classes they were parsed into, with their receive times."""

from __future__ import annotations

import pickle
import sys


def main(argv: list[str]) -> int:
    timeout, iface, multi, retry, inter = argv
    pkt = pickle.loads(sys.stdin.buffer.read())
    from scapy.all import conf, sr, srp  # noqa: PLC0415 - inside the pod's netns: its routes
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    conf.verb = 0
    first = pkt[0] if isinstance(pkt, list) and pkt else pkt
    kw = {"timeout": float(timeout), "multi": multi == "1", "retry": int(retry),
          "inter": float(inter), "verbose": 0}
    if isinstance(first, Ether):
        ans, _unans = srp(pkt, iface=iface or "eth0", **kw)
    else:
        if iface:
            kw["iface"] = iface
        ans, _unans = sr(pkt, **kw)
    sys.stdout.buffer.write(pickle.dumps([received for _sent, received in ans]))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
