"""Ingress end to end: a real nginx on the ingress node's 80/443, driven with curl from a
client machine on the LAN, as a user would (issue #6).

The controller is the add-on `cluster up` installs; the test labels a node `ingress=true`
(the seed's step) and waits for its pod. Backends are the echo image, which answers JSON
naming the pod and the Service/Ingress nginx routed through.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import requires_root, wait_for

INGRESS_NODE = "k8s-slave-172"
NS = "ingt"
CONTROLLER_NS = "ingress-nginx"


# --------------------------------------------------------------------------- golden (no root)


def test_rules_golden_matches_examples():
    """rules/ingress/*.conf are what the controller renders for examples/ingress/."""
    from netsim.ingress.golden import RULES, cases

    for name, text in cases().items():
        path = RULES / name
        assert path.exists(), f"missing {path}; run python -m netsim.ingress golden"
        assert path.read_text() == text, f"{path} differs; python -m netsim.ingress golden"
    conf = (RULES / "myblog-tls.conf").read_text()
    # what a user looks for: one server per host, one location per path
    assert conf.count("server_name myblog.devops.cn;") == 1
    assert "upstream demo-myblog-80 {" in conf and "return 308 https://" in conf


# --------------------------------------------------------------------------- helpers


class Edge:
    """The LAN client and the ingress node it talks to."""

    def __init__(self, cluster, netns: str, ip: str):
        self.c = cluster
        self.netns = netns
        self.ip = ip

    def curl(self, path: str = "/", host: str | None = None, *, https: bool = False,
             args: tuple[str, ...] = (), method: str | None = None) -> tuple[int, str]:
        cmd = ["ip", "netns", "exec", self.netns, "curl", "-s", "-S", "--max-time", "10",
               "-o", "-", "-w", "\n%{http_code}"]
        if method:
            cmd += ["-X", method]
        if https:
            name = host or self.ip
            if host:
                cmd += ["--resolve", f"{host}:443:{self.ip}"]
            url = f"https://{name}{path}"
        else:
            if host:
                cmd += ["-H", f"Host: {host}"]
            url = f"http://{self.ip}{path}"
        p = subprocess.run(cmd + list(args) + [url], capture_output=True, text=True, timeout=20)
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body + p.stderr

    def who(self, path: str = "/", host: str | None = None, **kw) -> str | None:
        """The Service (ns/name) an echo pod says nginx sent the request through; None on
        anything but a 200 JSON answer."""
        code, body = self.curl(path, host, **kw)
        if code != 200:
            return None
        try:
            return json.loads(body).get("service")
        except ValueError:
            return None

    def code(self, path: str = "/", host: str | None = None, **kw) -> int:
        return self.curl(path, host, **kw)[0]

    def many(self, n: int, path: str, host: str, headers: tuple[str, ...] = ()) -> list[dict]:
        """n requests over one keep-alive connection (curl URL globbing); echo JSON each."""
        cmd = ["ip", "netns", "exec", self.netns, "curl", "-s", "--max-time", "60",
               "-H", f"Host: {host}", "-w", "\n@@%{http_code}@@\n"]
        for h in headers:
            cmd += ["-H", h]
        sep = "&" if "?" in path else "?"
        cmd.append(f"http://{self.ip}{path}{sep}n=[1-{n}]")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        answers = []
        for chunk in out.split("@@\n"):
            if "@@" not in chunk:
                continue
            body, _, code = chunk.rpartition("\n@@")
            answers.append({"code": int(code), **(json.loads(body) if code == "200" else {})})
        return answers


def settled(pred, timeout: float = 30.0, what: str = "condition", hold: float = 0.3):
    """wait_for, then insist the condition keeps holding for `hold` seconds: nginx lets the
    old workers accept for 100 ms after the new ones start, so the first answer in the new
    config's favour is not yet the last in the old one's."""
    deadline = time.monotonic() + timeout

    def stable():
        end = time.monotonic() + hold
        while time.monotonic() < end:
            if not pred():
                return False
        return True

    return wait_for(stable, max(0.1, deadline - time.monotonic()), what=what)


def _labels(app: str) -> dict:
    return {"app": app}


def make_app(c, name: str, replicas: int = 1, namespace: str = NS, version: str = "v1") -> None:
    client = c.client
    client.create({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": _labels(name)},
                 "template": {"metadata": {"labels": _labels(name)},
                              "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                                  "name": "echo", "image": f"netsim/echo:{version}",
                                  "ports": [{"containerPort": 8080}],
                                  "readinessProbe": {"httpGet": {"path": "/healthz",
                                                                 "port": 8080},
                                                     "periodSeconds": 1}}]}}}})
    client.create({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"selector": _labels(name),
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})


def ingress(name: str, rules: list[dict] | None = None, *, default: str | None = None,
            tls: list[dict] | None = None, annotations: dict | None = None,
            class_name: str | None = None, namespace: str = NS) -> dict:
    spec: dict = {}
    if rules is not None:
        spec["rules"] = rules
    if default:
        spec["defaultBackend"] = backend(default)
    if tls:
        spec["tls"] = tls
    if class_name:
        spec["ingressClassName"] = class_name
    md: dict = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md,
            "spec": spec}


def backend(svc: str, port: int = 80) -> dict:
    return {"service": {"name": svc, "port": {"number": port}}}


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict:
    r: dict = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)}
                                  for p, t, s in paths]}}
    if host:
        r["host"] = host
    return r


def svc(name: str) -> str:
    return f"{NS}/{name}"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def edge(cluster):
    c = cluster
    c.netsim("label", "node", INGRESS_NODE, "ingress=true", "--overwrite")
    c.wait_pods_ready(CONTROLLER_NS, "app.kubernetes.io/component=controller", 1, timeout=90)
    pods = c.client.list("pods", CONTROLLER_NS, "app.kubernetes.io/component=controller")
    node_ip = c.cfg.node(INGRESS_NODE).ip
    assert pods[0]["spec"]["nodeName"] == INGRESS_NODE
    assert pods[0]["status"]["podIP"] == node_ip  # hostNetwork
    net = ipaddress.ip_network(c.lan)
    ns = c.lan_client("ingc", str(net.network_address + 60))
    c.netsim("create", "namespace", NS, check=False)
    for name, replicas in (("a", 1), ("b", 1), ("c", 1), ("lb", 10), ("main", 2),
                           ("canary", 1), ("load", 2)):
        make_app(c, name, replicas)
    for name, replicas in (("a", 1), ("b", 1), ("c", 1), ("lb", 10), ("main", 2),
                           ("canary", 1), ("load", 2)):
        c.wait_pods_ready(NS, f"app={name}", replicas, timeout=90)
    e = Edge(c, ns, node_ip)
    wait_for(lambda: e.code("/", "nothing.example") == 404, 30, what="nginx answering 404")
    return e


def apply_ing(c, obj: dict) -> None:
    cur = c.client.get_or_none("ingresses", obj["metadata"]["name"], obj["metadata"]["namespace"])
    if cur is None:
        c.client.create(obj)
    else:
        obj = {**obj, "metadata": {**obj["metadata"],
                                   "resourceVersion": cur["metadata"]["resourceVersion"]}}
        c.client.update(obj)


def delete_ing(c, name: str, namespace: str = NS) -> None:
    c.client.delete("ingresses", name, namespace)


# --------------------------------------------------------------------------- conformance


@requires_root
def test_controller_runs_nginx_on_node_ports(cluster, edge):
    out = cluster.in_netns(cluster.node_netns(INGRESS_NODE), "ss", "-ltnpH").stdout
    listeners = {line.split()[3]: line for line in out.splitlines() if line.strip()}
    assert "nginx" in listeners.get("0.0.0.0:80", "")
    assert "nginx" in listeners.get("0.0.0.0:443", "")
    # the other nodes have nothing on 80/443
    other = cluster.in_netns(cluster.node_netns("k8s-slave-173"), "ss", "-ltnH").stdout
    assert ":80 " not in other and ":443 " not in other
    ic = cluster.client.get("ingressclasses", "nginx")
    assert ic["spec"]["controller"] == "k8s.io/ingress-nginx"
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"


@requires_root
def test_default_backend_takes_any_method_host_and_path(cluster, edge):
    apply_ing(cluster, ingress("default-backend", default="a"))
    try:
        settled(lambda: edge.who("/", "x.example") == svc("a"), 30, what="default backend")
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            for host in ("any.example.com", "other.net"):
                for path in ("/", "/some/deep/path", "/Case?x=1"):
                    code, body = edge.curl(path, host, method=method)
                    assert code == 200, (method, host, path, code, body, _debug(cluster))
                    got = json.loads(body)
                    assert got["service"] == svc("a") and got["method"] == method
                    assert got["host"] == host and got["path"] == path.split("?")[0]
    finally:
        delete_ing(cluster, "default-backend")
    settled(lambda: edge.code("/", "x.example") == 404, 30, what="back to the 404 server")


@requires_root
def test_host_rules_exact_wildcard_and_https(cluster, edge, tmp_path):
    # a CA and a certificate for foo.bar.com it signed
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)
    ssl("req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2", "-keyout", "ca.key",
        "-out", "ca.crt", "-subj", "/CN=netsim test CA")
    ssl("req", "-nodes", "-newkey", "rsa:2048", "-keyout", "tls.key", "-out", "tls.csr",
        "-subj", "/CN=foo.bar.com")
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:foo.bar.com\n")
    ssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "tls.crt", "-extfile", "ext.cnf")
    cluster.netsim("-n", NS, "create", "secret", "tls", "foo-tls", "--cert",
                   str(tmp_path / "tls.crt"), "--key", str(tmp_path / "tls.key"))
    apply_ing(cluster, ingress("hosts", [rule("foo.bar.com", ("/", "Prefix", "a")),
                                         rule("*.foo.com", ("/", "Prefix", "b"))],
                               tls=[{"hosts": ["foo.bar.com"], "secretName": "foo-tls"}]))
    try:
        settled(lambda: edge.who("/", "x.foo.com") == svc("b"), 30, what="wildcard host")
        cacert = ("--cacert", str(tmp_path / "ca.crt"))
        settled(lambda: edge.who("/", "foo.bar.com", https=True, args=cacert) == svc("a"),
                 30, what="HTTPS foo.bar.com verified against the CA")
        code, body = edge.curl("/x", "foo.bar.com", https=True, args=cacert)
        assert code == 200 and json.loads(body)["headers"].get("X-Forwarded-Proto",
                                                              json.loads(body)["headers"].get(
                                                                  "x-forwarded-proto")) == "https"
        # plain HTTP to a TLS host: 308 to https
        code, body = edge.curl("/x?y=1", "foo.bar.com", args=("-D", "-"))
        assert code == 308 and "location: https://foo.bar.com/x?y=1" in body.lower()
        assert edge.who("/", "bar.foo.com") == svc("b")
        assert edge.code("/", "baz.bar.foo.com") == 404  # exactly one label
        assert edge.code("/", "foo.com") == 404
        assert edge.code("/", "foo.bar.com.evil") == 404
        # a host without a valid certificate gets the default (fake) one: not verifiable
        code, body = edge.curl("/", "bar.foo.com", https=True, args=cacert)
        assert code == 0
    finally:
        delete_ing(cluster, "hosts")


@requires_root
def test_path_rules(cluster, edge):
    host = "paths.example.com"
    apply_ing(cluster, ingress("paths", [rule(
        host,
        ("/exact", "Exact", "a"),
        ("/aaa/bbb", "Prefix", "b"),
        ("/trail/", "Prefix", "c"),
        ("/long", "Prefix", "a"),
        ("/long/er", "Prefix", "b"),
        ("/mixed", "Exact", "a"),
        ("/mixed", "Prefix", "b"),
        ("/exactslash/", "Exact", "c"),
    )]))
    try:
        settled(lambda: edge.who("/exact", host) == svc("a"), 30, what="path rules")
        cases = {
            # exact
            "/exact": svc("a"), "/exact/": None, "/exactx": None, "/Exact": None,
            "/exactslash/": svc("c"), "/exactslash": None,
            # prefix, element-wise
            "/aaa/bbb": svc("b"), "/aaa/bbb/": svc("b"), "/aaa/bbb/ccc": svc("b"),
            "/aaa/bbbxyz": None, "/aaa": None, "/AAA/bbb": None, "/aaa/BBB": None,
            # trailing slash in the rule is ignored
            "/trail": svc("c"), "/trail/": svc("c"), "/trail/x": svc("c"), "/trailx": None,
            # longest match
            "/long": svc("a"), "/long/x": svc("a"), "/long/er": svc("b"),
            "/long/er/x": svc("b"), "/long/erx": svc("a"),
            # mixed: Exact beats Prefix on the same path
            "/mixed": svc("a"), "/mixed/": svc("b"), "/mixed/x": svc("b"),
            # unmatched on a known host: 404
            "/": None, "/nothing": None,
        }
        got = {p: edge.who(p, host) for p in cases}
        bad = {p: edge.curl(p, host) for p in cases if got[p] != cases[p]}
        assert got == cases, (bad, _debug(cluster))
        assert edge.code("/aaa/bbbxyz", host) == 404
    finally:
        delete_ing(cluster, "paths")


@requires_root
def test_ingress_class(cluster, edge):
    c = cluster.client
    if c.get_or_none("ingressclasses", "other") is None:
        c.create({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                  "metadata": {"name": "other"}, "spec": {"controller": "example.com/other"}})
    apply_ing(cluster, ingress("cls-mine", [rule("mine.example.com", ("/", "Prefix", "a"))],
                               class_name="nginx"))
    apply_ing(cluster, ingress("cls-other", [rule("other.example.com", ("/", "Prefix", "a"))],
                               class_name="other"))
    apply_ing(cluster, ingress("cls-ann", [rule("ann.example.com", ("/", "Prefix", "a"))],
                               annotations={"kubernetes.io/ingress.class": "other"}))
    apply_ing(cluster, ingress("cls-none", [rule("none.example.com", ("/", "Prefix", "b"))]))
    try:
        # an Ingress without a class gets the default class at creation
        assert c.get("ingresses", "cls-none", NS)["spec"]["ingressClassName"] == "nginx"
        settled(lambda: edge.who("/", "none.example.com") == svc("b"), 30, what="class")
        assert edge.who("/", "mine.example.com") == svc("a")
        assert edge.code("/", "other.example.com") == 404
        assert edge.code("/", "ann.example.com") == 404
        node_ip = edge.ip
        wait_for(lambda: (c.get("ingresses", "cls-mine", NS).get("status") or {})
                 .get("loadBalancer", {}).get("ingress") == [{"ip": node_ip}], 20,
                 what="status.loadBalancer.ingress = ingress node IP")
        assert not (c.get("ingresses", "cls-other", NS).get("status") or {}).get(
            "loadBalancer", {}).get("ingress")
        out = cluster.netsim("-n", NS, "get", "ing", "cls-mine").stdout
        assert node_ip in out
    finally:
        for n in ("cls-mine", "cls-other", "cls-ann", "cls-none"):
            delete_ing(cluster, n)


@requires_root
def test_load_balancing_reaches_all_replicas(cluster, edge):
    apply_ing(cluster, ingress("lb", [rule("lb.example.com", ("/", "Prefix", "lb"))]))
    try:
        settled(lambda: edge.who("/", "lb.example.com") == svc("lb"), 30, what="lb host")
        answers = edge.many(100, "/", "lb.example.com")
        assert len(answers) == 100 and all(a["code"] == 200 for a in answers)
        pods = {a["pod"] for a in answers}
        want = {p["metadata"]["name"] for p in cluster.client.list("pods", NS, "app=lb")}
        assert pods == want and len(pods) == 10
    finally:
        delete_ing(cluster, "lb")


@requires_root
def test_canary_weight_and_header(cluster, edge):
    host = "canary.example.com"
    apply_ing(cluster, ingress("canary-main", [rule(host, ("/", "Prefix", "main"))]))
    apply_ing(cluster, ingress("canary-new", [rule(host, ("/", "Prefix", "canary"))],
                               annotations={
                                   "nginx.ingress.kubernetes.io/canary": "true",
                                   "nginx.ingress.kubernetes.io/canary-weight": "20",
                                   "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary"}))
    try:
        settled(lambda: any(a.get("service") == svc("canary")
                             for a in edge.many(50, "/", host)), 30, what="canary live")
        answers = edge.many(500, "/", host)
        assert len(answers) == 500 and all(a["code"] == 200 for a in answers)
        share = sum(a["service"] == svc("canary") for a in answers) / 500
        print(f"canary share at weight 20: {share:.1%}")
        assert 0.10 <= share <= 0.30
        always = edge.many(50, "/", host, ("X-Canary: always",))
        assert {a["service"] for a in always} == {svc("canary")}
        never = edge.many(50, "/", host, ("X-Canary: never",))
        assert {a["service"] for a in never} == {svc("main")}
    finally:
        delete_ing(cluster, "canary-new")
        delete_ing(cluster, "canary-main")


# --------------------------------------------------------------------------- reload, errors

LOAD_SCRIPT = r"""
import http.client, json, sys, threading, time
ip, host, total, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lock = threading.Lock(); state = {"next": 0, "ok": 0, "fail": []}
def work():
    while True:
        with lock:
            if state["next"] >= total: return
            state["next"] += 1
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=30)
            c.request("GET", "/load", headers={"Host": host, "Connection": "close"})
            r = c.getresponse(); body = r.read(); c.close()
            ok = r.status == 200 and b'"service"' in body
            with lock:
                if ok: state["ok"] += 1
                else: state["fail"].append(f"HTTP {r.status}")
        except Exception as e:
            with lock: state["fail"].append(repr(e))
        time.sleep(0.005)
ts = [threading.Thread(target=work) for _ in range(workers)]
t0 = time.monotonic()
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps({"ok": state["ok"], "fail": state["fail"][:20], "nfail": len(state["fail"]),
                  "seconds": time.monotonic() - t0}))
"""


@requires_root
def test_reload_under_load_loses_no_request(cluster, edge):
    host = "load.example.com"
    apply_ing(cluster, ingress("load", [rule(host, ("/", "Prefix", "load"))]))
    settled(lambda: edge.who("/load", host) == svc("load"), 30, what="load host")
    stats_before = _reloads(cluster)
    gen = subprocess.Popen(["ip", "netns", "exec", edge.netns, sys.executable, "-c", LOAD_SCRIPT,
                            edge.ip, host, "2000", "20"], stdout=subprocess.PIPE, text=True)
    try:
        i = 0
        while gen.poll() is None:
            i += 1
            # Ingress changes: new hosts, new paths on the loaded host
            apply_ing(cluster, ingress(f"churn-{i % 3}", [rule(f"churn{i}.example.com",
                                                             ("/", "Prefix", "a"))]))
            apply_ing(cluster, ingress("load", [rule(host, ("/", "Prefix", "load"),
                                                     (f"/extra{i}", "Prefix", "b"))]))
            # endpoint changes: scale the loaded backend up and down
            cluster.client.patch("deployments", "load", NS, {"spec": {"replicas": 2 + i % 3}})
            time.sleep(0.3)
        out, _ = gen.communicate(timeout=300)
    finally:
        if gen.poll() is None:
            gen.kill()
        for n in range(3):
            if cluster.client.get_or_none("ingresses", f"churn-{n}", NS):
                delete_ing(cluster, f"churn-{n}")
        cluster.client.patch("deployments", "load", NS, {"spec": {"replicas": 2}})
    res = json.loads(out)
    reloads = _reloads(cluster) - stats_before
    print(f"2000 requests, {res['seconds']:.1f}s, {i} change rounds, {reloads} reloads, "
          f"{res['nfail']} failures")
    assert res["nfail"] == 0, res["fail"]
    assert res["ok"] == 2000
    assert i >= 3 and reloads >= 3


def _debug(cluster) -> str:
    """The controller's view, for failure messages."""
    out = []
    for p in cluster.client.list("pods", CONTROLLER_NS):
        d = f"/var/lib/netsim/{cluster.name}/ingress/{p['metadata']['name']}"
        for f in ("logs/access.log", "logs/error.log", "nginx.conf"):
            try:
                lines = open(f"{d}/{f}").readlines()
                if f == "nginx.conf":
                    lines = [x for x in lines if x.startswith("# ")] + lines
                out.append(f"{f}: " + "".join(lines[-12:] if f != "nginx.conf" else lines[:12]))
            except OSError:
                pass
    return "\n".join(out)


def _reloads(cluster) -> int:
    out = cluster.in_netns(cluster.node_netns(INGRESS_NODE), "curl", "-s",
                           "http://127.0.0.1:10254/metrics").stdout
    for line in out.splitlines():
        if line.startswith("netsim_ingress_reloads_total"):
            return int(line.split()[1])
    return 0


def _events(cluster, name: str) -> list[dict]:
    return [e for e in cluster.client.list("events", NS)
            if e.get("involvedObject", {}).get("name") == name
            and e.get("involvedObject", {}).get("kind") == "Ingress"]


@requires_root
def test_broken_ingress_is_skipped_with_an_event(cluster, edge):
    good = "good.example.com"
    apply_ing(cluster, ingress("good", [rule(good, ("/", "Prefix", "a"))]))
    settled(lambda: edge.who("/", good) == svc("a"), 30, what="good Ingress")
    regex = {"nginx.ingress.kubernetes.io/use-regex": "true"}
    # invalid for any regex engine (caught before nginx -t)...
    apply_ing(cluster, ingress("broken", [rule("broken.example.com",
                                               ("/broken(", "ImplementationSpecific", "b"))],
                               annotations=regex))
    # ...and valid in Python but not in PCRE: only `nginx -t` finds it (bisection)
    apply_ing(cluster, ingress("pcre", [rule("pcre.example.com",
                                             ("/uni\\u0041", "ImplementationSpecific", "b"))],
                               annotations=regex))
    # a later good change still goes live
    apply_ing(cluster, ingress("good2", [rule("good2.example.com", ("/", "Prefix", "c"))]))
    try:
        settled(lambda: edge.who("/", "good2.example.com") == svc("c"), 30, what="good2")
        assert edge.who("/", good) == svc("a")
        assert edge.code("/broken", "broken.example.com") == 404
        assert edge.code("/uniA", "pcre.example.com") == 404
        for name, text in (("broken", "invalid regular expression"), ("pcre", "nginx -t")):
            evs = wait_for(lambda n=name: [e for e in _events(cluster, n)
                                           if e["type"] == "Warning"], 20,
                           what=f"Warning event on {name}")
            assert evs[0]["reason"] == "Rejected" and text in evs[0]["message"], evs
        out = cluster.netsim("-n", NS, "describe", "ing", "pcre").stdout
        assert "Rejected" in out
        # fixing it brings it in
        apply_ing(cluster, ingress("broken", [rule("broken.example.com",
                                                   ("/broken", "ImplementationSpecific", "b"))],
                                   annotations=regex))
        settled(lambda: edge.who("/broken", "broken.example.com") == svc("b"), 30,
                 what="fixed Ingress served")
    finally:
        for n in ("good", "good2", "broken", "pcre"):
            delete_ing(cluster, n)


# --------------------------------------------------------------------------- the seed


EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "ingress")


@requires_root
def test_seed_section3_http_and_https(cluster, edge):
    c = cluster
    c.netsim("create", "namespace", "demo", check=False)
    c.netsim("apply", "-f", os.path.join(EXAMPLES, "myblog.yaml"))
    c.wait_pods_ready("demo", "app=myblog", 2, timeout=90)
    p = c.netsim("apply", "-f", os.path.join(EXAMPLES, "ingress.yaml"))
    assert "ingress.networking.k8s.io/myblog created" in p.stdout
    assert ("Warning: extensions/v1beta1 Ingress is deprecated in v1.14+, unavailable in "
            "v1.22+; use networking.k8s.io/v1 Ingress") in p.stderr
    stored = c.client.get("ingresses", "myblog", "demo")
    assert stored["apiVersion"] == "networking.k8s.io/v1"
    assert stored["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
        "service": {"name": "myblog", "port": {"number": 80}}}

    def blog(*args, https=False):
        code, body = edge.curl("/blog/index/", "myblog.devops.cn", https=https, args=args)
        return code == 200 and "myblog v1" in body

    settled(lambda: blog(), 30, what="curl -H 'Host: myblog.devops.cn' http://node/blog/index/")
    out = wait_for(lambda: [o for o in [c.netsim("-n", "demo", "get", "ing").stdout]
                            if edge.ip in o], 20, what="ADDRESS column = ingress node IP")[0]
    assert "myblog   nginx   myblog.devops.cn   " + edge.ip in out

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2920", "-newkey",
                        "rsa:2048", "-keyout", "tls.key", "-out", "tls.crt", "-subj",
                        "/CN=*.devops.cn/O=ingress-nginx"], check=True, capture_output=True,
                       cwd=tmp)
        p = c.netsim("-n", "demo", "create", "secret", "tls", "https-secret", "--key",
                     os.path.join(tmp, "tls.key"), "--cert", os.path.join(tmp, "tls.crt"),
                     check=False)
        if p.returncode != 0:  # verb missing: the Secret as YAML
            import base64
            data = {k: base64.b64encode(open(os.path.join(tmp, f), "rb").read()).decode()
                    for k, f in (("tls.crt", "tls.crt"), ("tls.key", "tls.key"))}
            c.client.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                             "metadata": {"name": "https-secret", "namespace": "demo"},
                             "data": data})
        else:
            assert p.stdout.strip() == "secret/https-secret created"
        p = c.netsim("apply", "-f", os.path.join(EXAMPLES, "ingress-tls.yaml"))
        assert "Warning: extensions/v1beta1 Ingress is deprecated" in p.stderr
        settled(lambda: blog("-k", https=True), 30, what="curl -k https://myblog.devops.cn")
        assert blog("--cacert", os.path.join(tmp, "tls.crt"), https=True)
    code, body = edge.curl("/blog/index/", "myblog.devops.cn", args=("-D", "-"))
    assert code == 308 and "https://myblog.devops.cn/blog/index/" in body


@requires_root
def test_controller_restart_stops_nginx_and_recovers(cluster, edge):
    """Deleting the controller pod stops its nginx (SIGTERM reaches it); the replacement
    starts a new nginx that serves the same Ingresses."""
    c = cluster
    apply_ing(c, ingress("restart", [rule("restart.example.com", ("/", "Prefix", "a"))]))
    try:
        settled(lambda: edge.who("/", "restart.example.com") == svc("a"), 30, what="served")
        old = c.client.list("pods", CONTROLLER_NS, "app.kubernetes.io/component=controller")
        old_names = {p["metadata"]["name"] for p in old}
        c.netsim("-n", CONTROLLER_NS, "delete", "pod", *old_names, "--wait=false", check=False)

        def replaced():
            pods = [p for p in c.client.list("pods", CONTROLLER_NS,
                                             "app.kubernetes.io/component=controller")
                    if p["metadata"]["name"] not in old_names]
            return pods and all(any(x["type"] == "Ready" and x["status"] == "True"
                                    for x in p.get("status", {}).get("conditions", []))
                                for p in pods)
        wait_for(replaced, 60, what="replacement controller Ready")
        settled(lambda: edge.who("/", "restart.example.com") == svc("a"), 30,
                 what="served after restart")
        masters = subprocess.run(["pgrep", "-f", "nginx: master"], capture_output=True,
                                 text=True).stdout.split()
        for pid in masters:
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            for name in old_names:
                assert f"/ingress/{name}/" not in cmd, f"nginx of {name} still runs"
    finally:
        delete_ing(c, "restart")
