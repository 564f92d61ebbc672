"""Daemon processes: start detached and recorded; stop exactly those (by pid + start time)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from netsim.kubelet.runtime import proc_starttime
from netsim.net.ledger import Ledger


def spawn(ledger: Ledger, role: str, argv: list[str], log_path: str,
          netns: str | None = None) -> int:
    """Start a daemon in its own session (optionally inside a netns) and record it."""
    if netns:
        argv = ["nsenter", f"--net=/var/run/netns/{netns}", "--", *argv]
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True, cwd="/")
    st = None
    for _ in range(200):
        st = proc_starttime(p.pid)
        if st is not None:
            break
        time.sleep(0.001)
    ledger.add("process", role=role, pid=p.pid, starttime=st or 0)
    return p.pid


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def alive(rec: dict) -> bool:
    return proc_starttime(rec["pid"]) == rec.get("starttime")


def processes_in_netns(inodes: set[int]) -> list[tuple[int, int]]:
    """(pid, starttime) of every process whose network namespace is one of `inodes`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            link = os.readlink(f"/proc/{d}/ns/net")
        except OSError:
            continue
        if link.startswith("net:[") and int(link[5:-1]) in inodes:
            st = proc_starttime(int(d))
            if st is not None:
                out.append((int(d), st))
    return out


def signal_all(procs: list[tuple[int, int]], sig: int = signal.SIGTERM) -> None:
    """Send `sig` to each (pid, starttime) still alive."""
    for p, s in procs:
        if proc_starttime(p) == s and p != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)


def terminate(procs: list[tuple[int, int]], grace: float = 1.0) -> None:
    """SIGTERM each (pid, starttime) still alive, SIGKILL whatever outlives `grace`."""
    live = [(p, s) for p, s in procs if proc_starttime(p) == s and p != os.getpid()]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        _reap()
        live = [(p, s) for p, s in live if proc_starttime(p) == s]
        if live:
            time.sleep(0.01)
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    for _ in range(100):
        _reap()
        live = [(p, s) for p, s in live if proc_starttime(p) == s]
        if not live:
            return
        time.sleep(0.01)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
