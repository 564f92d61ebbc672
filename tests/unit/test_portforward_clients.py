"""The real clients against pods/portforward over HTTPS, in-process (no root, no cluster):
kubectl 1.37 through its WebSocket tunnel and through plain SPDY, and the Python client
over v4 channels, the pod's port faked by a local echo server."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

import netsim.api.streams.portforward  # noqa: F401  (registers pods/portforward)
from netsim.api.streams import backend
from netsim.api.streams.backend import StreamError
from tests.conftest import wait_for
from tests.unit.kubectl_api import KUBECTL, requires_kubectl, running_api

REFUSED = "error forwarding port {port} to pod sb, uid : refused in the test's words"


class Echo:
    """Echoes each connection's bytes until the client ends, then closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    @staticmethod
    def _one(c: socket.socket) -> None:
        with c:
            while data := c.recv(65536):
                c.sendall(data)


class Node:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo

    def port_forward(self, pod: dict, port: int) -> socket.socket:
        if port != 80:
            raise StreamError(REFUSED.format(port=port))
        return socket.create_connection(self.echo.sock.getsockname())


@pytest.fixture(scope="module")
def api():
    echo = Echo()
    old = backend._backend
    backend.install(Node(echo))
    with running_api() as a:
        a.store.create({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "x"}]}})
        a.store.patch("pods", "web", "default", {"status": {"phase": "Running"}}, "status",
                      False)
        yield a
    backend.install(old)
    echo.sock.close()


class Kubectl:
    """`kubectl port-forward pod/web :REMOTE` in the background, ended by its pid."""

    def __init__(self, api, remote: int, websockets: bool = True, listeners: int = 1) -> None:
        env = {**os.environ, "KUBECONFIG": api.kubeconfig, "HOME": api.home}
        if not websockets:
            env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = "false"
        self.p = subprocess.Popen([KUBECTL, "--context", "netsim-unit", "port-forward",
                                   "pod/web", *[f":{remote}"] * listeners, "-v=4"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = ""
        ready = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> \d+\n")
        deadline = time.monotonic() + 20
        while len(ready.findall(self.out)) < listeners:
            assert time.monotonic() < deadline and self.p.poll() is None, self.out
            self.read(0.2)
        self.ports = [int(p) for p in ready.findall(self.out)]
        self.port = self.ports[0]

    def read(self, timeout: float) -> None:
        if select.select([self.p.stdout], [], [], timeout)[0]:
            self.out += os.read(self.p.stdout.fileno(), 65536).decode(errors="replace")

    def until(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.out and time.monotonic() < deadline and self.p.poll() is None:
            self.read(0.1)
        self.read(0)
        return self.out

    def stop(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
        self.p.wait(timeout=10)
        self.p.stdout.close()


def roundtrip(port: int, data: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    t.start()
    got = bytearray()
    while chunk := s.recv(1 << 20):
        got += chunk
    t.join()
    s.close()
    return bytes(got)


@requires_kubectl
@pytest.mark.parametrize("websockets", [True, False], ids=["spdy-in-websocket", "plain-spdy"])
def test_kubectl_forwards_bytes_both_ways(api, websockets):
    k = Kubectl(api, 80, websockets)
    try:
        data = os.urandom(3 << 20)
        assert roundtrip(k.port, data) == data  # the client's end reaches the pod, and back
        assert roundtrip(k.port, b"second\n") == b"second\n"
        out = k.until("Handling connection", 2)
        assert out.count("Handling connection for") == 2
        # which transport kubectl used (its -v=4 dialer lines)
        assert ("Negotiation complete" in out) == websockets
        assert "error" not in out.lower()
    finally:
        k.stop()


@requires_kubectl
def test_kubectl_two_listeners_and_overlapping_connections_on_one_session(api):
    k = Kubectl(api, 80, listeners=2)
    try:
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10)
                 for port in k.ports * 3]  # six at once, open together
        for i, c in enumerate(conns):
            c.sendall(f"conn {i}".encode())
        for i, c in enumerate(conns):
            assert c.recv(100) == f"conn {i}".encode()
            c.close()
        assert roundtrip(k.ports[1], b"after") == b"after"
    finally:
        k.stop()


@requires_kubectl
@pytest.mark.parametrize("websockets", [True, False], ids=["spdy-in-websocket", "plain-spdy"])
def test_a_killed_kubectl_leaves_no_session_behind(api, websockets):
    before = threading.active_count()
    k = Kubectl(api, 80, websockets)
    c = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    c.sendall(b"x" * 100000)
    assert c.recv(10)
    os.kill(k.p.pid, signal.SIGKILL)  # mid-stream, no goodbye
    k.stop()
    c.close()
    # the session's thread ends and the pod connection is closed (the echo's thread ends)
    wait_for(lambda: threading.active_count() <= before, timeout=10,
             what="the port-forward session and the pod connection to end")


@requires_kubectl
def test_kubectl_prints_the_error_stream_and_exits(api):
    k = Kubectl(api, 81)
    try:
        try:
            got = roundtrip(k.port, b"x")
        except ConnectionResetError:  # kubectl closed it with our byte unread: a reset
            got = b""
        assert got == b""  # nothing from the refused pod port
        out = k.until("lost connection to pod")
        assert REFUSED.format(port=81) in out
        assert out.rstrip().endswith("error: lost connection to pod")
        assert k.p.wait(timeout=10) == 1
    finally:
        k.stop()


def test_python_client_portforward(api):
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import portforward

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=api.kubeconfig, context="netsim-unit",
                                       client_configuration=cfg)
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default",
                     ports="80,81")
    s = pf.socket(80)
    s.setblocking(True)
    s.sendall(b"from python")
    assert s.recv(100) == b"from python"
    deadline = time.monotonic() + 10
    while pf.error(81) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pf.error(81) == REFUSED.format(port=81)
    s.close()


@requires_kubectl
def test_an_upgrade_refused_is_kubectls_error_upgrading_connection(api):
    a = api
    a.store.create({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "nohost", "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}})
    a.store.patch("pods", "nohost", "default", {"status": {"phase": "Running"}}, "status", False)
    env = {**os.environ, "KUBECONFIG": a.kubeconfig, "HOME": a.home}
    p = subprocess.run([KUBECTL, "--context", "netsim-unit", "port-forward", "pod/nohost",
                        ":80"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    # the Status message, prefixed by kubectl's dialer as against kube-apiserver
    assert p.stderr == ("error: error upgrading connection: unable to upgrade connection: pod "
                        "nohost does not have a host assigned\n")
