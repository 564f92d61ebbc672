"""`netsim node add [NAME]` and `netsim node remove NAME` (netsim.cluster.nodes does the work)."""

from __future__ import annotations

from netsim.cli.context import CliError, check_cluster
from netsim.cluster import nodes


def run(ctx, action: str, words: list[str]) -> int:
    check_cluster(ctx.cluster, None)
    if action == "remove" and len(words) != 1:
        raise CliError("error: usage: netsim node remove NAME [--cluster C]")
    if action == "add" and len(words) > 1:
        raise CliError("error: usage: netsim node add [NAME] [--cluster C]")
    try:
        if action == "add":
            nodes.add(ctx.cluster, words[0] if words else None)
        else:
            nodes.remove(ctx.cluster, words[0])
    except nodes.NodeError as e:
        raise CliError(str(e)) from e
    return 0
