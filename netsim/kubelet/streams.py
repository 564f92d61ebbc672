"""The node side of logs and exec: which file holds a container's log, and how a command
enters a running container (its network, UTS and mount namespaces through nsenter, its
cgroup as `runc exec` joins it, so the command dies with the container).

One implementation for the API server's pods/log and pods/exec (NodeStreams is the
netsim.api.streams.backend the control plane installs) and for `netsim logs` /
`netsim exec`, which read the same records on this machine. Messages are the kubelet's."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios

from netsim.api.streams.backend import LogFile, StreamError
from netsim.kubelet import portforward, runtime
from netsim.kubelet.runtime import ContainerRecord, PodRecord, proc_starttime

# $1: the umask, $2: the container cgroup's cgroup.procs ("": none), then the command. The
# shell takes the container's umask (not the control plane's 077) and moves itself into the
# cgroup before it execs anything, so every process the command starts is in it.
_WRAP = ('umask "$1"; if [ -n "$2" ]; then echo $$ > "$2" || { echo "netsim: cannot join '
         'the container\'s cgroup" >&2; exit 126; }; fi; shift 2; exec "$@"')


def _umask(pid: int) -> str:
    """A process's umask (the Umask: line of its status), 0022 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return line.split()[1]
    except (OSError, IndexError):
        pass
    return "0022"


class NodeStreams:
    """Logs and exec of the pods of one cluster, read from its nodes' kubelet records."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    # ---- records -----------------------------------------------------------------------
    def pod_dir(self, pod: dict) -> str | None:
        """Where the pod's kubelet keeps its record and logs (None before it is scheduled)."""
        md, node = pod["metadata"], (pod.get("spec") or {}).get("nodeName")
        if not node:
            return None
        return runtime.pod_dir(runtime.node_root(self.cluster, node), md["namespace"],
                               md["name"], md["uid"])

    def record(self, pod: dict) -> PodRecord | None:
        d = self.pod_dir(pod)
        return PodRecord.load(d) if d else None

    def running(self, pod: dict, container: str) -> ContainerRecord:
        """The running container's record, or what kubectl reports when the kubelet finds
        no such running container."""
        rec = self.record(pod)
        crec = rec.containers.get(container) if rec else None
        if crec is None or not crec.alive():
            raise StreamError(f'unable to upgrade connection: container not found ("{container}")')
        return crec

    # ---- logs ----------------------------------------------------------------------------
    def log_file(self, pod: dict, container: str, previous: bool) -> LogFile:
        """The log of the instance the pod's status names (validateContainerLogStatus): the
        running one, the terminated one, or with `previous` the last terminated before."""
        pname = pod["metadata"]["name"]
        st = pod.get("status") or {}
        cs = next((s for key in ("containerStatuses", "initContainerStatuses",
                                 "ephemeralContainerStatuses")
                   for s in st.get(key) or [] if s.get("name") == container), None)
        if cs is None:  # the kubelet has not reported it yet
            raise StreamError(f'container "{container}" in pod "{pname}" is waiting to start: '
                              "ContainerCreating")
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if previous:
            cid = last.get("containerID")
            if not cid:
                raise StreamError(f'previous terminated container "{container}" in pod '
                                  f'"{pname}" not found')
        elif "running" in state:
            cid = cs.get("containerID")
        elif "terminated" in state:
            cid = state["terminated"].get("containerID") or last.get("containerID")
            if not cid:
                raise StreamError(f'container "{container}" in pod "{pname}" is terminated')
        elif last:
            cid = last.get("containerID")
            if not cid:
                raise StreamError(f'container "{container}" in pod "{pname}" is terminated')
        elif "waiting" in state:
            reason = (state["waiting"] or {}).get("reason") or ""
            reason = {"ErrImagePull": "image can't be pulled",
                      "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
            raise StreamError(f'container "{container}" in pod "{pname}" is waiting to start: '
                              f"{reason}")
        else:
            raise StreamError(f'container "{container}" in pod "{pname}" is waiting to start '
                              "- no logs yet")
        rec = self.record(pod)
        crec = rec.containers.get(container) if rec else None
        if crec is None:
            return LogFile("", lambda: False)
        if cid == f"netsim://{crec.pid}" and crec.log_path:
            return LogFile(crec.log_path, crec.alive)
        if crec.restart_count > 0 and (previous or cid == crec.last_terminated.get("containerID")):
            # the instance before the current one
            return LogFile(runtime.log_path(self.pod_dir(pod) or "", container,
                                            crec.restart_count - 1), lambda: False)
        return LogFile(crec.log_path, crec.alive)

    # ---- exec ----------------------------------------------------------------------------
    def exec_argv(self, crec: ContainerRecord, command: list[str], *,
                  new_session_tty: bool = False) -> list[str]:
        """The argv that runs `command` inside the container: its namespaces, its working
        directory, umask and cgroup; with `new_session_tty` in a session of its own whose
        controlling terminal is its stdin (a pty)."""
        # -r: the container's root, not the mount namespace's (they differ when the node's
        # own root is a chroot, as in a VM booted from an initramfs, or a pivoted pod root)
        argv = ["nsenter", "-t", str(crec.pid), "-n", "-u", "-m", "-r", "--wd", "--", *command]
        if new_session_tty:
            argv = ["setsid", "-c", *argv]
        procs = os.path.join(crec.cgroup, "cgroup.procs") if crec.cgroup else ""
        return ["/bin/sh", "-c", _WRAP, "sh", _umask(crec.pid), procs, *argv]

    def exec_env(self, crec: ContainerRecord, term: str | None) -> dict[str, str]:
        """The container's own environment (its leader's), TERM added for a terminal."""
        try:
            with open(f"/proc/{crec.pid}/environ", "rb") as f:
                raw = f.read().decode(errors="replace")
            env = dict(kv.split("=", 1) for kv in raw.split("\0") if "=" in kv)
        except OSError:
            env = {}
        if term:
            env.setdefault("TERM", term)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        return env

    def exec(self, pod: dict, container: str, command: list[str], *, stdin: bool,
             stdout: bool, stderr: bool, tty: bool) -> ExecProcess:
        crec = self.running(pod, container)
        env = self.exec_env(crec, "xterm" if tty else None)
        try:
            if tty:
                master, slave = pty.openpty()
                try:
                    p = subprocess.Popen(self.exec_argv(crec, command, new_session_tty=True),
                                         stdin=slave, stdout=slave, stderr=slave, env=env,
                                         cwd="/", close_fds=True)
                finally:
                    os.close(slave)
                return ExecProcess(p, master if stdin else None, master, None, master)
            dev = subprocess.DEVNULL
            p = subprocess.Popen(self.exec_argv(crec, command), env=env, cwd="/",
                                 stdin=subprocess.PIPE if stdin else dev,
                                 stdout=subprocess.PIPE if stdout else dev,
                                 stderr=subprocess.PIPE if stderr else dev,
                                 start_new_session=True, close_fds=True, bufsize=0)
        except OSError as e:
            raise StreamError(f"error executing command in container: {e}") from e
        return ExecProcess(p, p.stdin.fileno() if p.stdin else None,
                           p.stdout.fileno() if p.stdout else None,
                           p.stderr.fileno() if p.stderr else None, None)

    # ---- port-forward ----------------------------------------------------------------
    def port_forward(self, pod: dict, port: int):
        """A TCP connection to `port` inside the pod's network namespace."""
        return portforward.dial(pod, self.record(pod), port)


class ExecProcess:
    """A started exec (netsim.api.streams.backend.Process): its fds, its pty if any."""

    def __init__(self, p: subprocess.Popen, stdin: int | None, stdout: int | None,
                 stderr: int | None, master: int | None) -> None:
        self.popen = p
        self.stdin, self.stdout, self.stderr, self.master = stdin, stdout, stderr, master
        self.pid, self.starttime = p.pid, proc_starttime(p.pid)

    def close_stdin(self) -> None:
        if self.master is not None:
            if self.stdin is not None:
                os.write(self.master, b"\x04")  # a terminal's end of file: ^D
            return
        if self.popen.stdin is not None:
            self.popen.stdin.close()
            self.stdin = None

    def resize(self, width: int, height: int) -> None:
        if self.master is not None and width > 0 and height > 0:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return 128 - code if code < 0 else code

    def kill(self) -> None:
        """SIGKILL to its process group (its own session: all it started there)."""
        for target in (lambda: os.killpg(self.pid, signal.SIGKILL),
                       lambda: os.kill(self.pid, signal.SIGKILL)):
            try:
                if self.popen.poll() is None:
                    target()
                return
            except (ProcessLookupError, PermissionError):
                continue

    def close(self) -> None:
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
