"""`netsim render`: the rules kube-proxy would write, offline.

`--mode iptables` (default) prints the iptables-restore text of a full sync, `--mode
nftables` the `nft -f` transaction of a full (first) sync, `--mode ipvs` the IPVS state
(virtual servers as `ipvsadm -R` input, ipsets, the constant iptables rules, the
addresses on kube-ipvs0).

No root, no cluster process: the manifests go through the real admission, allocators,
controllers and scheduler over an in-memory store (`netsim/offline.py` says how nodes
are chosen and why the output is deterministic), and the chosen node's kube-proxy
renderer prints the settled Services and EndpointSlices. `--node` picks whose rules are
printed (default: the first node), which matters for Local policies; `--node-label
NODE:KEY=VALUE` labels a node first, as `netsim label node NODE KEY=VALUE` would.

`--regen` rewrites `rules/` from `examples/` (see rules/README.md); `--check` compares.
`python -m netsim.cli.render_cmd --regen` does the same without the `netsim` script.
"""

from __future__ import annotations

import argparse
import os
import sys

from netsim import offline
from netsim.api import errors
from netsim.cli.manifests import ManifestError, load
from netsim.golden import EXAMPLE_NODE_LABELS, write_or_check
from netsim.net.topology import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR
from netsim.proxy import ipvs, nftables
from netsim.proxy.iptables import render_full
from netsim.proxy.model import ProxySnapshot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
RULES = os.path.join(REPO, "rules")
REGEN = "netsim render --regen"


def proxy_snapshot(snap: offline.Snapshot, node: str | None) -> ProxySnapshot:
    """What `node`'s kube-proxy sees in the settled offline cluster."""
    spec = snap.node(node)
    return ProxySnapshot.from_objects(snap.list("services"), snap.list("endpointslices"),
                                      node_name=spec.name, node_ips=[spec.ip],
                                      cluster_cidr=snap.cfg.pod_cidr)


def pending_pods(snap: offline.Snapshot) -> list[str]:
    """`pod ns/name is Pending: <the scheduler's reason>` for every pod left unscheduled."""
    out = []
    for p in snap.list("pods"):
        if (p.get("spec") or {}).get("nodeName"):
            continue
        why = next((c.get("message") for c in (p.get("status") or {}).get("conditions") or []
                    if c.get("type") == "PodScheduled"), None) or "not scheduled"
        out.append(f'pod {p["metadata"]["namespace"]}/{p["metadata"]["name"]} is Pending: {why}')
    return out


def render_objects(objs: list[dict], *, mode: str = "iptables", node: str | None = None,
                   **build) -> str:
    snap = offline.build(objs, **build)
    for line in pending_pods(snap):
        print(f"Warning: {line}", file=sys.stderr)
    psnap = proxy_snapshot(snap, node)
    if mode == "nftables":
        return nftables.render_full(psnap, nftables.NftOptions(
            service_cidrs=(snap.cfg.service_cidr,)))
    if mode == "ipvs":
        return ipvs.render_text(psnap)
    return render_full(psnap)


def render_paths(paths: list[str], *, recursive: bool = False, **kw) -> str:
    return render_objects([d.obj for d in load(paths, recursive=recursive)], **kw)


# --- golden files --------------------------------------------------------------------------

def golden_cases() -> list[tuple[str, list[str], dict]]:
    """(rules file, manifest paths, render kwargs) for everything under examples/."""
    cases = []
    if not os.path.isdir(EXAMPLES):
        return cases
    for d in sorted(os.listdir(EXAMPLES)):
        path = os.path.join(EXAMPLES, d)
        if not os.path.isdir(path) or not any(f.endswith((".yaml", ".yml", ".json"))
                                              for f in os.listdir(path)):
            continue
        labels = EXAMPLE_NODE_LABELS.get(d, {})
        for mode, fmt in (("iptables", "iptables-{d}-{node}.rules"),
                          ("nftables", "nftables-{d}-{node}.nft"),
                          ("ipvs", "ipvs-{d}-{node}.txt")):
            for node in ("k8s-master-171", "k8s-slave-172"):
                cases.append((fmt.format(d=d, node=node), [path],
                              {"node": node, "mode": mode, "node_labels": labels}))
    return cases


def regen(check: bool = False) -> int:
    os.makedirs(RULES, exist_ok=True)
    bad = 0
    for fname, paths, kw in golden_cases():
        try:
            text = render_paths(paths, **kw)
        except ManifestError as e:
            print(f"skip {paths[0]}: {e}", file=sys.stderr)
            continue
        if not write_or_check(os.path.join(RULES, fname), text, check, REGEN):
            bad += 1
    return 1 if bad else 0


# --- the verb --------------------------------------------------------------------------------

def _node_labels(values: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for v in values:
        node, _, kv = v.partition(":")
        key, eq, val = kv.partition("=")
        if not node or not key or not eq:
            raise ValueError(f'--node-label "{v}": expected NODE:KEY=VALUE')
        out.setdefault(node, {})[key] = val
    return out


def run(args: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="netsim render", description=(
        "Print the rules kube-proxy would write on one node for the given manifests "
        "(iptables-restore text; with --mode nftables the nft -f transaction; with --mode ipvs "
        "the IPVS virtual servers, ipsets, iptables rules and kube-ipvs0 addresses; offline: "
        "no root, no cluster)."))
    ap.add_argument("-f", "--filename", action="append", default=[])
    ap.add_argument("-R", "--recursive", action="store_true")
    ap.add_argument("--node", help="whose rules (default: the first node, k8s-master-171)")
    ap.add_argument("--node-label", action="append", default=[], metavar="NODE:KEY=VALUE",
                    help="label a node before the manifests are applied")
    ap.add_argument("--mode", default="iptables", choices=["iptables", "nftables", "ipvs"])
    ap.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR)
    ap.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--regen", action="store_true", help="rewrite rules/ from examples/")
    ap.add_argument("--check", action="store_true", help="compare rules/ with examples/")
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    # `netsim render -f X` reaches us as ["X", ..., "-f"] (the top-level parser splits the
    # option from its value): take stray positionals as files, drop a dangling -f.
    if args and args[-1] in ("-f", "--filename"):
        args = args[:-1]
    a = ap.parse_intermixed_args(args)
    a.filename = [*a.filename, *a.paths]
    if a.regen or a.check:
        return regen(check=a.check)
    if not a.filename:
        print("error: must specify -f FILE|DIR", file=sys.stderr)
        return 1
    try:
        text = render_paths(a.filename, recursive=a.recursive, node=a.node, nodes=a.nodes,
                            pod_cidr=a.pod_cidr, service_cidr=a.service_cidr, mode=a.mode,
                            node_labels=_node_labels(a.node_label))
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except errors.ApiError as e:
        print(f"Error from server ({e.reason}): {e.message}", file=sys.stderr)
        return 1
    except (KeyError, ValueError, offline.OfflineError) as e:
        msg = f'node "{e.args[0]}" not found' if isinstance(e, KeyError) else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
