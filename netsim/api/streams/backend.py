"""What pods/log and pods/exec need from the node side, as an interface the API room owns.

The API server knows objects; where a container's log file is and how a process enters a
container's namespaces is the kubelet's business (upstream the apiserver asks the node's
kubelet). The control plane installs an implementation at start (netsim.kubelet.streams);
the API room never imports it, and unit tests install a fake."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from netsim.api import errors


class StreamError(Exception):
    """The node side refused, in the kubelet's words (`container "c" in pod "p" is waiting
    to start: ContainerCreating`, `unable to upgrade connection: container not found
    ("c")`)."""


@dataclass
class LogFile:
    """One container instance's log: its file ("" or missing: nothing written yet) and
    whether the instance writing it still runs (a follow ends when it does not)."""

    path: str
    running: Callable[[], bool]


class Process(Protocol):
    """An exec'd process. The fds are the server's ends: stdin to write (None without
    stdin), stdout/stderr to read (None when not asked for; with a tty stdout is the
    terminal and stderr None)."""

    stdin: int | None
    stdout: int | None
    stderr: int | None

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (128+signal for a killed process), None at a timeout."""

    def kill(self) -> None:
        """End it and everything it started in its session (the client went away)."""

    def close(self) -> None:
        """Release the fds (after wait)."""


class Backend(Protocol):
    def log_file(self, pod: dict, container: str, previous: bool) -> LogFile:
        """The log of `container` (the last terminated instance's with `previous`);
        raises StreamError."""

    def exec(self, pod: dict, container: str, command: list[str], *, stdin: bool,
             stdout: bool, stderr: bool, tty: bool) -> Process:
        """Start `command` in the running `container` (its namespaces and cgroup);
        raises StreamError."""

    def port_forward(self, pod: dict, port: int) -> socket.socket:
        """A TCP connection to `port` on the pod's loopback, made inside its network
        namespace; raises StreamError with the kubelet's (and runtime's) words."""


_backend: Backend | None = None


def install(backend: Backend | None) -> None:
    """Set the node side the API server uses (the control plane at start; tests)."""
    global _backend
    _backend = backend


def current() -> Backend:
    if _backend is None:
        raise errors.ApiError("no node streams are served by this API server", code=503,
                              reason="ServiceUnavailable")
    return _backend
