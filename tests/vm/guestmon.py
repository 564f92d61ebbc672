"""Where the guest's CPU goes, for the VM scenarios: every `interval` s one `NSIM mon` line
with the CPU the guest was busy (of what its vCPUs had, from the kernel's ticks), the
processes started meanwhile (/proc/stat's `processes`: under emulation each start of an
iptables/ipset/ipvsadm/python costs a second or more) and the top processes by CPU with
their command lines (their own clock, which under TCG runs ahead of the ticks). Read from /proc in the scenario's
own interpreter: no process is started to look.
"""

from __future__ import annotations

import os
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (utime + stime ticks, command line)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            rest = stat.rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            out[int(pid)] = (int(rest[11]) + int(rest[12]),
                             cmd[:100] or stat.split("(", 1)[1].split(")")[0])
        except (OSError, IndexError, ValueError):
            pass
    return out


def _cpu() -> tuple[int, int, int]:
    """(busy ticks, all ticks, processes started) since boot."""
    busy = total = forks = 0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = [int(x) for x in line.split()[1:8]]
                total, busy = sum(ticks), sum(ticks) - ticks[3] - ticks[4]
            elif line.startswith("processes"):
                forks = int(line.split()[1])
    return busy, total, forks


def line(prev: dict, cur: dict, d_busy: int, d_all: int, d_forks: int, t: float,
         top: int = 6) -> str:
    deltas = sorted(((ticks - prev.get(pid, (0, ""))[0], pid, cmd)
                     for pid, (ticks, cmd) in cur.items()
                     if ticks > prev.get(pid, (0, ""))[0]), reverse=True)
    tops = "; ".join(f"{d / HZ:.1f}s {pid} {cmd}" for d, pid, cmd in deltas[:top])
    return (f"NSIM mon t={t:.0f} busy={d_busy / HZ:.1f}/{d_all / HZ:.1f}s "
            f"started={d_forks} top: {tops}")


def _say(text: str) -> None:
    """To the console, whatever sys.stdout is meanwhile (the scenario captures the output
    of the CLI commands it runs in-process with redirect_stdout)."""
    sys.__stdout__.write(text + "\n")
    sys.__stdout__.flush()


def start(interval: float = 30.0, t0: float | None = None) -> threading.Thread:
    """Print a line every `interval` s until the process exits (a daemon thread)."""
    t0 = time.monotonic() if t0 is None else t0

    def run() -> None:
        prev, (busy, total, forks) = processes(), _cpu()
        while True:
            time.sleep(interval)
            cur, (b, a, f) = processes(), _cpu()
            _say(line(prev, cur, b - busy, a - total, f - forks, time.monotonic() - t0))
            prev, busy, total, forks = cur, b, a, f
    th = threading.Thread(target=run, daemon=True, name="guestmon")
    th.start()
    return th


def summarize_collapsed(text: str, top: int = 12) -> tuple[list, list]:
    """py-spy's raw (collapsed) stacks -> ([(samples, leaf frame)], [(samples, netsim
    frame, inclusive)]), most first."""
    leaf: dict[str, int] = {}
    incl: dict[str, int] = {}
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + int(n)
        for f in set(frames):
            if "netsim/" in f:
                incl[f] = incl.get(f, 0) + int(n)
    order = lambda d: sorted(((v, k) for k, v in d.items()), reverse=True)[:top]  # noqa: E731
    return order(leaf), order(incl)


def profile_hottest(pyspy: str, every: float = 60.0, seconds: float = 20.0,
                    t0: float | None = None) -> threading.Thread:
    """Every `every` s, sample the python process that used the most CPU meanwhile with
    py-spy for `seconds` and print where its time went (NSIM prof lines)."""
    import subprocess
    t0 = time.monotonic() if t0 is None else t0

    def run() -> None:
        prev = processes()
        while True:
            time.sleep(every)
            cur = processes()
            hot = sorted(((t - prev.get(p, (0, ""))[0], p, c) for p, (t, c) in cur.items()
                          if "python" in c and p != os.getpid()), reverse=True)
            prev = cur
            if not hot or hot[0][0] < HZ:
                continue
            _, pid, cmd = hot[0]
            out = f"/tmp/pyspy-{pid}.txt"
            p = subprocess.run([pyspy, "record", "--pid", str(pid), "--duration",
                                str(int(seconds)), "--rate", "20", "--nonblocking",
                                "--threads", "--format", "raw", "-o", out],
                               capture_output=True, text=True, timeout=seconds * 20)
            try:
                with open(out) as f:
                    leaf, incl = summarize_collapsed(f.read())
            except OSError:
                _say(f"NSIM prof pid={pid} failed: {p.stderr[-300:]}")
                continue
            t = time.monotonic() - t0
            _say(f"NSIM prof t={t:.0f} pid={pid} {cmd[:80]}")
            _say("NSIM prof leaf: " + "; ".join(f"{n} {f[:110]}" for n, f in leaf))
            _say("NSIM prof netsim: " + "; ".join(f"{n} {f[:110]}" for n, f in incl))
    th = threading.Thread(target=run, daemon=True, name="guestprof")
    th.start()
    return th
