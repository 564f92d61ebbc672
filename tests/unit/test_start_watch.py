"""runtime.StartWatch: a process that starts slowly but works (uses CPU) is waited for; one
that sits idle is given up on after `idle` seconds; the looks get rarer as the wait grows."""

from __future__ import annotations

import subprocess
import sys
import time

from netsim.kubelet import runtime


def _watch_for(argv: list[str], idle: float, seconds: float) -> tuple[bool, float]:
    p = subprocess.Popen(argv)
    try:
        w = runtime.StartWatch(p.pid, idle, limit=30)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if w.expired():
                return True, time.monotonic() - t0
            time.sleep(w.poll())
        return False, time.monotonic() - t0
    finally:
        p.kill()
        p.wait()


def test_a_busy_start_is_waited_for_an_idle_one_is_not():
    busy, _ = _watch_for([sys.executable, "-c", "while True: pass"], idle=1.0, seconds=3.5)
    assert not busy  # past its idle time several times over, but it works
    idle, after = _watch_for(["sleep", "30"], idle=1.0, seconds=8)
    assert idle and after < 4


def test_the_limit_holds_and_looks_get_rarer():
    w = runtime.StartWatch(1 << 22, idle=10, limit=0.0)  # no such process
    assert w.expired()
    w = runtime.StartWatch(1 << 22, idle=10)
    assert w.poll() == 0.005
    w.t0 -= 1.0
    assert 0.25 <= w.poll() < 0.3
    w.t0 -= 100.0
    assert w.poll() == 0.5
