"""A work queue of keys in the style of client-go's workqueue (rate limiting + delaying).

- A key is queued at most once however often it is added (dedup).
- A key being processed (between get() and done()) is never handed to a second worker;
  adds meanwhile mark it dirty and it is queued again when done() is called.
- add_after(key, s) holds a key back; a key waiting for a later time is moved earlier,
  never later (the sooner wish wins, as client-go's delaying queue does).
- add_rate_limited(key) waits the key's own exponential backoff; forget(key) resets it.
- shutdown() wakes every get(), which returns None from then on.

There is no background thread: get() moves due delayed keys to the ready list itself.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque

from netsim.machinery.backoff import ItemBackoff


class WorkQueue:
    """Deduplicating, delaying, rate-limited queue of string keys; thread-safe."""

    def __init__(self, rate_limiter: ItemBackoff | None = None):
        self._cond = threading.Condition()
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()        # in _ready
        self._active: set[str] = set()        # handed out, done() not yet called
        self._dirty: set[str] = set()         # added while active: queue again on done()
        self._waiting: dict[str, float] = {}  # key -> when it becomes ready
        self._heap: list[tuple[float, str]] = []  # (when, key); stale entries skipped
        self._closed = False
        self.rate_limiter = rate_limiter or ItemBackoff()

    # -- adding --------------------------------------------------------------------------
    def add(self, key: str, after: float = 0.0) -> None:
        """Queue `key` now (or after `after` seconds: the old WorkQueue's signature)."""
        if after > 0:
            self.add_after(key, after)
            return
        with self._cond:
            if self._closed:
                return
            self._make_ready(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (an earlier wish is kept)."""
        if delay <= 0:
            self.add(key)
            return
        when = time.monotonic() + delay
        with self._cond:
            if self._closed:
                return
            cur = self._waiting.get(key)
            if cur is not None and cur <= when:
                return
            self._waiting[key] = when
            heapq.heappush(self._heap, (when, key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> None:
        """Queue `key` after its per-key backoff (longer after each failure)."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts the backoff from the beginning."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self.rate_limiter.failures(key)

    # -- taking ------------------------------------------------------------------------
    def get(self, timeout: float | None = 1.0) -> str | None:
        """The next ready key (now being processed), or None on timeout or after shutdown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                self._promote_due(now)
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._active.add(key)
                    return key
                waits = []
                if deadline is not None:
                    waits.append(deadline - now)
                if self._heap:
                    waits.append(self._heap[0][0] - now)
                wait = min(waits) if waits else None
                if wait is not None and wait <= 0:
                    if deadline is not None and deadline <= now:
                        return None
                    continue
                self._cond.wait(wait)

    def done(self, key: str) -> None:
        """Processing of `key` finished; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                if not self._closed:
                    self._make_ready(key)
                    self._cond.notify()

    # -- lifecycle ---------------------------------------------------------------------
    def shutdown(self) -> None:
        """Wake every get() now; from now on get() returns None and adds are ignored."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    close = shutdown  # the old WorkQueue's name

    @property
    def shutting_down(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        """Keys ready to be handed out (not the delayed or the active ones)."""
        with self._cond:
            return len(self._ready)

    # -- internals (hold the lock) ------------------------------------------------------
    def _make_ready(self, key: str) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)

    def _promote_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._waiting.get(key) != when:
                continue  # superseded by an earlier add_after
            del self._waiting[key]
            self._make_ready(key)
