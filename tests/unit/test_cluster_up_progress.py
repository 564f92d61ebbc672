"""Issue 18: `cluster up` on a loaded machine waits as long as the start makes progress, and a
failed `up` keeps its logs and says where they are (`cluster down` still removes all)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
import time

import pytest

from netsim.cluster import lifecycle
from netsim.cluster.lifecycle import ClusterError, _wait_progress
from tests.conftest import requires_root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_deadline_moves_with_progress():
    """Progress every 0.1 s for 1 s outlasts an idle limit of 0.4 s; done ends the wait."""
    t0 = time.monotonic()

    def step():
        t = time.monotonic() - t0
        return t > 1.0, int(t * 10)
    _wait_progress(step, 0.4, "the thing did not come up", "/nowhere")
    assert time.monotonic() - t0 > 1.0


def test_no_progress_fails_after_the_idle_limit_naming_the_logs():
    t0 = time.monotonic()
    with pytest.raises(ClusterError) as e:
        _wait_progress(lambda: (False, 7, "0 of 3 Ready, 1 registered"), 0.3,
                       "node agents did not register", "/var/lib/netsim/x/logs")
    assert 0.3 <= time.monotonic() - t0 < 2
    assert str(e.value) == ("node agents did not register: no progress for 0.3s (0 of 3 Ready, "
                            "1 registered); logs kept in /var/lib/netsim/x/logs")


def test_api_errors_in_a_step_are_not_yet():
    calls = []

    def step():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("socket not there yet")
        return True, 0
    _wait_progress(step, 5, "x", "/nowhere")
    assert len(calls) == 3


def test_a_daemon_that_exited_is_named_at_once(tmp_path):
    class FakeLedger:
        def records(self):
            return [{"kind": "process", "role": "agent/k8s-slave-172", "pid": 2 ** 22 + 1,
                     "starttime": 1}]
    with pytest.raises(ClusterError) as e:
        lifecycle._check_alive(FakeLedger(), ("agent/k8s-slave-172",), str(tmp_path))
    assert str(e.value) == (f"the node agent of k8s-slave-172 exited during start-up; logs kept "
                            f"in {tmp_path} (see agent-k8s-slave-172.log)")


# A real `up` whose agents never start (their launcher is a `sleep`: no CPU, no log line, no
# Node), in a private mount namespace with tmpfs over /var/lib and /run (its netns and state
# are invisible to everything else), without host access and on CIDRs no cluster uses.
FAILING_UP = textwrap.dedent("""
    import sys
    from netsim.cluster import lifecycle, procs
    from netsim.net.topology import ClusterConfig
    real = procs.python_module
    procs.python_module = lambda m, *a: ["sleep", "600"] if m == "netsim.cluster.agents" else real(m, *a)
    cfg = ClusterConfig.make("upfail", lan="192.168.251.0/24", pod_cidr="10.250.0.0/16",
                             service_cidr="10.251.0.0/16", host_access=False)
    try:
        lifecycle.up(cfg, quiet=True, timeout=1.5, kubeconfig_path="/run/kubeconfig")
    except lifecycle.ClusterError as e:
        print("error:", e)
""")


@requires_root
def test_a_failed_up_keeps_its_logs_until_down():
    state = "/var/lib/netsim/upfail"
    script = (
        "mount --make-rprivate / && mount -t tmpfs nsim-test /var/lib && "
        "mount -t tmpfs nsim-test /run && mkdir /run/netns && "
        f"{shlex.quote(sys.executable)} -c {shlex.quote(FAILING_UP)}; "
        f"echo ==; ls -A {state} {state}/logs; cat {state}/ledger.jsonl; ip netns list; "
        f"echo ==; {shlex.quote(sys.executable)} -m netsim.cli.main cluster down --name upfail; "
        f"ls -A /var/lib/netsim 2>&1; echo end")
    p = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                       text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    out = p.stdout
    first, kept, after = out.split("==\n")
    assert first.strip() == (
        "error: node agents did not register: no progress for 1.5s (0 of 3 Ready, 0 registered); "
        f"logs kept in {state}/logs"), out + p.stderr
    assert kept.split() == [
        f"{state}:", "ledger.jsonl", "logs", f"{state}/logs:", "agent-k8s-master-171.log",
        "agent-k8s-slave-172.log", "agent-k8s-slave-173.log", "agents.log", "controlplane.log",
        '{"kind":', '"dir",', '"path":', f'"{state}/logs"}}'], out  # and no namespace left
    assert "Deleted cluster \"upfail\"" in after and "No such file" in after, out + p.stderr
