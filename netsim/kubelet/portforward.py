"""The node side of pods/portforward: a TCP connection to a port on the pod's loopback,
made from inside the pod's network namespace, as containerd's portForward does (the API
server runs in the host's root netns, where no pod address is routed). Only the socket is
made in the namespace (setns on the calling thread, netsim.net.rtnl.in_netns), then the
thread comes home; the socket stays the pod's.

Errors are the kubelet's line around containerd's (1.7/2.0) words, what kubectl prints:
`error forwarding port 80 to pod <sandbox>, uid : failed to execute portforward in network
namespace "/var/run/netns/<ns>": failed to connect to localhost:80 inside namespace
"<sandbox>", IPv4: dial tcp4 127.0.0.1:80: connect: connection refused IPv6 dial tcp6
[::1]:80: connect: connection refused `."""

from __future__ import annotations

import errno
import hashlib
import os
import socket

from netsim.api.streams.backend import StreamError
from netsim.kubelet import runtime
from netsim.net import rtnl

DIAL_TIMEOUT = 5.0  # containerd's per-attempt bound


def dial(pod: dict, rec: runtime.PodRecord | None, port: int) -> socket.socket:
    """A connected socket to 127.0.0.1:port (else [::1]:port) in the netns of the pod's
    kubelet record `rec` (the node's for a hostNetwork pod); raises StreamError with the
    kubelet's message."""
    md = pod["metadata"]
    # a containerd-like sandbox id (64 hex); the pod netns's name carries its first 12
    sandbox = hashlib.sha256(md["uid"].encode()).hexdigest()
    if rec is None or not rec.netns:
        raise StreamError(f"error forwarding port {port} to pod {sandbox}, uid : failed to "
                          f"find sandbox \"{sandbox}\" in store: not found")
    path = os.path.join(rtnl.NETNS_DIR, rec.netns)
    shown = "host" if rec.host_network else path
    prefix = (f"error forwarding port {port} to pod {sandbox}, uid : failed to execute "
              f"portforward in network namespace \"{shown}\": ")
    if not os.path.exists(path):
        raise StreamError(f"error forwarding port {port} to pod {sandbox}, uid : network "
                          f"namespace for sandbox \"{sandbox}\" is closed")
    try:
        with rtnl.in_netns(path):
            sock, err4 = _connect(socket.AF_INET, "127.0.0.1", port)
            if sock is not None:
                return sock
            sock, err6 = _connect(socket.AF_INET6, "::1", port)
            if sock is not None:
                return sock
    except OSError as e:  # the namespace went away under us
        raise StreamError(prefix + _go_error(e)) from e
    raise StreamError(prefix + f"failed to connect to localhost:{port} inside namespace "
                      f"\"{sandbox}\", IPv4: dial tcp4 127.0.0.1:{port}: {err4} "
                      f"IPv6 dial tcp6 [::1]:{port}: {err6} ")


def _connect(family: int, host: str, port: int) -> tuple[socket.socket | None, str]:
    """A connected socket, or None and the failed step as Go's dialer words it."""
    try:
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    except OSError as e:  # e.g. no IPv6 in this namespace
        return None, "socket: " + _go_error(e)
    s.settimeout(DIAL_TIMEOUT)
    try:
        s.connect((host, port))
    except OSError as e:
        s.close()
        return None, "connect: " + _go_error(e)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, ""


def _go_error(e: OSError) -> str:
    """An errno as Go's syscall.Errno prints it (lower-case strerror; a timeout is Go's
    'i/o timeout')."""
    if isinstance(e, TimeoutError) or e.errno == errno.ETIMEDOUT:
        return "i/o timeout"
    s = e.strerror or str(e)
    return s[:1].lower() + s[1:]
