"""`netsim link impair|partition|clear`: delay, jitter, loss, a rate limit or a partition on
a node's LAN link, as Mininet's TCLink (netsim.net.tc renders and applies the tc trees).

    netsim link impair NODE [--to NODE] [--delay MS] [--jitter MS] [--loss PCT] [--rate RATE]
    netsim link partition NODE --from NODE
    netsim link clear NODE
"""

from __future__ import annotations

import argparse

from netsim.cli.context import CliError, out
from netsim.net import tc

_FORMS = """netsim link impair NODE [--to NODE] [--delay MS] [--jitter MS] [--loss PCT] [--rate RATE]
       netsim link partition NODE --from NODE
       netsim link clear NODE"""
USAGE = "usage: " + _FORMS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as the other verbs
        raise CliError(f"error: {message}\n{USAGE}")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="netsim link", usage=_FORMS, add_help=True)
    ap.add_argument("action", choices=["impair", "partition", "clear"])
    ap.add_argument("node")
    ap.add_argument("--to")
    ap.add_argument("--from", dest="peer")
    ap.add_argument("--delay", type=float)
    ap.add_argument("--jitter", type=float)
    ap.add_argument("--loss", type=float)
    ap.add_argument("--rate")
    return ap


def run(ctx, words: list[str]) -> int:
    a = _parser().parse_args(words)
    from netsim.net.topology import ClusterConfig
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    names = {n.name for n in cfg.nodes}
    for name in (a.node, a.to, a.peer):
        if name is not None and name not in names:
            raise CliError(f'Error from server (NotFound): nodes "{name}" not found')
    if a.action == "clear":
        if any(v is not None for v in (a.to, a.peer, a.delay, a.jitter, a.loss, a.rate)):
            raise CliError(f"error: link clear takes only NODE\n{USAGE}")
        rule = None
    elif a.action == "partition":
        if a.peer is None or any(v is not None for v in (a.to, a.delay, a.jitter, a.loss,
                                                         a.rate)):
            raise CliError(f"error: link partition takes NODE --from NODE\n{USAGE}")
        rule = tc.Rule(peer=a.peer, partition=True)
    else:
        if a.peer is not None:
            raise CliError(f"error: link impair takes --to NODE, not --from\n{USAGE}")
        rule = tc.Rule(peer=a.to, delay_ms=a.delay, jitter_ms=a.jitter, loss_pct=a.loss,
                       rate=a.rate)
    if rule is not None:
        if rule.peer == a.node:
            raise CliError(f"error: {a.node} can't be impaired towards itself")
        try:
            tc.validate(rule)
        except tc.LinkError as e:
            raise CliError(str(e)) from e
    try:
        rules = apply(cfg, a.node, rule)
    except tc.LinkError as e:
        raise CliError(str(e)) from e
    if rule is None:
        out(f"node/{a.node} link cleared")
    else:
        out(f"node/{a.node} link {rule.describe()}")
    if rules and rule is not None and len(rules) > 1:
        out("".join(f"  also: {r.describe()}\n" for r in rules if r != rule).rstrip("\n"))
    return 0


def apply(cfg, node: str, rule: tc.Rule | None) -> list[tc.Rule]:
    """Set (rule) or clear (None) on `node`'s link; returns the node's rules now. Nothing is
    changed when the kernel can't do it."""
    from netsim.net.ledger import Ledger
    from netsim.net.topology import lan_port_name
    state = tc.load(cfg.name)
    rules = [] if rule is None else tc.merge(state.get(node, []), rule)
    node_ns = cfg.node_netns(node)
    if rules:
        why = tc.unsupported_reason(node_ns)
        if why:
            raise tc.LinkError(f"error: {why}")
    peers = {n.name: tc.Peer(n.name, n.ip, n.pod_cidr) for n in cfg.nodes}
    ledger = Ledger(cfg.name)
    for netns, dev, side in ((node_ns, "eth0", "node"),
                             (cfg.lan_netns, lan_port_name(node), "lan")):
        if rules:
            ledger.add("qdisc", netns=netns, dev=dev)
        tc.run_batch(netns, tc.render(dev, rules, side, peers))
    state[node] = rules
    tc.save(cfg.name, state)
    return rules
