"""Runs *inside* the VM (tests/vm/harness.py), as root, with the host's netsim tree:
kube-proxy IPVS mode with real packets.

    python3 ipvs_scenario.py REPO_ROOT

Topology (all names h13-*, LAN 192.168.90.0/24):
  h13-client  eth0 192.168.90.10 --veth-- h13-node eth0 192.168.90.2
  h13-node    cni0 10.244.0.1/24 (bridge) -- h13-pod1 10.244.0.2, h13-pod2 10.244.0.3
Each pod runs netsim's HTTP echo on :8080. The node runs netsim's IPVS applier
(netsim.proxy.ipvs_apply.IpvsSyncer) for Service default/echo: ClusterIP 10.96.50.50:80,
NodePort 30080, 2 endpoints. The client curls the ClusterIP and the NodePort; both
endpoints must answer each. Then: a second sync changes nothing, removing an endpoint
gives it no new connections (its real server stays at weight 0 while IPVS counts its
TIME_WAIT connections: graceful termination), and ClientIP affinity pins a client to one pod
(the drained real server gets its weight back).

Prints `NSIM key=value` lines for the test to read; exit 0 when every check passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

REPO = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, REPO)

from netsim.proxy.apply import Iptables  # noqa: E402
from netsim.proxy.ipvs_apply import IpvsKernel, IpvsSyncer  # noqa: E402
from netsim.proxy.model import ProxySnapshot  # noqa: E402

NODE, CLIENT, PODS = "h13-node", "h13-client", {"h13-pod1": "10.244.0.2", "h13-pod2": "10.244.0.3"}
NODE_IP, CLIENT_IP = "192.168.90.2", "192.168.90.10"
CLUSTER_IP, PORT, NODE_PORT = "10.96.50.50", 80, 30080
failures: list[str] = []


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p


def ns(netns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    if argv[0] == "ip":  # one exec instead of two (TCG makes every exec count)
        return sh("ip", "-n", netns, *argv[1:], **kw)
    return sh("ip", "netns", "exec", netns, *argv, **kw)


def report(key: str, value) -> None:
    print(f"NSIM {key}={value}", flush=True)


def check(ok: bool, what: str) -> None:
    report("check", f"{'ok' if ok else 'FAIL'}:{what}")
    if not ok:
        failures.append(what)


def batch(netns: str | None, lines: list[str]) -> None:
    """One `ip -batch` per namespace: under TCG every exec costs ~0.3 s."""
    argv = ["ip", "-n", netns, "-batch", "-"] if netns else ["ip", "-batch", "-"]
    p = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"ip -batch ({netns}): {p.stderr.strip()}")


def topology() -> None:
    pods = list(PODS.items())
    batch(None, [f"netns add {n}" for n in (NODE, CLIENT, *PODS)] + [
        f"link add eth0 netns {CLIENT} type veth peer name eth0 netns {NODE}",
        *(f"link add h13v{i} netns {NODE} type veth peer name eth0 netns {pod}"
          for i, (pod, _) in enumerate(pods))])
    # as a netsim node: bridged pod<->pod replies must pass netfilter (IPVS un-NAT), and a
    # pod reaching itself through a VIP needs hairpin on its bridge port
    ns(NODE, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
    batch(NODE, ["link set lo up", f"addr add {NODE_IP}/24 dev eth0", "link set eth0 up",
                 "link add cni0 type bridge", "addr add 10.244.0.1/24 dev cni0",
                 "link set cni0 up"] + [
        line for i in range(len(pods)) for line in (
            f"link set h13v{i} master cni0 up",
            f"link set dev h13v{i} type bridge_slave hairpin on")])
    batch(CLIENT, ["link set lo up", f"addr add {CLIENT_IP}/24 dev eth0", "link set eth0 up",
                   f"route add 10.96.0.0/12 via {NODE_IP}"])
    for pod, ip in pods:
        batch(pod, ["link set lo up", f"addr add {ip}/24 dev eth0", "link set eth0 up",
                    "route add default via 10.244.0.1"])


def start_echo() -> list[subprocess.Popen]:
    procs = []
    for pod in PODS:
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", pod, sys.executable, "-S",
             os.path.join(REPO, "netsim", "images", "echo.py"), "--port", "8080",
             "--version", pod], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 30
    for pod, ip in PODS.items():
        while time.monotonic() < deadline:
            if ns(pod, "curl", "-s", "-m", "2", f"http://{ip}:8080/healthz", check=False).stdout:
                break
            time.sleep(0.1)
    return procs


def snapshot(endpoints: list[str], affinity: bool = False) -> ProxySnapshot:
    spec = {"type": "NodePort", "clusterIP": CLUSTER_IP,
            "ports": [{"name": "", "port": PORT, "targetPort": 8080, "protocol": "TCP",
                       "nodePort": NODE_PORT}]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": "default", "name": "echo"}, "spec": spec}
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
          "metadata": {"namespace": "default", "name": "echo-1",
                       "labels": {"kubernetes.io/service-name": "echo"}},
          "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": NODE}
                        for ip in endpoints]}
    return ProxySnapshot.from_objects([svc], [es], node_name=NODE, node_ips=[NODE_IP],
                                      cluster_cidr="10.244.0.0/16")


def hits(netns: str, url: str, n: int) -> dict[str, int]:
    """n requests (new connection each); {pod_ip or error: count}."""
    seen: dict[str, int] = {}
    for _ in range(n):
        p = ns(netns, "curl", "-s", "-m", "3", url, check=False)
        try:
            key = json.loads(p.stdout)["pod_ip"]
        except (ValueError, KeyError):
            key = f"error(rc={p.returncode})"
        seen[key] = seen.get(key, 0) + 1
    return seen


def main() -> int:
    t0 = time.monotonic()
    topology()
    procs = start_echo()
    report("setup_s", f"{time.monotonic() - t0:.2f}")
    syncer = IpvsSyncer(IpvsKernel(netns=NODE), Iptables(netns=NODE))
    try:
        res = syncer.sync(snapshot(list(PODS.values())))
        report("first_sync_ms", f"{res.seconds * 1e3:.0f}")
        report("first_sync_ipvs_changes", res.ipvs_changes)
        print(ns(NODE, "ipvsadm", "-Ln").stdout, flush=True)
        save = ns(NODE, "ipvsadm", "-Sn").stdout
        check(sorted(save.splitlines()) == sorted(syncer.last.ipvsadm_text().splitlines()),
              "ipvsadm -Sn shows the rendered lines (in the kernel's hash order)")
        bound = ns(NODE, "ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0").stdout
        check(f"{CLUSTER_IP}/32" in bound, "ClusterIP bound on kube-ipvs0")
        vs_sysctl = ns(NODE, "sysctl", "-n", "net.ipv4.vs.conntrack", check=False).stdout.strip()
        check(vs_sysctl == "1", "net.ipv4.vs.conntrack=1 in the node netns")

        ci = hits(CLIENT, f"http://{CLUSTER_IP}:{PORT}/", 8)
        report("clusterip_hits", json.dumps(ci, sort_keys=True))
        check(set(ci) == set(PODS.values()), "ClusterIP from the client reaches both endpoints")
        np_ = hits(CLIENT, f"http://{NODE_IP}:{NODE_PORT}/", 8)
        report("nodeport_hits", json.dumps(np_, sort_keys=True))
        check(set(np_) == set(PODS.values()), "NodePort from the client reaches both endpoints")
        # NodePort traffic is masqueraded (KUBE-NODE-PORT-TCP -> KUBE-MARK-MASQ)
        p = ns(CLIENT, "curl", "-s", "-m", "3", f"http://{NODE_IP}:{NODE_PORT}/", check=False)
        client_seen = json.loads(p.stdout)["client"] if p.stdout else ""
        report("nodeport_client_seen_by_pod", client_seen)
        check(client_seen.startswith("10.244.0.1:") or client_seen.startswith(f"{NODE_IP}:"),
              "NodePort traffic is SNATed to the node")
        hp = hits("h13-pod1", f"http://{CLUSTER_IP}:{PORT}/", 6)
        report("hairpin_hits_from_pod1", json.dumps(hp, sort_keys=True))
        check(set(hp) == set(PODS.values()), "a pod reaches itself and the other via the ClusterIP")
        other = ns(CLIENT, "curl", "-s", "-m", "3", f"http://{CLUSTER_IP}:22/", check=False)
        check(other.returncode != 0, "ClusterIP:22 (not a service port) is refused")

        res2 = syncer.sync(snapshot(list(PODS.values())))
        report("resync_ms", f"{res2.seconds * 1e3:.0f}")
        check(res2.ipvs_changes == 0, "a second sync changes nothing in IPVS")

        res3 = syncer.sync(snapshot([PODS["h13-pod2"]]))
        report("remove_endpoint_ipvs_changes", res3.ipvs_changes)
        after = hits(CLIENT, f"http://{CLUSTER_IP}:{PORT}/", 4)
        report("clusterip_hits_after_removal", json.dumps(after, sort_keys=True))
        check(set(after) == {PODS["h13-pod2"]}, "a removed endpoint gets no new connections")
        # graceful termination: the curls' connections to pod1 are in TIME_WAIT (InActConn),
        # so its real server stays at weight 0 instead of going at once
        rs1 = f"{PODS['h13-pod1']}:8080"
        listed = [ln.split() for ln in ns(NODE, "ipvsadm", "-Ln").stdout.splitlines()
                  if rs1 in ln]
        report("removed_rs_lines", json.dumps([" ".join(x) for x in listed]))
        check(bool(listed) and all(x[3] == "0" and int(x[4]) + int(x[5]) > 0 for x in listed)
              and syncer.stale_pending,
              "a removed real server with connections stays at weight 0 (graceful termination)")

        res4 = syncer.sync(snapshot(list(PODS.values()), affinity=True))
        save = ns(NODE, "ipvsadm", "-Sn").stdout
        check("-p 10800" in save and res4.ipvs_changes >= 2,
              "ClientIP affinity becomes persistence (-p 10800)")
        sticky = hits(CLIENT, f"http://{CLUSTER_IP}:{PORT}/", 6)
        report("clusterip_hits_with_affinity", json.dumps(sticky, sort_keys=True))
        check(len(sticky) == 1 and not next(iter(sticky)).startswith("error"),
              "with affinity one client always reaches the same endpoint")
        print(ns(NODE, "iptables-legacy-save" if os.path.exists("/usr/sbin/iptables-legacy-save")
                 else "iptables-save", check=False).stdout, flush=True)
    finally:
        for p in procs:
            p.kill()
    report("scenario_s", f"{time.monotonic() - t0:.2f}")
    report("failures", len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the exit code is the only channel besides the console
        import traceback
        traceback.print_exc()
        print(f"NSIM error={e}", flush=True)
        sys.exit(2)
