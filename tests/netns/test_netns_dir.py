"""The first netns on a machine: /run/netns made a shared mount point by netsim itself, as
`ip netns add` makes it (pyroute2's forked helper for it timed out on a slow machine).
Checked in a private mount namespace on a folder of its own, so the machine's /run/netns
is never touched."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import requires_root

pytestmark = [requires_root]

SCRIPT = """
import os, tempfile
from netsim.net import netlink as nl
d = tempfile.mkdtemp(prefix="netsim-netns-dir-")
nl.NETNS_DIR = os.path.join(d, "netns")
assert not nl.netns_dir_mounted()
nl.prepare_netns_dir()
nl.prepare_netns_dir()  # the second time: nothing to do
line = [ln for ln in open("/proc/self/mountinfo") if ln.split()[4] == nl.NETNS_DIR]
print(len(line), "shared:" in line[0], oct(os.stat(nl.NETNS_DIR).st_mode & 0o777))
os.system(f"umount {nl.NETNS_DIR}; rm -r {d}")
"""


def test_first_netns_dir_is_a_shared_mount_point():
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                        SCRIPT], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1", "True", "0o755"], p.stdout
