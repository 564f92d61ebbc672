"""Shared informers: one reflector per resource feeding one cache, and event handlers.

A process makes one InformerFactory and asks it for informers; every consumer of the
same resource gets the same informer, so a resource is listed and watched once however
many controllers read it (client-go's SharedInformerFactory). Handlers run on the
informer's thread in the order events arrive: keep them short (compute keys, add them to
a work queue) and do the work in the queue's workers, reading the cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from netsim.api.client import Client
from netsim.api.resources import for_object
from netsim.machinery.cache import (
    ApiLister,
    DeletedFinalStateUnknown,
    Indexer,
    IndexFunc,
    key_of,
)
from netsim.machinery.reflector import Reflector, _rv

log = logging.getLogger("netsim.machinery")


@dataclass(eq=False)
class Handler:
    """Callbacks for one consumer; any may be None. on_delete may get a
    DeletedFinalStateUnknown (the last known state of an object found gone on a relist)."""

    on_add: Callable[[dict], None] | None = None
    on_update: Callable[[dict, dict], None] | None = None
    on_delete: Callable[[dict], None] | None = None


class SharedInformer:
    """A cache of one resource kept current by a reflector, and the handlers told of it."""

    def __init__(self, client: Client, resource: str,
                 indexers: dict[str, IndexFunc] | None = None, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None):
        self.client, self.resource = client, resource
        self.namespace, self.label_selector = namespace, label_selector
        self.field_selector = field_selector
        self.indexer = Indexer(indexers)
        self.reflector = Reflector(client, resource, self, namespace=namespace,
                                   label_selector=label_selector,
                                   field_selector=field_selector,
                                   name=f"informer-{resource}")
        self._handlers: list[Handler] = []
        self._dispatch = threading.RLock()  # one change at a time reaches cache + handlers
        self._synced = threading.Event()
        self._rv = 0
        self._rv_cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- consumers -----------------------------------------------------------------------
    def add_handler(self, on_add: Callable[[dict], None] | None = None,
                    on_update: Callable[[dict, dict], None] | None = None,
                    on_delete: Callable[[dict], None] | None = None) -> Handler:
        """Register callbacks. A handler added after the first list is told of every
        object already cached (on_add), so late consumers miss nothing."""
        h = Handler(on_add, on_update, on_delete)
        with self._dispatch:
            if self._synced.is_set() and on_add is not None:
                for obj in self.indexer.list():
                    self._call(on_add, obj)
            self._handlers.append(h)
        return h

    def remove_handler(self, h: Handler) -> None:
        with self._dispatch:
            if h in self._handlers:
                self._handlers.remove(h)

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def has_synced(self) -> bool:
        """True once the first list is in the cache (and was handed to the handlers)."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None,
                      stop: threading.Event | None = None) -> bool:
        """Wait until has_synced(), `stop` is set or `timeout` passes; returns has_synced()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._synced.is_set():
            if stop is not None and stop.is_set():
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            step = left if stop is None else min(0.05, left if left is not None else 0.05)
            self._synced.wait(step)
        return self._synced.is_set()

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion the cache reflects (list, event or bookmark)."""
        return self._rv

    def wait_for_resource_version(self, rv: int, timeout: float) -> bool:
        """Wait until the cache reflects `rv` (e.g. this process's own last write)."""
        with self._rv_cond:
            return self._rv_cond.wait_for(lambda: self._rv >= rv, timeout)

    def lister(self) -> Indexer:
        return self.indexer

    def api_lister(self, client: Client | None = None) -> ApiLister:
        """The cache's read calls answered by the API (for code run without start())."""
        return ApiLister(client or self.client, self.resource, self.indexer.indexers)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> threading.Thread:
        """Start the reflector's thread (once; later calls return the same thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.reflector.run, daemon=True,
                                            name=self.reflector.name)
            self._thread.start()
        return self._thread

    def stop(self) -> None:
        self.reflector.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end after stop(); True if it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the reflector's sink ------------------------------------------------------------
    def replace(self, items: list[dict], resource_version: int) -> None:
        """A (re)list: adds and updates for what changed, deletes for what is gone."""
        with self._dispatch:
            seen = set()
            for obj in items:
                key = key_of(obj)
                seen.add(key)
                old = self.indexer.upsert(obj)
                if old is None:
                    self._notify("on_add", obj)
                elif _rv(old) != _rv(obj):
                    self._notify("on_update", old, obj)
            for key in self.indexer.keys():
                if key not in seen:
                    old = self.indexer.delete(key)
                    if old is not None:
                        self._notify("on_delete", DeletedFinalStateUnknown(key, old))
            self._set_rv(resource_version)
            self._synced.set()

    def apply(self, etype: str, obj: dict) -> None:
        """One watch event."""
        key = key_of(obj)
        with self._dispatch:
            if etype == "DELETED":
                old = self.indexer.delete(key)
                if old is not None:  # else a relist already reported it
                    self._notify("on_delete", obj)
            elif etype in ("ADDED", "MODIFIED"):
                old = self.indexer.get(key)
                if old is not None and _rv(old) >= _rv(obj):
                    pass  # nothing newer than the cache has
                else:
                    self.indexer.upsert(obj)
                    if old is None:
                        self._notify("on_add", obj)
                    else:
                        self._notify("on_update", old, obj)
            self._set_rv(_rv(obj))

    def bookmark(self, resource_version: int) -> None:
        self._set_rv(resource_version)

    # -- internals -----------------------------------------------------------------------
    def _set_rv(self, rv: int) -> None:
        with self._rv_cond:
            if rv > self._rv:
                self._rv = rv
                self._rv_cond.notify_all()

    def _notify(self, which: str, *args: dict) -> None:
        for h in list(self._handlers):
            fn = getattr(h, which)
            if fn is not None:
                self._call(fn, *args)

    def _call(self, fn: Callable, *args: dict) -> None:
        try:
            fn(*args)
        except Exception:  # one consumer's bug must not stop the others' events
            log.exception("informer %s: handler %s failed", self.resource,
                          getattr(fn, "__qualname__", fn))


class InformerFactory:
    """One SharedInformer per resource for a whole process (or one test).

    Consumers that come and go call retain() when they start and release() when they
    stop; the last release() stops the informers."""

    def __init__(self, client: Client):
        self.client = client
        # (resource, namespace, label selector, field selector) -> its informer
        self._informers: dict[tuple, SharedInformer] = {}
        self._lock = threading.Lock()
        self._users = 0

    def retain(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.stop()

    def detach(self, handlers: list[tuple[SharedInformer, Handler]], release: bool) -> None:
        """A stopping consumer's part: its handlers off their informers, then (if it had
        retained the factory) its release(); the last user stops the informers."""
        for inf, h in handlers:
            inf.remove_handler(h)
        if release:
            self.release()

    def informer(self, resource: str, indexers: dict[str, IndexFunc] | None = None, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The informer of `resource` (made on first use), with these indexes added. With
        a namespace or selectors it is another informer (client-go's filtered informer
        factories): the kubelet watches only spec.nodeName=<its node>, as upstream's."""
        key = (resource, namespace or None, label_selector or None, field_selector or None)
        with self._lock:
            inf = self._informers.get(key)
            if inf is None:
                inf = self._informers[key] = SharedInformer(
                    self.client, resource, namespace=namespace or None,
                    label_selector=label_selector or None,
                    field_selector=field_selector or None)
        if indexers:
            inf.add_indexers(indexers)
        return inf

    def informers(self) -> list[SharedInformer]:
        with self._lock:
            return list(self._informers.values())

    def start(self) -> None:
        """Start every informer not started yet (call again after asking for more)."""
        for inf in self.informers():
            inf.start()

    def stop(self) -> None:
        for inf in self.informers():
            inf.stop()

    def join(self, timeout: float | None = None) -> bool:
        """After stop(): wait (up to `timeout` in all) for every informer's thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = True
        for inf in self.informers():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ok = inf.join(left) and ok
        return ok

    def wait_for_sync(self, timeout: float | None = None,
                      stop: threading.Event | None = None,
                      resources: list[str] | None = None) -> bool:
        """client-go's WaitForCacheSync: True once every (listed) informer has synced."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for inf in self.informers():
            if resources is not None and inf.resource not in resources:
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not inf.wait_for_sync(left, stop):
                return False
        return True


# ---- reading one's own writes ---------------------------------------------------------------
class StaleCache(Exception):
    """The cache did not catch up with this process's own write in time (retry later)."""


class TrackingClient(Client):
    """A client that remembers the resourceVersion of its own latest write per resource.

    A controller that creates three pods and is woken by the first pod's event must not
    see a cache holding only that one (it would create two more): FreshLister waits until
    the cache reflects the controller's own writes before answering. client-go's
    controllers keep "expectations" for this; one version number per resource is enough
    here because every write returns the resourceVersion its watch event will carry.
    """

    def __init__(self, inner: Client):
        self.inner = inner
        self._written: dict[str, int] = {}
        self._lock = threading.Lock()

    def written(self, resource: str) -> int:
        with self._lock:
            return self._written.get(resource, 0)

    def _note(self, resource: str | None, out) -> None:
        if not isinstance(out, dict):
            return
        if resource is None:
            try:
                resource = for_object(out).plural
            except Exception:
                return
        rv = _rv(out)
        with self._lock:
            if rv > self._written.get(resource, 0):
                self._written[resource] = rv

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # e.g. LocalClient.store

    def get(self, resource, name, namespace=None):
        return self.inner.get(resource, name, namespace)

    def list_rv(self, resource, namespace=None, label_selector=None, field_selector=None):
        if field_selector:
            return self.inner.list_rv(resource, namespace, label_selector,
                                      field_selector=field_selector)
        return self.inner.list_rv(resource, namespace, label_selector)

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None, field_selector=None):
        if field_selector:
            return self.inner.watch(resource, namespace, resource_version, timeout,
                                    label_selector, field_selector=field_selector)
        return self.inner.watch(resource, namespace, resource_version, timeout, label_selector)

    def create(self, obj, dry_run=False):
        out = self.inner.create(obj, dry_run=dry_run)
        if not dry_run:
            self._note(None, out)
        return out

    def update(self, obj, dry_run=False):
        out = self.inner.update(obj, dry_run=dry_run)
        if not dry_run:
            self._note(None, out)
        return out

    def update_status(self, obj):
        out = self.inner.update_status(obj)
        self._note(None, out)
        return out

    def patch(self, resource, name, namespace, merge_patch, subresource=None):
        out = self.inner.patch(resource, name, namespace, merge_patch, subresource)
        self._note(resource, out)
        return out

    def bind(self, namespace, name, node, uid=None):
        out = self.inner.bind(namespace, name, node, uid)
        self._note("pods", out)
        return out

    def delete(self, resource, name, namespace=None, grace_period_seconds=None,
               propagation_policy="Background"):
        out = self.inner.delete(resource, name, namespace, grace_period_seconds,
                                propagation_policy)
        self._note(resource, out)
        return out


class FreshLister:
    """An informer's cache reads, each first waiting until the cache reflects the
    tracking client's own last write of that resource (StaleCache after `timeout`)."""

    def __init__(self, informer: SharedInformer, writes: TrackingClient, timeout: float = 5.0):
        self.informer, self.writes, self.timeout = informer, writes, timeout

    def _fresh(self) -> Indexer:
        rv = self.writes.written(self.informer.resource)
        if rv and not self.informer.wait_for_resource_version(rv, self.timeout):
            raise StaleCache(f"the {self.informer.resource} cache is at resourceVersion "
                             f"{self.informer.resource_version}, behind our write {rv}")
        return self.informer.indexer

    def get(self, key: str) -> dict | None:
        return self._fresh().get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict | None:
        return self._fresh().get_by_name(name, namespace)

    def list(self, namespace: str | None = None) -> list[dict]:
        return self._fresh().list(namespace)

    def by_index(self, index: str, value: str) -> list[dict]:
        return self._fresh().by_index(index, value)
