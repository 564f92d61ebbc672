"""The child of `Pod.send` / `Node.send` / `LanHost.send`: scapy's sr (or srp for a packet
starting with Ether) from inside the namespaces it was started in.

stdin: the packet (or list of packets) as `unbuilt` made it; argv: timeout iface multi
retry inter; stdout: the pickled list of answers (the received packets, in the order of
what they answer). Pickle, because both ends are the same Python with the same scapy: the
packets come back as the classes they were parsed into, with their receive times.

A packet travels *unbuilt* (each layer's class and the fields the user set), not pickled:
pickling builds it, and building in the caller's namespace would fix what scapy fills in
from the routes of where it is sent (the source address, checksums) to the root netns's."""

from __future__ import annotations

import pickle
import sys


def unbuilt(packet) -> list[list[tuple[type, dict]]]:
    """Each packet as its layers' (class, fields set) (a list of packets: one per packet)."""
    from scapy.packet import NoPayload  # noqa: PLC0415
    packets = list(packet) if isinstance(packet, (list, tuple)) else [packet]
    out = []
    for p in packets:
        layers = []
        while p is not None and not isinstance(p, NoPayload):
            layers.append((type(p), dict(p.fields)))
            p = p.payload
        out.append(layers)
    return out


def rebuilt(layers: list[tuple[type, dict]]):
    pkt = None
    for cls, fields in layers:
        layer = cls(**fields)
        pkt = layer if pkt is None else pkt / layer
    return pkt


def main(argv: list[str]) -> int:
    timeout, iface, multi, retry, inter = argv
    wire = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our own parent
    # Not scapy.all (every layer: 3-4x the import time on a loaded machine): the layers of
    # the packets came with the unpickling, and inet dissects the usual answers.
    import scapy.layers.inet  # noqa: F401, PLC0415 - IP/TCP/UDP/ICMP bound for the answers
    from scapy.config import conf  # noqa: PLC0415 - inside the pod's netns: its routes
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    from scapy.sendrecv import sr, srp  # noqa: PLC0415
    conf.verb = 0
    packets = [rebuilt(layers) for layers in wire["packets"]]
    pkt = packets if wire["list"] else packets[0]
    first = packets[0]
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
