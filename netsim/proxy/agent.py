"""kube-proxy for one node: watch Services + EndpointSlices, render, apply.

The mode comes from the cluster's config (`cluster up --proxy-mode`): `iptables` (default:
one `iptables-restore` per sync, below) or `nftables` (one `nft -f -` transaction per sync
into table `ip kube-proxy`, see `NftSyncer`) or `ipvs` (virtual servers, ipsets and a
constant set of iptables rules, see `netsim/proxy/ipvs_apply.py`; on a kernel without
IP_VS it is refused with an error in the log and a Warning event on the Node). Everything
else is shared by all modes.

Runs in the node agent process, which lives inside the node's netns (`start()` refuses to
run anywhere else, so the machine's own firewall is never touched). Like upstream:

- Services and EndpointSlices come from netsim.machinery informers (list, watch, relist on
  410 Gone, one backoff); their handlers only wake the sync loop, which renders from the
  informers' caches. Nothing is written before both caches have synced (upstream waits for
  its service and endpointslice configs too), so a ruleset with every Service missing is
  never restored;
- debounce bursts of changes (50 ms), then sync, at most as often as upstream's
  BoundedFrequencyRunner lets it (minSyncPeriod 1 s, a burst of 2; IPVS 0 s, SyncLimiter):
  the first sync, and any sync after a failed restore or a vanished KUBE-PROXY-CANARY
  chain, is full; the others are partial
  (KEP-3453: only the per-service chains of services whose Service or slices changed are
  rewritten, the top-level chains every time, stale chains deleted); what changed is found
  by comparing the caches' resourceVersions with those of the last good sync, so a change
  is never lost between a handler and a sync;
- one `iptables-restore --noflush --counters` per sync;
- jump rules from the built-in chains ensured with `-C`/`-I`, canaries with `-N`;
- every NodePort held open (TCP listen / UDP bind on 0.0.0.0) by a small child process
  named `kube-proxy`, so nothing else on the node can take the port and `netstat -ntpl`
  shows who owns it, as in the seed;
- after each sync that changed a UDP service's serving endpoints, UDP conntrack entries
  that point at no serving endpoint deleted (`netsim/proxy/conntrack.py`: a client sending
  from one source port would otherwise keep going to a dead pod for as long as it keeps
  sending). The cleanup runs on a thread of its own (`UdpCleanup`), never in the sync loop:
  it lists the table with a `conntrack` process, which on a loaded machine takes seconds,
  and the next sync (an endpoint taken out) must not wait for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from netsim.machinery import InformerFactory, SharedInformer
from netsim.proxy import conntrack, ipvs, nftables
from netsim.proxy.apply import (
    Iptables,
    Nft,
    NftError,
    RestoreError,
    check_in_node_netns,
)
from netsim.proxy.iptables import (
    RenderCache,
    RenderedChains,
    RenderOptions,
    render_full,
    render_partial,
)
from netsim.proxy.ipvs_apply import IpvsKernel, IpvsSyncer, unsupported_reason
from netsim.proxy.model import (
    SERVICE_NAME_LABEL,
    ProxySnapshot,
    Rejected,
    SnapshotCache,
    go_quote,
)

log = logging.getLogger("netsim.proxy")

DEBOUNCE_SECONDS = 0.05
# Upstream's minSyncPeriod (iptables and nftables: 1 s; IPVS: 0) with its
# BoundedFrequencyRunner's burst of 2: a change after a quiet spell syncs at once, a stream
# of changes (a large rollout's EndpointSlice writes) syncs at most once a second.
MIN_SYNC_SECONDS = {"iptables": 1.0, "nftables": 1.0, "ipvs": 0.0}
BURST_SYNCS = 2
CANARY_INTERVAL = 2.0
RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0  # failed syncs back off 1, 2, 4 ... 30 s (upstream: minSyncPeriod..)
REJECTED_REASON = "Rejected"  # the Warning event on an object left out of the rules
RESOURCES = ("services", "endpointslices")  # what kube-proxy follows

# sysctls upstream kube-proxy sets (or requires) on a node; all are per-netns.
NODE_SYSCTLS = (
    ("net.ipv4.conf.all.route_localnet", "1"),  # localhost NodePorts (127.0.0.1:NP)
    ("net.bridge.bridge-nf-call-iptables", "1"),  # bridged pod->pod traffic sees KUBE-*
    ("net.netfilter.nf_conntrack_tcp_timeout_established", "86400"),  # conntrack.go
    ("net.netfilter.nf_conntrack_tcp_timeout_close_wait", "3600"),
)


def set_thread_name(name: str) -> None:
    """prctl(PR_SET_NAME) on the calling thread: `ps -T`/`top -H` show it (no dependency)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)


def set_sysctls() -> None:
    for key, value in NODE_SYSCTLS:
        with contextlib.suppress(OSError):
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)


# --- the sync engine (also used by the benchmark) -------------------------------------------

@dataclass
class SyncResult:
    full: bool
    seconds: float  # render + restore (+ iptables-save on a first/recovery sync)
    restore_seconds: float
    text_bytes: int
    fell_back: bool = False


@dataclass
class Syncer:
    """Snapshot -> kernel, with the full/partial decision and the stale-chain bookkeeping.

    `known_chains` is the set of nat chains we know exist: read with iptables-save on the
    first (or a recovery) sync, then kept up to date from the texts we restored, so a partial
    sync costs one restore and no save."""

    ipt: Iptables
    options: RenderOptions = field(default_factory=RenderOptions)
    known_chains: set[str] | None = None
    need_setup: bool = True  # jump rules + canaries
    force_full: bool = True
    last_text: str = ""
    cache: RenderCache = field(default_factory=RenderCache)  # each service's lines

    def sync(self, snapshot: ProxySnapshot, changed: set[str] | None) -> SyncResult:
        t0 = time.perf_counter()
        full = changed is None or self.force_full or self.known_chains is None
        try:
            res = self._sync(snapshot, None if full else changed, t0)
        except RestoreError as e:
            self.force_full = self.need_setup = True
            self.known_chains = None
            if full:
                raise
            log.warning("partial restore failed (%s); doing a full sync", e)
            res = self._sync(snapshot, None, t0)
            res.fell_back = True
        return res

    def _sync(self, snapshot: ProxySnapshot, changed: set[str] | None, t0: float) -> SyncResult:
        if changed is None:
            if self.need_setup:
                self.ipt.ensure_canaries()
                self.ipt.ensure_jump_rules()
                self.need_setup = False
            if self.known_chains is None:
                self.known_chains = self.ipt.nat_chains()
            chains = RenderedChains()
            text = render_full(snapshot, self.options, existing_chains=self.known_chains,
                               chains=chains, cache=self.cache)
        else:
            chains = RenderedChains()
            text = render_partial(snapshot, changed, self.known_chains or set(), self.options,
                                  chains=chains)
        try:
            restore_s = self.ipt.restore(text)
        except RestoreError:
            self.known_chains = None
            raise
        deleted, declared = chains.deleted, chains.declared
        if changed is None:
            self.known_chains = declared - deleted
        else:
            self.known_chains = ((self.known_chains or set()) | declared) - deleted
        self.force_full = False
        self.last_text = text
        return SyncResult(changed is None, time.perf_counter() - t0, restore_s, len(text))

    def lost_state(self) -> bool:
        """True when a KUBE-PROXY-CANARY chain is gone (tables flushed): resync fully."""
        return self.known_chains is not None and not self.ipt.canaries_present()

    def reset(self) -> None:
        self.need_setup = True
        self.known_chains = None


STALE_CHAIN_DELAY = 1.0  # upstream: stale chains are deleted once they are >1 s old


@dataclass
class NftSyncer:
    """nftables mode: snapshot -> one `nft -f` transaction per sync (upstream proxier.go).

    `state` is what the table holds (chain/set names, map elements): read from the kernel
    on the first (or a recovery) sync — names only, so that sync flushes and refills the
    maps — then kept up to date from the transactions that succeeded, so a partial sync
    is one `nft -f` with only the changed elements and chains. Service chains nobody needs
    any more are flushed by the sync and deleted by a later one (>1 s), as upstream."""

    nft: Nft
    options: nftables.NftOptions = field(default_factory=nftables.NftOptions)
    state: nftables.NftState | None = None
    need_setup: bool = True  # first sync of this process: re-create the base chains
    force_full: bool = True
    last_text: str = ""
    stale: dict[str, float] = field(default_factory=dict)

    @property
    def stale_pending(self) -> bool:
        return bool(self.stale)

    def sync(self, snapshot: ProxySnapshot, changed: set[str] | None) -> SyncResult:
        t0 = time.perf_counter()
        full = changed is None or self.force_full or self.state is None
        try:
            res = self._sync(snapshot, None if full else changed, t0)
        except NftError as e:
            self.force_full = True
            self.state = None
            if full:
                raise RestoreError(str(e)) from e
            log.warning("partial nft transaction failed (%s); doing a full sync", e)
            try:
                res = self._sync(snapshot, None, t0)
            except NftError as e2:
                raise RestoreError(str(e2)) from e2
            res.fell_back = True
        return res

    def _delete_stale(self) -> None:
        cutoff = time.monotonic() - STALE_CHAIN_DELAY
        due = {c for c, t in self.stale.items() if t <= cutoff}
        if not due:
            return
        for c in due:
            del self.stale[c]
        try:
            self.nft.apply(nftables.render_delete_chains(due))
        except NftError as e:
            # still referenced or already gone: a full sync recomputes what is stale
            log.warning("deleting %d stale nftables chains failed (%s); full resync",
                        len(due), e)
            self.state = None
            self.force_full = True
            return
        if self.state is not None:
            self.state.forget_chains(due)

    def _sync(self, snapshot: ProxySnapshot, changed: set[str] | None, t0: float) -> SyncResult:
        self._delete_stale()
        if self.state is None:
            changed = None
            listing = self.nft.list_table()
            self.state = nftables.parse_listing(listing) if listing else nftables.NftState()
            self.stale.clear()
        opts = self.options
        if opts.recreate_base_chains != self.need_setup:
            opts = dataclasses.replace(opts, recreate_base_chains=self.need_setup)
        r = nftables.render(snapshot, opts, changed=changed, existing=self.state)
        try:
            # a first sync may come in stages (nftables.STAGE_SERVICES); a failed stage
            # leaves state None, so the next sync is one full transaction over what is there
            apply_s = sum(self.nft.apply(t) for t in r.stages) if r.stages \
                else self.nft.apply(r.text)
        except NftError:
            self.state = None
            raise
        now = time.monotonic()
        # still-stale chains keep their first time; a chain in use again is not stale
        self.stale = {c: self.stale.get(c, now) for c in r.stale_chains}
        self.state = r.advance(self.state)  # a partial sync updates it in place
        self.need_setup = False
        self.force_full = False
        self.last_text = r.text
        return SyncResult(r.full, time.perf_counter() - t0, apply_s, len(r.text))

    def lost_state(self) -> bool:
        """True when table ip kube-proxy is gone (someone ran `nft flush ruleset`...)."""
        return self.state is not None and not self.nft.table_exists()

    def reset(self) -> None:
        self.state = None
        self.force_full = True


# --- NodePort holder --------------------------------------------------------------------------

# Ends on stdin EOF, i.e. when the agent exits or is killed (the pipe closes with it).
_HOLDER_CODE = r"""
import socket, sys
socks = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 3:
        continue
    op, proto, port = parts[0], parts[1], int(parts[2])
    key = (proto, port)
    if op == "open" and key not in socks:
        try:
            s = socket.socket(socket.AF_INET,
                              socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            if proto == "tcp":
                s.listen(128)
            socks[key] = s
        except OSError as e:
            print("error", e.strerror or e, flush=True)
            continue
    elif op == "close" and key in socks:
        socks.pop(key).close()
    print("ok", flush=True)
"""


class PortHolder:
    """A child process (argv[0] `kube-proxy`) holding the node's NodePorts open.

    A child rather than sockets in the agent itself only so that `netstat -ntpl` (which
    prints argv[0]) says `kube-proxy` like on a real node, not `python3`."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.held: set[tuple[str, int]] = set()

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            exe = os.path.realpath(sys.executable)
            # argv[0] is not a path, so tell Python where its stdlib is (PYTHONHOME).
            env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                   "PYTHONHOME": sys.base_prefix}
            self.proc = subprocess.Popen(["kube-proxy", "-S", "-c", _HOLDER_CODE],
                                         executable=exe, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, bufsize=1,
                                         close_fds=True, env=env, cwd="/")
            self.held = set()
        return self.proc

    def _cmd(self, op: str, proto: str, port: int) -> str:
        p = self._start()
        assert p.stdin and p.stdout
        p.stdin.write(f"{op} {proto} {port}\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    def update(self, wanted: set[tuple[str, int]]) -> None:
        if not wanted and self.proc is None:
            return
        if self.proc is not None and self.proc.poll() is not None:
            self.held = set()
        for proto, port in sorted(self.held - wanted):
            self._cmd("close", proto, port)
            self.held.discard((proto, port))
        for proto, port in sorted(wanted - self.held):
            reply = self._cmd("open", proto, port)
            if reply == "ok":
                self.held.add((proto, port))
            else:
                log.warning("can't hold nodePort %s/%d open: %s", proto, port, reply)

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=2)
            with contextlib.suppress(Exception):
                self.proc.kill()
            self.proc = None


# --- stale UDP conntrack entries ---------------------------------------------------------------

class UdpCleanup:
    """The stale UDP conntrack cleanup of every sync, on its own thread, on the latest
    snapshot offered (older ones are skipped: the cleanup is level-triggered).

    Upstream runs it at the end of each sync, in process over netlink (milliseconds).
    Here it starts `conntrack -L`, which under load takes one to three seconds: in the sync
    loop that held back the next sync, so an endpoint taken out of the Service (a pod
    terminating) stayed in the rules of that node past a 2 s preStop sleep and its new
    connections were refused (issue #18)."""

    def __init__(self, netns: str | None, cleaner: conntrack.StaleEntryCleaner | None = None):
        self.netns = netns
        self.cleaner = cleaner or conntrack.StaleEntryCleaner()
        self._cv = threading.Condition()
        self._pending: ProxySnapshot | None = None
        self._stopped = False
        self._busy = False
        self._thread: threading.Thread | None = None

    def offer(self, snapshot: ProxySnapshot) -> None:
        with self._cv:
            if self._stopped:
                return
            self._pending = snapshot
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="kube-proxy-conntrack")
                self._thread.start()
            self._cv.notify()

    def idle(self, timeout: float) -> bool:
        """True once every offered snapshot has been cleaned (tests)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._pending = None
            self._cv.notify_all()

    def _loop(self) -> None:
        set_thread_name("kube-proxy-ct")
        while True:
            with self._cv:
                while self._pending is None and not self._stopped:
                    self._cv.wait()
                if self._stopped:
                    return
                snap, self._pending, self._busy = self._pending, None, True
            try:
                self.cleaner.clean(snap, netns=self.netns)
            except Exception as e:  # a stuck or missing tool must not end the cleanup
                log.warning("conntrack cleanup: %s", e)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()


# --- the agent ---------------------------------------------------------------------------------

class SyncLimiter:
    """The token bucket upstream's BoundedFrequencyRunner runs syncs through: `burst`
    syncs at once, then one per `period` seconds."""

    def __init__(self, period: float, burst: int = BURST_SYNCS, clock=time.monotonic):
        self.period, self.burst, self.clock = period, burst, clock
        self._tokens, self._last = float(burst), clock()

    def _refill(self) -> None:
        now = self.clock()
        if self.period <= 0:
            self._tokens = float(self.burst)
        else:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) / self.period)
        self._last = now

    def wait_time(self) -> float:
        """Seconds until a sync may run (0: now)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) * self.period

    def take(self) -> None:
        self._refill()
        self._tokens = max(0.0, self._tokens - 1)


class _Stopped(threading.Event):
    """`stopped.set()` is how the node agent ends kube-proxy; it also wakes the sync loop
    and stops the informers, so a stop is honoured at once, not at the next timeout."""

    def __init__(self, on_set) -> None:
        super().__init__()
        self._on_set = on_set

    def set(self) -> None:
        first = not self.is_set()
        super().set()
        if first:
            self._on_set()


class KubeProxy:
    """kube-proxy for one node. `start()` returns at once; set `stopped` to end it.

    `factory`: an InformerFactory shared with other consumers in the process (one watch
    per resource); by default kube-proxy makes its own."""

    def __init__(self, client, cfg, node, *, netns: str | None = None,
                 options: RenderOptions | None = None, check_netns: bool = True,
                 hold_node_ports: bool = True, factory: InformerFactory | None = None):
        self.client = client
        self.cfg = cfg
        self.node = node
        self.netns = netns  # None: this process' netns (the node agent's case)
        self.options = options or RenderOptions()
        self.check_netns = check_netns
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.factory = factory or InformerFactory(client)
        self.informers: dict[str, SharedInformer] = {
            r: self.factory.informer(r) for r in RESOURCES}
        # Handlers only wake the loop: the sync reads the caches and finds what changed.
        self._handlers = [(inf, inf.add_handler(
            on_add=self._on_event, on_update=lambda old, new: self._wake.set(),
            on_delete=self._on_event)) for inf in self.informers.values()]
        self._retained = False
        self.stopped = _Stopped(self._on_stop)
        # (resource, "ns/name") -> (version, "ns/service") as of the last good sync
        self._synced_versions: dict[tuple[str, str], tuple[object, str | None]] = {}
        self._need_full = True
        self.ports = PortHolder() if hold_node_ports else None
        self.syncer: Syncer | NftSyncer | IpvsSyncer | None = None
        self.mode = (getattr(cfg, "proxy_mode", None) or "iptables").lower()
        self.last_snapshot: ProxySnapshot | None = None
        # each Service's part of the last snapshot: an unchanged one is not read again
        self._snapshot_cache = SnapshotCache()
        self.limiter = SyncLimiter(MIN_SYNC_SECONDS.get(self.mode, 1.0))
        self.syncs = 0
        self.last_result: SyncResult | None = None
        self.failures = 0  # consecutive failed syncs (the retry backs off with it)
        # (resource, "ns/name") -> message already logged and reported as an event
        self._reported: dict[tuple[str, str], str] = {}
        self.udp_cleanup = UdpCleanup(netns)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode not in ("iptables", "nftables", "ipvs"):
            self._refuse_mode()
            return
        if self.mode == "ipvs":
            why = unsupported_reason(self.netns)
            if why:
                self._refuse_mode(why)
                return
        if self.check_netns and self.netns is None:
            check_in_node_netns(self.cfg.node_netns(self.node.name))  # raises RootNetnsError
        if self.mode == "nftables":
            cidr = getattr(self.cfg, "service_cidr", None)
            self.syncer = NftSyncer(Nft(netns=self.netns), nftables.NftOptions(
                masquerade_mark=self.options.masquerade_mark,
                masquerade_all=self.options.masquerade_all,
                nodeport_addresses=self.options.nodeport_addresses,
                service_cidrs=(cidr,) if cidr else ()))
            backend = "nft -f"
        elif self.mode == "ipvs":
            ipt = Iptables(netns=self.netns)
            mark = int(self.options.masquerade_mark, 16)
            self.syncer = IpvsSyncer(IpvsKernel(netns=self.netns), ipt, ipvs.IpvsOptions(
                masquerade_bit=mark.bit_length() - 1,
                masquerade_all=self.options.masquerade_all,
                random_fully=self.options.random_fully))
            backend = f"ipvsadm -R, ipset restore, {ipt.prefix}"
        else:
            ipt = Iptables(netns=self.netns)
            self.syncer = Syncer(ipt, self.options)
            backend = ipt.prefix
        if self.netns is None:
            set_sysctls()
        log.info("kube-proxy (%s mode, %s) on node %s", self.mode, backend, self.node.name)
        with self._lock:
            if self.stopped.is_set():
                return
            self.factory.retain()
            self._retained = True
        self.factory.start()
        threading.Thread(target=self._loop, daemon=True, name="kube-proxy").start()

    def _refuse_mode(self, why: str | None = None) -> None:
        """ipvs on a kernel without IP_VS (or an unknown mode): say so in the log and as a
        Warning event on the Node, then stay idle (no rules at all) — like a kube-proxy that
        failed to start."""
        if self.mode == "ipvs":
            msg = (f"kube-proxy: proxy mode \"ipvs\" is not supported on this kernel ({why}); "
                   "recreate the cluster with --proxy-mode iptables or nftables, or run netsim "
                   "in a VM with a stock kernel (README: IPVS mode)")
        else:
            msg = (f"kube-proxy: unknown proxy mode {self.mode!r}; "
                   "use --proxy-mode iptables or nftables")
        log.error("%s", msg)
        try:
            from netsim.api import events  # noqa: PLC0415 - only on this error path
            node = self.client.get("nodes", self.node.name)
            events.record(self.client, node, "Warning", "ProxyModeNotSupported", msg,
                          "kube-proxy", self.node.name)
        except Exception as e:  # the API may be down; the log line is the main signal
            log.warning("could not record the event: %s", e)
        self.stopped.set()

    # ---- informers -------------------------------------------------------------------------
    def _on_event(self, obj: dict) -> None:
        self._wake.set()

    def _on_stop(self) -> None:
        self._wake.set()
        self.udp_cleanup.stop()
        with self._lock:
            retained, self._retained = self._retained, False
        self.factory.detach(self._handlers, release=retained)

    def has_synced(self) -> bool:
        """True once both caches hold their first list (nothing is synced before)."""
        return all(inf.has_synced() for inf in self.informers.values())

    def _wait_for_sync(self) -> bool:
        if not self.has_synced():
            log.info("waiting for the services and endpointslices caches to sync")
        while not self.stopped.is_set():
            if self.has_synced():
                self._wake.set()  # the first sync, even with nothing to wake it
                return True
            self._wake.wait(0.1)  # a handler or a stop wakes us early
            self._wake.clear()
        return False

    def _changes(self, objs: dict[str, list[dict]]) -> tuple[dict, set[str]]:
        """The versions of what the caches hold, and the Services ("ns/name") whose Service
        or slices differ from the last good sync (old and new owner of a moved slice).
        A version is the resourceVersion, or the object's identity when it has none (only
        hand-made test objects lack one)."""
        now: dict[tuple[str, str], tuple[object, str | None]] = {}
        for res, items in objs.items():
            is_svc = res == "services"
            for o in items:  # key, version and owning Service in one pass (every sync)
                md = o.get("metadata")
                md = md if isinstance(md, dict) else {}
                key = f"{md.get('namespace') or 'default'}/{md.get('name')}"
                rv = md.get("resourceVersion")
                if is_svc:
                    svc = key
                else:
                    labels = md.get("labels")
                    name = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
                    svc = (f"{md.get('namespace') or 'default'}/{name}"
                           if isinstance(name, str) and name else None)
                now[(res, key)] = (rv if rv is not None else id(o), svc)
        last = self._synced_versions
        changed: set[str] = set()
        for k, b in now.items():
            a = last.get(k)
            if a != b:
                changed.update(x[1] for x in (a, b) if x is not None and x[1])
        for k in last.keys() - now.keys():  # deleted
            if last[k][1]:
                changed.add(last[k][1])
        return now, changed

    # ---- the sync loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        set_thread_name("kube-proxy")
        next_canary = time.monotonic() + CANARY_INTERVAL
        retry_at: float | None = None
        cleanup_at: float | None = None  # nftables: when the flushed stale chains may go
        due: float | None = None  # a change waits for the limiter until then
        try:
            if not self._wait_for_sync():
                return
            while not self.stopped.is_set():
                now = time.monotonic()
                timeout = next_canary - now
                for at in (retry_at, cleanup_at, due):
                    if at is not None:
                        timeout = min(timeout, at - now)
                woke = self._wake.wait(max(timeout, 0.0))
                if self.stopped.is_set():
                    break
                if woke:
                    time.sleep(DEBOUNCE_SECONDS)  # let a burst of events collapse into one sync
                    self._wake.clear()
                    wait = self.limiter.wait_time()
                    if wait > 0:  # synced `burst` times just now: this change waits its turn
                        due = time.monotonic() + wait if due is None else due
                        woke = False
                now = time.monotonic()
                if due is not None and now >= due:
                    due, woke = None, True
                if now >= next_canary:
                    next_canary = now + CANARY_INTERVAL
                    if self.syncer and self._lost_state():
                        if self.mode == "nftables":
                            log.warning("table ip kube-proxy is gone: full resync")
                        elif self.mode == "ipvs":
                            log.warning("%s is gone: full resync", ipvs.DUMMY_DEVICE)
                        else:
                            log.warning("KUBE-PROXY-CANARY is gone (tables flushed?): full resync")
                        self.syncer.reset()
                        with self._lock:
                            self._need_full = True
                        woke = True
                if retry_at is not None and now >= retry_at:
                    retry_at, woke = None, True
                if cleanup_at is not None and now >= cleanup_at:
                    cleanup_at, woke = None, True  # the sync deletes the stale chains first
                if not woke:
                    continue
                self.limiter.take()
                due = None  # this sync reads every change so far
                try:
                    ok = self.sync_once()
                except Exception:  # a bug or a bad object must not end kube-proxy for good
                    log.exception("sync failed")
                    with self._lock:
                        self._need_full = True
                    ok = False
                if ok:
                    self.failures = 0
                else:
                    self.failures += 1
                    retry_at = time.monotonic() + self.retry_delay()
                if getattr(self.syncer, "stale_pending", False):
                    # nftables: stale chains to delete; IPVS: real servers draining at weight 0
                    cleanup_at = time.monotonic() + getattr(self.syncer, "pending_delay",
                                                            STALE_CHAIN_DELAY) + 0.1
        finally:
            if self.ports:
                self.ports.stop()

    def _lost_state(self) -> bool:
        try:
            return bool(self.syncer and self.syncer.lost_state())
        except Exception as e:  # can't tell: a full resync is the safe answer
            log.warning("checking the canary failed (%s): full resync", e)
            return True

    def retry_delay(self) -> float:
        """Seconds before the next try after `failures` failed syncs in a row."""
        return min(RETRY_SECONDS * 2 ** max(self.failures - 1, 0), MAX_RETRY_SECONDS)

    def sync_once(self) -> bool:
        """One sync from the current caches; False when it failed (retried later, fully)."""
        assert self.syncer is not None
        with self._lock:
            full, self._need_full = self._need_full, False
        objs = {r: self.informers[r].indexer.list() for r in RESOURCES}
        services, slices = objs["services"], objs["endpointslices"]
        try:
            versions, dirty = self._changes(objs)
            snap = ProxySnapshot.from_objects(services, slices, node_name=self.node.name,
                                              node_ips=[self.node.ip],
                                              cluster_cidr=self.cfg.pod_cidr,
                                              cache=self._snapshot_cache)
            self._report_rejected(snap.rejected)
            res = self.syncer.sync(snap, None if full else dirty)
        except Exception as e:
            log.error("sync failed: %s", e)
            with self._lock:
                self._need_full = True
            return False  # the versions stay those of the last good sync
        self._synced_versions = versions
        self.syncs += 1
        self.last_result = res
        self.last_snapshot = snap
        slow = res.slow_steps() if hasattr(res, "slow_steps") else ""
        log.info("%s sync #%d (%d changed): %d service ports, %d bytes, %.1f ms (restore %.1f ms)%s",
                 "full" if res.full else "partial", self.syncs, len(dirty),
                 len(snap.service_ports), res.text_bytes, res.seconds * 1e3,
                 res.restore_seconds * 1e3, f"; {slow}" if slow else "")
        if self.ports is not None:
            try:
                self.ports.update({(sp.proto, sp.node_port) for sp in snap.service_ports
                                   if sp.node_port and sp.proto in ("tcp", "udp")})
            except Exception as e:
                log.warning("nodePort holder: %s", e)
        self._flush_udp(snap)
        return True

    def _report_rejected(self, rejected: tuple[Rejected, ...]) -> None:
        """One log line and one Warning event per invalid object when its problem first
        appears or changes (not on every sync); forgotten once it is fixed or deleted, so a
        relapse is reported again."""
        now = {(r.resource, r.key): r for r in rejected}
        for k, r in now.items():
            if self._reported.get(k) == r.message:
                continue
            kind = "Service" if r.resource == "services" else "EndpointSlice"
            log.warning("%s %s left out of the rules: %s", kind, go_quote(r.key), r.message)
            obj = self._cached(r.resource, r.namespace, r.name)
            if obj is not None:
                self._event(obj, kind, f"kube-proxy left it out of the rules: {r.message}")
        self._reported = {k: r.message for k, r in now.items()}

    def _cached(self, resource: str, namespace: str, name: str) -> dict | None:
        idx = self.informers[resource].indexer
        obj = idx.get(f"{namespace}/{name}")
        if obj is None and namespace == "default":
            obj = idx.get(name)  # stored without a namespace (the model reads "default")
        return obj

    def _event(self, obj: dict, kind: str, message: str) -> None:
        try:
            from netsim.api import events  # noqa: PLC0415 - only when something is wrong
            obj = {**obj, "kind": obj.get("kind") or kind}
            events.record(self.client, obj, "Warning", REJECTED_REASON, message,
                          "kube-proxy", self.node.name)
        except Exception as e:  # the API may be down; the log line is the main signal
            log.warning("could not record the event: %s", e)

    def _flush_udp(self, snap: ProxySnapshot) -> None:
        """conntrack -D for UDP entries pointing at no serving endpoint (removed endpoints,
        and entries made while a Service had none), as upstream's CleanStaleEntries: handed
        to the cleanup thread, so the sync loop never waits for `conntrack`."""
        self.udp_cleanup.offer(snap)
