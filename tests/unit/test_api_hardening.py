"""The API server against hostile or sloppy clients: body limits, bad parameters, slow
clients, bodies that name another kind/namespace/name than their URL, the event log's caps.

A real server runs in-process on a temporary unix socket (no root needed)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time

import pytest

from netsim.api import errors
from netsim.api.client import HttpClient
from netsim.api.server import serve
from netsim.api.store import Store
from tests.conftest import wait_for

MiB = 1024 * 1024


@pytest.fixture
def api(request):
    """(store, socket path, server); keyword overrides for serve() via indirect params."""
    kw = getattr(request, "param", {})
    d = tempfile.mkdtemp(prefix="netsim-api-")
    store = Store()
    store.bootstrap()
    path = os.path.join(d, "api.sock")
    srv = serve(store, path, **kw)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield store, path, srv
    srv.shutdown()
    srv.server_close()
    store.close()


def _raw(path: str, data: bytes, timeout: float = 10.0) -> tuple[int, dict | bytes]:
    """Send raw bytes, read one response: (status, decoded JSON body or raw bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return 0, buf
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                       if h.lower().startswith(b"content-length:")), None)
        while length is not None and len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body
    finally:
        s.close()


def _req(method: str, url: str, body: bytes | None = None, headers: str = "") -> bytes:
    head = f"{method} {url} HTTP/1.1\r\nHost: x\r\n{headers}"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def _cm(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


# ---- request bodies ------------------------------------------------------------------
@pytest.mark.parametrize("size", [4 * MiB, 50 * 1000 * 1000])
def test_body_over_3mib_gets_413_and_nothing_is_stored(api, size):
    store, path, _ = api
    c = HttpClient(path=path)
    with pytest.raises(errors.ApiError) as e:
        c.create(_cm("big", data={"k": "x" * size}))
    assert e.value.code == 413
    assert e.value.reason == "RequestEntityTooLarge"
    assert e.value.message == "Request entity too large: limit is 3145728"
    assert c.get_or_none("configmaps", "big") is None
    # the client's next call works (a new connection)
    assert c.create(_cm("small"))["metadata"]["name"] == "small"


def test_declared_huge_body_is_refused_before_it_is_sent(api):
    """Content-Length of 10 GB: 413 at once, the server reads nothing of it."""
    _, path, _ = api
    status, body = _raw(path, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                              b"Content-Length: 10000000000\r\n\r\n{")
    assert status == 413 and body["kind"] == "Status" and body["code"] == 413


def test_body_just_under_the_limit_is_accepted(api):
    _, path, _ = api
    c = HttpClient(path=path)
    obj = c.create(_cm("near", data={"k": "x" * (3 * MiB - 200)}))
    assert len(obj["data"]["k"]) == 3 * MiB - 200


@pytest.mark.parametrize("cl", ["-1", "abc", "1e3", "5x"])
def test_bad_content_length_gets_400_not_a_hang(api, cl):
    _, path, _ = api
    t = time.monotonic()
    status, body = _raw(path, f"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                              f"Content-Length: {cl}\r\n\r\n{{}}".encode(), timeout=5)
    assert status == 400 and body["reason"] == "BadRequest"
    assert body["message"] == f'bad Content-Length "{cl}"'
    assert time.monotonic() - t < 2


def test_conflicting_content_lengths_get_400(api):
    _, path, _ = api
    status, _ = _raw(path, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                           b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
    assert status == 400


def test_chunked_body_is_read(api):
    store, path, _ = api
    body = json.dumps(_cm("chunky")).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:])) + b"0\r\n\r\n"
    status, out = _raw(path, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status == 201 and out["metadata"]["name"] == "chunky"


def test_chunked_body_over_the_limit_gets_413(api):
    store, path, _ = api
    piece = b"x" * MiB
    data = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(4)) + b"0\r\n\r\n"
    status, out = _raw(path, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + data)
    assert status == 413 and out["reason"] == "RequestEntityTooLarge"


def test_post_without_a_body_gets_400(api):
    _, path, _ = api
    status, out = _raw(path, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n\r\n")
    assert status == 400
    assert out["message"].startswith("the object provided is unrecognized (must be of type "
                                     "ConfigMap)")


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"{nope", b'{"metadata": []}',
                                  b'{"kind": 5}', b'{"metadata": {"name": 7}}'])
def test_malformed_objects_get_400_not_500(api, body):
    store, path, _ = api
    status, out = _raw(path, _req("POST", "/api/v1/namespaces/default/configmaps", body))
    assert status == 400, out
    assert out["kind"] == "Status" and out["reason"] == "BadRequest"
    assert store.list("configmaps")[0] == []


def test_delete_options_body_is_read_not_taken_for_the_next_request(api):
    """kubectl sends DeleteOptions as a body; its gracePeriodSeconds counts."""
    store, path, _ = api
    store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                  "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}})
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    body = b'{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}'
    s.sendall(_req("DELETE", "/api/v1/namespaces/default/pods/p", body)
              + _req("GET", "/healthz"))
    data = b""
    while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"ok"):
        data += s.recv(65536)
    s.close()
    assert data.startswith(b"HTTP/1.1 200")
    with pytest.raises(errors.NotFound):
        store.get("pods", "p")


# ---- parameters ----------------------------------------------------------------------
@pytest.mark.parametrize("query,message", [
    ("watch=1&timeoutSeconds=nan", 'strconv.ParseInt: parsing "nan": invalid syntax'),
    ("watch=1&timeoutSeconds=inf", 'strconv.ParseInt: parsing "inf": invalid syntax'),
    ("watch=1&timeoutSeconds=1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
    ("watch=1&timeoutSeconds=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("watch=1&timeoutSeconds=99999999999999999999",
     'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    ("limit=x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("watch=1&resourceVersion=abc",
     'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax'),
    ("resourceVersion=-1",
     'resourceVersion: Invalid value: "-1": strconv.ParseUint: parsing "-1": invalid syntax'),
    ("labelSelector=a%20b%20c", None),
])
def test_bad_list_and_watch_parameters_get_400(api, query, message):
    _, path, _ = api
    t = time.monotonic()
    status, out = _raw(path, _req("GET", f"/api/v1/namespaces/default/configmaps?{query}"),
                       timeout=5)
    assert status == 400, out
    assert out["kind"] == "Status" and out["reason"] == "BadRequest" and out["code"] == 400
    if message:
        assert out["message"] == message
    assert time.monotonic() - t < 2


def test_negative_watch_timeout_ends_at_once(api):
    """As the apiserver's timer does: an empty stream, not a spin."""
    _, path, _ = api
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(_req("GET", "/api/v1/configmaps?watch=1&timeoutSeconds=-5"))
    data = b""
    while not data.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        assert chunk
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200") and time.monotonic() - t < 2


def test_store_watch_with_nan_timeout_does_not_spin():
    store = Store()
    t = time.process_time()
    assert list(store.watch("configmaps", timeout=float("nan"))) in ([], [("BOOKMARK", {
        "metadata": {"resourceVersion": "0"}})])
    assert time.process_time() - t < 0.5


@pytest.mark.parametrize("grace", ["abc", "1.5", "nan"])
def test_bad_grace_period_gets_400_and_deletes_nothing(api, grace):
    store, path, _ = api
    store.create(_cm("keep"))
    status, out = _raw(path, _req("DELETE",
                                  f"/api/v1/namespaces/default/configmaps/keep?gracePeriodSeconds={grace}"))
    assert status == 400 and out["message"] == f'strconv.ParseInt: parsing "{grace}": invalid syntax'
    assert store.get("configmaps", "keep")


def test_negative_grace_period_on_a_pod_means_one_second(api):
    store, path, _ = api
    store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                  "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
                  "status": {"phase": "Running"}})
    c = HttpClient(path=path)
    out = c.delete("pods", "p", "default", grace_period_seconds=-3)
    assert out["metadata"]["deletionGracePeriodSeconds"] == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_unsupported_dry_run_value_is_refused_not_taken_for_a_write(api, method):
    store, path, _ = api
    store.create(_cm("d", data={"a": "1"}))
    url = "/api/v1/namespaces/default/configmaps" + ("" if method == "POST" else "/d")
    body = _cm("n" if method == "POST" else "d", data={"a": "2"})
    status, out = _raw(path, _req(method, url + "?dryRun=true", json.dumps(body).encode()))
    assert status == 422, out
    kind = {"POST": "Create", "PUT": "Update", "PATCH": "Patch", "DELETE": "Delete"}[method]
    assert out["message"] == (f'{kind}Options.meta.k8s.io "" is invalid: dryRun: Unsupported '
                              'value: []string{"true"}: supported values: "All"')
    assert [c["metadata"]["name"] for c in store.list("configmaps")[0]] == ["d"]
    assert store.get("configmaps", "d")["data"] == {"a": "1"}


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_dry_run_patch_and_delete_write_nothing(api, method):
    store, path, _ = api
    store.create(_cm("d", data={"a": "1"}))
    status, out = _raw(path, _req(method, "/api/v1/namespaces/default/configmaps/d?dryRun=All",
                                  json.dumps({"data": {"a": "2"}}).encode()))
    assert status == 200, out
    assert out["data"] == ({"a": "2"} if method == "PATCH" else {"a": "1"})
    assert store.get("configmaps", "d")["data"] == {"a": "1"}


@pytest.mark.parametrize("url", ["/apis/foo/v1/namespaces/default/configmaps",
                                 "/apis/apps/v1/namespaces/default/configmaps",
                                 "/api/v1/namespaces/default/configmaps/x/bogus",
                                 "/api/v1/namespaces/default/namespaces"])
def test_paths_that_do_not_exist_get_404(api, url):
    _, path, _ = api
    status, out = _raw(path, _req("GET", url))
    assert status == 404 and out["reason"] == "NotFound"


# ---- kind, apiVersion, namespace and name come from the URL --------------------------
def _post(path, url, obj):
    return _raw(path, _req("POST", url, json.dumps(obj).encode()))


def test_post_of_another_kind_than_the_url_is_refused(api):
    store, path, _ = api
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80}]}}
    status, out = _post(path, "/api/v1/namespaces/default/configmaps", svc)
    assert status == 400
    assert out["message"] == ('Service in version "v1" cannot be handled as a ConfigMap: '
                              "converting (v1.Service) to (core.ConfigMap): unknown conversion")
    assert store.list("services")[0] == [] and store.list("configmaps")[0] == []


def test_post_of_another_api_version_than_the_url_is_refused(api):
    store, path, _ = api
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
           "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}
    status, out = _post(path, "/apis/extensions/v1beta1/namespaces/default/ingresses", obj)
    assert status == 400
    assert out["message"] == ("the API version in the data (networking.k8s.io/v1) does not "
                              "match the expected API version (extensions/v1beta1)")
    assert store.list("ingresses")[0] == []


def test_post_of_an_unknown_kind_or_version_is_refused(api):
    _, path, _ = api
    status, out = _post(path, "/api/v1/namespaces/default/configmaps",
                        {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert status == 400
    assert out["message"].startswith('ConfigMap in version "v1" cannot be handled as a '
                                     'ConfigMap: no kind "ConfigMap" is registered for '
                                     'version "apps/v1"')


def test_body_without_kind_gets_the_urls(api):
    store, path, _ = api
    status, out = _post(path, "/api/v1/namespaces/default/configmaps",
                        {"metadata": {"name": "bare"}, "data": {"a": "b"}})
    assert status == 201, out
    assert out["kind"] == "ConfigMap" and out["apiVersion"] == "v1"
    assert store.get("configmaps", "bare")["kind"] == "ConfigMap"


def test_post_namespace_must_match_the_urls(api):
    store, path, _ = api
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    status, out = _post(path, "/api/v1/namespaces/default/configmaps",
                        _cm("x", metadata={"name": "x", "namespace": "other"}))
    assert status == 400
    assert out["message"] == ("the namespace of the provided object does not match the "
                              "namespace sent on the request")
    assert store.list("configmaps")[0] == []


def test_put_of_another_kind_cannot_overwrite_an_object_of_that_kind(api):
    store, path, _ = api
    store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                  "data": {"k": "dg=="}})
    store.create(_cm("s"))
    status, out = _raw(path, _req("PUT", "/api/v1/namespaces/default/configmaps/s", json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {}}).encode()))
    assert status == 400 and "cannot be handled as a ConfigMap" in out["message"]
    assert store.get("secrets", "s")["data"] == {"k": "dg=="}


def test_put_name_and_namespace_must_match_the_url(api):
    store, path, _ = api
    store.create(_cm("y"))
    status, out = _raw(path, _req("PUT", "/api/v1/namespaces/default/configmaps/y",
                                  json.dumps(_cm("x")).encode()))
    assert status == 400
    assert out["message"] == "the name of the object (x) does not match the name on the URL (y)"
    status, out = _raw(path, _req("PUT", "/api/v1/namespaces/default/configmaps/y", json.dumps(
        _cm("y", metadata={"name": "y", "namespace": "kube-system"})).encode()))
    assert status == 400
    assert out["message"] == ("the namespace of the object (kube-system) does not match the "
                              "namespace on the URL (default)")


def test_patch_cannot_rename_or_change_kind(api):
    store, path, _ = api
    store.create(_cm("p"))
    for patch, msg in [({"metadata": {"name": "q"}},
                        "the name of the object (q) does not match the name on the URL (p)"),
                       ({"kind": "Secret"}, "cannot be handled as a ConfigMap")]:
        status, out = _raw(path, _req("PATCH", "/api/v1/namespaces/default/configmaps/p",
                                      json.dumps(patch).encode(),
                                      "Content-Type: application/merge-patch+json\r\n"))
        assert status == 400 and msg in out["message"]
    assert store.list("secrets")[0] == []


def test_old_ingress_versions_are_served_at_their_own_paths(api):
    """The client sends an extensions/v1beta1 Ingress where kubectl would; it is stored."""
    store, path, _ = api
    c = HttpClient(path=path)
    out = c.create({"apiVersion": "extensions/v1beta1", "kind": "Ingress",
                    "metadata": {"name": "old"},
                    "spec": {"backend": {"serviceName": "s", "servicePort": 80}}})
    assert out["metadata"]["name"] == "old"
    assert store.get("ingresses", "old")["apiVersion"] == "networking.k8s.io/v1"


# ---- slow clients --------------------------------------------------------------------
@pytest.mark.parametrize("api", [{"header_timeout": 0.5, "idle_timeout": 1.0}], indirect=True)
def test_half_sent_requests_time_out_and_others_are_served(api):
    store, path, srv = api
    base = threading.active_count()
    socks = []
    for i in range(200):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        # half a request: a header line, or a body shorter than announced
        s.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\n" if i % 2 else
                  b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
                  b"Content-Length: 100\r\n\r\n{")
        socks.append(s)
    wait_for(lambda: srv.active_connections >= 200, timeout=10, what="200 connections")
    c = HttpClient(path=path, timeout=5)
    t = time.monotonic()
    c.create(_cm("served"))
    assert c.get("configmaps", "served") and time.monotonic() - t < 1
    # every half-sent connection is closed by the server, its thread released
    wait_for(lambda: srv.active_connections <= 1, timeout=10, what="connections reaped")
    wait_for(lambda: threading.active_count() <= base + 2, timeout=10, what="threads released")
    for s in socks:
        s.settimeout(2)
        assert s.recv(100) == b""
        s.close()
    assert store.list("configmaps")[0][0]["metadata"]["name"] == "served"


@pytest.mark.parametrize("api", [{"header_timeout": 0.5, "idle_timeout": 1.0}], indirect=True)
def test_a_trickling_client_is_cut_off_by_the_deadline(api):
    """One byte at a time (each inside any per-read timeout) still ends at the deadline."""
    _, path, srv = api
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    t = time.monotonic()
    closed = False
    for b in b"GET /api/v1/pods HTTP/1.1\r\nX-Slow: " + b"a" * 100:
        try:
            s.send(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(0.05)
        if time.monotonic() - t > 3:
            break
    s.settimeout(2)
    try:
        assert s.recv(10) == b""
    except OSError:
        pass
    assert closed or time.monotonic() - t < 3
    wait_for(lambda: srv.active_connections == 0, timeout=5, what="connection reaped")


@pytest.mark.parametrize("api", [{"header_timeout": 0.5, "idle_timeout": 1.0}], indirect=True)
def test_a_watch_outlives_the_read_deadline(api):
    store, path, _ = api
    c = HttpClient(path=path)
    got = []
    done = threading.Event()

    def watch():
        for etype, obj in c.watch("configmaps", "default", timeout=3):
            if etype == "ADDED":
                got.append(obj["metadata"]["name"])
                done.set()
                return

    threading.Thread(target=watch, daemon=True).start()
    time.sleep(0.8)  # let the watch sit past the header deadline: what is under test
    store.create(_cm("late"))
    assert done.wait(5) and got == ["late"]


@pytest.mark.parametrize("api", [{"header_timeout": 0.5, "idle_timeout": 0.5}], indirect=True)
def test_idle_keepalive_connection_is_closed_and_the_client_reconnects(api):
    _, path, srv = api
    c = HttpClient(path=path)
    c.create(_cm("a"))
    wait_for(lambda: srv.active_connections == 0, timeout=5, what="idle connection closed")
    assert c.get("configmaps", "a")["metadata"]["name"] == "a"


@pytest.mark.parametrize("api", [{"max_connections": 5, "header_timeout": 0.5}], indirect=True)
def test_connections_over_the_cap_get_429(api):
    _, path, srv = api
    socks = []
    for _ in range(5):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        socks.append(s)
    wait_for(lambda: srv.active_connections == 5, timeout=5, what="5 connections")
    status, out = _raw(path, _req("GET", "/healthz"))
    assert status == 429 and out["reason"] == "TooManyRequests"
    for s in socks:
        s.close()
    wait_for(lambda: srv.active_connections == 0, timeout=5, what="connections gone")
    assert _raw(path, _req("GET", "/healthz"))[0] == 200


# ---- the event log -------------------------------------------------------------------
def test_watch_log_is_capped_by_bytes():
    store = Store(history_bytes=10 * MiB)
    store.bootstrap()
    rv0 = store.resource_version
    for i in range(40):
        store.create(_cm(f"big{i}", data={"k": "x" * MiB}))
    assert store._event_bytes <= 10 * MiB
    assert len(store._events) < 15
    with pytest.raises(errors.Gone):
        next(store.watch("configmaps", resource_version=rv0, timeout=1))
    # a recent version still resumes
    rv = store.resource_version - 2
    assert next(store.watch("configmaps", resource_version=rv, timeout=1))[0] == "ADDED"


def test_events_expire_after_the_ttl():
    store = Store(event_ttl=3600)
    store.bootstrap()
    old = "2020-01-01T00:00:00Z"
    store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old.1"},
                  "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R",
                  "message": "m", "lastTimestamp": old, "firstTimestamp": old})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "new.1"},
                  "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R",
                  "message": "m", "lastTimestamp": now, "firstTimestamp": now})
    assert store.expire_events() == 1
    names = [e["metadata"]["name"] for e in store.list("events")[0]]
    assert names == ["new.1"]


def test_a_flood_of_events_does_not_outgrow_the_ttl():
    """Creating Events sweeps expired ones (at most once per interval)."""
    store = Store(event_ttl=1)
    store.bootstrap()
    old = "2020-01-01T00:00:00Z"
    for i in range(50):
        store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"e.{i}"},
                      "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R",
                      "message": "m" * 1000, "lastTimestamp": old})
        store._next_event_sweep = 0.0  # let every create sweep
    assert len(store.list("events")[0]) == 1


def test_recorded_event_messages_are_truncated():
    from netsim.api import events
    from netsim.api.client import LocalClient
    store = Store()
    store.bootstrap()
    pod = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    events.record(LocalClient(store), pod, "Warning", "Failed", "e" * 100000, "kubelet")
    (ev,) = store.list("events")[0]
    assert len(ev["message"]) == 1024 and ev["message"].endswith("...")
