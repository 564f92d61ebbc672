"""`netsim node add [NAME]` / `netsim node remove NAME`: grow or shrink a running cluster.

A node is what `cluster up` makes per node, made the same way (topology.build_node,
lifecycle.start_agent): a netns on the LAN bridge with the next LAN address, the next pod
/24 behind its cni0, host-gw routes both ways between it and every other node, and its
agent (kubelet, kube-proxy in the cluster's mode, the NetworkPolicy agent). Everything is
written to the ledger before it is made, so `cluster down` removes it even after a
SIGKILL; an add that fails midway takes back what it made; a remove drains the node
first as `kubectl drain --ignore-daemonsets --force --delete-emptydir-data` does (evictions
that honour PodDisruptionBudgets; their controllers make the pods again elsewhere).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import shutil
import time
from collections.abc import Iterator

from netsim.api import errors
from netsim.api.client import HttpClient
from netsim.api.validation import is_dns1123_subdomain
from netsim.cluster import lifecycle, procs
from netsim.controllers import podgc
from netsim.kubelet import cgroups, runtime, sandbox
from netsim.net import netlink as nl
from netsim.net import topology
from netsim.net.ledger import Ledger, private_dir, run_dir, state_dir
from netsim.net.topology import ClusterConfig, NodeSpec


class NodeError(Exception):
    """One line for the user, already in kubectl's words where kubectl has some."""


def not_found(name: str) -> NodeError:
    return NodeError(f'Error from server (NotFound): nodes "{name}" not found')


# ---- allocation (pure) -------------------------------------------------------------------

def name_error(name: str) -> str | None:
    """Why `name` cannot name a Node (the apiserver's words), None when it can. "lan" is
    refused too: the node's netns <cluster>-<name> would be the LAN's."""
    msgs = is_dns1123_subdomain(name)
    if msgs:
        return f'The Node "{name}" is invalid: metadata.name: Invalid value: "{name}": ' + \
            "; ".join(msgs)
    if name == "lan" or name.startswith("pod-"):
        return (f'node name "{name}" is reserved: netsim names its LAN netns <cluster>-lan '
                "and pod netns <cluster>-pod-<hash>")
    return None


def next_node(cfg: ClusterConfig, name: str | None = None) -> NodeSpec:
    """The node `node add` makes next: the lowest free LAN address from .171 up (where
    `cluster up` puts its nodes), named as `cluster up` names workers (k8s-slave-<octet>)
    unless `name` is given, and the first pod /24 no node has. ValueError when the LAN or
    the pod CIDR has no room left."""
    lan = ipaddress.ip_network(cfg.lan)
    used_ips = {ipaddress.ip_address(n.ip) for n in cfg.nodes}
    used_names = {n.name for n in cfg.nodes}
    offset = None
    for off in range(topology.FIRST_NODE_OFFSET, lan.num_addresses - 1):
        if lan[off] in used_ips or lan[off] == ipaddress.ip_address(cfg.host_ip):
            continue
        if name is None and topology.node_name(off) in used_names:
            continue
        offset = off
        break
    if offset is None:
        raise ValueError(f"the LAN {cfg.lan} has no free address for another node (nodes take "
                         f".{topology.FIRST_NODE_OFFSET} and up)")
    used_cidrs = [ipaddress.ip_network(n.pod_cidr) for n in cfg.nodes]
    pods = ipaddress.ip_network(cfg.pod_cidr)
    subnets = pods.subnets(new_prefix=24) if pods.prefixlen <= 24 else iter(())
    sub = next((s for s in subnets if not any(s.overlaps(u) for u in used_cidrs)), None)
    if sub is None:
        raise ValueError(f"the pod CIDR {cfg.pod_cidr} has no free /24 for another node")
    return NodeSpec(name or topology.node_name(offset), str(lan[offset]), str(sub), False)


# ---- helpers -----------------------------------------------------------------------------

def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


@contextlib.contextmanager
def _locked(cluster: str) -> Iterator[None]:
    """One `node add`/`node remove` at a time per cluster (they rewrite cluster.json)."""
    private_dir(run_dir(cluster))
    with open(os.path.join(run_dir(cluster), "nodes.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _running(cluster: str) -> ClusterConfig:
    cfg = ClusterConfig.load(cluster)
    if cfg is None or not lifecycle.is_up(cluster):
        raise NodeError(f'cluster "{cluster}" is not up')
    return cfg


def _ready(node: dict | None) -> bool:
    return bool(node) and any(c.get("type") == "Ready" and c.get("status") == "True"
                              for c in (node.get("status") or {}).get("conditions") or [])


def _wait(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(errors.ApiError, OSError):
            if cond():
                return True
        time.sleep(0.05)
    return False


def _pods_on(client: HttpClient, node: str) -> list[dict]:
    return client.list("pods", None, field_selector=f"spec.nodeName={node}")


def _daemon_pod(pod: dict) -> bool:
    return any(r.get("kind") == "DaemonSet" and r.get("controller")
               for r in pod["metadata"].get("ownerReferences") or [])


def _delete_pods(client: HttpClient, pods: list[dict], quiet: bool,
                 grace: int | None = None) -> int:
    n = 0
    for p in pods:
        md = p["metadata"]
        with contextlib.suppress(errors.NotFound):
            client.delete("pods", md["name"], md["namespace"], grace_period_seconds=grace)
            n += 1
            _say(f'pod "{md["name"]}" deleted from {md["namespace"]} namespace', quiet)
    return n


def _gc_orphans(client: HttpClient, pods: list[dict], quiet: bool) -> None:
    """The pod GC controller's orphan sweep (netsim.controllers.podgc: Failed,
    DisruptionTarget DeletionByPodGC, grace period 0) for the pods of the Node just deleted,
    without its 40 s quarantine: the remove deleted that Node itself."""
    for p in pods:
        md = p["metadata"]
        with contextlib.suppress(errors.NotFound):
            podgc.mark_failed_and_delete(client, p, podgc.ORPHANED)
            _say(f'pod "{md["name"]}" force deleted from {md["namespace"]} namespace', quiet)


def _gone(client: HttpClient, node: str, uids: set[str]) -> bool:
    return not uids & {p["metadata"].get("uid") for p in _pods_on(client, node)}


def _grace(pods: list[dict]) -> float:
    return max([float((p.get("spec") or {}).get("terminationGracePeriodSeconds", 30) or 0)
                for p in pods] + [0.0])


# ---- add -----------------------------------------------------------------------------------

def add(cluster: str, name: str | None = None, *, quiet: bool = False,
        timeout: float = 60.0) -> NodeSpec:
    """Make one more node on a running cluster; returns it once its Node is Ready."""
    if name is not None and name_error(name):
        raise NodeError(name_error(name))
    _running(cluster)
    client = HttpClient(cluster)
    with _locked(cluster):
        cfg = _running(cluster)
        if name is not None and (name in {n.name for n in cfg.nodes}
                                 or client.get_or_none("nodes", name)):
            raise NodeError(f'Error from server (AlreadyExists): nodes "{name}" already exists')
        try:
            spec = next_node(cfg, name)
        except ValueError as e:
            raise NodeError(f"error: {e}") from e
        netns = cfg.node_netns(spec.name)
        if nl.netns_exists(netns):
            raise NodeError(f"error: the netns {netns} exists and is not a node of cluster "
                            f'"{cluster}": netsim leaves it alone (choose another name)')
        t0 = time.monotonic()
        _say(f'Adding node "{spec.name}" to cluster "{cluster}" ...', quiet)
        others = list(cfg.nodes)
        try:
            cfg.nodes.append(spec)
            cfg.save()  # first: the agent reads its node from cluster.json
            topology.build_node(cfg, spec, Ledger(cluster))  # its routes to the others too
            for other in others:
                topology.node_route(cfg, other, spec)
            _say(f" ✓ Network: {spec.ip} on the LAN {cfg.lan}, pods {spec.pod_cidr} "
                 f"(cni0 {spec.gateway}), routes on {len(others)} nodes", quiet)
            lifecycle.start_agent(cfg, spec.name)
            if not _wait(lambda: _ready(client.get_or_none("nodes", spec.name)), timeout):
                log = os.path.join(state_dir(cluster), "logs", f"agent-{spec.name}.log")
                raise NodeError(f"error: node {spec.name} did not become Ready within "
                                f"{timeout:.0f}s (see {log}); nothing of it is left")
            _say(f" ✓ Node Ready in {time.monotonic() - t0:.1f}s "
                 f"(kubelet + kube-proxy {cfg.proxy_mode} + NetworkPolicy agent)", quiet)
        except BaseException:
            teardown(cluster, spec.name)
            raise
    _say(f"node/{spec.name} created", quiet)
    return spec


# ---- remove --------------------------------------------------------------------------------

def remove(cluster: str, name: str, *, quiet: bool = False, timeout: float = 60.0) -> None:
    """Drain the node (its pods are evicted: their controllers make them again on the
    other nodes), delete its Node, stop its agent and remove its network and records."""
    _running(cluster)
    client = HttpClient(cluster)
    with _locked(cluster):
        cfg = _running(cluster)
        spec = next((n for n in cfg.nodes if n.name == name), None)
        node = client.get_or_none("nodes", name)
        if spec is None:
            raise not_found(name)
        if spec.control_plane:
            raise NodeError(f'error: node "{name}" is the control-plane node: netsim cannot '
                            "remove it (the API's in-cluster address lives there)")
        t0 = time.monotonic()
        _say(f'Removing node "{name}" from cluster "{cluster}" ...', quiet)
        if node is not None:
            _drain(client, name, node, quiet, timeout)
        teardown(cluster, name)
    _say(f" ✓ Agents stopped, netns {cfg.node_netns(name)}, its LAN port and the routes to "
         f"{spec.pod_cidr} on {len(cfg.nodes) - 1} nodes removed", quiet)
    _say(f'Node "{name}" removed from cluster "{cluster}" in {time.monotonic() - t0:.1f}s.',
         quiet)


def _drain(client: HttpClient, name: str, node: dict, quiet: bool, timeout: float) -> None:
    """`kubectl drain NODE --ignore-daemonsets --force --delete-emptydir-data` (netsim.cli.
    drain: evictions, so PodDisruptionBudgets are honoured, with kubectl's lines), then the
    Node is deleted and the DaemonSets' pods after it (their controller would make them again
    on a node that exists). A drain that fails within `timeout` uncordons the node again
    and stops the remove (what it evicted, their controllers made again elsewhere)."""
    from netsim.cluster.drain import Drainer, DrainOptions
    was_cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    # a node whose agent is not running (`node stop`) would never finish a graceful
    # delete: its pods go at once, as `kubectl drain --grace-period=0` sends them
    running = any(procs.alive(r) for r in lifecycle.agent_records(client.cluster, name))
    opts = DrainOptions(ignore_daemonsets=True, force=True, delete_emptydir_data=True,
                        timeout=timeout, grace_period=-1 if running else 0)
    drainer = Drainer(client, opts, *([lambda s: None] * 2 if quiet else []))
    try:
        if not drainer.drain([name]):
            raise NodeError(f"error: {drainer.failure} (node {name} was not removed)")
        client.delete("nodes", name)
    except BaseException:
        if not was_cordoned:
            with contextlib.suppress(errors.ApiError, OSError):
                client.patch("nodes", name, None, {"spec": {"unschedulable": None}})
        raise
    _say(f'node "{name}" deleted', quiet)
    rest = _pods_on(client, name)
    if not running:  # no kubelet to finish a graceful delete: what the pod GC does
        _gc_orphans(client, rest, quiet)
        return
    # What is left is the DaemonSets' (orphans the pod GC would take 40 s after the Node's
    # deletion): deleted now, while the kubelet is there to stop them gracefully.
    _delete_pods(client, rest, quiet)
    uids = {p["metadata"]["uid"] for p in rest}
    if not _wait(lambda: _gone(client, name, uids), _grace(rest) + timeout / 2):
        _delete_pods(client, _pods_on(client, name), True, grace=0)


# ---- teardown (remove, and an add's rollback) ----------------------------------------------

def teardown(cluster: str, name: str) -> list[str]:
    """Remove everything of node `name` that exists, whatever state it is in (an add cut
    short, a node whose agent died): its agent and whatever still runs in its pods, its
    pods' netns and cgroups, the routes to it on the other nodes, its netns and LAN port,
    its Node and the pods still bound to it, its records. Returns what it removed."""
    done: list[str] = []
    cfg = ClusterConfig.load(cluster)
    ledger = Ledger(cluster)
    spec = next((n for n in cfg.nodes if n.name == name), None) if cfg else None
    # 1. the agent (kubelet, kube-proxy, NetworkPolicy agent: one process)
    agents = lifecycle.agent_records(cluster, name)
    procs.terminate([(r["pid"], r["starttime"]) for r in agents if procs.alive(r)], grace=5.0)
    for r in agents:
        ledger.forget("process", **{k: v for k, v in r.items() if k != "kind"})
    if agents:
        done.append("agent")
    # 2. what still runs in its pods (cgroups, pod netns) or in the node's netns
    root = runtime.node_root(cluster, name)
    records = [r for d in _listdir(os.path.join(root, "pods"))
               for r in [runtime.PodRecord.load(os.path.join(root, "pods", d))] if r]
    pod_netns = [r.netns for r in records if r.netns and not r.host_network]
    node_cg = cgroups.node_path(cluster, name)
    if node_cg:
        cgroups.kill(node_cg)
    inodes = {i for ns in [*pod_netns, cfg.node_netns(name) if cfg else f"{cluster}-{name}"]
              for i in [nl.netns_inode(ns)] if i}
    procs.terminate(procs.processes_in_netns(inodes), grace=0.3)
    for ns in pod_netns:
        nl.remove_netns(ns)
        d = os.path.join(sandbox.ETC_NETNS, ns)
        shutil.rmtree(d, ignore_errors=True)
        ledger.forget("netns", name=ns)
        ledger.forget("dir", path=d)
        done.append(f"netns {ns}")
    if node_cg:
        cgroups.remove(node_cg)
        for r in ledger.records():
            if r["kind"] == "cgroup" and (r["path"] == node_cg
                                          or r["path"].startswith(node_cg + "/")):
                ledger.forget("cgroup", **{k: v for k, v in r.items() if k != "kind"})
    # 3. the network: the other nodes' routes to it, its LAN port, its netns
    if cfg and spec:
        for other in cfg.nodes:
            if other.name != name:
                with contextlib.suppress(OSError):
                    topology.node_route(cfg, other, spec, add=False)
        done.append(f"routes to {spec.pod_cidr}")
    if cfg and nl.netns_exists(cfg.lan_netns):
        fd, lan = nl.open_netns(cfg.lan_netns)
        with lan:
            os.close(fd)
            idx = lan.link_index(topology.lan_port_name(name))
            if idx is not None:
                with contextlib.suppress(OSError):
                    lan.del_link(idx)
                done.append(f"link {topology.lan_port_name(name)}")
    netns = cfg.node_netns(name) if cfg else f"{cluster}-{name}"
    if nl.netns_exists(netns):
        nl.remove_netns(netns)
        done.append(f"netns {netns}")
    ledger.forget("netns", name=netns)
    # 4. the API's view: the Node and the pods still bound to it (nothing runs them now)
    with contextlib.suppress(errors.ApiError, OSError):
        client = HttpClient(cluster)
        with contextlib.suppress(errors.NotFound):
            client.delete("nodes", name)
        for p in _pods_on(client, name):
            with contextlib.suppress(errors.NotFound):
                client.delete("pods", p["metadata"]["name"], p["metadata"]["namespace"],
                              grace_period_seconds=0)
    # 5. its files and its place in cluster.json
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(runtime.node_disk_root(cluster, name), ignore_errors=True)
    for suffix in ("", ".lock", ".tmp"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(state_dir(cluster), "ipam", f"{name}.json{suffix}"))
    if cfg and spec:
        cfg.nodes = [n for n in cfg.nodes if n.name != name]
        cfg.save()
    return done


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


__all__ = ["add", "remove", "teardown", "next_node", "name_error", "NodeError"]
