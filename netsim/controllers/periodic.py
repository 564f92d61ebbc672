"""Controllers that sweep the whole cluster on a timer (GC, node lifecycle) share this loop."""

from __future__ import annotations

import contextlib
import logging
import threading

log = logging.getLogger("netsim.controllers")


class PeriodicController:
    """Calls `sweep()` every `period` seconds on its own thread until stopped."""

    name = "periodic"

    def __init__(self, client, period: float):
        self.client = client
        self.period = period
        self.stopped = threading.Event()

    def start(self) -> list[threading.Thread]:
        t = threading.Thread(target=self._loop, daemon=True, name=self.name)
        t.start()
        return [t]

    def stop(self) -> None:
        self.stopped.set()

    def _loop(self) -> None:
        while not self.stopped.wait(self.period):
            with contextlib.suppress(Exception):
                self.sweep()

    def sweep(self):
        raise NotImplementedError
