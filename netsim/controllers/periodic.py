"""Controllers that sweep the whole cluster on a timer (GC, node lifecycle) share this loop.

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
    """Calls `sweep()` every `period` seconds on its own thread until stopped."""

    name = "periodic"

    def __init__(self, client: Client, period: float, informers: InformerFactory | None = None):
        self.period = period
        super().__init__(client, informers)

    def start(self) -> list[threading.Thread]:
        self._start_informers()
        t = threading.Thread(target=self._loop, daemon=True, name=self.name)
        t.start()
        return [t]

    def _loop(self) -> None:
        if not self.wait_synced():
            return
        while not self.stopped.wait(self.period):
            if not self.needs_sweep():
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
