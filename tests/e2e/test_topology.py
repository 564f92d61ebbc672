"""`netsim topology -o html` in a real headless browser (Chromium from Debian, issue 14).

On a live cluster with a Deployment behind a NodePort Service, an Ingress, a
NetworkPolicy and a `netsim trace` just run, the page is opened from a file by
`chromium --headless`: once for the DOM after its script ran (--dump-dom), once for a
screenshot. The DOM lists every node and pod (ids, data attributes, names) and the trace's
hops; the screenshot shows each node and pod box in its colour where the layout puts it,
a name written in it, and the trace's elements outlined in the trace colour. Chromium runs
in a network namespace of its own with a net-log: the page makes no network request (a
control page with one remote image shows that the net-log would see one).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = requires_root

NS = "topo"
MANIFESTS = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: topo-web, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: topo-web}}}}
  template:
    metadata: {{labels: {{app: topo-web}}}}
    spec:
      containers:
      - name: echo
        image: netsim/echo
        args: ["--port", "8080"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: topo-web, namespace: {NS}}}
spec:
  type: NodePort
  selector: {{app: topo-web}}
  ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 31480}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: topo-client, namespace: {NS}, labels: {{app: topo-client}}}}
spec:
  containers:
  - name: echo
    image: netsim/echo
    args: ["--port", "8080"]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: topo-web, namespace: {NS}}}
spec:
  ingressClassName: nginx
  rules:
  - host: topo.example.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: topo-web, port: {{number: 80}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web-from-client, namespace: {NS}}}
spec:
  podSelector: {{matchLabels: {{app: topo-web}}}}
  policyTypes: [Ingress]
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: topo-client}}}}}}]
"""

VOID = {"br", "input", "meta", "link", "img", "hr", "wbr", "source", "area", "base", "col"}


class DomIndex(HTMLParser):
    """Elements of a dumped DOM by id: tag, attributes and their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, dict] = {}
        self.stack: list[dict] = []
        self.tags: collections.Counter = collections.Counter()

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.tags[(tag, el["attrs"].get("class", ""))] += 1
        if el["attrs"].get("id"):
            self.by_id[el["attrs"]["id"]] = el
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def count(self, tag: str, cls_word: str) -> int:
        return sum(n for (t, c), n in self.tags.items() if t == tag and cls_word in c.split())


def chromium(tmp_path, url: str, *flags: str, netlog: str | None = None) -> subprocess.CompletedProcess:
    """Debian's chromium, headless, in a network namespace of its own (nothing it tries can
    leave the machine), with a throw-away profile and the browser's own background traffic
    (time queries, ...) switched off as far as flags go."""
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed (vagrant/provision.sh installs Debian's package)"
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = ["unshare", "--net", exe, "--headless", "--no-sandbox", "--disable-gpu",
           f"--user-data-dir={profile}", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-default-apps",
           "--no-pings", "--disable-domain-reliability",
           "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,"
           "Translate,AutofillServerCommunication", *flags]
    if netlog:
        cmd += [f"--log-net-log={netlog}", "--net-log-capture-mode=Everything"]
    p = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def page_requests(netlog: str) -> list[tuple[str, str]]:
    """(initiator, url) of every URL request in a Chromium net-log that the page could have
    made: the browser's own requests (component updater, ...) have no origin as initiator
    ("not an origin"); file: and data: URLs are the page itself."""
    with open(netlog) as f:
        log = json.load(f)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    out = []
    for e in log["events"]:
        p = e.get("params") or {}
        if e["type"] == start and p.get("url"):
            if p.get("initiator") == "not an origin":
                continue
            if p["url"].startswith(("file:", "data:", "about:", "chrome:")):
                continue
            out.append((p.get("initiator", ""), p["url"]))
    return out


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _close(a, b, tol: int = 8) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a[:3], b[:3], strict=True))


def _mode(im, x0: int, y0: int, x1: int, y1: int):
    """The most frequent colour of a rectangle of the image."""
    c = collections.Counter(im.getpixel((x, y))[:3] for x in range(x0, x1) for y in range(y0, y1))
    return c.most_common(1)[0][0]


@pytest.fixture(scope="module")
def live(cluster):
    cluster.netsim("delete", "namespace", NS, "--ignore-not-found", timeout=120)
    for node in cluster.cfg.nodes[1:2]:  # the ingress controller runs where ingress=true
        cluster.netsim("label", "node", node.name, "ingress=true", "--overwrite")
    cluster.netsim("apply", "-f", "-", input=MANIFESTS)
    cluster.wait_pods_ready(NS, "app=topo-web", 2, timeout=90)
    cluster.wait_pods_ready(NS, "app=topo-client", 1, timeout=90)
    cip = cluster.client.get("services", "topo-web", NS)["spec"]["clusterIP"]

    def traced():  # the rules are there once a trace gets through to an endpoint
        p = cluster.netsim("-n", NS, "trace", "pod/topo-client", "svc/topo-web", "-o", "json",
                           check=False, timeout=60)
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
        return doc if doc.get("verdict") == "delivered" else None
    trace = wait_for(traced, 60, interval=0.5, what=f"a delivered trace to {cip}")
    yield {"trace": trace}
    cluster.netsim("delete", "namespace", NS, check=False, timeout=120)


@pytest.fixture(scope="module")
def page(cluster, live, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("topology")
    html = tmp / "topology.html"
    before = cluster.client.list("pods")
    p = cluster.netsim("topology", "-w", str(html))
    assert f"written to {html}" in p.stderr
    after = {(x["metadata"]["namespace"], x["metadata"]["name"]): x
             for x in cluster.client.list("pods")}
    # the pods there before and after the page was made, unchanged (a shared cluster's other
    # tests may still be removing theirs)
    stable = [x for x in before if (key := (x["metadata"]["namespace"], x["metadata"]["name"]))
              in after and (after[key].get("status") or {}).get("podIP")
              == (x.get("status") or {}).get("podIP")]
    # what the page drew: the model it embeds (the layout of the screenshot test is its)
    text = html.read_text()
    start = text.index('<script type="application/json" id="model-data">')
    model = json.loads(text[text.index(">", start) + 1:text.index("</script>", start)])
    return {"tmp": tmp, "html": html, "model": model, "pods": stable, **live}


def test_dom_after_scripts_lists_nodes_pods_and_the_trace(cluster, page):
    p = chromium(page["tmp"], f"file://{page['html']}", "--dump-dom")
    dom = DomIndex()
    dom.feed(p.stdout)
    body = next(el for el in dom.by_id.values() if el["tag"] == "svg")  # the picture is there
    assert body["attrs"].get("data-cluster") == cluster.name
    assert 'data-rendered="true"' in p.stdout, "the page's script did not run"
    for n in cluster.cfg.nodes:
        el = dom.by_id[f"node_{n.name}"]
        assert "node" in el["attrs"]["class"].split()
        assert el["attrs"]["data-ip"] == n.ip and el["attrs"]["data-pod-cidr"] == n.pod_cidr
        assert n.name in el["text"] and n.ip in el["text"]
    for pod in page["pods"]:
        md, st = pod["metadata"], pod.get("status") or {}
        el = dom.by_id[f"pod_{md['namespace']}_{md['name']}"]
        assert el["attrs"]["data-ip"] == (st.get("podIP") or "")
        assert el["attrs"]["data-node"] == (pod["spec"].get("nodeName") or "")
        assert md["name"] in el["text"]
    assert dom.count("g", "pod") == len(page["model"]["pods"]) >= len(page["pods"]) > 3
    svc = cluster.client.get("services", "topo-web", NS)
    el = dom.by_id[f"svc_{NS}_topo-web"]
    assert el["attrs"]["data-ip"] == svc["spec"]["clusterIP"]
    assert el["attrs"]["data-node-ports"] == "31480"
    assert "topo.example.test" in dom.by_id[f"ing_{NS}_topo-web"]["attrs"]["data-hosts"]
    web = sorted(f"pod/{NS}/{x['metadata']['name']}" for x in page["pods"]
                 if x["metadata"]["namespace"] == NS
                 and x["metadata"].get("labels", {}).get("app") == "topo-web")
    assert dom.by_id[f"netpol_{NS}_web-from-client"]["attrs"]["data-selects"].split() == web
    # the trace panel, filled by the script from the trace embedded at render time
    hops = page["trace"]["hops"]
    assert dom.count("li", "hop") == len(hops) > 3
    assert f'data-trace-hops="{len(hops)}"' in p.stdout
    assert "delivered" in dom.by_id["trace-summary"]["text"]
    dest = page["trace"]["delivered_to"]["pod"]
    for ref in (f"pod/{NS}/topo-client", f"pod/{dest}", f"svc/{NS}/topo-web"):
        assert "on-path" in dom.by_id[ref.replace("/", "_")]["attrs"]["class"].split(), ref
    assert dom.by_id["trace-path"]["attrs"]["points"].count(",") >= 2


def test_screenshot_shows_each_node_and_pod(page):
    from PIL import Image

    from netsim.inspect.topology_render import COLORS, LINE, PAD, TRACE_COLOR, layout
    model = page["model"]
    lay = layout(model)
    shot = page["tmp"] / "topology.png"
    chromium(page["tmp"], f"file://{page['html']}", f"--screenshot={shot}",
             f"--window-size={lay.width + 440},{lay.height + 120}")
    im = Image.open(shot).convert("RGB")
    assert im.size == (lay.width + 440, lay.height + 120)
    # Where the picture is on the page: the LAN bar's first pixel is its box's corner.
    lan_fill = _hex(COLORS["lan"][0])
    lan = lay.boxes["lan"]

    def lan_at(x, y):
        return all(_close(im.getpixel((x + dx, y + dy)), lan_fill, 2)
                   for dx, dy in ((0, 0), (12, 0), (0, 12)))
    corner = next(((x, y) for y in range(im.size[1] - 13) for x in range(im.size[0] - 13)
                   if lan_at(x, y)), None)
    assert corner, "no LAN bar in the screenshot"
    # its rounded corner aside: the leftmost fill pixel mid-height (left of the text), the
    # topmost near its right end (right of the text)
    def fill(x, y):
        return _close(im.getpixel((x, y)), lan_fill, 2)
    mid_y, right_x = corner[1] + lan.h // 2 - 2, corner[0] + lan.w - 30
    left = next(x for x in range(corner[0] + 1) if fill(x, mid_y))
    top = next(y for y in range(corner[1] + 1) if fill(right_x, y))
    ox, oy = left - lan.x - 1, top - lan.y - 1  # the fill starts inside the 1.5 px stroke
    assert 0 <= ox <= 2 and 40 <= oy <= 120, (ox, oy)  # below the page's header
    trace = model["trace"]
    on_path = set(trace["path"])
    dark = _hex("#0f172a")
    seen = []
    for ref, b in lay.boxes.items():
        if b.kind not in ("node", "pod", "pod-notready"):
            continue
        x, y = b.x + ox, b.y + oy
        # the box's own fill near its bottom-right corner
        fill = _mode(im, x + b.w - 12, y + b.h - 9, x + b.w - 5, y + b.h - 4)
        assert _close(fill, _hex(COLORS[b.kind][0])), (ref, fill)
        # its name is written in its first line: dark pixels there
        name_w = int(len(b.lines[0]) * 7.3)
        band = [im.getpixel((px, py)) for px in range(x + PAD, x + PAD + name_w)
                for py in range(y + PAD, y + PAD + LINE - 2)]
        assert sum(_close(c, dark, 60) for c in band) > 0.04 * len(band), ref
        # the trace's elements are outlined in the trace colour, the others are not
        edge = _mode(im, x - 1, y + b.h // 2 - 3, x + 2, y + b.h // 2 + 3)
        if ref in on_path:
            assert _close(edge, _hex(TRACE_COLOR), 30), (ref, edge)
        else:
            assert not _close(edge, _hex(TRACE_COLOR), 30), (ref, edge)
        seen.append(ref)
    assert {f"node/{n['name']}" for n in model["nodes"]} <= set(seen)
    assert {p["id"] for p in model["pods"]} <= set(seen)


def test_the_page_makes_no_network_request(page):
    log = str(page["tmp"] / "netlog.json")
    chromium(page["tmp"], f"file://{page['html']}", "--dump-dom", netlog=log)
    assert page_requests(log) == []
    # the control: a page with one remote image is seen asking for it
    ctl = page["tmp"] / "control.html"
    ctl.write_text('<html><body><img src="http://192.0.2.1/x.png"></body></html>')
    ctl_log = str(page["tmp"] / "control-netlog.json")
    chromium(page["tmp"], f"file://{ctl}", "--dump-dom", netlog=ctl_log)
    assert [u for _, u in page_requests(ctl_log)] == ["http://192.0.2.1/x.png"]


def test_topology_outputs_from_the_cli(cluster, page):
    dot = cluster.netsim("topology", "-o", "dot").stdout
    assert dot.startswith(f'digraph "netsim-{cluster.name}"')
    svg = cluster.netsim("topology", "-n", NS, "-o", "svg").stdout
    assert svg.startswith("<?xml") and f'id="svc_{NS}_topo-web"' in svg
    assert 'id="pod_kube-system_' not in svg  # -n: that namespace's objects only
    for n in cluster.cfg.nodes:
        assert f'id="node_{n.name}"' in svg
    out = os.path.join(page["tmp"], "t.svg")
    cluster.netsim("topology", "-w", out)
    assert open(out).read().startswith("<?xml")  # the format from -w's extension
    p = cluster.netsim("topology", "--trace", "/nonexistent.json", check=False)
    assert p.returncode == 1 and 'the path "/nonexistent.json" does not exist' in p.stderr


def test_an_ingress_trace_marks_the_ingress_and_its_service(cluster, page):
    """Last in the file: its trace becomes the cluster's last one."""
    def traced():
        p = cluster.netsim("-n", NS, "trace", "pod/topo-client", "ingress/topo.example.test",
                           "-o", "json", check=False, timeout=60)
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
        return doc if doc.get("verdict") == "delivered" else None
    doc = wait_for(traced, 60, interval=1, what="a delivered trace through the ingress")
    tr = json.loads(cluster.netsim("topology", "-n", NS, "-o", "json").stdout)["trace"]
    assert (tr["from"], tr["to"]) == (doc["from"], doc["to"])
    assert tr["targets"] == [f"ing/{NS}/topo-web", f"svc/{NS}/topo-web"]
    assert tr["path"][0] == f"pod/{NS}/topo-client"
    assert tr["path"][-1] == f"pod/{doc['delivered_to']['pod']}"
    assert any(r.startswith("node/") for r in tr["path"])
