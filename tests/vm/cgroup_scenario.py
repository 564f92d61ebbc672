"""Runs *inside* the VM (tests/vm/harness.py), as root, with the host's netsim tree: a
pure cgroup v2 layout at /sys/fs/cgroup (as on Debian 12) on Debian's own kernel.

    python3 cgroup_scenario.py REPO_ROOT

A container that daemonizes a grandchild (fork, setsid, fork) is started the kubelet's
way (runtime.start into its cgroup); runtime.stop leaves no process of it; a second one is
removed by the ledger-driven teardown (cgroups.teardown), directories included.
Prints `NSIM ...` lines; exit 0 when every check passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

REPO = sys.argv[1]
sys.path.insert(0, REPO)

from netsim.kubelet import cgroups, runtime  # noqa: E402
from netsim.net.ledger import Ledger  # noqa: E402


def sh(*a):
    return subprocess.run(a, capture_output=True, text=True)


for what, fs, where in (("proc", "proc", "/proc"), ("sysfs", "sysfs", "/sys")):
    if not os.path.ismount(where):
        sh("mount", "-t", fs, what, where)
if not any(" - cgroup2 " in line for line in open("/proc/self/mountinfo")):
    print("mount cgroup2:", sh("mount", "-t", "cgroup2", "none", "/sys/fs/cgroup").returncode)
os.makedirs("/run/netns", exist_ok=True)
print("NSIM kernel", os.uname().release)
print("NSIM mount", cgroups.cgroup2_mount(), "usable", cgroups.usable())
d = tempfile.mkdtemp()
led = Ledger("vmc", root=d)
node = cgroups.ensure_node(led, "vmc", "n1")
pod = cgroups.pod_path(node, "uid1")
cgroups.make_pod(led, pod)
print("NSIM netns", sh("ip", "netns", "add", "vmc-pod").returncode)


def run(name):
    cg = cgroups.container_path(pod, name)
    rec = runtime.ContainerRecord(name=name, cgroup=cg)
    rec.pid, rec.starttime = runtime.start(
        ["sh", "-c", "(setsid sh -c 'sleep 1000 & exec sleep 1000' &); exec sleep 1000"],
        netns="vmc-pod", hostname="p", etc_dir="",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        log_path=os.path.join(d, name + ".log"), cgroup=cg)
    deadline = time.monotonic() + 20
    def sleeps():
        out = []
        for p in cgroups.pids(cg):
            try:
                out += [p] if open(f"/proc/{p}/comm").read().strip() == "sleep" else []
            except OSError:
                pass
        return out
    while len(sleeps()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    return rec, cg


rec, cg = run("a")
pids = cgroups.pids(cg)
print("NSIM started", len(pids), "leader in cgroup", rec.pid in pids)
runtime.stop(rec, 1.0)
left = [p for p in pids if runtime.proc_starttime(p) is not None]
print("NSIM after_stop", len(left), "cgroup_procs", len(cgroups.pids(cg)))
rec2, cg2 = run("b")
n2 = len(cgroups.pids(cg2))
cgroups.teardown(led.records())
dirs = (pod, node, os.path.dirname(node), os.path.dirname(os.path.dirname(node)))
print("NSIM teardown started", n2, "left", len(cgroups.pids(cg2)) if os.path.isdir(cg2) else 0,
      "dirs_left", [p for p in dirs if os.path.isdir(p)])
ok = len(pids) >= 3 and not left and n2 >= 3 and not os.path.isdir(os.path.dirname(node))
print("NSIM ok", ok)
sys.stdout.flush()
sys.exit(0 if ok else 1)
