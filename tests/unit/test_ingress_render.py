"""Ingress -> nginx.conf: golden files, apiserver wording, and `nginx -t` on every render.

Regenerate the golden files after an intended change with
`NETSIM_UPDATE_GOLDEN=1 pytest tests/unit/test_ingress_render.py` and review the diff.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from netsim.ingress.model import normalize_ingress, validate_ingress
from netsim.ingress.render import FILE_MODE, RenderResult, render_nginx_conf, validate

GOLDEN = Path(__file__).parent / "golden" / "ingress"
REGEN = os.environ.get("NETSIM_UPDATE_GOLDEN") == "1"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
OPENSSL = shutil.which("openssl")

STATE = "/var/lib/netsim/test/ingress"
PATHS = dict(cert_dir=f"{STATE}/certs", pid_path="/run/netsim/test/ingress/nginx.pid",
             log_dir=f"{STATE}/logs", state_dir=STATE)

# The seed's section 3, as myblog/deployment/ingress.yaml (indentation restored).
SEED_INGRESS = """
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: myblog
  namespace: demo
spec:
  rules:
  - host: myblog.devops.cn
    http:
      paths:
      - path: /
        backend:
          serviceName: myblog
          servicePort: 80
"""

SEED_TLS_INGRESS = """
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: myblog-tls
  namespace: demo
spec:
  rules:
  - host: myblog.devops.cn
    http:
      paths:
      - path: /
        backend:
          serviceName: myblog
          servicePort: 80
  tls:
  - hosts:
    - myblog.devops.cn
    secretName: https-secret
"""


# --------------------------------------------------------------------------- builders


def _pem_pair(cn: str) -> tuple[bytes, bytes]:
    """A throwaway self-signed pair; only nginx -t reads its bytes, golden files never do."""
    if OPENSSL is None:
        return (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    key = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                          "ec_paramgen_curve:P-256"], check=True, capture_output=True).stdout
    crt = subprocess.run(["openssl", "req", "-x509", "-new", "-key", "/dev/stdin", "-days", "30",
                          "-subj", f"/CN={cn}/O=ingress-nginx"],
                         input=key, check=True, capture_output=True).stdout
    return crt, key


_CERTS: dict[str, tuple[bytes, bytes]] = {}


def certs(cn: str) -> tuple[bytes, bytes]:
    if cn not in _CERTS:
        _CERTS[cn] = _pem_pair(cn)
    return _CERTS[cn]


def load(text: str, **meta) -> dict:
    obj = yaml.safe_load(text)
    obj["metadata"].update(meta)
    return obj


def ingress(name: str, spec: dict, *, ns: str = "demo", created: str = "2026-11-25T10:00:00Z",
            annotations: dict | None = None) -> dict:
    meta = {"name": name, "namespace": ns, "creationTimestamp": created}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta,
            "spec": spec}


def backend(svc: str, port: int | str = 80) -> dict:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": svc, "port": ref}}


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict:
    r = {"http": {"paths": [{"path": p, "pathType": t, "backend": backend(s)}
                            for p, t, s in paths]}}
    if host:
        r["host"] = host
    return r


def service(name: str, *, ns: str = "demo", port: int = 80, target: int = 8080,
            port_name: str | None = None) -> dict:
    p = {"port": port, "targetPort": target, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "ports": [p]}}


def endpoint_slice(svc: str, ips: list[str], *, ns: str = "demo", port: int = 8080,
                   not_ready: tuple[str, ...] = (), port_name: str | None = None) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{svc}-x1y2z", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": port_name or "", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ip not in not_ready}}
                      for ip in ips],
    }


def tls_secret(name: str, cn: str, *, ns: str = "demo") -> dict:
    crt, key = certs(cn)
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64.b64encode(crt).decode(),
                     "tls.key": base64.b64encode(key).decode()}}


def backends(*names: str, ns: str = "demo") -> tuple[list[dict], list[dict]]:
    """Services plus two ready pods each (10.244.<n>.10/11), so upstreams are visible."""
    svcs, slices = [], []
    for i, name in enumerate(names, start=1):
        svcs.append(service(name, ns=ns))
        slices.append(endpoint_slice(name, [f"10.244.{i}.11", f"10.244.{i}.10"], ns=ns))
    return svcs, slices


def render(ings, svcs=(), slices=(), secrets=(), **kw) -> RenderResult:
    kw.setdefault("default_certificate", certs("Kubernetes Ingress Controller Fake Certificate"))
    return render_nginx_conf(list(ings), list(svcs), list(slices), list(secrets), **PATHS, **kw)


# --------------------------------------------------------------------------- scenarios


def case_seed_v1beta1() -> RenderResult:
    svc = service("myblog", target=8002)
    sl = endpoint_slice("myblog", ["10.244.1.5", "10.244.2.7", "10.244.2.6"], port=8002,
                        not_ready=("10.244.2.6",))
    return render([load(SEED_INGRESS, creationTimestamp="2026-11-25T10:00:00Z")], [svc], [sl])


def case_seed_tls() -> RenderResult:
    svc = service("myblog", target=8002)
    sl = endpoint_slice("myblog", ["10.244.1.5", "10.244.2.7"], port=8002)
    ing = load(SEED_TLS_INGRESS, creationTimestamp="2026-11-25T10:00:00Z")
    return render([ing], [svc], [sl], [tls_secret("https-secret", "*.devops.cn")])


def case_seed_tls_missing_secret() -> RenderResult:
    svc = service("myblog", target=8002)
    sl = endpoint_slice("myblog", ["10.244.1.5"], port=8002)
    ing = load(SEED_TLS_INGRESS, creationTimestamp="2026-11-25T10:00:00Z")
    return render([ing], [svc], [sl], [])


def case_wildcard_host() -> RenderResult:
    svcs, slices = backends("wildcard", "exact")
    return render([
        ingress("wildcard", {"rules": [rule("*.foo.com", ("/", "Prefix", "wildcard"))]}),
        ingress("exact", {"rules": [rule("foo.com", ("/", "Prefix", "exact"))]},
                created="2026-11-25T10:00:01Z"),
    ], svcs, slices)


def case_paths() -> RenderResult:
    svcs, slices = backends("exact", "prefix", "longest", "trailing", "impl", "root", "upper")
    return render([ingress("paths", {"rules": [rule(
        "path.example.com",
        ("/", "Prefix", "root"),
        ("/foo", "Exact", "exact"),
        ("/foo", "Prefix", "prefix"),
        ("/aaa/bbb", "Prefix", "prefix"),
        ("/aaa/bbb/ccc", "Prefix", "longest"),
        ("/trailing/", "Prefix", "trailing"),
        ("/exact-slash/", "Exact", "exact"),
        ("/impl", "ImplementationSpecific", "impl"),
        ("/Case", "Exact", "upper"),
    )]})], svcs, slices)


def case_default_backend() -> RenderResult:
    svcs, slices = backends("echo-service", "app")
    return render([
        ingress("default-backend", {"defaultBackend": backend("echo-service")}),
        ingress("app", {"rules": [rule("app.example.com", ("/app", "Prefix", "app"))]},
                created="2026-11-25T10:00:01Z"),
    ], svcs, slices)


def case_canary() -> RenderResult:
    svcs, slices = backends("prod", "canary-w", "canary-h", "canary-c")
    host = "canary.example.com"
    return render([
        ingress("prod", {"rules": [rule(host, ("/", "Prefix", "prod"), ("/h", "Prefix", "prod"),
                                        ("/c", "Prefix", "prod"))]}),
        ingress("by-weight", {"rules": [rule(host, ("/", "Prefix", "canary-w"))]},
                created="2026-11-25T10:00:01Z",
                annotations={"nginx.ingress.kubernetes.io/canary": "true",
                             "nginx.ingress.kubernetes.io/canary-weight": "30"}),
        ingress("by-header", {"rules": [rule(host, ("/h", "Prefix", "canary-h"))]},
                created="2026-11-25T10:00:02Z",
                annotations={"nginx.ingress.kubernetes.io/canary": "true",
                             "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
                             "nginx.ingress.kubernetes.io/canary-by-header-value": "v2",
                             "nginx.ingress.kubernetes.io/canary-weight": "10"}),
        ingress("by-cookie", {"rules": [rule(host, ("/c", "Prefix", "canary-c"))]},
                created="2026-11-25T10:00:03Z",
                annotations={"nginx.ingress.kubernetes.io/canary": "true",
                             "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
                             "nginx.ingress.kubernetes.io/canary-by-cookie": "canary"}),
    ], svcs, slices)


def case_class_filtering() -> RenderResult:
    svcs, slices = backends("a", "b", "c", "d", "e")
    ann = "kubernetes.io/ingress.class"
    return render([
        ingress("by-field", {"ingressClassName": "nginx",
                             "rules": [rule("a.example.com", ("/", "Prefix", "a"))]}),
        ingress("other-field", {"ingressClassName": "traefik",
                                "rules": [rule("b.example.com", ("/", "Prefix", "b"))]}),
        ingress("by-annotation", {"rules": [rule("c.example.com", ("/", "Prefix", "c"))]},
                annotations={ann: "nginx"}),
        ingress("other-annotation", {"rules": [rule("d.example.com", ("/", "Prefix", "d"))]},
                annotations={ann: "haproxy"}),
        ingress("no-class", {"rules": [rule("e.example.com", ("/", "Prefix", "e"))]}),
    ], svcs, slices)


def case_conflict() -> RenderResult:
    svcs, slices = backends("old", "new")
    return render([
        ingress("newer", {"rules": [rule("dup.example.com", ("/api", "Prefix", "new"),
                                         ("/new-only", "Exact", "new"))]},
                created="2026-11-25T11:00:00Z"),
        ingress("older", {"rules": [rule("dup.example.com", ("/api/", "Prefix", "old"))]},
                created="2026-11-25T10:00:00Z"),
    ], svcs, slices)


def case_rewrite_regex() -> RenderResult:
    svcs, slices = backends("rewrite", "other", "portal")
    return render([
        ingress("rewrite", {"rules": [{"host": "rewrite.bar.com", "http": {"paths": [
            {"path": "/something(/|$)(.*)", "pathType": "ImplementationSpecific",
             "backend": backend("rewrite")}]}}]},
            annotations={"nginx.ingress.kubernetes.io/use-regex": "true",
                         "nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
        ingress("plain", {"rules": [rule("rewrite.bar.com", ("/other", "Prefix", "other"),
                                         ("/exact", "Exact", "other"))]},
                created="2026-11-25T10:00:01Z"),
        ingress("portal", {"rules": [rule("portal.example.com", ("/", "Prefix", "portal"))],
                           "tls": [{"hosts": ["portal.example.com"], "secretName": "portal"}]},
                created="2026-11-25T10:00:02Z",
                annotations={"nginx.ingress.kubernetes.io/app-root": "/app1",
                             "nginx.ingress.kubernetes.io/ssl-redirect": "false"}),
    ], svcs, slices, [tls_secret("portal", "portal.example.com")], listen_https=8443)


def case_errors() -> RenderResult:
    svcs, slices = backends("good")
    bad_regex = ingress("bad-regex", {"rules": [rule("bad.example.com",
                                                     ("/x(", "ImplementationSpecific", "good"))]},
                        annotations={"nginx.ingress.kubernetes.io/use-regex": "true"})
    no_path_type = ingress("no-path-type", {"rules": [rule("np.example.com", ("/", "Prefix", "good"))]})
    del no_path_type["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    return render([
        ingress("good", {"rules": [rule("good.example.com", ("/", "Prefix", "good"),
                                        ("/empty", "Prefix", "no-endpoints"))]}),
        bad_regex, no_path_type,
    ], svcs, slices)


CASES = {name.removeprefix("case_"): fn for name, fn in sorted(globals().items())
         if name.startswith("case_")}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.conf"
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"missing {path}; run with NETSIM_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path} differs; review and regenerate with NETSIM_UPDATE_GOLDEN=1"


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    check_golden(name, CASES[name]().conf)


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_is_deterministic(name: str) -> None:
    assert CASES[name]().conf == CASES[name]().conf


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to make test certificates")
@pytest.mark.parametrize("name", sorted(CASES))
def test_nginx_accepts_config(name: str) -> None:
    result = CASES[name]()
    ok, message = validate(result.conf, result.files)
    assert ok, message


def test_seed_v1beta1_converts_with_kubectl_warning() -> None:
    obj, warnings = normalize_ingress(yaml.safe_load(SEED_INGRESS))
    assert warnings == ["Warning: extensions/v1beta1 Ingress is deprecated in v1.14+, "
                        "unavailable in v1.22+; use networking.k8s.io/v1 Ingress"]
    assert obj["apiVersion"] == "networking.k8s.io/v1"
    assert obj["spec"]["rules"][0]["http"]["paths"][0] == {
        "path": "/", "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": "myblog", "port": {"number": 80}}}}
    assert validate_ingress(yaml.safe_load(SEED_INGRESS)) == []


def test_v1beta1_default_backend_and_named_port() -> None:
    obj, warnings = normalize_ingress({
        "apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress",
        "metadata": {"name": "x"},
        "spec": {"backend": {"serviceName": "web", "servicePort": "http"}}})
    assert obj["spec"] == {"defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}}}
    assert "networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+" in warnings[0]


def test_v1_object_is_untouched() -> None:
    ing = ingress("x", {"rules": [rule("a.b", ("/", "Prefix", "a"))]})
    assert normalize_ingress(ing) == (ing, [])


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("pathType"),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].pathType: '
     "Required value: pathType must be specified"),
    (lambda p: p.update(path="foo"),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].path: '
     'Invalid value: "foo": must be an absolute path'),
    (lambda p: p.update(pathType="Regex"),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].pathType: Unsupported value: '
     '"Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"'),
    (lambda p: p.update(backend={}),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].backend: '
     'Invalid value: "": resource or service backend is required'),
    (lambda p: p["backend"]["service"].update(port={}),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].backend: '
     "Required value: port name or number is required"),
    (lambda p: p["backend"]["service"].update(port={"number": 70000}),
     'The Ingress "x" is invalid: spec.rules[0].http.paths[0].backend.service.port.number: '
     "Invalid value: 70000: must be between 1 and 65535, inclusive"),
])
def test_validation_messages(mutate, message) -> None:
    ing = ingress("x", {"rules": [rule("a.example.com", ("/", "Prefix", "a"))]})
    mutate(ing["spec"]["rules"][0]["http"]["paths"][0])
    assert validate_ingress(ing) == [message]


def test_validation_host_and_empty_spec() -> None:
    ing = ingress("x", {"rules": [rule("Bad_Host", ("/", "Prefix", "a"))]})
    [msg] = validate_ingress(ing)
    assert msg.startswith('The Ingress "x" is invalid: spec.rules[0].host: Invalid value: '
                          '"Bad_Host": a lowercase RFC 1123 subdomain must consist of')
    [msg] = validate_ingress(ingress("x", {"rules": [rule("*.*.foo.com", ("/", "Prefix", "a"))]}))
    assert "a wildcard DNS-1123 subdomain must start with '*.'" in msg
    [msg] = validate_ingress(ingress("x", {"rules": [rule("10.0.0.1", ("/", "Prefix", "a"))]}))
    assert msg.endswith('Invalid value: "10.0.0.1": must be a DNS name, not an IP address')
    assert validate_ingress(ingress("x", {})) == [
        'The Ingress "x" is invalid: spec: Invalid value: []networking.IngressRule(nil): '
        "either `defaultBackend` or `rules` must be specified"]


def test_seed_routes_to_ready_pods_only() -> None:
    conf = case_seed_v1beta1().conf
    assert "server 10.244.1.5:8002;" in conf and "server 10.244.2.7:8002;" in conf
    assert "10.244.2.6" not in conf  # not ready
    assert "server_name myblog.devops.cn;" in conf


def test_tls_writes_secret_and_redirects() -> None:
    result = case_seed_tls()
    pem = f"{STATE}/certs/demo-https-secret.pem"
    assert pem in result.files and b"PRIVATE KEY" in result.files[pem]
    assert FILE_MODE == 0o600
    assert f"ssl_certificate {pem};" in result.conf
    assert "return 308 https://$host$request_uri;" in result.conf
    assert result.warnings == {}


def test_missing_secret_uses_default_certificate_with_warning() -> None:
    result = case_seed_tls_missing_secret()
    assert result.errors == {}
    assert result.warnings == {"demo/myblog-tls": [
        'Error getting SSL certificate "demo/https-secret": local SSL certificate '
        "demo/https-secret was not found. Using default certificate"]}
    assert "demo-https-secret.pem" not in result.conf
    assert "return 308" in result.conf


def test_class_filtering() -> None:
    conf = case_class_filtering().conf
    for host, served in [("a", True), ("b", False), ("c", True), ("d", False), ("e", True)]:
        assert (f"server_name {host}.example.com;" in conf) is served, host
    not_default = render(yaml.safe_load(yaml.safe_dump([
        ingress("no-class", {"rules": [rule("e.example.com", ("/", "Prefix", "e"))]})])),
        is_default_class=False).conf
    assert "e.example.com" not in not_default


def test_conflict_oldest_wins() -> None:
    result = case_conflict()
    assert 'location /api/ {\n            set $netsim_ingress "demo/older";' in result.conf
    assert result.warnings == {"demo/newer": [
        'path "/api" (Prefix) on host "dup.example.com" is already defined by Ingress '
        '"demo/older" (older wins); ignored']}


def test_errors_skip_bad_ingresses_only() -> None:
    result = case_errors()
    assert sorted(result.errors) == ["demo/bad-regex", "demo/no-path-type"]
    assert "invalid regular expression" in result.errors["demo/bad-regex"]
    assert result.errors["demo/no-path-type"] == (
        'The Ingress "no-path-type" is invalid: spec.rules[0].http.paths[0].pathType: '
        "Required value: pathType must be specified")
    assert "server_name good.example.com;" in result.conf
    assert "bad.example.com" not in result.conf
    # a backend without ready endpoints answers 503
    assert 'set $netsim_service "demo/no-endpoints";\n            return 503;' in result.conf


def test_validate_reports_nginx_error() -> None:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    ok, message = validate("events {}\nhttp { server { listen 80; bogus_directive; } }\n", {})
    assert not ok and "bogus_directive" in message


# --------------------------------------------------------------------------- real nginx


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers with its own name and the headers the ingress added."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        body = json.dumps({"name": self.server.name, "path": self.path,  # type: ignore[attr-defined]
                           "ingress": self.headers.get("X-Netsim-Ingress"),
                           "service": self.headers.get("X-Netsim-Service")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
@pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to make test certificates")
def test_real_nginx_routes_like_kubernetes(tmp_path) -> None:
    """Serve the rendered config on loopback and check what a user's curl would see."""
    echoes, svcs, slices = [], [], []
    for name in ("root", "exact", "prefix", "slash", "prod", "canary", "rewrite"):
        for replica in ("a", "b"):
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
            srv.name = f"{name}-{replica}"  # type: ignore[attr-defined]
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            echoes.append(srv)
            sl = endpoint_slice(name, ["127.0.0.1"], port=srv.server_address[1])
            sl["metadata"]["name"] += replica
            slices.append(sl)
        svcs.append(service(name))
    a = "nginx.ingress.kubernetes.io/"
    ings = [
        ingress("paths", {"rules": [rule("path.test", ("/", "Prefix", "root"),
                                         ("/foo", "Exact", "exact"), ("/foo", "Prefix", "prefix"),
                                         ("/slash/", "Exact", "slash"))]}),
        ingress("prod", {"rules": [rule("canary.test", ("/", "Prefix", "prod"))]}),
        ingress("canary", {"rules": [rule("canary.test", ("/", "Prefix", "canary"))]},
                created="2026-11-25T10:00:01Z",
                annotations={a + "canary": "true", a + "canary-weight": "0",
                             a + "canary-by-header": "X-Canary"}),
        ingress("rewrite", {"rules": [{"host": "rewrite.test", "http": {"paths": [
            {"path": "/something(/|$)(.*)", "pathType": "ImplementationSpecific",
             "backend": backend("rewrite")}]}}]},
            annotations={a + "use-regex": "true", a + "rewrite-target": "/$2"}),
        ingress("gone", {"rules": [rule("gone.test", ("/", "Prefix", "missing"))]}),
    ]
    http_port = _free_port()
    result = render_nginx_conf(
        ings, svcs, slices, [], cert_dir=str(tmp_path), pid_path=str(tmp_path / "nginx.pid"),
        log_dir=str(tmp_path), state_dir=str(tmp_path), listen_http=http_port,
        listen_https=_free_port(), listen_address="127.0.0.1", daemon=False,
        default_certificate=certs("Kubernetes Ingress Controller Fake Certificate"))
    for path, data in result.files.items():
        Path(path).write_bytes(data)
    (tmp_path / "nginx.conf").write_text(result.conf)
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)

        def get(host: str, path: str, **headers: str) -> tuple[int, dict]:
            req = urllib.request.Request(f"http://127.0.0.1:{http_port}{path}",
                                         headers={"Host": host, **headers})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, dict(err.headers)

        served = {p: get("path.test", p)[1]["name"].split("-")[0]
                  for p in ("/", "/foo", "/foo/", "/foo/x", "/foobar", "/slash/", "/slash")}
        assert served == {"/": "root", "/foo": "exact", "/foo/": "prefix", "/foo/x": "prefix",
                          "/foobar": "root", "/slash/": "slash", "/slash": "root"}
        replicas = {get("path.test", "/")[1]["name"] for _ in range(6)}
        assert replicas == {"root-a", "root-b"}  # round robin over all ready endpoints
        status, body = get("path.test", "/")
        assert body["ingress"] == "demo/paths" and body["service"] == "demo/root"
        assert get("canary.test", "/")[1]["service"] == "demo/prod"
        assert get("canary.test", "/", **{"X-Canary": "always"})[1]["service"] == "demo/canary"
        assert get("canary.test", "/", **{"X-Canary": "never"})[1]["service"] == "demo/prod"
        assert get("rewrite.test", "/something/new/x")[1]["path"] == "/new/x"
        status, headers = get("gone.test", "/")
        assert status == 503 and headers["X-Netsim-Service"] == "demo/missing"
        assert get("nobody.test", "/")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for srv in echoes:
            srv.shutdown()
