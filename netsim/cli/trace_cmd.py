"""`netsim trace [-n NS] FROM TO [--port N] [--protocol tcp|udp] [-o text|json]`.

FROM: pod/NAME, node/NAME or host; TO: svc/NAME, pod/NAME, node/NAME (with --port, a
NodePort), an IP, or ingress/HOST[/path] (through the ingress controller's nginx). The work
is netsim.inspect.trace's (netsim.inspect.ingress's for an Ingress host).
"""

from __future__ import annotations

import argparse
import json

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, out, server_error
from netsim.inspect import ingress, ruleflow
from netsim.inspect import trace as tr
from netsim.net.topology import ClusterConfig


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netsim trace", description=(
        "Trace one new connection FROM -> TO: the netfilter rules it matches on each node "
        "(read live, walked by netsim.inspect.ruleflow), the routing decision, and a real "
        "probe (a TCP connect / UDP datagram) whose conntrack entry names the endpoint."))
    ap.add_argument("source", metavar="FROM")
    ap.add_argument("dest", metavar="TO")
    ap.add_argument("-n", "--namespace")
    ap.add_argument("--port", type=int)
    ap.add_argument("--protocol", choices=["tcp", "udp"])
    ap.add_argument("-o", "--output", choices=["text", "json"], default="text")
    return ap


def run(ctx: Ctx, argv: list[str]) -> int:
    a = parser().parse_intermixed_args(argv)
    if a.namespace:
        ctx.namespace = a.namespace
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    try:
        target = ingress.parse_target(a.dest)
        if target is not None:
            result = ingress.run_ingress_trace(ctx.client, cfg, a.source, target, ctx.ns,
                                               a.port)
        else:
            result = tr.run_trace(ctx.client, cfg, a.source, a.dest, ctx.ns, a.port,
                                  a.protocol)
    except tr.TraceUsageError as e:
        raise CliError(str(e)) from e
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    except (ruleflow.RuleSyntaxError, ruleflow.TraceError) as e:
        raise CliError(f"error: cannot read the node's rules: {e}") from e
    doc = result.to_json()
    tr.save_last_trace(ctx.cluster, doc)
    out(json.dumps(doc, indent=2) if a.output == "json" else result.text())
    return 0
