"""Link impairment on a node's LAN link, as Mininet's TCLink offers it: delay, jitter, loss
and a rate limit, for all the node's LAN traffic or only that to and from one other node,
and partitions (everything between two nodes dropped, both ways).

Render, then apply. `render(dev, rules, side)` is pure: the `tc -batch` lines that give one
device the whole wanted tree (a `prio` root whose band 1 takes ordinary traffic; a band
per peer, picked by u32 filters on the peer's LAN address and pod CIDR; in each band a
`tbf` for the rate with a `netem` under it for delay/jitter/loss; a partition is netem
`loss 100%`). A rule applies to both directions of the link, as TCLink configures both of
its interfaces: the node's eth0 (egress: towards the LAN, `side="node"`, matching the
peer as destination) and the node's port on the LAN bridge (egress: towards the node,
`side="lan"`, matching the peer as source). So `--delay 50` adds 100 ms to a round trip
through the node's link, like TCLink(delay='50ms').

The wanted rules live in /var/lib/netsim/<cluster>/links.json (`cluster status` prints
them); each impaired device is in the ledger, so `cluster down` removes its qdisc.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass

# the modules a tree may use (all in a stock Debian kernel; some sandboxes have none)
MODULES = ("sch_prio", "sch_netem", "sch_tbf", "cls_u32")
_RATE = re.compile(r"^\d+(\.\d+)?([kmgt]?(bit|bps))$", re.I)


class LinkError(Exception):
    """Bad input or a kernel that can't do it: one line for the user."""


@dataclass(frozen=True)
class Rule:
    """One impairment of a node's link; `peer` None: all of its LAN traffic."""

    peer: str | None = None
    delay_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    rate: str | None = None
    partition: bool = False

    def describe(self) -> str:
        if self.partition:
            return f"partitioned from {self.peer}"
        parts = []
        if self.delay_ms is not None:
            parts.append(f"delay {_num(self.delay_ms)}ms"
                         + (f" jitter {_num(self.jitter_ms)}ms" if self.jitter_ms else ""))
        if self.loss_pct is not None:
            parts.append(f"loss {_num(self.loss_pct)}%")
        if self.rate:
            parts.append(f"rate {self.rate}")
        return f"{' '.join(parts)} {'to ' + self.peer if self.peer else '(all traffic)'}"


def _num(v: float | None) -> str:
    return f"{v:g}" if v is not None else ""


def validate(rule: Rule) -> None:
    """kubectl-like one-line complaints; nothing is changed when one is raised."""
    if rule.partition:
        if not rule.peer:
            raise LinkError("error: a partition needs --from NODE")
        return
    if rule.delay_ms is None and rule.loss_pct is None and not rule.rate:
        raise LinkError("error: nothing to set: give --delay, --loss and/or --rate")
    if rule.delay_ms is not None and rule.delay_ms < 0:
        raise LinkError(f"error: invalid --delay {_num(rule.delay_ms)}: must be >= 0 (ms)")
    if rule.jitter_ms is not None:
        if rule.delay_ms is None:
            raise LinkError("error: --jitter needs --delay")
        if rule.jitter_ms < 0:
            raise LinkError(f"error: invalid --jitter {_num(rule.jitter_ms)}: must be >= 0 (ms)")
    if rule.loss_pct is not None and not 0 <= rule.loss_pct <= 100:
        raise LinkError(f"error: invalid --loss {_num(rule.loss_pct)}: must be 0-100 (percent)")
    if rule.rate and not _RATE.match(rule.rate):
        raise LinkError(f"error: invalid --rate {rule.rate!r}: use tc's units, e.g. 10mbit, "
                        "512kbit, 1gbit")


@dataclass(frozen=True)
class Peer:
    """Where a peer node's traffic comes from / goes to: its LAN address and pod CIDR."""

    name: str
    ip: str
    pod_cidr: str


def merge(rules: list[Rule], new: Rule) -> list[Rule]:
    """The node's rules with `new` in: it replaces the rule for the same peer (or the
    all-traffic rule); a partition and an impairment to one peer replace each other."""
    return [r for r in rules if r.peer != new.peer] + [new]


def render(dev: str, rules: list[Rule], side: str, peers: dict[str, Peer]) -> list[str]:
    """`tc -batch` lines giving `dev` the tree for `rules` (none: just the root removed,
    the kernel's default qdisc comes back). `side` "node": the node's own eth0 (the peer is
    the destination); "lan": its port on the LAN bridge (the peer is the source)."""
    if side not in ("node", "lan"):
        raise ValueError(side)
    lines = [f"qdisc del dev {dev} root"]  # the applier ignores "nothing to delete"
    if not rules:
        return lines
    default = next((r for r in rules if r.peer is None), None)
    per_peer = sorted((r for r in rules if r.peer is not None), key=lambda r: r.peer or "")
    bands = max(2, 1 + len(per_peer))
    lines.append(f"qdisc add dev {dev} root handle 1: prio bands {bands} priomap "
                 + " ".join(["0"] * 16))
    if default:
        lines += _band(dev, 1, default)
    match = "dst" if side == "node" else "src"
    for i, rule in enumerate(per_peer):
        band = 2 + i
        lines += _band(dev, band, rule)
        peer = peers[rule.peer]
        for net in (f"{peer.ip}/32", peer.pod_cidr):
            lines.append(f"filter add dev {dev} parent 1: protocol ip prio {band} u32 "
                         f"match ip {match} {net} flowid 1:{band}")
    return lines


def _band(dev: str, band: int, rule: Rule) -> list[str]:
    out = []
    parent = f"1:{band}"
    if rule.rate and not rule.partition:
        # Mininet's tbf: burst 15 kB; latency bounds the queue (packets wait at most 50 ms)
        out.append(f"qdisc add dev {dev} parent {parent} handle {band}0: tbf rate {rule.rate} "
                   "burst 15k latency 50ms")
        parent = f"{band}0:1"
    netem = []
    if rule.partition:
        netem.append("loss 100%")
    else:
        if rule.delay_ms is not None:
            netem.append(f"delay {_num(rule.delay_ms)}ms"
                         + (f" {_num(rule.jitter_ms)}ms" if rule.jitter_ms else ""))
        if rule.loss_pct is not None:
            netem.append(f"loss {_num(rule.loss_pct)}%")
    if netem:
        out.append(f"qdisc add dev {dev} parent {parent} handle {band}1: netem {' '.join(netem)}")
    return out


# ---- state ---------------------------------------------------------------------------------
def state_path(cluster: str) -> str:
    from netsim.net.ledger import state_dir
    return os.path.join(state_dir(cluster), "links.json")


def load(cluster: str) -> dict[str, list[Rule]]:
    try:
        with open(state_path(cluster)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {node: [Rule(**r) for r in rules] for node, rules in data.items()}


def save(cluster: str, state: dict[str, list[Rule]]) -> None:
    path = state_path(cluster)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({n: [asdict(r) for r in rs] for n, rs in state.items() if rs}, f, indent=1,
                  sort_keys=True)
    os.replace(tmp, path)


def status_lines(cluster: str) -> list[str]:
    """What `cluster status` prints under Links: (nothing when no link is impaired)."""
    return [f"  {node:<20} {r.describe()}" for node, rules in sorted(load(cluster).items())
            for r in rules]


# ---- apply ---------------------------------------------------------------------------------
def run_batch(netns: str, lines: list[str]) -> None:
    """One `tc -force -batch` in `netns` (a node's or the LAN's, never the root netns).
    A first `qdisc del ... root` that finds nothing is not an error."""
    first, rest = lines[0], lines[1:]
    p = subprocess.run(["tc", "-n", netns, *first.split()], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0 and "No such file" not in p.stderr and "Cannot delete qdisc with " \
            "handle of zero" not in p.stderr and "Cannot find" not in p.stderr:
        raise LinkError(f"error: tc {first}: {p.stderr.strip()}")
    if not rest:
        return
    p = subprocess.run(["tc", "-n", netns, "-batch", "-"], input="\n".join(rest) + "\n",
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise LinkError(f"error: tc: {_tc_error(p.stderr)}")


def _tc_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()
             and not ln.startswith("Command failed") and "talking to the kernel" not in ln]
    line = lines[0] if lines else stderr.strip()
    return line.removeprefix("Error: ")


def unsupported_reason(netns: str) -> str | None:
    """Why this kernel can't impair links (None: it can): the tree's parts are tried on the
    loopback device of `netns` (a node's), then removed."""
    probe = [Rule(peer="p", delay_ms=1, jitter_ms=1, loss_pct=1, rate="1gbit")]
    lines = render("lo", probe, "node", {"p": Peer("p", "127.0.0.2", "127.0.1.0/24")})
    try:
        run_batch(netns, lines)
    except LinkError as e:
        return f"this kernel cannot impair links ({str(e).removeprefix('error: ')}): it needs " \
               f"{', '.join(MODULES)}"
    finally:
        subprocess.run(["tc", "-n", netns, "qdisc", "del", "dev", "lo", "root"],
                       capture_output=True, timeout=30)
    return None


def teardown(records: list[dict]) -> None:
    """`cluster down`: the root qdisc of every device `netsim link` impaired (the ledger's
    `qdisc` records; a device already gone with its netns is fine)."""
    for r in records:
        if r.get("kind") == "qdisc":
            subprocess.run(["tc", "-n", r["netns"], "qdisc", "del", "dev", r["dev"], "root"],
                           capture_output=True, timeout=30)
