"""`netsim cluster up|down|status`: build or remove everything one cluster consists of."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import yaml

from netsim.api import errors
from netsim.api.client import HttpClient, socket_path
from netsim.cluster import agents, kubeconfig, procs
from netsim.kubelet import cgroups, mounter
from netsim.net import netlink as nl
from netsim.net import tc, topology
from netsim.net.ledger import RUN_ROOT, STATE_ROOT, Ledger, private_dir, run_dir, state_dir
from netsim.net.topology import ClusterConfig


class ClusterError(Exception):
    pass


LEDGER = "ledger.jsonl"
POD_STATE = ("nodes", "ipam")  # state folders on a tmpfs of their own (_pod_state_tmpfs)
POD_DISK = "disk"  # the pods' disk volumes (runtime.node_disk_root), on the disk
# What netsim itself writes in /var/lib/netsim/<cluster>: `down` removes these and nothing else.
OWN_ENTRIES = {"cluster.json", "cluster.json.tmp", "logs", "nodes", "ipam", POD_DISK, "ingress", "store.db", "store.db-wal",
               "store.db-shm", "store.db-journal", "pki"}  # pki.PKI_DIR
# Where pods and LAN hosts reach the API: the host's LAN address on kube-apiserver's port
# (the `kubernetes` Service's targetPort); another port when something already holds it.
LAN_API_PORT = 6443
_IP_FREEBIND = 15
# `cluster up` waits for the API and the node agents as long as they make progress (CPU
# used, log lines, Nodes registering or turning Ready) and gives up after this many
# seconds without any: a loaded machine is slow, not broken.
UP_IDLE_SECONDS = 60.0
# its polls: every 50 ms, or 4x what one poll cost when that is more (at most 1 s)
POLL_SECONDS, POLL_COST_FACTOR, MAX_POLL_SECONDS = 0.05, 4.0, 1.0


def _check_name(name: str) -> None:
    """Refuse a name that is not a cluster name before anything is touched (it becomes a path)."""
    msg = topology.cluster_name_error(name)
    if msg:
        raise ClusterError(msg)


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


def is_up(name: str) -> bool:
    if topology.cluster_name_error(name):
        return False
    led = Ledger.__new__(Ledger)
    led.path = os.path.join(state_dir(name), LEDGER)
    return any(r["kind"] == "process" and r.get("role") == "controlplane" and procs.alive(r)
               for r in led.records()) if os.path.exists(led.path) else False


def other_clusters(name: str) -> list[ClusterConfig]:
    out = []
    if os.path.isdir(STATE_ROOT):
        for d in sorted(os.listdir(STATE_ROOT)):
            if d != name:
                cfg = ClusterConfig.load(d)
                if cfg:
                    out.append(cfg)
    return out


def netsim_ledgers() -> list[list[dict]]:
    """The records of every cluster's ledger on this machine (this one's leftovers included)."""
    out = []
    if os.path.isdir(STATE_ROOT):
        for d in sorted(os.listdir(STATE_ROOT)):
            if not topology.cluster_name_error(d) and os.path.isfile(os.path.join(STATE_ROOT, d, LEDGER)):
                led = Ledger.__new__(Ledger)
                led.path = os.path.join(STATE_ROOT, d, LEDGER)
                out.append(led.records())
    return out


def host_routes() -> list[dict]:
    """The root netns's IPv4 routes in every table (`ip -j route show table all`)."""
    try:
        p = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                           capture_output=True, text=True, timeout=10)
        routes = json.loads(p.stdout) if p.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        routes = None
    if not isinstance(routes, list):
        raise ClusterError("cannot read the host's routes (ip -j route show table all): "
                           "netsim checks them before it adds its own")
    return routes


def _route_net(r: dict) -> ipaddress.IPv4Network | None:
    dst = r.get("dst", "")
    if dst == "default":
        return ipaddress.ip_network("0.0.0.0/0")
    try:
        return ipaddress.ip_network(dst, strict=False)
    except ValueError:
        return None


def describe_route(r: dict) -> str:
    """A route the way `ip route` prints it (the parts a user recognises it by)."""
    words = [] if r.get("type", "unicast") == "unicast" else [r["type"]]
    words.append(r.get("dst", "?"))
    if r.get("gateway"):
        words += ["via", r["gateway"]]
    if r.get("dev"):
        words += ["dev", r["dev"]]
    if r.get("table") not in (None, "main"):
        words += ["table", str(r["table"])]
    if r.get("metric"):
        words += ["metric", str(r["metric"])]
    return " ".join(words)


def host_route_conflict(cfg: ClusterConfig, routes: list[dict],
                        ledgers: list[list[dict]]) -> str | None:
    """Why the host's routes forbid `cfg`'s LAN, pod or service CIDR (None when they do not).

    A route more specific than a default route that overlaps a CIDR would be shadowed by
    netsim's routes (or shadow them), so it is refused. Default routes do not count: 0/0,
    and the 0.0.0.0/1 + 128.0.0.0/1 pair VPNs put in its place, overlap everything. The
    routes netsim clusters add themselves (their `unreachable` routes, the routes via their
    host veth) are recorded in their ledgers and do not count either: clusters with the
    same pod and service CIDRs run side by side."""
    own_devs = {r["name"] for recs in ledgers for r in recs if r["kind"] == "link" and not r.get("ns")}
    own_routes = {(str(ipaddress.ip_network(r["dst"], strict=False)), r.get("type", "unicast"),
                   r.get("metric")) for recs in ledgers for r in recs if r["kind"] == "route"}
    for label, flag, cidr in (("LAN", "--lan", cfg.lan), ("pod CIDR", "--pod-cidr", cfg.pod_cidr),
                              ("service CIDR", "--service-cidr", cfg.service_cidr)):
        net = ipaddress.ip_network(cidr)
        for r in routes:
            rnet = _route_net(r)
            if rnet is None or rnet.prefixlen <= 1 or not rnet.overlaps(net):
                continue
            if r.get("dev") in own_devs:
                continue
            if (str(rnet), r.get("type", "unicast"), r.get("metric")) in own_routes:
                continue
            return (f'the {label} {cidr} overlaps the host\'s route "{describe_route(r)}": '
                    f"choose another with {flag}")
    return None


def cluster_conflict(cfg: ClusterConfig, others: list[ClusterConfig]) -> str | None:
    """Why another cluster's networks forbid `cfg`'s (None when they do not). LANs are
    each cluster's own and meet no other cluster's LAN, pod or service CIDR; pod and
    service CIDRs may be shared (each cluster's routes to them live in its own netns)."""
    lan = ipaddress.ip_network(cfg.lan)
    for other in others:
        theirs = (("LAN", other.lan), ("pod CIDR", other.pod_cidr),
                  ("service CIDR", other.service_cidr))
        for what, cidr in theirs:
            if ipaddress.ip_network(cidr).overlaps(lan):
                return (f'the LAN {cfg.lan} overlaps cluster "{other.name}"'
                        + (f" ({cidr})" if what == "LAN" else f"'s {what} {cidr}")
                        + ": choose another with --lan")
        for what, flag, cidr in (("pod CIDR", "--pod-cidr", cfg.pod_cidr),
                                 ("service CIDR", "--service-cidr", cfg.service_cidr)):
            if ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(other.lan)):
                return (f'the {what} {cidr} overlaps the LAN of cluster "{other.name}" '
                        f"({other.lan}): choose another with {flag}")
    return None


def _private_file(path: str) -> str:
    """Create `path` (a log the daemon appends to) readable by root only."""
    private_dir(os.path.dirname(path))
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    return path


def _free_port(host: str, want: int = 0) -> int:
    """A TCP port free on `host` (`want` when it is), found as kind finds its API port: bind,
    read, close. The address need not exist yet (IP_FREEBIND)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        try:
            s.bind((host, want))
        except OSError:
            if not want:
                raise
            s.bind((host, 0))
        return s.getsockname()[1]


def api_endpoint(name: str) -> dict | None:
    """The cluster's HTTPS listeners as `cluster up` recorded them: {"host", "port", "lan"}."""
    recs = [r for r in Ledger(name).records() if r["kind"] == "apiserver"]
    return recs[-1] if recs else None


def _setup_https(cfg: ClusterConfig, ledger: Ledger) -> list[str]:
    """Certificates and ports for the HTTPS API; returns the control plane's extra flags."""
    port = _free_port("127.0.0.1")
    lan = None
    if cfg.host_access:
        lan = f"{cfg.host_ip}:{_free_port(cfg.host_ip, LAN_API_PORT)}"
    ledger.add("apiserver", host="127.0.0.1", port=port, lan=lan)
    from netsim.cluster import pki  # cryptography: ~0.1 s that `down` and `status` never need
    pki.create(state_dir(cfg.name), ["127.0.0.1", cfg.host_ip, cfg.kubernetes_ip])
    return ["--https-port", str(port)] + (["--lan-address", lan] if lan else [])


def kubeconfig_entries(name: str) -> tuple[str, bytes, bytes, bytes]:
    """(server URL, CA, admin cert, admin key) of a cluster that is up."""
    ep = api_endpoint(name)
    if ep is None:
        raise ClusterError(f'cluster "{name}" is not up')
    from netsim.cluster import pki
    p = pki.paths(state_dir(name))
    return (f"https://{ep['host']}:{ep['port']}", pki.read(p.ca_crt), pki.read(p.admin_crt),
            pki.read(p.admin_key))


def _merge_kubeconfig(name: str, ledger: Ledger, path: str | None = None) -> str:
    path = path or kubeconfig.default_path()
    ledger.add("kubeconfig", path=path, context=kubeconfig.entry_name(name))  # before writing
    try:
        kubeconfig.merge(path, name, *kubeconfig_entries(name))
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ClusterError(f"cannot add context {kubeconfig.entry_name(name)} to {path}: {e} "
                           "(point KUBECONFIG at another file)") from e
    return path


def up(cfg: ClusterConfig, *, quiet: bool = False, timeout: float = UP_IDLE_SECONDS,
       kubeconfig_path: str | None = None) -> bool:
    """Create the cluster. Returns False if it was already up. The context goes into
    `kubeconfig_path` (netsim.library's own file) or else where kubectl writes.

    `timeout` is how long the API and the agents may go without progress (see
    `_wait_progress`), not a deadline for the whole start. When `up` fails, everything it
    made is removed but for its logs, which the error names (`cluster down` or the next
    `up` removes them)."""
    _check_name(cfg.name)
    if is_up(cfg.name):
        _say(f'cluster "{cfg.name}" is already up (netsim cluster status --name {cfg.name})', quiet)
        return False
    path = state_dir(cfg.name)
    if os.path.lexists(path) and not os.path.isfile(os.path.join(path, LEDGER)):
        raise ClusterError(f"{path} exists and holds no netsim ledger: netsim leaves it alone "
                           "(remove it yourself or choose another --name)")
    conflict = cluster_conflict(cfg, other_clusters(cfg.name)) or \
        host_route_conflict(cfg, host_routes(), netsim_ledgers())
    if conflict:
        raise ClusterError(conflict)
    if os.path.exists(path):
        down(cfg.name, quiet=True)  # leftovers of a crashed cluster
    t0 = time.monotonic()
    _say(f'Creating cluster "{cfg.name}" ...', quiet)
    # The ledger first: a folder without one is never netsim's (see down). Everything below
    # /var/lib/netsim and /run/netsim/<cluster> is root's only (0700, files 0600).
    ledger = Ledger(cfg.name)
    ledger.add("dir", path=path)
    ledger.add("dir", path=run_dir(cfg.name))
    cfg.save()
    private_dir(RUN_ROOT)
    private_dir(run_dir(cfg.name))
    if not nl.netns_dir_mounted():
        # `ip netns` makes /run/netns a mount point on first use; undo that too if it was us.
        ledger.add("mount", path=nl.NETNS_DIR)
    try:
        # The control plane lives in the root netns and needs no network: it boots (~0.5 s
        # of imports and bootstrap) while the namespaces are made.
        logs = private_dir(os.path.join(path, "logs"))
        for d in POD_STATE:  # the agents' pod records, container logs, IP leases
            _pod_state_tmpfs(cfg.name, private_dir(os.path.join(path, d)), ledger)
        private_dir(os.path.join(path, POD_DISK))
        https = _setup_https(cfg, ledger)
        procs.spawn(ledger, "controlplane",
                    procs.python_module("netsim.cluster.controlplane", "--cluster", cfg.name,
                                        *https),
                    _private_file(os.path.join(logs, "controlplane.log")))
        topology.build_lan(cfg, ledger)
        for node in cfg.nodes:
            topology.build_node(cfg, node, ledger)
        if cfg.host_access:
            topology.build_host_access(cfg, ledger)
        else:
            topology.build_unreachable_only(cfg, ledger)
        write_node_tools(cfg.name)
        _say(f" ✓ Network: LAN {cfg.lan} bridge, {len(cfg.nodes)} nodes "
             f"({', '.join(n.name + ' ' + n.ip for n in cfg.nodes)})", quiet)
        # The agents' launcher imports them once while the control plane boots, waits for
        # the API, then forks one agent per node into its netns (netsim.cluster.agents).
        agent_logs = [_private_file(os.path.join(logs, f"agent-{n.name}.log")) for n in cfg.nodes]
        launcher_log = _private_file(os.path.join(logs, agents.LOG))
        launcher = procs.spawn(ledger, agents.ROLE,
                               agents.argv(cfg.name, [n.name for n in cfg.nodes]), launcher_log)
        client = HttpClient(cfg.name)
        cp_log = os.path.join(logs, "controlplane.log")

        def api_step():
            _check_alive(ledger, ("controlplane",), logs)
            _check_launcher(ledger, launcher, logs)
            done = os.path.exists(socket_path(cfg.name)) and bool(client.list("namespaces"))
            return done, _activity(ledger, ("controlplane",), [cp_log])
        _wait_progress(api_step, timeout, "the API server did not come up", logs)
        _say(f" ✓ Control plane: API on {socket_path(cfg.name)}", quiet)
        kc = _merge_kubeconfig(cfg.name, ledger, kubeconfig_path)
        ep = api_endpoint(cfg.name)
        _say(f" ✓ kubectl: context {kubeconfig.entry_name(cfg.name)} in {kc} "
             f"(https://127.0.0.1:{ep['port']}" + (f", {ep['lan']} on the LAN)" if ep["lan"] else ")"),
             quiet)
        roles = ("controlplane", *(f"agent/{n.name}" for n in cfg.nodes))

        def nodes_step():
            _check_alive(ledger, roles, logs)
            _check_launcher(ledger, launcher, logs)
            nodes = client.list("nodes")
            ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                              for c in n.get("status", {}).get("conditions", []))]
            counts = f"{len(ready)} of {len(cfg.nodes)} Ready, {len(nodes)} registered"
            # the agents' own activity: the control plane's idle loops are no progress of theirs
            return (len(ready) == len(cfg.nodes),
                    (len(nodes), len(ready),
                     _activity(ledger, (*roles[1:], agents.ROLE), [*agent_logs, launcher_log])),
                    counts)
        _wait_progress(nodes_step, timeout, "node agents did not register", logs)
        procs.reap([launcher])
        _say(f" ✓ Nodes Ready: {len(cfg.nodes)} (kubelet + kube-proxy {cfg.proxy_mode})", quiet)
    except BaseException as e:
        # what was made goes, the logs stay (they say why); `down` or the next `up` ends them
        down(cfg.name, quiet=True, keep_logs=isinstance(e, ClusterError))
        raise
    _say(f'Cluster "{cfg.name}" is up in {time.monotonic() - t0:.1f}s. Try: netsim get no -o wide', quiet)
    return True


def node_tools_dir(name: str) -> str:
    return os.path.join(run_dir(name), "bin")


def write_node_tools(name: str) -> None:
    """`iptables`, `iptables-save`, `iptables-restore` for `netsim node exec` that use the
    backend kube-proxy writes with (legacy when installed), so the seed's
    `iptables-save | grep svc-np-ublog` shows the rules instead of a backend warning."""
    from netsim.proxy.apply import backend_prefix
    prefix = backend_prefix()
    if prefix == "iptables":
        return
    d = node_tools_dir(name)
    os.makedirs(d, exist_ok=True)
    for tool in ("iptables", "iptables-save", "iptables-restore"):
        real = tool.replace("iptables", prefix, 1)
        path = os.path.join(d, tool)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\n# netsim: kube-proxy uses {prefix}; see the same tables\n'
                    f'exec {real} "$@"\n')
        os.chmod(path, 0o755)


def agent_records(name: str, node: str) -> list[dict]:
    return [r for r in Ledger(name).records()
            if r["kind"] == "process" and r.get("role") == f"agent/{node}"]


def stop_agent(name: str, node: str) -> int:
    """Kill a node's agent with SIGKILL, like a node that dies: its pods keep running."""
    killed = 0
    for r in agent_records(name, node):
        if procs.alive(r):
            os.kill(r["pid"], 9)
            killed += 1
        Ledger(name).forget("process", **{k: v for k, v in r.items() if k != "kind"})
    return killed


def start_agent(cfg: ClusterConfig, node: str) -> int:
    if any(procs.alive(r) for r in agent_records(cfg.name, node)):
        return 0
    logs = os.path.join(state_dir(cfg.name), "logs")
    return procs.spawn(Ledger(cfg.name), f"agent/{node}",
                       procs.python_module("netsim.kubelet", "--cluster", cfg.name, "--node", node),
                       _private_file(os.path.join(logs, f"agent-{node}.log")),
                       netns=cfg.node_netns(node))


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return 0


def _activity(ledger: Ledger, roles: tuple[str, ...], logs: list[str]) -> tuple[int, int]:
    """What changes while daemons get on with their start: the CPU they used, their logs."""
    ticks = sum(_cpu_ticks(r["pid"]) for r in ledger.records()
                if r["kind"] == "process" and r.get("role") in roles)
    size = 0
    for path in logs:
        with contextlib.suppress(OSError):
            size += os.path.getsize(path)
    return ticks, size


def _check_alive(ledger: Ledger, roles: tuple[str, ...], logs: str) -> None:
    """A daemon that exited during `up` will not come back: say which, and where its log is."""
    for r in ledger.records():
        if r["kind"] == "process" and r.get("role") in roles and not procs.alive(r):
            role = r["role"]
            log = "controlplane.log" if role == "controlplane" else \
                f"agent-{role.split('/', 1)[1]}.log"
            what = "the control plane" if role == "controlplane" else \
                f"the node agent of {role.split('/', 1)[1]}"
            raise ClusterError(f"{what} exited during start-up; "
                               f"logs kept in {logs} (see {log})")


def _check_launcher(ledger: Ledger, pid: int, logs: str) -> None:
    """The agents' launcher forgets its own record once every agent is forked: a record
    whose process is gone means it failed (its log says why)."""
    procs.reap([pid])  # our child: a zombie would still look alive
    for r in ledger.records():
        if r["kind"] == "process" and r.get("role") == agents.ROLE and r["pid"] == pid \
                and not procs.alive(r):
            raise ClusterError(f"the node agents' launcher exited during start-up; "
                               f"logs kept in {logs} (see {agents.LOG})")


def _wait_progress(step, idle: float, what: str, logs: str, limit: float | None = None) -> None:
    """Poll `step()` -> (done, progress[, detail]) until done. The deadline is `idle` seconds
    after the last change of `progress`, so a slow start on a busy machine goes on as long
    as something moves (up to `limit`, 10 x idle by default: a daemon retrying forever
    also uses CPU); an API or OSError in a step is "not yet". Between polls it sleeps
    POLL_SECONDS or, when a step itself takes longer (a slow or emulated machine, where a
    look at the ledger, /proc and the API costs a tenth of a second), a few times what
    it took: `up` never spends more than a fraction of a CPU watching the daemons it is
    waiting for, who need that CPU to start."""
    last: object = None
    detail = ""
    start = time.monotonic()
    deadline = start + idle
    end = start + (limit if limit is not None else 10 * idle)
    while True:
        t0 = time.monotonic()
        try:
            out = step()
        except (errors.ApiError, OSError):
            out = (False, last)
        cost = time.monotonic() - t0
        done, progress = out[0], out[1]
        if len(out) > 2:
            detail = out[2]
        if done:
            return
        now = time.monotonic()
        if progress != last:
            last, deadline = progress, now + idle
        elif now >= deadline or now >= end:
            why = f"no progress for {idle:g}s" if now >= deadline else \
                f"not done after {now - start:.0f}s"
            raise ClusterError(f"{what}: {why}" + (f" ({detail})" if detail else "")
                               + f"; logs kept in {logs}")
        time.sleep(min(max(POLL_SECONDS, POLL_COST_FACTOR * cost), MAX_POLL_SECONDS))


def _remove_state_dir(path: str, quiet: bool, keep: tuple[str, ...] = ()) -> None:
    """Remove what netsim wrote in the cluster's state folder (the ledger last), then the
    folder when that emptied it; anything else someone put there stays. Entries in `keep`
    stay too, with a ledger that lists only them (so `down` removes them later)."""
    entries = os.listdir(path) if os.path.isdir(path) else []
    kept = [e for e in keep if e in entries]
    if kept:
        ledger_path = os.path.join(path, LEDGER)
        with open(os.open(ledger_path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "w") as f:
            for e in kept:
                f.write(json.dumps({"kind": "dir", "path": os.path.join(path, e)}) + "\n")
        os.replace(ledger_path + ".tmp", ledger_path)
    for e in entries:
        if e in OWN_ENTRIES and e not in kept:
            p = os.path.join(path, e)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
    if kept:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(path, LEDGER))
    foreign = sorted(set(entries) - OWN_ENTRIES - {LEDGER})
    if foreign:
        _say(f"left {path} in place: it holds files netsim did not make ({', '.join(foreign)})",
             quiet)
        return
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _pod_state_tmpfs(cluster: str, path: str, ledger: Ledger) -> None:
    """A tmpfs for what the agents write per pod (records, container logs, IP leases), as
    the kubelet keeps its runtime state under /run: a pod start made ~17 files and folders
    and a pod's end removed them, and on ext4 each new inode scans past the ones deleted in
    the last minutes (at 1,000 pods a tenth of the machine's CPU was ext4 inode
    allocation). What a reboot or `down` ends goes with its tmpfs; `down` unmounts it."""
    ledger.add("tmpfs", path=path)  # first: a crash between the two leaves no mount unrecorded
    mounter.mount(f"netsim-{cluster}", path, "tmpfs", mounter.MS_NOSUID | mounter.MS_NODEV,
                  "mode=0700")


def _unmount_pod_state(recs: list[dict]) -> None:
    """Detach the cluster's tmpfs mounts: their files go with them, at once (the pods that
    still bind something of them keep it until they stop)."""
    for r in recs:
        if r["kind"] == "tmpfs":
            with contextlib.suppress(OSError):  # not mounted (a reboot, a crash before it)
                mounter.umount(r["path"])


def _rmtrees(paths: list[str]) -> subprocess.Popen | None:
    """Start removing these folders (thousands of pods' small files) in an `rm -rf` of its
    own: threads doing shutil.rmtree held the GIL from down's own work (under load the
    /proc and cgroup reads beside them took seconds). --one-file-system: never below a
    mount point left behind. The caller waits for it."""
    paths = [p for p in paths if os.path.lexists(p)]
    if not paths:
        return None
    return subprocess.Popen(["rm", "-rf", "--one-file-system", "--", *paths],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def down(name: str, *, quiet: bool = False, keep_logs: bool = False) -> bool:
    """Remove everything the ledger lists. Returns False when there was nothing.

    A folder without a ledger is not netsim's (or holds nothing netsim made): it is left
    as it is. `keep_logs` (a failed `up`): the daemons' logs stay, listed in a ledger of
    their own, for the next `down` or `up` to remove."""
    _check_name(name)
    path = state_dir(name)
    if not os.path.isfile(os.path.join(path, LEDGER)):
        _say(f'cluster "{name}" is not up: nothing to delete', quiet)
        return False
    t0 = time.monotonic()
    _say(f'Deleting cluster "{name}" ...', quiet)
    ledger = Ledger(name)
    recs = ledger.records()
    inodes = {i for r in recs if r["kind"] == "netns" for i in [nl.netns_inode(r["name"])] if i}
    daemons = [(r["pid"], r["starttime"]) for r in recs if r["kind"] == "process"]
    agents = [(r["pid"], r["starttime"]) for r in recs if r["kind"] == "process"
              and str(r.get("role", "")).startswith("agent/")]
    # Every daemon gets SIGTERM at once; the agents must be gone before the containers
    # are stopped (so nothing restarts them), then whatever still runs inside the
    # cluster's cgroups and namespaces and the control plane stop. Containers get no
    # grace: the cluster is going away (CoreDNS's lame duck would otherwise hold every
    # `down` for the whole grace). The agents get as little: one busy with a pod under
    # load took more than a second to come back to its loop, and what a SIGKILL leaves
    # half made is recorded before it is made, as after any crash. A profiled cluster's
    # daemons get time to write their stats.
    grace = 30.0 if os.environ.get("NETSIM_PROFILE") else 0.3
    procs.signal_all(daemons)
    procs.stop_all(agents, grace=grace)
    # An agent stopped mid-sync may have recorded (and made) a pod's netns or its
    # /etc/netns folder after the first read: read again now that no agent writes.
    recs = ledger.records()
    inodes |= {i for r in recs if r["kind"] == "netns" for i in [nl.netns_inode(r["name"])] if i}
    rest = [d for d in daemons if d not in agents]
    # With the agents gone nobody reads or writes the per-pod records and logs: their
    # tmpfs goes, and what a netsim before it left on disk (thousands of small files and
    # directories) is removed meanwhile.
    _unmount_pod_state(recs)
    sweeper = _rmtrees([os.path.join(path, "nodes"), os.path.join(path, POD_DISK)])
    # Then every process in the cluster's cgroups (containers, pods' holders, `netsim
    # exec` shells) at once, as `kind delete cluster` removes its containers; what runs in
    # the cluster's namespaces outside them (nginx, user shells) and the control plane get
    # a short grace, and by pid whatever the cgroups could not end.
    # While the kernel ends them, the namespaces go (each unmount waits for an RCU grace
    # period; a namespace lives on until its last process has left).
    killing = cgroups.kill_all(recs)
    tc.teardown(recs)  # `netsim link` qdiscs (gone with their netns anyway: said, not guessed)
    topology.teardown(ledger, recs)  # the namespaces, all at once
    emptied = killing is not None and cgroups.wait_empty(killing)
    victims = rest + procs.processes_in_netns(inodes)
    if not emptied:
        victims += procs.processes_in_cgroups(recs)
    procs.stop_all(victims, grace=grace)
    cgroups.teardown(recs)  # what escaped the grace (forks in flight), then the directories
    # the pods' /etc/netns/<netns> folders and the rest, all at once too
    rest_dirs = _rmtrees([r["path"] for r in reversed(recs)
                          if r["kind"] == "dir" and r["path"] != path])
    for p in (sweeper, rest_dirs):
        if p is not None:
            p.wait()
    for r in recs:
        if r["kind"] == "kubeconfig":  # exactly netsim-<name>'s entries; the rest stays
            with contextlib.suppress(OSError, ValueError, yaml.YAMLError):
                kubeconfig.remove(r["path"], name)
    for r in reversed(recs):
        if r["kind"] == "file":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(r["path"])
    for r in recs:
        if r["kind"] == "mount" and os.path.isdir(r["path"]) and not os.listdir(r["path"]):
            subprocess.run(["umount", r["path"]], capture_output=True)
    with contextlib.suppress(OSError):
        os.rmdir("/etc/netns")  # only when empty: other tools may use it
    shutil.rmtree(run_dir(name), ignore_errors=True)
    _remove_state_dir(path, quiet, keep=("logs",) if keep_logs else ())
    for parent in (os.path.dirname(run_dir(name)), os.path.dirname(path)):
        with contextlib.suppress(OSError):
            os.rmdir(parent)  # /run/netsim, /var/lib/netsim: only when no other cluster is left
    _say(f'Deleted cluster "{name}" in {time.monotonic() - t0:.1f}s.', quiet)
    return True


def status(name: str) -> int:
    _check_name(name)
    cfg = ClusterConfig.load(name)
    if cfg is None:
        print(f'cluster "{name}" is not up')
        return 1
    ledger = Ledger(name)
    print(f"Cluster:       {cfg.name}")
    print(f"LAN:           {cfg.lan} (host {cfg.host_ip if cfg.host_access else 'no access'})")
    print(f"Pod CIDR:      {cfg.pod_cidr}")
    print(f"Service CIDR:  {cfg.service_cidr}")
    print(f"Proxy mode:    {cfg.proxy_mode}")
    print(f"Max pods:      {cfg.max_pods} per node")
    print(f"API:           {socket_path(cfg.name)}")
    ep = api_endpoint(name)
    if ep:
        print(f"API (HTTPS):   https://{ep['host']}:{ep['port']}"
              + (f", https://{ep['lan']}" if ep.get("lan") else "")
              + f" (kubectl --context {kubeconfig.entry_name(name)})")
    ok = True
    print("Processes:")
    for r in ledger.records():
        if r["kind"] == "process":
            live = procs.alive(r)
            ok &= live
            print(f"  {r['role']:<28} pid {r['pid']:<8} {'running' if live else 'NOT RUNNING'}")
    print("Nodes:")
    for n in cfg.nodes:
        print(f"  {n.name:<20} {n.ip:<16} pods {n.pod_cidr:<16} netns {cfg.node_netns(n.name)}")
    links = tc.status_lines(name)
    if links:
        print("Links (netsim link):")
        print("\n".join(links))
    return 0 if ok else 1


__all__ = ["up", "down", "status", "ClusterError", "sys"]
