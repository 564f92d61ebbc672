"""A reconcile that fails because its controller is stopping (the control plane's shutdown
closes the store under it) is no error to report: it is logged at debug, not as a
traceback. One that fails while the controller runs still is."""

from __future__ import annotations

import logging
import threading

from netsim.controllers.base import Controller


class _Failing(Controller):
    name = "failing"
    watches = ("configmaps",)

    def __init__(self, client, stop_first: bool):
        super().__init__(client)
        self.stop_first, self.done = stop_first, threading.Event()

    def keys_for(self, resource, obj):
        return ()

    def reconcile(self, key):
        try:
            if self.stop_first:
                self.stop()  # as the control plane's shutdown does meanwhile
            raise RuntimeError("Cannot operate on a closed database.")
        finally:
            self.done.set()


def _run(client, stop_first: bool, caplog) -> list[logging.LogRecord]:
    c = _Failing(client, stop_first)
    threads = c.start()
    assert c.wait_synced(5.0)
    with caplog.at_level(logging.DEBUG, logger="netsim.controllers"):
        c.queue.add("default/k")
        assert c.done.wait(5.0)
        c.stop()
        for t in threads:
            t.join(5.0)
    return [r for r in caplog.records if "default/k" in r.getMessage()]


def test_a_reconcile_failing_as_its_controller_stops_is_logged_at_debug(client, caplog):
    (rec,) = _run(client, True, caplog)
    assert rec.levelno == logging.DEBUG and "stopped mid-reconcile" in rec.getMessage()
    assert rec.exc_info is None


def test_a_reconcile_failing_while_running_is_an_error_with_its_traceback(client, caplog):
    recs = _run(client, False, caplog)
    assert any(r.levelno == logging.ERROR and r.exc_info for r in recs)
