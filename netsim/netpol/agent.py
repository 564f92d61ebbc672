"""The node's NetworkPolicy agent: informers -> snapshot -> render -> one restore.

Runs beside kube-proxy in the node agent (the node's netns), as a CNI's policy daemon
runs on every node. Level-triggered: any NetworkPolicy, Pod or Namespace event wakes the
loop, which renders the whole policy state of this node from the informers' caches
(netsim/netpol/render.py) and, when the text differs from the last one applied, writes
it with one `iptables-restore --noflush` (atomic per table: the old chains or the new,
never a half). The jumps are inserted out of band at the top of FORWARD (above
kube-proxy's KUBE-FORWARD, which ACCEPTs masquerade-marked packets) and INPUT, checked on
every sync so a flushed chain gets them back.
"""

from __future__ import annotations

import logging
import threading
import time

from netsim.machinery import InformerFactory
from netsim.netpol.render import JUMP_RULES, Snapshot, is_policy_chain, render
from netsim.proxy.apply import Iptables, RestoreError, check_in_node_netns
from netsim.proxy.iptables import parse_chains

log = logging.getLogger("netsim.netpol")

RESOURCES = ("networkpolicies", "pods", "namespaces")
DEBOUNCE_SECONDS = 0.05
RETRY_SECONDS = 1.0
RESYNC_SECONDS = 30.0  # re-check the FORWARD jump and re-apply now and then


class PolicySyncer:
    """Snapshot -> kernel for the filter table's policy chains."""

    def __init__(self, ipt: Iptables):
        self.ipt = ipt
        self.known: set[str] | None = None  # our chains in the kernel (None: read them)
        self.last_text = ""

    def ensure_jump(self) -> None:
        for table, chain, args in JUMP_RULES:
            self.ipt.ensure_chain(table, args[-1])
            if self.ipt.run("-w", "-t", table, "-C", chain, *args).returncode != 0:
                p = self.ipt.run("-w", "-t", table, "-I", chain, "1", *args)
                if p.returncode != 0:
                    raise RestoreError(f"iptables -I {chain}: {p.stderr.strip()}")

    def sync(self, snap: Snapshot, force: bool = False) -> bool:
        """Apply `snap`; False when nothing had to be written."""
        self.ensure_jump()
        if self.known is None:
            self.known = {c for c in parse_chains(self.ipt.save("filter"), "filter")
                          if is_policy_chain(c)}
            force = True
        text = render(snap, self.known)
        if text == self.last_text and not force:
            return False
        try:
            self.ipt.restore(text)
        except RestoreError:
            self.known = None
            self.last_text = ""
            raise
        deleted = {ln[3:].strip() for ln in text.splitlines() if ln.startswith("-X ")}
        self.known = parse_chains(text, "filter") - deleted
        self.last_text = text
        return True


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
        self.informers = {r: self.factory.informer(r) for r in RESOURCES}
        self._wake = threading.Event()
        self._handlers = [(inf, inf.add_handler(
            on_add=lambda o: self._wake.set(), on_update=lambda a, b: self._wake.set(),
            on_delete=lambda o: self._wake.set())) for inf in self.informers.values()]
        self.stopped = _Stopped(self._wake)
        self.syncer: PolicySyncer | None = None
        self.syncs = 0
        self.last_sync_seconds = 0.0

    def start(self) -> None:
        if self.check_netns and self.netns is None:
            check_in_node_netns(self.cfg.node_netns(self.node.name))
        self.syncer = PolicySyncer(Iptables(netns=self.netns))
        self.factory.retain()
        self.factory.start()
        threading.Thread(target=self._loop, daemon=True, name="netpol").start()

    def stop(self) -> None:
        self.stopped.set()
        self._wake.set()
        for inf, h in self._handlers:
            inf.remove_handler(h)
        self.factory.release()

    def snapshot(self) -> Snapshot:
        return Snapshot.from_objects(self.informers["networkpolicies"].indexer.list(),
                                     self.informers["pods"].indexer.list(),
                                     self.informers["namespaces"].indexer.list(),
                                     self.node.name)

    def _loop(self) -> None:
        while not self.stopped.is_set() and not all(
                i.has_synced() for i in self.informers.values()):
            self._wake.wait(0.1)
            self._wake.clear()
        next_resync = 0.0
        retry = False
        while not self.stopped.is_set():
            now = time.monotonic()
            force = now >= next_resync
            if force:
                next_resync = now + RESYNC_SECONDS
            try:
                t0 = time.perf_counter()
                assert self.syncer is not None
                if self.syncer.sync(self.snapshot(), force=force or retry):
                    self.syncs += 1
                    self.last_sync_seconds = time.perf_counter() - t0
                    log.info("network policies applied on %s in %.0f ms", self.node.name,
                             self.last_sync_seconds * 1000)
                retry = False
            except Exception:  # a bad object or a failed restore: retry, never die
                log.exception("network policy sync failed")
                retry = True
            timeout = RETRY_SECONDS if retry else max(next_resync - time.monotonic(), 0.0)
            if self._wake.wait(timeout):
                time.sleep(DEBOUNCE_SECONDS)  # a burst of events collapses into one sync
                self._wake.clear()
