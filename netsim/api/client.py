"""API clients: the same calls in-process (controllers, tests) and over the unix socket."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

from netsim.api import errors
from netsim.api.resources import ACCEPTED_VERSIONS, BY_PLURAL, for_object

if TYPE_CHECKING:  # LocalClient's store: every CLI command and agent imports this module,
    from netsim.api.store import Store  # few need the store's (sqlite, uuid, kinds) imports

RUN_DIR = "/run/netsim"


def socket_path(cluster: str) -> str:
    return os.path.join(RUN_DIR, cluster, "api.sock")


class Client:
    """The calls every component uses; see docs/contracts.md."""

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict:
        raise NotImplementedError

    def list(self, resource: str, namespace: str | None = None,
             label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict]:
        if field_selector:
            return self.list_rv(resource, namespace, label_selector,
                                field_selector=field_selector)[0]
        return self.list_rv(resource, namespace, label_selector)[0]

    def list_rv(self, resource: str, namespace: str | None = None,
                label_selector: str | None = None,
                field_selector: str | None = None) -> tuple[list[dict], int]:
        raise NotImplementedError

    def create(self, obj: dict, dry_run: bool = False) -> dict:
        raise NotImplementedError

    def update(self, obj: dict, dry_run: bool = False) -> dict:
        raise NotImplementedError

    def update_status(self, obj: dict) -> dict:
        raise NotImplementedError

    def patch(self, resource: str, name: str, namespace: str | None, merge_patch: dict,
              subresource: str | None = None) -> dict:
        raise NotImplementedError

    def bind(self, namespace: str, name: str, node: str, uid: str | None = None) -> dict:
        """POST pods/<name>/binding: the scheduler's assignment of a pod to a node (a
        Conflict when it has one already or is being deleted, or its uid is not `uid`).
        The in-process client returns the bound pod, the HTTP one the Status."""
        raise NotImplementedError

    def delete(self, resource: str, name: str, namespace: str | None = None,
               grace_period_seconds: int | None = None,
               propagation_policy: str | None = "Background") -> dict | None:
        """DELETE; Background by default, as kubectl and upstream's controllers send (a Job's
        own API default would orphan its pods)."""
        raise NotImplementedError

    def watch(self, resource: str, namespace: str | None = None,
              resource_version: int | None = None, timeout: float = 300.0,
              label_selector: str | None = None,
              field_selector: str | None = None) -> Iterator[tuple[str, dict]]:
        raise NotImplementedError

    def get_or_none(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.get(resource, name, namespace)
        except errors.NotFound:
            return None


class LocalClient(Client):
    """Direct calls into a Store in the same process."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, resource, name, namespace=None):
        return self.store.get(resource, name, namespace)

    def list_rv(self, resource, namespace=None, label_selector=None, field_selector=None):
        return self.store.list(resource, namespace, label_selector, field_selector)

    def create(self, obj, dry_run=False):
        return self.store.create(obj, dry_run=dry_run)

    def update(self, obj, dry_run=False):
        return self.store.update(obj, dry_run=dry_run)

    def update_status(self, obj):
        return self.store.update(obj, subresource="status")

    def patch(self, resource, name, namespace, merge_patch, subresource=None):
        return self.store.patch(resource, name, namespace, merge_patch, subresource)

    def bind(self, namespace, name, node, uid=None):
        from netsim.api import binding  # the server's side: not in an HTTP client's imports
        return binding.bind(self.store, namespace, name, node, uid=uid)

    def delete(self, resource, name, namespace=None, grace_period_seconds=None,
               propagation_policy="Background"):
        return self.store.delete(resource, name, namespace, grace_period_seconds,
                                 propagation_policy)

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None, field_selector=None):
        return self.store.watch(resource, namespace, resource_version, timeout, label_selector,
                                field_selector=field_selector)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class _FastConnection:
    """One keep-alive HTTP/1.1 connection for plain request/response calls (the API
    server always sends Content-Length). http.client parses headers with the email
    package, ~1 ms a response; this reads them directly."""

    def __init__(self, path: str, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.rfile = self.sock.makefile("rb")

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()

    def request(self, method: str, url: str, data: bytes | None,
                content_type: str) -> tuple[int, bytes]:
        head = f"{method} {url} HTTP/1.1\r\nHost: localhost\r\n"
        if data is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        try:
            self.sock.sendall(head.encode() + b"\r\n" + (data or b""))
        except (BrokenPipeError, ConnectionResetError):
            # The server may have answered before it stopped reading (413 for a body over
            # its limit): that answer is what the caller needs. Nothing to read: stale.
            try:
                self.sock.settimeout(min(self.sock.gettimeout() or 1.0, 1.0))
                if not self.rfile.peek(1):
                    raise http.client.RemoteDisconnected("connection closed") from None
            except OSError:
                raise http.client.RemoteDisconnected("connection closed") from None
        line = self.rfile.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise http.client.BadStatusLine(str(line))
        status = int(parts[1])
        length, chunked, close = None, False, parts[0] == b"HTTP/1.0"
        while True:
            h = self.rfile.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding":
                chunked = b"chunked" in v.lower()
            elif k == b"connection":
                close = v.strip().lower() == b"close"
        if chunked:
            body = b""
            while True:
                n = int(self.rfile.readline(65537).split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(n)
                self.rfile.readline(65537)
        elif length is not None:
            body = self.rfile.read(length)
            if len(body) < length:
                raise http.client.IncompleteRead(body, length - len(body))
        else:
            body = self.rfile.read()
            close = True
        if close:
            self.close()
            raise _Closed(status, body)
        return status, body


class _Closed(Exception):
    """The response arrived but the server closed the connection after it."""

    def __init__(self, status: int, body: bytes):
        super().__init__(status)
        self.status, self.body = status, body


class HttpClient(Client):
    """Talks HTTP to a cluster's API server over its unix socket (one connection per thread)."""

    def __init__(self, cluster: str = "netsim", path: str | None = None, timeout: float = 60.0):
        self.cluster = cluster
        self.path = path or socket_path(cluster)
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> _FastConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = _FastConnection(self.path, self.timeout)
        return c

    def _request(self, method: str, url: str, body: dict | None = None,
                 content_type: str = "application/json") -> dict:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            conn = None
            try:
                conn = self._conn()
                status, payload = conn.request(method, url, data, content_type)
                break
            except _Closed as e:
                self._local.conn = None
                status, payload = e.status, e.body
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                if conn is not None:
                    conn.close()
                self._local.conn = None
                # Retry once on a stale keep-alive connection (the server never saw the
                # request), never after a timeout: a POST might then be applied twice.
                stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                       ConnectionResetError))
                if attempt == 2 or not stale:
                    if isinstance(e, TimeoutError):
                        raise errors.ApiError(
                            f"the netsim API server ({self.path}) did not answer within "
                            f"{self.timeout:.0f}s", code=504, reason="Timeout") from e
                    raise errors.ApiError(
                        f"The connection to the netsim API server ({self.path}) was refused - "
                        f"is the cluster \"{self.cluster}\" up?", code=503,
                        reason="ServiceUnavailable") from e
        out = json.loads(payload) if payload else {}
        if status >= 400:
            raise errors.ApiError.from_status(out)
        return out

    @staticmethod
    def _url(resource: str, namespace: str | None, name: str | None = None,
             sub: str | None = None, query: dict | None = None, api: str | None = None) -> str:
        res = BY_PLURAL[resource]
        url = res.base_path(namespace if res.namespaced else None)
        if api and api != res.api_version and api in ACCEPTED_VERSIONS.get(res.kind, ()):
            # an old version (the seed's extensions/v1beta1 Ingress) goes to its own path,
            # where the server converts it, as kubectl sends it
            url = f"/apis/{api}" + url[len(f"/apis/{res.api_version}"):]
        if name:
            url += "/" + urllib.parse.quote(name)
        if sub:
            url += "/" + sub
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return url

    def get(self, resource, name, namespace=None):
        res = BY_PLURAL[resource]
        return self._request("GET", self._url(resource, (namespace or "default") if res.namespaced else None, name))

    def list_rv(self, resource, namespace=None, label_selector=None, field_selector=None):
        out = self._request("GET", self._url(resource, namespace,
                                             query={"labelSelector": label_selector,
                                                    "fieldSelector": field_selector}))
        return out.get("items", []), int(out.get("metadata", {}).get("resourceVersion", 0))

    def create(self, obj, dry_run=False):
        res = for_object(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or "default"
        q = {"dryRun": "All"} if dry_run else None
        return self._request("POST", self._url(res.plural, ns if res.namespaced else None,
                                               query=q, api=obj.get("apiVersion")), obj)

    def _put(self, obj, sub=None, dry_run=False):
        res = for_object(obj)
        md = obj.get("metadata") or {}
        q = {"dryRun": "All"} if dry_run else None
        return self._request("PUT", self._url(res.plural, md.get("namespace") or "default",
                                              md.get("name"), sub, query=q,
                                              api=obj.get("apiVersion")), obj)

    def update(self, obj, dry_run=False):
        return self._put(obj, dry_run=dry_run)

    def update_status(self, obj):
        return self._put(obj, "status")

    def patch(self, resource, name, namespace, merge_patch, subresource=None):
        return self._request("PATCH", self._url(resource, namespace or "default", name, subresource),
                             merge_patch, "application/merge-patch+json")

    def bind(self, namespace, name, node, uid=None):
        md = {"name": name, "namespace": namespace, **({"uid": uid} if uid else {})}
        return self._request("POST", self._url("pods", namespace, name, "binding"),
                             {"kind": "Binding", "apiVersion": "v1", "metadata": md,
                              "target": {"kind": "Node", "apiVersion": "v1", "name": node}})

    def delete(self, resource, name, namespace=None, grace_period_seconds=None,
               propagation_policy="Background"):
        return self._request("DELETE", self._url(resource, namespace or "default", name, query={
            "gracePeriodSeconds": grace_period_seconds, "propagationPolicy": propagation_policy}))

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None, field_selector=None):
        """Yields what LocalClient's watch does, BOOKMARKs included: it asks for them
        (allowWatchBookmarks, as client-go's reflector does), and a bare keep-alive line
        from a server that sends none becomes a BOOKMARK at the last version seen. So an
        idle watch still hands its consumer a tick about once a second (a stopped
        informer ends then, not when the watch times out)."""
        url = self._url(resource, namespace, query={
            "watch": "1", "resourceVersion": resource_version,
            # whole seconds, at least 1: the server reads 0 as "its default"
            "timeoutSeconds": max(1, math.ceil(timeout)),
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "allowWatchBookmarks": "true"})
        seen = {} if resource_version is None else {"resourceVersion": str(resource_version)}
        conn = _UnixConnection(self.path, timeout=timeout + 30)
        try:
            try:
                conn.request("GET", url)
                resp = conn.getresponse()
            except OSError as e:
                raise errors.ApiError(f"watch failed: {e}", code=503) from e
            if resp.status >= 400:
                raise errors.ApiError.from_status(json.loads(resp.read() or b"{}"))
            while True:
                line = resp.readline()
                if not line:
                    return
                if not line.strip():
                    yield "BOOKMARK", {"metadata": dict(seen)}
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    raise errors.ApiError.from_status(ev.get("object", {}))
                rv = (ev["object"].get("metadata") or {}).get("resourceVersion")
                if rv:
                    seen = {"resourceVersion": rv}
                yield ev["type"], ev["object"]
        finally:
            conn.close()
