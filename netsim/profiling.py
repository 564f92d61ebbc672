"""Opt-in profiling of netsim's daemons: NETSIM_PROFILE=/dir makes the control plane and
node agents write yappi (all threads, CPU clock) stats there when they stop. Set it for
`cluster down` too: without it the daemons are stopped before yappi has written its stats.
(Under a loaded machine, py-spy's --gil samples count a GIL holder the OS has descheduled:
the CPU clock is the figure to trust.)"""

from __future__ import annotations

import atexit
import os

_dumps: list = []


def maybe_start(role: str) -> None:
    out = os.environ.get("NETSIM_PROFILE")
    if not out:
        return
    try:
        import yappi
    except ImportError:
        return
    yappi.set_clock_type("cpu")
    yappi.start()

    def dump() -> None:
        yappi.stop()
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, f"{role}.txt"), "w") as f:
            yappi.get_func_stats().sort("ttot").print_all(
                out=f, columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)})
    _dumps.append(dump)
    atexit.register(dump_now)


def dump_now() -> None:
    """Write the stats now (once): for a daemon that leaves with os._exit, which runs no
    atexit hook."""
    while _dumps:
        _dumps.pop()()
