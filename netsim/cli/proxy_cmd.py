"""`netsim proxy stats [SVC] [-n NS | -A]`: which backend took how many connections, per node.

Without SVC: every Service of the namespace (-A: of all namespaces) that has endpoints.
Where the numbers come from depends on the proxy mode:
- iptables: the packet counters of each node's KUBE-SEP DNAT rules (netsim/proxy/
  counters.py says why that counts connections);
- nftables: each node's conntrack entries (kube-proxy's nftables rules carry no counters,
  as upstream's); packets and bytes from conntrack accounting;
- IPVS: `ipvsadm -Ln --stats --exact` of each node (the kernel's totals per real server).
netsim/inspect/proxystats.py has the details.
"""

from __future__ import annotations

import argparse

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, out, server_error
from netsim.net.topology import ClusterConfig
from netsim.proxy.model import SERVICE_NAME_LABEL, ProxySnapshot

SOURCES = {
    "iptables": "Counted from: the packet counters of each node's KUBE-SEP DNAT rules "
                "(one per new connection).",
    "nftables": "Counted from: each node's conntrack table (kube-proxy's nftables rules carry "
                "no counters, as upstream's): connections held now, open or closed within "
                "their timeout (TCP TIME_WAIT 120 s); packets and bytes both ways from "
                "conntrack accounting.",
    "ipvs": "Counted from: ipvsadm -Ln --stats --exact on each node (IPVS's totals per "
            "real server since it was added).",
}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


class _NodeData:
    """Each node's numbers, read once for every Service printed."""

    def __init__(self, cfg: ClusterConfig):
        self.cfg = cfg
        self.mode = cfg.proxy_mode
        self._cache: dict[str, object] = {}

    def get(self, node: str):
        if node not in self._cache:
            ns = self.cfg.node_netns(node)
            if self.mode == "nftables":
                from netsim.inspect.proxystats import node_conntrack  # noqa: PLC0415
                self._cache[node] = node_conntrack(ns)
            elif self.mode == "ipvs":
                from netsim.inspect.proxystats import node_ipvs_stats  # noqa: PLC0415
                self._cache[node] = node_ipvs_stats(ns)
            else:
                from netsim.proxy.counters import node_counters  # noqa: PLC0415
                self._cache[node] = node_counters(ns)
        return self._cache[node]


def _endpoint_numbers(data: _NodeData, svc: dict, sp, ep, node_ips: list[str]
                      ) -> tuple[list[int], list[int]]:
    """(connections per node, extra totals: [] | [packets, bytes] | [in/out pkts/bytes])."""
    from netsim.inspect import proxystats as ps  # noqa: PLC0415
    nodes = [n.name for n in data.cfg.nodes]
    if data.mode == "nftables":
        addrs = ps.service_addresses(svc, node_ips).get(sp.port, set())
        per, pk, by = [], 0, 0
        for n in nodes:
            entries, _ = data.get(n)
            st = ps.conntrack_by_endpoint(entries, addrs).get(ep.endpoint, ps.EndpointStats())
            per.append(st.conns)
            pk, by = pk + st.packets, by + st.bytes
        return per, [pk, by]
    if data.mode == "ipvs":
        addrs = {f"{ip}:{port}" for proto, ip, port in
                 ps.service_addresses(svc, node_ips).get(sp.port, set()) if proto == sp.proto}
        per, extra = [], [0, 0, 0, 0]
        for n in nodes:
            conns = 0
            for v in data.get(n):
                if v.proto.lower() != sp.proto or v.addr not in addrs:
                    continue
                for r in v.reals:
                    if r.addr == ep.endpoint:
                        conns += r.conns
                        extra = [a + b for a, b in zip(extra, (r.inpkts, r.outpkts, r.inbytes,
                                                               r.outbytes), strict=True)]
            per.append(conns)
        return per, extra
    from netsim.proxy.iptables import endpoint_chain_name  # noqa: PLC0415
    sep = endpoint_chain_name(sp.name_string, sp.proto, ep.endpoint)
    return [data.get(n).get(sep, 0) for n in nodes], []


EXTRA = {"iptables": [], "nftables": ["PACKETS", "BYTES"],
         "ipvs": ["INPKTS", "OUTPKTS", "INBYTES", "OUTBYTES"]}


def service_table(ctx: Ctx, data: _NodeData, svc: dict, slices: list[dict]) -> str | None:
    """The table of one Service, or None when it has no endpoints."""
    cfg = data.cfg
    snap = ProxySnapshot.from_objects([svc], slices, node_name="", node_ips=[],
                                      cluster_cidr=cfg.pod_cidr)
    pods: dict[str, tuple[str, str]] = {}  # ip -> (pod, node)
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            for ip in ep.get("addresses") or []:
                pods[ip] = (ref.get("name") or "<none>", ep.get("nodeName") or "<none>")
    node_ips = [n.ip for n in cfg.nodes]
    extra_cols = EXTRA.get(data.mode, [])
    header = ["PORT", "ENDPOINT", "POD", "POD NODE", *(n.name for n in cfg.nodes), "TOTAL",
              *extra_cols, "SHARE"]
    per_port = []
    for sp in snap.service_ports:
        for ep in sp.endpoints:
            nums, extra = _endpoint_numbers(data, svc, sp, ep, node_ips)
            pod, node = pods.get(ep.ip, ("<none>", "<none>"))
            per_port.append((f"{sp.port_name or '<unset>'}/{sp.port}/{sp.protocol}",
                             ep.endpoint, pod, node, nums, extra))
    if not per_port:
        return None
    grand = sum(sum(r[4]) for r in per_port)
    rows = [header]
    for port, ep, pod, node, nums, extra in per_port:
        total = sum(nums)
        share = f"{100.0 * total / grand:.1f}%" if grand else "-"
        rows.append([port, ep, pod, node, *map(str, nums), str(total), *map(str, extra), share])
    node_totals = [sum(r[4][i] for r in per_port) for i in range(len(cfg.nodes))]
    extra_totals = [sum(r[5][i] for r in per_port) for i in range(len(extra_cols))]
    rows.append(["TOTAL", "", "", "", *map(str, node_totals), str(grand),
                 *map(str, extra_totals), "100.0%" if grand else "-"])
    return _table(rows)


def stats(ctx: Ctx, name: str | None, all_namespaces: bool = False) -> int:
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    data = _NodeData(cfg)
    ns = ctx.ns
    try:
        if name is not None:
            svcs = [ctx.client.get("services", name, ns)]
        else:
            svcs = ctx.client.list("services", None if all_namespaces else ns)
        targets = []
        for svc in svcs:
            md = svc["metadata"]
            targets.append((svc, ctx.client.list(
                "endpointslices", md["namespace"], f"{SERVICE_NAME_LABEL}={md['name']}")))
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    if data.mode != "iptables":
        out(SOURCES.get(data.mode, ""))
    if data.mode == "nftables":
        off = [n.name for n in cfg.nodes if not data.get(n.name)[1]]
        if off:
            out(f"(conntrack accounting is off on {', '.join(off)}: PACKETS and BYTES leave "
                "out their connections; sysctl net.netfilter.nf_conntrack_acct=1 there)")
    printed = 0
    for svc, slices in sorted(targets, key=lambda t: (t[0]["metadata"]["namespace"],
                                                      t[0]["metadata"]["name"])):
        md = svc["metadata"]
        table = service_table(ctx, data, svc, slices)
        if table is None:
            if name is not None:
                out(f"No endpoints for service {md['namespace']}/{md['name']}.")
            continue
        if name is None:
            out(("\n" if printed else "") + f"service/{md['name']} in {md['namespace']}:")
        out(table)
        printed += 1
    if name is None and not printed:
        where = "any namespace" if all_namespaces else f"{ns} namespace"
        out(f"No services with endpoints in {where}.")
    return 0


def run(ctx: Ctx, args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="netsim proxy", description=(
        "kube-proxy tools. stats [SVC]: connections each endpoint received from each node "
        "(iptables: packet counters of the KUBE-SEP DNAT rules; nftables: conntrack entries "
        "with their packets and bytes; IPVS: ipvsadm --stats). Without SVC: every Service "
        "of the namespace (-A: of all)."))
    ap.add_argument("action", choices=["stats"])
    ap.add_argument("service", nargs="?")
    ap.add_argument("-n", "--namespace")
    ap.add_argument("-A", "--all-namespaces", action="store_true")
    a = ap.parse_args(args)
    if a.namespace:
        ctx.namespace = a.namespace
    name = a.service
    if name and name.startswith(("svc/", "service/", "services/")):
        name = name.split("/", 1)[1]
    return stats(ctx, name, a.all_namespaces or ctx.all_namespaces)
