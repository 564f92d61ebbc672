"""Per-policy packet counters, read from every node's policy rules (`netsim netpol stats`).

Every rule a NetworkPolicy contributes (comment "ns/name ingress[i]") and every default
deny (comment "default deny ingress to ns/pod") has a counter: iptables keeps one per rule
anyway, the nft renderer writes `counter`. They are read inside each node's netns: the
filter table's NETSIM-* chains with python-iptables (legacy tables; `iptables-save -c` when
it is missing or the backend is nft), or `nft -j list table ip netsim-netpol`. Only new
connections reach these rules (replies and established connections pass before them), so
the packets are mostly first packets: connections, for TCP; datagrams until a reply, for
UDP. A counter restarts from zero when its chain is rewritten (the policy changed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from netsim.netpol import nft
from netsim.netpol.explain import explain
from netsim.netpol.render import Snapshot, directions, is_policy_chain, selected


@dataclass(frozen=True)
class RuleCount:
    chain: str
    comment: str
    packets: int
    bytes: int


_SAVE = re.compile(r'^\[(\d+):(\d+)\] -A (\S+) .*--comment (?:"([^"]*)"|(\S+))')


def parse_iptables_save(text: str) -> list[RuleCount]:
    """The policy chains' rules of `iptables-save -c -t filter` output."""
    out = []
    for line in text.splitlines():
        m = _SAVE.match(line)
        if m and is_policy_chain(m.group(3)):
            out.append(RuleCount(m.group(3), m.group(4) if m.group(4) is not None else m.group(5),
                                 int(m.group(1)), int(m.group(2))))
    return out


def parse_nft_json(text: str) -> list[RuleCount]:
    """The counted rules of `nft -j list table ip netsim-netpol` output."""
    out = []
    for item in json.loads(text or "{}").get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        for e in rule.get("expr") or []:
            if isinstance(e, dict) and "counter" in e:
                c = e["counter"] or {}
                out.append(RuleCount(rule.get("chain", ""), rule.get("comment", ""),
                                     int(c.get("packets", 0)), int(c.get("bytes", 0))))
                break
    return out


def _iptc_counts(netns: str) -> list[RuleCount]:
    from netsim.net import pyiptables  # noqa: PLC0415 - optional

    iptc = pyiptables.load()
    from pyroute2 import netns as pnetns  # noqa: PLC0415

    pnetns.pushns(netns)
    try:
        table = iptc.Table(iptc.Table.FILTER, autocommit=False)
        table.refresh()
        out = []
        for chain in table.chains:
            if not is_policy_chain(chain.name):
                continue
            for rule in chain.rules:
                comment = next((m.comment for m in rule.matches if m.name == "comment"), "")
                if comment:
                    pkts, byts = rule.get_counters()
                    out.append(RuleCount(chain.name, comment, int(pkts), int(byts)))
        return out
    finally:
        pnetns.popns()


def node_counts(netns: str, backend: str) -> list[RuleCount]:
    """This node's policy rule counters (`backend`: netsim.netpol.agent.backend_for)."""
    from netsim.proxy.apply import Iptables, Nft  # noqa: PLC0415 - the impure half

    if backend == "nftables":
        p = Nft(netns=netns).run("-j", "list", "table", nft.FAMILY, nft.TABLE)
        return parse_nft_json(p.stdout) if p.returncode == 0 else []
    ipt = Iptables(netns=netns)  # refuses the root netns
    if ipt.prefix == "iptables-legacy":
        try:
            return _iptc_counts(netns)
        except Exception:  # no python-iptables, or it cannot read this table
            pass
    return parse_iptables_save(ipt.save("filter", counters=True))


# --- the summary ------------------------------------------------------------------------------

@dataclass
class PolicyStats:
    namespace: str
    name: str
    directions: tuple[str, ...]
    pods: int
    allowed_packets: int = 0
    allowed_bytes: int = 0
    denied_packets: int = 0  # default denies of the pods it isolates (shared with the
    denied_bytes: int = 0    # other policies isolating them)


@dataclass
class PodDenies:
    namespace: str
    pod: str
    direction: str
    policies: list[str] = field(default_factory=list)
    packets: int = 0
    bytes: int = 0


def summarize(counts: Iterable[RuleCount], snap: Snapshot
              ) -> tuple[list[PolicyStats], list[PodDenies]]:
    """Counters of every node -> (a row per policy, a row per isolated pod and direction).

    A policy's ALLOWED are its own rules' counters; its DENIED are the default denies of
    the pods it selects in the directions it isolates (packets no policy selecting that
    pod allowed: every policy isolating the pod shows them)."""
    allowed: dict[tuple[str, str], list[int]] = {}
    denied: dict[tuple[str, str, str], list[int]] = {}  # (ns, pod, direction)
    for c in counts:
        e = explain(c.chain, f'comment "{c.comment}"')
        if e is None:
            continue
        if e.kind == "policy-rule":
            a = allowed.setdefault((f"{e.namespace}/{e.name}", e.direction), [0, 0])
        elif e.kind == "default-deny":
            a = denied.setdefault((e.namespace, e.name, e.direction), [0, 0])
        else:
            continue
        a[0] += c.packets
        a[1] += c.bytes
    policies, pods = [], {}
    for pol in snap.policies:
        md = pol["metadata"]
        ns, name = md.get("namespace") or "default", md["name"]
        try:
            dirs = tuple(directions(pol))
            targets = selected(pol, snap.pods)
        except Exception:  # a malformed object: the agents left it out too
            continue
        row = PolicyStats(ns, name, dirs, len(targets))
        for d in dirs:
            a = allowed.get((f"{ns}/{name}", d.lower()), [0, 0])
            row.allowed_packets += a[0]
            row.allowed_bytes += a[1]
            for p in targets:
                k = (p.namespace, p.name, d.lower())
                pd = pods.setdefault(k, PodDenies(p.namespace, p.name, d))
                pd.policies.append(name)
                dn = denied.get(k, [0, 0])
                row.denied_packets += dn[0]
                row.denied_bytes += dn[1]
        policies.append(row)
    for k, (pk, by) in denied.items():
        pd = pods.setdefault(k, PodDenies(k[0], k[1], k[2].capitalize()))
        pd.packets, pd.bytes = pk, by
    return policies, [pods[k] for k in sorted(pods)]
