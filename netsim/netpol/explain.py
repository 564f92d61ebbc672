"""Which NetworkPolicy (or which default deny) a policy rule stands for (pure).

Both policy renderers (netsim/netpol/render.py: iptables; netsim/netpol/nft.py: nftables)
write the same comments, and this module reads them back:

    "x/allow-y ingress[0]"            a rule of policy x/allow-y's ingress[0]: it ALLOWS
    "policy x/allow-y"                a pod's chain jumping to that policy's rules
    "default deny ingress to x/a"     the REJECT at the end of pod x/a's ingress chain:
    "default deny egress from x/a"    no policy selecting x/a allowed the packet
    "ingress to x/a" / "egress from x/a"   the dispatch into that pod's chain
    "replies and established connections"  the conntrack shortcut (never a policy's doing)

How to call it (e.g. from the trace of netsim/inspect, for the hop where a packet was
dropped):

    from netsim.netpol.explain import explain
    e = explain(hop.chain, hop.rule)          # iptables: chain + rule text (or comment)
    e = explain("ingress-KNLBO24S-x/a", 'counter reject comment "default deny ingress to x/a"')
    e = explain(chain, handle=7, listing=text)  # nft: a rule handle (`nft monitor trace`)
                                                # and `nft -a list table ip netsim-netpol`
    if e is not None:                         # None: not a policy rule at all
        print(e)            # 'dropped by the default deny of x/a (ingress): no NetworkPolicy
                            #  selecting the pod allows it'
        e.kind, e.namespace, e.name, e.direction, e.rule_index, e.verdict

`rule` may be the whole rule as iptables-save / `nft list` print it (with or without the
`-A CHAIN` / `add rule ...` prefix) or just the comment text. When the comment is missing
(a rule text cut short), the chain name alone still names the pod or the policy in nft mode
(`ingress-<H>-ns/pod`, `policy-ingress-<H>-ns/name`); iptables chain names are hashes, so
there the comment is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Explanation", "explain", "rule_by_handle", "comment_of"]

_QUOTED = re.compile(r'(?:^|\s)(?:--)?comment "([^"]*)"')
_BARE = re.compile(r"(?:^|\s)--comment (\S+)")
_ALLOW = re.compile(r"^(?P<ns>[^/\s]+)/(?P<name>\S+) (?P<dir>ingress|egress)\[(?P<i>\d+)\]$")
_JUMP = re.compile(r"^policy (?P<ns>[^/\s]+)/(?P<name>\S+)$")
_DENY = re.compile(r"^default deny (?P<dir>ingress|egress) (?:to|from) (?P<ns>[^/\s]+)/(?P<name>\S+)$")
_DISPATCH = re.compile(r"^(?P<dir>ingress|egress) (?:to|from) (?P<ns>[^/\s]+)/(?P<name>\S+)$")
# nft chain names (netsim/netpol/nft.py): prefix, 8-character hash, ns/name
_NFT_POD_CHAIN = re.compile(r"^(?P<dir>ingress|egress)-[A-Z2-7]{8}-(?P<ns>[^/]+)/(?P<name>.+)$")
_NFT_POLICY_CHAIN = re.compile(
    r"^policy-(?P<dir>ingress|egress)-[A-Z2-7]{8}-(?P<ns>[^/]+)/(?P<name>.+)$")
_HANDLE = re.compile(r"# handle (\d+)\s*$")


@dataclass(frozen=True)
class Explanation:
    """What a policy rule is.

    kind: "policy-rule" (a rule of a NetworkPolicy: it allows), "policy" (the jump to a
    policy's rules), "default-deny" (the REJECT of a pod no selecting policy allowed),
    "pod" (the dispatch into an isolated pod's chain), "allowed" (iptables: the RETURN
    once some policy's rule allowed it; the rule before it names the policy),
    "established" (replies and established connections pass). namespace/name: the policy's for policy kinds, the
    pod's for "default-deny" and "pod". verdict: "allow", "reject" or "" (not final)."""

    kind: str
    namespace: str = ""
    name: str = ""
    direction: str = ""  # "ingress" / "egress"
    rule_index: int | None = None
    verdict: str = ""

    @property
    def policy(self) -> str | None:
        """"ns/name" of the NetworkPolicy, when the rule belongs to one."""
        if self.kind in ("policy-rule", "policy"):
            return f"{self.namespace}/{self.name}"
        return None

    def __str__(self) -> str:
        if self.kind == "policy-rule":
            return (f"allowed by NetworkPolicy {self.namespace}/{self.name} "
                    f"({self.direction}[{self.rule_index}])")
        if self.kind == "policy":
            return f"checked against NetworkPolicy {self.namespace}/{self.name} ({self.direction})"
        if self.kind == "default-deny":
            return (f"dropped by the default deny of {self.namespace}/{self.name} "
                    f"({self.direction}): no NetworkPolicy selecting the pod allows it")
        if self.kind == "allowed":
            return f"allowed by a NetworkPolicy ({self.direction})"
        if self.kind == "pod":
            return f"{self.direction} of pod {self.namespace}/{self.name}, isolated by policies"
        return "a reply or an established connection: policies judge only new connections"


def comment_of(rule: str) -> str:
    """The comment of a rule text, or the text itself when it holds no comment match (it
    is then taken for the comment)."""
    m = _QUOTED.search(rule) or _BARE.search(rule)
    return m.group(1) if m else rule.strip()


def _direction_of_chain(chain: str) -> str:
    if chain.startswith(("NETSIM-IN-", "NETSIM-NPI-", "ingress-", "policy-ingress-",
                         "forward-ingress", "ingress-pods")):
        return "ingress"
    if chain.startswith(("NETSIM-EG-", "NETSIM-NPE-", "egress-", "policy-egress-",
                         "forward-egress", "input-egress", "egress-pods")):
        return "egress"
    return ""


def explain(chain: str, rule: str = "", *, handle: int | None = None,
            listing: str = "") -> Explanation | None:
    """Name the policy or the default deny behind one rule; None for a rule that is not
    the policy agent's (kube-proxy's, say). See the module docstring."""
    if handle is not None:
        found = rule_by_handle(listing, handle)
        if found is None:
            return None
        chain, rule = found
    comment = comment_of(rule) if rule else ""
    if comment:
        if m := _ALLOW.match(comment):
            return Explanation("policy-rule", m["ns"], m["name"], m["dir"], int(m["i"]), "allow")
        if m := _DENY.match(comment):
            return Explanation("default-deny", m["ns"], m["name"], m["dir"], verdict="reject")
        if m := _JUMP.match(comment):
            return Explanation("policy", m["ns"], m["name"], _direction_of_chain(chain))
        if m := _DISPATCH.match(comment):
            return Explanation("pod", m["ns"], m["name"], m["dir"])
        if comment == "allowed by a policy":  # iptables: the RETURN after the marking rule
            return Explanation("allowed", direction=_direction_of_chain(chain), verdict="allow")
        if comment == "replies and established connections":
            return Explanation("established", direction=_direction_of_chain(chain),
                               verdict="allow")
    # no (known) comment: the nft chain names say enough
    if m := _NFT_POLICY_CHAIN.match(chain):
        return Explanation("policy-rule", m["ns"], m["name"], m["dir"], verdict="allow")
    if m := _NFT_POD_CHAIN.match(chain):
        final = "reject" in rule.split() or "REJECT" in rule.split()
        return Explanation("default-deny" if final else "pod", m["ns"], m["name"], m["dir"],
                           verdict="reject" if final else "")
    return None


def rule_by_handle(listing: str, handle: int) -> tuple[str, str] | None:
    """(chain, rule text) of the rule with `handle` in `nft -a list table ...` output."""
    chain = ""
    for line in listing.splitlines():
        s = line.strip()
        m = _HANDLE.search(s)
        body = s[:m.start()].strip() if m else s
        if body.startswith("chain ") and body.endswith("{"):
            chain = body.split()[1]
            continue
        if m and int(m.group(1)) == handle and chain and not body.startswith("table "):
            return chain, body
    return None
