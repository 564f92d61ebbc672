"""Daemon processes: start detached and recorded; stop exactly those (by pid + start time)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

from netsim.kubelet import cgroups
from netsim.kubelet.runtime import proc_starttime, processes_in_netns, reap, terminate
from netsim.kubelet.runtime import spawn as _spawn
from netsim.net.ledger import Ledger

__all__ = ["spawn", "python_module", "alive", "processes_in_netns", "processes_in_cgroups",
           "signal_all", "terminate", "stop_all", "reap", "proc_starttime"]


def spawn(ledger: Ledger, role: str, argv: list[str], log_path: str,
          netns: str | None = None) -> int:
    """Start a daemon in its own session (optionally inside a netns) and record it."""
    if netns:
        argv = ["nsenter", f"--net=/var/run/netns/{netns}", "--", *argv]
    pid, st = _spawn(argv, log_path)
    ledger.add("process", role=role, pid=pid, starttime=st)
    return pid


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def alive(rec: dict) -> bool:
    return proc_starttime(rec["pid"]) == rec.get("starttime")


def processes_in_cgroups(records: list[dict]) -> list[tuple[int, int]]:
    """(pid, starttime) of every process in the cgroups the ledger records (not shared ones).

    Only the topmost recorded cgroups are walked (their subtrees hold the rest): walking
    each recorded one read every pod's cgroup.procs three times over."""
    tops = cgroups.top_paths(records)
    out = []
    for top in tops:
        for pid in cgroups.pids(top):
            st = proc_starttime(pid)
            if st is not None:
                out.append((pid, st))
    return list(dict.fromkeys(out))


def signal_all(procs: list[tuple[int, int]], sig: int = signal.SIGTERM) -> None:
    """Send `sig` to each (pid, starttime) still alive."""
    for p, s in procs:
        if proc_starttime(p) == s and p != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)


def stop_all(targets: list[tuple[int, int]], grace: float, kill_wait: float = 1.0) -> None:
    """SIGTERM every (pid, starttime) at once, SIGKILL what outlives `grace`, and wait once
    for all of them: each exit is seen through its pidfd (poll), not by re-reading every
    /proc/<pid>/stat every few milliseconds, and a signal never reaches a recycled pid.
    For processes that are not ours to reap (a `cluster down` stops another process's
    children: a zombie counts as gone, its parent or init reaps it)."""
    me = os.getpid()
    fds: dict[int, int] = {}
    for pid, st in dict.fromkeys(targets):
        if pid == me:
            continue
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already
            continue
        if proc_starttime(pid) != st:  # the pid was reused: not the recorded process
            os.close(fd)
            continue
        fds[fd] = pid
    try:
        _send(fds, signal.SIGTERM)
        left = _wait_exits(fds, grace)
        _send(left, signal.SIGKILL)
        _wait_exits(left, kill_wait)
    finally:
        for fd in fds:
            os.close(fd)


def _send(fds, sig: int) -> None:
    for fd in fds:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, sig)


def _wait_exits(fds, timeout: float) -> list[int]:
    """Wait up to `timeout` s for the processes behind `fds` to exit; the fds still running."""
    poller = select.poll()
    left = set(fds)
    for fd in left:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while left:
        ms = max(0, int((deadline - time.monotonic()) * 1000))
        for fd, _ in poller.poll(ms):
            left.discard(fd)
            poller.unregister(fd)
        if ms == 0:
            break
    return sorted(left)
