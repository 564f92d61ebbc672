"""Daemon processes: start detached and recorded; stop exactly those (by pid + start time)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from netsim.kubelet import cgroups
from netsim.kubelet.runtime import proc_starttime, processes_in_netns, terminate
from netsim.kubelet.runtime import spawn as _spawn
from netsim.net.ledger import Ledger

__all__ = ["spawn", "python_module", "alive", "processes_in_netns", "processes_in_cgroups",
           "signal_all", "terminate"]


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
    """(pid, starttime) of every process in the cgroups the ledger records (not shared ones)."""
    out = []
    for r in records:
        if r.get("kind") == "cgroup" and not r.get("shared"):
            for pid in cgroups.pids(r["path"]):
                st = proc_starttime(pid)
                if st is not None:
                    out.append((pid, st))
    return list(dict.fromkeys(out))  # nested records list a process more than once


def signal_all(procs: list[tuple[int, int]], sig: int = signal.SIGTERM) -> None:
    """Send `sig` to each (pid, starttime) still alive."""
    for p, s in procs:
        if proc_starttime(p) == s and p != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
