"""Issue #2: real packets between pods, nodes and the host; capture; safety; re-adoption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.root]

NS = "foundation"


def _pod(name: str, node: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "containers": [
                {"name": "echo", "image": "netsim/echo", "ports": [{"containerPort": 8080}]}]}}


@pytest.fixture(scope="module")
def pods(cluster):
    """Echo pods: two on k8s-slave-172, one on k8s-slave-173 (ready and answering)."""
    cluster.netsim("create", "namespace", NS, check=False)
    client = cluster.client
    try:
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    except Exception:
        pass
    for name, node in (("a1", "k8s-slave-172"), ("a2", "k8s-slave-172"), ("b1", "k8s-slave-173")):
        client.create(_pod(name, node))
    out = {}
    for name in ("a1", "a2", "b1"):
        def answering(name=name):
            p = client.get("pods", name, NS)
            ip = p.get("status", {}).get("podIP")
            if p["status"].get("phase") != "Running" or not ip:
                return None
            r = cluster.in_netns(cluster.node_netns(p["spec"]["nodeName"]), "curl", "-s",
                                 "-m", "1", f"http://{ip}:8080/")
            return p if r.returncode == 0 else None
        out[name] = wait_for(answering, 30, what=f"pod {name} answering")
    yield out
    cluster.netsim("delete", "namespace", NS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def wire_watch(cluster):
    """tcpdump on the machine's real interfaces for cluster CIDRs during this module."""
    ifaces = [i for i in os.listdir("/sys/class/net")
              if i not in ("lo",) and not i.startswith(("nsim-", "ifb"))
              and os.path.exists(f"/sys/class/net/{i}/device")]
    if not ifaces:
        ifaces = [i for i in os.listdir("/sys/class/net") if i == "eth0"]
    lan = cluster.cfg.lan
    filt = f"net 10.244.0.0/16 or net 10.96.0.0/12 or net {lan}"
    pcaps = [f"/tmp/netsim-wire-{i}.pcap" for i in ifaces]
    for p in pcaps:
        if os.path.exists(p):
            os.unlink(p)
    # -U: write each packet at once, so the file is current whenever the test reads it
    procs = [subprocess.Popen(["tcpdump", "-n", "-U", "-i", i, "-w", p, filt],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i, p in zip(ifaces, pcaps, strict=True)]
    # tcpdump writes the 24-byte pcap header once it is capturing
    wait_for(lambda: all(os.path.exists(p) and os.path.getsize(p) >= 24 for p in pcaps), 10,
             what="tcpdump capturing on the real interfaces")
    yield ifaces
    for p in procs:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)


def _echo(cluster, pod: str, url: str) -> dict:
    r = cluster.pod_exec(pod, "curl", "-s", "-m", "3", url, namespace=NS)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pod_to_pod_same_node_keeps_source_ip(cluster, pods, wire_watch):
    a1, a2 = pods["a1"], pods["a2"]
    got = _echo(cluster, "a1", f"http://{a2['status']['podIP']}:8080/hello")
    assert got["pod"] == "a2"
    assert got["client"].split(":")[0] == a1["status"]["podIP"]  # no NAT


def test_pod_to_pod_across_nodes_tcp_and_icmp(cluster, pods, wire_watch):
    a1, b1 = pods["a1"], pods["b1"]
    got = _echo(cluster, "a1", f"http://{b1['status']['podIP']}:8080/")
    assert got["pod"] == "b1" and got["node"] == "k8s-slave-173"
    assert got["client"].split(":")[0] == a1["status"]["podIP"]
    r = cluster.pod_exec("a1", "ping", "-c", "2", "-W", "2", b1["status"]["podIP"], namespace=NS)
    assert r.returncode == 0 and " 0% packet loss" in r.stdout


def test_node_to_pod_and_host_to_node(cluster, pods, wire_watch):
    b1 = pods["b1"]
    r = cluster.netsim("node", "exec", "k8s-master-171", "--", "curl", "-s", "-m", "3",
                       f"http://{b1['status']['podIP']}:8080/")
    assert json.loads(r.stdout)["pod"] == "b1"
    node_ip = cluster.cfg.node("k8s-slave-172").ip
    r = subprocess.run(["ping", "-c", "1", "-W", "2", node_ip], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def _permanent_neighbours(cluster, netns: str, dev: str) -> dict[str, str]:
    """IP -> MAC of the PERMANENT neighbour entries on `dev` in `netns`."""
    r = cluster.in_netns(netns, "ip", "-j", "neigh", "show", "dev", dev)
    return {e["dst"]: e.get("lladdr") for e in json.loads(r.stdout or "[]")
            if "PERMANENT" in e.get("state", [])}


def test_pod_links_have_static_neighbours_both_ways(cluster, pods):
    """Each pod knows its gateway's MAC and its node knows the pod's, as permanent entries
    (the CNI bridge plugin's 0a:58:<IP> addresses): dynamic ARP entries of all namespaces
    count against one kernel-wide table that a 1,000-pod cluster would overflow."""
    a1 = pods["a1"]
    ip = a1["status"]["podIP"]
    gw = ip.rsplit(".", 1)[0] + ".1"
    mac = "0a:58:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    gw_mac = "0a:58:" + ":".join(f"{int(b):02x}" for b in gw.split("."))
    r = cluster.pod_exec("a1", "ip", "-j", "link", "show", "eth0", namespace=NS)
    assert json.loads(r.stdout)[0]["address"] == mac
    r = cluster.pod_exec("a1", "ip", "-j", "neigh", "show", "dev", "eth0", namespace=NS)
    assert {"dst": gw, "lladdr": gw_mac} in [{k: e.get(k) for k in ("dst", "lladdr")}
                                              for e in json.loads(r.stdout)
                                              if "PERMANENT" in e.get("state", [])]
    node_ns = cluster.node_netns(a1["spec"]["nodeName"])
    assert _permanent_neighbours(cluster, node_ns, "cni0").get(ip) == mac


def test_exec_sees_pod_hostname_resolv_and_env(cluster, pods):
    assert cluster.pod_exec("a1", "hostname", namespace=NS).stdout.strip() == "a1"
    resolv = cluster.pod_exec("a1", "cat", "/etc/resolv.conf", namespace=NS).stdout
    assert resolv == (f"search {NS}.svc.cluster.local svc.cluster.local cluster.local\n"
                      f"nameserver {cluster.cfg.dns_ip}\noptions ndots:5\n")
    hosts = cluster.pod_exec("a1", "cat", "/etc/hosts", namespace=NS).stdout
    assert f"{pods['a1']['status']['podIP']}\ta1" in hosts
    ip = cluster.pod_exec("a1", "ip", "-4", "-o", "addr", "show", "eth0", namespace=NS).stdout
    assert pods["a1"]["status"]["podIP"] in ip


def test_tcpdump_in_pod_captures_the_exchange(cluster, pods, tmp_path):
    from scapy.all import IP, TCP, rdpcap

    a1, b1 = pods["a1"], pods["b1"]
    pcap = tmp_path / "b1.pcap"
    p = subprocess.Popen(["netsim", "--cluster", cluster.name, "-n", NS, "exec", "b1", "--",
                          "tcpdump", "-n", "-i", "eth0", "-w", str(pcap), "-U", "tcp port 8080"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env={**os.environ, "NETSIM_CLUSTER": cluster.name})
    # tcpdump says "listening on eth0" once it is capturing
    wait_for(lambda: pcap.exists() and pcap.stat().st_size >= 24, 10, what="tcpdump capturing")
    _echo(cluster, "a1", f"http://{b1['status']['podIP']}:8080/captured")
    wait_for(lambda: pcap.stat().st_size > 200, 10, what="packets in the pcap")
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    pkts = [x for x in rdpcap(str(pcap)) if IP in x and TCP in x]
    syn = [x for x in pkts if x[TCP].flags & 0x02 and not x[TCP].flags & 0x10]
    assert syn and syn[0][IP].src == a1["status"]["podIP"] and syn[0][IP].dst == b1["status"]["podIP"]
    assert any(b"captured" in bytes(x[TCP].payload) for x in pkts)


def test_nothing_left_through_the_real_interfaces(cluster, pods, wire_watch):
    # generate some traffic of every kind first
    _echo(cluster, "a1", f"http://{pods['b1']['status']['podIP']}:8080/")
    cluster.pod_exec("a1", "curl", "-s", "-m", "1", "http://10.96.0.1:443/", namespace=NS)
    for i in wire_watch:
        r = subprocess.run(["tcpdump", "-n", "-r", f"/tmp/netsim-wire-{i}.pcap"],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "", f"cluster packets on {i}:\n{r.stdout[:500]}"


def test_agent_sigkill_and_restart_keeps_pods_without_duplicates(cluster, pods):
    before = cluster.client.get("pods", "a1", NS)
    pid_file_pids = _echo_pids(cluster)
    cluster.netsim("node", "stop", "k8s-slave-172")
    # the pods keep serving while their node agent is dead
    assert _echo(cluster, "b1", f"http://{pods['a1']['status']['podIP']}:8080/")["pod"] == "a1"
    cluster.netsim("node", "start", "k8s-slave-172")
    wait_for(lambda: cluster.client.get("nodes", "k8s-slave-172"), 10)
    # the new agent has worked through its queue (old pods first) once it runs a new pod
    cluster.client.create(_pod("after-restart", "k8s-slave-172"))
    wait_for(lambda: cluster.client.get("pods", "after-restart", NS)["status"].get("phase")
             == "Running", 30, what="a pod started by the restarted agent")
    pid_file_pids |= {p for p in _echo_pids(cluster) if p not in pid_file_pids
                      and _pod_of(p) == "after-restart"}
    assert _echo_pids(cluster) == pid_file_pids
    after = cluster.client.get("pods", "a1", NS)
    assert after["status"]["podIP"] == before["status"]["podIP"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0


def _pod_of(pid: int) -> str | None:
    """The pod a container process belongs to (the kubelet sets NETSIM_POD_NAME)."""
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return None
    for kv in env:
        if kv.startswith(b"NETSIM_POD_NAME="):
            return kv.split(b"=", 1)[1].decode()
    return None


def _echo_pids(cluster) -> set[int]:
    """Echo processes in this cluster's namespaces (other clusters may run on the machine)."""
    from netsim.cluster.procs import processes_in_netns
    from netsim.net.ledger import Ledger
    from netsim.net.netlink import netns_inode
    inodes = {netns_inode(r["name"]) for r in Ledger(cluster.name).records()
              if r["kind"] == "netns"} - {None}
    out = set()
    for pid, _ in processes_in_netns(inodes):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"images/echo.py" in cmd:
            out.add(pid)
    return out


def test_delete_and_recreate_50_pods_no_ip_conflicts(cluster):
    client = cluster.client
    seen_conflicts = []
    for _round in range(2):
        for i in range(25):
            client.create(_pod(f"churn-{i}", "k8s-slave-173", {"app": "churn"}))

        def all_ips():
            ps = client.list("pods", NS, "app=churn")
            ips = [p["status"].get("podIP") for p in ps if p["status"].get("phase") == "Running"]
            return ips if len(ips) == 25 else None
        ips = wait_for(all_ips, 60, what="25 churn pods running")
        live = [p["status"].get("podIP") for p in client.list("pods", NS)
                if p["status"].get("podIP")]
        if len(set(live)) != len(live):
            seen_conflicts.append(live)
        assert len(set(ips)) == 25
        for i in range(25):
            client.delete("pods", f"churn-{i}", NS)
        wait_for(lambda: not client.list("pods", NS, "app=churn"), 60, what="churn pods gone")
    assert not seen_conflicts
    # the node's static entries are exactly its live pods' (none left by deleted pods)
    live = {p["status"]["podIP"] for p in client.list("pods")
            if p["spec"].get("nodeName") == "k8s-slave-173" and p["status"].get("podIP")
            and not p["spec"].get("hostNetwork")}
    wait_for(lambda: set(_permanent_neighbours(
        cluster, cluster.node_netns("k8s-slave-173"), "cni0")) == live or None, 10,
        what="k8s-slave-173's cni0 neighbours = its pods")


def test_down_after_sigkill_of_everything_leaves_nothing(tmp_path):
    """A second cluster: up, pods, SIGKILL every netsim process, down -> machine as before."""
    name, lan = "nskill", "192.168.78.0/24"
    cli = [sys.executable, "-m", "netsim.cli.main"]
    env = {**os.environ, "NETSIM_CLUSTER": name}

    def snapshot():
        """What this cluster could leave behind (other clusters may come and go meanwhile)."""
        ns = {n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout.split() if n.startswith(name + "-")}
        links = [x for x in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                           text=True).stdout.splitlines() if f"nsim-{name}" in x]
        from netsim.net.topology import ClusterConfig
        metric = f"metric {ClusterConfig(name=name).route_metric}"
        routes = [x for x in subprocess.run(["ip", "route"], capture_output=True,
                                            text=True).stdout.splitlines()
                  if metric in x or lan.rsplit(".", 1)[0] in x]
        mounts = [x for x in open("/proc/mounts").read().splitlines() if name in x]
        return ns, links, routes, mounts
    before = snapshot()
    assert subprocess.run(cli + ["cluster", "up", "--name", name, "--lan", lan],
                          capture_output=True, env=env).returncode == 0
    from netsim.api.client import HttpClient
    c = HttpClient(name)
    for i in range(3):
        c.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"k{i}"},
                  "spec": {"containers": [{"name": "c", "image": "netsim/echo"}]}})
    wait_for(lambda: [p["status"].get("phase") for p in c.list("pods", "default")]
             == ["Running"] * 3, 30, what="pods running")
    # the pods' records, logs and IP leases live on the cluster's tmpfs mounts, which the
    # down below must unmount (the snapshot's mounts)
    state = f"/var/lib/netsim/{name}"
    assert sorted(x.split()[1] for x in open("/proc/mounts").read().splitlines()
                  if x.split()[:1] == [f"netsim-{name}"] and x.split()[2] == "tmpfs") == [
        f"{state}/ipam", f"{state}/nodes"]
    assert any(d.startswith("default_k0_") for node in os.listdir(f"{state}/nodes")
               for d in os.listdir(f"{state}/nodes/{node}/pods"))
    from netsim.net.ledger import Ledger
    recs = Ledger(name).records()
    pids = [r["pid"] for r in recs if r["kind"] == "process"]
    ns_names = [r["name"] for r in recs if r["kind"] == "netns"]
    from netsim.cluster.procs import processes_in_netns
    from netsim.net.netlink import netns_inode
    in_ns = processes_in_netns({netns_inode(n) for n in ns_names if netns_inode(n)})
    assert len(in_ns) >= 3
    for pid in pids + [p for p, _ in in_ns]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert subprocess.run(cli + ["cluster", "down", "--name", name], capture_output=True,
                          env=env).returncode == 0
    assert snapshot() == before
    assert not os.path.exists(f"/var/lib/netsim/{name}") and not os.path.exists(f"/run/netsim/{name}")
    left = subprocess.run(["pgrep", "-f", f"--cluster {name}"], capture_output=True, text=True).stdout
    assert left.strip() == ""
    r = subprocess.run(cli + ["cluster", "down", "--name", name], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and "nothing to delete" in r.stdout
