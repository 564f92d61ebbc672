"""Thin helpers over pyroute2: enter a netns, make links, addresses, routes, sysctls.

pyroute2's IPRoute(netns=...) forks per call; entering the namespace with pushns() and
opening a plain IPRoute there is ~3x faster. Such a socket belongs to the calling thread.
pyroute2 is imported on first use (~0.3 s): the cluster's own plumbing goes through
netsim.net.rtnl; these helpers remain for other callers.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from netsim.net import rtnl

if TYPE_CHECKING:
    from pyroute2 import IPRoute


class _Lazy:
    """pyroute2's `netns` module, imported when first touched."""

    def __getattr__(self, name):
        from pyroute2 import netns as mod
        return getattr(mod, name)


netns = _Lazy()


def _netlink_error() -> type[Exception]:
    from pyroute2.netlink.exceptions import NetlinkError
    return NetlinkError

NETNS_DIR = "/var/run/netns"


@contextlib.contextmanager
def inside(ns: str | None) -> Iterator[IPRoute]:
    """An IPRoute socket living in netns `ns` (None: the current one)."""
    if ns:
        netns.pushns(ns)
    try:
        from pyroute2 import IPRoute
        ipr = IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()
    finally:
        if ns:
            netns.popns()


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def netns_dir_mounted() -> bool:
    """Is /run/netns a mount point? (os.path.ismount misses a bind mount of itself.)"""
    real = os.path.realpath(NETNS_DIR)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == real for line in f)


_NETNS_DIR_READY = threading.Event()


def netns_dir_ready() -> bool:
    """netns_dir_mounted(), remembered once true (mountinfo grows with every netns)."""
    if not _NETNS_DIR_READY.is_set() and netns_dir_mounted():
        _NETNS_DIR_READY.set()
    return _NETNS_DIR_READY.is_set()


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 4096, 16384, 1 << 20


def prepare_netns_dir() -> None:
    """Make /run/netns a shared mount point, as `ip netns add` does the first time
    (iproute2's netns_add: mkdir 0755, MS_SHARED|MS_REC, and when that says EINVAL (not a
    mount point yet) a bind mount of the folder onto itself first), so a netns unmounted
    in one mount namespace is unmounted in all. Done here, not by pyroute2's
    netns.create, whose forked helper must answer within 2 s: on a slow or emulated
    machine the first `cluster up` failed on its TimeoutError."""
    if netns_dir_ready():
        return
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    path = NETNS_DIR.encode()
    made = False
    while _libc.mount(b"", path, b"none", ctypes.c_ulong(_MS_SHARED | _MS_REC), None) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL or made:
            raise OSError(err, f"mount --make-rshared {NETNS_DIR}: {os.strerror(err)}")
        if _libc.mount(path, path, b"none", ctypes.c_ulong(_MS_BIND | _MS_REC), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount --rbind {NETNS_DIR} {NETNS_DIR}: {os.strerror(err)}")
        made = True
    _NETNS_DIR_READY.set()


def _bind_new_netns(path: str, result: list) -> None:
    """Runs on a throw-away thread: unshare its netns and pin it at `path` (no fork)."""
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(src, path.encode(), None, _MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"mount {path}")
        result.append(None)
    except OSError as e:
        result.append(e)


def create_netns(name: str) -> None:
    """`ip netns add`, ~20x faster than pyroute2's forking netns.create (and
    prepare_netns_dir makes /run/netns a shared mount point first, as ip does)."""
    if netns_exists(name):
        return
    prepare_netns_dir()
    path = os.path.join(NETNS_DIR, name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    result: list = []
    t = threading.Thread(target=_bind_new_netns, args=(path, result))
    t.start()
    t.join()
    if result and result[0] is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise result[0]


def remove_netns(name: str) -> None:
    if netns_exists(name):
        with contextlib.suppress(OSError):
            rtnl.remove_netns(name)


def open_netns(name: str) -> tuple[int, rtnl.Rtnl]:
    """Make netns `name` unless it exists; returns an fd of it and an rtnetlink socket
    living in it (both the caller's to close). Only the calling thread switches."""
    prepare_netns_dir()  # the first netns ever: /run/netns a shared mount point first
    path = os.path.join(NETNS_DIR, name)
    if not netns_exists(name):
        return rtnl.new_netns(name)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.in_netns(path):
            return fd, rtnl.Rtnl()
    except OSError:
        os.close(fd)
        raise


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(os.path.join(NETNS_DIR, name)).st_ino
    except OSError:
        return None


def index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def ensure_bridge(ipr: IPRoute, name: str, address: str | None = None, prefix: int = 24) -> int:
    idx = index(ipr, name)
    if idx is None:
        ipr.link("add", ifname=name, kind="bridge")
        idx = index(ipr, name)
    if address:
        add_addr(ipr, idx, address, prefix)
    ipr.link("set", index=idx, state="up")
    return idx


def add_addr(ipr: IPRoute, idx: int, address: str, prefix: int) -> None:
    try:
        ipr.addr("add", index=idx, address=address, prefixlen=prefix)
    except _netlink_error() as e:
        if e.code != errno.EEXIST:
            raise


def add_route(ipr: IPRoute, **kw) -> None:
    try:
        ipr.route("add", **kw)
    except _netlink_error() as e:
        if e.code != errno.EEXIST:
            raise


def del_route(ipr: IPRoute, **kw) -> None:
    with contextlib.suppress(_netlink_error()):
        ipr.route("del", **kw)


def del_link(ipr: IPRoute, name: str) -> None:
    idx = index(ipr, name)
    if idx is not None:
        with contextlib.suppress(_netlink_error()):
            ipr.link("del", index=idx)


def veth_into(ipr: IPRoute, local: str, peer: str, peer_ns: str | int) -> int:
    """Create veth `local` here with its peer `peer` moved into netns `peer_ns`."""
    idx = index(ipr, local)
    if idx is None:
        ipr.link("add", ifname=local, kind="veth", peer={"ifname": peer, "net_ns_fd": peer_ns})
        idx = index(ipr, local)
    return idx


def set_sysctl(key: str, value: str) -> None:
    """Write a sysctl of the *current* netns (call inside `inside()` for another one)."""
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        pass  # e.g. bridge-nf-call-iptables before br_netfilter is present
