"""`netsim topology [-n NS] [-o svg|html|dot|json] [-w FILE] [--trace FILE | --no-trace]`.

The cluster as one picture: nodes (LAN address, pod CIDR), pods (IP, node, ready),
Services (ClusterIP, NodePort, endpoints), Ingress routes, NetworkPolicies (the pods they
select) and the last `netsim trace`. The model is netsim.inspect.topology's, the pictures
topology_render's (svg, dot) and topology_html's (one offline HTML file).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, server_error
from netsim.inspect import topology, topology_html, topology_render
from netsim.net.topology import ClusterConfig

FORMATS = ("json", "dot", "svg", "html")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netsim topology", description=(
        "Draw the cluster: nodes with their LAN address and pod CIDR, pods, Services and "
        "their endpoints, Ingress routes, NetworkPolicies, and the last `netsim trace`. "
        "All namespaces unless -n is given."))
    ap.add_argument("-o", "--output", choices=FORMATS,
                    help="format (default: from -w's extension, else json)")
    ap.add_argument("-w", "--write", metavar="FILE", help="write to FILE instead of stdout")
    ap.add_argument("-n", "--namespace")
    ap.add_argument("-A", "--all-namespaces", action="store_true",
                    help="all namespaces (the default)")
    ap.add_argument("--trace", metavar="FILE",
                    help="the trace JSON to show (default: the cluster's last `netsim trace`)")
    ap.add_argument("--no-trace", action="store_true", help="show no trace")
    return ap


def render(model: dict, fmt: str) -> str:
    if fmt == "json":
        return topology_render.render_json(model)
    if fmt == "dot":
        return topology_render.render_dot(model)
    if fmt == "svg":
        return topology_render.render_svg(model)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return topology_html.render_html(model, generated=generated)


def run(ctx: Ctx, argv: list[str]) -> int:
    a = parser().parse_args(argv)
    namespace = None if a.all_namespaces else a.namespace or ctx.namespace
    fmt = a.output
    if fmt is None:
        ext = os.path.splitext(a.write or "")[1].lstrip(".").lower()
        fmt = {"htm": "html", "gv": "dot"}.get(ext, ext) if ext in (*FORMATS, "htm", "gv") \
            else "json"
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    if a.trace and not os.path.exists(a.trace):
        raise CliError(f"error: the path \"{a.trace}\" does not exist")
    trace_file = os.devnull if a.no_trace else a.trace
    try:
        model = topology.collect(ctx.client, cfg, namespace=namespace, trace_file=trace_file)
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    text = render(model, fmt)
    if a.write and a.write != "-":
        try:
            with open(a.write, "w") as f:
                f.write(text)
        except OSError as e:
            raise CliError(f"error: cannot write {a.write}: {e.strerror}") from e
        print(f"topology of cluster {cfg.name} written to {a.write} ({fmt}: "
              f"{len(model['nodes'])} nodes, {len(model['pods'])} pods, "
              f"{len(model['services'])} services)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
