"""Per-node connection counters of kube-proxy's endpoint chains (for `netsim proxy stats`).

Each node's kube-proxy DNATs the first packet of every new connection in one KUBE-SEP-…
chain per endpoint, so that rule's packet counter is the number of connections this node
sent to that endpoint (later packets of a connection never traverse the nat table).
Counters are read inside each node's netns with python-iptables (legacy tables), or by
parsing `iptables-save -c` when python-iptables is missing or the backend is nft. They
restart from zero when kube-proxy rewrites the endpoint chain (the service changed).
"""

from __future__ import annotations

import re

from netsim.proxy.apply import Iptables
from netsim.proxy.iptables import SEP_PREFIX

_SAVE_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (KUBE-SEP-\S+) .*-j DNAT --to-destination (\S+)")


def _counters_iptc(netns: str) -> dict[str, int]:
    """{SEP chain: packets of its DNAT rule} via python-iptables inside `netns`."""
    from netsim.net import pyiptables  # noqa: PLC0415 - optional

    iptc = pyiptables.load()
    from pyroute2 import netns as pnetns  # noqa: PLC0415

    pnetns.pushns(netns)
    try:
        table = iptc.Table(iptc.Table.NAT, autocommit=False)
        table.refresh()
        found: dict[str, int] = {}
        for chain in table.chains:
            if not chain.name.startswith(SEP_PREFIX):
                continue
            for rule in chain.rules:
                if rule.target.name == "DNAT":
                    found[chain.name] = found.get(chain.name, 0) + rule.get_counters()[0]
        return found
    finally:
        pnetns.popns()


def _counters_save(netns: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in Iptables(netns=netns).save("nat", counters=True).splitlines():
        m = _SAVE_RULE.match(line)
        if m:
            found[m.group(3)] = found.get(m.group(3), 0) + int(m.group(1))
    return found


def node_counters(netns: str) -> dict[str, int]:
    ipt = Iptables(netns=netns)  # refuses the root netns
    if ipt.prefix == "iptables-legacy":
        try:
            return _counters_iptc(netns)
        except Exception:  # no python-iptables, or it can't read this table
            pass
    return _counters_save(netns)
