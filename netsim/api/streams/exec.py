"""pods/exec and pods/attach over WebSocket: the channel protocol kubectl
(v5.channel.k8s.io) and the Python client (v4.channel.k8s.io) speak.

Every message's first byte is its channel: 0 stdin, 1 stdout, 2 stderr, 3 the final
metav1.Status (Success, or NonZeroExitCode with an ExitCode cause: kubectl exits with that
code, saying `command terminated with exit code N`), 4 terminal resize
{"Width":..,"Height":..}; in v5 a message [255, channel] closes that stream (stdin's
end-of-file). The process ends when the client goes away."""

from __future__ import annotations

import json
import logging
import os
import select
import threading
import urllib.parse

from netsim.api import errors, routes
from netsim.api.streams import backend, websocket
from netsim.api.streams.logs import LogOptions, get_pod, read_log, validate_container

log = logging.getLogger("netsim.api.exec")

PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# After the process exited, how long its output pipes may stay open (a background child
# holding them) before the status is sent anyway.
DRAIN_TIMEOUT = 2.0


def _params(req: routes.Request) -> dict[str, list[str]]:
    """The query with repeated keys kept (every `command` word)."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(req.path).query, keep_blank_values=True)


def _flag(params: dict, key: str) -> bool:
    v = (params.get(key) or [None])[0]
    return v is not None and v.lower() not in ("0", "false")  # present: true (as Go converts)


def _status(code: int | None = None, *, error: str | None = None) -> bytes:
    """The channel-3 Status: Success, NonZeroExitCode, or an internal error."""
    if error is not None:
        st = {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {error}",
              "reason": "InternalError", "details": {"causes": [{"message": error}]}, "code": 500}
    elif not code:
        st = {"metadata": {}, "status": "Success"}
    else:
        st = {"metadata": {}, "status": "Failure",
              "message": "command terminated with non-zero exit code: command terminated with "
                         f"exit code {code}",
              "reason": "NonZeroExitCode",
              "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
    return bytes([ERROR]) + json.dumps(st, separators=(",", ":")).encode()


def _checked(req: routes.Request, verb: str) -> tuple[dict, dict, str, dict[str, bool]]:
    """The checks exec and attach share, before any upgrade, in the apiserver's words:
    (query, pod, container, {stdin, stdout, stderr, tty})."""
    if req.method not in ("GET", "POST"):
        raise errors.method_not_allowed()
    params = _params(req)
    want = {k: _flag(params, k) for k in ("stdin", "stdout", "stderr", "tty")}
    pod = get_pod(req)
    cname = validate_container(pod, (params.get("container") or [""])[0])
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.BadRequest(f"pod {req.name} does not have a host assigned")
    if not (want["stdin"] or want["stdout"] or want["stderr"]):
        raise errors.BadRequest("you must specify at least 1 of stdin, stdout, stderr")
    if not websocket.is_upgrade(req.headers) and \
            "spdy" in (req.headers.get("upgrade") or "").lower():
        raise errors.BadRequest(f"unable to upgrade: {verb} is served over WebSocket "
                                f"({', '.join(PROTOCOLS)}), not SPDY")
    return params, pod, cname, want


def _fail(conn: websocket.Conn, e: Exception) -> None:
    """A refusal after the upgrade: the status says it, then the connection closes."""
    conn.send_binary(_status(error=e.message if isinstance(e, errors.ApiError) else str(e)))
    conn.close()
    while conn.recv() is not None:
        pass


@routes.subresource("pods", "exec")
def serve_exec(req: routes.Request) -> None:
    params, pod, cname, want = _checked(req, "exec")
    if want["tty"]:
        want["stderr"] = False  # a terminal has one output stream
    conn = websocket.accept(req, PROTOCOLS)
    if conn is None:
        return
    Session(conn, pod, cname, params.get("command") or [], **want).run()


class Session:
    """One exec: output pumps and a waiter beside the request's thread, which reads the
    client's messages (stdin, resize, stream close) until the connection ends."""

    def __init__(self, conn: websocket.Conn, pod: dict, container: str, command: list[str], *,
                 stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        self.conn, self.pod, self.container, self.command = conn, pod, container, command
        self.want = {"stdin": stdin, "stdout": stdout, "stderr": stderr, "tty": tty}
        self.v5 = conn.protocol.startswith("v5.")
        self.proc: backend.Process | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        conn = self.conn
        try:
            if not self.command:
                raise backend.StreamError("you must specify at least one command for the "
                                          "container")
            self.proc = backend.current().exec(self.pod, self.container, self.command,
                                               **self.want)
        except (backend.StreamError, errors.ApiError) as e:
            return _fail(conn, e)
        # the lowest writable channel's empty message: the stream is up (as upstream)
        first = STDOUT if self.want["stdout"] else STDERR if self.want["stderr"] else ERROR
        conn.send_binary(bytes([first]))
        proc = self.proc
        pumps = [threading.Thread(target=self._pump, args=(fd, ch), daemon=True,
                                  name=f"exec-{ch}")
                 for fd, ch in ((proc.stdout, STDOUT), (proc.stderr, STDERR)) if fd is not None]
        for t in pumps:
            t.start()
        waiter = threading.Thread(target=self._finish, args=(pumps,), daemon=True,
                                  name="exec-wait")
        waiter.start()
        try:
            self._read_client()
        finally:
            if proc.wait(0) is None:  # the client left first: the process goes too
                proc.kill()
            waiter.join(DRAIN_TIMEOUT + 5)
            proc.close()

    def _read_client(self) -> None:
        proc = self.proc
        while (msg := self.conn.recv()) is not None:
            if not msg:
                continue
            ch, data = msg[0], msg[1:]
            if ch == STDIN and data and proc.stdin is not None:
                try:
                    _write_all(proc.stdin, data)
                except OSError:  # the process closed its stdin or ended
                    pass
            elif ch == RESIZE and data:
                try:
                    size = json.loads(data)
                    proc.resize(int(size.get("Width") or 0), int(size.get("Height") or 0))
                except (ValueError, TypeError, AttributeError, OSError):
                    log.debug("bad resize message %r", data)
            elif ch == CLOSE and self.v5 and data[:1] == bytes([STDIN]):
                proc.close_stdin()

    def _pump(self, fd: int, channel: int) -> None:
        """Copy one output stream to its channel until end of file (a terminal's EIO), or
        until told to stop after the process ended."""
        prefix = bytes([channel])
        while True:
            try:
                r, _, _ = select.select([fd], [], [], 0.5)
            except (OSError, ValueError):
                return
            if not r:
                if self._stop.is_set():
                    return
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data or not self.conn.send_binary(prefix + data):
                return

    def _finish(self, pumps: list[threading.Thread]) -> None:
        """When the process has exited and its output is sent: the status, then close."""
        proc = self.proc
        code = proc.wait()
        for t in pumps:
            t.join(DRAIN_TIMEOUT)
        self._stop.set()
        for t in pumps:
            t.join(1.0)
        if not self.conn.closed:
            self.conn.send_binary(_status(code))
            self.conn.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@routes.subresource("pods", "attach")
def serve_attach(req: routes.Request) -> None:
    """kubectl attach: a running container's output from now on, on stdout's channel (or
    stderr's when only that is asked for: the kubelet keeps one merged stream), until the
    container ends (Success) or the client leaves. Containers' stdin is /dev/null: what the
    client sends is dropped."""
    _, pod, cname, want = _checked(req, "attach")
    conn = websocket.accept(req, PROTOCOLS)
    if conn is None:
        return
    try:
        log_file = backend.current().log_file(pod, cname, False)
        if not log_file.running():
            raise backend.StreamError(f'unable to upgrade connection: container not found '
                                      f'("{cname}")')
    except (backend.StreamError, errors.ApiError) as e:
        return _fail(conn, e)
    try:  # output from the moment the client is told the stream is up
        offset = os.path.getsize(log_file.path) if log_file.path else 0
    except OSError:
        offset = 0
    channel = STDOUT if want["stdout"] or not want["stderr"] else STDERR
    conn.send_binary(bytes([channel]))
    left = threading.Event()

    def read_client() -> None:
        while conn.recv() is not None:
            pass
        left.set()
    reader = threading.Thread(target=read_client, daemon=True, name="attach-read")
    reader.start()
    for piece in read_log(log_file, LogOptions(follow=True, offset=offset), left.wait):
        if not conn.send_binary(bytes([channel]) + piece):
            break
    if not left.is_set():
        conn.send_binary(_status(0))
        conn.close()
    reader.join(websocket.CLOSE_TIMEOUT + 5)
