"""`netsim topology`: one picture of the cluster, as data first.

`build_model` is pure: API objects (Nodes, Pods, Services, EndpointSlices, Ingresses,
NetworkPolicies) plus the cluster config (each node's LAN address and pod /24) and, when
there is one, the last `netsim trace` result go in; a plain dict comes out. It is what
`netsim topology -o json` prints, and what the renderers in topology_render draw (dot, svg,
html). `collect` is the one impure part: it reads those objects from a live cluster and the
trace file `netsim trace` leaves in /run/netsim/<cluster>/last-trace.json.

Every element has a reference ("node/NAME", "pod/NS/NAME", "svc/NS/NAME", "ing/NS/NAME",
"netpol/NS/NAME", "host"), the same form `netsim trace` uses in its hops' "at", so a trace
maps onto the picture without guessing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections.abc import Iterable

from netsim.api import selectors
from netsim.net.ledger import run_dir
from netsim.net.topology import ClusterConfig

SCHEMA = "netsim.topology/v1"
TRACE_FILE = "last-trace.json"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def trace_path(cluster: str) -> str:
    """Where `netsim trace` leaves the JSON of its last result (`-o json`'s document)."""
    return os.path.join(run_dir(cluster), TRACE_FILE)


def _md(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _ref(kind: str, obj: dict) -> str:
    md = _md(obj)
    return f"{kind}/{md.get('namespace') or 'default'}/{md.get('name', '')}"


def _ip_key(ip: str | None) -> tuple:
    try:
        return (0, ipaddress.ip_address(ip or ""))
    except ValueError:
        return (1, ip or "")


def _ready(conditions: Iterable[dict] | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions or [])


def _node(spec, obj: dict | None, cfg: ClusterConfig) -> dict:
    """A node as the picture shows it: the config's LAN address and pod CIDR (what the
    netns were built with), the Node object's readiness and roles."""
    obj = obj or {}
    md, st = _md(obj), obj.get("status") or {}
    labels = md.get("labels") or {}
    lan_ip = spec.ip if spec else next((a.get("address") for a in st.get("addresses") or []
                                        if a.get("type") == "InternalIP"), None)
    pod_cidr = spec.pod_cidr if spec else (obj.get("spec") or {}).get("podCIDR")
    gateway = None
    if pod_cidr:
        try:
            gateway = str(next(ipaddress.ip_network(pod_cidr, strict=False).hosts()))
        except (ValueError, StopIteration):
            gateway = None
    name = spec.name if spec else md.get("name", "")
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    if spec is not None and spec.control_plane and "control-plane" not in roles:
        roles.insert(0, "control-plane")
    return {
        "id": f"node/{name}", "name": name, "lanIP": lan_ip, "podCIDR": pod_cidr,
        "cni0": gateway, "netns": cfg.node_netns(name),
        "ready": _ready(st.get("conditions")) if obj else False,
        "registered": bool(obj), "roles": roles,
        "unschedulable": bool((obj.get("spec") or {}).get("unschedulable")),
        "ingress": labels.get("ingress") == "true",
    }


def _pod(obj: dict) -> dict:
    md, spec, st = _md(obj), obj.get("spec") or {}, obj.get("status") or {}
    owner = next((f"{o.get('kind')}/{o.get('name')}" for o in md.get("ownerReferences") or []
                  if o.get("controller")), None)
    phase = st.get("phase") or "Pending"
    if md.get("deletionTimestamp"):
        phase = "Terminating"
    return {
        "id": _ref("pod", obj), "namespace": md.get("namespace") or "default",
        "name": md.get("name", ""), "node": spec.get("nodeName") or None,
        "ip": st.get("podIP") or None, "ready": _ready(st.get("conditions")), "phase": phase,
        "hostNetwork": bool(spec.get("hostNetwork")), "labels": dict(md.get("labels") or {}),
        "owner": owner,
    }


def _service(obj: dict, slices: list[dict], pod_by_ip: dict[str, dict]) -> dict:
    md, spec = _md(obj), obj.get("spec") or {}
    ns = md.get("namespace") or "default"
    ports = [{"name": p.get("name") or "", "port": p.get("port"),
              "protocol": p.get("protocol") or "TCP",
              "targetPort": p.get("targetPort", p.get("port")),
              "nodePort": p.get("nodePort")} for p in spec.get("ports") or []]
    eps: dict[str, dict] = {}
    for sl in slices:
        sl_ports = sorted({p.get("port") for p in sl.get("ports") or [] if p.get("port")})
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            cond = ep.get("conditions") or {}
            for ip in ep.get("addresses") or []:
                pod = None
                if ref.get("kind") == "Pod" and ref.get("name"):
                    pod = f"pod/{ref.get('namespace') or ns}/{ref['name']}"
                elif ip in pod_by_ip:
                    pod = pod_by_ip[ip]["id"]
                e = eps.setdefault(ip, {"ip": ip, "ports": [], "pod": pod,
                                        "node": ep.get("nodeName") or None,
                                        "ready": cond.get("ready") is not False,
                                        "terminating": bool(cond.get("terminating"))})
                e["ports"] = sorted(set(e["ports"]) | set(sl_ports))
    return {
        "id": _ref("svc", obj), "namespace": ns, "name": md.get("name", ""),
        "type": spec.get("type") or "ClusterIP", "clusterIP": spec.get("clusterIP") or None,
        "externalName": spec.get("externalName"),
        "selector": dict(spec.get("selector") or {}), "ports": ports,
        "endpoints": sorted(eps.values(), key=lambda e: _ip_key(e["ip"])),
    }


def _backend(ns: str, backend: dict | None) -> tuple[str | None, object]:
    """networking.k8s.io/v1's backend.service, or the old serviceName/servicePort."""
    if not backend:
        return None, None
    svc = backend.get("service")
    if svc:
        port = svc.get("port") or {}
        return f"svc/{ns}/{svc.get('name')}", port.get("number") or port.get("name")
    if backend.get("serviceName"):
        return f"svc/{ns}/{backend['serviceName']}", backend.get("servicePort")
    return None, None


def _ingress(obj: dict) -> dict:
    md, spec = _md(obj), obj.get("spec") or {}
    ns = md.get("namespace") or "default"
    tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
    routes = []
    for rule in spec.get("rules") or []:
        host = rule.get("host") or "*"
        for p in (rule.get("http") or {}).get("paths") or []:
            svc, port = _backend(ns, p.get("backend"))
            routes.append({"host": host, "path": p.get("path") or "/",
                           "pathType": p.get("pathType") or "ImplementationSpecific",
                           "service": svc, "port": port, "tls": host in tls_hosts})
    svc, port = _backend(ns, spec.get("defaultBackend") or spec.get("backend"))
    if svc:
        routes.append({"host": "*", "path": "(default)", "pathType": "", "service": svc,
                       "port": port, "tls": False})
    cls = spec.get("ingressClassName") or \
        (md.get("annotations") or {}).get("kubernetes.io/ingress.class")
    return {"id": _ref("ing", obj), "namespace": ns, "name": md.get("name", ""),
            "class": cls, "routes": routes}


def _policy(obj: dict, pods: list[dict]) -> dict:
    md, spec = _md(obj), obj.get("spec") or {}
    ns = md.get("namespace") or "default"
    types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
    match = selectors.from_label_selector(spec.get("podSelector") or {})
    selected = sorted(p["id"] for p in pods
                      if p["namespace"] == ns and not p["hostNetwork"] and match(p["labels"]))
    return {"id": _ref("netpol", obj), "namespace": ns, "name": md.get("name", ""),
            "podSelector": selectors.to_string(spec.get("podSelector")) or "<none>",
            "policyTypes": list(types), "ingressRules": len(spec.get("ingress") or []),
            "egressRules": len(spec.get("egress") or []), "selects": selected}


def _targets(to: str, ingresses: list[dict]) -> list[str]:
    """What a trace's TO names that its hops do not cross: the Service of `svc/NS/NAME`; for
    `ingress/HOST[/path]`, the Ingresses with a rule for HOST (else the catch-all ones) and
    the Service of their longest matching path."""
    if to.startswith("svc/"):
        return [to]
    if not to.startswith("ingress/"):
        return []
    host, _, path = to[len("ingress/"):].partition("/")
    path = "/" + path
    routes = [(i["id"], r) for i in ingresses for r in i["routes"] if r["host"] == host] or \
        [(i["id"], r) for i in ingresses for r in i["routes"] if r["host"] == "*"]
    out = sorted({ing for ing, _ in routes})
    match = [r for _, r in routes if r["service"] and path.startswith(r["path"].rstrip("/") or "/")]
    if match:
        out.append(max(match, key=lambda r: len(r["path"]))["service"])
    return out


def _trace(trace: dict, known: set[str], ingresses: list[dict]) -> dict:
    """The trace document as `netsim trace -o json` wrote it, plus `path`: the picture's
    elements it crossed, in order (repeats of one element in a row folded), and `targets`:
    the Service or Ingress its TO named (see _targets)."""
    path: list[str] = []

    def add(ref: str | None) -> None:
        if ref and ref in known and (not path or path[-1] != ref):
            path.append(ref)

    src = trace.get("from") or ""
    add(src if src in known else None)
    for h in trace.get("hops") or []:
        at = h.get("at") or ""
        add(at)
    d = trace.get("delivered_to") or {}
    if d.get("pod"):
        add(f"pod/{d['pod']}")
    targets = _targets(str(trace.get("to") or ""), ingresses)
    return {**trace, "path": path, "targets": [t for t in targets if t in known]}


def build_model(cfg: ClusterConfig, nodes: list[dict], pods: list[dict], services: list[dict],
                slices: list[dict], ingresses: list[dict], policies: list[dict],
                trace: dict | None = None, namespace: str | None = None) -> dict:
    """The topology as one JSON-able dict, every list in a stable order. `namespace`: only
    that namespace's pods/services/ingresses/policies (nodes are always all shown)."""
    def keep(o: dict) -> bool:
        return namespace is None or (_md(o).get("namespace") or "default") == namespace

    by_name = {_md(n).get("name"): n for n in nodes}
    node_list = [_node(s, by_name.get(s.name), cfg) for s in cfg.nodes]
    node_list += [_node(None, n, cfg) for name, n in sorted(by_name.items())
                  if name not in {s.name for s in cfg.nodes}]
    pod_list = sorted((_pod(p) for p in pods if keep(p)),
                      key=lambda p: (p["node"] or "~", p["namespace"], p["name"]))
    pod_by_ip = {p["ip"]: p for p in pod_list if p["ip"] and not p["hostNetwork"]}
    slices_by_svc: dict[tuple[str, str], list[dict]] = {}
    for sl in slices:
        svc_name = (_md(sl).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            slices_by_svc.setdefault((_md(sl).get("namespace") or "default", svc_name),
                                     []).append(sl)
    svc_list = sorted(
        (_service(s, slices_by_svc.get((_md(s).get("namespace") or "default",
                                        _md(s).get("name")), []), pod_by_ip)
         for s in services if keep(s)), key=lambda s: (s["namespace"], s["name"]))
    ing_list = sorted((_ingress(i) for i in ingresses if keep(i)),
                      key=lambda i: (i["namespace"], i["name"]))
    pol_list = sorted((_policy(p, pod_list) for p in policies if keep(p)),
                      key=lambda p: (p["namespace"], p["name"]))
    known = {"host"} | {x["id"] for x in (*node_list, *pod_list, *svc_list, *ing_list)}
    for n in node_list:
        n["pods"] = [p["id"] for p in pod_list if p["node"] == n["name"]]
    return {
        "schema": SCHEMA,
        "cluster": {"name": cfg.name, "lan": cfg.lan,
                    "hostIP": cfg.host_ip if cfg.host_access else None,
                    "podCIDR": cfg.pod_cidr, "serviceCIDR": cfg.service_cidr,
                    "proxyMode": cfg.proxy_mode, "namespace": namespace},
        "nodes": node_list, "pods": pod_list, "services": svc_list,
        "ingresses": ing_list, "networkPolicies": pol_list,
        "trace": _trace(trace, known, ing_list) if trace else None,
    }


def read_trace(path: str) -> dict | None:
    """The last trace's JSON, or None when there is none (or it is not a trace document);
    `traced_at`, when the document has none, is the file's time (the page says how old the
    trace it shows is)."""
    try:
        with open(path) as f:
            doc = json.load(f)
            mtime = os.fstat(f.fileno()).st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or "hops" not in doc:
        return None
    doc.setdefault("traced_at", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(mtime)))
    return doc


def collect(client, cfg: ClusterConfig, namespace: str | None = None,
            trace_file: str | None = None) -> dict:
    """The model of a live cluster, read through its API (one list per kind)."""
    def lst(resource: str) -> list[dict]:
        return client.list(resource, namespace)

    trace = read_trace(trace_file or trace_path(cfg.name))
    return build_model(cfg, client.list("nodes"), lst("pods"), lst("services"),
                       lst("endpointslices"), lst("ingresses"), lst("networkpolicies"),
                       trace=trace, namespace=namespace)
