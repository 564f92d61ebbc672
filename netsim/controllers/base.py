"""Level-triggered controllers on netsim.machinery: shared informers -> handlers -> a work
queue of keys -> reconcile(key), which reads the informers' caches, not the API.

Controllers given the same InformerFactory share one informer (one watch) per resource
(the control plane makes one and hands it to each); one given none makes its own when
first started. Writes go through a TrackingClient, and reconcile's cache reads wait
until the cache holds the controller's own last write of that resource, so a
controller never acts on a cache older than what it did itself (no second round of pod
creations while the first round's events are still on their way).

A controller that was never started (unit tests and the offline renderer call
reconcile() and all_keys() by hand) reads the API through the same calls.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator

from netsim.api import errors
from netsim.api.client import Client
from netsim.machinery import (
    ApiLister,
    FreshLister,
    InformerFactory,
    SharedInformer,
    StaleCache,
    TrackingClient,
    WorkQueue,
    split_key,
)
from netsim.machinery.cache import IndexFunc

log = logging.getLogger("netsim.controllers")

__all__ = ["BatchPeriod", "Controller", "Informed", "split_key", "write_apps_status"]


class Informed:
    """Informers for `watches` + `reads`, cache reads (`lister`, `cache`), tracked writes."""

    name = "controller"
    watches: tuple[str, ...] = ()       # resources whose events queue keys
    reads: tuple[str, ...] = ()         # further resources read from a cache
    indexers: dict[str, dict[str, IndexFunc]] = {}  # resource -> extra indexes

    def __init__(self, client: Client, informers: InformerFactory | None = None):
        self.client = TrackingClient(client)
        self._factory = informers
        self.stopped = threading.Event()
        self._running = False

    @property
    def informers(self) -> InformerFactory:
        """The factory given, else one of its own (made on first use: controllers never
        started make none)."""
        if self._factory is None:
            self._factory = InformerFactory(self.client.inner)
        return self._factory

    def informer(self, resource: str) -> SharedInformer:
        return self.informers.informer(resource, self.indexers.get(resource))

    def lister(self, resource: str):
        """Cache reads for reconcile: each waits until the cache holds our own last write
        of `resource` (StaleCache after 5 s; the key is retried)."""
        if not self._running:
            return ApiLister(self.client, resource, self.indexers.get(resource, {}))
        inf = self.informer(resource)
        if not inf.started:  # a resource not declared in watches/reads
            inf.start()
            inf.wait_for_sync(5.0, self.stopped)
        return FreshLister(inf, self.client)

    def cache(self, resource: str):
        """Cache reads that never wait (for event handlers, which must not block)."""
        if not self._running:
            return ApiLister(self.client, resource, self.indexers.get(resource, {}))
        return self.informer(resource).indexer

    def _start_informers(self) -> None:
        """Start the (shared) informers; wait_synced() waits for their first lists."""
        for res in (*self.watches, *self.reads):
            self.informer(res)
        self._running = True
        self.informers.retain()
        self.informers.start()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """client-go's WaitForCacheSync for this controller's informers (False if stopped
        or timed out first)."""
        return self.informers.wait_for_sync(timeout, stop=self.stopped,
                                            resources=[*self.watches, *self.reads])

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self._running:
            self.informers.release()


class BatchPeriod:
    """Per-key batching of the syncs an owned object's events queue: once a key's sync
    began, further events for it wait until `factor` times that sync's CPU has passed (at
    most `cap` seconds). A sync that reads every pod of its owner (a Service's endpoints, a
    ReplicaSet's claim and status) run on each pod event costs O(P^2) over a rollout of P
    pods; this bounds it to a tenth of a core whatever P is, while an owner of a few pods
    waits a few ms. A change after a quiet spell is synced at once."""

    def __init__(self, cap: float, factor: float = 10.0):
        self.cap, self.factor = cap, factor
        self.began: dict[str, float] = {}   # key -> when its last sync began (monotonic)
        self.cost: dict[str, float] = {}    # key -> that sync's CPU seconds

    def delay(self, key: str, now: float | None = None) -> float:
        """Seconds an event for `key` waits now (<= 0: none)."""
        last = self.began.get(key)
        if last is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return last + min(self.cap, self.factor * self.cost.get(key, 0.0)) - now

    def queue(self, queue: WorkQueue, keys: Iterable[str]) -> None:
        """Queue each key once its period allows (at once after a quiet spell)."""
        now = time.monotonic()
        for k in keys:
            queue.add_after(k, self.delay(k, now))

    @contextlib.contextmanager
    def syncing(self, key: str, measure: bool = True) -> Iterator[None]:
        """A sync of `key`, timed for the next period (`measure`: a started controller;
        one never started has no events to batch)."""
        if not measure:
            yield
            return
        self.began[key] = time.monotonic()
        cpu = time.thread_time()
        try:
            yield
        finally:
            if key in self.began:  # (not forgotten meanwhile: the owner is gone)
                self.cost[key] = time.thread_time() - cpu

    def forget(self, key: str) -> None:
        """The owner is gone: nothing kept for it."""
        self.began.pop(key, None)
        self.cost.pop(key, None)


class Controller(Informed):
    """Subclasses set `watches` and implement keys_for() and reconcile()."""

    resync_seconds = 30.0
    workers = 1

    def __init__(self, client: Client, informers: InformerFactory | None = None):
        super().__init__(client, informers)
        self.queue = WorkQueue()
        self._handlers: list = []

    # -- to implement -----------------------------------------------------------------
    def keys_for(self, resource: str, obj: dict) -> Iterable[str]:
        """The keys an event on `obj` re-queues. Runs on an informer's thread: read
        through self.cache() (never waits), not self.lister()."""
        md = obj.get("metadata", {})
        ns = md.get("namespace")
        return [f"{ns}/{md['name']}" if ns else md["name"]]

    def reconcile(self, key: str) -> float | None:
        """Converge one key. Return seconds to re-check it later, or None."""
        raise NotImplementedError

    def all_keys(self) -> Iterable[str]:
        for res in self.watches[:1]:
            for obj in self.lister(res).list():
                yield from self.keys_for(res, obj)

    # -- runner -----------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        for res in self.watches:
            inf = self.informer(res)
            self._handlers.append((inf, inf.add_handler(
                on_add=lambda o, r=res: self._enqueue(r, o),
                on_update=lambda old, new, r=res: self._enqueue(r, old, new),
                on_delete=lambda o, r=res: self._enqueue(r, o))))
        self._start_informers()
        threads = [threading.Thread(target=self._work_loop, daemon=True,
                                    name=f"{self.name}-worker{i}") for i in range(self.workers)]
        threads.append(threading.Thread(target=self._resync_loop, daemon=True,
                                        name=f"{self.name}-resync"))
        for t in threads:
            t.start()
        return threads

    def stop(self) -> None:
        for inf, h in self._handlers:
            inf.remove_handler(h)
        self._handlers.clear()
        self.queue.shutdown()
        super().stop()

    def _enqueue(self, resource: str, *objs: dict) -> None:
        keys: set[str] = set()
        for obj in objs:
            keys.update(self.keys_for(resource, obj))
        for k in keys:
            self.queue.add(k)

    def _resync_loop(self) -> None:
        if not self.wait_synced():
            return
        while not self.stopped.wait(self.resync_seconds):
            try:
                for k in self.all_keys():
                    self.queue.add(k)
            except Exception as e:
                log.debug("%s: resync: %s", self.name, e)

    def _work_loop(self) -> None:
        if not self.wait_synced():  # nothing is reconciled from a half-filled cache
            return
        while (key := self.queue.get(timeout=None)) is not None:
            try:
                after = self.reconcile(key)
                self.queue.forget(key)
                if after:
                    self.queue.add_after(key, after)
            except (errors.Conflict, StaleCache) as e:
                log.debug("%s: %s: %s; retrying", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception as e:
                if self.stopped.is_set():  # stopping: the store may close under a reconcile
                    log.debug("%s: %s: stopped mid-reconcile: %s", self.name, key, e)
                    continue
                log.exception("%s: reconcile %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)


def write_apps_status(client: Client, obj: dict, kind: str, status: dict) -> bool:
    """A DaemonSet's or StatefulSet's status, written only when it differs from the stored
    one (whose conditions these controllers do not compute); False when the object is gone."""
    old = dict(obj.get("status") or {})
    old.pop("conditions", None)
    if status == old:
        return True
    md = obj["metadata"]
    try:
        client.update_status({"apiVersion": "apps/v1", "kind": kind,
                              "metadata": {"name": md["name"], "namespace": md.get("namespace")},
                              "status": status})
    except errors.NotFound:
        return False
    return True
