"""Upstream's NetworkPolicy model on a real cluster, in iptables and in nftables mode
(test/e2e/network/netpol/network_policy.go; issue 13; root).

Namespaces x, y, z (labelled `ns: <name>`), pods a, b, c in each (labelled `pod: <name>`),
each serving TCP and UDP on 80 and 81 (ports named serve-80-tcp ...). A case is a list of
steps (create, update or delete policies, relabel a pod or a namespace); after each step
the WHOLE reachability matrix (9 x 8 pod pairs x 4 ports) is probed with real connections
and must equal the expectation (upstream's cases probe one port and protocol each; here
every case is judged on all four). Each source's probes start at once from its own netns
(TCP connect; UDP send and wait for the echo); a blocked probe fails at once, since the
policy REJECTs. A pod always reaches itself (upstream's AllowLoopback): the diagonal is not
probed. After a case its policies are deleted and the matrix must be open again.

The module runs once per kube-proxy mode on one cluster each (the nftables run recreates
the session's cluster in nftables mode, then gives it back in iptables mode): the node
agents enforce with iptables chains in the first and with `table ip netsim-netpol` in the
second. The cases are tests/netpol_cases.py, which tests/unit/test_netpol_cases.py also
walks offline through the packet-flow interpreter, for both renderers.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import json
import random
import selectors
import socket
import sys
import threading
import time

import pytest

from netsim.inspect.capture import pod_netns
from netsim.net.rtnl import in_netns
from tests.conftest import requires_root, wait_for
from tests.netpol_cases import (
    ALL,
    CASES,
    NAMESPACES,
    PODS,
    PORTS,
    netpol,
    ns_sel,
    nsof,
    only_from,
    only_to,
    podof,
)

pytestmark = [requires_root, pytest.mark.e2e]
PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too
PROBE_TIMEOUT = 1.0
TIMINGS: dict[str, float] = {}

SERVER = """
import socket, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(256)
    while True:
        c, _ = s.accept(); c.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(2048); s.sendto(data, peer)
ts = [threading.Thread(target=f, args=(p,)) for f in (tcp, udp) for p in (80, 81)]
[t.start() for t in ts]
"""


# ---- the cluster, in each mode -------------------------------------------------------------
@pytest.fixture(scope="module", params=["iptables", "nftables"])
def mode(request, cluster):
    """The session's cluster in iptables mode, then the same cluster in nftables mode."""
    t0 = time.monotonic()
    if (cluster.cfg.proxy_mode or "iptables") != request.param:
        cluster.recreate(request.param)
    yield request.param
    if request.param != "iptables":
        cluster.recreate("iptables")
    TIMINGS[request.param] = time.monotonic() - t0
    print(f"\nnetpol matrix, {request.param} mode: {TIMINGS[request.param]:.0f} s "
          "(cluster up, model pods, every case)")


class Model:
    def __init__(self, cluster, pods: list[dict]):
        self.cluster = cluster
        self.ips = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"]
                    for p in pods}
        self.netns = {f"{p['metadata']['namespace']}/{p['metadata']['name']}":
                      pod_netns(cluster.cfg, p) for p in pods}
        self.nodes = {n.name: n.ip for n in cluster.cfg.nodes}
        self.pod_node = {f"{p['metadata']['namespace']}/{p['metadata']['name']}":
                         p["spec"]["nodeName"] for p in pods}


@pytest.fixture(scope="module")
def model(cluster, mode):
    """The 9 model pods serving, in this mode's cluster."""
    for ns in NAMESPACES:
        cluster.netsim("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"ns": ns}}}))
        for name in PODS:
            cluster.netsim("apply", "-f", "-", input=json.dumps(pod_manifest(ns, name)))
    pods = []
    for ns in NAMESPACES:
        pods += cluster.wait_pods_ready(ns, "", 3, timeout=120)
    m = Model(cluster, pods)
    wait_for(lambda: probe_matrix(m) == expected(m, lambda s, d, port, proto: True),
             timeout=30, interval=0.2, what="every model pod serving")
    yield m
    for ns in NAMESPACES:
        cluster.netsim("delete", "namespace", ns, check=False, timeout=120)


def pod_manifest(ns: str, name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"pod": name}},
            "spec": {"containers": [{
                "name": "serve", "image": "busybox", "command": [PYTHON, "-c", SERVER],
                "ports": [{"name": f"serve-{p}-{proto}", "containerPort": p,
                           "protocol": proto.upper()} for p, proto in PORTS]}]}}


# ---- probing: every source's connections at once, from inside its netns -------------------
Matrix = dict[tuple[str, str, int, str], bool]


# UDP probes' source ports, in turn through 40,000 (a matrix takes 144): a UDP "flow" is
# conntrack's until 30-120 s after its last packet, and a probe that drew a kernel-random
# port an allowed probe of the last seconds had used was that flow's next packet, let
# through by the policy's established rule (CI: one cell of y/a -> x/b udp/80 allowed)
_FIRST_UDP_PORT = random.randrange(20000, 60000)
_UDP_PORTS = itertools.cycle(itertools.chain(range(_FIRST_UDP_PORT, 60000),
                                             range(20000, _FIRST_UDP_PORT)))


def _bind_fresh_udp_port(s: socket.socket) -> None:
    for _ in range(100):
        try:
            s.bind(("0.0.0.0", next(_UDP_PORTS)))
            return
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise


def probe(sources: dict[str, str], targets: dict[str, str], ports=PORTS) -> Matrix:
    """{(source, target, port, proto): connected} for every source (name -> netns path or
    name under /run/netns) to every other target (name -> IP), all at once: the sockets
    are made inside each source's netns (a socket keeps its netns), then one poll loop
    waits for them (TCP: the handshake; UDP: the echo)."""
    out: Matrix = {}
    pending: dict[socket.socket, tuple] = {}
    sel = selectors.DefaultSelector()

    def open_all() -> None:  # a thread of its own: setns moves only the calling thread
        for src, ns in sources.items():
            path = ns if ns.startswith("/") else f"/run/netns/{ns}"
            with in_netns(path):
                for dst, ip in targets.items():
                    if dst == src:
                        continue
                    for port, proto in ports:
                        k = (src, dst, port, proto)
                        if proto == "tcp":
                            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                            s.setblocking(False)
                            rc = s.connect_ex((ip, port))
                            if rc not in (0, errno.EINPROGRESS):
                                out[k] = False
                                s.close()
                                continue
                            sel.register(s, selectors.EVENT_WRITE)
                        else:
                            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            s.setblocking(False)
                            _bind_fresh_udp_port(s)
                            s.connect((ip, port))
                            try:
                                s.send(b"netpol-probe")
                            except OSError:
                                out[k] = False
                                s.close()
                                continue
                            sel.register(s, selectors.EVENT_READ)
                        pending[s] = k
    t = threading.Thread(target=open_all)
    t.start()
    t.join()
    deadline = time.monotonic() + PROBE_TIMEOUT
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(max(deadline - time.monotonic(), 0)):
            s = key.fileobj
            k = pending.pop(s)  # type: ignore[arg-type]
            if k[3] == "tcp":
                out[k] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0  # type: ignore[union-attr]
            else:
                try:
                    out[k] = bool(s.recv(64))  # type: ignore[union-attr]
                except OSError:  # ECONNREFUSED: the ICMP of a REJECT
                    out[k] = False
            sel.unregister(s)
            s.close()  # type: ignore[union-attr]
    for s, k in pending.items():
        out[k] = False
        sel.unregister(s)
        s.close()
    sel.close()
    return out


def probe_matrix(m: Model) -> Matrix:
    return probe(m.netns, m.ips)


def expected(m: Model, allow, sources=None, targets=None) -> Matrix:
    sources = sources or m.ips
    targets = targets or m.ips
    return {(s, d, port, proto): bool(allow(s, d, port, proto))
            for s in sources for d in targets if d != s for port, proto in PORTS}


def table(got: Matrix, want: Matrix) -> str:
    """Upstream's truth table per port: . allowed, X blocked, * differs from expected."""
    srcs = list(dict.fromkeys(k[0] for k in want))
    dsts = list(dict.fromkeys(k[1] for k in want))
    out = []
    for port, proto in PORTS:
        out.append(f"{proto}/{port:<7}" + " ".join(f"{d:>6}" for d in dsts))
        for s in srcs:
            cells = []
            for d in dsts:
                k = (s, d, port, proto)
                if k not in want:
                    cells.append(".")
                    continue
                c = "." if got.get(k) else "X"
                cells.append("*" if got.get(k) != want[k] else c)
            out.append(f"{s:>11} " + " ".join(f"{c:>6}" for c in cells))
    return "\n".join(out)


def assert_matrix(m: Model, allow, what: str, sources=None, timeout: float = 15) -> float:
    """Wait until the probed matrix is the expected one; the seconds it took."""
    sources = sources or m.netns
    want = expected(m, allow, sources=sources)
    last: dict = {}
    t0 = time.monotonic()

    def matches() -> bool:
        last["got"] = probe(sources, m.ips)
        return last["got"] == want
    try:
        wait_for(matches, timeout=timeout, interval=0.1, what=what)
    except AssertionError:
        raise AssertionError(f"{what}:\n{table(last['got'], want)}") from None
    return time.monotonic() - t0


def _act(cluster, action: tuple, created: set[tuple[str, str]], relabelled: dict) -> None:
    client = cluster.client
    kind = action[0]
    if kind == "create":
        obj = action[1]
        client.create(obj)
        created.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
    elif kind == "update":
        obj = action[1]
        cur = client.get("networkpolicies", obj["metadata"]["name"], obj["metadata"]["namespace"])
        client.update({**cur, "spec": obj["spec"]})
    elif kind == "delete":
        ns, name = action[1].split("/")
        client.delete("networkpolicies", name, ns)
        created.discard((ns, name))
    elif kind in ("label-pod", "label-ns"):
        resource = "pods" if kind == "label-pod" else "namespaces"
        ns, _, name = action[1].rpartition("/")
        cur = client.get(resource, name, ns or None)
        relabelled.setdefault((resource, ns, name), dict(cur["metadata"].get("labels") or {}))
        labels = dict(action[2])
        if resource == "namespaces":
            labels["kubernetes.io/metadata.name"] = name
        client.update({**cur, "metadata": {**cur["metadata"], "labels": labels}})
    else:
        raise AssertionError(f"unknown action {kind}")


@pytest.mark.parametrize("case", list(CASES))
def test_reachability_matrix(cluster, model, mode, case):
    steps = CASES[case](model)
    created: set[tuple[str, str]] = set()
    relabelled: dict[tuple[str, str, str], dict] = {}
    try:
        for i, (actions, allow) in enumerate(steps):
            for action in actions:
                _act(cluster, action, created, relabelled)
            assert_matrix(model, allow, f"{mode} mode, {case}, step {i + 1}")
    finally:
        for ns, name in created:
            cluster.client.delete("networkpolicies", name, ns)
        for (resource, ns, name), labels in relabelled.items():
            cur = cluster.client.get(resource, name, ns or None)
            cluster.client.update({**cur, "metadata": {**cur["metadata"], "labels": labels}})
    assert_matrix(model, ALL, f"{mode} mode: every connection open again after {case}")


# ---- the node's own traffic, and traffic from other nodes' addresses -----------------------
def test_host_network_traffic_as_upstream_cnis_treat_it(cluster, model, mode):
    """A node reaches its own pods whatever the policies (kubelet probes: the node's own
    packets are never judged); another node's address is an ordinary source, which only an
    ipBlock can allow (podSelectors never match host-network addresses); a pod's packets to
    a node meet its egress policy."""
    c = cluster.client
    nodes = {f"node/{n}": cluster.node_netns(n) for n in model.nodes}

    def from_nodes(allow) -> None:
        want = expected(model, allow, sources=nodes)
        last: dict = {}

        def ok():
            last["got"] = probe(nodes, model.ips)
            return last["got"] == want
        try:
            wait_for(ok, timeout=15, interval=0.1, what="the matrix from the nodes")
        except AssertionError:
            raise AssertionError(f"{mode}:\n{table(last['got'], want)}") from None

    same_node = lambda s, d: model.pod_node[d] == s.split("/", 1)[1]  # noqa: E731
    lan = str(ipaddress.ip_network(cluster.lan, strict=False))
    pols = [netpol("deny-ingress", policyTypes=["Ingress"])]
    try:
        c.create(pols[0])
        from_nodes(lambda s, d, port, proto: nsof(d) != "x" or same_node(s, d))
        pols.append(netpol("from-lan", ingress=[{"from": [{"ipBlock": {"cidr": lan}}]}]))
        c.create(pols[1])
        from_nodes(ALL)
        # egress to a node's address: x may not, the others may (TCP to a closed port of the
        # node: refused by the node itself, or rejected by the policy; told apart by a port
        # the node serves: the API's 6443 on the control-plane node)
        pols.append(netpol("deny-egress", policyTypes=["Egress"]))
        c.create(pols[2])
        cp = next(n for n in cluster.cfg.nodes if n.control_plane)
        srcs = {k: v for k, v in model.netns.items() if podof(k) == "a"}
        want = {(s, cp.name, 6443, "tcp"): nsof(s) != "x" for s in srcs}
        got: dict = {}

        def egress_ok():
            got.update(probe(srcs, {cp.name: cp.ip}, ports=[(6443, "tcp")]))
            return got == want
        wait_for(egress_ok, timeout=15, interval=0.1, what=f"egress to the node {cp.ip}: {got}")
    finally:
        for p in pols:
            c.delete("networkpolicies", p["metadata"]["name"], "x")
    from_nodes(ALL)


def test_egress_allowed_only_to_kube_dns(cluster, model, mode):
    """The DNS pattern: x may send only to kube-dns' pods on 53 (UDP and TCP), reached
    through the kube-dns Service (the policy sees the pod after kube-proxy's DNAT)."""
    from dnslib import DNSRecord  # noqa: PLC0415
    c = cluster.client
    pol = netpol("egress-dns-only", policyTypes=["Egress"], egress=[{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}])
    dns_ip = cluster.cfg.dns_ip

    def lookup(src: str) -> bool:
        res: dict = {}

        def run():
            with in_netns(f"/run/netns/{model.netns[src]}"):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            try:
                s.sendto(DNSRecord.question("kubernetes.default.svc.cluster.local").pack(),
                         (dns_ip, 53))
                ans = DNSRecord.parse(s.recv(4096))
                res["ok"] = bool(ans.rr)
            except OSError:
                res["ok"] = False
            finally:
                s.close()
        t = threading.Thread(target=run)
        t.start()
        t.join()
        return res["ok"]

    try:
        c.create(pol)
        assert_matrix(model, only_from("x", lambda s, d, port, proto: False), f"{mode}: DNS only")
        assert wait_for(lambda: all(lookup(f"x/{p}") for p in PODS), timeout=15,
                        what="x's pods resolving through kube-dns")
    finally:
        c.delete("networkpolicies", pol["metadata"]["name"], "x")
    assert_matrix(model, ALL, f"{mode}: open again after the DNS case")


def test_a_policy_change_reaches_every_node_within_a_second(cluster, model, mode):
    """The issue's promise, measured: from the API's answer to the create to the moment the
    whole matrix shows the policy (every node), and back after the delete."""
    c = cluster.client
    pol = netpol("deny-ingress", policyTypes=["Ingress"])
    t0 = time.monotonic()
    c.create(pol)
    assert_matrix(model, lambda s, d, port, proto: nsof(d) != "x", f"{mode}: deny")
    applied = time.monotonic() - t0
    t1 = time.monotonic()
    c.delete("networkpolicies", "deny-ingress", "x")
    assert_matrix(model, ALL, "open again")
    removed = time.monotonic() - t1
    print(f"\n{mode}: policy created -> enforced on every node {applied * 1000:.0f} ms, "
          f"deleted -> lifted {removed * 1000:.0f} ms (each includes one matrix probe)")
    assert applied < 1.5 and removed < 1.5, (applied, removed)


def test_netpol_stats_counts_what_each_policy_allowed_and_what_was_denied(cluster, model, mode):
    """`netsim netpol stats`: the counters of every node's policy rules, per policy and per
    isolated pod, as a user reads them after some traffic."""
    c = cluster.client
    pols = [netpol("allow-y", podSelector={"matchLabels": {"pod": "a"}},
                   ingress=[{"from": [ns_sel(ns="y")]}]),
            netpol("port-80", ingress=[{"ports": [{"port": 80}]}])]
    allow = only_to("x", lambda s, d, port, proto: (port, proto) == (80, "tcp")
                    or (d == "x/a" and nsof(s) == "y"))
    try:
        for p in pols:
            c.create(p)
        assert_matrix(model, allow, f"{mode}: stats policies")
        # one more matrix on top: y's 3 pods x 4 ports reach x/a (allow-y), every other
        # pod's tcp/80 to x (port-80); the rest to x is refused
        got = probe_matrix(model)
        assert got == expected(model, allow)
        text = cluster.netsim("netpol", "stats", "-n", "x").stdout
    finally:
        for p in pols:
            c.delete("networkpolicies", p["metadata"]["name"], "x")
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "POLICY-TYPES", "PODS", "ALLOWED-PACKETS",
                                "ALLOWED-BYTES", "DENIED-PACKETS", "DENIED-BYTES"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:3]}
    assert rows["allow-y"][1:3] == ["Ingress", "1"] and rows["port-80"][1:3] == ["Ingress", "3"]
    # at least this probe's share (counters only grow; the matrix waits probed before):
    # allow-y: y's 3 pods x 4 ports to x/a; port-80: tcp/80 to x/a from its 5 other
    # sources, to x/b and x/c from 8 each (iptables also counts y's tcp/80 to x/a there:
    # every selecting policy's rules are walked; nft stops at the first accept); refused:
    # x/a from 5 sources on 3 ports, x/b from 8 on 3
    assert int(rows["allow-y"][3]) >= 12 and int(rows["port-80"][3]) >= 21
    assert int(rows["allow-y"][5]) >= 15
    pod_rows = {ln.split()[0]: ln.split() for ln in lines[lines.index("") + 2:]}
    assert set(pod_rows) == {"a", "b", "c"}
    assert pod_rows["a"][1:3] == ["Ingress", "allow-y,port-80"]
    assert int(pod_rows["a"][3]) >= 15 and int(pod_rows["b"][3]) >= 24
