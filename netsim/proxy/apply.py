"""The iptables applier: the thin, impure half of "render, then apply".

One backend per process, chosen once: `iptables-legacy*` when installed, else plain
`iptables*`. Mixing the legacy and nft backends in one netns is the classic kube-proxy bug
(rules in both, each invisible to the other's `iptables-save`), and python-iptables (used by
`netsim proxy stats`) only reads legacy tables — hence legacy first.

Every command runs either in the current netns (the node agent already lives in its node's
netns) or in a named one via `ip netns exec`. Both paths refuse to touch the root netns
(`RootNetnsError`): netsim never changes the machine's own firewall.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field

from netsim.proxy import nftnl
from netsim.proxy.iptables import CANARY_CHAINS, jump_rules, parse_chains

NETNS_DIR = "/var/run/netns"


class RootNetnsError(RuntimeError):
    """Raised instead of running iptables in the machine's own (root) network namespace."""


class RestoreError(RuntimeError):
    """iptables-restore rejected the text (the caller falls back to a full sync)."""


def _ns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def root_netns_inode() -> int | None:
    """The netns of PID 1: the machine's own network (the control plane lives there too)."""
    return _ns_inode("/proc/1/ns/net")


def current_netns_inode() -> int | None:
    return _ns_inode("/proc/self/ns/net")


def named_netns_inodes() -> set[int]:
    """Inodes of every named netns (`ip netns` / pyroute2 bind mounts)."""
    out: set[int] = set()
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return out
    for n in names:
        ino = _ns_inode(os.path.join(NETNS_DIR, n))
        if ino is not None:
            out.add(ino)
    return out


def check_not_root(netns: str | None, tool: str = "iptables") -> None:
    """Refuse when `netns` (None: this process' netns) may be the machine's own netns.

    /proc/1/ns/net is not always readable (containers, sandboxes), so the test is positive:
    the target must be a *named* netns, and not PID 1's nor (when this process is not in a
    named netns, i.e. probably in the root one) our own."""
    root = root_netns_inode()
    named = named_netns_inodes()
    mine = current_netns_inode()
    if netns is None:
        if mine is None or mine == root or mine not in named:
            raise RootNetnsError(f"refusing to run {tool} outside a netsim network namespace "
                                 "(this looks like the root network namespace)")
        return
    ino = _ns_inode(os.path.join(NETNS_DIR, netns))
    if ino is None:
        raise RootNetnsError(f"network namespace {netns!r} does not exist")
    if ino == root or (mine not in named and ino == mine):
        raise RootNetnsError(f"network namespace {netns!r} is the root network namespace")


def check_in_node_netns(netns_name: str) -> None:
    """The agent's start guard: this process must live in exactly the node's netns."""
    check_not_root(None)
    want = _ns_inode(os.path.join(NETNS_DIR, netns_name))
    mine = current_netns_inode()
    if want is None or want != mine:
        raise RootNetnsError(
            f"kube-proxy must run inside netns {netns_name!r} (this process is in net:[{mine}])")


def backend_prefix() -> str:
    """`iptables-legacy` when its restore tool exists, else `iptables` (decided per call site
    once; the applier stores it)."""
    if shutil.which("iptables-legacy-restore") and shutil.which("iptables-legacy"):
        return "iptables-legacy"
    return "iptables"


@dataclass
class Iptables:
    """iptables / -save / -restore of one backend, in one netns (None: the current one)."""

    netns: str | None = None
    prefix: str = field(default_factory=backend_prefix)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_not_root(self.netns)

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [tool, *args]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def run(self, *args: str, input: str | None = None, tool: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        argv = self._argv(tool or self.prefix, *args)
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RestoreError(f"{' '.join(argv[:4])}... failed: {p.stderr.strip()}")
        return p

    # ---- whole-table operations -----------------------------------------------------------
    def restore(self, text: str) -> float:
        """One `iptables-restore --noflush --counters`; returns its wall time in seconds."""
        t0 = time.perf_counter()
        p = self.run("-w", "--noflush", "--counters", input=text, tool=self.prefix + "-restore")
        dt = time.perf_counter() - t0
        self.timings["restore"] = dt
        if p.returncode != 0:
            raise RestoreError(p.stderr.strip() or f"exit {p.returncode}")
        return dt

    def save(self, table: str | None = None, counters: bool = False) -> str:
        args = []
        if counters:
            args.append("-c")
        if table:
            args += ["-t", table]
        return self.run(*args, tool=self.prefix + "-save", check=True).stdout

    def nat_chains(self) -> set[str]:
        return parse_chains(self.save("nat"), "nat")

    # ---- out-of-band bits (upstream does these with iptables -N / -C / -I) -----------------
    def ensure_chain(self, table: str, chain: str) -> None:
        """`-N`; "Chain already exists" is fine (one call, not a list of a long chain)."""
        self.run("-w", "-t", table, "-N", chain)

    def ensure_jump_rules(self) -> int:
        """Jump rules from the built-in chains, idempotently (`-C`, then `-I` if missing).
        Returns how many were inserted."""
        inserted = 0
        made: set[tuple[str, str]] = set()
        for table, chain, args in jump_rules():
            target = args[-1]
            if (table, target) not in made:
                self.ensure_chain(table, target)
                made.add((table, target))
            c = self.run("-w", "-t", table, "-C", chain, *args)
            if c.returncode != 0:
                p = self.run("-w", "-t", table, "-I", chain, *args)
                if p.returncode != 0:
                    raise RestoreError(f"iptables -t {table} -I {chain}: {p.stderr.strip()}")
                inserted += 1
        return inserted

    def ensure_canaries(self) -> None:
        for table, chain in CANARY_CHAINS:
            self.ensure_chain(table, chain)

    def canaries_present(self) -> bool:
        """False when any canary chain is gone: someone flushed the tables; resync fully.
        Legacy tables of this very netns are read in-process with python-iptables (~50 µs
        for the three): kube-proxy looks every 2 s on every node, and three `iptables -L`
        forked from a node agent's large process were ~1 ms of CPU each."""
        if self.netns is None and self.prefix == "iptables-legacy":
            with contextlib.suppress(Exception):  # no python-iptables or libiptc: exec
                return _canaries_iptc()
        return all(self.run("-w", "-t", table, "-n", "-L", chain).returncode == 0
                   for table, chain in CANARY_CHAINS)


# (netns inode, table) -> the table's fingerprint when its canary was last seen there
_CANARY_SEEN: dict[tuple[int, str], bytes] = {}


def _canaries_iptc() -> bool:
    """Each table's canary, read with python-iptables, which copies and parses the whole
    table: at 5,000 endpoints the nat table's ~11 ms, every 2 s on every node. A table whose
    fingerprint (table_fingerprint) is the one it had when its canary was last seen is not
    read again: a chain deleted or a table flushed changes its entry count and size."""
    from netsim.net import pyiptables  # noqa: PLC0415 - optional

    iptc = None
    ns = os.stat("/proc/thread-self/ns/net").st_ino
    for table, chain in CANARY_CHAINS:
        before = table_fingerprint(table)
        if before is not None and _CANARY_SEEN.get((ns, table)) == before:
            continue
        iptc = iptc or pyiptables.load()
        t = iptc.Table(table, autocommit=False)
        t.refresh()
        if not t.is_chain(chain):
            _CANARY_SEEN.pop((ns, table), None)
            return False
        if before is not None and table_fingerprint(table) == before:  # unchanged meanwhile
            _CANARY_SEEN[(ns, table)] = before
    return True


_libc = ctypes.CDLL(None, use_errno=True)
_IPT_SO_GET_INFO = 64  # IPT_BASE_CTL: struct ipt_getinfo in, filled in by the kernel
_GETINFO_SIZE = 84  # name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size


def table_fingerprint(table: str) -> bytes | None:
    """A legacy table's header in this thread's netns (IPT_SO_GET_INFO: its hooks' entry
    offsets, entry count and size, without copying its rules), or None when it cannot be
    read. getsockopt is called through libc: this one reads the table's name from the
    buffer it fills, which Python's socket.getsockopt cannot pass."""
    buf = ctypes.create_string_buffer(table.encode()[:31], _GETINFO_SIZE)
    size = ctypes.c_uint(_GETINFO_SIZE)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            if _libc.getsockopt(s.fileno(), socket.IPPROTO_IP, _IPT_SO_GET_INFO, buf,
                               ctypes.byref(size)) != 0:
                return None
    except OSError:
        return None
    return buf.raw[32:_GETINFO_SIZE]


def conntrack_delete(*args: str, netns: str | None = None) -> bool:
    """`conntrack -D ARGS`; True when entries were deleted. Missing tool or no match: False."""
    if not shutil.which("conntrack"):
        return False
    argv = ["conntrack", "-D", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return p.returncode == 0


_NFPROTO = {"ip": 2, "ip6": 10, "inet": 1, "arp": 3, "bridge": 7, "netdev": 5}


def nft_table_names(family: str = "ip", netns: str | None = None) -> set[str]:
    """Names of the nftables tables of `family` in `netns` (None: this one), by one
    NFT_MSG_GETTABLE dump (pyroute2, imported on first use) instead of `nft list tables`."""
    from pyroute2.nftables.main import NFTables  # noqa: PLC0415 (~0.3 s, only here)

    from netsim.net.rtnl import in_netns  # noqa: PLC0415

    check_not_root(netns, "nft")
    with contextlib.ExitStack() as stack:
        if netns:
            stack.enter_context(in_netns(os.path.join(NETNS_DIR, netns)))
        nf = NFTables(nfgen_family=_NFPROTO[family])  # the socket belongs to the netns current at creation
    try:
        return {t.get_attr("NFTA_TABLE_NAME") for t in nf.get_tables()}
    finally:
        nf.close()


class NftError(RuntimeError):
    """`nft -f` rejected a transaction (nothing of it was applied: nft is atomic)."""


NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSG_ERROR = 2
NLM_F_ACK_TLVS = 0x200
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
# texts above this go to `nft -f` (a full sync: its cache is the smaller part of its cost)
NETLINK_TEXT_MAX = 256 * 1024


def send_nft_batch(batch: nftnl.Batch, netns: str | None = None) -> None:
    """One nf_tables batch (one transaction, as `nft -f` sends it) on a netlink socket of
    `netns` (None: this one). The last message asks for an ack, which the kernel queues
    (after any errors) once it committed or aborted the whole batch, inside sendmsg().
    Raises NftError (nothing applied) with nft's kind of message when it was refused, and
    when the socket failed (applied or not: unknown, so the syncer resyncs fully)."""
    check_not_root(netns, "nft")
    try:
        _send_nft_batch(batch, netns)
    except OSError as e:  # the socket itself failed: whether the kernel took it is unknown
        raise NftError(f"netlink: {e}") from e


def _send_nft_batch(batch: nftnl.Batch, netns: str | None) -> None:
    from netsim.net.rtnl import in_netns  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        if netns:
            stack.enter_context(in_netns(os.path.join(NETNS_DIR, netns)))
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_NETFILTER)
    with sock:
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        seq = int(time.time()) & 0x3FFFFFFF
        data = batch.encode(seq)
        if len(data) > 128 * 1024:
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 2 * len(data))
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20)  # room for many errors
        sock.sendto(data, (0, 0))
        first, last = seq + 1, seq + len(batch.messages)
        pending = {last}
        errors: list[str] = []
        sock.setblocking(False)
        while pending:
            try:
                buf = sock.recv(1 << 20)
            except BlockingIOError:
                # sendmsg() returned after the kernel handled the batch; wait a little
                # anyway rather than misread a slow reply as a lost one
                if not select.select([sock], [], [], 5.0)[0]:
                    break
                continue
            i = 0
            while i + 16 <= len(buf):
                ln, typ, flags, mseq, _pid = struct.unpack_from("<IHHII", buf, i)
                if typ == NLMSG_ERROR and ln >= 20:
                    err = -struct.unpack_from("<i", buf, i + 16)[0]
                    pending.discard(mseq)
                    if err:
                        errors.append(_batch_error(batch, mseq - first, err,
                                                   buf[i + 36:i + ln] if flags & NLM_F_ACK_TLVS
                                                   else b""))
                i += max((ln + 3) & ~3, 16)
            if errors:
                break
        if errors:
            raise NftError("\n".join(errors)[:2000])
        if pending:
            raise NftError(f"no answer from the kernel to a batch of {len(batch.messages)} "
                           "nf_tables messages")


def _batch_error(batch: nftnl.Batch, k: int, err: int, tlvs: bytes) -> str:
    """nft's words: "Error: Could not process rule: No such file or directory" + the line."""
    what = os.strerror(err)
    i = 0
    while i + 4 <= len(tlvs):
        ln, typ = struct.unpack_from("<HH", tlvs, i)
        if typ == 1 and ln > 4:  # NLMSGERR_ATTR_MSG
            what += f" ({tlvs[i + 4:i + ln].rstrip(bytes(1)).decode(errors='replace')})"
        i += max((ln + 3) & ~3, 4)
    line = batch.lines[k] if 0 <= k < len(batch.lines) else "(the transaction)"
    return f"Error: Could not process rule: {what}\n{line}"


@dataclass
class Nft:
    """`nft` for the kube-proxy table in one netns (None: the current one); never the root
    netns. Transactions go in as text on stdin (`nft -f -`): nft 1.0.6's JSON input
    rejects some of kube-proxy's maps."""

    netns: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # small transactions nftnl can encode go to the kernel as one netlink batch (see
    # netsim/proxy/nftnl.py: nft 1.0.6 dumps the whole ruleset's chains first);
    # NETSIM_NFT_NETLINK=0 sends every transaction through `nft -f`
    netlink: bool = field(default_factory=lambda: os.environ.get("NETSIM_NFT_NETLINK") != "0")
    last_via: str = ""  # "netlink" or "nft -f": how the last transaction went in

    def __post_init__(self) -> None:
        check_not_root(self.netns, "nft")

    def _argv(self, *args: str) -> list[str]:
        argv = ["nft", *args]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self._argv(*args), input=input, capture_output=True, text=True,
                              timeout=300)

    def apply(self, text: str) -> float:
        """One transaction; returns its wall time in seconds. Empty text: nothing to do."""
        if not text:
            return 0.0
        t0 = time.perf_counter()
        batch = None
        if self.netlink and len(text) <= NETLINK_TEXT_MAX:
            try:
                batch = nftnl.encode(text)
            except nftnl.Unsupported:
                batch = None
        if batch is not None:
            self.last_via = "netlink"
            send_nft_batch(batch, self.netns)
            dt = time.perf_counter() - t0
            self.timings["apply"] = dt
            return dt
        return self.apply_nft(text, t0)

    def apply_nft(self, text: str, t0: float | None = None) -> float:
        """One transaction through `nft -f -`, whatever it holds."""
        if t0 is None:
            t0 = time.perf_counter()
        self.last_via = "nft -f"
        p = self.run("-f", "-", input=text)
        dt = time.perf_counter() - t0
        self.timings["apply"] = dt
        if p.returncode != 0:
            raise NftError(p.stderr.strip()[:2000] or f"nft exit {p.returncode}")
        return dt

    def list_table(self, family: str = "ip", table: str = "kube-proxy") -> str | None:
        """`nft list table`, or None when the table does not exist."""
        p = self.run("list", "table", family, table)
        return p.stdout if p.returncode == 0 else None

    def table_exists(self, family: str = "ip", table: str = "kube-proxy") -> bool:
        """Used like iptables mode's canary chains (every 2 s, and before each policy
        sync), so it must stay cheap whatever the table holds: nft 1.0.6's `list tables`
        fetches its whole cache (~2-3 s of CPU at 5,000 services), one netlink dump of
        the table objects takes ~1 ms."""
        return table in nft_table_names(family, self.netns)
