"""Shared fixtures: root checks, condition waits, and one test cluster per session.

The test cluster has its own name and LAN (NETSIM_TEST_CLUSTER / NETSIM_TEST_LAN) so a
test run never touches a cluster a user has up, and two runs can share a machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest

TEST_CLUSTER = os.environ.get("NETSIM_TEST_CLUSTER", "nstest")
TEST_LAN = os.environ.get("NETSIM_TEST_LAN", "192.168.77.0/24")
_RUN_TMP: str | None = None


def pytest_configure(config) -> None:
    """A test run's temporary files (servers' sockets, scenario folders, real kubectl's
    edit files, the kubeconfig) go to one folder of its own, removed when the run ends:
    runs left hundreds of folders in /tmp. pytest's tmp_path stays where users look."""
    global _RUN_TMP
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    _RUN_TMP = tempfile.mkdtemp(prefix="netsim-tests-")
    tempfile.tempdir = _RUN_TMP
    os.environ["TMPDIR"] = _RUN_TMP
    # `cluster up` merges its context into the kubeconfig kubectl reads: a test run writes
    # a file of its own (per test cluster), never the user's ~/.kube/config.
    os.environ["KUBECONFIG"] = os.path.join(_RUN_TMP, f"netsim-test-{TEST_CLUSTER}.kubeconfig")


def pytest_unconfigure(config) -> None:
    if _RUN_TMP:
        shutil.rmtree(_RUN_TMP, ignore_errors=True)


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")


def wait_for(pred, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `pred` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the API may be mid-restart
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


@dataclass
class Cluster:
    name: str
    lan: str

    def netsim(self, *args: str, check: bool = True, input: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the CLI as a user would (`netsim --cluster NAME ...`)."""
        cmd = [sys.executable, "-m", "netsim.cli.main", *args]
        env = {**os.environ, "NETSIM_CLUSTER": self.name}
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, input=input,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"netsim {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    @property
    def client(self):
        from netsim.api.client import HttpClient
        return HttpClient(self.name)

    @property
    def cfg(self):
        from netsim.net.topology import ClusterConfig
        return ClusterConfig.load(self.name)

    def recreate(self, proxy_mode: str) -> None:
        """Down, then up again with the same name and LAN in `proxy_mode` (module fixtures
        that run their tests once per kube-proxy mode)."""
        for args in (("cluster", "down", "--name", self.name),
                     ("cluster", "up", "--name", self.name, "--lan", self.lan,
                      "--proxy-mode", proxy_mode)):
            p = subprocess.run([sys.executable, "-m", "netsim.cli.main", *args],
                               capture_output=True, text=True, timeout=180)
            assert p.returncode == 0 or args[1] == "down", p.stdout + p.stderr
        assert self.cfg.proxy_mode == proxy_mode

    def node_netns(self, node: str) -> str:
        return f"{self.name}-{node}"

    def in_netns(self, netns: str, *cmd: str, timeout: float = 30,
                 check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def pod_exec(self, pod: str, *cmd: str, namespace: str = "default",
                 timeout: float = 30) -> subprocess.CompletedProcess:
        return self.netsim("exec", "-n", namespace, pod, "--", *cmd, check=False, timeout=timeout)

    def lan_client(self, name: str, ip: str) -> str:
        """A client machine on the LAN; removed by `cluster down`."""
        from netsim.net import netlink as nl
        from netsim.net.ledger import Ledger
        from netsim.net.topology import build_lan_client
        ns = f"{self.name}-{name}"
        if not nl.netns_exists(ns):
            build_lan_client(self.cfg, Ledger(self.name), name, ip)
        return ns

    def wait_pods_ready(self, namespace: str, selector: str, count: int, timeout: float = 60):
        def ready():
            pods = [p for p in self.client.list("pods", namespace, selector)
                    if not p["metadata"].get("deletionTimestamp")]
            ok = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in p.get("status", {}).get("conditions", []))]
            return ok if len(ok) == count and len(pods) == count else None
        return wait_for(ready, timeout, what=f"{count} ready pods {selector} in {namespace}")


def namespace_fixture(name: str):
    """A module-scoped `ns` fixture: namespace `name` applied in the session's cluster (as
    `kubectl apply` would: already there is fine), deleted after the module."""
    @pytest.fixture(scope="module", name="ns")
    def ns(cluster):
        """Namespace `name`, there for the whole module."""
        cluster.netsim("apply", "-f", "-",
                       input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
        yield name
        cluster.netsim("delete", "namespace", name, check=False)
    return ns


@pytest.fixture(scope="session")
def cluster():
    """A running 3-node cluster for the whole session, removed at the end."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    c = Cluster(TEST_CLUSTER, TEST_LAN)
    subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "down", "--name", c.name],
                   capture_output=True)
    c_up = subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "up", "--name",
                           c.name, "--lan", c.lan], capture_output=True, text=True, timeout=180)
    assert c_up.returncode == 0, c_up.stdout + c_up.stderr
    yield c
    subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "down", "--name", c.name],
                   capture_output=True, timeout=120)


@pytest.fixture(scope="session", autouse=True)
def _leave_run_netns_as_found():
    """`ip netns add` (benches, VM-less netns tests) makes /run/netns a mount point the first
    time; a test run must leave no mount behind, so undo that if the run made it."""
    if not is_root():
        yield
        return
    from netsim.net.netlink import NETNS_DIR, netns_dir_mounted
    before = netns_dir_mounted()
    yield
    if not before and netns_dir_mounted() and not os.listdir(NETNS_DIR):
        subprocess.run(["umount", NETNS_DIR], capture_output=True)
