"""Watch bookmarks and keep-alives, in the store, over HTTP and through HttpClient.

What a watcher notices: a quiet resource in a busy store still gets a BOOKMARK about
once a second (so it can resume from a recent version instead of getting 410 Gone);
bookmarks look like kube-apiserver's and come over HTTP only when asked for; a client
that asked none gets bare keep-alive lines, and HttpClient turns either into a tick.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from netsim.api import errors
from netsim.api.client import HttpClient
from netsim.api.store import Store
from tests.unit import test_api_hardening as hardening


def _cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": name}}


@contextlib.contextmanager
def churning(store: Store, interval: float = 0.05):
    """Another resource (ConfigMaps) written every `interval` s: a busy store."""
    stop = threading.Event()

    def loop():
        i = 0
        while not stop.wait(interval):
            store.create(_cm(f"c{i}"))
            i += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


api = hardening.api  # (store, socket path, server): an API server on a temp socket


def test_quiet_watch_in_a_busy_store_gets_bookmarks_and_resumes_without_gone():
    store = Store(history=20)
    store.bootstrap()
    rv0 = store.resource_version
    marks: list[tuple[float, dict]] = []
    t0 = time.monotonic()
    with churning(store):
        for etype, obj in store.watch("secrets", resource_version=rv0, timeout=3.5):
            assert etype == "BOOKMARK", "nothing happened to Secrets"
            marks.append((time.monotonic() - t0, obj))
    written = store.resource_version - rv0
    assert written >= 30, "the ConfigMaps were written meanwhile"
    # one about every second, though the store changed every 50 ms
    assert 2 <= len(marks) <= 4, marks
    assert marks[0][0] < 1.6
    assert all(m["kind"] == "Secret" and m["apiVersion"] == "v1" for _, m in marks)
    rvs = [int(m["metadata"]["resourceVersion"]) for _, m in marks]
    assert rvs == sorted(rvs) and rvs[-1] > rv0 + 20  # it advanced past the others' writes
    # rv0 has left the 20-event log; the last bookmark's version has not
    with pytest.raises(errors.Gone):
        next(store.watch("secrets", resource_version=rv0, timeout=1))
    store.create({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "s", "namespace": "default"}})
    etype, obj = next(store.watch("secrets", resource_version=rvs[-1], timeout=2))
    assert (etype, obj["metadata"]["name"]) == ("ADDED", "s")
    store.close()


def test_watch_that_delivers_sends_no_bookmarks():
    store = Store()
    store.bootstrap()
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.wait(0.2):
            store.create(_cm(f"w{i}"))
            i += 1

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        types = [e for e, _ in store.watch("configmaps", timeout=2.5)]
    finally:
        stop.set()
        t.join(5)
    assert types.count("ADDED") >= 8 and "BOOKMARK" not in types


def _stream(path: str, query: str, seconds: float) -> list[bytes]:
    """The chunk payloads of a raw watch over the socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(seconds + 5)
    s.connect(path)
    s.sendall(f"GET /api/v1/namespaces/default/secrets?watch=1&{query} HTTP/1.1\r\n"
              "Host: x\r\n\r\n".encode())
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    chunks = []
    while True:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return chunks
        chunks.append(body[:n])
        body = body[n + 2:]


def test_http_sends_bookmarks_only_when_asked(api):
    store, path, _ = api
    with churning(store):
        plain = _stream(path, "timeoutSeconds=3", 3)
        asked = _stream(path, "timeoutSeconds=3&allowWatchBookmarks=true", 3)
    # not asked: keep-alive lines only (what an old client or kubectl without bookmarks reads)
    assert plain and set(plain) == {b"\n"}
    # asked: kube-apiserver's shape, once a second
    assert 2 <= len(asked) <= 4
    for c in asked:
        ev = json.loads(c)
        assert ev["type"] == "BOOKMARK"
        assert set(ev["object"]) == {"kind", "apiVersion", "metadata"}
        assert ev["object"]["kind"] == "Secret"
        assert int(ev["object"]["metadata"]["resourceVersion"]) > 0


def test_http_client_passes_ticks_up_on_a_quiet_watch(api):
    store, path, _ = api
    client = HttpClient(path=path, timeout=5)
    rv = store.resource_version
    with churning(store):
        t0 = time.monotonic()
        etype, obj = next(iter(client.watch("secrets", "default", rv, timeout=30)))
        assert etype == "BOOKMARK" and time.monotonic() - t0 < 2.0
        assert int(obj["metadata"]["resourceVersion"]) > rv


def test_http_client_turns_bare_keep_alives_into_ticks(api, monkeypatch):
    """A server that ignores allowWatchBookmarks sends only keep-alive lines: each is a
    BOOKMARK at the last version the stream showed."""
    store, path, _ = api
    url = HttpClient._url

    def without_bookmarks(*a, **kw):
        u = url(*a, **kw)
        if "watch=1" in u:
            assert "&allowWatchBookmarks=true" in u  # what HttpClient asks
        return u.replace("&allowWatchBookmarks=true", "")

    monkeypatch.setattr(HttpClient, "_url", staticmethod(without_bookmarks))
    client = HttpClient(path=path, timeout=5)
    rv = store.resource_version
    store.create({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "s", "namespace": "default"}})
    got = []
    for etype, obj in client.watch("secrets", "default", rv, timeout=30):
        got.append((etype, obj["metadata"].get("resourceVersion")))
        if len(got) == 3:
            break
    added_rv = str(rv + 1)
    assert got == [("ADDED", added_rv), ("BOOKMARK", added_rv), ("BOOKMARK", added_rv)]
