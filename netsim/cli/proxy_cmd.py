"""`netsim proxy stats SVC [-n NS]`: which backend took how many connections, per node.

The numbers are the packet counters of each node's KUBE-SEP DNAT rules
(netsim/proxy/counters.py says why that counts connections).
"""

from __future__ import annotations

import argparse

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, out, server_error
from netsim.net.topology import ClusterConfig
from netsim.proxy.counters import node_counters
from netsim.proxy.iptables import endpoint_chain_name
from netsim.proxy.model import SERVICE_NAME_LABEL, ProxySnapshot


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def stats(ctx: Ctx, name: str) -> int:
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    ns = ctx.ns
    try:
        svc = ctx.client.get("services", name, ns)
        slices = ctx.client.list("endpointslices", ns, f"{SERVICE_NAME_LABEL}={name}")
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    snap = ProxySnapshot.from_objects([svc], slices, node_name="", node_ips=[],
                                      cluster_cidr=cfg.pod_cidr)
    pods: dict[str, tuple[str, str]] = {}  # ip -> (pod, node)
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            for ip in ep.get("addresses") or []:
                pods[ip] = (ref.get("name") or "<none>", ep.get("nodeName") or "<none>")
    counts = {n.name: node_counters(cfg.node_netns(n.name)) for n in cfg.nodes}
    header = ["PORT", "ENDPOINT", "POD", "POD NODE", *(n.name for n in cfg.nodes), "TOTAL", "SHARE"]
    rows = [header]
    grand = 0
    per_port: list[tuple[str, str, str, str, list[int]]] = []
    for sp in snap.service_ports:
        for ep in sp.endpoints:
            sep = endpoint_chain_name(sp.name_string, sp.proto, ep.endpoint)
            nums = [counts[n.name].get(sep, 0) for n in cfg.nodes]
            pod, node = pods.get(ep.ip, ("<none>", "<none>"))
            per_port.append((f"{sp.port_name or '<unset>'}/{sp.port}/{sp.protocol}", ep.endpoint,
                             pod, node, nums))
            grand += sum(nums)
    if not per_port:
        out(f"No endpoints for service {ns}/{name}.")
        return 0
    for port, ep, pod, node, nums in per_port:
        total = sum(nums)
        share = f"{100.0 * total / grand:.1f}%" if grand else "-"
        rows.append([port, ep, pod, node, *map(str, nums), str(total), share])
    node_totals = [sum(r[4][i] for r in per_port) for i in range(len(cfg.nodes))]
    rows.append(["TOTAL", "", "", "", *map(str, node_totals), str(grand), "100.0%" if grand else "-"])
    out(_table(rows))
    return 0


def run(ctx: Ctx, args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="netsim proxy", description=(
        "kube-proxy tools. stats SVC: connections each endpoint received from each node "
        "(packet counters of the KUBE-SEP DNAT rules)."))
    ap.add_argument("action", choices=["stats"])
    ap.add_argument("service")
    ap.add_argument("-n", "--namespace")
    a = ap.parse_args(args)
    if a.namespace:
        ctx.namespace = a.namespace
    name = a.service.split("/", 1)[1] if a.service.startswith(("svc/", "service/", "services/")) \
        else a.service
    return stats(ctx, name)
