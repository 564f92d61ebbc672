"""examples/pytest run as a user runs it (issue 17): `python -m pytest` in a folder of its own
with only the installed package (its pytest plugin), none of netsim's test helpers; then
what the plugin leaves after a failing and after an interrupted (SIGINT) run: nothing of
its clusters (no netns, no link, no process, no state folder).

CI cost: one cluster for the example suite and the failing test together (they ask for the
same cluster, the example's 2 nodes), one 1-node cluster for the interrupted run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

from tests.conftest import requires_root, wait_for

pytestmark = requires_root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, "examples", "pytest")

FAILING = '''
import pytest

pytestmark = pytest.mark.netsim(nodes=2)  # the example's cluster: no second one


def test_fails_with_a_pod_running(netsim_cluster):
    netsim_cluster.apply("""
apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "%(marker)s"]}]
""")
    netsim_cluster.wait("pod/doomed")
    assert False, "this test fails on purpose"
'''

INTERRUPTED = '''
import time

import pytest


@pytest.mark.netsim(nodes=1)  # the control-plane node alone (its taint tolerated below)
def test_interrupted_while_it_runs(netsim_cluster):
    netsim_cluster.apply("""
apiVersion: v1
kind: Pod
metadata: {name: waiting}
spec:
  tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
  containers: [{name: c, image: busybox, command: [sleep, "%(marker)s"]}]
""")
    netsim_cluster.wait("pod/waiting")
    with open(%(ready)r, "w") as f:
        f.write(netsim_cluster.name)
    time.sleep(300)
'''


def _prefix() -> str:
    """Cluster names of this run: the plugin's prefix (NETSIM_PYTEST_PREFIX, as a user sets
    it) and two hex digits of its own, so leftovers are found by name."""
    base = os.environ.get("NETSIM_PYTEST_PREFIX", "ex")[:5]
    return base + secrets.token_hex(1)


def _user_env(prefix: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["NETSIM_PYTEST_PREFIX"] = prefix
    return env


def _pytest(folder: str, prefix: str, *args: str, **kw) -> subprocess.Popen:
    # SIGINT at its default, as a terminal's ^C finds it: a run started in the background by
    # a shell without job control inherits it ignored, and the interrupted run never ended
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "-rA", *args], cwd=folder, env=_user_env(prefix),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kw)


def _leftovers(prefix: str, marker: str) -> list[str]:
    """What of the clusters named PREFIX... is still on the machine."""
    out = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out += [f"netns {line.split()[0]}" for line in netns.splitlines()
            if line.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    out += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
            if f"nsim-{prefix}" in line]
    for root in ("/var/lib/netsim", "/run/netsim", "/etc/netns"):
        if os.path.isdir(root):
            out += [f"{root}/{d}" for d in os.listdir(root) if d.startswith(prefix)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv or any(a.startswith(prefix.encode()) for a in argv):
            out.append(f"process {pid}: {b' '.join(argv).decode(errors='replace')}")
    return out


def _gone(prefix: str, marker: str) -> None:
    # `cluster down` returned before pytest did: nothing may be left by now, so a short
    # deadline only covers the exit of processes already signalled
    wait_for(lambda: not _leftovers(prefix, marker), timeout=10,
             what=f"nothing left of clusters {prefix}*: {_leftovers(prefix, marker)}")


def test_example_suite_passes_and_a_failing_test_leaves_nothing(tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(EXAMPLE, folder)
    marker = str(1000000 + secrets.randbelow(10**6))
    (folder / "test_zz_fails.py").write_text(FAILING % {"marker": marker})
    prefix = _prefix()
    t0 = time.monotonic()
    p = _pytest(str(folder), prefix)
    out, _ = p.communicate(timeout=600)
    took = time.monotonic() - t0
    assert p.returncode == 1, out  # 1: tests failed (not an error of the run)
    for name in ("test_client_pod_reaches_echo_through_its_service",
                 "test_raw_syn_to_the_cluster_ip_is_answered_by_a_pod_after_dnat",
                 "test_nodeport_from_a_machine_on_the_lan",
                 "test_trace_names_the_rules_and_the_endpoint"):
        assert f"PASSED test_echo_service.py::{name}" in out, out
    assert "FAILED test_zz_fails.py::test_fails_with_a_pod_running" in out, out
    assert "this test fails on purpose" in out
    assert "4 passed" in out and "1 failed" in out, out
    _gone(prefix, marker)
    print(f"example suite + a failing test, one 2-node cluster: {took:.1f}s")


def test_interrupted_run_leaves_nothing(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    marker = str(2000000 + secrets.randbelow(10**6))
    ready = str(tmp_path / "ready")
    (folder / "test_interrupted.py").write_text(INTERRUPTED % {"marker": marker,
                                                               "ready": ready})
    prefix = _prefix()
    p = _pytest(str(folder), prefix)
    try:
        wait_for(lambda: os.path.exists(ready) or p.poll() is not None, timeout=180,
                 what="the cluster up and the test waiting")
        assert p.poll() is None, p.communicate()[0]
        name = open(ready).read()
        assert name.startswith(prefix)
        assert _leftovers(prefix, marker), "the test's cluster should be up"
        p.send_signal(signal.SIGINT)  # ^C to pytest
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:  # the test failed before the interrupt: clean up after it
            p.kill()
            p.wait()
        if p.returncode != 2 and os.path.exists(ready):
            subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "down",
                            "--name", open(ready).read()], capture_output=True)
    assert p.returncode == 2, out  # pytest's exit status for an interrupted run
    assert "KeyboardInterrupt" in out, out
    _gone(prefix, marker)



def test_a_killed_run_is_cleaned_up_by_the_next_run(tmp_path):
    """SIGKILL cannot be caught: the cluster stays, and the next run with the same prefix
    takes it down before it brings up its own."""
    folder = tmp_path / "project"
    folder.mkdir()
    marker = str(3000000 + secrets.randbelow(10**6))
    ready = str(tmp_path / "ready")
    (folder / "test_interrupted.py").write_text(INTERRUPTED % {"marker": marker,
                                                               "ready": ready})
    prefix = _prefix()
    p = _pytest(str(folder), prefix)
    try:
        wait_for(lambda: os.path.exists(ready) or p.poll() is not None, timeout=180,
                 what="the cluster up and the test waiting")
        assert p.poll() is None, p.communicate()[0]
        p.kill()
        p.communicate()
        killed = open(ready).read()
        assert any(killed in line for line in _leftovers(prefix, marker))
        (folder / "test_interrupted.py").unlink()
        (folder / "test_next.py").write_text(
            "import pytest\n\n\n@pytest.mark.netsim(nodes=1)\n"
            "def test_up(netsim_cluster):\n    assert netsim_cluster.is_up\n")
        nxt = _pytest(str(folder), prefix)
        out, _ = nxt.communicate(timeout=300)
        assert nxt.returncode == 0, out
        assert f"removed clusters an earlier run left up when it was killed: {killed}" in out
        _gone(prefix, marker)
    finally:
        if os.path.exists(ready):
            subprocess.run([sys.executable, "-m", "netsim.cli.main", "cluster", "down",
                            "--name", open(ready).read()], capture_output=True)
