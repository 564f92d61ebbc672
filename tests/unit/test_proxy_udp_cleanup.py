"""kube-proxy's stale UDP conntrack cleanup runs beside the sync loop, not in it (issue #18):
under load `conntrack -L` takes seconds, and a sync that waited for it left a terminating
endpoint in the rules past a 2 s preStop sleep."""

from __future__ import annotations

import threading

from netsim.proxy.agent import UdpCleanup


class SlowCleaner:
    """A StaleEntryCleaner whose listing takes as long as the test says."""

    def __init__(self) -> None:
        self.cleaned: list[object] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def clean(self, snapshot, netns=None):
        self.started.set()
        assert self.release.wait(10)
        self.cleaned.append(snapshot)
        return []


def test_offering_a_snapshot_never_waits_for_the_cleanup_and_the_latest_one_is_cleaned():
    slow = SlowCleaner()
    cleanup = UdpCleanup(None, slow)
    try:
        cleanup.offer("sync 1")
        assert slow.started.wait(10)  # busy listing the table for sync 1
        done = threading.Event()

        def later_syncs() -> None:
            for n in (2, 3, 4):
                cleanup.offer(f"sync {n}")
            done.set()
        threading.Thread(target=later_syncs, daemon=True).start()
        assert done.wait(2), "a sync waited for the conntrack cleanup"
        slow.release.set()
        assert cleanup.idle(10)
        # level-triggered: syncs 2 and 3 are covered by the cleanup of sync 4
        assert slow.cleaned == ["sync 1", "sync 4"]
    finally:
        cleanup.stop()


def test_a_failing_cleanup_does_not_end_the_thread():
    class Failing:
        calls = 0

        def clean(self, snapshot, netns=None):
            Failing.calls += 1
            if Failing.calls == 1:
                raise OSError("conntrack: stuck")
            return []
    cleanup = UdpCleanup(None, Failing())
    try:
        cleanup.offer("a")
        assert cleanup.idle(10)
        cleanup.offer("b")
        assert cleanup.idle(10) and Failing.calls == 2
    finally:
        cleanup.stop()
