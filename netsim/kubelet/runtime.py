"""Container processes: start one inside a pod's namespaces, find it again after a restart.

There is no container runtime: a container is one process tree started through
`ip netns exec <netns> unshare --uts --mount` (own hostname, the pod's resolv.conf/hosts
bind-mounted). Its first act is to join the container's cgroup (netsim.kubelet.cgroups),
before it can fork, so every process it ever starts is killed with it. Each leader is
recorded with its kernel start time, so an agent that restarts re-adopts the very same
process and never starts a duplicate.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field

from netsim.kubelet import cgroups
from netsim.net.ledger import state_dir

# $1 hostname, $2 dir with resolv.conf/hosts to bind (may be empty), then argv. The
# container's mount namespace keeps no copy of the node's /run/netns (it would pin every
# netns listed there: netsim.kubelet.mounter.own_netns_only).
# $3: a file of "source<TAB>target[<TAB>ro]" lines to bind-mount (the container's volumes,
# netsim.kubelet.volumes), may be empty; the shell then re-enters its working directory
# (a volume may now be mounted there).
# $4: "cgroup" when stdin is the container's cgroup.procs (opened by the kubelet: `ip
# netns exec` mounts a fresh /sys without cgroupfs), else empty: the shell ($$ is the
# leader: ip and unshare exec without forking) moves itself into the cgroup before
# anything else runs, or the container fails with 125 (a runtime error); then stdin is
# /dev/null again.
_LAUNCH = ('if [ -n "$4" ]; then echo $$ >&0 || exit 125; exec </dev/null; fi; '
           'umount -l /run/netns 2>/dev/null; hostname "$1" 2>/dev/null; d="$2"; b="$3"; shift 4; '
           'if [ -n "$d" ]; then for f in resolv.conf hosts; do '
           '[ -f "$d/$f" ] && mount --bind "$d/$f" "/etc/$f"; done; fi; '
           'if [ -n "$b" ] && [ -f "$b" ]; then tab=$(printf "\\t"); '
           'while IFS="$tab" read -r src dst ro; do { mount --bind "$src" "$dst" && '
           '{ [ -z "$ro" ] || mount -o remount,bind,ro "$dst"; }; } || '
           'echo "netsim: cannot mount $src on $dst" >&2; done < "$b"; '
           'cd "$PWD" 2>/dev/null; fi; exec "$@"')


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: identifies a process beyond pid reuse (None once it
    is gone or a zombie)."""
    rest = _stat(pid)
    return None if rest is None or rest[0] == "Z" else int(rest[19])


def _started(pid: int) -> int | None:
    """The start time of `pid`, a zombie's too."""
    rest = _stat(pid)
    return None if rest is None else int(rest[19])


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state first). Read with os.read,
    not open(): a tcpSocket probe reads it each time (alive()), and through a buffered
    text file a read cost 11 us instead of 4.5."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.rpartition(b")")[2].decode("ascii", "replace").split() or None


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process in clock ticks (None once it is gone)."""
    rest = _stat(pid)
    try:
        return None if rest is None else int(rest[11]) + int(rest[12])
    except (IndexError, ValueError):
        return None


# kubelet's --runtime-request-timeout (default 2m0s): how long a runtime operation (here:
# a pod's holder or the image server coming up) may take in all, however busy the machine
START_LIMIT_SECONDS = 120.0


class StartWatch:
    """How long to wait for a process we started to get somewhere: `idle` s after it last
    used CPU (a process starting on a slow or emulated machine, importing for seconds, is
    slow, not stuck), at most `limit` s in all; and how long to sleep between looks (5 ms
    at first, then a quarter of the time waited so far, at most 0.5 s: no busy polling of
    /proc while the process needs the CPU itself)."""

    def __init__(self, pid: int, idle: float, limit: float = START_LIMIT_SECONDS) -> None:
        self.pid, self.idle = pid, idle
        self.t0 = time.monotonic()
        self.deadline, self.end = self.t0 + idle, self.t0 + limit
        self.ticks = cpu_ticks(pid)

    def expired(self) -> bool:
        now = time.monotonic()
        ticks = cpu_ticks(self.pid)
        if ticks is not None and ticks != self.ticks:
            self.ticks, self.deadline = ticks, now + self.idle
        return now >= self.deadline or now >= self.end

    def poll(self) -> float:
        """Seconds to the next look."""
        return min(max(0.005, (time.monotonic() - self.t0) / 4), 0.5)


def cmdline(pid: int) -> list[str] | None:
    """The argv a process runs now (None once it is gone), without trailing empty
    arguments, as `ps` shows it: a child of the image server shows the server's argv until
    it writes its own, with 2 KiB of NULs after it (thousands of empty strings, decoded on
    each look at a starting pod)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            data = f.read().rstrip(b"\0")
    except OSError:
        return None
    return [a.decode(errors="replace") for a in data.split(b"\0")] if data else []


def launched(pid: int, argv: list[str]) -> bool:
    """Whether the launcher (ip netns exec, unshare, its shell) has exec'd the container's
    own argv: its namespaces, hostname and mounts are in place."""
    cl = cmdline(pid)
    if not cl:
        return False
    # (a child of the image server shows the server's argv until it is in its namespaces)
    return cl == argv or (cl[0] not in ("ip", "unshare", "nsenter") and _LAUNCH not in cl
                          and not any(a.endswith("/images/zygote.py") for a in cl[1:3]))


@dataclass
class ContainerRecord:
    name: str
    pid: int = 0
    starttime: int = 0
    started_at: str = ""
    restart_count: int = 0
    exit_code: int | None = None
    finished_at: str = ""
    reason: str = ""
    log_path: str = ""
    killed_by_us: bool = False
    last_terminated: dict = field(default_factory=dict)
    cgroup: str = ""  # every process of the container, "" without cgroup v2
    finished_mono: float = 0.0  # time.monotonic() when its exit was noticed (the back-off)
    backoff_noted: int = -1  # the restart count whose BackOff event was recorded
    exit_file: str = ""  # forked by the image server: it writes the exit code here

    def alive(self) -> bool:
        return bool(self.pid) and self.exit_code is None and proc_starttime(self.pid) == self.starttime


@dataclass
class PodRecord:
    """What the kubelet knows locally about one pod (saved as JSON next to its logs)."""

    uid: str
    namespace: str
    name: str
    netns: str = ""
    ip: str = ""
    host_network: bool = False
    cgroup: str = ""  # the pod's cgroup (its containers' are below it), "" without v2
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, "pod.json.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(asdict(self)))  # dumps uses the C encoder, dump does not
        os.replace(tmp, os.path.join(directory, "pod.json"))

    @classmethod
    def load(cls, directory: str) -> PodRecord | None:
        try:
            with open(os.path.join(directory, "pod.json")) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError):
            return None
        data["containers"] = {k: ContainerRecord(**v) for k, v in data.get("containers", {}).items()}
        return cls(**data)


# On-disk layout, read by `netsim logs`/`exec` as well as the kubelet:
# <state>/nodes/<node>/pods/<namespace>_<name>_<uid>/{pod.json, <container>/<restarts>.log}
def node_root(cluster: str, node: str) -> str:
    return os.path.join(state_dir(cluster), "nodes", node)


def node_disk_root(cluster: str, node: str) -> str:
    """The node's pods' disk volumes (node_root is on a tmpfs; this on the disk)."""
    return os.path.join(state_dir(cluster), "disk", node)


def pod_dir(node_dir: str, namespace: str, name: str, uid: str) -> str:
    return os.path.join(node_dir, "pods", f"{namespace}_{name}_{uid}")


def log_path(pod_directory: str, container: str, restart_count: int) -> str:
    return os.path.join(pod_directory, container, f"{restart_count}.log")


# Every child spawn() started and reap() has not collected, by pid. A Popen dropped while
# its child runs goes to subprocess's _active list, and the next Popen anywhere in the
# process waitpid()s it: a container's exit code (an init container's 3) was read as 0.
_CHILDREN: dict[int, subprocess.Popen] = {}


def spawn(argv: list[str], log_path: str, *, env: dict[str, str] | None = None,
          cwd: str = "/", stdin: int = subprocess.DEVNULL) -> tuple[int, int]:
    """Start a detached process (own session, stdout+stderr appended to `log_path`);
    returns (pid, kernel start time). Daemons and containers both start here."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    # 0600 like every log and state file of a cluster (they may hold Secrets' values)
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                           0o600), "ab") as log:
        p = subprocess.Popen(argv, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                             env=env, cwd=cwd if os.path.isdir(cwd) else "/",
                             start_new_session=True, close_fds=True)
    _CHILDREN[p.pid] = p
    st = None
    for _ in range(200):
        st = proc_starttime(p.pid)
        if st is not None:
            break
        time.sleep(0.001)
    return p.pid, st or 0


def start(argv: list[str], *, netns: str, hostname: str, etc_dir: str, env: dict[str, str],
          log_path: str, cwd: str = "/", binds_file: str = "", cgroup: str = "",
          mount_ns: str = "") -> tuple[int, int]:
    """Start a container process (in `cgroup` when given); returns (pid, starttime).

    With `mount_ns` (the pod's, /proc/<holder>/ns/mnt: netsim.kubelet.volumes) the
    container's own mount namespace is a copy of the pod's, not of the host's.
    Whatever a previous run of the container left in its cgroup is killed first."""
    fd = -1
    if cgroup:
        cgroups.kill(cgroup)
        fd = cgroups.open_procs(cgroup)
    cmd = ["ip", "netns", "exec", netns, "unshare", "--uts", "--mount", "--propagation",
           "private", "sh", "-c", _LAUNCH, "sh", hostname, etc_dir, binds_file,
           "cgroup" if fd >= 0 else "", *argv]
    if mount_ns:
        # A copy of a pivoted namespace keeps the old working directory (unreachable):
        # unshare enters it again in the container's own namespace.
        root = os.path.dirname(os.path.dirname(mount_ns)) + "/root"  # /proc/<holder>/root
        wd = cwd if os.path.isdir(root + cwd) else "/"
        # --root: the holder's root (the namespace's own root is not it when the node's root
        # is a chroot, as in a VM booted from an initramfs)
        cmd = ["nsenter", f"--mount={mount_ns}", f"--root={root}", f"--wd={wd}", "--", *cmd[:5],
               f"--wd={wd}", *cmd[5:]]
    try:
        return spawn(cmd, log_path, env=env, cwd=cwd,
                     stdin=fd if fd >= 0 else subprocess.DEVNULL)
    finally:
        if fd >= 0:
            os.close(fd)


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


# Exit codes reap() collected and nobody has claimed yet (take_exit), by pid: whichever
# thread reaps a container (the monitor, a stop's wait, a cleanup) files its code here, so
# the status shows the container's own code (143 for a SIGTERM it did not handle), not a
# guess. Bounded: codes of processes nobody asks about (holders, servers) are dropped.
_EXITED: dict[int, int] = {}
_EXITED_MAX = 4096
_EXITED_LOCK = threading.Lock()


def reap(pids, not_children: set[int] | None = None) -> dict[int, int]:
    """Collect exit codes of the given children that exited (non-blocking); each is also
    kept for take_exit().

    Only these pids: a waitpid(-1) would steal the exit status of subprocesses other
    threads are waiting for (iptables-restore, probes), which then look successful.
    Pids that are not (or no longer) our children go into `not_children`.
    """
    out = {}
    for pid in pids:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            _forget_child(pid, 0)
            if not_children is not None:
                not_children.add(pid)
            continue  # not our child (adopted after a restart) or already reaped
        if got == 0:
            continue
        code = os.waitstatus_to_exitcode(status)
        out[pid] = 128 - code if code < 0 else code  # killed by signal N -> 128+N
        _forget_child(pid, out[pid])
    if out:
        with _EXITED_LOCK:
            _EXITED.update(out)
            while len(_EXITED) > _EXITED_MAX:
                del _EXITED[next(iter(_EXITED))]
    return out


def take_exit(pid: int) -> int | None:
    """The exit code reap() collected for `pid` (once: the next process with that pid has
    its own), or None when it has not been reaped here."""
    with _EXITED_LOCK:
        return _EXITED.pop(pid, None)


def collect(procs: list[tuple[int, int]], timeout: float = 1.0) -> None:
    """Reap these (pid, starttime) children once they are dead (killed, their cgroup
    empty), waiting up to `timeout` s for any still dying. A zombie nobody reaps stays in
    `ps` for as long as the agent lives, so a pod's record is never dropped before its
    processes are reaped. The start time keeps a reused pid (another child's) untouched."""
    pending = [(p, s) for p, s in procs if p and s and _started(p) == s]
    deadline = time.monotonic() + timeout
    while pending:
        gone: set[int] = set()
        got = reap([p for p, _ in pending], gone)
        pending = [(p, s) for p, s in pending if p not in got and p not in gone]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _forget_child(pid: int, code: int) -> None:
    """The Popen of a reaped child, dropped with its returncode set (so it never waits
    for the pid again, which may by then be another process's)."""
    p = _CHILDREN.pop(pid, None)
    if p is not None and p.returncode is None:
        p.returncode = code


def signal_group(pid: int, sig: int) -> None:
    """Signal a container's whole process group (it is its session leader) — once: a
    second SIGTERM means "stop now" to servers with a drain period (coredns' lame duck)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop(rec: ContainerRecord, grace: float) -> None:
    """SIGTERM the leader's process group, wait up to `grace` seconds, then SIGKILL;
    whatever else the container started dies with it (its cgroup is killed, as a pid
    namespace's processes die with its init)."""
    if rec.alive():
        rec.killed_by_us = True
        terminate([(rec.pid, rec.starttime)], grace, group=True, poll=0.05)
    cgroups.kill(rec.cgroup)


def terminate(procs: list[tuple[int, int]], grace: float = 1.0, *, group: bool = False,
              poll: float = 0.01) -> None:
    """SIGTERM each (pid, starttime) still alive (its process group with `group`), SIGKILL
    whatever outlives `grace`. Reaps only these pids: a waitpid(-1) would steal the exit
    status of subprocesses other threads wait for (iptables-restore, probes)."""
    me = os.getpid()
    reap([p for p, s in procs if p != me and _started(p) == s])  # those already zombies
    live = list(dict.fromkeys((p, s) for p, s in procs if p != me and proc_starttime(p) == s))
    send = signal_group if group else _signal_one
    for p, _ in live:
        send(p, signal.SIGTERM)
    live = _wait_gone(live, grace, poll)
    for p, _ in live:
        send(p, signal.SIGKILL)
    _wait_gone(live, 1.0, 0.01)


def _signal_one(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(live: list[tuple[int, int]], timeout: float, poll: float) -> list[tuple[int, int]]:
    """Wait up to `timeout` s for these processes to exit; returns those still alive.
    What exited is reaped when it is ours: one seen a zombie (proc_starttime is None) after
    the last reap would otherwise stay one once its record is dropped."""
    deadline = time.monotonic() + timeout
    while live:
        still = [(p, s) for p, s in live if proc_starttime(p) == s]
        reap([p for p, _ in live])
        live = still
        if not live or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return live
