"""Golden policy rules: rules/netpol-<folder>-<node>.rules (iptables) and .nft (nftables)
for each examples/ folder that holds NetworkPolicies.

    python -m netsim.netpol golden           # rewrite them
    python -m netsim.netpol golden --check   # compare only (tests/unit/test_netpol_render.py)

The manifests settle in the offline cluster of netsim/offline.py (real admission,
controllers, scheduler and kubelet IPAM, the node labels of netsim/golden.py), so the pods
have the addresses they have in the folder's kube-proxy files; each node's file is
`render.render` (and `nft.render`) of what that node's policy agent would see on its
first sync.
"""

from __future__ import annotations

import argparse
import os

import yaml

from netsim import offline
from netsim.golden import EXAMPLE_NODE_LABELS, write_or_check
from netsim.netpol import nft
from netsim.netpol.render import Snapshot, render

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
RULES = os.path.join(REPO, "rules")
REGEN = "python -m netsim.netpol golden"


def _folders() -> list[str]:
    if not os.path.isdir(EXAMPLES):
        return []
    return [d for d in sorted(os.listdir(EXAMPLES))
            if os.path.isdir(os.path.join(EXAMPLES, d))
            and any(f.endswith((".yaml", ".yml", ".json"))
                    for f in os.listdir(os.path.join(EXAMPLES, d)))]


def _docs(folder: str) -> list[dict]:
    """The folder's manifests in file order (components do not import the CLI's loader)."""
    out = []
    for f in sorted(os.listdir(folder)):
        if f.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                out += [doc for doc in yaml.safe_load_all(fh) if doc]
    return out


def cases() -> list[tuple[str, str]]:
    """(file name under rules/, its text) for every folder with NetworkPolicies: each
    node's iptables text and nft transaction."""
    out = []
    for d in _folders():
        folder = os.path.join(EXAMPLES, d)
        if not any("kind: NetworkPolicy" in open(os.path.join(folder, f), encoding="utf-8",
                                                 errors="replace").read()
                   for f in os.listdir(folder) if f.endswith((".yaml", ".yml"))):
            continue
        objs = _docs(folder)
        snap = offline.build(objs, node_labels=EXAMPLE_NODE_LABELS.get(d, {}))
        for node in [n.name for n in snap.cfg.nodes]:
            pol_snap = Snapshot.from_objects(snap.list("networkpolicies"), snap.list("pods"),
                                             snap.list("namespaces"), node)
            out.append((f"netpol-{d}-{node}.rules", render(pol_snap)))
            out.append((f"netpol-{d}-{node}.nft", nft.render(pol_snap)))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m netsim.netpol golden")
    ap.add_argument("--check", action="store_true", help="compare only")
    a = ap.parse_args(argv)
    ok = all([write_or_check(os.path.join(RULES, f), t, a.check, REGEN) for f, t in cases()])
    return 0 if ok else 1
