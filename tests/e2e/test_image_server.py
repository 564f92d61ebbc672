"""Containers of built-in images (and the pods' holders) forked by the node's image server
(issue #16; root, a real cluster): each is still a process of its own that `ps` shows with the image's argv, in the
pod's namespaces and cgroup, answering HTTP, with its logs and `exec`; its exit code reaches
the pod's status; a killed image server is replaced and the containers it forked live on.
Skipped when the cluster runs without it (NETSIM_ZYGOTE=0: every container is exec'd).
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "imageserver"

ns = namespace_fixture(NS)


def _servers(cluster) -> dict[str, int]:
    """node -> pid of its image server, as the ledger records them (alive ones only)."""
    from netsim.kubelet.runtime import proc_starttime
    from netsim.net.ledger import Ledger

    out = {}
    for r in Ledger(cluster.name).records():
        if r["kind"] == "process" and str(r.get("role", "")).startswith("zygote/") and \
                proc_starttime(r["pid"]) == r.get("starttime"):
            out[r["role"].split("/", 1)[1]] = r["pid"]
    return out


@pytest.fixture(scope="module")
def servers(cluster, ns):
    if os.environ.get("NETSIM_ZYGOTE") == "0":
        pytest.skip("the cluster runs without the image server (NETSIM_ZYGOTE=0)")
    return cluster


def _run(cluster, name: str, image: str = "netsim/echo", node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": image}],
                  "terminationGracePeriodSeconds": 2}
    if node:
        spec["nodeName"] = node
    cluster.netsim("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
        "spec": spec}))
    return _running(cluster, name)


def _running(cluster, name: str, restarts: int = 0) -> dict:
    def running():
        p = cluster.client.get("pods", name, NS)
        cs = (p.get("status", {}).get("containerStatuses") or [{}])[0]
        if "running" in cs.get("state", {}) and cs.get("restartCount") == restarts:
            return p
        return None
    return wait_for(running, 60, what=f"pod {name} running (restarts {restarts})")


def _pid(pod: dict) -> int:
    return int(pod["status"]["containerStatuses"][0]["containerID"].rsplit("/", 1)[1])


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _http(cluster, pod: dict) -> dict:
    code = ("import urllib.request; print(urllib.request.urlopen("
            f"'http://{pod['status']['podIP']}:8080/', timeout=3).read().decode())")
    r = cluster.in_netns(cluster.node_netns(pod["spec"]["nodeName"]), sys.executable, "-c", code)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_forked_container_is_a_process_users_see_enter_and_read(servers):
    cluster = servers
    pod = _run(cluster, "web")
    pid, node = _pid(pod), pod["spec"]["nodeName"]
    assert _ppid(_ppid(pid)) == _servers(cluster)[node]  # server -> template -> container
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        shown = f.read().replace(b"\0", b" ").decode().strip()
    from netsim.images import catalog
    assert shown == " ".join(catalog.resolve("netsim/echo", {"name": "c"}).argv)
    assert _http(cluster, pod)["pod"] == "web"
    assert cluster.pod_exec("web", "hostname", namespace=NS).stdout == "web\n"
    same = cluster.pod_exec("web", "readlink", "/proc/self/ns/net", namespace=NS).stdout.strip()
    assert same == os.readlink(f"/proc/{pid}/ns/net")
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{_ppid(pid)}/ns/net")
    resolv = cluster.pod_exec("web", "cat", "/etc/resolv.conf", namespace=NS).stdout
    assert f"search {NS}.svc.cluster.local" in resolv
    assert "listening on 0.0.0.0:8080" in cluster.netsim("-n", NS, "logs", "web").stdout
    from netsim.kubelet import cgroups
    mount = cgroups.cgroup2_mount()
    with open(f"/proc/{pid}/cgroup") as f:
        ctr = next((line.split("::", 1)[1].strip() for line in f if line.startswith("0::")), "")
    if mount and ctr.endswith("/ctr-c"):  # the pod's holder (pause) is forked there too
        with open(f"{mount}{os.path.dirname(ctr)}/pause/cgroup.procs") as f:
            holders = [int(x) for x in f.read().split()]
        assert holders and all(_ppid(h) == _ppid(pid) for h in holders), holders
        with open(f"/proc/{holders[0]}/cmdline", "rb") as f:
            assert f.read() == b"sleep\0infinity\0"
        # the holder's namespace holds the pod's own netns only, for the launcher's
        # `ip netns exec` (twice when a mimic of /run hides the first)
        with open(f"/proc/{holders[0]}/mountinfo") as f:
            nsfs = [line.split()[4] for line in f if " - nsfs " in line]
        assert len(set(nsfs)) == 1 and os.stat(f"/proc/{holders[0]}/root{nsfs[0]}").st_ino == \
            os.stat(f"/proc/{pid}/ns/net").st_ino, nsfs
    # the template forks holders and containers in a mount namespace without the node's
    # /run/netns: each new namespace is a copy of its parent's, and the node's held a
    # mount per pod (O(pods) per pod)
    with open(f"/proc/{_ppid(pid)}/mountinfo") as f:
        assert " - nsfs " not in f.read()
    with open(f"/proc/{pid}/environ", "rb") as f:  # the pod's environment, not the server's
        env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    assert env.get(b"HOSTNAME") == b"web" and b"NETSIM_ZYGOTE" not in env


def test_exit_codes_and_restarts(servers):
    cluster = servers
    pod = _run(cluster, "crash")
    os.kill(_pid(pod), signal.SIGKILL)
    pod = _running(cluster, "crash", restarts=1)
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (137, "Error")
    os.kill(_pid(pod), signal.SIGTERM)  # the echo image exits 0 on SIGTERM
    pod = wait_for(lambda: (lambda p: p if p["status"]["containerStatuses"][0]
                            .get("lastState", {}).get("terminated", {}).get("exitCode") == 0
                            else None)(cluster.client.get("pods", "crash", NS)),
                   60, what="exit code 0 after SIGTERM")
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "Completed"
    # `sleep` (busybox without a command) is forked too and stops at once on delete
    _run(cluster, "nap", image="busybox")
    cluster.netsim("-n", NS, "delete", "pod", "nap", "--wait=true", timeout=30)


def test_a_killed_image_server_is_replaced_and_its_containers_live_on(servers):
    cluster = servers
    pod = _run(cluster, "survivor")
    node, pid = pod["spec"]["nodeName"], _pid(pod)
    old = _servers(cluster)[node]
    template = _ppid(pid)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{template}") or
             _ppid(pid) != template, 10, what="the template to follow its server")
    assert _http(cluster, pod)["pod"] == "survivor"
    new = _run(cluster, "newcomer", node=node)
    assert _servers(cluster)[node] != old
    assert _ppid(_ppid(_pid(new))) == _servers(cluster)[node]
    assert _http(cluster, new)["pod"] == "newcomer"
