"""GET /openapi/v3: the index and the group-version documents kubectl reads before it writes
(a PATCH operation per kind with its group-version-kind and a fieldValidation parameter),
their hash, ETag and caching, and `kubectl explain` rendering upstream's schemas."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

from netsim.api.admission import admit
from netsim.api.openapi import generate, schema, v3
from netsim.api.resources import RESOURCES
from netsim.api.server import serve, serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import kubeconfig, pki
from tests.unit.kubectl_api import _UnixConnection

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")


@pytest.fixture(scope="module")
def api():
    """A store behind the unix socket and HTTPS (with a kubeconfig for the real kubectl)."""
    d = tempfile.mkdtemp(prefix="netsim-openapi-")
    store = Store(":memory:", admission=admit)
    store.bootstrap()
    certs = pki.create(d, ["127.0.0.1"])
    servers = [serve(store, os.path.join(d, "api.sock")),
               serve_tls(store, "127.0.0.1", 0,
                         tls_context(certs.server_crt, certs.server_key, certs.ca_crt))]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
    kubeconfig.merge(os.path.join(d, "kubeconfig"), "openapi",
                     f"https://127.0.0.1:{servers[1].server_address[1]}", pki.read(certs.ca_crt),
                     pki.read(certs.admin_crt), pki.read(certs.admin_key))
    yield d
    for s in servers:
        s.shutdown()
        s.server_close()
    store.close()
    shutil.rmtree(d, ignore_errors=True)


def get(api: str, url: str, headers: dict | None = None):
    c = _UnixConnection(os.path.join(api, "api.sock"))
    c.request("GET", url, headers={"Accept": "application/json", **(headers or {})})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def test_the_index_names_every_served_group_version_by_its_content_hash(api):
    status, _, data = get(api, "/openapi/v3?timeout=32s")
    assert status == 200
    paths = json.loads(data)["paths"]
    assert {v3.gv_path(r.api_version) for r in RESOURCES} <= set(paths)
    for gv, entry in paths.items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{gv}?hash=")
        status, headers, doc = get(api, url + "&timeout=32s")
        assert status == 200
        h = url.split("hash=")[1]
        assert h == hashlib.sha512(doc).hexdigest().upper()
        assert headers["etag"] == f'"{h}"'
        assert headers["cache-control"] == "public, immutable"


@pytest.mark.parametrize("res", [r for r in RESOURCES], ids=lambda r: r.kind)
def test_each_kind_has_the_patch_operation_kubectl_looks_for(api, res):
    """kubectl's query-param verifier: a PATCH with the kind's GVK and a fieldValidation
    parameter (a create-only review kind: its POST)."""
    _, _, data = get(api, f"/openapi/v3/{v3.gv_path(res.api_version)}")
    doc = json.loads(data)
    gvk = {"group": res.group, "kind": res.kind, "version": res.version}
    ops = [op for item in doc["paths"].values() for verb, op in item.items()
           if verb in ("patch", "post") and op.get("x-kubernetes-group-version-kind") == gvk]
    assert ops and all("fieldValidation" in [p["name"] for p in op["parameters"]] for op in ops)
    # and the kind's schema, as upstream wrote it, for kubectl explain
    name = schema.kinds()[res.api_version][res.kind]
    assert doc["components"]["schemas"][name] == schema.raw_schemas()[name]
    assert set(generate._refs(doc)) <= set(doc["components"]["schemas"])


def test_a_stale_hash_redirects_and_a_known_etag_is_not_sent_again(api):
    _, _, index = get(api, "/openapi/v3")
    url = json.loads(index)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    status, headers, _ = get(api, "/openapi/v3/apis/apps/v1?hash=ABCDEF")
    assert (status, headers["location"]) == (301, url)
    _, headers, _ = get(api, url)
    status, _, data = get(api, "/openapi/v3/apis/apps/v1", {"If-None-Match": headers["etag"]})
    assert (status, data) == (304, b"")
    assert get(api, "/openapi/v3/apis/nope/v1")[0] == 404


def test_openapi_v2_is_a_document_without_definitions(api):
    status, headers, data = get(api, "/openapi/v2?timeout=32s", {
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert status == 200
    assert headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    version = v3.discovery.KUBERNETES_VERSION.encode()
    info = b"\x0a\x0aKubernetes\x12" + bytes([len(version)]) + version
    assert data == b"\x0a\x032.0\x12" + bytes([len(info)]) + info
    status, headers, data = get(api, "/openapi/v2")
    assert json.loads(data) == {"swagger": "2.0", "info": {
        "title": "Kubernetes", "version": v3.discovery.KUBERNETES_VERSION},
        "paths": {}, "definitions": {}}


def test_an_old_version_netsim_converts_has_a_free_form_kind():
    doc = v3.render("extensions/v1beta1")
    s = doc["components"]["schemas"]["io.k8s.api.extensions.v1beta1.Ingress"]
    assert s["x-kubernetes-group-version-kind"] == [
        {"group": "extensions", "kind": "Ingress", "version": "v1beta1"}]
    assert s["x-kubernetes-preserve-unknown-fields"] is True
    assert "/apis/extensions/v1beta1/namespaces/{namespace}/ingresses/{name}" in doc["paths"]


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="the venv has no kubectl")
def test_kubectl_validates_a_list_file_through_v2_and_the_server(api, tmp_path):
    """A `kind: List` file: kubectl looks in v2 (no schema there), the server checks."""
    env = {**os.environ, "KUBECONFIG": os.path.join(api, "kubeconfig"), "HOME": api}
    f = tmp_path / "list.yaml"
    f.write_text("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
                 "  metadata: {name: l1, namespace: default}\n  data: {a: b}\n")
    p = subprocess.run([KUBECTL, "--context", "netsim-openapi", "apply", "-f", str(f)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "configmap/l1 created\n"), p.stderr
    f.write_text(f.read_text().replace("l1", "l2") + "  foo: 1\n")
    p = subprocess.run([KUBECTL, "--context", "netsim-openapi", "apply", "-f", str(f)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr == (f'Error from server (BadRequest): error when creating "{f}": ConfigMap '
                        'in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
                        'unknown field "foo"\n')


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="the venv has no kubectl")
def test_kubectl_explain_prints_upstreams_text(api):
    env = {**os.environ, "KUBECONFIG": os.path.join(api, "kubeconfig"), "HOME": api}
    p = subprocess.run([KUBECTL, "--context", "netsim-openapi", "explain", "deploy.spec"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(
        "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
        "FIELD: spec <DeploymentSpec>\n\n\nDESCRIPTION:\n"
        "    Specification of the desired behavior of the Deployment.\n"
        "    DeploymentSpec is the specification of the desired behavior of the\n"
        "    Deployment.\n")
    assert "  replicas\t<integer>\n    Number of desired pods." in p.stdout
    assert "  selector\t<LabelSelector> -required-\n" in p.stdout
    assert "  strategy\t<DeploymentStrategy>\n" in p.stdout
    p = subprocess.run([KUBECTL, "--context", "netsim-openapi", "explain", "pods.spec.containers.ports"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "FIELD: ports <[]ContainerPort>" in p.stdout
    assert "  containerPort\t<integer> -required-\n" in p.stdout
