"""kube-proxy IPVS mode with real packets, on a kernel that has IP_VS: a qemu VM.

This machine's kernel has no IP_VS and no dummy links, so the test boots a stock Debian
kernel under qemu (tests/vm/harness.py) and runs tests/vm/ipvs_scenario.py inside it with
this tree's netsim code: two echo pods, a node netns synced by netsim's IPVS applier
(ClusterIP + NodePort, 2 endpoints), a client curling both. ~80 s here (TCG).

When it runs:
- NETSIM_VM_TESTS=1: always; installs qemu-system-x86 busybox-static cpio kmod and
  downloads the kernel package into /var/cache/netsim-vm/ if needed;
- NETSIM_VM_TESTS unset: only when those packages are installed *and* a kernel is already
  cached (so a default CI run on a fresh machine skips it and costs nothing);
- NETSIM_VM_TESTS=0: never.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import requires_root
from tests.vm import harness

REPO = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).resolve().parent / "ipvs_scenario.py"
VM_TIMEOUT = float(os.environ.get("NETSIM_VM_TIMEOUT", "600"))

pytestmark = [requires_root]


def _mode() -> str:
    return os.environ.get("NETSIM_VM_TESTS", "")


def _skip_reason() -> str | None:
    if _mode() == "0":
        return "NETSIM_VM_TESTS=0"
    if _mode() == "1":
        return None
    missing = harness.missing_packages()
    if missing:
        return f"VM test off: {' '.join(missing)} not installed (NETSIM_VM_TESTS=1 installs them)"
    if harness.cached_kernel() is None:
        return (f"VM test off: no kernel cached in {harness.CACHE} "
                "(NETSIM_VM_TESTS=1 downloads one)")
    return None


def skip_unless_vm_runs() -> None:
    """Skip the calling test, saying why, when no VM can boot this repository here."""
    why = _skip_reason()
    if why:
        pytest.skip(why)
    if " " in str(REPO):
        pytest.skip("the repository path has a space: it can't go on the kernel command line")


def test_ipvs_mode_serves_clusterip_and_nodeport_from_both_endpoints():
    skip_unless_vm_runs()
    try:
        r = harness.run(str(SCENARIO), str(REPO), timeout=VM_TIMEOUT,
                        install=_mode() == "1")
    except harness.Unavailable as e:
        pytest.skip(f"VM unavailable: {e}")
    lines = [ln for ln in r.output.splitlines() if ln.startswith(("NSIM ", "netsim-vm:"))]
    print("\n".join(lines))
    print(f"vm: {r.seconds:.1f} s wall, exit {r.exit_code}")
    assert not r.timed_out, f"VM did not finish in {VM_TIMEOUT:.0f} s:\n{r.output[-3000:]}"
    failed = [ln for ln in lines if "check=FAIL" in ln]
    assert r.exit_code == 0 and not failed, (
        f"scenario failed (exit {r.exit_code}): {failed}\n{r.output[-4000:]}")
    hits = dict(re.findall(r"NSIM (clusterip_hits|nodeport_hits)=(.*)", r.output))
    assert "10.244.0.2" in hits["clusterip_hits"] and "10.244.0.3" in hits["clusterip_hits"]
    assert "10.244.0.2" in hits["nodeport_hits"] and "10.244.0.3" in hits["nodeport_hits"]
