"""`netsim topology`'s model and renderers (pure): golden files of a fixed model in
rules/topology/ (regenerate: python -m netsim.inspect.topology_golden), and what a user
reads off the picture."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from netsim.inspect import topology, topology_golden
from netsim.inspect.topology_html import render_html
from netsim.inspect.topology_render import elem_id, render_dot, render_svg
from netsim.net.topology import ClusterConfig

SVG_NS = "{http://www.w3.org/2000/svg}"


def test_golden_files_match():
    assert topology_golden.main(["--check"]) == 0, f"regenerate: {topology_golden.REGEN}"


def test_model_nodes_pods_services():
    m = topology_golden.fixture()
    nodes = {n["name"]: n for n in m["nodes"]}
    assert nodes["k8s-slave-172"]["lanIP"] == "192.168.3.172"
    assert nodes["k8s-slave-172"]["podCIDR"] == "10.244.1.0/24"
    assert nodes["k8s-slave-172"]["cni0"] == "10.244.1.1"
    assert nodes["k8s-master-171"]["roles"] == ["control-plane"]
    assert "pod/default/client" in nodes["k8s-slave-172"]["pods"]
    pods = {p["id"]: p for p in m["pods"]}
    assert pods["pod/default/web-5d8f7c9b6-klmno"]["ready"] is False
    assert pods["pod/default/big"]["node"] is None
    web = next(s for s in m["services"] if s["name"] == "web")
    assert web["ports"][0]["nodePort"] == 30080
    assert [(e["ip"], e["pod"], e["ready"]) for e in web["endpoints"]] == [
        ("10.244.1.2", "pod/default/web-5d8f7c9b6-abcde", True),
        ("10.244.2.2", "pod/default/web-5d8f7c9b6-fghij", True),
        ("10.244.2.3", "pod/default/web-5d8f7c9b6-klmno", False)]
    ing = m["ingresses"][0]
    assert ing["routes"] == [{"host": "web.example.com", "path": "/", "pathType": "Prefix",
                              "service": "svc/default/web", "port": 80, "tls": True}]


def test_policies_select_their_namespace_pods_not_host_network():
    m = topology_golden.fixture()
    pols = {p["name"]: p for p in m["networkPolicies"]}
    assert pols["allow-from-client"]["selects"] == [
        "pod/default/web-5d8f7c9b6-abcde", "pod/default/web-5d8f7c9b6-fghij",
        "pod/default/web-5d8f7c9b6-klmno"]
    assert pols["allow-from-client"]["podSelector"] == "app=web"
    deny = pols["default-deny-ingress"]["selects"]
    assert "pod/default/client" in deny and len(deny) == 5
    assert not any("ingress-nginx" in r for r in deny)


def test_trace_path_follows_hops():
    m = topology_golden.fixture()
    assert m["trace"]["path"] == ["pod/default/client", "node/k8s-slave-172",
                                  "node/k8s-slave-173", "pod/default/web-5d8f7c9b6-fghij"]
    assert m["trace"]["targets"] == ["svc/default/web"]
    assert m["trace"]["verdict"] == "delivered"


def test_an_ingress_trace_targets_the_ingress_and_its_service():
    m = topology_golden.fixture()
    ings = m["ingresses"]
    assert topology._targets("ingress/web.example.com/blog/x", ings) == [
        "ing/default/web", "svc/default/web"]
    assert topology._targets("ingress/other.example.com", ings) == []
    assert topology._targets("pod/default/client", ings) == []


def test_old_ingress_backend_and_namespace_filter():
    cfg = ClusterConfig.make(name="t", nodes=1, lan="192.168.9.0/24")
    ing = {"metadata": {"name": "myblog", "namespace": "demo"},
           "spec": {"rules": [{"host": "myblog.devops.cn", "http": {"paths": [
               {"path": "/", "backend": {"serviceName": "myblog", "servicePort": 80}}]}}]}}
    other = {"metadata": {"name": "x", "namespace": "other"}, "spec": {}}
    m = topology.build_model(cfg, [], [], [], [], [ing, other], [], namespace="demo")
    assert [i["id"] for i in m["ingresses"]] == ["ing/demo/myblog"]
    assert m["ingresses"][0]["routes"][0]["service"] == "svc/demo/myblog"
    assert m["nodes"][0]["registered"] is False  # no Node object yet: drawn from the config


def test_svg_elements_have_ids_classes_and_data():
    m = topology_golden.fixture()
    root = ET.fromstring(render_svg(m))
    groups = {g.get("id"): g for g in root.iter(f"{SVG_NS}g") if g.get("data-ref")}
    for p in m["pods"]:
        g = groups[elem_id(p["id"])]
        assert "pod" in g.get("class").split()
        assert g.get("data-ip") == (p["ip"] or "")
        assert p["name"] in "".join(g.itertext())
    for n in m["nodes"]:
        g = groups[elem_id(n["id"])]
        assert g.get("data-ip") == n["lanIP"] and n["name"] in "".join(g.itertext())
    assert "on-path" in groups["svc_default_web"].get("class").split()
    assert "on-path" not in groups["svc_default_kubernetes"].get("class").split()
    assert "notready" in groups["pod_default_web-5d8f7c9b6-klmno"].get("class").split()


def test_dot_is_graphviz_text_with_every_element():
    m = topology_golden.fixture()
    dot = render_dot(m)
    assert dot.startswith('digraph "netsim-demo" {') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for ref in [*(p["id"] for p in m["pods"]), *(s["id"] for s in m["services"])]:
        assert f'"{ref}" [label=' in dot
    assert 'subgraph "cluster_k8s-slave-173"' in dot


def test_html_is_self_contained_and_embeds_the_trace():
    m = topology_golden.fixture()
    page = render_html(m, generated="2026-01-01 00:00:00 UTC")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    data = re.search(r'<script type="application/json" id="model-data">(.*?)</script>', page,
                     re.S).group(1)
    assert json.loads(data)["trace"]["verdict"] == "delivered"
    assert 'id="pod_default_client"' in page and 'id="trace-hops"' in page


def test_html_script_data_cannot_close_the_script():
    m = topology_golden.fixture()
    m["pods"][0]["labels"]["evil"] = "</script><script>alert(1)</script>"
    page = render_html(m)
    assert page.count("</script>") == 2


def test_read_trace_dates_the_document(tmp_path):
    f = tmp_path / "last-trace.json"
    f.write_text(json.dumps({"from": "host", "to": "1.2.3.4", "verdict": "no-route",
                             "delivered_to": None, "hops": []}))
    doc = topology.read_trace(str(f))
    assert doc["verdict"] == "no-route" and doc["traced_at"].endswith(" UTC")
    f.write_text("[1]")
    assert topology.read_trace(str(f)) is None
    assert topology.read_trace(str(tmp_path / "missing.json")) is None


def test_a_trace_between_nodes_runs_along_the_lan():
    from netsim.inspect.topology_render import _points, layout
    m = topology_golden.fixture()
    lay = layout(m)
    lan = lay.boxes["lan"]
    path = [lay.boxes[r] for r in m["trace"]["path"]]
    pts = [tuple(map(int, p.split(","))) for p in _points(path, lan).split()]
    w1, w2 = lay.boxes["node/k8s-slave-172"], lay.boxes["node/k8s-slave-173"]
    # client's middle, into its node at the top, along the bridge, down into the other node
    assert pts[:5] == [(path[0].cx, path[0].cy), (w1.cx, w1.y), (w1.cx, lan.cy), (w2.cx, lan.cy),
                       (w2.cx, w2.y)]
    host = lay.boxes["host"]
    pts = [tuple(map(int, p.split(","))) for p in _points([host, w2], lan).split()]
    assert pts == [(host.x + host.w, host.cy), (w2.cx, host.cy), (w2.cx, w2.y)]
