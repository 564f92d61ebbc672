"""A minimal synchronous rtnetlink socket for the pod-sandbox hot path.

pyroute2 0.9 spends ~5 ms of CPU per call in its asyncio machinery; a sandbox needs about
eight calls. This speaks the few messages a sandbox needs directly (one sendmsg + one
ack each, ~20 µs of Python): create a veth with its peer in another netns, set a link up
or into a bridge, hairpin, add an address, add a route, delete a link, add or delete a
permanent neighbour entry.

A netlink socket belongs to the netns it was created in, whichever thread uses it later;
`in_netns()` and `new_netns()` switch only the calling thread (setns(2) is per thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Iterator

NETNS_DIR = "/var/run/netns"

# message types / flags
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
NLM_F_DUMP = 0x300
NLA_F_NESTED = 0x8000
# link attributes
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD = \
    1, 3, 10, 12, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFF_UP = 0x1
# address / route attributes
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC = 1, 4, 5, 6, 7
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE = 254, 4, 0, 255
RTN_TYPES = {"unicast": 1, "unreachable": 7}
# neighbour attributes
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80

_IFINFO = struct.Struct("=BxHiII")   # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")    # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_NLMSG = struct.Struct("=IHHII")     # len, type, flags, seq, pid
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type


def mac_for_ip(ip: str) -> str:
    """The MAC the CNI bridge plugin gives an IPv4 address: 0a:58 then the address's four
    bytes (containernetworking's hwaddr.GenerateHardwareAddr4). Stable for an address, so
    a permanent neighbour entry for it never goes stale."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def _mac(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _str(kind: int, s: str) -> bytes:
    return _attr(kind, s.encode() + b"\0")


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


class Rtnl:
    """One NETLINK_ROUTE socket in the netns current at creation. Not thread-safe."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def request(self, mtype: int, body: bytes, flags: int = 0) -> bytes | None:
        """Send one request and wait for its ack; raises OSError(errno) on a NACK.
        Returns the body of the last reply message before the ack (a GET's answer)."""
        reply = None
        self.seq += 1
        seq = self.seq
        self.sock.send(_NLMSG.pack(_NLMSG.size + len(body), mtype,
                                   NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSG.size <= len(data):
                length, t, _, s, _ = _NLMSG.unpack_from(data, off)
                if t == NLMSG_ERROR and s == seq:
                    code = struct.unpack_from("=i", data, off + _NLMSG.size)[0]
                    if code:
                        raise OSError(-code, f"netlink: {os.strerror(-code)}")
                    return reply
                if s == seq:
                    reply = data[off + _NLMSG.size:off + length]
                off += (length + 3) & ~3
                if length == 0:
                    break

    # ---- links ---------------------------------------------------------------------
    def veth(self, name: str, peer: str, peer_ns_fd: int, *, master: int | None = None,
             up: bool = True, peer_mac: str | None = None) -> None:
        """`ip link add NAME [master M] up type veth peer name PEER netns FD [address MAC]`.

        The peer stays down: asking for it up here fails with ENOTCONN (kernel 6.18) when
        it goes to another netns; set it up from a socket in that netns."""
        peer_body = _IFINFO.pack(0, 0, 0, 0, 0) \
            + _str(IFLA_IFNAME, peer) + _u32(IFLA_NET_NS_FD, peer_ns_fd)
        if peer_mac:
            peer_body += _attr(IFLA_ADDRESS, _mac(peer_mac))
        info = _str(IFLA_INFO_KIND, "veth") + _attr(
            IFLA_INFO_DATA | NLA_F_NESTED, _attr(VETH_INFO_PEER, peer_body))
        body = _IFINFO.pack(0, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0) \
            + _str(IFLA_IFNAME, name) + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        if master is not None:
            body += _u32(IFLA_MASTER, master)
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def bridge(self, name: str, mac: str | None = None) -> None:
        """`ip link add NAME [address MAC] type bridge` (EEXIST is fine). A bridge given
        its own address keeps it; without one it takes its lowest port's, which changes
        as ports come and go."""
        body = _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name) + _attr(
            IFLA_LINKINFO | NLA_F_NESTED, _str(IFLA_INFO_KIND, "bridge"))
        if mac:
            body += _attr(IFLA_ADDRESS, _mac(mac))
        try:
            self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def link_index(self, name: str) -> int | None:
        """ifindex of `name` in this socket's netns (RTM_GETLINK by name, no dump)."""
        try:
            reply = self.request(RTM_GETLINK, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return _IFINFO.unpack_from(reply)[2] if reply else None

    def set_up(self, index: int, master: int | None = None) -> None:
        """`ip link set X up [master M]`."""
        body = _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP)
        if master is not None:
            body += _u32(IFLA_MASTER, master)
        self.request(RTM_NEWLINK, body)

    def hairpin(self, index: int, on: bool = True) -> None:
        """`bridge link set dev X hairpin on` (AF_BRIDGE setlink with IFLA_BRPORT_MODE)."""
        body = _IFINFO.pack(socket.AF_BRIDGE, 0, index, 0, 0) + _attr(
            IFLA_PROTINFO | NLA_F_NESTED, _attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])))
        self.request(RTM_SETLINK, body)

    def del_link(self, index: int) -> None:
        self.request(RTM_DELLINK, _IFINFO.pack(0, 0, index, 0, 0))

    # ---- addresses and routes ------------------------------------------------------
    def add_addr(self, index: int, address: str, prefixlen: int) -> None:
        """`ip addr add A/P dev X` (EEXIST is fine)."""
        a = ipaddress.IPv4Address(address)
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, a.packed) \
            + _attr(IFA_ADDRESS, a.packed)
        try:
            self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def del_addr(self, index: int, address: str, prefixlen: int) -> None:
        """`ip addr del A/P dev X` (an address already gone is fine)."""
        a = ipaddress.IPv4Address(address)
        body = _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, a.packed) \
            + _attr(IFA_ADDRESS, a.packed)
        try:
            self.request(RTM_DELADDR, body)
        except OSError as e:
            if e.errno != errno.EADDRNOTAVAIL:
                raise

    def addresses(self) -> list[tuple[str, str]]:
        """(label, address) of every IPv4 address in this netns, as `ip -4 -o addr show`
        lists them (the label is the device's name, or its alias "eth0:1"): one dump."""
        self.seq += 1
        seq = self.seq
        body = _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)
        self.sock.send(_NLMSG.pack(_NLMSG.size + len(body), RTM_GETADDR,
                                   NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
        out: list[tuple[str, str]] = []
        while True:
            data = self.sock.recv(1 << 16)
            off = 0
            while off + _NLMSG.size <= len(data):
                length, t, _, s, _ = _NLMSG.unpack_from(data, off)
                if length < _NLMSG.size:
                    break
                if s == seq:
                    if t == NLMSG_DONE:
                        return out
                    if t == NLMSG_ERROR:
                        code = struct.unpack_from("=i", data, off + _NLMSG.size)[0]
                        raise OSError(-code, f"netlink: {os.strerror(-code)}")
                    if t == RTM_NEWADDR:
                        out.append(_addr_entry(data[off + _NLMSG.size:off + length]))
                off += (length + 3) & ~3

    @staticmethod
    def _route(dst: str, gateway: str | None, oif: int | None, prefsrc: str | None,
               rtype: str, priority: int | None) -> bytes:
        net = ipaddress.IPv4Network(dst, strict=False)
        body = _RTMSG.pack(socket.AF_INET, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC,
                           RT_SCOPE_UNIVERSE, RTN_TYPES[rtype], 0)
        if net.prefixlen:
            body += _attr(RTA_DST, net.network_address.packed)
        if gateway:
            body += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        if oif is not None:
            body += _u32(RTA_OIF, oif)
        if prefsrc:
            body += _attr(RTA_PREFSRC, ipaddress.IPv4Address(prefsrc).packed)
        if priority is not None:
            body += _u32(RTA_PRIORITY, priority)
        return body

    def add_route(self, dst: str, *, gateway: str | None = None, oif: int | None = None,
                  prefsrc: str | None = None, rtype: str = "unicast",
                  priority: int | None = None) -> None:
        """`ip route add [TYPE] DST [via GW] [dev OIF] [src S] [metric M]` (proto static,
        main table; EEXIST is fine)."""
        try:
            self.request(RTM_NEWROUTE, self._route(dst, gateway, oif, prefsrc, rtype, priority),
                         NLM_F_CREATE | NLM_F_EXCL)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def del_route(self, dst: str, *, rtype: str = "unicast", priority: int | None = None) -> None:
        """`ip route del [TYPE] DST [metric M]` (a missing route is fine)."""
        body = bytearray(self._route(dst, None, None, None, rtype, priority))
        body[5], body[6] = 0, RT_SCOPE_NOWHERE  # any protocol and scope, as `ip route del`
        try:
            self.request(RTM_DELROUTE, bytes(body))
        except OSError as e:
            if e.errno not in (errno.ESRCH, errno.ENOENT):
                raise


    # ---- neighbours -------------------------------------------------------------------
    def neigh_permanent(self, index: int, ip: str, mac: str) -> None:
        """`ip neigh replace IP lladdr MAC dev X nud permanent`. Permanent entries are
        exempt from the neighbour table's gc_thresh limits, which count the entries of
        all network namespaces together (1,024 by default)."""
        body = _NDMSG.pack(socket.AF_INET, index, NUD_PERMANENT, 0, 0) \
            + _attr(NDA_DST, ipaddress.IPv4Address(ip).packed) + _attr(NDA_LLADDR, _mac(mac))
        self.request(RTM_NEWNEIGH, body, NLM_F_CREATE | NLM_F_REPLACE)

    def neigh_del(self, index: int, ip: str) -> None:
        """`ip neigh del IP dev X` (a missing entry is fine)."""
        body = _NDMSG.pack(socket.AF_INET, index, 0, 0, 0) \
            + _attr(NDA_DST, ipaddress.IPv4Address(ip).packed)
        try:
            self.request(RTM_DELNEIGH, body)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ESRCH):
                raise


def _addr_entry(msg: bytes) -> tuple[str, str]:
    """(label, local address) of one RTM_NEWADDR message (ifaddrmsg, then attributes)."""
    attrs: dict[int, bytes] = {}
    off = _IFADDR.size
    while off + 4 <= len(msg):
        n, kind = struct.unpack_from("=HH", msg, off)
        if n < 4:
            break
        attrs[kind & ~NLA_F_NESTED] = msg[off + 4:off + n]
        off += (n + 3) & ~3
    ip = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or b""
    label = attrs.get(IFA_LABEL, b"").split(b"\0", 1)[0].decode(errors="replace")
    return label, str(ipaddress.IPv4Address(ip)) if len(ip) == 4 else ""


def index(name: str) -> int | None:
    """ifindex of `name` in the calling thread's netns (one ioctl, no dump)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


# ---- per-thread netns switching ----------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET)")


def _self_ns_path() -> str:
    return f"/proc/self/task/{threading.get_native_id()}/ns/net"


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the block with the calling thread (only) in the netns at `path`."""
    home = os.open(_self_ns_path(), os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def remove_netns(name: str) -> None:
    """`ip netns del NAME`: detach the bind mount and remove the file (gone is fine)."""
    path = os.path.join(NETNS_DIR, name)
    if _libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
        e = ctypes.get_errno()
        if e == errno.ENOENT:
            return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def new_netns(name: str) -> tuple[int, Rtnl]:
    """`ip netns add NAME` done on the calling thread, which then comes back home.

    Returns an fd of the new netns and an Rtnl socket living in it (both the caller's to
    close). /run/netns must already be a mount point (netlink.create_netns does that once).
    """
    path = os.path.join(NETNS_DIR, name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    home = os.open(_self_ns_path(), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            err = OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise err
        try:
            me = _self_ns_path()
            if _libc.mount(me.encode(), path.encode(), None, _MS_BIND, None) != 0:
                raise OSError(ctypes.get_errno(), f"mount {path}")
            ns_fd = os.open(me, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sock = Rtnl()
            except OSError:
                os.close(ns_fd)
                raise
        finally:
            _setns(home)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # fails harmlessly if still mounted; remove_netns handles that
        raise
    finally:
        os.close(home)
    return ns_fd, sock
