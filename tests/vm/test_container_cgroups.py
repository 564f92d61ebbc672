"""Issue #9 on a pure cgroup v2 layout (Debian 12's: cgroup2 at /sys/fs/cgroup) with Debian's
own kernel, in a qemu VM (tests/vm/harness.py); this machine has a hybrid layout.

Runs tests/vm/cgroup_scenario.py: a daemonized grandchild dies with its container, and the
ledger-driven teardown kills and removes the rest. ~50 s here (TCG). When it runs: as for
the IPVS VM test (NETSIM_VM_TESTS, packages installed and a kernel cached).
"""

from __future__ import annotations

import pytest

from tests.conftest import requires_root
from tests.vm import harness
from tests.vm.test_kube_proxy_ipvs import REPO, VM_TIMEOUT, _mode, skip_unless_vm_runs

SCENARIO = REPO / "tests" / "vm" / "cgroup_scenario.py"

pytestmark = [requires_root]


def test_container_cgroups_on_pure_cgroup_v2():
    skip_unless_vm_runs()
    try:
        r = harness.run(str(SCENARIO), str(REPO), timeout=VM_TIMEOUT, install=_mode() == "1")
    except harness.Unavailable as e:
        pytest.skip(f"VM unavailable: {e}")
    lines = [ln for ln in r.output.splitlines() if ln.startswith(("NSIM ", "netsim-vm:"))]
    print("\n".join(lines))
    assert not r.timed_out, f"VM did not finish in {VM_TIMEOUT:.0f} s:\n{r.output[-3000:]}"
    assert "NSIM mount /sys/fs/cgroup usable ('/sys/fs/cgroup/netsim', '')" in lines
    assert "NSIM started 3 leader in cgroup True" in lines
    assert "NSIM after_stop 0 cgroup_procs 0" in lines
    assert r.exit_code == 0, f"scenario failed (exit {r.exit_code}):\n{r.output[-4000:]}"
