"""Which NetworkPolicy stopped a traced packet, named from the rules that matched.

Both NetworkPolicy backends (netsim/netpol/render.py for iptables, netsim/netpol/nft.py for
nftables) write the same comments, and the netpol room's namer reads them back
(netsim.netpol.explain.explain: a rule -> "default-deny" of pod ns/name, "policy" ns/name,
...). A packet no policy allowed hits a pod's default deny; what the trace tells the user
is the pod, the direction and the policies that isolate it (the `policy` jumps taken in
that pod's chain before the reject: none of them allowed the packet).
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.netpol.explain import explain as explain_rule


@dataclass(frozen=True)
class Denial:
    direction: str  # ingress / egress
    pod: str  # "ns/name" of the isolated pod
    policies: tuple[str, ...]  # "ns/name" of the policies isolating it (in rule order)

    def text(self) -> str:
        word = "to" if self.direction == "ingress" else "from"
        pols = ", ".join(f"NetworkPolicy {p}" for p in self.policies) or "no policy"
        return (f"default deny {self.direction} {word} pod/{self.pod} (isolated by {pols}; "
                f"no rule of {'them' if len(self.policies) > 1 else 'it'} allows this packet)")


def explain(hops: list, index: int) -> Denial | None:
    """The Denial when hops[index] (the rejecting rule; objects with .chain and .rule) is
    a NetworkPolicy default deny; the policies are the `policy ns/name` jumps taken in the
    same chain before it."""
    h = hops[index]
    e = explain_rule(h.chain, h.rule)
    if e is None or e.kind != "default-deny":
        return None
    policies: list[str] = []
    for prev in hops[:index]:
        if prev.chain == h.chain:
            p = explain_rule(prev.chain, prev.rule)
            if p is not None and p.kind == "policy" and p.policy not in policies:
                policies.append(p.policy)
    return Denial(e.direction, f"{e.namespace}/{e.name}", tuple(policies))


def with_selecting(denial: Denial, policies: list[dict], pods: list[dict]) -> Denial:
    """The Denial naming the policies that isolate its pod in its direction, from the API
    objects, when the rules did not (a policy whose rules allow nothing renders no jump)."""
    from netsim.netpol.render import _types, pod_info, selected  # noqa: PLC0415
    if denial.policies:
        return denial
    ns, _, name = denial.pod.partition("/")
    pod = next((pod_info(p) for p in pods if p["metadata"].get("namespace") == ns
                and p["metadata"]["name"] == name), None)
    if pod is None:
        return denial
    found = [f"{p['metadata'].get('namespace') or 'default'}/{p['metadata']['name']}"
             for p in policies if denial.direction.capitalize() in _types(p)
             and selected(p, [pod])]
    return Denial(denial.direction, denial.pod, tuple(sorted(found)))
