"""kube-proxy syncs through upstream's BoundedFrequencyRunner bucket (minSyncPeriod 1 s,
a burst of 2): a change after a quiet spell is synced at once, a stream of changes (a
rollout's EndpointSlice writes, each read by every node's kube-proxy) at most once a
second, so a node's sync work stops growing with the rate of changes (issue #16)."""

from __future__ import annotations

from types import SimpleNamespace

from netsim.proxy.agent import MIN_SYNC_SECONDS, KubeProxy, SyncLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_of_two_then_one_per_period():
    clock = Clock()
    lim = SyncLimiter(1.0, 2, clock)
    for _ in range(2):  # a quiet spell's first changes: at once
        assert lim.wait_time() == 0
        lim.take()
    assert lim.wait_time() == 1.0  # the third waits a period
    clock.t += 0.4
    assert abs(lim.wait_time() - 0.6) < 1e-9
    clock.t += 0.6
    assert lim.wait_time() == 0
    lim.take()
    # a stream of 50 changes over 10 s: at most 2 + 10 syncs
    syncs, t_end = 0, clock.t + 10
    while clock.t < t_end:
        if lim.wait_time() == 0:
            lim.take()
            syncs += 1
        clock.t += 0.2
    assert syncs <= 11
    clock.t += 60  # quiet again: the burst is back, no more
    assert lim.wait_time() == 0
    lim.take()
    lim.take()
    assert lim.wait_time() > 0


def test_zero_period_never_waits():
    lim = SyncLimiter(0.0, 2, Clock())
    for _ in range(10):
        assert lim.wait_time() == 0
        lim.take()


def test_modes_take_upstreams_min_sync_period():
    class Factory:
        def informer(self, resource):
            return SimpleNamespace(add_handler=lambda **kw: None)
    for mode in ("iptables", "nftables", "ipvs"):
        kp = KubeProxy(None, SimpleNamespace(proxy_mode=mode), SimpleNamespace(name="n"),
                       factory=Factory(), hold_node_ports=False)  # type: ignore[arg-type]
        assert kp.limiter.period == MIN_SYNC_SECONDS[mode] == (0.0 if mode == "ipvs" else 1.0)
