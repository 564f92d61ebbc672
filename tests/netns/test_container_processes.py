"""Issue #9: every process of a container dies with it, as a cgroup kill does on a real node.

The pods below start a daemon the way real software does (fork, setsid, fork again, the
middle process exits): it is in no process group the kubelet knows and its parent is init.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.root]

NS = "procs"
NODE = "k8s-slave-173"
# a daemonized grandchild (double fork + setsid), then the container's own long sleep
DAEMONIZE = "(setsid sh -c 'sleep 1000 & exec sleep 1000' &); exec sleep 1000"


def _pod(name: str, command: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, **spec,
                     "containers": [{"name": "main", "image": "busybox",
                                     "command": ["sh", "-c", command]}]}}


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


def _procs(cluster: str, pod: str | None = None) -> list[int]:
    """Live processes started for this cluster (the kubelet sets NETSIM_CLUSTER and
    NETSIM_POD_NAME in every container; its children inherit them)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        env = _environ(int(d))
        if env.get("NETSIM_CLUSTER") == cluster and (pod is None or env.get("NETSIM_POD_NAME") == pod):
            out.append(int(d))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _daemonized(pids: list[int]) -> list[int]:
    """The pids among `pids` that left the container's session (setsid)."""
    sids = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                sids[p] = int(f.read().rsplit(")", 1)[1].split()[3])
        except OSError:
            pass
    leader_sid = min(sids.values(), default=0)
    return [p for p, s in sids.items() if s != leader_sid]


@pytest.fixture(scope="module")
def ns(cluster):
    cluster.netsim("create", "namespace", NS, check=False)
    yield NS
    cluster.netsim("delete", "namespace", NS, "--wait=false", check=False)


def _start(cluster, name: str, command: str = DAEMONIZE, **spec) -> list[int]:
    cluster.client.create(_pod(name, command, **spec))
    pids = wait_for(lambda: (lambda p: p if len(p) >= 3 else None)(_procs(cluster.name, name)),
                    30, what=f"pod {name}'s leader and its daemonized grandchildren")
    assert _daemonized(pids), "the test pod did not daemonize a grandchild"
    return pids


def _gone(cluster, name: str, what: str) -> None:
    wait_for(lambda: not _procs(cluster.name, name), 30, what=what)


@pytest.mark.parametrize("host_network", [False, True], ids=["pod-network", "host-network"])
def test_deleted_pod_takes_its_daemonized_grandchildren(cluster, ns, host_network):
    name = "daemon-host" if host_network else "daemon"
    pids = _start(cluster, name, hostNetwork=host_network)
    # what `netsim exec` starts belongs to the container too (kubectl exec joins its cgroup)
    r = cluster.pod_exec(name, "sh", "-c", "(setsid sleep 1000 > /dev/null 2>&1 &)", namespace=NS)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(_procs(cluster.name, name)) > len(pids), 10, what="the exec'd daemon")
    cluster.netsim("delete", "pod", "-n", NS, name)
    _gone(cluster, name, f"every process of deleted pod {name} gone")


def test_exited_container_leaves_nothing_behind(cluster, ns):
    """The leader exits on its own: the rest of the container dies with it (as a pid
    namespace's processes die with its init)."""
    name = "leaves"
    cluster.client.create(_pod(name, "(setsid sh -c 'exec sleep 1000' &); sleep 1; exit 3",
                               restartPolicy="Never"))
    wait_for(lambda: _daemonized(_procs(cluster.name, name)), 30, what="the daemon started")

    def terminated():
        st = cluster.client.get("pods", name, NS)["status"].get("containerStatuses") or [{}]
        return (st[0].get("state") or {}).get("terminated")
    assert wait_for(terminated, 30, what="the container terminated")["exitCode"] == 3
    _gone(cluster, name, "the exited container's daemon gone")
    cluster.netsim("delete", "pod", "-n", NS, name)


def test_readopted_pod_still_takes_its_grandchildren(cluster, ns):
    """After an agent restart the container is re-adopted (same leader) and deleting it
    still kills the daemon it started before the restart."""
    name = "readopted"
    pids = _start(cluster, name)
    cluster.netsim("node", "stop", NODE)
    assert set(pids) <= set(_procs(cluster.name, name)), "the pod died with its agent"
    cluster.netsim("node", "start", NODE)
    cluster.netsim("delete", "pod", "-n", NS, name, timeout=90)
    _gone(cluster, name, "every process of the re-adopted pod gone")


def _with_marker(marker: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def test_what_an_exec_probe_leaves_dies_with_the_pod(cluster, ns):
    """Exec probes run in the container's cgroup, as a runtime's exec does."""
    name, marker = "probed", f"netsim-probe-{cluster.name}"
    flag = f"/tmp/{marker}"
    pod = _pod(name, "exec sleep 1000")
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["sh", "-c", f"[ -e {flag} ] || {{ touch {flag}; "
                             f"(setsid sh -c 'sleep 1000; :' {marker} > /dev/null 2>&1 &); }}"]},
        "periodSeconds": 1}
    try:
        cluster.client.create(pod)
        wait_for(lambda: _with_marker(marker), 30, what="the daemon the probe started")
        cluster.netsim("delete", "pod", "-n", NS, name)
        wait_for(lambda: not _with_marker(marker), 30, what="the probe's daemon gone with its pod")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(flag)


def test_down_after_sigkill_of_every_daemon_kills_every_container_process(cluster, ns):
    """SIGKILL the node agents and the control plane, then `cluster down`: no container
    process (grandchildren included) and no cgroup is left. The session's cluster is
    brought back up afterwards for the tests that follow."""
    from netsim.net.ledger import Ledger
    _start(cluster, "orphan-net")
    _start(cluster, "orphan-host", hostNetwork=True)
    # a built-in image: forked by the node's image server (netsim.kubelet.zygote), not exec'd
    cluster.client.create({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "orphan-image", "namespace": NS},
                           "spec": {"nodeName": NODE, "containers": [
                               {"name": "main", "image": "netsim/echo"}]}})
    wait_for(lambda: _procs(cluster.name, "orphan-image"), 30, what="the echo container")
    recs = Ledger(cluster.name).records()
    cgroups = [r["path"] for r in recs if r["kind"] == "cgroup" and not r.get("shared")]
    for r in recs:
        if r["kind"] == "process":
            try:
                os.kill(r["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        cluster.netsim("cluster", "down", "--name", cluster.name, timeout=120)
        left = _procs(cluster.name)
        assert not left, f"processes left after cluster down: {left}"
        servers = [d for d in os.listdir("/proc") if d.isdigit() and
                   f"/run/netsim/{cluster.name}/zygote-".encode() in _cmdline(int(d))]
        assert not servers, f"image servers left after cluster down: {servers}"
        assert cgroups and not [p for p in cgroups if os.path.exists(p)]
    finally:
        subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "down", "--name",
                        cluster.name], capture_output=True, timeout=120)
        up = subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "up", "--name",
                             cluster.name, "--lan", cluster.lan], capture_output=True, text=True,
                            timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
