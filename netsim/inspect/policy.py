"""Which NetworkPolicy stopped a traced packet, named from the rules that matched.

Both NetworkPolicy backends (netsim/netpol/render.py for iptables, netsim/netpol/nft.py for
nftables) write the same comments: a pod's isolation chain jumps to each selecting
policy's chain with the comment `policy <ns>/<name>`, and ends with a reject commented
`default deny ingress to <ns>/<pod>` (or `egress from`). A packet no policy allowed hits
that reject; what to tell the user is the pod, the direction and the policies that
isolate it (none of which allowed the packet). `explain` reads those comments from the hops
(the one function to swap for the netpol room's own namer when it has one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMENT = re.compile(r'(?:--comment|comment) "([^"]*)"')
_DENY = re.compile(r"^default deny (ingress|egress) (to|from) (\S+)$")
_POLICY = re.compile(r"^policy (\S+)$")


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


def comment(rule: str) -> str:
    m = _COMMENT.search(rule)
    return m.group(1) if m else ""


def explain(hops: list, index: int) -> Denial | None:
    """The Denial when hops[index] (the rejecting rule; objects with .chain and .rule) is
    a NetworkPolicy default deny; the policies are the `policy ns/name` jumps taken in the
    same chain before it."""
    h = hops[index]
    m = _DENY.match(comment(h.rule))
    if not m:
        return None
    policies = []
    for prev in hops[:index]:
        if prev.chain == h.chain:
            p = _POLICY.match(comment(prev.rule))
            if p and p.group(1) not in policies:
                policies.append(p.group(1))
    return Denial(m.group(1), m.group(3), tuple(policies))
