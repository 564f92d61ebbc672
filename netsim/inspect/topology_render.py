"""Pure renderers of the topology model (netsim.inspect.topology): json, dot, svg, html.

No renderer needs anything installed: dot is Graphviz *text* (feed it to `dot -Tpng` if
you have Graphviz), the SVG is laid out and written here (a fixed grid: Ingress routes, then
Services, then the LAN bridge with the host, then one column per node with its pods, then
NetworkPolicies), and the HTML is that SVG inline with its CSS, the model and the last
trace as JSON and a small script, in one file that opens offline.

Every drawn element is an SVG group with a stable id (the model reference with "/" made
"_": `pod_default_web-1`, `svc_default_web`, `node_k8s-slave-172`), a class naming its kind
(`node`, `pod`, `svc`, `ing`, `netpol`, `host`) and data attributes (data-ref, data-ip,
data-node, data-ready, ...) so a browser, a test or a user's script can find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

FONT = 12
CHAR_W = 7.3  # DejaVu Sans Mono at 12 px is 7.22 px a character
LINE = 15
PAD = 8
GAP = 16
MARGIN = 20
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"

# Fill / stroke per kind (the browser test looks for these fills in the screenshot).
COLORS = {
    "host": ("#f1f5f9", "#334155"),
    "lan": ("#cbd5e1", "#475569"),
    "node": ("#e0f2fe", "#0369a1"),
    "pod": ("#bbf7d0", "#15803d"),          # ready
    "pod-notready": ("#fde68a", "#b45309"),
    "svc": ("#e9d5ff", "#7e22ce"),
    "ing": ("#fed7aa", "#c2410c"),
    "netpol": ("#fecaca", "#b91c1c"),
    "pending": ("#f8fafc", "#64748b"),
}
TRACE_COLOR = "#2563eb"
EDGE_COLORS = {"endpoint": "#7e22ce", "route": "#c2410c", "selects": "#b91c1c", "lan": "#475569"}


def elem_id(ref: str) -> str:
    """The SVG/HTML id of a model reference: Kubernetes names never hold "_", so the
    mapping is one to one."""
    return ref.replace("/", "_")


@dataclass
class Box:
    ref: str
    kind: str  # host lan node pod svc ing netpol pending
    x: int
    y: int
    w: int
    h: int
    lines: list[str]
    classes: list[str] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    title: str = ""

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2


@dataclass
class Edge:
    kind: str  # endpoint route selects lan
    src: str
    dst: str


@dataclass
class Layout:
    width: int
    height: int
    boxes: dict[str, Box]
    order: list[str]  # drawing order (containers before what they hold)
    edges: list[Edge]


def _text_w(lines: list[str]) -> int:
    return int(max((len(s) for s in lines), default=0) * CHAR_W) + 2 * PAD


def _text_h(n: int) -> int:
    return n * LINE + PAD + 4


def _port(p: dict) -> str:
    s = f"{p['port']}/{p['protocol']}"
    if p.get("targetPort") not in (None, p["port"]):
        s += f"->{p['targetPort']}"
    if p.get("nodePort"):
        s += f" NodePort {p['nodePort']}"
    return s


def _flow(items: list[tuple[str, list[str]]], kind: str, y: int, width: int,
          boxes: dict[str, Box], order: list[str]) -> int:
    """Boxes left to right from MARGIN, wrapping at `width`; returns the y below them."""
    x, row_h = MARGIN, 0
    for ref, lines in items:
        w, h = _text_w(lines), _text_h(len(lines))
        if x > MARGIN and x + w > width - MARGIN:
            x, y, row_h = MARGIN, y + row_h + GAP, 0
        boxes[ref] = Box(ref, kind, x, y, w, h, lines)
        order.append(ref)
        x += w + GAP
        row_h = max(row_h, h)
    return y + row_h + (GAP * 2 if items else 0)


def layout(model: dict) -> Layout:
    """Where everything goes. Deterministic: the same model gives the same picture."""
    boxes: dict[str, Box] = {}
    order: list[str] = []
    edges: list[Edge] = []
    cl = model["cluster"]
    pods_by_node: dict[str | None, list[dict]] = {}
    for p in model["pods"]:
        pods_by_node.setdefault(p["node"], []).append(p)
    columns = [(n["id"], n) for n in model["nodes"]]
    if pods_by_node.get(None):
        columns.append(("pending", None))

    def pod_lines(p: dict) -> list[str]:
        state = "Ready" if p["ready"] else p["phase"] if p["phase"] != "Running" else "NotReady"
        if p["phase"] == "Terminating":
            state = "Terminating"
        net = " hostNetwork" if p["hostNetwork"] else ""
        return [f"{p['namespace']}/{p['name']}", f"{p['ip'] or '<none>'}  {state}{net}"]

    def node_lines(n: dict | None) -> list[str]:
        if n is None:
            return ["not scheduled", "(no node yet)"]
        role = ",".join(n["roles"]) or "worker"
        state = "Ready" if n["ready"] else "NotReady"
        if n["unschedulable"]:
            state += ",SchedulingDisabled"
        return [f"{n['name']}  {state}", f"eth0 {n['lanIP']}  ({role})",
                f"cni0 {n['cni0']}  pods {n['podCIDR']}"]

    col_w = {}
    for key, n in columns:
        pods = pods_by_node.get(n["name"] if n else None, [])
        col_w[key] = max([_text_w(node_lines(n)), 200] +
                         [_text_w(pod_lines(p)) + 2 * PAD for p in pods])
    nodes_w = sum(col_w.values()) + GAP * (len(columns) - 1) + 2 * MARGIN
    width = max(nodes_w, 960)

    y = MARGIN + 28  # below the title
    ing_items = []
    for i in model["ingresses"]:
        lines = [f"ingress {i['namespace']}/{i['name']}" +
                 (f"  class {i['class']}" if i["class"] else "")]
        for r in i["routes"]:
            svc = (r["service"] or "-").split("/")[-1]
            port = f":{r['port']}" if r["port"] is not None else ""
            lines.append(f"{'https' if r['tls'] else 'http'}://{r['host']}{r['path']} -> {svc}{port}")
        ing_items.append((i["id"], lines))
        for r in i["routes"]:
            if r["service"]:
                edges.append(Edge("route", i["id"], r["service"]))
    y = _flow(ing_items, "ing", y, width, boxes, order)

    svc_items = []
    for s in model["services"]:
        ready = sum(1 for e in s["endpoints"] if e["ready"])
        ip = s["clusterIP"] if s["clusterIP"] not in (None, "None") else "None (headless)"
        if s["type"] == "ExternalName":
            ip = f"-> {s['externalName']}"
        lines = [f"svc {s['namespace']}/{s['name']}", f"{s['type']} {ip}"]
        lines += [_port(p) for p in s["ports"][:3]]
        if len(s["ports"]) > 3:
            lines.append(f"... {len(s['ports']) - 3} more ports")
        lines.append(f"endpoints {ready}/{len(s['endpoints'])} ready")
        svc_items.append((s["id"], lines))
    y = _flow(svc_items, "svc", y, width, boxes, order)

    # The LAN bridge: the host at its left end (when it has access), the bar to the right.
    lan_h = 34
    host_w = 0
    if cl.get("hostIP"):
        lines = ["host (root netns)", f"{cl['hostIP']}"]
        host_w = _text_w(lines)
        boxes["host"] = Box("host", "host", MARGIN, y, host_w, lan_h + 4, lines)
        order.append("host")
        host_w += GAP
    lan_lines = [f"LAN bridge {cl['lan']}   pods {cl['podCIDR']}   services "
                 f"{cl['serviceCIDR']}   kube-proxy {cl['proxyMode']}"]
    boxes["lan"] = Box("lan", "lan", MARGIN + host_w, y + 2, width - 2 * MARGIN - host_w,
                       lan_h, lan_lines)
    order.insert(0, "lan")
    y += lan_h + 4 + GAP * 2

    pod_h = _text_h(2)
    head_h = _text_h(3)
    max_pods = max((len(pods_by_node.get(n["name"] if n else None, [])) for _, n in columns),
                   default=0)
    node_h = head_h + max_pods * (pod_h + PAD) + PAD
    x = MARGIN
    for key, n in columns:
        w = col_w[key]
        kind = "node" if n else "pending"
        boxes[key] = Box(key, kind, x, y, w, node_h, node_lines(n))
        order.append(key)
        edges.append(Edge("lan", key, "lan"))
        py = y + head_h
        for p in pods_by_node.get(n["name"] if n else None, []):
            boxes[p["id"]] = Box(p["id"], "pod", x + PAD, py, w - 2 * PAD, pod_h, pod_lines(p))
            order.append(p["id"])
            py += pod_h + PAD
        x += w + GAP
    y += node_h + GAP * 2

    node_ips = {n["lanIP"]: n["id"] for n in model["nodes"]}
    for s in model["services"]:
        for e in s["endpoints"]:
            target = e["pod"] if e["pod"] in boxes else node_ips.get(e["ip"])
            if target is None and e["ip"] == cl.get("hostIP") and "host" in boxes:
                target = "host"
            if target:
                edges.append(Edge("endpoint", s["id"], target))

    pol_items = []
    for p in model["networkPolicies"]:
        rules = []
        if "Ingress" in p["policyTypes"]:
            rules.append(f"Ingress {p['ingressRules']} rule(s)")
        if "Egress" in p["policyTypes"]:
            rules.append(f"Egress {p['egressRules']} rule(s)")
        lines = [f"netpol {p['namespace']}/{p['name']}", f"podSelector {p['podSelector']}",
                 ", ".join(rules) or "no policy types", f"selects {len(p['selects'])} pod(s)"]
        pol_items.append((p["id"], lines))
        edges += [Edge("selects", p["id"], ref) for ref in p["selects"] if ref in boxes]
    y = _flow(pol_items, "netpol", y, width, boxes, order)
    height = y + MARGIN - (GAP * 2 if pol_items else 0)
    _decorate(model, boxes)
    return Layout(width, height, boxes, order, edges)


def _decorate(model: dict, boxes: dict[str, Box]) -> None:
    """Classes, data attributes and tooltips of each box, from its model object."""
    for n in model["nodes"]:
        b = boxes[n["id"]]
        b.classes = ["node", "ready" if n["ready"] else "notready"]
        b.data = {"ref": n["id"], "name": n["name"], "ip": n["lanIP"] or "",
                  "pod-cidr": n["podCIDR"] or "", "ready": str(n["ready"]).lower(),
                  "netns": n["netns"]}
        b.title = f"node {n['name']}: netns {n['netns']}, eth0 {n['lanIP']}, cni0 {n['cni0']}"
    if "pending" in boxes:
        boxes["pending"].classes = ["pending"]
        boxes["pending"].data = {"ref": "pending"}
    for p in model["pods"]:
        b = boxes[p["id"]]
        b.kind = "pod" if p["ready"] else "pod-notready"
        b.classes = ["pod", "ready" if p["ready"] else "notready"]
        b.data = {"ref": p["id"], "namespace": p["namespace"], "name": p["name"],
                  "ip": p["ip"] or "", "node": p["node"] or "", "ready": str(p["ready"]).lower(),
                  "phase": p["phase"]}
        labels = ",".join(f"{k}={v}" for k, v in sorted(p["labels"].items()))
        b.title = f"pod {p['namespace']}/{p['name']} {p['ip'] or ''} on {p['node'] or '-'}" + (
            f"  labels {labels}" if labels else "")
    for s in model["services"]:
        b = boxes[s["id"]]
        b.classes = ["svc"]
        b.data = {"ref": s["id"], "namespace": s["namespace"], "name": s["name"],
                  "ip": s["clusterIP"] or "", "type": s["type"],
                  "endpoints": " ".join(f"{e['ip']}" for e in s["endpoints"]),
                  "node-ports": " ".join(str(p["nodePort"]) for p in s["ports"] if p["nodePort"])}
        b.title = f"service {s['namespace']}/{s['name']}: " + ", ".join(
            f"{e['ip']}:{','.join(map(str, e['ports']))}" for e in s["endpoints"])
    for i in model["ingresses"]:
        b = boxes[i["id"]]
        b.classes = ["ing"]
        b.data = {"ref": i["id"], "namespace": i["namespace"], "name": i["name"],
                  "hosts": " ".join(sorted({r["host"] for r in i["routes"]}))}
        b.title = f"ingress {i['namespace']}/{i['name']}"
    for p in model["networkPolicies"]:
        b = boxes[p["id"]]
        b.classes = ["netpol"]
        b.data = {"ref": p["id"], "namespace": p["namespace"], "name": p["name"],
                  "selects": " ".join(p["selects"])}
        b.title = f"networkpolicy {p['namespace']}/{p['name']}: selects " + (
            ", ".join(r.split("/", 1)[1] for r in p["selects"]) or "no pods")
    if "host" in boxes:
        boxes["host"].classes = ["host"]
        boxes["host"].data = {"ref": "host", "ip": model["cluster"]["hostIP"] or ""}
        boxes["host"].title = "the machine's root netns, on the LAN through its host veth"
    boxes["lan"].classes = ["lan"]
    boxes["lan"].data = {"ref": "lan", "cidr": model["cluster"]["lan"]}


# --- SVG -------------------------------------------------------------------------------------

CSS = f"""
svg.topology text {{ font-family: {FONT_FAMILY}; font-size: {FONT}px; fill: #0f172a; }}
svg.topology text.head {{ font-weight: bold; }}
svg.topology .edge {{ fill: none; stroke-width: 1.2; opacity: 0.55; }}
svg.topology .edge.selects {{ stroke-dasharray: 4 3; }}
svg.topology .edge.lan {{ stroke-width: 2; opacity: 0.8; }}
svg.topology .on-path > rect {{ stroke: {TRACE_COLOR}; stroke-width: 4; }}
svg.topology #trace-path {{ fill: none; stroke: {TRACE_COLOR}; stroke-width: 3; opacity: 0.7; }}
svg.topology g[data-ref]:hover > rect {{ stroke-width: 3; }}
svg.topology .hop-badge text {{ fill: #ffffff; font-weight: bold; }}
"""


def _edge_points(a: Box, b: Box) -> tuple[int, int, int, int]:
    """From the side of `a` that faces `b` to the side of `b` that faces `a` (vertical
    first: the grid's rows are stacked)."""
    if a.y + a.h <= b.y:
        return a.cx, a.y + a.h, b.cx, b.y
    if b.y + b.h <= a.y:
        return a.cx, a.y, b.cx, b.y + b.h
    return a.cx, a.cy, b.cx, b.cy


def _box_svg(b: Box, on_path: bool) -> str:
    fill, stroke = COLORS[b.kind]
    classes = " ".join(b.classes + (["on-path"] if on_path else []))
    attrs = "".join(f" data-{k}={quoteattr(v)}" for k, v in b.data.items())
    rx = 3 if b.kind in ("pod", "pod-notready") else 6
    dash = ' stroke-dasharray="6 4"' if b.kind == "pending" else ""
    out = [f'<g id={quoteattr(elem_id(b.ref))} class={quoteattr(classes)}{attrs}>']
    if b.title:
        out.append(f"<title>{escape(b.title)}</title>")
    out.append(f'<rect x="{b.x}" y="{b.y}" width="{b.w}" height="{b.h}" rx="{rx}" '
               f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>')
    ty = b.y + PAD + FONT - 1 if b.kind != "lan" else b.y + b.h // 2 + FONT // 2 - 2
    for i, line in enumerate(b.lines):
        cls = ' class="head"' if i == 0 and b.kind != "lan" else ""
        out.append(f'<text x="{b.x + PAD}" y="{ty + i * LINE}"{cls}>{escape(line)}</text>')
    out.append("</g>")
    return "".join(out)


def _points(path: list[Box], lan: Box | None) -> str:
    """The trace's line: through each pod's middle; into a node at the top of its box (where
    its eth0 meets the LAN); from one node to another along the LAN bridge."""
    pts: list[tuple[int, int]] = []
    for i, b in enumerate(path):
        prev = path[i - 1] if i else None
        if b.kind in ("node", "pending"):
            if prev is not None and prev.kind == "node" and lan is not None:
                pts += [(prev.cx, lan.cy), (b.cx, lan.cy)]
            elif prev is not None and prev.kind == "host" and lan is not None:
                pts += [(prev.x + prev.w, prev.cy), (b.cx, prev.cy)]
            pts.append((b.cx, b.y))
        elif b.kind == "host":  # the host's veth is at the right end of its box
            if prev is not None and prev.kind == "node":
                pts.append((prev.cx, b.cy))
            pts.append((b.x + b.w, b.cy))
        else:
            pts.append((b.cx, b.cy))
    pts = [p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]]
    return " ".join(f"{x},{y}" for x, y in pts)


def render_svg(model: dict, highlight: bool = True, standalone: bool = True) -> str:
    """The picture. `highlight`: the last trace's elements and path drawn in (the HTML
    leaves that to its script); `standalone`: an .svg file (xmlns, XML prolog)."""
    lay = layout(model)
    tr = model.get("trace") or {}
    on_path = set(tr.get("path") or []) | set(tr.get("targets") or []) if highlight else set()
    out = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    xmlns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    cl = model["cluster"]
    out.append(f'<svg{xmlns} class="topology" id="topology" width="{lay.width}" '
               f'height="{lay.height}" viewBox="0 0 {lay.width} {lay.height}" '
               f'data-cluster={quoteattr(cl["name"])}>\n')
    if standalone:
        out.append(f"<style>{CSS}</style>\n")
    out.append(f'<rect x="0" y="0" width="{lay.width}" height="{lay.height}" fill="#ffffff"/>\n')
    title = (f"cluster {cl['name']}: {len(model['nodes'])} nodes, {len(model['pods'])} pods, "
             f"{len(model['services'])} services, {len(model['ingresses'])} ingresses, "
             f"{len(model['networkPolicies'])} network policies")
    out.append(f'<text x="{MARGIN}" y="{MARGIN + 8}" class="head" id="title">'
               f'{escape(title)}</text>\n')
    # Containers first (the bridge, the host, the node boxes), then the edges over them,
    # the trace's path, and what the edges join on top.
    back = [r for r in lay.order if lay.boxes[r].kind in ("lan", "host", "node", "pending")]
    for ref in back:
        out.append(_box_svg(lay.boxes[ref], ref in on_path) + "\n")
    out.append('<g id="edges">\n')
    for e in lay.edges:
        a, b = lay.boxes.get(e.src), lay.boxes.get(e.dst)
        if a is None or b is None:
            continue
        x1, y1, x2, y2 = _edge_points(a, b)
        if e.kind == "lan":
            x2 = x1  # straight up from the node to the bridge
        out.append(f'<line class="edge {e.kind}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
                   f'stroke="{EDGE_COLORS[e.kind]}" data-from={quoteattr(e.src)} '
                   f'data-to={quoteattr(e.dst)}/>\n')
    out.append("</g>\n")
    # The trace's line and step badges are always drawn; without `highlight` they wait
    # hidden (points in data-points, badges display:none) for the page's script to show.
    path = [lay.boxes[r] for r in tr.get("path") or [] if r in lay.boxes]
    pts = _points(path, lay.boxes.get("lan")) if len(path) > 1 else ""
    out.append(f'<polyline id="trace-path" points="{pts if highlight else ""}" '
               f'data-points="{pts}"/>\n')
    for ref in lay.order:
        if ref not in back:
            out.append(_box_svg(lay.boxes[ref], ref in on_path) + "\n")
    hidden = "" if highlight else ' style="display:none"'
    out.append(f'<g id="trace-badges"{hidden}>')
    for b, steps in _badges(path):
        out.append(_badge_svg(b, steps))
    out.append("</g>\n</svg>\n")
    return "".join(out)


def _badges(path: list[Box]) -> list[tuple[Box, str]]:
    """The step numbers of the trace's path, one badge per element ("2,4" when the path
    comes back to it)."""
    steps: dict[str, list[int]] = {}
    boxes: dict[str, Box] = {}
    for i, b in enumerate(path, 1):
        steps.setdefault(b.ref, []).append(i)
        boxes[b.ref] = b
    return [(boxes[r], ",".join(map(str, n))) for r, n in steps.items()]


BADGE_R = 9


def _badge_svg(b: Box, steps: str) -> str:
    """A numbered disc on the element's top-right corner (the same the page's script draws)."""
    w = max(2 * BADGE_R, int(len(steps) * 7) + 8)
    x, y = b.x + b.w - w + 4, b.y - BADGE_R + 4
    return (f'<g class="hop-badge" data-ref={quoteattr(b.ref)}>'
            f'<rect x="{x}" y="{y}" width="{w}" height="{2 * BADGE_R}" rx="{BADGE_R}" '
            f'fill="{TRACE_COLOR}"/><text x="{x + w // 2}" y="{y + BADGE_R + 4}" '
            f'text-anchor="middle" fill="#ffffff" font-weight="bold">{steps}</text></g>')


# --- JSON and DOT ----------------------------------------------------------------------------

def render_json(model: dict) -> str:
    return json.dumps(model, indent=2, sort_keys=False) + "\n"


def _dq(s: object) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(model: dict) -> str:
    """Graphviz text: a cluster subgraph per node holding its pods, the LAN, Services,
    Ingresses and NetworkPolicies as nodes, endpoints/routes/selections as edges, the last
    trace's path as bold blue edges."""
    cl = model["cluster"]
    tr = model.get("trace") or {}
    on_path = set(tr.get("path") or []) | set(tr.get("targets") or [])

    def node(ref: str, kind: str, label: str, extra: str = "") -> str:
        fill, stroke = COLORS[kind]
        pen = f'color="{TRACE_COLOR}", penwidth=3' if ref in on_path else f'color="{stroke}"'
        return (f'{_dq(ref)} [label={_dq(label)}, fillcolor="{fill}", {pen}, '
                f'id={_dq(elem_id(ref))}{extra}];')

    def edge(a: str, b: str, attrs: str) -> str:
        return f"  {_dq(a)} -> {_dq(b)} [{attrs}];"

    out = [f"digraph {_dq('netsim-' + cl['name'])} {{",
           f'  graph [rankdir=TB, fontname="monospace", '
           f"label={_dq('cluster ' + cl['name'] + '  LAN ' + cl['lan'])}];",
           '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];',
           "  " + node("lan", "lan", f"LAN bridge {cl['lan']}")]
    if cl.get("hostIP"):
        out.append("  " + node("host", "host", f"host (root netns)\n{cl['hostIP']}"))
        out.append(edge("host", "lan", "dir=none"))
    by_node: dict[str | None, list[dict]] = {}
    for p in model["pods"]:
        by_node.setdefault(p["node"], []).append(p)
    for n in model["nodes"]:
        fill, stroke = COLORS["node"]
        color = TRACE_COLOR if n["id"] in on_path else stroke
        out.append(f"  subgraph {_dq('cluster_' + n['name'])} {{")
        out.append(f"    label={_dq(n['name'] + '  eth0 ' + str(n['lanIP']))};")
        out.append(f'    style="rounded,filled"; fillcolor="{fill}"; color="{color}";')
        out.append("    " + node(n["id"], "node", f"cni0 {n['cni0']}\npods {n['podCIDR']}"))
        for p in by_node.get(n["name"], []):
            out.append("    " + node(p["id"], "pod" if p["ready"] else "pod-notready",
                                     f"{p['namespace']}/{p['name']}\n{p['ip'] or '<none>'}"))
        out.append("  }")
        for p in by_node.get(n["name"], []):
            out.append(edge(n["id"], p["id"], "dir=none, style=dotted"))
        out.append(edge(n["id"], "lan", f"dir=none, label={_dq(n['lanIP'])}"))
    for p in by_node.get(None, []):
        out.append("  " + node(p["id"], "pod-notready",
                               f"{p['namespace']}/{p['name']}\n(not scheduled)"))
    node_ips = {n["lanIP"]: n["id"] for n in model["nodes"]}
    pods = {p["id"] for p in model["pods"]}
    for s in model["services"]:
        label = "\n".join([f"svc {s['namespace']}/{s['name']}", f"{s['type']} {s['clusterIP']}",
                            *(_port(p) for p in s["ports"])])
        out.append("  " + node(s["id"], "svc", label))
        for e in s["endpoints"]:
            target = e["pod"] if e["pod"] in pods else node_ips.get(e["ip"])
            if target is None and e["ip"] == cl.get("hostIP"):
                target = "host"
            if target:
                style = "" if e["ready"] else ", style=dashed"
                out.append(edge(s["id"], target, f"label={_dq(','.join(map(str, e['ports'])))}, "
                                f'color="{EDGE_COLORS["endpoint"]}"{style}'))
    for i in model["ingresses"]:
        out.append("  " + node(i["id"], "ing", f"ingress {i['namespace']}/{i['name']}"))
        for r in i["routes"]:
            if r["service"]:
                port = f":{r['port']}" if r["port"] is not None else ""
                out.append(edge(i["id"], r["service"], f"label={_dq(r['host'] + r['path'] + port)}, "
                                f'color="{EDGE_COLORS["route"]}"'))
    for p in model["networkPolicies"]:
        out.append("  " + node(p["id"], "netpol",
                               f"netpol {p['namespace']}/{p['name']}\n{p['podSelector']}",
                               ", shape=note"))
        for ref in p["selects"]:
            out.append(edge(p["id"], ref, f'style=dashed, color="{EDGE_COLORS["selects"]}", '
                            "arrowhead=odot"))
    path = tr.get("path") or []
    for a, b in zip(path, path[1:], strict=False):
        out.append(edge(a, b, f'color="{TRACE_COLOR}", penwidth=3, constraint=false, '
                        'label="trace"'))
    out.append("}")
    return "\n".join(out) + "\n"
