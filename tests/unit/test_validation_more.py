"""More of Kubernetes' validation, in kubectl's words, and nothing stored (issue 9).

Malformed bodies are 400s on every write path (create, update, status, patch) through the
HTTP API and LocalClient alike; Nodes, tolerations, env, volumes, probes, resources, enums,
Jobs, CronJobs, Namespaces and Events are checked as the apiserver checks them; valid
manifests (the repo's examples, the Kubernetes docs' own) are still accepted.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import tempfile
import threading

import pytest

from netsim.api import errors
from netsim.api.admission import Admission
from netsim.api.client import LocalClient
from netsim.api.resources import BY_KIND
from netsim.api.server import serve
from netsim.api.store import Store


@pytest.fixture
def client():
    store = Store(":memory:", admission=Admission())
    store.bootstrap()
    yield LocalClient(store)
    store.close()


@pytest.fixture
def api():
    """A real server on a temporary unix socket, its store with admission."""
    d = tempfile.mkdtemp(prefix="netsim-val-")
    store = Store(":memory:", admission=Admission())
    store.bootstrap()
    path = os.path.join(d, "api.sock")
    srv = serve(store, path)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield store, path
    srv.shutdown()
    srv.server_close()
    store.close()


def _http(path: str, method: str, url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(f"{method} {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    finally:
        s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


def pod(name="web", **spec):
    spec.setdefault("containers", [{"name": "app", "image": "echo"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


def container(**c):
    return {"name": "app", "image": "echo", **c}


def refused(client, obj, code=422) -> str:
    """Create must fail with `code`, leave the store as it was, and return the message."""
    plural = BY_KIND[obj["kind"]].plural
    before = client.list(plural, None)
    with pytest.raises(errors.ApiError) as ei:
        client.create(copy.deepcopy(obj))
    assert ei.value.code == code, ei.value.message
    assert client.list(plural, None) == before
    return ei.value.message


# ---- malformed bodies: 400 on every write path, never a 500 -----------------------------------
CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "b"}}
DECODE = 'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '


@pytest.mark.parametrize("metadata, want", [
    ([], DECODE + "array into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    ("x", DECODE + "string into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    ({"generateName": 5},
     DECODE + "number into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({"generateName": ["cfg-"]},
     DECODE + "array into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({"name": "cfg", "namespace": ["default"]},
     DECODE + "array into Go struct field ObjectMeta.metadata.namespace of type string"),
])
def test_malformed_metadata_is_a_400_through_local_client(client, metadata, want):
    assert refused(client, {**CM, "metadata": metadata}, code=400) == want


@pytest.mark.parametrize("body, want", [
    ({**CM, "metadata": {"generateName": 5}},
     DECODE + "number into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({**CM, "metadata": {"generateName": {"a": 1}}},
     DECODE + "object into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({**CM, "metadata": {"name": "cfg", "labels": ["a"]}},
     DECODE + "array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
])
def test_malformed_bodies_are_400_through_the_http_api(api, body, want):
    store, path = api
    status, out = _http(path, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", want)
    assert store.list("configmaps")[0] == []


def test_update_status_and_patch_decode_first(api, client):
    store, path = api
    store.create(CM)
    cur = store.get("configmaps", "cfg", "default")
    bad = {**cur, "metadata": {**cur["metadata"], "finalizers": "x"}}
    want = DECODE + "string into Go struct field ObjectMeta.metadata.finalizers of type []string"
    status, out = _http(path, "PUT", "/api/v1/namespaces/default/configmaps/cfg", bad)
    assert (status, out["message"]) == (400, want)
    status, out = _http(path, "PATCH", "/api/v1/namespaces/default/configmaps/cfg",
                        {"metadata": {"finalizers": "x"}})
    assert (status, out["message"]) == (400, want)
    assert store.get("configmaps", "cfg", "default") == cur
    # status PUT decodes the whole body, as the apiserver does
    lc = LocalClient(store)
    p = lc.create(pod())
    with pytest.raises(errors.BadRequest) as ei:
        lc.update_status({**p, "status": "Running"})
    assert ei.value.message == ('Pod in version "v1" cannot be handled as a Pod: json: cannot '
                                "unmarshal string into Go struct field Pod.status of type "
                                "v1.PodStatus")
    with pytest.raises(errors.BadRequest):
        lc.patch("pods", "web", "default", {"metadata": {"generateName": 7}})
    assert lc.get("pods", "web", "default") == p


def test_bad_quantity_is_a_decode_error_for_pods_too(client):
    c = container(resources={"limits": {"cpu": "lots"}})
    assert refused(client, pod(containers=[c]), code=400) == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
