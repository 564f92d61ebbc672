"""The kubelet's side of the node image server (netsim/images/zygote.py).

Containers of built-in images (echo, tcp-echo, mysql, blog, sleep/pause without a command)
are forked by the node's image server instead of exec'ing a fresh interpreter each: ~1 ms
and well under 1 MB of private memory instead of ~30 ms and ~5 MB. Containers with a
`command` (host programs), and every container when the server cannot be reached, start
through runtime.start as before.

The server is started by the agent, recorded in the ledger (role zygote/<node>, so
`cluster down` stops it even after SIGKILL), and, like a runtime's shim, outlives an agent
restart: the next agent finds it by its record. Its children are not the agent's: their
exit codes come from the exit file the server writes when it reaps one. NETSIM_ZYGOTE=0 in
`cluster up`'s environment turns it off (every container is exec'd).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import sys
import threading
import time

from netsim.images import catalog
from netsim.kubelet import cgroups, runtime
from netsim.net.ledger import Ledger, run_dir

log = logging.getLogger(__name__)

ENV = "NETSIM_ZYGOTE"
SERVER = os.path.join(os.path.dirname(os.path.abspath(catalog.__file__)), "zygote.py")
# how long the server may go without using CPU before it is taken for broken (its imports
# take 0.1 s here, minutes on an emulated machine: runtime.StartWatch; 2 min in all)
START_TIMEOUT = 5.0
REQUEST_TIMEOUT = 30.0  # for a reply to a fork: past it the container is exec'd instead
# Room for the children's argv and environment in the server's own blocks (what
# /proc/<pid>/cmdline and environ show; netsim.images.zygote._blocks); larger ones are exec'd.
ARGV_ROOM, ENV_ROOM = 2048, 65536
RETRY_AFTER = 10.0  # after a failed start, containers are exec'd for this long


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def serves(argv: list[str]) -> bool:
    """Whether argv runs a built-in image the server has preloaded (catalog.program_argv)."""
    return len(argv) >= 3 and argv[1] == "-S" and \
        os.path.dirname(os.path.abspath(argv[2])) == os.path.dirname(SERVER) and \
        os.path.basename(argv[2]) in {p + ".py" for p in catalog.PROGRAMS.values()}


def exit_file(log_path: str) -> str:
    """Where the server writes a container's exit status: beside its log (<n>.exit)."""
    return os.path.splitext(log_path)[0] + ".exit"


def read_exit(path: str, server_alive, timeout: float = 1.0) -> int | None:
    """The exit code the server wrote, waiting a little while the server lives (it writes
    the file just after it reaped the child); None when there is none."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            with open(path) as f:
                return int(f.read().strip())
        if not server_alive() or time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


class ExitWatch:
    """Which of these (pid, starttime) have exited, for processes that are not ours to wait
    for (the server's children): a pidfd each (readable once the process has exited), one
    epoll for all, so a node of 100 containers costs one syscall per look, not 100 reads
    of /proc. Without pidfds (Linux < 5.3) each is looked up in /proc.

    wait() blocks on that epoll until a process ends, wake() is called or the timeout
    passes: the kubelet's monitor sleeps there instead of scanning every pod ten times a
    second (at 200 pods a node that scan was about 1% of a core per node, idle). An exit
    seen is reported on every look while it is still asked about, its pidfd closed so it
    does not keep the epoll ready."""

    def __init__(self) -> None:
        self.fds: dict[tuple[int, int], int] = {}
        self.keys: dict[int, tuple[int, int]] = {}
        self.ended: set[tuple[int, int]] = set()
        self.epoll = None
        self._wake_r = self._wake_w = -1
        self._wake_lock = threading.Lock()  # wake() from other threads, close() here
        with contextlib.suppress(OSError, AttributeError):
            self.epoll = select.epoll()
            self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.epoll.register(self._wake_r, select.EPOLLIN)

    def exited(self, procs: list[tuple[int, int]]) -> set[tuple[int, int]]:
        want = set(procs)
        for key in list(self.fds.keys() - want):  # recorded as exited, or forgotten
            self._drop(key)
        self.ended &= want
        for key in want - self.fds.keys() - self.ended:
            fd = -1
            if self.epoll is not None:
                try:
                    fd = os.pidfd_open(key[0])
                except OSError as e:
                    if e.errno in (errno.ENOSYS, errno.EINVAL):
                        self.epoll = None  # no pidfds here
                except AttributeError:
                    self.epoll = None
            if fd < 0:
                if runtime.proc_starttime(key[0]) != key[1]:
                    self.ended.add(key)
                continue
            if runtime.proc_starttime(key[0]) != key[1]:  # gone (or another process now)
                os.close(fd)
                self.ended.add(key)
                continue
            self.fds[key] = fd
            self.keys[fd] = key
            self.epoll.register(fd, select.EPOLLIN)
        if self.epoll is not None and self.fds:
            for fd, _ in self.epoll.poll(0):
                key = self.keys.get(fd)
                if key is not None:
                    self._drop(key)
                    self.ended.add(key)
        return set(self.ended)

    def _drop(self, key: tuple[int, int]) -> None:
        fd = self.fds.pop(key)
        self.keys.pop(fd, None)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.epoll.unregister(fd)
        os.close(fd)

    def wait(self, timeout: float) -> None:
        """Until one of the watched processes ends, wake() is called, or `timeout` s."""
        if self.epoll is None:
            time.sleep(min(timeout, 0.1))  # no pidfds: looked up in /proc, as often as before
            return
        with contextlib.suppress(InterruptedError):
            self.epoll.poll(timeout, 1)
        with contextlib.suppress(BlockingIOError, OSError):
            os.read(self._wake_r, 4096)

    def close(self) -> None:
        for key in list(self.fds):
            self._drop(key)
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        if self.epoll is not None:
            self.epoll.close()
            self.epoll = None

    def wake(self) -> None:
        """Make wait() return now (a container started: its exit is to be watched too)."""
        with self._wake_lock:
            if self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._wake_w, b"w")


class Zygote:
    """One node's image server: started on first use (or adopted), asked to fork containers."""

    def __init__(self, cluster: str, node: str, ledger: Ledger, log_dir: str) -> None:
        self.role = f"zygote/{node}"
        self.ledger = ledger
        self.path = os.path.join(run_dir(cluster), f"zygote-{node}.sock")
        self.log_path = os.path.join(log_dir, f"zygote-{node}.log")
        self.pid = 0
        self.starttime = 0
        self.lock = threading.Lock()
        self.broken_until = 0.0

    def alive(self) -> bool:
        return bool(self.pid) and runtime.proc_starttime(self.pid) == self.starttime

    def _adopt(self) -> bool:
        for r in reversed(self.ledger.records()):
            if r["kind"] == "process" and r.get("role") == self.role and \
                    runtime.proc_starttime(r["pid"]) == r.get("starttime"):
                self.pid, self.starttime = r["pid"], r["starttime"]
                return True
        return False

    def ensure(self) -> bool:
        """The server runs and accepts (started now if need be); False: exec containers."""
        with self.lock:
            if self.alive() or self._adopt():
                return True
            if time.monotonic() < self.broken_until:
                return False
            if self.pid:
                runtime.reap([self.pid])  # a server of ours that died: no zombie left
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.pid, self.starttime = runtime.spawn(
                [sys.executable, "-S", SERVER, self.path, " " * ARGV_ROOM], self.log_path,
                env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                     "NETSIM_ENV_ROOM": " " * ENV_ROOM})
            self.ledger.add("process", role=self.role, pid=self.pid, starttime=self.starttime)
            watch = runtime.StartWatch(self.pid, START_TIMEOUT)
            while not watch.expired() and self.alive():
                if os.path.exists(self.path):
                    with contextlib.suppress(OSError), self._connect(0.5):
                        return True
                time.sleep(watch.poll())
            log.warning("image server %s did not start (see %s): containers are exec'd",
                        self.role, self.log_path)
            runtime.terminate([(self.pid, self.starttime)], 0.5)
            self.broken_until = time.monotonic() + RETRY_AFTER
            return False

    def _connect(self, timeout: float) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        return s

    def start_holder(self, plan_path: str, log_path: str, cgroup: str) -> tuple[int, int] | None:
        """Fork a pod's holder (netsim.kubelet.volumes.spawn_holder's; None: not here)."""
        if not self.ensure():
            return None
        if cgroup:
            os.makedirs(cgroup, exist_ok=True)
        return self._request({"holder": plan_path, "log": log_path, "cgroup": cgroup})

    def start(self, argv: list[str], *, netns: str, hostname: str, etc_dir: str,
              env: dict[str, str], log_path: str, cwd: str, binds_file: str, cgroup: str,
              mount_ns: str) -> tuple[int, int] | None:
        """Fork a container (runtime.start's arguments); (pid, starttime), or None when the
        server cannot (the caller starts it through runtime.start)."""
        if not serves(argv) or not self.ensure():
            return None
        if cgroup:  # what a previous run of the container left there goes first
            cgroups.kill(cgroup)
            os.makedirs(cgroup, exist_ok=True)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(exit_file(log_path))
        return self._request({"argv": argv, "env": env, "cwd": cwd, "log": log_path,
                              "exit_file": exit_file(log_path), "cgroup": cgroup,
                              "netns": netns, "hostname": hostname, "etc_dir": etc_dir,
                              "binds": binds_file, "mount_ns": mount_ns})

    def _request(self, req: dict) -> tuple[int, int] | None:
        try:
            with self._connect(REQUEST_TIMEOUT) as s:
                s.sendall(json.dumps(req).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            reply = json.loads(data)
        except (OSError, ValueError) as e:
            log.warning("image server %s: %s; container exec'd", self.role, e)
            return None
        if "error" in reply or not reply.get("pid"):
            log.warning("image server %s: %s; container exec'd", self.role, reply.get("error"))
            return None
        pid = int(reply["pid"])
        return pid, runtime.proc_starttime(pid) or 0
