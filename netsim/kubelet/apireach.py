"""Whether this node reaches the API server over its LAN link, as a real kubelet's status
updates must (netsim's agents talk to the API over a unix socket, which no network fault
touches).

The API server's in-cluster address is the control-plane node's LAN IP, port 6443
(netsim.cluster.controlplane). The kubelet's heartbeat first opens a TCP connection there
from the node's netns: when it gets no answer at all (a `netsim link partition` drops the
packets) the heartbeat is skipped, so the node lifecycle controller sees the node stop
posting status and marks it NotReady/Unknown, as it would a partitioned node. Any answer,
a refusal included, means the network works (the check is about the link, not the
listener)."""

from __future__ import annotations

import errno
import socket

API_PORT = 6443
TIMEOUT = 3.0


def api_reachable(cfg, node, timeout: float = TIMEOUT) -> bool:
    cp = next((n for n in cfg.nodes if n.control_plane), None)
    if cp is None or cp.name == node.name:
        return True
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((cp.ip, API_PORT))
        return True
    except TimeoutError:
        return False
    except OSError as e:
        return e.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT)
    finally:
        s.close()
