"""Backoff policies: one for a reflector's list/watch retries, one per work-queue item.

Both are client-go's: the reflector's backoff manager (exponential, jittered, capped, reset
once the connection is healthy again) and workqueue's ItemExponentialFailureRateLimiter
(base * 2^failures, capped, per key, forgotten on success). The numbers are smaller than
client-go's because a netsim cluster is small, local and watched by a person.
"""

from __future__ import annotations

import random
import threading


class Backoff:
    """Exponential delays with jitter and a cap: initial, initial*factor, ... <= cap.

    Each delay is stretched by up to `jitter` of itself (client-go's wait.Jitter), so
    many watchers that lost the same API server do not come back in step.
    """

    def __init__(self, initial: float = 0.2, cap: float = 5.0, factor: float = 2.0,
                 jitter: float = 0.5, rand: random.Random | None = None):
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._rand = rand or random.Random()
        self._step = initial

    def next(self) -> float:
        """The next delay to wait; the one after is longer (up to the cap)."""
        base = self._step
        self._step = min(self._step * self.factor, self.cap)
        return base + self._rand.random() * self.jitter * base

    def reset(self) -> None:
        """Back to the initial delay (after a healthy list and watch)."""
        self._step = self.initial

    def wait(self, stop: threading.Event) -> bool:
        """Wait the next delay unless `stop` is set first; True if stopped."""
        return stop.wait(self.next())


class ItemBackoff:
    """Per-key exponential failure delays (workqueue.ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = 0.005, cap: float = 10.0):
        self.base, self.cap = base, cap
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def when(self, key: str) -> float:
        """The delay before retrying `key` after one more failure."""
        with self._lock:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        if n > 60:  # 2**n would only overflow the cap anyway
            return self.cap
        return min(self.base * (2 ** n), self.cap)

    def failures(self, key: str) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
