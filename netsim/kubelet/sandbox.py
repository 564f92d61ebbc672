"""Pod sandboxes: a netns with eth0 on the node's cni0 bridge, plus resolv.conf and hosts.

Runs inside the node agent (which lives in the node's netns). Netlink sockets are opened
and closed per call; namespace switches touch only the calling thread, so several threads
may make sandboxes at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil

from netsim.net import netlink as nl
from netsim.net import rtnl
from netsim.net.ledger import Ledger

ETC_NETNS = "/etc/netns"


def veth_name(pod_uid: str) -> str:
    return "veth" + hashlib.sha256(pod_uid.encode()).hexdigest()[:8]


def netns_name(cluster: str, pod_uid: str) -> str:
    return f"{cluster}-pod-{hashlib.sha256(pod_uid.encode()).hexdigest()[:12]}"


def _omit_duplicates(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: list[str], extra: list[str]) -> list[str]:
    """kubelet mergeDNSOptions / appendOptions: one entry per option name, the last wins.

    (The kubelet goes through a Go map, so its order is random; first-seen order here.)
    """
    merged: dict[str, str] = {}
    for opt in [*existing, *extra]:
        name, sep, value = opt.partition(":")
        merged[name] = value if sep else ""
    return [f"{k}:{v}" if v != "" else k for k, v in merged.items()]


def _host_dns(path: str) -> tuple[list[str], list[str], list[str]]:
    """kubelet parseResolvConf: nameservers, the last `search` line, options (deduped)."""
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return servers, searches, options
    for line in lines:
        for mark in "#;":
            line = line.split(mark, 1)[0]
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "nameserver" and len(parts) >= 2:
            servers.append(parts[1])
        elif parts[0] == "search":  # `domain` lines are ignored by the kubelet
            searches = [s.removesuffix(".") for s in parts[1:] if s != "."]
        elif parts[0] == "options":
            options = _merge_options(options, parts[1:])
    return servers, searches, options


def resolv_conf(pod: dict, *, dns_ip: str, domain: str, host_resolv: str = "/etc/resolv.conf") -> str:
    """/etc/resolv.conf exactly as the kubelet writes it for the pod's dnsPolicy.

    kubelet pkg/kubelet/network/dns/dns.go: ClusterFirst (not hostNetwork) and
    ClusterFirstWithHostNet -> the cluster DNS only, the cluster search list followed by the
    node's search domains, `ndots:5`; Default and hostNetwork + ClusterFirst -> the node's
    resolv.conf; None -> nothing. Then dnsConfig is appended (duplicates omitted, options
    merged by name) and the limits applied (3 nameservers, 32 search domains of at most 253
    characters, 2048 characters in all).
    """
    spec = pod.get("spec", {})
    ns = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    cfg = spec.get("dnsConfig") or {}
    if policy == "None":
        servers, searches, options = [], [], []
    else:
        servers, searches, options = _host_dns(host_resolv)
        if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
            servers = [dns_ip]
            searches = _omit_duplicates([f"{ns}.svc.{domain}", f"svc.{domain}", domain,
                                         *searches])
            options = ["ndots:5"]
    servers = _omit_duplicates([*servers, *(cfg.get("nameservers") or [])])
    searches = _omit_duplicates([*searches, *(cfg.get("searches") or [])])
    options = _merge_options(options, [
        o["name"] + (f":{o['value']}" if o.get("value") not in (None, "") else "")
        for o in cfg.get("options") or [] if o.get("name")])
    servers = servers[:3]
    searches = [s for s in searches[:32] if len(s) <= 253]
    while searches and len(" ".join(searches)) > 2048:
        searches.pop()
    # containerd's parseDNSOptions writes the file: search, then nameservers, then options.
    lines = ["search " + " ".join(searches)] if searches else []
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def pod_hostname(pod: dict) -> str:
    """spec.hostname, else the pod's name cut to 63 characters without a trailing '-' or
    '.' (kubelet GeneratePodHostNameAndDomain / truncatePodHostnameIfNeeded)."""
    name = pod.get("spec", {}).get("hostname") or pod["metadata"]["name"]
    return name if len(name) <= 63 else name[:63].rstrip("-.")


def hosts_file(pod: dict, ip: str, domain: str = "cluster.local") -> str:
    """The kubelet-managed /etc/hosts (managedHostsFileContent)."""
    spec = pod.get("spec", {})
    name = pod_hostname(pod)
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if spec.get("subdomain"):
        ns = pod["metadata"].get("namespace", "default")
        lines.append(f"{ip}\t{name}.{spec['subdomain']}.{ns}.svc.{domain}\t{name}")
    else:
        lines.append(f"{ip}\t{name}")
    if spec.get("hostAliases"):
        lines += ["", "# Entries added by HostAliases."]
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias['ip']}\t" + "\t".join(alias.get("hostnames") or []))
    return "\n".join(lines) + "\n"


def write_etc(netns: str, files: dict[str, str], ledger: Ledger) -> str:
    """/etc/netns/<netns>/{resolv.conf,hosts}: what `ip netns exec` bind-mounts over /etc."""
    d = os.path.join(ETC_NETNS, netns)
    ledger.add("dir", path=d)
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def create(cluster: str, pod_uid: str, ip: str, pod_cidr: str, ledger: Ledger) -> tuple[str, str]:
    """Make the pod netns and its veth on cni0. Returns (netns, host-side veth name).

    Plain rtnetlink (netsim.net.rtnl), ~2 ms in all: the netns is made on the calling
    thread, which keeps a socket in it for the pod side and comes straight back; the veth
    is created up, on cni0, with its peer already in the pod. Idempotent (a half-made
    sandbox of a crashed agent is completed)."""
    ns = netns_name(cluster, pod_uid)
    veth = veth_name(pod_uid)
    ledger.add("netns", name=ns)
    fd, pod = nl.open_netns(ns)
    try:
        net = ipaddress.ip_network(pod_cidr)
        gw = str(next(net.hosts()))
        with rtnl.Rtnl() as node:
            cni0 = rtnl.index("cni0")
            idx = rtnl.index(veth)
            if idx is None:
                node.veth(veth, "eth0", fd, master=cni0, peer_mac=rtnl.mac_for_ip(ip))
                idx = rtnl.index(veth)
            else:
                node.set_up(idx, master=cni0)
            # hairpin: a pod must reach itself through its own Service.
            node.hairpin(idx)
            # Static neighbours both ways (pod -> gateway, node -> pod): dynamic ARP
            # entries of every netns count against one kernel-wide table (gc_thresh3 =
            # 1,024), which a 1,000-pod cluster overflows; permanent ones do not count.
            node.neigh_permanent(cni0, ip, rtnl.mac_for_ip(ip))
        pod.set_up(1)
        eth0 = pod.link_index("eth0")
        if eth0 is None:
            raise OSError(f"sandbox {ns}: no eth0 in the pod netns")
        pod.set_up(eth0)
        pod.add_addr(eth0, ip, net.prefixlen)
        pod.add_route("0.0.0.0/0", gateway=gw)
        pod.neigh_permanent(eth0, gw, rtnl.mac_for_ip(gw))
    finally:
        pod.close()
        os.close(fd)
    return ns, veth


def destroy(cluster: str, pod_uid: str, ledger: Ledger, ip: str | None = None) -> None:
    """Remove the pod's veth, netns and files, and the node's neighbour entry for `ip`
    (a pod IP without a pod must not answer from a stale entry)."""
    ns = netns_name(cluster, pod_uid)
    idx = rtnl.index(veth_name(pod_uid))
    cni0 = rtnl.index("cni0")
    with rtnl.Rtnl() as node:
        if idx is not None:
            with contextlib.suppress(OSError):
                node.del_link(idx)
        if ip and cni0 is not None:
            with contextlib.suppress(OSError):
                node.neigh_del(cni0, ip)
    nl.remove_netns(ns)
    d = os.path.join(ETC_NETNS, ns)
    shutil.rmtree(d, ignore_errors=True)
    ledger.forget("netns", name=ns)
    ledger.forget("dir", path=d)
