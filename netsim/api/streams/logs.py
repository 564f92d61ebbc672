"""pods/log: a container's log as text/plain, chunked while following (kubectl logs [-f]
[--tail] [--previous] [-c] [--timestamps] [--since] [--limit-bytes]).

`read_log` is the one reader of a log file (tail, since, limit, timestamps, follow); the
CLI's `netsim logs` uses it too. The kubelet writes a container's output as it comes, with
no time per line: a line read while following is stamped when it is read, a line already in
the file with the file's last write (no later than the line was written), and --since
keeps the file's lines when that last write is inside the window."""

from __future__ import annotations

import datetime
import json
import os
import select
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from netsim.api import errors, routes, timeutil
from netsim.api.streams import backend

POLL = 0.2  # how often a follow looks for new output


@dataclass
class LogOptions:
    """PodLogOptions as read from the query."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: float | None = None  # epoch seconds: lines written from then on
    offset: int | None = None  # start at this byte of the file, nothing before (attach)


def validate_container(pod: dict, name: str) -> str:
    """The container a request means, in the apiserver's words (validateContainer): the
    only one when none is named; a name must be one of the pod's containers."""
    spec = pod.get("spec") or {}
    pname = (pod.get("metadata") or {}).get("name", "")
    every = [c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(key) or []]
    if not name:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return containers[0].get("name", "")
        if not containers:
            raise errors.BadRequest(f"a container name must be specified for pod {pname}")
        raise errors.BadRequest(f"a container name must be specified for pod {pname}, "
                                f"choose one of: [{' '.join(every)}]")
    if name not in every:
        raise errors.BadRequest(f"container {name} is not valid for pod {pname}")
    return name


def get_pod(req: routes.Request) -> dict:
    return json.loads(req.store.get_raw("pods", req.name, req.namespace))


def _int(query: dict, key: str) -> int | None:
    v = query.get(key)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None


def _bool(query: dict, key: str) -> bool:
    v = query.get(key)
    return v is not None and v.lower() not in ("0", "false")  # present: true (as Go converts)


def options(query: dict, pod_name: str) -> LogOptions:
    """The query as PodLogOptions, checked as ValidatePodLogOptions does."""
    o = LogOptions(container=query.get("container") or "", follow=_bool(query, "follow"),
                   previous=_bool(query, "previous"), timestamps=_bool(query, "timestamps"),
                   tail_lines=_int(query, "tailLines"), limit_bytes=_int(query, "limitBytes"))
    since_s, since_t = _int(query, "sinceSeconds"), query.get("sinceTime")
    causes = []
    if o.tail_lines is not None and o.tail_lines < 0:
        causes.append(f"tailLines: Invalid value: {o.tail_lines}: must be greater than or "
                      "equal to 0")
    if o.limit_bytes is not None and o.limit_bytes < 1:
        causes.append(f"limitBytes: Invalid value: {o.limit_bytes}: must be greater than 0")
    if since_s is not None and since_t:
        causes.append("Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    elif since_s is not None:
        if since_s < 1:
            causes.append(f"sinceSeconds: Invalid value: {since_s}: must be greater than 0")
        o.since = time.time() - since_s
    elif since_t:
        try:
            o.since = timeutil.parse_rfc3339(since_t).timestamp()
        except (ValueError, AttributeError):
            raise errors.BadRequest(f'parsing time "{since_t}" as "2006-01-02T15:04:05Z07:00": '
                                    "cannot parse") from None
    if causes:
        raise errors.invalid("PodLogOptions", pod_name, causes)
    return o


def _stamp(t: float) -> bytes:
    """RFC3339 with nine fixed fractional digits, as the kubelet prints --timestamps."""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.").encode() + b"%09dZ " % (int(t * 1e9) % 1_000_000_000)


class _Stamper:
    """Prefix every line start with a time, across chunks that split lines."""

    def __init__(self) -> None:
        self.at_start = True

    def __call__(self, data: bytes, t: float) -> bytes:
        if not data:
            return data
        stamp = _stamp(t)
        lines = data.splitlines(keepends=True)
        out = []
        for ln in lines:
            out.append(stamp + ln if self.at_start else ln)
            self.at_start = ln.endswith(b"\n")
        return b"".join(out)


def read_log(log: backend.LogFile, o: LogOptions,
             gone: Callable[[float], bool] = lambda t: (time.sleep(t), False)[1]
             ) -> Iterator[bytes]:
    """The log's bytes as the options ask, in pieces. `gone(t)` waits up to t seconds and
    says whether the reader went away (a follow then ends)."""
    left = o.limit_bytes

    def cap(data: bytes) -> bytes:
        nonlocal left
        if left is None:
            return data
        data = data[:left]
        left -= len(data)
        return data

    if not log.path:
        return
    try:
        f = open(log.path, "rb")
    except FileNotFoundError:
        return
    with f:
        stamper = _Stamper() if o.timestamps else None
        if o.offset is not None:
            f.seek(o.offset)
        data = f.read() if o.offset is None else b""
        mtime = os.fstat(f.fileno()).st_mtime
        if o.since is not None and mtime < o.since:
            data = b""
        if o.tail_lines is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-o.tail_lines:]) if o.tail_lines else b""
        if stamper:
            data = stamper(data, mtime)
        if data := cap(data):
            yield data
        while o.follow and left != 0:
            chunk = f.read(65536)
            if not chunk:
                alive = log.running()
                chunk = f.read(65536)  # written just before it ended
                if not chunk:
                    if os.fstat(f.fileno()).st_size < f.tell():
                        f.seek(0)  # rotated (copied and truncated): go on from its start
                        continue
                    if not alive or gone(POLL):
                        return
                    continue
            if stamper:
                chunk = stamper(chunk, time.time())
            if chunk := cap(chunk):
                yield chunk


def _client_gone(sock) -> Callable[[float], bool]:
    """Waits on the client's socket: a client that sends anything or hangs up while its
    log is followed has left (HTTP/1.1 clients send nothing while a response streams)."""
    def gone(t: float) -> bool:
        try:
            r, _, _ = select.select([sock], [], [], t)
        except (OSError, ValueError):
            return True
        return bool(r)
    return gone


@routes.subresource("pods", "log")
def serve_log(req: routes.Request) -> None:
    if req.method != "GET":
        raise errors.method_not_allowed()
    query: dict[str, str] = {}
    for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(req.path).query,
                                       keep_blank_values=True):
        query.setdefault(k, v)  # the first value counts, as in the apiserver
    pod = get_pod(req)
    o = options(query, req.name or "")
    cname = validate_container(pod, o.container)
    h = req.handler
    if not (pod.get("spec") or {}).get("nodeName"):
        # not scheduled: upstream streams nothing (no location to read from)
        return h._send_raw(200, b"", content_type=b"text/plain")
    try:
        log = backend.current().log_file(pod, cname, o.previous)
    except backend.StreamError as e:
        raise errors.BadRequest(str(e)) from None
    if not o.follow:
        return h._send_raw(200, b"".join(read_log(log, o)), content_type=b"text/plain")
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
    h.wfile.flush()
    try:
        for piece in read_log(log, o, _client_gone(h.connection)):
            h._chunk(piece)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
    except (OSError, ValueError):
        h.close_connection = True
