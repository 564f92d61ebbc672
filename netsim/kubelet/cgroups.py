"""Container cgroups: every process of a container lives in the container's cgroup (v2).

A real kubelet makes a cgroup per pod (cgroupfs driver: /kubepods/pod<uid>/<container>)
and the runtime kills a container through it, so nothing a container started survives
it, not even a double-forked, setsid'd daemon. netsim does the same, on the unified
hierarchy wherever it is mounted (pure v2 at /sys/fs/cgroup, or /sys/fs/cgroup/unified on
a hybrid layout; no controller needs to be enabled, cgroup.procs and cgroup.kill are core):

    <cgroup2>/netsim/<cluster>/<node>/pod<uid>/ctr-<container>

Every directory is written to the cluster's ledger before it is made (a pod's record
covers its container directories), so `cluster down` kills and removes them even after
SIGKILL of every netsim daemon. Without a usable cgroup2 mount (not root, read-only,
kernel without cgroup v2, or NETSIM_CGROUPS=0 in `cluster up`'s environment) `usable()`
says why, the node gets a Warning event saying so, and the kubelet falls back to killing
what runs in a deleted pod's network namespace.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import signal
import time

from netsim.net.ledger import Ledger

MOUNTINFO = "/proc/self/mountinfo"
TOP = "netsim"


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def cgroup2_mount(mountinfo: str = MOUNTINFO) -> str | None:
    """Where the unified (v2) hierarchy is mounted, from mountinfo (the first one)."""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            return _unescape(left.split()[4])
    return None


@functools.cache
def usable() -> tuple[str | None, str]:
    """(netsim's top cgroup path, "") when cgroup v2 can hold containers, else (None, why)."""
    if os.environ.get("NETSIM_CGROUPS") == "0":
        return None, "turned off by NETSIM_CGROUPS=0"
    mnt = cgroup2_mount()
    if mnt is None:
        return None, "no cgroup2 file system is mounted (see /proc/self/mountinfo)"
    if not os.path.exists(os.path.join(mnt, "cgroup.procs")):
        return None, f"{mnt} is not a cgroup2 hierarchy"
    if not os.access(mnt, os.W_OK):
        return None, f"{mnt} is not writable (netsim runs as root on a read-write cgroup2)"
    return os.path.join(mnt, TOP), ""


def cluster_path(cluster: str) -> str | None:
    top, _ = usable()
    return os.path.join(top, cluster) if top else None


def node_path(cluster: str, node: str) -> str | None:
    c = cluster_path(cluster)
    return os.path.join(c, node) if c else None


def pod_path(node_cgroup: str, uid: str) -> str:
    return os.path.join(node_cgroup, f"pod{uid}")


def container_path(pod_cgroup: str, name: str) -> str:
    """ctr-<name>: never a cgroup interface file name, never a path (odd names are hashed)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}", name):
        name = hashlib.sha256(name.encode()).hexdigest()[:16]
    return os.path.join(pod_cgroup, f"ctr-{name}")


def ensure_node(ledger: Ledger, cluster: str, node: str) -> str:
    """Record and make netsim/<cluster>/<node>; raises OSError when that is impossible.

    The shared top directory is recorded as shared: a cluster's teardown only removes it
    when it is empty (another cluster may use it) and never kills through it."""
    top, why = usable()
    if top is None:
        raise OSError(why)
    cl = os.path.join(top, cluster)
    nd = os.path.join(cl, node)
    ledger.add("cgroup", path=top, shared=True)
    ledger.add("cgroup", path=cl)
    ledger.add("cgroup", path=nd)
    os.makedirs(nd, exist_ok=True)
    return nd


def make_pod(ledger: Ledger, path: str) -> None:
    """A pod's cgroup, recorded before it is made."""
    ledger.add("cgroup", path=path)
    os.makedirs(path, exist_ok=True)


def open_procs(path: str) -> int:
    """Make a container's cgroup and open its cgroup.procs for the new process to join."""
    os.makedirs(path, exist_ok=True)
    return os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)


def join(path: str, pid: int = 0) -> None:
    """Move a process (this one by default) into an existing container cgroup, as `runc
    exec` does: what `netsim exec` runs then dies with the container."""
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid or os.getpid()))


def pids(path: str) -> list[int]:
    """Every process in the cgroup and its descendants."""
    out: list[int] = []
    for d, _, _ in os.walk(path):
        with contextlib.suppress(OSError):
            with open(os.path.join(d, "cgroup.procs")) as f:
                out.extend(int(x) for x in f.read().split())
    return out


def populated(path: str) -> bool:
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            return "populated 1" in f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return bool(pids(path))


def _cgroup_kill(path: str) -> bool | None:
    """Write cgroup.kill (Linux 5.14+: kills the subtree atomically, forks in flight
    included). True when written, False when the kernel has no cgroup.kill, None when the
    cgroup could not be written (removed meanwhile)."""
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    return True


def kill(path: str, timeout: float = 5.0) -> bool:
    """SIGKILL every process in the cgroup subtree and wait until it is empty.

    Older kernels without cgroup.kill get SIGKILL per process until the subtree stays
    empty."""
    if not path or not os.path.isdir(path):
        return True
    written = _cgroup_kill(path)
    if written is None:
        return not populated(path)

    def each_pid() -> None:
        for pid in pids(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return wait_empty([path], timeout, each_round=None if written else each_pid)


def top_paths(records: list[dict]) -> list[str]:
    """The topmost of the cgroups a ledger records (not shared ones): their subtrees hold
    the rest (the cluster's, the nodes' and every pod's cgroup are all recorded)."""
    paths = sorted({r["path"].rstrip("/") for r in records
                    if r.get("kind") == "cgroup" and not r.get("shared")})
    tops: list[str] = []
    for path in paths:  # sorted: an ancestor comes before its descendants
        if not tops or not path.startswith(tops[-1] + "/"):
            tops.append(path)
    return tops


def kill_all(records: list[dict]) -> list[str] | None:
    """`cluster down`: SIGKILL every process of the recorded cgroups with one cgroup.kill
    write per topmost cgroup, all of them before waiting for any: the kernel ends a
    thousand pods' processes at once, where a signal per process (pidfd, a SIGTERM and a
    grace first) took a second of signalling and polling. Returns the cgroups to wait
    for (wait_empty), or None when cgroup.kill is missing (Linux < 5.14: the caller stops
    them by pid)."""
    tops = [t for t in top_paths(records) if os.path.isdir(t)]
    for top in tops:
        if _cgroup_kill(top) is False:
            return None
    return tops


def wait_empty(paths: list[str], timeout: float = 5.0, each_round=None) -> bool:
    """Wait until no process is left in these cgroups; False when one outlived `timeout`.
    `each_round` (optional) runs each time one is still populated, before the sleep
    (kill's SIGKILL per process on kernels without cgroup.kill)."""
    deadline = time.monotonic() + timeout
    wait = 0.0005
    while any(populated(t) for t in paths):
        if each_round is not None:
            each_round()
        if time.monotonic() > deadline:
            return False
        time.sleep(wait)
        wait = min(wait * 2, 0.02)
    return True


def remove(path: str) -> None:
    """rmdir the cgroup subtree, deepest first (a cgroup with processes stays: EBUSY)."""
    if not path or not os.path.isdir(path):
        return
    for d, _, _ in os.walk(path, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def teardown(records: list[dict]) -> None:
    """`cluster down`: kill every process in the recorded cgroups, then remove them (the
    deepest first). A shared directory is only removed when no other cluster uses it."""
    recs = [r for r in records if r.get("kind") == "cgroup"]
    tops = top_paths(recs)  # cgroup.kill and one walk take a subtree: the pods need none
    for top in tops:
        kill(top)
    for top in sorted(tops, key=lambda p: p.count("/"), reverse=True):
        remove(top)
    for r in sorted(recs, key=lambda r: r["path"].count("/"), reverse=True):
        if r.get("shared"):
            with contextlib.suppress(OSError):
                os.rmdir(r["path"])
