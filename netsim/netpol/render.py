"""NetworkPolicies -> the iptables-restore text of one node's policy chains (pure).

What a CNI's policy agent does on each node (kube-router's network policy controller is
the model; Calico and Cilium do the same with their own means): every pod ON THIS NODE
that a policy selects gets a firewall chain per direction it is isolated in; that chain
jumps to the chain of every policy selecting it (a union: any one allowing is enough) and
rejects what none allowed. Everything lives in the filter table, entered from FORWARD
(and INPUT, for a pod's packets to its node), so it sees pod-to-pod traffic after
kube-proxy's DNAT (a Service's backend pod is what a policy matches, as upstream says) and
never sees what the node itself sends (OUTPUT): kubelet probes from the pod's own node
always pass, as with upstream CNIs.

    FORWARD, INPUT -j NETSIM-NWPLCY                (inserted out of band, like kube-proxy's)
    NETSIM-NWPLCY   established/related: RETURN (a reply is never re-judged);
                    -s <pod> -j NETSIM-EG-<pod>     egress of each isolated local pod
                    -d <pod> -j NETSIM-IN-<pod>     ingress of each isolated local pod
    NETSIM-IN-<pod> clear the allow mark, -j NETSIM-NPI-<policy> for each selecting
                    policy, RETURN when one set the mark, else REJECT ("default deny":
                    TCP with a reset, the rest with ICMP port unreachable — the kernel
                    rate-limits ICMP errors per peer, so a client trying many refused
                    TCP connections would otherwise wait for timeouts; a Service's
                    TCP packet: ICMP too, see the default deny's rules below)
    NETSIM-NPI-<policy> / NETSIM-NPE-<policy>: one rule per (peer, port) of each rule
                    setting the allow mark; an ipBlock with `except` gets its own
                    NETSIM-NPX-<hash> chain (RETURN for the excepts first)

Allowing never ACCEPTs: a packet that passes goes on through FORWARD (kube-proxy's
KUBE-FORWARD, the node's own policy) as before. The mark bit is 0x10000, beside
kube-proxy's 0x4000 (masquerade) and 0x8000 (drop), the bit kube-router uses.

Peers: pods by namespaceSelector and/or podSelector (their status.podIP; hostNetwork pods
and finished pods are no peers, as in upstream's model), ipBlock CIDRs. Ports: number,
range (endPort), or a name resolved from the destination pod's containerPorts (ingress:
the selected pod; egress: each peer pod; a name no destination declares matches nothing).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from netsim.api import selectors
from netsim.proxy.model import safe_comment

TOP_CHAIN = "NETSIM-NWPLCY"
POD_IN_PREFIX = "NETSIM-IN-"
POD_EG_PREFIX = "NETSIM-EG-"
POLICY_IN_PREFIX = "NETSIM-NPI-"
POLICY_EG_PREFIX = "NETSIM-NPE-"
EXCEPT_PREFIX = "NETSIM-NPX-"
PREFIXES = (POD_IN_PREFIX, POD_EG_PREFIX, POLICY_IN_PREFIX, POLICY_EG_PREFIX, EXCEPT_PREFIX)
ALLOW_MARK = "0x10000"

# What the node agent inserts at the top of FORWARD and INPUT, out of band (as kube-proxy
# its jump rules). INPUT: a local pod's packets to this node itself (its addresses, a
# hostNetwork endpoint behind a Service) meet the pod's egress policy, as with Calico;
# the node's own packets to its pods (kubelet probes) go through OUTPUT: never filtered.
JUMP_RULES = (
    ("filter", "FORWARD", ["-m", "comment", "--comment", "netsim network policies",
                           "-j", TOP_CHAIN]),
    ("filter", "INPUT", ["-m", "comment", "--comment",
                         "netsim network policies (pod to this node)", "-j", TOP_CHAIN]),
)


# IPVS mode: a pod's packets to a Service's ClusterIP reach INPUT before IPVS picks the
# real server (its LOCAL_IN hook runs after the filter table), and IPVS sends them on
# through OUTPUT, not FORWARD. So there INPUT skips what goes to a ClusterIP (kube-proxy's
# KUBE-CLUSTER-IP ipset) and the IPVS-forwarded packets are judged in OUTPUT, with the
# real server as destination: egress of the local client, ingress of a local backend (a
# backend on another node is judged in that node's FORWARD, as in every mode). As
# kube-router does with its OUTPUT rules for "traffic routed back by the service proxy".
IPVS_INPUT_CHAIN = "NETSIM-NWPLCY-INPUT"
IPVS_JUMP_RULES = (
    JUMP_RULES[0],
    ("filter", "INPUT", ["-m", "comment", "--comment",
                         "netsim network policies (pod to this node)", "-j", IPVS_INPUT_CHAIN]),
    ("filter", "OUTPUT", ["-m", "ipvs", "--ipvs", "--vdir", "ORIGINAL", "-m", "comment",
                          "--comment", "netsim network policies (forwarded by IPVS)",
                          "-j", TOP_CHAIN]),
)
IPVS_CLUSTER_IP_SET = "KUBE-CLUSTER-IP"


def jump_rules(ipvs: bool = False) -> tuple:
    """What the agent inserts out of band: JUMP_RULES, or IPVS_JUMP_RULES in IPVS mode."""
    return IPVS_JUMP_RULES if ipvs else JUMP_RULES


def _hash16(s: str) -> str:
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def is_policy_chain(name: str) -> bool:
    """A chain this renderer owns (the agent deletes stale ones of these only)."""
    return name in (TOP_CHAIN, IPVS_INPUT_CHAIN) or name.startswith(PREFIXES)


# --- the snapshot ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    node: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    # (name, protocol) -> containerPort
    named_ports: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Snapshot:
    """Everything one node's policy rules depend on."""

    node: str
    policies: tuple = ()          # admitted NetworkPolicy objects, sorted by ns/name
    pods: tuple = ()              # Pod, sorted by ns/name (every node's: peers are anywhere)
    namespaces: dict = field(default_factory=dict, hash=False, compare=False)  # name -> labels

    @classmethod
    def from_objects(cls, policies: Iterable[dict], pods: Iterable[dict],
                     namespaces: Iterable[dict], node: str) -> Snapshot:
        ns_labels = {}
        for ns in namespaces:
            md = ns.get("metadata") or {}
            ns_labels[md.get("name") or ""] = dict(md.get("labels") or {})
        out = []
        for p in pods:
            pod = pod_info(p)
            if pod is not None:
                out.append(pod)
        pols = sorted(policies, key=lambda o: (o["metadata"].get("namespace") or "",
                                                o["metadata"]["name"]))
        return cls(node, tuple(pols), tuple(sorted(out, key=lambda p: p.key)), ns_labels)


def pod_info(obj: dict) -> Pod | None:
    """A pod as policies see it, or None when it is none of theirs (no IP yet, host
    network, finished)."""
    md, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    ip = status.get("podIP")
    if not ip or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    ports = {}
    for c in spec.get("containers") or []:
        for cp in c.get("ports") or []:
            if cp.get("name") and cp.get("containerPort"):
                ports[(cp["name"], cp.get("protocol") or "TCP")] = cp["containerPort"]
    return Pod(md.get("namespace") or "default", md.get("name") or "", ip,
               spec.get("nodeName") or "", dict(md.get("labels") or {}), ports)


# --- selecting --------------------------------------------------------------------------------

def _types(policy: dict) -> list[str]:
    spec = policy.get("spec") or {}
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def selected(policy: dict, pods: Iterable[Pod]) -> list[Pod]:
    """The pods a policy applies to: its namespace's pods matching spec.podSelector."""
    ns = policy["metadata"].get("namespace") or "default"
    match = selectors.from_label_selector((policy.get("spec") or {}).get("podSelector") or {})
    return [p for p in pods if p.namespace == ns and match(p.labels)]


def peer_pods(peer: dict, policy_ns: str, snap: Snapshot) -> list[Pod]:
    """The pods a podSelector/namespaceSelector peer names (upstream's combinations:
    podSelector alone = the policy's namespace; namespaceSelector alone = every pod of
    those namespaces; both = the matching pods of the matching namespaces)."""
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    pod_match = selectors.from_label_selector(pod_sel) if pod_sel is not None else None
    if ns_sel is not None:
        ns_match = selectors.from_label_selector(ns_sel)
        in_ns = lambda p: ns_match(snap.namespaces.get(p.namespace, {}))  # noqa: E731
    else:
        in_ns = lambda p: p.namespace == policy_ns  # noqa: E731
    return [p for p in snap.pods if in_ns(p) and (pod_match is None or pod_match(p.labels))]


# --- rendering --------------------------------------------------------------------------------

def _q(text: str) -> str:
    return f'"{safe_comment(text, 255)}"'


@dataclass(frozen=True)
class _PortMatch:
    """`-p proto [-m proto --dport N[:M]]`, optionally only to one destination IP (a named
    port resolved for one pod)."""

    proto: str
    dport: str = ""
    dst: str = ""

    def args(self) -> str:
        out = f"-d {self.dst}/32 " if self.dst else ""
        out += f"-p {self.proto}"
        if self.dport:
            out += f" -m {self.proto} --dport {self.dport}"
        return out


def _port_matches(ports: list[dict], dest_pods: list[Pod] | None) -> list[_PortMatch] | None:
    """The port matches of a rule; None = every port and protocol (no `ports`). A named
    port becomes one match per destination pod declaring it (`dest_pods`; None when the
    destination is not known to be a pod: the name then matches nothing)."""
    if not ports:
        return None
    out: list[_PortMatch] = []
    for port in ports:
        proto = (port.get("protocol") or "TCP").lower()
        num, end = port.get("port"), port.get("endPort")
        if num is None:
            out.append(_PortMatch(proto))
        elif isinstance(num, int):
            out.append(_PortMatch(proto, f"{num}:{end}" if end and end > num else str(num)))
        else:
            for pod in dest_pods or []:
                resolved = pod.named_ports.get((num, proto.upper()))
                if resolved:
                    out.append(_PortMatch(proto, str(resolved), pod.ip))
    return out


class _Writer:
    def __init__(self) -> None:
        self.chains: list[str] = []
        self.rules: list[str] = []

    def chain(self, name: str) -> None:
        if name not in self.chains:
            self.chains.append(name)

    def rule(self, chain: str, text: str) -> None:
        self.rules.append(f"-A {chain} {text}")


def _policy_chain(w: _Writer, policy: dict, direction: str, targets: list[Pod],
                  snap: Snapshot) -> str | None:
    """Write one policy's chain for one direction; its name, or None when the policy
    allows nothing in that direction (then the pods' own chain rejects it all)."""
    md = policy["metadata"]
    ns, name = md.get("namespace") or "default", md["name"]
    ingress = direction == "Ingress"
    key = "ingress" if ingress else "egress"
    peer_key, addr = ("from", "-s") if ingress else ("to", "-d")
    chain = (POLICY_IN_PREFIX if ingress else POLICY_EG_PREFIX) + _hash16(f"{ns}/{name}/{key}")
    body: list[str] = []
    extra: list[tuple[str, list[str]]] = []
    mark = f"-j MARK --set-xmark {ALLOW_MARK}/{ALLOW_MARK}"
    for i, rule in enumerate((policy.get("spec") or {}).get(key) or []):
        comment = f"-m comment --comment {_q(f'{ns}/{name} {key}[{i}]')}"
        ports = rule.get("ports") or []
        peers = rule.get(peer_key) or []
        if not peers:
            # every source / destination; an egress named port resolves over all pods
            dests = targets if ingress else list(snap.pods)
            pms = _port_matches(ports, dests)
            for pm in [None] if pms is None else pms:
                body.append(f"{pm.args() + ' ' if pm else ''}{comment} {mark}")
            continue
        for j, peer in enumerate(peers):
            block = peer.get("ipBlock")
            if block is not None:
                pms = _port_matches(ports, targets if ingress else None)
                matches = [None] if pms is None else pms
                excepts = block.get("except") or []
                if not excepts:
                    for pm in matches:
                        body.append(f"{addr} {block['cidr']} "
                                    f"{pm.args() + ' ' if pm else ''}{comment} {mark}")
                    continue
                sub = EXCEPT_PREFIX + _hash16(f"{ns}/{name}/{key}/{i}/{j}")
                lines = [f"{addr} {e} {comment} -j RETURN" for e in excepts]
                lines += [f"{pm.args() + ' ' if pm else ''}{comment} {mark}" for pm in matches]
                if matches:
                    extra.append((sub, lines))
                    body.append(f"{addr} {block['cidr']} {comment} -j {sub}")
                continue
            pods = peer_pods(peer, ns, snap)
            for pod in pods:
                pms = _port_matches(ports, targets if ingress else [pod])
                for pm in [None] if pms is None else pms:
                    if pm and pm.dst and not ingress:
                        pm = _PortMatch(pm.proto, pm.dport)  # the -d is the peer's own
                    body.append(f"{addr} {pod.ip}/32 "
                                f"{pm.args() + ' ' if pm else ''}{comment} {mark}")
    if not body:
        return None
    w.chain(chain)
    for line in body:
        w.rule(chain, line)
    for sub, lines in extra:
        w.chain(sub)
        for line in lines:
            w.rule(sub, line)
    return chain


def directions(policy: dict) -> list[str]:
    """The policy's policyTypes this dataplane knows (Ingress, Egress)."""
    return [d for d in _types(policy) if d in ("Ingress", "Egress")]


def isolation(snap: Snapshot, local: list[Pod], render_policy,
              errors: list[tuple[dict, str]] | None) -> dict[str, dict[str, list]]:
    """{pod key: {direction: [(policy "ns/name", its chain or None)]}} for every local pod
    a policy selects, both backends' loop: `render_policy(policy, targets)` writes the
    policy's rules aside and returns ([(direction, chain or None)], commit); a policy
    that raises (a malformed object) is left out, listed in `errors`, and the others are
    served."""
    out: dict[str, dict[str, list]] = {}
    for policy in snap.policies:
        try:
            targets = selected(policy, local)
            if not targets:
                continue
            md = policy["metadata"]
            pname = f"{md.get('namespace') or 'default'}/{md['name']}"
            chains, commit = render_policy(policy, targets)
        except Exception as e:  # a malformed object: skip it, serve the others
            if errors is not None:
                errors.append((policy, f"{type(e).__name__}: {e}"))
            continue
        commit()
        for direction, chain in chains:
            for pod in targets:
                out.setdefault(pod.key, {}).setdefault(direction, []).append((pname, chain))
    return out


def render(snap: Snapshot, existing_chains: Iterable[str] = (),
           errors: list[tuple[dict, str]] | None = None, ipvs: bool = False) -> str:
    """The iptables-restore text (for `--noflush`) of this node's policy chains: every
    chain declared (so flushed) and filled; `existing_chains` this renderer owns that are
    no longer needed are flushed and deleted (-X). A policy that cannot be rendered (a
    malformed object) is left out and listed in `errors` as (policy, message). `ipvs`: the
    INPUT side chain of IPVS mode is written too (IPVS_JUMP_RULES)."""
    w = _Writer()
    w.chain(TOP_CHAIN)
    w.rule(TOP_CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "
                      '"replies and established connections" -j RETURN')
    local = [p for p in snap.pods if p.node == snap.node]
    pod_by_key = {p.key: p for p in local}

    def one(policy: dict, targets: list[Pod]):
        trial = _Writer()
        chains = [(d, _policy_chain(trial, policy, d, targets, snap)) for d in directions(policy)]

        def commit() -> None:
            for c in trial.chains:
                w.chain(c)
            w.rules += trial.rules
        return chains, commit
    isolated = isolation(snap, local, one, errors)
    pod_rules: list[tuple[str, str, list[str]]] = []
    for key in sorted(isolated):
        pod = pod_by_key[key]
        for direction in ("Egress", "Ingress"):
            pols = isolated[key].get(direction)
            if not pols:
                continue
            ingress = direction == "Ingress"
            chain = (POD_IN_PREFIX if ingress else POD_EG_PREFIX) + _hash16(
                f"{key}/{direction.lower()}")
            word = "ingress to" if ingress else "egress from"
            w.rule(TOP_CHAIN, f"{'-d' if ingress else '-s'} {pod.ip}/32 -m comment --comment "
                              f"{_q(f'{word} {key}')} -j {chain}")
            jumps = [f"-m comment --comment {_q(f'policy {pname}')} -j {pchain}"
                     for pname, pchain in pols if pchain]
            lines = []
            if jumps:  # else no policy allows anything this way: the reject alone
                lines = [f"-j MARK --set-xmark 0x0/{ALLOW_MARK}", *jumps,
                         f"-m mark --mark {ALLOW_MARK}/{ALLOW_MARK} -m comment --comment "
                         f"{_q('allowed by a policy')} -j RETURN"]
            deny = _q(f"default deny {direction.lower()} {word.split()[1]} {key}")
            # A Service's packet (ctstate DNAT) is refused with ICMP port unreachable, TCP
            # too: the kernel sends the reset for a packet that came in through a bridge
            # port (a client pod on the endpoint's node) straight out of that port, past the
            # NAT hooks, so the client got a reset from the pod's address, not the
            # ClusterIP's, ignored it and retried its SYN (the connection hung 3 s or, on a
            # retry, went to another endpoint). ICMP errors pass the NAT hooks: un-DNATed.
            # IPVS mode: what IPVS forwarded (its DNAT is not conntrack's) likewise.
            not_nat = "-m conntrack ! --ctstate DNAT" + (" -m ipvs ! --ipvs" if ipvs else "")
            lines += [f"-p tcp {not_nat} -m comment --comment {deny} "
                      "-j REJECT --reject-with tcp-reset",
                      f"-m comment --comment {deny} -j REJECT"]
            pod_rules.append((chain, direction, lines))
    for chain, _, lines in pod_rules:
        w.chain(chain)
        for line in lines:
            w.rule(chain, line)
    if ipvs:
        w.chain(IPVS_INPUT_CHAIN)
        w.rule(IPVS_INPUT_CHAIN, f"-m set --match-set {IPVS_CLUSTER_IP_SET} dst,dst -m comment "
                                 '--comment "to a Service: judged after IPVS, in OUTPUT" -j RETURN')
        w.rule(IPVS_INPUT_CHAIN, f"-j {TOP_CHAIN}")
    stale = sorted(c for c in existing_chains if is_policy_chain(c) and c not in w.chains)
    # declaration order: the top chain, then sorted, as kube-proxy writes its chains
    chains = [TOP_CHAIN] + sorted(c for c in w.chains if c != TOP_CHAIN)
    out = ["*filter"]
    out += [f":{c} - [0:0]" for c in chains + stale]
    # rules grouped per chain in declaration order, each chain's rules in written order
    by_chain: dict[str, list[str]] = {c: [] for c in chains}
    for r in w.rules:
        by_chain[r.split(" ", 2)[1]].append(r)
    for c in chains:
        out += by_chain[c]
    out += [f"-X {c}" for c in stale]
    out.append("COMMIT")
    return "\n".join(out) + "\n"
