"""`netsim netpol stats [POLICY] [-n NS | -A]`: what each NetworkPolicy allowed and what
the default denies refused, from every node's policy rule counters.

Two tables: one row per policy (the packets its rules allowed; the packets refused by the
default deny of the pods it isolates — shared with every other policy isolating them), and
one row per isolated pod and direction (its default deny's count, and the policies
selecting it). netsim/netpol/counters.py says how the counters are read and what they
count.
"""

from __future__ import annotations

import argparse

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, out, server_error
from netsim.cli.proxy_cmd import _table
from netsim.net.topology import ClusterConfig
from netsim.netpol.agent import backend_for
from netsim.netpol.counters import node_counts, summarize
from netsim.netpol.render import Snapshot


def stats(ctx: Ctx, name: str | None) -> int:
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    ns = None if ctx.all_namespaces else ctx.ns
    try:
        if name:
            ctx.client.get("networkpolicies", name, ns)  # NotFound in kubectl's words
        policies = ctx.client.list("networkpolicies", ns)
        pods = ctx.client.list("pods", None)
        namespaces = ctx.client.list("namespaces", None)
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    if not policies:
        out(f"No resources found in {ns} namespace." if ns else "No resources found")
        return 0
    snap = Snapshot.from_objects(policies, pods, namespaces, node="")
    backend = backend_for(cfg.proxy_mode)
    counts = []
    for n in cfg.nodes:
        counts += node_counts(cfg.node_netns(n.name), backend)
    rows, denies = summarize(counts, snap)
    if name:
        rows = [r for r in rows if r.name == name]
        denies = [d for d in denies if name in d.policies]
    head = ([] if ns else ["NAMESPACE"]) + ["NAME", "POLICY-TYPES", "PODS", "ALLOWED-PACKETS",
                                            "ALLOWED-BYTES", "DENIED-PACKETS", "DENIED-BYTES"]
    table = [head]
    for r in rows:
        table.append(([] if ns else [r.namespace]) + [
            r.name, ",".join(r.directions) or "<none>", str(r.pods), str(r.allowed_packets),
            str(r.allowed_bytes), str(r.denied_packets), str(r.denied_bytes)])
    out(_table(table))
    isolated = [d for d in denies if d.policies]
    if isolated:
        out("\n")
        t2 = [([] if ns else ["NAMESPACE"]) + ["POD", "DIRECTION", "POLICIES", "DENIED-PACKETS",
                                              "DENIED-BYTES"]]
        for d in isolated:
            t2.append(([] if ns else [d.namespace]) + [
                d.pod, d.direction, ",".join(d.policies), str(d.packets), str(d.bytes)])
        out(_table(t2))
    return 0


def run(ctx: Ctx, args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="netsim netpol", description=(
        "NetworkPolicy tools. stats [POLICY]: packets and bytes each policy allowed and the "
        "default denies refused, summed over every node (counters of the policy rules)."))
    ap.add_argument("action", choices=["stats"])
    ap.add_argument("policy", nargs="?")
    ap.add_argument("-n", "--namespace")
    ap.add_argument("-A", "--all-namespaces", action="store_true")
    a = ap.parse_args(args)
    if a.namespace:
        ctx.namespace = a.namespace
    if a.all_namespaces:
        ctx.all_namespaces = True
    name = a.policy
    if name and "/" in name:
        kind, _, name = name.partition("/")
        if kind not in ("netpol", "networkpolicy", "networkpolicies",
                        "networkpolicy.networking.k8s.io", "networkpolicies.networking.k8s.io"):
            raise CliError(f'error: the server doesn\'t have a resource type "{kind}"')
    if name and ctx.all_namespaces:
        raise CliError("error: a resource cannot be retrieved by name across all namespaces")
    return stats(ctx, name)
