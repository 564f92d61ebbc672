"""`netsim render`: the rules kube-proxy would write, offline.

`--mode iptables` (default) prints the iptables-restore text of a full sync, `--mode
nftables` the `nft -f` transaction of a full (first) sync, `--mode ipvs` the IPVS state
(virtual servers as `ipvsadm -R` input, ipsets, the constant iptables rules, the
addresses on kube-ipvs0).

No root, no cluster: manifests in, `render_full` text out. What a live cluster would add
is filled in deterministically, so the output (and the golden files in `rules/`) only
changes when the manifests do:

- Nodes: as `cluster up --nodes N` makes them (k8s-master-171 with the control-plane
  taint, k8s-slave-172, ...; node i gets the i-th /24 of --pod-cidr). `--node` picks whose
  rules are printed (default: the first node), which matters for Local policies.
- Pods: those in the files, plus `replicas` pods per Deployment (ReplicaSets too), named
  `<deploy>-<i>`, in file order. A pod with spec.nodeName stays there; the others are
  spread like the scheduler spreads a fresh ReplicaSet: each goes to the schedulable node
  (no control-plane taint, unless it is the only node) with the fewest pods so far, ties
  broken by node order. A pod's IP is the next free address of its node's /24 from .2 up
  (.1 is cni0), as the node IPAM hands them out. Every pod is Ready.
- Endpoints: EndpointSlices in the files are used as they are (with their nodeName, so
  `--node` decides locality); a selectorless Service's v1 Endpoints too. Every other
  Service with a selector gets one slice from the matching pods (targetPort by number, or
  by name from the containers' ports; pods without that named port are skipped).
- ClusterIPs: kept when given. Missing ones are allocated from --service-cidr at offset
  sha256("ns/name") mod size, probing upward past used and reserved addresses (network,
  broadcast, .1 for `kubernetes`, .10 for kube-dns).
- NodePorts: kept when given; missing ones for NodePort/LoadBalancer services get
  30000 + sha256("ns/name:portindex") mod 2768, probing upward past used ports.

`--regen` rewrites `rules/` from `examples/` (see rules/README.md); `--check` compares.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import ipaddress
import os
import sys

from netsim.cli.manifests import ManifestError, load
from netsim.golden import write_or_check
from netsim.net.topology import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, ClusterConfig
from netsim.proxy import ipvs, nftables
from netsim.proxy.iptables import render_full
from netsim.proxy.model import SERVICE_NAME_LABEL, ProxySnapshot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
RULES = os.path.join(REPO, "rules")
NODEPORT_BASE, NODEPORT_SIZE = 30000, 2768


def _h(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")


def _ns(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or "default"


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class _Placer:
    """Scheduler + IPAM stand-in (see the module docstring for the rule)."""

    def __init__(self, cfg: ClusterConfig):
        self.cfg = cfg
        workers = [n for n in cfg.nodes if not n.control_plane]
        self.schedulable = workers or list(cfg.nodes)
        self.count = {n.name: 0 for n in cfg.nodes}
        self.next_host = {n.name: 2 for n in cfg.nodes}

    def place(self, node_name: str | None) -> tuple[str, str]:
        node = None
        if node_name:
            node = next((n for n in self.cfg.nodes if n.name == node_name), None)
        if node is None:
            node = min(self.schedulable, key=lambda n: (self.count[n.name],
                                                          self.cfg.nodes.index(n)))
        self.count[node.name] += 1
        net = ipaddress.ip_network(node.pod_cidr)
        ip = str(net[self.next_host[node.name]])
        self.next_host[node.name] += 1
        return node.name, ip


def _pods(docs: list[dict], placer: _Placer) -> list[dict]:
    """(ns, labels, containers, nodeName, ip) of every pod the manifests imply."""
    pods: list[dict] = []
    for obj in docs:
        kind = obj.get("kind")
        if kind == "Pod":
            spec = obj.get("spec") or {}
            node, ip = placer.place(spec.get("nodeName"))
            pods.append({"ns": _ns(obj), "name": _name(obj),
                         "labels": (obj.get("metadata") or {}).get("labels") or {},
                         "containers": spec.get("containers") or [], "node": node, "ip": ip})
        elif kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            spec = obj.get("spec") or {}
            tmpl = spec.get("template") or {}
            replicas = spec.get("replicas", 1)
            for i in range(int(replicas if replicas is not None else 1)):
                tspec = tmpl.get("spec") or {}
                node, ip = placer.place(tspec.get("nodeName"))
                pods.append({"ns": _ns(obj), "name": f"{_name(obj)}-{i}",
                             "labels": (tmpl.get("metadata") or {}).get("labels") or {},
                             "containers": tspec.get("containers") or [], "node": node,
                             "ip": ip})
    return pods


def _target_port(port: dict, pod: dict) -> int | None:
    tp = port.get("targetPort", port.get("port"))
    if isinstance(tp, int) or (isinstance(tp, str) and tp.isdigit()):
        return int(tp)
    proto = (port.get("protocol") or "TCP").upper()
    for c in pod["containers"]:
        for cp in c.get("ports") or []:
            if cp.get("name") == tp and (cp.get("protocol") or "TCP").upper() == proto:
                return int(cp["containerPort"])
    return None


def _synth_slice(svc: dict, pods: list[dict]) -> dict | None:
    spec = svc.get("spec") or {}
    sel = spec.get("selector") or {}
    if not sel:
        return None
    ns = _ns(svc)
    members = [p for p in pods if p["ns"] == ns and _matches(sel, p["labels"])]
    by_ep: dict[tuple, dict] = {}
    for port in spec.get("ports") or []:
        for p in members:
            tp = _target_port(port, p)
            if tp is None:
                continue
            key = (port.get("name") or "", (port.get("protocol") or "TCP").upper(), tp)
            by_ep.setdefault(key, {})[p["ip"]] = p
    # one slice per distinct (name, protocol, targetPort) set, as the controller groups them
    slices = []
    for i, ((pname, proto, tp), eps) in enumerate(sorted(by_ep.items())):
        ports = [{"name": pname, "port": tp, "protocol": proto}]
        endpoints = [{"addresses": [ip], "conditions": {"ready": True, "serving": True,
                                                         "terminating": False},
                      "nodeName": p["node"], "targetRef": {"kind": "Pod", "name": p["name"],
                                                           "namespace": ns}}
                     for ip, p in sorted(eps.items())]
        slices.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {"name": f"{_name(svc)}-{i}", "namespace": ns,
                                    "labels": {SERVICE_NAME_LABEL: _name(svc)}},
                       "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
    return {"slices": slices}


def _endpoints_to_slices(ep: dict) -> list[dict]:
    out = []
    for i, subset in enumerate(ep.get("subsets") or []):
        ports = [{"name": p.get("name") or "", "port": p.get("port"),
                  "protocol": p.get("protocol") or "TCP"} for p in subset.get("ports") or []]
        eps = [{"addresses": [a["ip"]], "conditions": {"ready": True},
                "nodeName": a.get("nodeName")} for a in subset.get("addresses") or []]
        eps += [{"addresses": [a["ip"]], "conditions": {"ready": False},
                 "nodeName": a.get("nodeName")} for a in subset.get("notReadyAddresses") or []]
        out.append({"kind": "EndpointSlice", "addressType": "IPv4",
                    "metadata": {"name": f"{_name(ep)}-ep{i}", "namespace": _ns(ep),
                                 "labels": {SERVICE_NAME_LABEL: _name(ep)}},
                    "ports": ports, "endpoints": eps})
    return out


def _allocate(services: list[dict], service_cidr: str) -> None:
    net = ipaddress.ip_network(service_cidr)
    size = net.num_addresses
    reserved = {0, size - 1, 1, 10}
    used_ips = {int(ipaddress.ip_address(s["spec"]["clusterIP"])) - int(net.network_address)
                for s in services
                if (s.get("spec") or {}).get("clusterIP") not in (None, "", "None")}
    used_ports = {int(p["nodePort"]) for s in services for p in (s.get("spec") or {}).get("ports") or []
                  if p.get("nodePort")}
    for s in services:
        spec = s.setdefault("spec", {})
        typ = spec.get("type") or "ClusterIP"
        if typ == "ExternalName":
            continue
        if not spec.get("clusterIP"):
            off = _h(f"{_ns(s)}/{_name(s)}") % size
            while off in reserved or off in used_ips:
                off = (off + 1) % size
            used_ips.add(off)
            spec["clusterIP"] = str(net.network_address + off)
        if typ in ("NodePort", "LoadBalancer"):
            for i, p in enumerate(spec.get("ports") or []):
                if p.get("nodePort"):
                    continue
                n = _h(f"{_ns(s)}/{_name(s)}:{i}") % NODEPORT_SIZE
                while NODEPORT_BASE + n in used_ports:
                    n = (n + 1) % NODEPORT_SIZE
                used_ports.add(NODEPORT_BASE + n)
                p["nodePort"] = NODEPORT_BASE + n


def build_snapshot(objs: list[dict], *, node: str | None = None, nodes: int = 3,
                   pod_cidr: str = DEFAULT_POD_CIDR,
                   service_cidr: str = DEFAULT_SERVICE_CIDR) -> ProxySnapshot:
    """The snapshot a node's kube-proxy would see for these manifests (see module doc)."""
    cfg = ClusterConfig.make(name="render", nodes=nodes, pod_cidr=pod_cidr,
                             service_cidr=service_cidr)
    node_spec = cfg.nodes[0] if node is None else cfg.node(node)
    objs = [copy.deepcopy(o) for o in objs]
    services = [o for o in objs if o.get("kind") == "Service"]
    _allocate(services, cfg.service_cidr)
    slices = [o for o in objs if o.get("kind") == "EndpointSlice"]
    for o in objs:
        if o.get("kind") == "Endpoints":
            slices += _endpoints_to_slices(o)
    have = {(_ns(s), ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL))
            for s in slices}
    pods = _pods(objs, _Placer(cfg))
    for svc in services:
        if (_ns(svc), _name(svc)) in have:
            continue
        made = _synth_slice(svc, pods)
        if made:
            slices += made["slices"]
    return ProxySnapshot.from_objects(services, slices, node_name=node_spec.name,
                                      node_ips=[node_spec.ip], cluster_cidr=cfg.pod_cidr)


def render_paths(paths: list[str], **kw) -> str:
    docs = load(paths, recursive=kw.pop("recursive", False))
    mode = kw.pop("mode", "iptables")
    snap = build_snapshot([d.obj for d in docs], **kw)
    if mode == "nftables":
        cidr = kw.get("service_cidr", DEFAULT_SERVICE_CIDR)
        return nftables.render_full(snap, nftables.NftOptions(service_cidrs=(cidr,)))
    if mode == "ipvs":
        return ipvs.render_text(snap)
    return render_full(snap)


# --- golden files --------------------------------------------------------------------------

def golden_cases() -> list[tuple[str, list[str], dict]]:
    """(rules file, manifest paths, render kwargs) for everything under examples/."""
    cases = []
    if not os.path.isdir(EXAMPLES):
        return cases
    for d in sorted(os.listdir(EXAMPLES)):
        path = os.path.join(EXAMPLES, d)
        if not os.path.isdir(path) or not any(f.endswith((".yaml", ".yml", ".json"))
                                              for f in os.listdir(path)):
            continue
        cases.append((f"iptables-{d}-k8s-master-171.rules", [path], {"node": "k8s-master-171"}))
        cases.append((f"iptables-{d}-k8s-slave-172.rules", [path], {"node": "k8s-slave-172"}))
        for node in ("k8s-master-171", "k8s-slave-172"):
            cases.append((f"nftables-{d}-{node}.nft", [path], {"node": node, "mode": "nftables"}))
        for node in ("k8s-master-171", "k8s-slave-172"):
            cases.append((f"ipvs-{d}-{node}.txt", [path], {"node": node, "mode": "ipvs"}))
    return cases


def regen(check: bool = False) -> int:
    os.makedirs(RULES, exist_ok=True)
    bad = 0
    for fname, paths, kw in golden_cases():
        try:
            text = render_paths(paths, **kw)
        except ManifestError as e:
            print(f"skip {paths[0]}: {e}", file=sys.stderr)
            continue
        if not write_or_check(os.path.join(RULES, fname), text, check,
                              "python -m netsim.proxy.render_cli --regen"):
            bad += 1
    return 1 if bad else 0


def run(args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="netsim render", description=(
        "Print the rules kube-proxy would write on one node for the given manifests "
        "(iptables-restore text; with --mode nftables the nft -f transaction; with --mode ipvs "
        "the IPVS virtual servers, ipsets, iptables rules and kube-ipvs0 addresses; offline: "
        "no root, no cluster)."))
    ap.add_argument("-f", "--filename", action="append", default=[])
    ap.add_argument("-R", "--recursive", action="store_true")
    ap.add_argument("--node", help="whose rules (default: the first node, k8s-master-171)")
    ap.add_argument("--mode", default="iptables", choices=["iptables", "nftables", "ipvs"])
    ap.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR)
    ap.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--regen", action="store_true", help="rewrite rules/ from examples/")
    ap.add_argument("--check", action="store_true", help="compare rules/ with examples/")
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    # `netsim render -f X` reaches us as ["X", ..., "-f"] (the top-level parser splits the
    # option from its value): take stray positionals as files, drop a dangling -f.
    if args and args[-1] in ("-f", "--filename"):
        args = args[:-1]
    a = ap.parse_intermixed_args(args)
    a.filename = [*a.filename, *a.paths]
    if a.regen or a.check:
        return regen(check=a.check)
    if not a.filename:
        print("error: must specify -f FILE|DIR", file=sys.stderr)
        return 1
    try:
        text = render_paths(a.filename, recursive=a.recursive, node=a.node, nodes=a.nodes,
                            pod_cidr=a.pod_cidr, service_cidr=a.service_cidr, mode=a.mode)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as e:
        msg = f'node "{e.args[0]}" not found' if isinstance(e, KeyError) else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
