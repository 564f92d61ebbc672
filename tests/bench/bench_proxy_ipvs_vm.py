"""Issue #15's benchmark: kube-proxy's IPVS full sync and one-endpoint partial sync against
iptables mode, in the same qemu VM (this kernel has no IP_VS). The VM is emulated (TCG, about
ten times slower than the host), so the figures that mean something are the ratios.

tests/vm/proxy_sync_probe.py runs inside the VM: for each size, N services x 5 endpoints
(bench_proxy_sync's objects) in a fresh node netns per mode; the first sync, a full resync of
the same snapshot, a partial sync after one Service's endpoints changed. Small in CI (10 and
100 services); NETSIM_BENCH_FULL=1 for the issue's 1,000 and 5,000. Skips, saying why, where
no VM can boot (tests/vm/test_kube_proxy_ipvs.py decides). The last line is the headline.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from tests.vm import harness
from tests.vm.test_kube_proxy_ipvs import REPO, _mode, skip_unless_vm_runs

PROBE = REPO / "tests" / "vm" / "proxy_sync_probe.py"
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
SIZES = (1000, 5000) if FULL else (10, 100)
TIMEOUT = 7200.0 if FULL else 900.0


def measure() -> dict[tuple[str, int], dict]:
    r = harness.run(str(PROBE), sys.executable, str(REPO), *map(str, SIZES), timeout=TIMEOUT,
                    install=_mode() == "1")
    out = {}
    for m in re.finditer(r"^NSIM sync=(\{.*\})$", r.output, re.M):
        d = json.loads(m.group(1))
        out[(d["mode"], d["services"])] = d
    errors = re.findall(r"^NSIM sync_error=.*$", r.output, re.M)
    assert not r.timed_out, f"VM did not finish in {TIMEOUT:.0f} s:\n{r.output[-3000:]}"
    assert r.exit_code == 0 and not errors, f"probe failed: {errors}\n{r.output[-3000:]}"
    return out


def report(res: dict[tuple[str, int], dict]) -> str:
    print()
    print("kube-proxy sync in the qemu VM (TCG), services x 5 endpoints: seconds wall "
          "(CPU incl. restore/ipvsadm/ipset)")
    print(f"{'services':>8}  {'mode':<8} {'first':>16} {'full':>16} {'one endpoint':>16}")
    for n in SIZES:
        for mode in ("iptables", "ipvs"):
            d = res[(mode, n)]
            cells = [f"{d[k]:.2f} ({d[k + '_cpu']:.2f})" for k in ("first", "full", "partial")]
            print(f"{n:>8}  {mode:<8} " + " ".join(f"{c:>16}" for c in cells))
    ratios = []
    for n in SIZES:
        ipt, ipvs = res[("iptables", n)], res[("ipvs", n)]
        full, part = ipvs["full"] / ipt["full"], ipvs["partial"] / ipt["partial"]
        ratios.append(f"{n:,} services: full {full:.2f}x, one endpoint {part:.2f}x")
    line = "headline: IPVS against iptables mode in the same VM, " + "; ".join(ratios)
    print(line)
    return line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the VM's harness)")
def test_bench_proxy_ipvs_vm():
    skip_unless_vm_runs()
    try:
        res = measure()
    except harness.Unavailable as e:
        pytest.skip(f"VM unavailable: {e}")
    report(res)


if __name__ == "__main__":
    report(measure())
