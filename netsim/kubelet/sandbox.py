"""Pod sandboxes: a netns with eth0 on the node's cni0 bridge, plus resolv.conf and hosts.

Runs inside the node agent (which lives in the node's netns). All pyroute2 sockets are
opened and closed per call on the calling thread.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil

from netsim.net import netlink as nl
from netsim.net.ledger import Ledger

ETC_NETNS = "/etc/netns"


def veth_name(pod_uid: str) -> str:
    return "veth" + hashlib.sha256(pod_uid.encode()).hexdigest()[:8]


def netns_name(cluster: str, pod_uid: str) -> str:
    return f"{cluster}-pod-{pod_uid.replace('-', '')[:12]}"


def resolv_conf(pod: dict, *, dns_ip: str, domain: str, host_resolv: str = "/etc/resolv.conf") -> str:
    """/etc/resolv.conf exactly as the kubelet writes it for the pod's dnsPolicy."""
    spec = pod.get("spec", {})
    ns = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    cfg = spec.get("dnsConfig") or {}
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [dns_ip]
        searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
        options = ["ndots:5"]
    elif policy == "Default":
        try:
            with open(host_resolv) as f:
                for line in f:
                    parts = line.split()
                    if not parts:
                        continue
                    if parts[0] == "nameserver":
                        servers.append(parts[1])
                    elif parts[0] in ("search", "domain"):
                        searches = parts[1:]
                    elif parts[0] == "options":
                        options.extend(parts[1:])
        except OSError:
            pass
    servers += [s for s in cfg.get("nameservers") or [] if s not in servers]
    searches += [s for s in cfg.get("searches") or [] if s not in searches]
    for o in cfg.get("options") or []:
        opt = o["name"] + (f":{o['value']}" if o.get("value") is not None else "")
        options = [x for x in options if x.split(":")[0] != o["name"]] + [opt]
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict, ip: str) -> str:
    """The kubelet-managed /etc/hosts."""
    spec = pod.get("spec", {})
    name = spec.get("hostname") or pod["metadata"]["name"]
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if spec.get("subdomain"):
        ns = pod["metadata"].get("namespace", "default")
        lines.append(f"{ip}\t{name}.{spec['subdomain']}.{ns}.svc.cluster.local\t{name}")
    else:
        lines.append(f"{ip}\t{name}")
    for alias in spec.get("hostAliases") or []:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
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
    """Make the pod netns and its veth on cni0. Returns (netns, host-side veth name)."""
    ns = netns_name(cluster, pod_uid)
    veth = veth_name(pod_uid)
    ledger.add("netns", name=ns)
    nl.create_netns(ns)
    net = ipaddress.ip_network(pod_cidr)
    gw = str(next(net.hosts()))
    with nl.inside(None) as ipr:
        idx = nl.veth_into(ipr, veth, "eth0", ns)
        ipr.link("set", index=idx, master=nl.index(ipr, "cni0"), state="up")
        # hairpin: a pod must reach itself through its own Service
        ipr.brport("set", index=idx, hairpin_mode=1)
    with nl.inside(ns) as ipr:
        ipr.link("set", index=1, state="up")
        eth0 = nl.index(ipr, "eth0")
        nl.add_addr(ipr, eth0, ip, net.prefixlen)
        ipr.link("set", index=eth0, state="up")
        nl.add_route(ipr, dst="0.0.0.0/0", gateway=gw)
    return ns, veth


def destroy(cluster: str, pod_uid: str, ledger: Ledger) -> None:
    ns = netns_name(cluster, pod_uid)
    with nl.inside(None) as ipr:
        nl.del_link(ipr, veth_name(pod_uid))
    nl.remove_netns(ns)
    d = os.path.join(ETC_NETNS, ns)
    shutil.rmtree(d, ignore_errors=True)
    ledger.forget("netns", name=ns)
    ledger.forget("dir", path=d)
