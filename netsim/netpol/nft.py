"""NetworkPolicies -> one node's `nft -f` transaction, in a table of their own (pure).

The nftables twin of netsim/netpol/render.py, for clusters whose kube-proxy runs in
nftables mode: there the node holds no iptables rules at all (kube-proxy writes `table ip
kube-proxy`), and the policies must not bring the iptables backends into the netns (a
netns with both legacy and nft rules is the classic kube-proxy bug), so they get native
rules in `table ip netsim-netpol` (ip, not inet: netsim is IPv4 only, like the
kube-proxy table beside it). Same semantics, same comments:

    forward-egress   hook forward, priority 0   ct established/related: accept; jump egress-pods
    input-egress     hook input,   priority 0   (a pod's packets to its node) the same
    forward-ingress  hook forward, priority 1   ct established/related: accept; jump ingress-pods
    egress-pods      ip saddr <pod> jump egress-<H>-<ns>/<pod>     each isolated local pod
    ingress-pods     ip daddr <pod> jump ingress-<H>-<ns>/<pod>
    ingress-<H>-ns/pod   jump policy-ingress-<H>-<ns>/<policy> for each selecting policy
                         (comment "policy ns/name"), then counter reject (TCP
                         with a reset unless a Service's DNAT packet; comment
                         "default deny ingress to ns/pod")
    policy-ingress-<H>-ns/name  one rule per (peer, port): ... counter accept
                         (comment "ns/name ingress[i]")
    pods-<H>         a set of pod IPs per peer selector (namespace x podSelector x
                     namespaceSelector), shared by every rule naming that selector

Egress and ingress live in base chains of their own, so an `accept` (a policy allowed it)
ends only that direction's judgement: nftables runs every base chain of a hook, and a
packet passes when none of them drops it. So no allow mark is needed (the iptables rules
need one because ACCEPT there would skip kube-proxy's FORWARD rules). Every allow rule and
every default deny carries a counter: `netsim netpol stats` reads them.

A pod's labels changing, or a pod coming or going, changes set elements only; a policy
changing rewrites its own chain (and the chains of the pods it starts or stops
selecting): `render_diff` writes just that, one transaction (nft is atomic).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from netsim.api.selectors import to_string
from netsim.netpol.render import (
    Snapshot,
    _port_matches,
    _PortMatch,
    directions,
    isolation,
    peer_pods,
)
from netsim.proxy.model import safe_comment

FAMILY = "ip"
TABLE = "netsim-netpol"
T = f"{FAMILY} {TABLE}"

EGRESS_PODS = "egress-pods"
INGRESS_PODS = "ingress-pods"
# (name, hook, priority, dispatch chain)
BASE_CHAINS = (
    ("forward-egress", "forward", 0, EGRESS_PODS),
    ("input-egress", "input", 0, EGRESS_PODS),
    ("forward-ingress", "forward", 1, INGRESS_PODS),
)
POD_PREFIX = {"Ingress": "ingress-", "Egress": "egress-"}
POLICY_PREFIX = {"Ingress": "policy-ingress-", "Egress": "policy-egress-"}
SET_PREFIX = "pods-"
NAME_MAX = 200  # nft names are at most 255 bytes; the hash keeps truncated ones unique
COMMENT_MAX = 128  # NFTNL_UDATA_COMMENT_MAXLEN


def _hash8(s: str) -> str:
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:8]


def _name(prefix: str, key: str) -> str:
    return f"{prefix}{_hash8(key)}-{key}"[:NAME_MAX]


def _c(text: str) -> str:
    return f'comment "{safe_comment(text, COMMENT_MAX)}"'


@dataclass
class NftModel:
    """What the table holds: base chain specs, every chain's rules (in order), every
    set's elements. Equal models mean equal kernel state."""

    base: dict[str, str] = field(default_factory=dict)       # name -> "{ type ... }"
    chains: dict[str, list[str]] = field(default_factory=dict)  # name -> rule texts
    sets: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # (comment, ips)

    def chain(self, name: str) -> list[str]:
        return self.chains.setdefault(name, [])


def _set_comment(pod_sel: dict | None, ns_sel: dict | None, policy_ns: str) -> str:
    """"pods pod=b in namespaces ns notin (x)", "every pod in namespace x", ..."""
    pods = to_string(pod_sel) if pod_sel else ""
    nss = to_string(ns_sel) if ns_sel else ""
    where = (f"namespace {policy_ns}" if ns_sel is None
             else f"namespaces {nss}" if nss else "every namespace")
    return f"{'pods ' + pods if pods else 'every pod'} in {where}"


def _peer_set(m: NftModel, peer: dict, policy_ns: str, snap: Snapshot) -> str:
    """The name of the set holding the IPs of a pod peer's pods (made on first use)."""
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    ident = json.dumps([None if ns_sel is not None else policy_ns, pod_sel, ns_sel],
                       sort_keys=True)
    name = SET_PREFIX + base64.b32encode(hashlib.sha256(ident.encode()).digest()).decode()[:16]
    if name not in m.sets:
        m.sets[name] = (_set_comment(pod_sel, ns_sel, policy_ns), frozenset(p.ip for p in peer_pods(peer, policy_ns, snap)))
    return name


def _ports(pm: _PortMatch | None, with_dst: bool = True) -> str:
    if pm is None:
        return ""
    out = f"ip daddr {pm.dst} " if pm.dst and with_dst else ""
    if pm.dport:
        return out + f"{pm.proto} dport {pm.dport.replace(':', '-')} "
    return out + f"meta l4proto {pm.proto} "


def _policy_chain(m: NftModel, policy: dict, direction: str, targets, snap: Snapshot) -> str | None:
    """Write one policy's chain for one direction; None when it allows nothing that way."""
    md = policy["metadata"]
    ns, name = md.get("namespace") or "default", md["name"]
    ingress = direction == "Ingress"
    key = "ingress" if ingress else "egress"
    peer_key, addr = ("from", "saddr") if ingress else ("to", "daddr")
    body: list[str] = []
    for i, rule in enumerate((policy.get("spec") or {}).get(key) or []):
        tail = f"counter accept {_c(f'{ns}/{name} {key}[{i}]')}"
        ports = rule.get("ports") or []
        peers = rule.get(peer_key) or []
        if not peers:
            pms = _port_matches(ports, targets if ingress else list(snap.pods))
            body += [f"{_ports(pm)}{tail}" for pm in ([None] if pms is None else pms)]
            continue
        for peer in peers:
            block = peer.get("ipBlock")
            if block is not None:
                pms = _port_matches(ports, targets if ingress else None)
                match = f"ip {addr} {block['cidr']} "
                excepts = block.get("except") or []
                if excepts:
                    match += f"ip {addr} != {{ {', '.join(excepts)} }} "
                body += [f"{match}{_ports(pm)}{tail}" for pm in ([None] if pms is None else pms)]
                continue
            pms = _port_matches(ports, targets if ingress else None)
            if pms is not None and not ingress and any(
                    isinstance(p.get("port"), str) for p in ports):
                # an egress named port resolves per peer pod: one address each
                for pod in peer_pods(peer, ns, snap):
                    for pm in _port_matches(ports, [pod]) or []:
                        body.append(f"ip daddr {pod.ip} {_ports(pm, with_dst=False)}{tail}")
                continue
            sname = _peer_set(m, peer, ns, snap)
            body += [f"ip {addr} @{sname} {_ports(pm)}{tail}"
                     for pm in ([None] if pms is None else pms)]
    if not body:
        return None
    chain = _name(POLICY_PREFIX[direction], f"{ns}/{name}")
    m.chains[chain] = body
    return chain


def build(snap: Snapshot, errors: list[tuple[dict, str]] | None = None) -> NftModel:
    """The table for this node's snapshot. A policy that cannot be rendered is left out
    (and listed in `errors` as (policy, message)); the others are served."""
    m = NftModel()
    m.chains[EGRESS_PODS] = []
    m.chains[INGRESS_PODS] = []
    local = [p for p in snap.pods if p.node == snap.node]
    by_key = {p.key: p for p in local}

    def one(policy: dict, targets: list):
        trial = NftModel(sets=dict(m.sets))
        chains = [(d, _policy_chain(trial, policy, d, targets, snap)) for d in directions(policy)]

        def commit() -> None:
            m.chains.update(trial.chains)
            m.sets.update(trial.sets)
        return chains, commit
    isolated = isolation(snap, local, one, errors)
    for key in sorted(isolated):
        pod = by_key[key]
        for direction in ("Egress", "Ingress"):
            pols = isolated[key].get(direction)
            if not pols:
                continue
            ingress = direction == "Ingress"
            chain = _name(POD_PREFIX[direction], key)
            word = "ingress to" if ingress else "egress from"
            m.chains[INGRESS_PODS if ingress else EGRESS_PODS].append(
                f"ip {'daddr' if ingress else 'saddr'} {pod.ip} jump {chain} {_c(f'{word} {key}')}")
            m.chains[chain] = [f"jump {pchain} {_c(f'policy {pname}')}"
                               for pname, pchain in pols if pchain]
            deny = _c(f"default deny {direction.lower()} {word.split()[1]} {key}")
            m.chains[chain] += [f"meta l4proto tcp ct status ! dnat counter reject with tcp reset "
                                f"{deny}",  # a Service's packet: ICMP (why: render.py's default deny)
                                f"counter reject {deny}"]
    for name, hook, prio, dispatch in BASE_CHAINS:
        m.base[name] = f"{{ type filter hook {hook} priority {prio} ; policy accept ; }}"
        m.chains[name] = [f"ct state established,related accept "
                          f"{_c('replies and established connections')}"]
        if m.chains[dispatch]:  # (an empty chain is never jumped to)
            m.chains[name].append(f"jump {dispatch}")
    return m


def _chain_order(m: NftModel) -> list[str]:
    """Base chains, then the dispatch chains, then the rest sorted (as kube-proxy writes)."""
    fixed = [b[0] for b in BASE_CHAINS] + [EGRESS_PODS, INGRESS_PODS]
    return fixed + sorted(c for c in m.chains if c not in fixed)


def _chain_decl(m: NftModel, c: str) -> str:
    spec = m.base.get(c)
    return f"add chain {T} {c}" + (f" {spec}" if spec else "")


def _set_decl(name: str, comment: str) -> str:
    return f"add set {T} {name} {{ type ipv4_addr ; {_c(comment)} ; }}"


def _elements(op: str, name: str, ips) -> list[str]:
    ips = sorted(ips, key=lambda ip: tuple(int(x) for x in ip.split(".")))
    return [f"{op} element {T} {name} {{ {', '.join(ips)} }}"] if ips else []


def render_full(m: NftModel) -> str:
    """The whole table in one transaction: created (or replaced: `add`+`delete`+`add`, so
    it also works when the table is not there), chains, sets, elements, rules."""
    out = [f"add table {T}", f"delete table {T}",
           f"add table {T} {{ {_c('netsim NetworkPolicy enforcement')} ; }}"]
    order = _chain_order(m)
    out += [_chain_decl(m, c) for c in order]
    for name in sorted(m.sets):
        out.append(_set_decl(name, m.sets[name][0]))
        out += _elements("add", name, m.sets[name][1])
    for c in order:
        out += [f"add rule {T} {c} {r}" for r in m.chains[c]]
    return "\n".join(out) + "\n"


def render_diff(old: NftModel, new: NftModel) -> str:
    """The transaction that turns `old` (what the table holds) into `new`; "" when they
    are equal. New chains and sets first (rules may jump to them), elements diffed,
    changed chains flushed and refilled, then what is gone flushed and deleted (the
    kernel drops a chain's or set's references within the transaction)."""
    if old.base != new.base:
        return render_full(new)
    order = _chain_order(new)
    added = [c for c in order if c not in old.chains]
    changed = [c for c in order if c in old.chains and old.chains[c] != new.chains[c]]
    gone = sorted(c for c in old.chains if c not in new.chains)
    out = [_chain_decl(new, c) for c in added]
    for name in sorted(new.sets):
        comment, ips = new.sets[name]
        if name not in old.sets:
            out.append(_set_decl(name, comment))
            out += _elements("add", name, ips)
            continue
        out += _elements("delete", name, old.sets[name][1] - ips)
        out += _elements("add", name, ips - old.sets[name][1])
    for c in changed:
        out.append(f"flush chain {T} {c}")
    for c in added + changed:
        out += [f"add rule {T} {c} {r}" for r in new.chains[c]]
    out += [f"flush chain {T} {c}" for c in gone]
    out += [f"delete chain {T} {c}" for c in gone]
    out += [f"delete set {T} {s}" for s in sorted(old.sets) if s not in new.sets]
    return "\n".join(out) + "\n" if out else ""


def render(snap: Snapshot) -> str:
    """The full transaction for a snapshot (what the golden files hold)."""
    return render_full(build(snap))
