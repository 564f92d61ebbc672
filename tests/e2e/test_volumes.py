"""Issue 12, pod volumes as a user meets them: a configMap volume read by the pod's own
command (`netsim logs`) and by `netsim exec`, at a path the host does not have, updated in
place when the ConfigMap changes; an emptyDir an init container writes and the app
container reads; a secret volume on tmpfs with mode 0644; a missing ConfigMap keeping the
pod ContainerCreating with upstream's FailedMount event; and nothing mounted on the host,
ever (the volumes live in each pod's own mount namespace)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from netsim.kubelet import runtime
from netsim.net import netlink as nl
from netsim.net.ledger import Ledger, state_dir
from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "vols"
ns = namespace_fixture(NS)

READER = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: {NS}}}
data: {{key: value-one}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec, namespace: {NS}}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: reader, namespace: {NS}, labels: {{app: reader}}}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "echo from-init > /netsim-work/hello"]
    volumeMounts: [{{name: work, mountPath: /netsim-work}}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /etc/netsim-cfg/key; echo; cat /netsim-work/hello; sleep 3600"]
    volumeMounts:
    - {{name: cfg, mountPath: /etc/netsim-cfg}}
    - {{name: cfg, mountPath: /etc/netsim-one.conf, subPath: key}}
    - {{name: work, mountPath: /netsim-work}}
    - {{name: sec, mountPath: /etc/netsim-sec}}
    - {{name: info, mountPath: /etc/netsim-podinfo}}
  volumes:
  - {{name: cfg, configMap: {{name: cfg}}}}
  - {{name: sec, secret: {{secretName: sec}}}}
  - {{name: work, emptyDir: {{}}}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
"""

NOCM = f"""apiVersion: v1
kind: Pod
metadata: {{name: nocm, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /etc/netsim-cfg/key; sleep 3600"]
    volumeMounts: [{{name: x, mountPath: /etc/netsim-cfg}}]
  volumes:
  - {{name: x, configMap: {{name: later}}}}
"""

HOST_PATHS = ["/etc/netsim-cfg", "/etc/netsim-one.conf", "/netsim-work", "/etc/netsim-sec",
              "/etc/netsim-podinfo"]


def _our_mounts() -> list[str]:
    """The host's mounts on a pod's folders or mountPaths (other clusters may come and go
    meanwhile): there must never be any. (A cluster's own tmpfs for its pods' state,
    `/var/lib/netsim/<cluster>/nodes` and `ipam`, holds them.)"""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f.read().splitlines()
                if ("/var/lib/netsim/" in line or any(p in line for p in HOST_PATHS))
                and not re.fullmatch(r"/var/lib/netsim/[^/]+/(nodes|ipam)", line.split()[4])]


@pytest.fixture(scope="module")
def host_mounts():
    assert _our_mounts() == []
    return []


def _phase(cluster, name):
    return cluster.client.get("pods", name, NS)["status"].get("phase")


def _exec(cluster, *cmd):
    return cluster.netsim("exec", "-n", NS, "reader", "-c", "main", "--", *cmd, check=False)


@pytest.fixture(scope="module")
def reader(cluster, ns, host_mounts):
    for p in HOST_PATHS:
        assert not os.path.lexists(p), f"{p} exists on this machine: the test needs it absent"
    cluster.netsim("apply", "-f", "-", input=READER)
    wait_for(lambda: _phase(cluster, "reader") == "Running", 60, what="reader Running")
    return "reader"


def test_config_map_volume_read_by_the_command_and_exec(cluster, reader):
    logs = wait_for(lambda: (lambda o: o if "from-init" in o else None)(
        cluster.netsim("logs", "-n", NS, "reader", "-c", "main").stdout), 20, what="logs")
    assert logs == "value-one\nfrom-init\n"  # the emptyDir the init container wrote
    assert _exec(cluster, "cat", "/etc/netsim-cfg/key").stdout == "value-one"
    assert _exec(cluster, "cat", "/etc/netsim-one.conf").stdout == "value-one"
    ls = _exec(cluster, "ls", "-a", "/etc/netsim-cfg").stdout.split()
    assert "..data" in ls and "key" in ls and any(e.startswith("..20") for e in ls)
    assert _exec(cluster, "readlink", "/etc/netsim-cfg/key").stdout.strip() == "..data/key"
    info = _exec(cluster, "cat", "/etc/netsim-podinfo/labels", "/etc/netsim-podinfo/name").stdout
    assert info == 'app="reader"reader'
    # read-only, as upstream mounts configMap volumes; the host never got the paths
    w = _exec(cluster, "sh", "-c", "echo x > /etc/netsim-cfg/new")
    assert w.returncode != 0 and "Read-only file system" in w.stderr
    for p in HOST_PATHS:
        assert not os.path.lexists(p)


def test_secret_volume_is_tmpfs_mode_0644(cluster, reader):
    r = _exec(cluster, "sh", "-c", "stat -L -c %a /etc/netsim-sec/password; "
              "stat -f -c %T /etc/netsim-sec; cat /etc/netsim-sec/password")
    assert r.stdout.split() == ["644", "tmpfs", "s3cret"]
    # on the host the secret's folder is an empty mount point: the data is in the pod's tmpfs
    pod = cluster.client.get("pods", "reader", NS)
    node_dir = runtime.node_root(cluster.name, pod["spec"]["nodeName"])
    d = os.path.join(runtime.pod_dir(node_dir, NS, "reader", pod["metadata"]["uid"]),
                     "volumes", "kubernetes.io~secret", "sec")
    assert os.path.isdir(d) and os.listdir(d) == []


def test_disk_volumes_are_on_the_nodes_disk(cluster, reader):
    """A disk emptyDir (and a configMap's folder) is on the node's disk, as upstream's, not
    on the tmpfs the cluster keeps its pods' records on: `df` in the pod says so."""
    disk = subprocess.run(["stat", "-f", "-c", "%T", state_dir(cluster.name)],
                          capture_output=True, text=True, check=True).stdout.strip()
    r = _exec(cluster, "stat", "-f", "-c", "%T", "/netsim-work", "/etc/netsim-cfg")
    assert r.stdout.split() == [disk, disk], r.stdout + r.stderr
    pod = cluster.client.get("pods", "reader", NS)
    on_disk = os.path.join(runtime.node_disk_root(cluster.name, pod["spec"]["nodeName"]),
                           pod["metadata"]["uid"], "kubernetes.io~empty-dir", "work")
    assert sorted(os.listdir(on_disk)) == ["hello"]


def test_service_account_files(cluster, reader):
    """The projected kube-api-access-* volume the ServiceAccount admission adds (issue 11):
    token, ca.crt and namespace where client libraries look for them."""
    vols = cluster.client.get("pods", "reader", NS)["spec"].get("volumes") or []
    if not any(x["name"].startswith("kube-api-access-") for x in vols):
        pytest.skip("no ServiceAccount admission in this build")
    d = "/var/run/secrets/kubernetes.io/serviceaccount"
    r = _exec(cluster, "sh", "-c", f"cat {d}/namespace; echo; head -c 3 {d}/token; echo; "
              f"head -1 {d}/ca.crt; stat -f -c %T {d}; readlink {d}/token")
    assert r.stdout.split("\n")[:5] == [NS, "eyJ", "-----BEGIN CERTIFICATE-----", "tmpfs",
                                        "..data/token"]
    assert not os.path.lexists("/run/secrets/kubernetes.io")


def test_config_map_update_reaches_the_file(cluster, reader):
    t0 = time.monotonic()
    cluster.netsim("apply", "-f", "-", input=READER.split("---")[0].replace("value-one",
                                                                             "value-two"))
    wait_for(lambda: _exec(cluster, "cat", "/etc/netsim-cfg/key").stdout == "value-two", 10,
             what="the updated key in the pod")
    took = time.monotonic() - t0
    assert took < 10, took
    # a subPath mount is a copy of the moment it was mounted (as upstream's)
    assert _exec(cluster, "cat", "/etc/netsim-one.conf").stdout == "value-one"


def test_secret_update_reaches_the_file(cluster, reader):
    """The kubelet watches just the Secrets its pods name (metadata.name=<name>)."""
    cluster.netsim("apply", "-f", "-", input=READER.split("---")[1].replace("s3cret", "n3w"))
    wait_for(lambda: _exec(cluster, "cat", "/etc/netsim-sec/password").stdout == "n3w", 10,
             what="the updated secret in the pod")


def test_missing_config_map_keeps_the_pod_creating(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=NOCM)
    msg = 'MountVolume.SetUp failed for volume "x" : configmap "later" not found'
    wait_for(lambda: msg in cluster.netsim("describe", "po", "nocm", "-n", NS).stdout, 20,
             what="FailedMount event")
    get = cluster.netsim("get", "po", "nocm", "-n", NS).stdout
    assert "ContainerCreating" in get
    cluster.netsim("apply", "-f", "-", input=f"apiVersion: v1\nkind: ConfigMap\nmetadata: "
                   f"{{name: later, namespace: {NS}}}\ndata: {{key: here}}\n")
    wait_for(lambda: _phase(cluster, "nocm") == "Running", 20, what="nocm Running")
    wait_for(lambda: cluster.netsim("logs", "-n", NS, "nocm").stdout == "here", 10,
             what="nocm's log")


def _holders(cluster) -> list[int]:
    """The pods' mount namespace holders (`sleep infinity`) of this cluster's pods."""
    base = os.path.join("/var/lib/netsim", cluster.name, "nodes")
    out = []
    for node in os.listdir(base):
        pods = os.path.join(base, node, "pods")
        for d in os.listdir(pods) if os.path.isdir(pods) else []:
            if d.startswith(f"{NS}_"):
                try:
                    with open(os.path.join(pods, d, "volumes.json")) as f:
                        h = json.load(f)
                except OSError:
                    continue
                if runtime.proc_starttime(h["pid"]) == h["starttime"]:
                    out.append(h["pid"])
    return out


def test_holders_are_what_cluster_down_kills(cluster, reader):
    """After SIGKILL of every daemon, `cluster down` still ends the holders: each is in a
    cgroup or network namespace the ledger records (and with it go its tmpfs)."""
    from netsim.cluster import procs
    holders = _holders(cluster)
    assert holders
    recs = Ledger(cluster.name).records()
    inodes = {i for r in recs if r["kind"] == "netns" for i in [nl.netns_inode(r["name"])] if i}
    found = {p for p, _ in procs.processes_in_cgroups(recs) + procs.processes_in_netns(inodes)}
    assert set(holders) <= found


def test_deleting_the_pods_leaves_no_holder_and_no_mount(cluster, reader, host_mounts):
    assert _our_mounts() == host_mounts  # nothing was ever mounted on the host
    uids = [p["metadata"]["uid"] for p in cluster.client.list("pods", NS)]
    cluster.netsim("delete", "pod", "reader", "nocm", "-n", NS)
    wait_for(lambda: not cluster.client.list("pods", NS), 30, what="pods gone")
    wait_for(lambda: not _holders(cluster), 10, what="holders gone")
    assert _our_mounts() == host_mounts
    for node in cluster.cfg.nodes:  # their disk volumes went with them
        for uid in uids:
            assert not os.path.lexists(os.path.join(
                runtime.node_disk_root(cluster.name, node.name), uid))
