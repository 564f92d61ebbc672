"""What netsim.library raises: one base class, the message in kubectl's words."""

from __future__ import annotations


class NetsimError(Exception):
    """Something the cluster refused or could not do. `str(e)` is what kubectl (or the
    `netsim` CLI) would print, e.g. `Error from server (NotFound): pods "x" not found`;
    `reason` is the API's reason (`NotFound`, `Invalid`, `AlreadyExists`, ...) when the API
    server gave one, `code` its HTTP status."""

    def __init__(self, message: str, *, reason: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.code = code


class NotFoundError(NetsimError):
    """The object is not there (reason NotFound, code 404)."""


class WaitTimeout(NetsimError, TimeoutError):
    """`Cluster.wait` ran out of time: `error: timed out waiting for the condition on pods/x`."""


class CommandError(NetsimError):
    """A command run in a pod, node or LAN host failed (with `check=True`), or a `netsim`
    verb exited non-zero: the message holds its stderr; `returncode`, `stdout` and `stderr`
    are the process's."""

    def __init__(self, message: str, *, returncode: int, stdout: str | bytes = "",
                 stderr: str | bytes = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def from_api(e) -> NetsimError:
    """A netsim.api.errors.ApiError as kubectl words it."""
    from netsim.cli.context import server_error  # noqa: PLC0415 - lazy: netsim stays cheap
    cls = NotFoundError if e.reason == "NotFound" else NetsimError
    return cls(server_error(e), reason=e.reason, code=e.code)
