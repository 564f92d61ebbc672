"""Upstream's NetworkPolicy model on a real cluster (test/e2e/network/netpol; issue 13; root).

Namespaces x, y, z (labelled `ns: <name>`), pods a, b, c in each (labelled `pod: <name>`),
each serving TCP and UDP on 80 and 81. Every case applies its policies and then asserts
the WHOLE reachability matrix (9 x 9 pods x 4 ports) with real connections: each source
pod probes every destination at once from its own netns (TCP connect; UDP send and wait
for the echo; a refused probe fails at once: the policy REJECTs). A pod always reaches
itself (its own IP stays in its netns; upstream's AllowLoopback), so the diagonal is not
probed. The cases are a subset of upstream's network_policy.go (none needs SCTP); their
expectations are the ones tests/unit/test_netpol_render.py checks through the packet-flow
interpreter.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too
NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = [(80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp")]

SERVER = """
import socket, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept(); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048); s.sendto(data, peer)
ts = [threading.Thread(target=f, args=(p,)) for f in (tcp, udp) for p in (80, 81)]
[t.start() for t in ts]
"""

PROBER = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(t):
    ip, port, proto = t
    try:
        if proto == "tcp":
            socket.create_connection((ip, port), timeout=1).close()
            return True
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
        s.connect((ip, port)); s.send(b"x"); s.recv(16); s.close()
        return True
    except OSError:
        return False
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets) or 1) as ex:
    print(json.dumps(list(ex.map(probe, targets))))
"""


@pytest.fixture(scope="module")
def model(cluster):
    """{"x/a": pod IP, ...} once every model pod serves."""
    for ns in NAMESPACES:
        cluster.netsim("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"ns": ns}}}))
        for name in PODS:
            cluster.netsim("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
                "spec": {"containers": [{
                    "name": "serve", "image": "busybox", "command": [PYTHON, "-c", SERVER],
                    "ports": [{"name": f"serve-{p}-{proto}", "containerPort": p,
                               "protocol": proto.upper()} for p, proto in PORTS]}]}}))
    ips = {}
    for ns in NAMESPACES:
        for p in cluster.wait_pods_ready(ns, "", 3, timeout=120):
            ips[f"{ns}/{p['metadata']['name']}"] = p["status"]["podIP"]
    wait_for(lambda: probe_matrix(cluster, ips) == expected(ips, lambda s, d, port, proto: True),
             timeout=30, interval=0.5, what="every model pod serving")
    yield ips
    for ns in NAMESPACES:
        cluster.netsim("delete", "namespace", ns, check=False, timeout=120)


Matrix = dict[tuple[str, str, int, str], bool]


def probe_matrix(cluster, ips: dict[str, str]) -> Matrix:
    def row(src: str) -> Matrix:
        ns, name = src.split("/")
        targets = [(d, port, proto) for d in ips if d != src for port, proto in PORTS]
        arg = json.dumps([[ips[d], port, proto] for d, port, proto in targets])
        r = cluster.pod_exec(name, PYTHON, "-c", PROBER, arg, namespace=ns, timeout=30)
        got = json.loads(r.stdout) if r.returncode == 0 else [None] * len(targets)
        return {(src, d, port, proto): ok for (d, port, proto), ok in zip(targets, got, strict=True)}
    out: Matrix = {}
    with ThreadPoolExecutor(len(ips)) as ex:
        for part in ex.map(row, ips):
            out.update(part)
    return out


def expected(ips: dict[str, str], allow) -> Matrix:
    return {(s, d, port, proto): allow(s, d, port, proto)
            for s in ips for d in ips if d != s for port, proto in PORTS}


def table(got: Matrix, want: Matrix, ips) -> str:
    """Upstream's truth table: . allowed, X blocked, * differs from the expectation."""
    out = []
    for port, proto in PORTS:
        out.append(f"{proto}/{port} " + " ".join(f"{d:>4}" for d in ips))
        for s in ips:
            cells = []
            for d in ips:
                k = (s, d, port, proto)
                c = "." if d == s or got.get(k) else "X"
                cells.append("*" if d != s and got.get(k) != want[k] else c)
            out.append(f"{s:>7} " + " ".join(f"{c:>4}" for c in cells))
    return "\n".join(out)


def netpol(name: str, ns: str = "x", **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def nsof(k: str) -> str:
    return k.split("/")[0]


CASES = {
    "default-deny-ingress": (
        [netpol("deny", policyTypes=["Ingress"])],
        lambda s, d, port, proto: nsof(d) != "x"),
    "allow-from-namespace-y": (
        [netpol("from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])],
        lambda s, d, port, proto: nsof(d) != "x" or nsof(s) == "y"),
    "allow-port-80-tcp-only": (
        [netpol("port-80", ingress=[{"ports": [{"port": 80}]}])],
        lambda s, d, port, proto: nsof(d) != "x" or (port, proto) == (80, "tcp")),
    "namespace-and-pod-selector": (
        [netpol("ns-and-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
            {"namespaceSelector": {"matchExpressions": [
                {"key": "ns", "operator": "NotIn", "values": ["x"]}]},
             "podSelector": {"matchLabels": {"pod": "b"}}}]}])],
        lambda s, d, port, proto: d != "x/a" or (nsof(s) != "x" and s.endswith("/b"))),
    "named-port-udp-81": (
        [netpol("named", ingress=[{"ports": [{"port": "serve-81-udp", "protocol": "UDP"}]}])],
        lambda s, d, port, proto: nsof(d) != "x" or (port, proto) == (81, "udp")),
    "egress-deny-all-from-x": (
        [netpol("deny-egress", policyTypes=["Egress"])],
        lambda s, d, port, proto: nsof(s) != "x"),
    "allow-all-beside-deny-is-a-union": (
        [netpol("deny", policyTypes=["Ingress"]), netpol("allow-all", ingress=[{}])],
        lambda s, d, port, proto: True),
    "stacked-policies": (
        [netpol("from-y", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]),
         netpol("from-z-81", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "z"}}}],
                                       "ports": [{"port": 81}]}])],
        lambda s, d, port, proto: nsof(d) != "x" or nsof(s) == "y"
        or (nsof(s) == "z" and (port, proto) == (81, "tcp"))),
    "egress-rules-without-policy-types-isolate-both-ways": (
        [netpol("egress-to-y", egress=[{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])],
        lambda s, d, port, proto: nsof(d) != "x" and (nsof(s) != "x" or nsof(d) == "y")),
    "ip-block-with-except": (
        lambda ips: [netpol("cidr", podSelector={"matchLabels": {"pod": "a"}}, ingress=[{"from": [
            {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{ips['y/b']}/32"]}}]}])],
        lambda s, d, port, proto: d != "x/a" or s != "y/b"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reachability_matrix(cluster, model, case):
    policies, allow = CASES[case]
    if callable(policies):  # a case that needs the pods' addresses
        policies = policies(model)
    client = cluster.client
    try:
        for p in policies:
            client.create(p)
        want = expected(model, allow)
        last: dict = {}

        def matches() -> bool:
            last["got"] = probe_matrix(cluster, model)
            return last["got"] == want
        try:
            wait_for(matches, timeout=15, interval=0.2, what=f"the {case} matrix")
        except AssertionError:
            raise AssertionError(f"{case}:\n{table(last['got'], want, model)}") from None
    finally:
        for p in policies:
            client.delete("networkpolicies", p["metadata"]["name"], p["metadata"]["namespace"])
    open_ = expected(model, lambda s, d, port, proto: True)
    wait_for(lambda: probe_matrix(cluster, model) == open_, timeout=15, interval=0.2,
             what=f"every connection open again after {case}")
