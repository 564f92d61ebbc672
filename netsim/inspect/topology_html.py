"""`netsim topology -o html`: one self-contained page (pure renderer).

The page is the SVG of topology_render inline, its CSS, the model as JSON in a
<script type="application/json"> and a small script: no external URL, no font, no library,
so it opens offline from a file. The script fills the side panel with the last
`netsim trace` (the document embedded at render time), marks the elements the trace crossed
(class `on-path`) and draws its path; clicking an element shows its model object.
When the script ran, <body> carries data-rendered="true" (what the browser test waits for).
"""

from __future__ import annotations

import json

from netsim.inspect.topology_render import COLORS, CSS, TRACE_COLOR, render_svg

PAGE_CSS = f"""
* {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: DejaVu Sans, Helvetica, Arial, sans-serif; color: #0f172a;
       background: #ffffff; }}
header {{ padding: 8px 16px; border-bottom: 1px solid #e2e8f0; }}
header h1 {{ font-size: 16px; margin: 0; }}
header p {{ margin: 2px 0 0; font-size: 12px; color: #475569; }}
main {{ display: flex; align-items: flex-start; }}
#canvas {{ flex: 0 0 auto; overflow: auto; }}
aside {{ flex: 0 0 380px; width: 380px; padding: 8px 12px; border-left: 1px solid #e2e8f0;
        font-size: 12px; }}
aside h2 {{ font-size: 14px; margin: 8px 0 4px; }}
#trace-summary {{ margin: 0 0 6px; }}
#trace-summary .when {{ color: #64748b; }}
#trace-summary .verdict {{ font-weight: bold; padding: 1px 6px; border-radius: 3px; }}
.verdict.delivered {{ background: {COLORS['pod'][0]}; }}
.verdict.rejected, .verdict.dropped, .verdict.no-route {{ background: {COLORS['netpol'][0]}; }}
#trace-hops {{ margin: 0; padding-left: 22px; font-family: DejaVu Sans Mono, monospace;
              font-size: 11px; }}
#trace-hops li {{ margin-bottom: 4px; cursor: pointer; }}
#trace-hops li .at {{ color: {TRACE_COLOR}; font-weight: bold; }}
#trace-hops li .rule {{ color: #475569; word-break: break-all; }}
#details-body {{ white-space: pre-wrap; word-break: break-all; font-size: 11px;
                background: #f8fafc; border: 1px solid #e2e8f0; padding: 6px; margin: 0; }}
svg.topology g[data-ref] {{ cursor: pointer; }}
svg.topology .hop-focus > rect {{ stroke: #f59e0b; stroke-width: 5; }}
label.toggle {{ display: block; margin: 4px 0; }}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var model = JSON.parse(document.getElementById("model-data").textContent);
  var byRef = {};
  ["nodes", "pods", "services", "ingresses", "networkPolicies"].forEach(function (k) {
    (model[k] || []).forEach(function (o) { byRef[o.id] = o; });
  });
  function elemFor(ref) { return document.getElementById(ref.split("/").join("_")); }
  function text(tag, cls, s) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    e.textContent = s;
    return e;
  }
  var tr = model.trace;
  var summary = document.getElementById("trace-summary");
  var list = document.getElementById("trace-hops");
  var marked = 0;
  if (!tr) {
    summary.textContent = "No trace yet: run `netsim trace FROM TO`, then render again.";
  } else {
    summary.appendChild(text("span", "", tr.from + " \u2192 " + tr.to + "  "));
    summary.appendChild(text("span", "verdict " + tr.verdict, tr.verdict));
    if (tr.traced_at) { summary.appendChild(text("div", "when", "traced " + tr.traced_at)); }
    if (tr.delivered_to) {
      var d = tr.delivered_to;
      summary.appendChild(text("div", "", "delivered to pod/" + d.pod + " " + d.ip + ":" + d.port));
    }
    (tr.hops || []).forEach(function (h, i) {
      var li = document.createElement("li");
      li.className = "hop";
      li.setAttribute("data-at", h.at || "");
      li.setAttribute("data-index", String(i));
      li.appendChild(text("span", "at", h.at || ""));
      if (h.interface) { li.appendChild(text("span", "iface", " [" + h.interface + "]")); }
      if (h.table) { li.appendChild(text("span", "chain", " " + h.table + "/" + h.chain)); }
      if (h.rule) { li.appendChild(document.createElement("br")); li.appendChild(text("span", "rule", h.rule)); }
      li.appendChild(document.createElement("br"));
      li.appendChild(text("span", "action", "\u2192 " + (h.action || "")));
      li.addEventListener("mouseenter", function () { focus(h.at, true); });
      li.addEventListener("mouseleave", function () { focus(h.at, false); });
      list.appendChild(li);
    });
    (tr.path || []).concat(tr.targets || []).forEach(function (ref) {
      var el = elemFor(ref);
      if (el) { el.classList.add("on-path"); marked++; }
    });
    var line = document.getElementById("trace-path");  // drawn by the renderer, hidden
    line.setAttribute("points", line.getAttribute("data-points") || "");
    document.getElementById("trace-badges").style.display = "";
  }
  function focus(ref, on) {
    var el = ref && elemFor(ref);
    if (el) { el.classList.toggle("hop-focus", on); }
  }
  document.getElementById("show-trace").addEventListener("change", function (ev) {
    document.getElementById("trace-path").style.display = ev.target.checked ? "" : "none";
    document.getElementById("trace-badges").style.display = ev.target.checked ? "" : "none";
    document.querySelectorAll(".on-path").forEach(function (el) {
      el.classList.toggle("on-path-off", !ev.target.checked);
    });
  });
  var details = document.getElementById("details-body");
  document.querySelectorAll("svg.topology g[data-ref]").forEach(function (g) {
    g.addEventListener("click", function () {
      var o = byRef[g.getAttribute("data-ref")];
      details.textContent = JSON.stringify(o || {ref: g.getAttribute("data-ref")}, null, 2);
    });
  });
  document.body.setAttribute("data-trace-hops", String(list.children.length));
  document.body.setAttribute("data-on-path", String(marked));
  document.body.setAttribute("data-rendered", "true");
})();
"""


def _json_for_script(obj: object) -> str:
    """JSON safe inside <script>: no "</script>" or "<!--" can appear."""
    return json.dumps(obj, sort_keys=False).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_html(model: dict, generated: str | None = None) -> str:
    cl = model["cluster"]
    svg = render_svg(model, highlight=False, standalone=False)
    sub = (f"LAN {cl['lan']} · pods {cl['podCIDR']} · services {cl['serviceCIDR']} · "
           f"kube-proxy {cl['proxyMode']}")
    if cl.get("namespace"):
        sub += f" · namespace {cl['namespace']}"
    if generated:
        sub += f" · rendered {generated}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc('netsim topology: ' + cl['name'])}</title>
<style>{CSS}{PAGE_CSS}
svg.topology .on-path.on-path-off > rect {{ stroke-width: 1.5; }}
</style>
</head>
<body data-cluster="{_esc(cl['name'])}">
<header><h1>{_esc('netsim topology: cluster ' + cl['name'])}</h1><p>{_esc(sub)}</p></header>
<main>
<div id="canvas">
{svg}</div>
<aside id="panel">
<section id="trace-panel">
<h2>Last trace</h2>
<label class="toggle"><input type="checkbox" id="show-trace" checked> show the path</label>
<div id="trace-summary"></div>
<ol id="trace-hops"></ol>
</section>
<section id="details">
<h2>Selected</h2>
<pre id="details-body">Click a node, pod, Service, Ingress or NetworkPolicy.</pre>
</section>
</aside>
</main>
<script type="application/json" id="model-data">{_json_for_script(model)}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
