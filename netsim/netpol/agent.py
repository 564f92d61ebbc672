"""The node's NetworkPolicy agent: informers -> snapshot -> render -> one atomic apply.

Runs beside kube-proxy in the node agent (the node's netns), as a CNI's policy daemon
runs on every node. Level-triggered: any NetworkPolicy or Namespace event, and a Pod event
that changes what the rules read of the pod (its IP, node, labels, named ports: PodTable),
wakes the loop, which renders the whole policy state of this node from the informers'
caches and, when it differs from what was applied last, writes the difference in one step.

The backend follows kube-proxy's, so a node never holds rules of two firewall backends
(`backend_for`): in nftables mode the policies are `table ip netsim-netpol`
(netsim/netpol/nft.py) written with one `nft -f` transaction per sync; in iptables and
IPVS mode (whose kube-proxy writes iptables rules too) they are NETSIM-* chains of the
filter table (netsim/netpol/render.py) written with one `iptables-restore --noflush` of
the same iptables binary kube-proxy uses. The iptables jumps are inserted out of band at
the top of FORWARD (above kube-proxy's KUBE-FORWARD, which ACCEPTs masquerade-marked
packets) and INPUT (and, in IPVS mode, OUTPUT for what IPVS forwards: render.py's
IPVS_JUMP_RULES), checked on every sync so a flushed chain gets them back; the nft table
is checked for on every sync and rewritten whole when someone deleted it.

A policy the renderer cannot handle (a malformed object that got into the store) is left
out, logged, and reported once as a Warning event on it; the others are served.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import threading
import time

from netsim.machinery import InformerFactory, key_of
from netsim.netpol import nft
from netsim.netpol.render import Snapshot, is_policy_chain, jump_rules, pod_info, render
from netsim.proxy.apply import Iptables, Nft, NftError, RestoreError, check_in_node_netns
from netsim.proxy.iptables import parse_chains

log = logging.getLogger("netsim.netpol")

RESOURCES = ("networkpolicies", "namespaces")  # and "pods" from the first policy: watch_pods
DEBOUNCE_SECONDS = 0.05
RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0  # failed syncs back off 1, 2, 4 ... 30 s, as kube-proxy's do
RESYNC_SECONDS = 30.0  # re-check the jumps now and then, even with no event


def retry_delay(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed syncs in a row (a restore
    that keeps failing, e.g. on a set that does not exist yet, is not retried every second
    with its iptables processes: under emulation each costs a second of a busy CPU)."""
    return min(RETRY_SECONDS * 2 ** max(failures - 1, 0), MAX_RETRY_SECONDS)
REJECTED_REASON = "Rejected"  # the Warning event on a policy left out of the rules


# The node's ICMP errors are not rate-limited: a default deny REJECTs UDP (and other
# non-TCP) with ICMP port unreachable, and Linux's default (a burst of 6, then one a second
# per peer) turns most of a client's refused probes into timeouts. Per netns: only this
# node's. (TCP gets a reset, which is never rate-limited.)
NODE_SYSCTLS = (("net/ipv4/icmp_ratelimit", "0"),)


def set_node_sysctls() -> None:
    """Write NODE_SYSCTLS in this process' netns (the node's: start() checked)."""
    for key, value in NODE_SYSCTLS:
        try:
            with open(f"/proc/sys/{key}", "w") as f:
                f.write(value)
        except OSError as e:
            log.warning("could not set %s=%s: %s", key, value, e)


def backend_for(proxy_mode: str | None) -> str:
    """"nftables" when kube-proxy runs in nftables mode, else "iptables" (iptables and
    IPVS mode: their kube-proxy writes iptables rules, with the binary Iptables() picks)."""
    return "nftables" if (proxy_mode or "iptables").lower() == "nftables" else "iptables"


def chains_of(text: str) -> dict[str, list[str]]:
    """{chain: its -A lines, in order} of a filter-table restore text (declared chains
    without rules map to [])."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(":"):
            out.setdefault(line[1:].split(" ", 1)[0], [])
        elif line.startswith("-A "):
            out.setdefault(line.split(" ", 2)[1], []).append(line)
    return out


def partial_text(want: dict[str, list[str]], applied: dict[str, list[str]]) -> str:
    """The restore text that turns `applied` into `want`: only the chains whose rules
    differ are declared (flushed) and refilled, chains no longer wanted are flushed and
    deleted; "" when nothing differs. With --noflush every other chain stays as it is."""
    changed = [c for c in want if applied.get(c) != want[c]]
    gone = sorted(c for c in applied if c not in want)
    if not changed and not gone:
        return ""
    out = ["*filter", *(f":{c} - [0:0]" for c in changed + gone)]
    for c in changed:
        out += want[c]
    out += [f"-X {c}" for c in gone]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


class PolicySyncer:
    """Snapshot -> kernel for the filter table's policy chains.

    The first sync (and any after a failure or a forced one) writes every chain and
    deletes the stale ones found with iptables-save; later ones write only the chains that
    changed (one policy's, one pod's), so a label change costs a restore of a few lines."""

    def __init__(self, ipt: Iptables, ipvs: bool = False):
        self.ipt = ipt
        self.ipvs = ipvs  # IPVS mode: Service traffic is judged after IPVS (render.py)
        self.jumps = jump_rules(ipvs)
        self.applied: dict[str, list[str]] | None = None  # what the kernel holds, as we wrote it
        self.last_text = ""
        self._cluster_ip_set = False

    def _ensure_cluster_ip_set(self) -> None:
        """IPVS mode: the rules match kube-proxy's KUBE-CLUSTER-IP ipset, which exists only
        once kube-proxy synced; until then every restore failed and was retried each second
        (seen in the VM: minutes of it, a process start each under emulation). Created
        here as kube-proxy creates it (same type and options, so its `create -exist` and
        `swap` still work)."""
        import subprocess  # noqa: PLC0415 - IPVS mode only

        from netsim.proxy import ipvs as kp_ipvs  # noqa: PLC0415
        line = kp_ipvs.IPSet(kp_ipvs.CLUSTER_IP, kp_ipvs.HASH_IP_PORT, "").create_line()
        argv = ["ipset", *line.split(), "-exist"]
        netns = getattr(self.ipt, "netns", None)
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self._cluster_ip_set = p.returncode == 0

    def ensure_jump(self, saved: str) -> bool:
        """Insert the jumps that are missing from `saved` (the filter table's iptables-save);
        True when one was (the tables were flushed or this is the first sync: what we wrote
        before cannot be trusted). A jump the save seems to lack is checked with `-C` before
        it is inserted, so a rule printed in another form is never doubled."""
        chains = parse_chains(saved, "filter")
        rules = {tuple(shlex.split(ln)) for ln in saved.splitlines() if ln.startswith("-A ")}
        inserted = False
        for table, chain, args in self.jumps:
            if table == "filter" and ("-A", chain, *args) in rules:
                continue
            if table != "filter" or args[-1] not in chains:
                self.ipt.ensure_chain(table, args[-1])
            if self.ipt.run("-w", "-t", table, "-C", chain, *args).returncode != 0:
                p = self.ipt.run("-w", "-t", table, "-I", chain, "1", *args)
                if p.returncode != 0:
                    raise RestoreError(f"iptables -I {chain}: {p.stderr.strip()}")
                inserted = True
        return inserted

    backend = "iptables"

    def sync(self, snap: Snapshot, force: bool = False,
             errors: list[tuple[dict, str]] | None = None, check: bool = True) -> bool:
        """Apply `snap`; False when nothing had to be written. Policies left out are
        appended to `errors` as (policy, message). The kernel is looked at (one
        iptables-save: the jumps, the policy chains there) only when something is to be
        written or `check` says so (the agent's periodic resync): an event that changes
        nothing here (most pod updates) starts no process."""
        full = force or self.applied is None
        text = ""
        if not full:
            text = partial_text(chains_of(render(snap, errors=errors, ipvs=self.ipvs)),
                                self.applied)
            if not text and not check:
                return False
            errors = None  # the render above reported them
        saved = self.ipt.save("filter")
        if self.ensure_jump(saved):
            full = True
        if full:
            known = {c for c in parse_chains(saved, "filter") if is_policy_chain(c)}
            text = render(snap, known, errors=errors, ipvs=self.ipvs)
        elif not text:
            return False
        if self.ipvs and not self._cluster_ip_set:
            self._ensure_cluster_ip_set()
        try:
            self.ipt.restore(text)
        except RestoreError:
            self.applied = None
            raise
        if full:
            self.applied = {}
        deleted = {ln[3:].strip() for ln in text.splitlines() if ln.startswith("-X ")}
        self.applied.update(chains_of(text))
        for c in deleted:
            self.applied.pop(c, None)
        self.last_text = text
        return True


class NftPolicySyncer:
    """Snapshot -> kernel for `table ip netsim-netpol` (nftables mode).

    The first sync (and any after a failure, or when the table is gone) replaces the whole
    table in one transaction; later ones send only the difference to what was applied
    (set elements for pods and labels, the chains of a changed policy), one transaction."""

    backend = "nftables"

    def __init__(self, kernel: Nft):
        self.nft = kernel
        self.applied: nft.NftModel | None = None
        self.last_text = ""

    def sync(self, snap: Snapshot, force: bool = False,
             errors: list[tuple[dict, str]] | None = None, check: bool = True) -> bool:
        want = nft.build(snap, errors)
        if self.applied is not None and not force and not self.nft.table_exists(
                nft.FAMILY, nft.TABLE):
            force = True  # someone deleted the table: what we wrote is gone
        if force or self.applied is None:
            text = nft.render_full(want)
        else:
            text = nft.render_diff(self.applied, want)
            if not text:
                return False
        try:
            self.nft.apply(text)
        except NftError:
            self.applied = None
            raise
        self.applied = want
        self.last_text = text
        return True


class PodTable:
    """The pods as policies see them (render.pod_info), by `ns/name`, kept by the pods
    informer's handlers: O(1) per event; `sorted()` is the Snapshot's pods tuple, rebuilt
    only after a change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, tuple] = {}  # key -> (Pod, labels, named ports)
        self._sorted: tuple | None = ()

    def put(self, obj: dict) -> bool:
        """Record a pod's current state; True when what the rules read of it changed."""
        key = key_of(obj)
        try:
            pod = pod_info(obj)
        except (AttributeError, TypeError):  # written around admission: no endpoint of ours
            pod = None
        if pod is None:
            return self._drop(key)
        entry = (pod, pod.labels, pod.named_ports)  # Pod's own == leaves these two out
        with self._lock:
            if self._by_key.get(key) == entry:
                return False
            self._by_key[key] = entry
            self._sorted = None
        return True

    def remove(self, obj: dict) -> bool:
        return self._drop(key_of(obj))

    def _drop(self, key: str) -> bool:
        with self._lock:
            if self._by_key.pop(key, None) is None:
                return False
            self._sorted = None
        return True

    def sorted(self) -> tuple:
        with self._lock:
            if self._sorted is None:
                self._sorted = tuple(sorted((e[0] for e in self._by_key.values()),
                                            key=lambda p: p.key))
            return self._sorted


class _Stopped(threading.Event):
    """`stopped.set()` (the node agent's shutdown) also wakes the loop."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self._wake_event = wake

    def set(self) -> None:
        super().set()
        self._wake_event.set()


class PolicyAgent:
    """NetworkPolicy enforcement for one node. `start()` returns at once; set `stopped`."""

    def __init__(self, client, cfg, node, *, netns: str | None = None,
                 check_netns: bool = True, factory: InformerFactory | None = None):
        self.cfg, self.node, self.netns = cfg, node, netns
        self.check_netns = check_netns
        self.factory = factory or InformerFactory(client)
        # The pods informer is made when the first NetworkPolicy appears (watch_pods): while
        # the cluster has none no pod is isolated and the rules do not depend on pods, and
        # every pod event of the cluster decoded by every node's agent was ~40% of an
        # agent's CPU while 300 pods started (issue #16).
        self.informers = {r: self.factory.informer(r) for r in RESOURCES}
        self._wake = threading.Event()
        # Every pod of the cluster reaches every node's agent: a pod's policy view is kept
        # per event (PodTable), so a sync reads it instead of re-reading every pod, and a
        # pod update that changes nothing the rules read (most status writes) wakes nothing.
        self._pods = PodTable()
        self._handlers = []
        for inf in self.informers.values():
            h = inf.add_handler(on_add=lambda o: self._wake.set(),
                                on_update=lambda a, b: self._wake.set(),
                                on_delete=lambda o: self._wake.set())
            self._handlers.append((inf, h))
        self.stopped = _Stopped(self._wake)
        self.client = client
        self.backend = backend_for(getattr(cfg, "proxy_mode", None))
        self.syncer: PolicySyncer | NftPolicySyncer | None = None
        self._reported: dict[str, str] = {}  # "ns/name" -> message reported
        self.syncs = 0
        self.last_sync_seconds = 0.0

    def start(self) -> None:
        if self.check_netns and self.netns is None:
            check_in_node_netns(self.cfg.node_netns(self.node.name))
        self.syncer = make_syncer(self.backend, self.netns,
                                  ipvs=(getattr(self.cfg, "proxy_mode", None) or "") == "ipvs")
        if self.netns is None:
            set_node_sysctls()
        log.info("network policies (%s) on node %s", self.backend, self.node.name)
        self.factory.retain()
        self.factory.start()
        threading.Thread(target=self._loop, daemon=True, name="netpol").start()

    def stop(self) -> None:
        self.stopped.set()
        self._wake.set()
        for inf, h in self._handlers:
            inf.remove_handler(h)
        self.factory.release()

    def watch_pods(self) -> None:
        """Make and start the pods informer (once; it stays): PodTable from its events."""
        if "pods" in self.informers:
            return
        inf = self.informers["pods"] = self.factory.informer("pods")
        self._handlers.append((inf, inf.add_handler(
            on_add=self._pod_changed, on_update=lambda a, b: self._pod_changed(b),
            on_delete=self._pod_gone)))
        if self.syncer is not None:  # started (unit tests feed the handlers by hand)
            self.factory.start()

    def _pod_changed(self, obj: dict) -> None:
        if self._pods.put(obj):
            self._wake.set()

    def _pod_gone(self, obj: dict) -> None:
        if self._pods.remove(obj):
            self._wake.set()

    def snapshot(self) -> Snapshot:
        """What Snapshot.from_objects makes of the caches, with the pods from PodTable."""
        base = Snapshot.from_objects(self.informers["networkpolicies"].indexer.list(), (),
                                     self.informers["namespaces"].indexer.list(),
                                     self.node.name)
        return dataclasses.replace(base, pods=self._pods.sorted())

    def _report(self, errors: list[tuple[dict, str]]) -> None:
        """One log line and one Warning event per policy left out, when its problem first
        appears or changes; forgotten once it is fixed or deleted."""
        now = {}
        for pol, msg in errors:
            md = pol.get("metadata") or {}
            key = f"{md.get('namespace') or 'default'}/{md.get('name')}"
            now[key] = msg
            if self._reported.get(key) == msg:
                continue
            log.warning("NetworkPolicy %s left out of the rules on %s: %s", key,
                        self.node.name, msg)
            try:
                from netsim.api import events  # noqa: PLC0415 - only when something is wrong
                events.record(self.client, {**pol, "kind": pol.get("kind") or "NetworkPolicy"},
                              "Warning", REJECTED_REASON,
                              f"the network policy agent left it out of the rules: {msg}",
                              "netpol-agent", self.node.name)
            except Exception as e:  # the API may be down; the log line is the main signal
                log.warning("could not record the event: %s", e)
        self._reported = now

    def _loop(self) -> None:
        while not self.stopped.is_set() and not all(
                i.has_synced() for i in self.informers.values()):
            self._wake.wait(0.1)
            self._wake.clear()
        next_resync = 0.0
        failures = 0
        while not self.stopped.is_set():
            if "pods" not in self.informers and self.informers["networkpolicies"].indexer.list():
                self.watch_pods()  # the first policy: its rules read the pods from now on
                while not (self.stopped.is_set() or self.informers["pods"].has_synced()):
                    self._wake.wait(0.05)
                    self._wake.clear()
            now = time.monotonic()
            check = now >= next_resync
            if check:  # re-check the jumps (a flush means a full rewrite)
                next_resync = now + RESYNC_SECONDS
            try:
                t0 = time.perf_counter()
                assert self.syncer is not None
                errors: list[tuple[dict, str]] = []
                changed = self.syncer.sync(self.snapshot(), force=failures > 0, errors=errors,
                                           check=check or failures > 0)
                self._report(errors)
                if changed:
                    self.syncs += 1
                    self.last_sync_seconds = time.perf_counter() - t0
                    log.info("network policies applied on %s in %.0f ms", self.node.name,
                             self.last_sync_seconds * 1000)
                failures = 0
            except Exception:  # a bad object or a failed restore: retry, never die
                failures += 1
                log.exception("network policy sync failed (%d in a row; next try in %.0f s)",
                              failures, retry_delay(failures))
            if failures:  # events meanwhile are served by the retry, not before it
                retry_at = time.monotonic() + retry_delay(failures)
                while not self.stopped.is_set() and time.monotonic() < retry_at:
                    self._wake.wait(retry_at - time.monotonic())
                    self._wake.clear()
            elif self._wake.wait(max(next_resync - time.monotonic(), 0.0)):
                time.sleep(DEBOUNCE_SECONDS)  # a burst of events collapses into one sync
                self._wake.clear()


def make_syncer(backend: str, netns: str | None = None,
                ipvs: bool = False) -> PolicySyncer | NftPolicySyncer:
    """The syncer of `backend_for(mode)`, for the current netns (None) or a named one;
    `ipvs`: kube-proxy runs in IPVS mode (iptables rules with IPVS_JUMP_RULES)."""
    if backend == "nftables":
        return NftPolicySyncer(Nft(netns=netns))
    return PolicySyncer(Iptables(netns=netns), ipvs=ipvs)
