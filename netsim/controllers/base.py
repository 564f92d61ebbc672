"""A level-triggered controller runner: list + watch -> work queue of keys -> reconcile(key).

Reconcile reads the current state from the API every time (no truth kept in memory), so
a missed event or a restart only delays convergence; a periodic resync re-queues every key.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable

from netsim.api import errors
from netsim.api.client import Client

log = logging.getLogger("netsim.controllers")


class WorkQueue:
    """Deduplicating queue with delayed adds; one key is never handled by two workers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[str] = []
        self._queued: set[str] = set()
        self._delayed: list[tuple[float, str]] = []
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._closed = False

    def close(self) -> None:
        """Wake every get() now and from now on return None (shutting down)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def add(self, key: str, after: float = 0.0) -> None:
        with self._cond:
            if after > 0:
                heapq.heappush(self._delayed, (time.monotonic() + after, key))
            elif key in self._active:
                self._dirty.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
            self._cond.notify()

    def get(self, timeout: float = 1.0) -> str | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, key = heapq.heappop(self._delayed)
                    if key in self._active:
                        self._dirty.add(key)
                    elif key not in self._queued:
                        self._queued.add(key)
                        self._ready.append(key)
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    self._active.add(key)
                    return key
                wait = deadline - now
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                if wait <= 0:
                    return None
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        with self._cond:
            self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._queued.add(key)
                self._ready.append(key)
                self._cond.notify()


class Controller:
    """Subclasses set `watches` and implement keys_for() and reconcile()."""

    name = "controller"
    watches: tuple[str, ...] = ()
    resync_seconds = 30.0
    workers = 1

    def __init__(self, client: Client):
        self.client = client
        self.queue = WorkQueue()
        self.stopped = threading.Event()

    # -- to implement -----------------------------------------------------------------
    def keys_for(self, resource: str, obj: dict) -> Iterable[str]:
        md = obj.get("metadata", {})
        ns = md.get("namespace")
        return [f"{ns}/{md['name']}" if ns else md["name"]]

    def reconcile(self, key: str) -> float | None:
        """Converge one key. Return seconds to re-check it later, or None."""
        raise NotImplementedError

    def all_keys(self) -> Iterable[str]:
        for res in self.watches[:1]:
            for obj in self.client.list(res):
                yield from self.keys_for(res, obj)

    # -- runner -----------------------------------------------------------------------
    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._watch_loop, args=(r,), daemon=True,
                                    name=f"{self.name}-watch-{r}") for r in self.watches]
        threads += [threading.Thread(target=self._work_loop, daemon=True,
                                     name=f"{self.name}-worker{i}") for i in range(self.workers)]
        threads.append(threading.Thread(target=self._resync_loop, daemon=True,
                                        name=f"{self.name}-resync"))
        for t in threads:
            t.start()
        return threads

    def stop(self) -> None:
        self.stopped.set()

    def _watch_loop(self, resource: str) -> None:
        while not self.stopped.is_set():
            try:
                items, rv = self.client.list_rv(resource)
                for obj in items:
                    for k in self.keys_for(resource, obj):
                        self.queue.add(k)
                for etype, obj in self.client.watch(resource, resource_version=rv, timeout=60):
                    if self.stopped.is_set():
                        return
                    if etype == "BOOKMARK":
                        continue
                    for k in self.keys_for(resource, obj):
                        self.queue.add(k)
            except Exception as e:  # keep watching whatever happens
                if not self.stopped.is_set():
                    log.debug("%s: watch %s: %s", self.name, resource, e)
                    time.sleep(0.5)

    def _resync_loop(self) -> None:
        while not self.stopped.wait(self.resync_seconds):
            try:
                for k in self.all_keys():
                    self.queue.add(k)
            except Exception as e:
                log.debug("%s: resync: %s", self.name, e)

    def _work_loop(self) -> None:
        while not self.stopped.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                after = self.reconcile(key)
                if after:
                    self.queue.add(key, after=after)
            except errors.Conflict:
                self.queue.add(key, after=0.05)
            except Exception:
                log.exception("%s: reconcile %s failed", self.name, key)
                self.queue.add(key, after=1.0)
            finally:
                self.queue.done(key)


def split_key(key: str) -> tuple[str | None, str]:
    if "/" in key:
        ns, name = key.split("/", 1)
        return ns, name
    return None, key
