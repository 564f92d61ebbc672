"""pods/portforward as users drive it: the real `kubectl port-forward` (SPDY tunnelled in
WebSocket, as kubectl 1.37 does by default, and plain SPDY/3.1, its fallback) to a pod, a
Deployment and a Service, then plain HTTP/TCP clients on the local port (the user's side:
the root netns's localhost); a refused port with kubectl's and the runtime's words; a
hostNetwork pod; and the Python client's portforward() over v4.channel.k8s.io."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.conftest import namespace_fixture, wait_for
from tests.e2e.kubectl_helpers import KUBECTL, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

NS = "portfwd"
ns = namespace_fixture(NS)
HOST_PORT = 9187  # the hostNetwork pod's port on its node

OBJECTS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: netsim/echo
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: tcpe}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{{name: tcpe, image: netsim/tcp-echo}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: hostweb}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers: [{{name: web, image: netsim/echo, args: ["--port", "{HOST_PORT}"]}}]
"""


@pytest.fixture(scope="module")
def objects(cluster, ns):
    cluster.netsim("apply", "-n", ns, "-f", "-", input=OBJECTS)
    kubectl(cluster, "-n", ns, "rollout", "status", "deploy/web", "--timeout=60s")
    kubectl(cluster, "-n", ns, "wait", "--for=condition=Ready", "pod/tcpe", "pod/hostweb",
            "--timeout=60s")
    pod = kubectl(cluster, "-n", ns, "get", "pods", "-l", "app=web", "-o",
                  "jsonpath={.items[0].metadata.name}").stdout
    return {"web": pod}


class PortForward:
    """`kubectl port-forward` in the background: the local port it chose, its output so
    far; ended by its pid."""

    def __init__(self, cluster, target: str, remote: int, env: dict | None = None) -> None:
        home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                            f"netsim-test-{cluster.name}.home")
        self.p = subprocess.Popen(
            [KUBECTL, "--context", f"netsim-{cluster.name}", "-n", NS, "port-forward", target,
             f":{remote}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": home, **(env or {})})
        self.out = ""
        ready = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)\n")
        deadline = time.monotonic() + 20
        while not ready.search(self.out):
            assert time.monotonic() < deadline and self.p.poll() is None, self.out
            self._read(0.2)
        self.local, self.remote = map(int, ready.search(self.out).groups())

    def _read(self, timeout: float) -> None:
        if select.select([self.p.stdout], [], [], timeout)[0]:
            data = os.read(self.p.stdout.fileno(), 65536)
            self.out += data.decode(errors="replace")

    def output_until(self, pred, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while not pred(self.out) and time.monotonic() < deadline:
            self._read(0.1)
            if self.p.poll() is not None:
                self._read(0)
                break
        return self.out

    def stop(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
        self.p.wait(timeout=10)
        self.p.stdout.close()

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def get(port: int, path: str) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        assert r.status == 200
        return json.loads(r.read())
    finally:
        c.close()


def echo_roundtrip(port: int, n: int) -> tuple[bytes, bool, float]:
    """Through tcp-echo: its greeting, whether n random bytes came back intact, MB/s."""
    data = os.urandom(n)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    greeting = f.readline()
    t0 = time.monotonic()
    writer = threading.Thread(target=s.sendall, args=(data,))
    writer.start()
    got = bytearray()
    while len(got) < n:
        chunk = f.read1(1 << 20)
        if not chunk:
            break
        got += chunk
    dt = time.monotonic() - t0
    writer.join()
    s.close()
    return greeting, bytes(got) == data, n / dt / 1e6


def test_deployment_then_curl(cluster, objects):
    with PortForward(cluster, "deploy/web", 8080) as pf:
        assert pf.remote == 8080
        for i in range(3):  # a connection each, one session
            body = get(pf.local, f"/hello/{i}")
            assert (body["pod"], body["path"], body["namespace"]) == (objects["web"],
                                                                     f"/hello/{i}", NS)
        out = pf.output_until(lambda o: o.count("Handling connection") >= 3)
        assert out.count(f"Handling connection for {pf.local}") == 3
        assert "error" not in out.lower()


def test_service_resolves_to_a_pod_and_its_target_port(cluster, objects):
    with PortForward(cluster, "svc/web", 80) as pf:
        assert pf.remote == 8080  # kubectl maps the Service port to the pod's targetPort
        assert get(pf.local, "/svc")["pod"] == objects["web"]
        # concurrent connections through one kubectl
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(get(pf.local, f"/c{i}")))
                   for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r["path"] for r in results) == sorted(f"/c{i}" for i in range(10))


@pytest.mark.parametrize("websocket", [True, False], ids=["spdy-in-websocket", "plain-spdy"])
def test_bytes_both_ways_intact(cluster, objects, websocket):
    env = {} if websocket else {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    with PortForward(cluster, "pod/tcpe", 9000, env) as pf:
        greeting, same, mbps = echo_roundtrip(pf.local, 8 << 20)
        assert greeting.startswith(b"hello from tcpe ")
        assert same
        print(f"port-forward {'ws' if websocket else 'spdy'}: {mbps:.1f} MB/s each way")


def test_a_refused_port_is_kubectls_error_and_it_exits(cluster, objects):
    uid = kubectl(cluster, "-n", NS, "get", "pod", "tcpe", "-o",
                  "jsonpath={.metadata.uid}").stdout
    pf = PortForward(cluster, "pod/tcpe", 9999)
    try:
        s = socket.create_connection(("127.0.0.1", pf.local), timeout=10)
        assert s.recv(100) == b""  # kubectl closes the local connection
        s.close()
        out = pf.output_until(lambda o: "lost connection to pod" in o)
        sandbox = hashlib.sha256(uid.encode()).hexdigest()
        netns = f"/var/run/netns/{cluster.name}-pod-{sandbox[:12]}"
        assert (f"error forwarding port 9999 to pod {sandbox}, uid : failed to execute "
                f"portforward in network namespace \\\"{netns}\\\": failed to connect to "
                f"localhost:9999 inside namespace \\\"{sandbox}\\\", IPv4: dial tcp4 "
                "127.0.0.1:9999: connect: connection refused IPv6 dial tcp6 [::1]:9999: ") in out
        assert out.rstrip().endswith("error: lost connection to pod")
        assert pf.p.wait(timeout=10) == 1
    finally:
        pf.stop()


def test_a_host_network_pod_forwards_from_its_nodes_namespace(cluster, objects):
    with PortForward(cluster, "pod/hostweb", HOST_PORT) as pf:
        node = kubectl(cluster, "-n", NS, "get", "pod", "hostweb", "-o",
                       "jsonpath={.spec.nodeName}").stdout
        assert get(pf.local, "/host")["node"] == node
    with PortForward(cluster, "pod/hostweb", HOST_PORT + 1) as pf:
        socket.create_connection(("127.0.0.1", pf.local), timeout=10).close()
        out = pf.output_until(lambda o: "lost connection" in o)
        assert 'failed to execute portforward in network namespace \\"host\\"' in out


def test_python_client_portforward(cluster, objects):
    from kubernetes import client, config
    from kubernetes.stream import portforward

    config.load_kube_config(context=f"netsim-{cluster.name}")
    api = client.CoreV1Api()
    pf = portforward(api.connect_get_namespaced_pod_portforward, objects["web"], NS,
                     ports="8080")
    s = pf.socket(8080)
    s.setblocking(True)
    s.sendall(b"GET /from-python HTTP/1.0\r\nHost: x\r\n\r\n")
    buf = b""
    while chunk := s.recv(65536):
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["path"] == "/from-python"
    assert pf.error(8080) is None
    s.close()

    # two ports on one WebSocket: one echoes, one is refused on its error channel
    pf = portforward(api.connect_get_namespaced_pod_portforward, "tcpe", NS, ports="9000,9999")
    s = pf.socket(9000)
    s.setblocking(True)
    assert s.recv(100).startswith(b"hello from tcpe")
    s.sendall(b"ping\n")
    assert s.recv(100) == b"ping\n"
    wait_for(lambda: pf.error(9999) is not None, timeout=10, what="the error channel of 9999")
    assert "failed to connect to localhost:9999 inside namespace" in pf.error(9999)
    assert "dial tcp4 127.0.0.1:9999: connect: connection refused" in pf.error(9999)
    s.close()
