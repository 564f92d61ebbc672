"""Controllers that sweep on a timer (GC, node lifecycle) share this loop.

They read informer caches (`watches`) like the queue-driven controllers, so a sweep every
second costs no API list; see netsim.controllers.base.
"""

from __future__ import annotations

import logging
import threading

from netsim.api.client import Client
from netsim.controllers.base import Informed
from netsim.machinery import InformerFactory

log = logging.getLogger("netsim.controllers")


class PeriodicController(Informed):
    """Calls `tick()` (the whole `sweep()` unless a controller does less) every `period`
    seconds on its own thread until stopped, or sooner when woken (`wake()`): a controller
    that learns of work from its informers' events passes over it at once, not at the
    period's end."""

    name = "periodic"
    # After a wake, how long more events may gather before the pass: a burst of changes
    # (a 5,000-pod Deployment created) is a pass each `batch` seconds, not one per event.
    batch = 0.05

    def __init__(self, client: Client, period: float, informers: InformerFactory | None = None):
        self.period = period
        self._wake = threading.Event()
        super().__init__(client, informers)

    def start(self) -> list[threading.Thread]:
        self._start_informers()
        t = threading.Thread(target=self._loop, daemon=True, name=self.name)
        t.start()
        return [t]

    def wake(self) -> None:
        """Pass over the work now (after `batch`), not at the period's end."""
        self._wake.set()

    def stop(self) -> None:
        super().stop()
        self._wake.set()  # the loop waits on it

    def _loop(self) -> None:
        if not self.wait_synced():
            return
        while not self.stopped.is_set():
            if self._wake.wait(self.period) and self.stopped.wait(self.batch):
                break
            self._wake.clear()
            if self.stopped.is_set() or not self.needs_sweep():
                continue
            try:
                self.tick()
            except Exception:
                log.exception("%s: sweep failed", self.name)

    def needs_sweep(self) -> bool:
        """Whether this period's sweep has anything to do (always, unless a controller
        knows better: see GarbageCollector)."""
        return True

    def tick(self) -> None:
        """This period's pass: the whole sweep, unless a controller can do less (see
        GarbageCollector)."""
        self.sweep()

    def sweep(self):
        raise NotImplementedError
