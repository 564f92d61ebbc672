"""`netsim trace FROM ingress/HOST/path`, the pure half: the target, nginx's choice of server
and location over the renderer's own routes (netsim.ingress.render.Route), the access log
line of the probe, the controller a client reaches, the hops inside nginx."""

from __future__ import annotations

import pytest

from netsim.inspect import ingress as ig
from netsim.inspect.trace import TraceUsageError
from tests.unit.test_ingress_render import backends, ingress, render, rule


def test_targets():
    assert ig.parse_target("ingress/blog.example.com") == ig.Target("blog.example.com", "/")
    assert ig.parse_target("ing/Blog.Example.com:80/a/b") == ig.Target("blog.example.com",
                                                                         "/a/b")
    assert ig.parse_target("ingress/h/").path == "/"
    assert ig.parse_target("svc/web") is None and ig.parse_target("10.0.0.1") is None
    assert ig.Target("h", "/a").label == "ingress/h/a" and ig.Target("h", "/").label == \
        "ingress/h"
    with pytest.raises(TraceUsageError, match="needs a host"):
        ig.parse_target("ingress//x")


@pytest.fixture(scope="module")
def routes():
    svcs, slices = backends("web", "api", "exact", "wild", "def")
    ings = [
        ingress("site", {"rules": [rule("blog.test", ("/", "Prefix", "web"),
                                        ("/api", "Prefix", "api"),
                                        ("/health", "Exact", "exact"))]}),
        ingress("wild", {"rules": [rule("*.apps.test", ("/", "Prefix", "wild"))]}),
        ingress("re", {"rules": [rule("re.test", ("/v[0-9]+/items", "ImplementationSpecific",
                                                  "api"), ("/", "Prefix", "web"))]},
                annotations={"nginx.ingress.kubernetes.io/use-regex": "true"}),
        ingress("default", {"defaultBackend": {"service": {"name": "def",
                                                           "port": {"number": 80}}}}),
    ]
    return render(ings, svcs, slices).routes


def _pick(routes, host, path):
    r = ig.match_location(ig.server_routes(routes, host), path)
    return (r.server_name, ig.location_text(r), r.service) if r else None


def test_routes_are_the_renderer_s_locations_in_nginx_conf_order(routes):
    blog = [r for r in routes if r.host == "blog.test"]
    assert [ig.location_text(r) for r in blog] == [
        "location = /health", "location /api/", "location = /api", "location /"]
    assert blog[1].upstream == "demo-api-80" and blog[1].endpoints == ("10.244.2.10:8080",
                                                                       "10.244.2.11:8080")
    assert blog[1].ingress == "demo/site" and blog[1].path_type == "Prefix"
    default = [r for r in routes if r.host == ""]
    assert [(r.server_name, r.service) for r in default] == [("_", "demo/def")]


@pytest.mark.parametrize("host,path,want", [
    ("blog.test", "/health", ("blog.test", "location = /health", "demo/exact")),
    ("blog.test", "/health/x", ("blog.test", "location /", "demo/web")),  # Exact: only itself
    ("blog.test", "/api", ("blog.test", "location = /api", "demo/api")),
    ("blog.test", "/api/v1", ("blog.test", "location /api/", "demo/api")),
    ("blog.test", "/apiary", ("blog.test", "location /", "demo/web")),  # Prefix is per element
    ("blog.test", "/", ("blog.test", "location /", "demo/web")),
    ("x.apps.test", "/a", ("~^[^.]+\\.apps\\.test$", "location /", "demo/wild")),
    ("x.y.apps.test", "/a", ("_", "location /", "demo/def")),  # a wildcard is one label
    ("re.test", "/v2/items", ("re.test", 'location ~ "^/v[0-9]+/items"', "demo/api")),
    ("re.test", "/v/items", ("re.test", 'location ~ "^/"', "demo/web")),
    ("nobody.test", "/", ("_", "location /", "demo/def")),
])
def test_nginx_picks_server_and_location(routes, host, path, want):
    assert _pick(routes, host, path) == want


def test_without_a_default_backend_the_catch_all_answers_404():
    svcs, slices = backends("web")
    routes = render([ingress("site", {"rules": [rule("blog.test", ("/", "Prefix", "web"))]})],
                    svcs, slices).routes
    r = ig.match_location(ig.server_routes(routes, "other.test"), "/")
    assert (r.server_name, r.status, r.upstream, r.ingress) == ("_", 404, None, "")


# recorded from nginx with netsim's log_format (a session on cluster h6trace)
LOG = """\
10.244.1.2 - - [02/Dec/2026:07:07:50 +0000] "GET /app/x HTTP/1.1" 200 682 "-" "netsim-trace/4174ce3eeb3a" host=web.h6.test ingress=h6/web service=h6/web upstream=10.244.1.3:8080
192.168.86.1 - - [02/Dec/2026:07:07:50 +0000] "GET /nothing HTTP/1.1" 404 146 "-" "netsim-trace/410a8a11f20b" host=web.h6.test ingress= service= upstream=-
10.244.1.2 - - [02/Dec/2026:07:08:07 +0000] "GET /app HTTP/1.1" 502 150 "-" "netsim-trace/3ff0f20c921d" host=web.h6.test ingress=h6/web service=h6/web upstream=10.244.2.2:8080, 10.244.1.3:8080
"""


def test_access_log_lines():
    d = ig.parse_access_line(LOG.splitlines()[0])
    assert (d["remote"], d["request"], d["status"], d["host"], d["ingress"], d["service"],
            d["upstreams"]) == ("10.244.1.2", "GET /app/x HTTP/1.1", 200, "web.h6.test",
                                "h6/web", "h6/web", ["10.244.1.3:8080"])
    assert ig.parse_access_line(LOG.splitlines()[1])["upstreams"] == []
    assert ig.find_log_line(LOG, "netsim-trace/3ff0f20c921d")["upstreams"] == [
        "10.244.2.2:8080", "10.244.1.3:8080"]  # tried one, then the next
    assert ig.find_log_line(LOG, "netsim-trace/ffff") is None
    assert ig.parse_access_line("garbage") is None


def _ctl(name, node_ip, phase="Running"):
    return {"metadata": {"name": name, "namespace": "ingress-nginx",
                         "labels": {"app.kubernetes.io/name": "ingress-nginx"}},
            "spec": {"nodeName": "n", "hostNetwork": True,
                     "containers": [{"args": ["/nginx-ingress-controller",
                                              "--ingress-class=nginx"]}]},
            "status": {"phase": phase, "hostIP": node_ip, "podIP": node_ip}}


def test_the_controller_a_client_reaches():
    pods = [_ctl("c-b", "192.168.3.173"), _ctl("c-a", "192.168.3.172"),
            _ctl("c-0", "192.168.3.171", phase="Pending")]
    ing = {"spec": {"rules": [{"host": "blog.test"}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.168.3.173"}]}}}
    assert ig.choose_controller(pods, [ing], "blog.test")["metadata"]["name"] == "c-b"
    assert ig.choose_controller(pods, [ing], "other.test")["metadata"]["name"] == "c-a"
    assert ig.choose_controller(pods[2:], [ing], "blog.test") is None
    flags = ig.controller_flags(pods[0])
    assert (flags["class_name"], flags["user"], flags["http_port"]) == ("nginx", "root", 80)


def test_nginx_hops(routes):
    r = ig.match_location(ig.server_routes(routes, "blog.test"), "/api/v1")
    log = ig.parse_access_line(LOG.splitlines()[0])
    hops = ig.nginx_hops("pod/ingress-nginx/c", r, log, True, ig.Target("blog.test", "/api/v1"))
    assert (hops[0].table, hops[0].chain, hops[0].rule) == (
        "nginx.conf", "server blog.test", "location /api/ (Prefix '/api' of ingress demo/site)")
    assert hops[0].action.startswith("proxy_pass http://demo-api-80 (ingress demo/site, "
                                     "service demo/api: 10.244.2.10:8080, 10.244.2.11:8080)")
    assert hops[1].action == "proxied to 10.244.1.3:8080: 200"
    none = ig.nginx_hops("x", None, None, None, ig.Target("h", "/"))
    assert [h.action for h in none] == ["no server block (no Ingress)",
                                        "no line for this request"]
