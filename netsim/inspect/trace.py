"""`netsim trace FROM TO`: where one new connection goes, hop by hop, confirmed by a real one.

First version (issue 14): the netfilter part is read, not instrumented. The node's live
rules (`iptables-save` in iptables mode, `nft list table ip kube-proxy` in nftables mode)
are walked by netsim.inspect.ruleflow; the routing decision comes from the Node objects
(each node's podCIDR and InternalIP, as flannel's host-gw routes); then a real probe (a TCP
connect, or a UDP datagram) leaves the source netns, and the node's conntrack entry for
that probe's source port says which endpoint the DNAT chose. Only that endpoint's branch
of the rules is reported. Nothing is added to the rules; the probe's one connection is
counted by the rules it crosses, as any connection is.

The pure parts (resolving FROM/TO, assembling hops, the JSON shape) take plain objects and
are unit tested; `run_trace` does the live work.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from netsim.inspect import ipvstrace, nftrace, policy, ruleflow
from netsim.inspect.capture import pod_netns
from netsim.net.topology import ClusterConfig
from netsim.proxy.counters import node_counters

VERDICTS = ("delivered", "rejected", "dropped", "no-route")


class TraceUsageError(ValueError):
    """FROM/TO/--port the user gave cannot be traced; worded for the user."""


@dataclass
class Source:
    at: str  # "pod/ns/name", "node/NAME" or "host"
    ip: str
    netns: str | None  # None: the root netns (host)
    node: str | None  # the node whose netfilter the packet enters first (None: host)
    interface: str  # the source's own interface
    node_interface: str = ""  # where it enters that node ("" for the node's own output)


@dataclass
class Dest:
    label: str  # what the user named: "svc/ns/name", "pod/ns/name", "node/NAME", an IP
    ip: str
    port: int
    proto: str  # tcp / udp


@dataclass
class NodeInfo:
    name: str
    ip: str
    pod_cidr: str


@dataclass
class Hop:
    at: str
    interface: str
    table: str
    chain: str
    rule: str
    action: str


@dataclass
class Result:
    from_: str
    to: str
    verdict: str
    delivered_to: dict | None
    hops: list[Hop] = field(default_factory=list)
    packet: str = ""  # "tcp 10.244.1.5 -> 10.96.0.20:80" (text output's first line)
    conntrack: str = ""  # the probe's entry on the node that NATed it (text output only)
    probe: dict = field(default_factory=dict)  # what the probe saw (probe.py's JSON)

    def to_json(self) -> dict:
        return {"from": self.from_, "to": self.to, "verdict": self.verdict,
                "delivered_to": self.delivered_to, "hops": [asdict(h) for h in self.hops]}

    def text(self) -> str:
        """Reads like the seed's walk through iptables-save: each rule that matched, where."""
        lines = [f"{self.packet}  ({self.from_} -> {self.to})"]
        last_at = None
        for h in self.hops:
            if h.at != last_at:
                lines.append(f"{h.at}:")
                last_at = h.at
            if h.table:
                lines.append(f"  {h.table}/{h.chain}: {h.rule}")
                lines.append(f"      -> {h.action}")
            else:
                rule = f" {h.rule}:" if h.rule else ""
                lines.append(f"  [{h.interface or '-'}]{rule} {h.action}")
        if self.conntrack:  # the reply path: the entry the replies are un-NATed by
            lines.append(f"conntrack {self.conntrack}")
        d = self.delivered_to
        lines.append(f"verdict: {self.verdict}" + (
            f" (pod/{d['pod']} {d['ip']}:{d['port']})" if d else ""))
        return "\n".join(lines)


# --- resolving FROM and TO (pure over API objects) -------------------------------------------

def _split(spec: str) -> tuple[str, str]:
    kind, sep, name = spec.partition("/")
    if not sep:
        return "", spec
    kinds = {"pod": "pod", "pods": "pod", "po": "pod", "node": "node", "nodes": "node",
             "no": "node", "svc": "svc", "service": "svc", "services": "svc"}
    if kind.lower() not in kinds or not name:
        raise TraceUsageError(f'error: the server doesn\'t have a resource type "{kind}"')
    return kinds[kind.lower()], name


def nodes_of(node_objs: list[dict], cfg: ClusterConfig | None = None) -> list[NodeInfo]:
    """Each node's LAN address (InternalIP) and pod CIDR from the Node objects (the config's
    values for what a Node does not say yet)."""
    out = []
    for n in node_objs:
        name = n["metadata"]["name"]
        addrs = (n.get("status") or {}).get("addresses") or []
        ip = next((a["address"] for a in addrs if a.get("type") == "InternalIP"), "")
        cidr = (n.get("spec") or {}).get("podCIDR") or ""
        if cfg is not None and (not ip or not cidr):
            try:
                spec = cfg.node(name)
                ip, cidr = ip or spec.ip, cidr or spec.pod_cidr
            except KeyError:
                pass
        out.append(NodeInfo(name, ip, cidr))
    return out


def node_for_ip(nodes: list[NodeInfo], ip: str) -> NodeInfo | None:
    """The node whose pod CIDR holds `ip` (the route a pod IP takes)."""
    addr = ipaddress.ip_address(ip)
    for n in nodes:
        if n.pod_cidr and addr in ipaddress.ip_network(n.pod_cidr, strict=False):
            return n
    return None


def resolve_source(spec: str, *, pod: dict | None, nodes: list[NodeInfo], namespace: str,
                   cfg: ClusterConfig) -> Source:
    """FROM: `host` (the machine netsim runs on, on the LAN as cfg.host_ip), `node/NAME`,
    `pod/NAME` (`pod` is the Pod object, fetched by the caller)."""
    if spec == "host":
        return Source("host", cfg.host_ip, None, None, cfg.host_ifname)
    kind, name = _split(spec)
    if kind == "node":
        n = next((n for n in nodes if n.name == name), None)
        if n is None:
            raise TraceUsageError(f'Error from server (NotFound): nodes "{name}" not found')
        return Source(f"node/{name}", n.ip, cfg.node_netns(name), name, "eth0")
    if kind in ("pod", ""):
        if pod is None:
            raise TraceUsageError(f'Error from server (NotFound): pods "{name}" not found')
        st, sp = pod.get("status") or {}, pod.get("spec") or {}
        if not st.get("podIP") or not sp.get("nodeName"):
            raise TraceUsageError(f"error: pod {name} has no IP yet (phase "
                                  f"{st.get('phase', 'Pending')})")
        at = f"pod/{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        if sp.get("hostNetwork"):
            return Source(at, st["podIP"], cfg.node_netns(sp["nodeName"]), sp["nodeName"],
                          "eth0")
        from netsim.kubelet.sandbox import veth_name  # noqa: PLC0415
        return Source(at, st["podIP"], pod_netns(cfg, pod), sp["nodeName"], "eth0",
                      veth_name(pod["metadata"]["uid"]))
    raise TraceUsageError(f"error: FROM must be pod/NAME, node/NAME or host, not {spec!r}")


def resolve_dest(spec: str, *, obj: dict | None, nodes: list[NodeInfo], namespace: str,
                 port: int | None, proto: str | None) -> Dest:
    """TO: `svc/NAME` (its ClusterIP; --port picks one of its ports, default the first),
    `pod/NAME` (its IP; --port, default its first containerPort), `node/NAME` with --port
    (a NodePort), or an IP with --port. `obj` is the Service or Pod, fetched by the caller."""
    kind, name = _split(spec)
    if kind == "" and _is_ip(spec):
        if port is None:
            raise TraceUsageError("error: --port is required when TO is an IP")
        return Dest(spec, spec, port, proto or "tcp")
    if kind == "svc":
        if obj is None:
            raise TraceUsageError(f'Error from server (NotFound): services "{name}" not found')
        sp = obj.get("spec") or {}
        ip = sp.get("clusterIP")
        if not ip or ip == "None":
            raise TraceUsageError(f"error: service {name} has no cluster IP (headless): "
                                  "trace one of its pods")
        ports = sp.get("ports") or []
        chosen = next((p for p in ports if port is None or p.get("port") == port), None)
        if chosen is None and port is None:
            raise TraceUsageError(f"error: service {name} has no ports")
        use_port = port if port is not None else chosen["port"]  # type: ignore[index]
        use_proto = proto or (chosen or {}).get("protocol", "TCP").lower()
        return Dest(f"svc/{namespace}/{name}", ip, use_port, use_proto)
    if kind in ("pod", ""):
        if obj is None:
            raise TraceUsageError(f'Error from server (NotFound): pods "{name}" not found')
        ip = (obj.get("status") or {}).get("podIP")
        if not ip:
            raise TraceUsageError(f"error: pod {name} has no IP yet")
        if port is None:
            cports = [p for c in (obj.get("spec") or {}).get("containers") or []
                      for p in c.get("ports") or []]
            if not cports:
                raise TraceUsageError(f"error: pod {name} declares no port: give --port")
            port, proto = cports[0]["containerPort"], proto or cports[0].get(
                "protocol", "TCP").lower()
        return Dest(f"pod/{namespace}/{name}", ip, port, proto or "tcp")
    if kind == "node":
        n = next((n for n in nodes if n.name == name), None)
        if n is None:
            raise TraceUsageError(f'Error from server (NotFound): nodes "{name}" not found')
        if port is None:
            raise TraceUsageError("error: --port (the NodePort) is required when TO is a node")
        return Dest(f"node/{name}", n.ip, port, proto or "tcp")
    raise TraceUsageError(f"error: TO must be svc/NAME, pod/NAME, node/NAME or an IP, not {spec!r}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


# --- hops from a ruleflow Trace (pure) -------------------------------------------------------

_IPT_JUMP = re.compile(r"(?:^|\s)-([jg]) (\S+)(.*)$")
_NFT_JUMP = re.compile(r"\b(jump|goto) ([^\s,}]+)")


def rule_action(rule: str) -> str:
    """What a matched rule does, in a few words: `jump KUBE-SVC-X`, `DNAT to ip:port`,
    `REJECT`, `MARK --or-mark 0x4000`, `MASQUERADE`, nft's `dnat to`, `goto`, vmaps."""
    text = re.sub(r'\s*comment "[^"]*"', "", rule).strip()
    ipvs_action = ipvstrace.rule_action(text)
    if ipvs_action is not None:
        return ipvs_action
    if text.startswith(("-A ", "-I ")):
        m = _IPT_JUMP.search(text)
        if not m:
            return "continue"
        how, target, rest = m.group(1), m.group(2), m.group(3).strip()
        if target == "DNAT":
            return "DNAT to " + rest.split("--to-destination", 1)[-1].strip()
        if target in ("ACCEPT", "DROP", "REJECT", "RETURN", "MASQUERADE"):
            return target
        if target == "MARK":
            return f"MARK {rest}".strip()
        return f"{'goto' if how == 'g' else 'jump'} {target}"
    m = re.search(r"\bdnat to (\S+)", text)
    if m:
        return f"DNAT to {m.group(1)}"
    if re.search(r"\bnumgen random\b", text):
        return "numgen random: " + ", ".join(f"{a} {b}" for a, b in _NFT_JUMP.findall(text))
    if re.search(r"\bvmap @", text):
        return "verdict map " + text.split("vmap", 1)[1].strip()
    m = _NFT_JUMP.search(text)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    for word in ("reject", "drop", "accept", "return", "masquerade"):
        if re.search(rf"\b{word}\b", text):
            return word.upper() if word != "masquerade" else "MASQUERADE"
    if "mark set" in text:
        return text[text.index("mark set"):]
    return "continue"


def _targets(rule: str) -> set[str]:
    if rule.startswith(("-A ", "-I ")):
        m = _IPT_JUMP.search(rule)
        return {m.group(2)} if m else set()
    return {t for _, t in _NFT_JUMP.findall(rule)}


def _other_endpoint_chains(dnats: list[tuple[str, str]], endpoint: str) -> set[str]:
    """Chains that DNAT to an endpoint other than `endpoint` (and never to it)."""
    mine = {c for c, to in dnats if to == endpoint}
    return {c for c, to in dnats if to != endpoint} - mine


def prune_to_endpoint(rules, endpoint: str) -> None:
    """ruleflow takes every random branch; once conntrack said which endpoint the probe
    really reached, drop the branches to the others (iptables: the rules jumping to their
    KUBE-SEP chains; nftables: their numgen/vmap entries), so that the walk, its marks and
    its masquerade verdict are that one connection's. Changes `rules` in place."""
    if isinstance(rules, (ipvstrace.IpvsRules, ipvstrace.NodeIpvsRules)):
        rules.only(endpoint)
        return
    if isinstance(rules, ruleflow.NftRules):
        dnats = [(c.name, op[1]) for c in rules.chains.values() for _, ops in c.rules
                 for op in ops if op[0] == "dnat"]
        other = _other_endpoint_chains(dnats, endpoint)
        for c in rules.chains.values():
            new_rules = []
            for raw, ops in c.rules:
                new_ops = []
                for op in ops:
                    if op[0] == "numgen":
                        op = ("numgen", [b for b in op[1] if b[2] not in other])
                    elif op[0] == "verdict" and op[2] in other:
                        new_ops = None
                        break
                    new_ops.append(op)
                if new_ops is not None:
                    new_rules.append((raw, new_ops))
            c.rules = new_rules
        for st in rules.sets.values():
            st.elements = {k: v for k, v in st.elements.items() if not (v and v[2] in other)}
        return
    for chains in rules.tables.values():
        other = _other_endpoint_chains(_dnat_chains(chains), endpoint)
        for ch in chains.values():
            ch.rules = [r for r in ch.rules if r.target not in other]


def _dnat_chains(chains: dict) -> list[tuple[str, str]]:
    """(chain, "ip:port") of each DNAT rule in one iptables table's chains."""
    return [(name, r.target_args.get("--to-destination", "")) for name, ch in chains.items()
            for r in ch.rules if r.target == "DNAT"]


def endpoint_by_counters(before: dict[str, int], after: dict[str, int], rules,
                         endpoints: list[str]) -> str | None:
    """iptables mode: the endpoint whose KUBE-SEP chain's DNAT counted the probe (the node's
    per-chain counters before and after it, netsim.proxy.counters), of the `endpoints` the
    walk found; None when none or several of them moved (other traffic, or kube-proxy
    rewrote the chains meanwhile). A SYN rejected on the endpoint's node leaves no conntrack
    entry to ask, so without this a trace to a two-endpoint Service could not say which pod
    the packet went to."""
    dest = dict(d for chains in rules.tables.values() for d in _dnat_chains(chains))
    moved = {dest.get(chain) for chain, n in after.items() if n > before.get(chain, 0)}
    moved &= set(endpoints)
    return moved.pop() if len(moved) == 1 else None


def set_hop(at: str, interface: str, s: ruleflow.SetLookup) -> Hop:
    """An ipset lookup a matched rule made (IPVS mode's Services, NetworkPolicy sets), as
    its own hop just before that rule: the `ipset test` a user would run, and its answer."""
    found = (f"{s.key} is in {s.name} (entry {s.entry})" if s.entry != s.key
             else f"{s.key} is in {s.name}") if s.entry else f"{s.key} is not in {s.name}"
    return Hop(at, interface, "ipset", s.name, f"ipset test {s.name} {s.key}",
               f"{found}, looked up by {s.flags}")


def netfilter_hops(trace: ruleflow.Trace, at: str, interface: str) -> list[Hop]:
    """One Hop per matched rule (after the ipset lookups it made, set_hop). A verdict map
    or numgen rule names the branch taken (the chain the next hop is in), not every
    element it holds."""
    out = []
    for i, h in enumerate(trace.hops):
        out += [set_hop(at, interface, s) for s in h.sets]
        action = rule_action(h.rule)
        nxt = trace.hops[i + 1].chain if i + 1 < len(trace.hops) else None
        if action.startswith(("numgen random", "verdict map")) and nxt and nxt != h.chain:
            base = "numgen random" if action.startswith("numgen") else action
            action = f"{base} -> {nxt}"
        out.append(Hop(at, interface, h.table, h.chain, h.rule, action))
    return out


def routing_hop(nodes: list[NodeInfo], here: str, dst: str) -> tuple[Hop, NodeInfo | None, str]:
    """The routing decision at node `here` for `dst` (after DNAT): ("local" | "forward" |
    "self" | "none", the next node). Mirrors the routes netsim's nodes have: own pod CIDR
    on cni0, every other node's pod CIDR via that node's LAN address on eth0."""
    me = next(n for n in nodes if n.name == here)
    owner = node_for_ip(nodes, dst)
    at = f"node/{here}"
    if dst == me.ip:
        return Hop(at, "lo", "", "", "", f"local delivery to {dst} (this node)"), me, "self"
    if owner is not None and owner.name == here:
        return (Hop(at, "cni0", "", "", f"route {owner.pod_cidr} dev cni0",
                    f"bridge to the pod {dst} on cni0"), owner, "local")
    if owner is not None:
        return (Hop(at, "eth0", "", "", f"route {owner.pod_cidr} via {owner.ip} dev eth0",
                    f"forward to node/{owner.name} ({owner.ip})"), owner, "forward")
    lan_node = next((n for n in nodes if n.ip == dst), None)
    if lan_node is not None:
        return (Hop(at, "eth0", "", "", f"route {dst} dev eth0 (the LAN)",
                    f"forward to node/{lan_node.name} ({lan_node.ip})"), lan_node, "node")
    return Hop(at, "eth0", "", "", f"route {dst}", "no route in the cluster"), None, "none"


# --- the live part -------------------------------------------------------------------------

def node_rules(cfg: ClusterConfig, node: str):
    """The node's kube-proxy rules as ruleflow reads them (IPVS mode: its iptables rules,
    ipsets and virtual servers walked together, netsim.inspect.ipvstrace.NodeIpvsRules)."""
    from netsim.proxy.apply import Iptables, Nft  # noqa: PLC0415
    ns = cfg.node_netns(node)
    if cfg.proxy_mode == "nftables":
        text = Nft(netns=ns).list_table()
        if text is None:
            raise TraceUsageError(f"error: node {node} has no table ip kube-proxy yet")
        return ruleflow.NftRules.from_listing(text)
    if cfg.proxy_mode == "ipvs":  # the load balancing is IPVS's, not netfilter's
        return ipvstrace.node_rules(ns)
    return ruleflow.IptablesRules(Iptables(netns=ns).save())


def run_probe(src: Source, dst: Dest, timeout: float = 3.0, *, sport: int = 0,
              http: tuple[str, str, str] | None = None) -> dict:
    argv = [sys.executable, "-m", "netsim.inspect.probe", dst.proto, dst.ip, str(dst.port),
            str(timeout)]
    if sport:
        argv += ["--sport", str(sport)]
    if http is not None:
        argv += ["--http", *http]
    if src.netns:
        argv = ["ip", "netns", "exec", src.netns, *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"result": "error", "error": (p.stderr or p.stdout).strip()[-300:],
                "src": "", "sport": 0}


_CT_FIELD = re.compile(r"\b(src|dst|sport|dport|packets|bytes)=(\S+)")


def parse_conntrack(text: str) -> list[dict]:
    """`conntrack -L` lines as {"orig": {...}, "reply": {...}, "line"} (first/second tuple;
    packets= and bytes= too when nf_conntrack_acct is on)."""
    out = []
    for line in text.splitlines():
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        for k, v in _CT_FIELD.findall(line):
            (reply if k in orig else orig)[k] = v
        if orig and reply:
            out.append({"orig": orig, "reply": reply, "line": " ".join(line.split())})
    return out


def conntrack_find(netns: str, proto: str, src: str, sport: int) -> dict | None:
    """The node's conntrack entry of the probe (parse_conntrack's shape), or None."""
    p = subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-L", "-p", proto,
                        "--orig-src", src, "--sport", str(sport)],
                       capture_output=True, text=True, timeout=20)
    return next((e for e in parse_conntrack(p.stdout) if e["orig"].get("sport") == str(sport)),
                None)


def conntrack_entry(netns: str, proto: str, src: str, sport: int) -> tuple[str | None, str]:
    """(ip:port the node's conntrack says this probe went to: the reply's source, the
    entry as `conntrack -L` prints it); (None, "") when the node has none."""
    e = conntrack_find(netns, proto, src, sport)
    if e is None:
        return None, ""
    return f"{e['reply']['src']}:{e['reply']['sport']}", e["line"]


def pod_by_ip(pods: list[dict], ip: str) -> dict | None:
    live = [p for p in pods if (p.get("status") or {}).get("podIP") == ip
            and not (p.get("spec") or {}).get("hostNetwork")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    return live[0] if live else None


def assemble(src: Source, dst: Dest, nodes: list[NodeInfo], walks: list[tuple[str, str,
             ruleflow.Trace]], probe: dict, endpoint: str | None, pods: list[dict],
             host_route: str | None = None,
             after_routing: frozenset[str] = frozenset({"FORWARD", "INPUT", "POSTROUTING"})
             ) -> Result:
    """The hops and the verdict from the rule walks (one per node the packet entered:
    (node, in-interface, trace)), the probe's outcome and the endpoint conntrack named.
    The routing decision goes before the first hop in a chain of `after_routing` (the
    base chains of the forward, input and postrouting hooks)."""
    hops: list[Hop] = []
    label = f"{dst.proto} {src.ip} -> {dst.ip}:{dst.port}"
    hops.append(Hop(src.at, src.interface, "", "", "",
                    f"send {dst.proto} {src.ip} -> {dst.ip}:{dst.port}"))
    if src.node_interface:
        hops.append(Hop(f"node/{src.node}", src.node_interface, "", "", "",
                        "veth into cni0 (the node's bridge)"))
    verdict = ""
    final_dst = dst.ip
    if host_route is not None and not walks:
        hops.append(Hop("host", src.interface, "", "", f"route {dst.ip}: {host_route}",
                        "no route" if _no_route(host_route) else "send on the LAN"))
    for i, (node, iface, tr) in enumerate(walks):
        nf = netfilter_hops(tr, f"node/{node}", iface)
        if tr.endpoints:
            final_dst = (endpoint or tr.endpoints[0]).rsplit(":", 1)[0]
        hop, _nxt, kind = routing_hop(nodes, node, final_dst)
        reals = [i for i, h in enumerate(nf) if h.table == ipvstrace.TABLE
                 and h.rule.startswith("-a ")]
        if reals:  # IPVS routes the packet to its real server itself (ip_vs_nat_xmit),
            cut = reals[-1] + 1  # then sends it through OUTPUT and POSTROUTING
        else:
            cut = next((i for i, h in enumerate(nf) if h.chain in after_routing
                        and h.table != "ipset"), len(nf))
            while cut > 0 and nf[cut - 1].table == "ipset":  # its rule's lookups go with it
                cut -= 1
        out_if = [Hop(h.at, hop.interface, h.table, h.chain, h.rule, h.action) for h in nf[cut:]]
        if tr.verdict in ("REJECT", "DROP"):
            if nf:  # a NetworkPolicy's default deny says so, with the policies
                denial = policy.explain(nf, len(nf) - 1)
                if denial is not None:
                    last = (out_if or nf)[-1]
                    (out_if or nf)[-1] = Hop(last.at, last.interface, last.table, last.chain,
                                             last.rule, f"{last.action}: {denial.text()}")
            hops += nf[:cut] + ([hop] if out_if else []) + out_if
            verdict = "rejected" if tr.verdict == "REJECT" else "dropped"
            break
        hops += nf[:cut] + [hop] + out_if
        if kind == "none":
            verdict = "no-route"
        walked_next = i + 1 < len(walks) and _nxt is not None and walks[i + 1][0] == _nxt.name
        if kind == "forward" and _nxt is not None and not walked_next:
            hops.append(Hop(f"node/{_nxt.name}", "eth0", "", "", f"route {_nxt.pod_cidr} dev cni0",
                            f"bridge to the pod {final_dst} on cni0"))
    result = probe.get("result")
    delivered = None
    if not verdict:
        if result == "connected" or (result == "sent" and endpoint):
            verdict = "delivered"
        elif result == "refused":
            verdict = "rejected"
        elif result == "unreachable":
            verdict = "no-route"
        else:
            verdict = "dropped"
    elif verdict == "no-route" and result == "connected":
        verdict = "delivered"  # the rules did not explain it, the packet got there
    if verdict == "delivered":
        ip, port = (endpoint.rsplit(":", 1) if endpoint else (final_dst, str(dst.port)))
        pod = pod_by_ip(pods, ip)
        if pod is not None:
            md = pod["metadata"]
            delivered = {"pod": f"{md['namespace']}/{md['name']}", "ip": ip, "port": int(port)}
            owner = pod["spec"].get("nodeName")
            hops.append(Hop(f"pod/{md['namespace']}/{md['name']}", "eth0", "", "", "",
                            f"delivered to {ip}:{port}" + (f" on node/{owner}" if owner else "")))
    elif verdict == "rejected" and result == "refused" and not any(
            h.action.startswith("REJECT") for h in hops):
        hops.append(Hop(hops[-1].at if hops else src.at, "", "", "", "",
                        "connection refused (nothing listens on the port)"))
    return Result(src.at, dst.label, verdict, delivered, hops, label)


def run_trace(client, cfg: ClusterConfig, from_spec: str, to_spec: str, namespace: str,
              port: int | None = None, proto: str | None = None, *,
              http: tuple[str, str, str] | None = None, probe: dict | None = None) -> Result:
    """Resolve, walk the rules of each node the packet enters, probe, look up conntrack.
    `http`: the probe is a GET (host, path, user agent) on the connection; `probe`: the
    outcome of a connection made by someone else (nginx's to its upstream), no probe."""
    from netsim.api import errors  # noqa: PLC0415
    nodes = nodes_of(client.list("nodes"), cfg)

    def get(resource: str, spec: str) -> dict | None:
        kind, name = _split(spec)
        if (resource == "pods" and kind not in ("pod", "")) or \
                (resource == "services" and kind != "svc") or _is_ip(spec):
            return None
        try:
            return client.get(resource, name, namespace)
        except errors.ApiError as e:
            if e.code == 404:
                return None
            raise
    src = resolve_source(from_spec, pod=get("pods", from_spec) if from_spec != "host" else None,
                         nodes=nodes, namespace=namespace, cfg=cfg)
    kind, _ = _split(to_spec)
    obj = get("services", to_spec) if kind == "svc" else get("pods", to_spec)
    dst = resolve_dest(to_spec, obj=obj, nodes=nodes, namespace=namespace, port=port,
                       proto=proto)
    walks: list[tuple[str, str, ruleflow.Trace]] = []
    host_route = None
    node, iface = src.node, src.node_interface and "cni0"
    if node is None:  # the host: its routes send cluster CIDRs nowhere, the LAN to a node
        host_route = _ip_route_get(None, dst.ip)
        lan_node = next((n for n in nodes if n.ip == dst.ip), None)
        node, iface = (lan_node.name, "eth0") if lan_node else (None, "")
    visited: set[str] = set()
    dnat_node = None
    after = {"FORWARD", "INPUT", "POSTROUTING"}
    read: dict[str, object] = {}

    def rules_of(name: str):
        """Each node's rules read once per trace (a read is a few processes: seconds
        under emulation); a pruned node's walk is over by the time it is reused."""
        if name not in read:
            read[name] = node_rules(cfg, name)
        return read[name]
    while node is not None and node not in visited:
        visited.add(node)
        info = next(n for n in nodes if n.name == node)
        rules = rules_of(node)
        if isinstance(rules, ruleflow.NftRules):
            after |= {c.name for c in rules.chains.values()
                      if c.hook in ("forward", "input", "postrouting")}
        tr = rules.trace(src.ip, dst.ip, dst.port, dst.proto,
                         local_ips=[info.ip, _gateway(info)])
        walks.append((node, iface, tr))
        if tr.endpoints and dnat_node is None:
            dnat_node = node
        if tr.verdict in ("DROP", "REJECT") or tr.endpoints:
            break
        _, nxt, how = routing_hop(nodes, node, dst.ip)
        if how != "node" or nxt is None:
            break
        node, iface = nxt.name, "eth0"
    candidates = (walks[-1][2].endpoints if walks and walks[-1][2].endpoints
                  else [f"{dst.ip}:{dst.port}"])
    last_node = walks[-1][0] if walks else None
    traced: dict[str, str] | None = None
    session_table = ""
    sport = 0
    if probe is None and cfg.proxy_mode == "nftables" and walks:
        sport = nftrace.free_port()
        matches = {cfg.node_netns(n): nftrace.match_expr(dst.proto, [src.ip], sport, [])
                   for n, _, _ in walks}
        via = next((n.ip for n in nodes if n.name == last_node), src.ip)
        for ep in candidates:
            owner = node_for_ip(nodes, ep.rsplit(":", 1)[0])
            if owner is not None and cfg.node_netns(owner.name) not in matches:
                matches[cfg.node_netns(owner.name)] = nftrace.match_expr(
                    dst.proto, [src.ip, via], None, candidates)
        try:
            with nftrace.Session(matches) as session:
                probe = run_probe(src, dst, sport=sport, http=http)
                traced = session.collect()
                session_table = session.table
        except nftrace.TraceSetupError as e:  # the rules read and walked instead: say so
            print(f"warning: no kernel trace ({e}); the rules are read and walked instead",
                  file=sys.stderr)
            probe, traced = None, None
    before = None  # iptables mode, several endpoints: which one the probe took, by counters
    if probe is None and cfg.proxy_mode == "iptables" and dnat_node is not None and \
            len(walks[-1][2].endpoints) > 1:
        before = node_counters(cfg.node_netns(dnat_node))
    if probe is None:
        probe = run_probe(src, dst, http=http)
    counted = None if before is None else endpoint_by_counters(
        before, node_counters(cfg.node_netns(dnat_node)), rules_of(dnat_node),
        walks[-1][2].endpoints)
    endpoint, ct_line, ct_node = None, "", dnat_node or (walks[0][0] if walks else None)
    entry = None
    if ct_node is not None and probe.get("sport"):
        entry = conntrack_find(cfg.node_netns(ct_node), dst.proto, src.ip, int(probe["sport"]))
        ct_line = entry["line"] if entry else ""
    if dnat_node is not None and probe.get("sport"):
        endpoint = f"{entry['reply']['src']}:{entry['reply']['sport']}" if entry else None
        if cfg.proxy_mode == "ipvs":  # IPVS's own connection entry says it first-hand
            endpoint = ipvstrace.chosen_real_server(cfg.node_netns(dnat_node), dst.proto,
                                                    src.ip, int(probe["sport"])) or endpoint
        if endpoint is None and len(walks[-1][2].endpoints) == 1:
            endpoint = walks[-1][2].endpoints[0]
        endpoint = endpoint or counted
        if endpoint is not None and traced is None:  # walk again on that one branch
            node, iface, _ = walks[-1]
            rules = rules_of(node)
            prune_to_endpoint(rules, endpoint)
            info = next(n for n in nodes if n.name == node)
            walks[-1] = (node, iface, rules.trace(src.ip, dst.ip, dst.port, dst.proto,
                                                  local_ips=[info.ip, _gateway(info)]))
    # where the packet goes after the last node walked: the destination pod's node
    final = endpoint or (candidates[0] if not walks or not walks[-1][2].endpoints else None)
    seen_src = (entry["reply"]["dst"], int(entry["reply"]["dport"])) if entry else (
        src.ip, int(probe.get("sport") or 0))
    owner = node_for_ip(nodes, final.rsplit(":", 1)[0]) if final else None
    if traced is not None:
        for i, (node, iface, _) in enumerate(walks):
            got = _nft_walk(traced.get(cfg.node_netns(node), ""), session_table,
                            {"saddr": src.ip, "sport": sport}, src.ip, dst)
            if got is not None:
                walks[i] = (node, iface, got)
                after |= _after_routing_chains(cfg.node_netns(node))
        if endpoint is None and walks and len(walks[-1][2].endpoints) == 1:
            # the kernel's trace names the DNAT the probe took: a SYN answered by a RST
            # (a NetworkPolicy's reject on the endpoint's node) leaves no conntrack entry
            # to ask, and the trace then ended at the first node
            endpoint = final = walks[-1][2].endpoints[0]
            owner = node_for_ip(nodes, final.rsplit(":", 1)[0])
    if owner is not None and final is not None and last_node not in (None, owner.name) and \
            walks and walks[-1][2].verdict not in ("DROP", "REJECT"):
        ep_ip, ep_port = final.rsplit(":", 1)
        fdst = Dest(dst.label, ep_ip, int(ep_port), dst.proto)
        got = None
        if traced is not None:
            got = _nft_walk(traced.get(cfg.node_netns(owner.name), ""), session_table,
                            {"saddr": seen_src[0], "sport": seen_src[1] or None,
                             "daddr": ep_ip, "dport": int(ep_port)}, seen_src[0], fdst)
            after |= _after_routing_chains(cfg.node_netns(owner.name))
        if got is None:
            rules = rules_of(owner.name)
            got = rules.trace(seen_src[0], ep_ip, int(ep_port), dst.proto,
                              local_ips=[owner.ip, _gateway(owner)])
        walks.append((owner.name, "eth0", got))
    pods = client.list("pods")
    res = assemble(src, dst, nodes, walks, probe, endpoint, pods, host_route, frozenset(after))
    _name_isolating_policies(client, res, pods)
    if ct_line:
        res.conntrack = f"node/{ct_node}: {ct_line}"
    res.probe = probe
    return res


def _name_isolating_policies(client, res: Result, pods: list[dict]) -> None:
    """A default deny whose pod chain jumped to no policy (the policies selecting the pod
    allow nothing): name them from the API instead of "no policy"."""
    for i in range(len(res.hops) - 1, -1, -1):
        h = res.hops[i]
        if not h.table:
            continue
        d = policy.explain(res.hops, i)
        if d is not None and not d.policies:
            full = policy.with_selecting(d, client.list("networkpolicies"), pods)
            if full.policies:
                res.hops[i] = Hop(h.at, h.interface, h.table, h.chain, h.rule,
                                  h.action.replace(d.text(), full.text()))
        return


def _nft_walk(text: str, table: str, match: dict, src_ip: str, dst: Dest
              ) -> ruleflow.Trace | None:
    """The Trace of the probe's first packet in one node's `nft monitor trace` output."""
    pkt = nftrace.first_packet(nftrace.parse_monitor(text), table, match)
    if pkt is None:
        return None
    return nftrace.packet_trace(pkt, table, src_ip, dst.ip, dst.port, dst.proto)[0]


def _after_routing_chains(netns: str) -> set[str]:
    """Every base chain of the forward, input and postrouting hooks in the node's tables
    (kube-proxy's, the NetworkPolicy table, ...): the routing decision comes before them."""
    p = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "chains"],
                       capture_output=True, text=True, timeout=20)
    try:
        items = json.loads(p.stdout or "{}").get("nftables", [])
    except ValueError:
        return set()
    return {c["chain"]["name"] for c in items if "chain" in c
            and c["chain"].get("hook") in ("forward", "input", "postrouting")}


LAST_TRACE_FILE = "last-trace.json"


def last_trace_path(cluster: str) -> str:
    """/run/netsim/<cluster>/last-trace.json: the JSON of the last `netsim trace`
    (`-o json`'s document), for `netsim topology -o html` to draw."""
    from netsim.net.ledger import run_dir  # noqa: PLC0415
    return os.path.join(run_dir(cluster), LAST_TRACE_FILE)


def save_last_trace(cluster: str, doc: dict) -> str | None:
    """Write `doc` to last_trace_path atomically (rename); None when the run dir is gone
    (the cluster went down meanwhile) or cannot be written: a trace never fails on it."""
    path = last_trace_path(cluster)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None
    return path


def _gateway(n: NodeInfo) -> str:
    return str(next(ipaddress.ip_network(n.pod_cidr, strict=False).hosts())) if n.pod_cidr \
        else n.ip


def _ip_route_get(netns: str | None, dst: str) -> str:
    argv = ["ip", "route", "get", dst]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return " ".join((p.stdout or p.stderr).split()) or "?"


def _no_route(route: str) -> bool:
    return "unreachable" in route or "No route" in route or "unreachable" in route.lower()
