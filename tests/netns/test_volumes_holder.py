"""The pod's mount namespace holder (netsim.kubelet.mounter) on this machine, without a
cluster: tmpfs volumes and missing mountPaths exist in the pod's namespace only, a
container's copy of it sees them, and the host's mount table never changes."""

from __future__ import annotations

import os
import subprocess

import pytest

from netsim.kubelet import mounter
from netsim.kubelet import volumes as v
from tests.conftest import requires_root

pytestmark = [requires_root, pytest.mark.root]

MISSING = ["/etc/netsim-holder-test", "/netsim-holder-test",
           "/var/run/secrets/netsim-holder-test/serviceaccount"]


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f.read().splitlines() if "netsim-holder" in line
                or "pytest-of" in line]


def _pod() -> dict:
    mounts = [{"name": "sa", "mountPath": MISSING[2]}, {"name": "cfg", "mountPath": MISSING[0]},
              {"name": "work", "mountPath": MISSING[1]},
              {"name": "cfg", "mountPath": MISSING[1] + ".conf", "subPath": "key"}]
    return {"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": [{"name": "c", "volumeMounts": mounts}],
                     "volumes": [{"name": "sa", "projected": {"sources": []}},
                                 {"name": "cfg", "configMap": {"name": "cfg"}},
                                 {"name": "work", "emptyDir": {"medium": "Memory",
                                                               "sizeLimit": "1Mi"}}]}}


def _in_copy(holder: int, script: str) -> subprocess.CompletedProcess:
    """A shell in a container-like private copy of the holder's namespace."""
    return subprocess.run(["nsenter", f"--mount=/proc/{holder}/ns/mnt", "--wd=/", "--",
                           "unshare", "--mount", "--propagation", "private", "--wd=/",
                           "sh", "-c", script], capture_output=True, text=True, timeout=30)


def test_holder_namespace(tmp_path):
    for p in MISSING:
        assert not os.path.lexists(p)
    before = _mountinfo()
    pod, pdir = _pod(), str(tmp_path)
    files = {"cfg": {"key": (b"value", 0o644)}}
    plan = v.plan(pod, pdir, files)
    assert mounter.read_plan(mounter.write_plan(plan)) == plan
    pid, start = v.start_holder(pdir, plan, "")
    try:
        sa = v.volume_dir(pdir, pod["spec"]["volumes"][0])
        cfg = v.volume_dir(pdir, pod["spec"]["volumes"][1])
        work = v.volume_dir(pdir, pod["spec"]["volumes"][2])
        v.atomic_write(v.in_holder(pid, sa), {"token": (b"jwt", 0o644)})
        v.atomic_write(cfg, files["cfg"])
        assert os.listdir(sa) == []  # the host sees an empty folder: the tmpfs is the pod's
        binds = v.container_binds(pod, pod["spec"]["containers"][0], pdir, lambda m: None)
        script = "; ".join(f"mount --bind {b.src} {b.dst}" for b in binds)
        r = _in_copy(pid, f"{script}; cat {MISSING[2]}/token {MISSING[0]}/key "
                          f"{MISSING[1]}.conf; echo; stat -f -c %T {MISSING[2]} {MISSING[1]}; "
                          f"df -k {MISSING[1]} | tail -1; pwd")
        assert r.returncode == 0, r.stderr
        out = r.stdout.split("\n")
        assert out[0] == "jwtvaluevalue"
        assert out[1:3] == ["tmpfs", "tmpfs"]
        assert out[3].split()[1] == "1024"  # sizeLimit 1Mi
        assert out[4] == "/" and r.stderr == ""  # a working directory the container can use
        assert _in_copy(pid, "ls /etc/passwd /tmp >/dev/null").returncode == 0  # the host's files
        assert os.path.isdir(work)
    finally:
        v.stop_holder(pid, start)
    assert not v.holder_alive(pid, start)
    for p in MISSING:
        assert not os.path.lexists(p)
    assert _mountinfo() == before


def test_the_pods_namespace_keeps_only_its_own_netns(tmp_path):
    """/run/netns in a pod's mount namespace: a tmpfs with the pod's own netns, so later
    `ip netns add`s of the node do not propagate into every pod (O(pods) each) and no copy
    of the folder pins another pod's netns after it was deleted."""
    from netsim.net import netlink as nl
    from netsim.net import rtnl

    names = ["netsim-holder-test-own", "netsim-holder-test-other"]
    for n in names:
        fd, sock = rtnl.new_netns(n)
        os.close(fd)
        sock.close()
    pod, pdir = _pod(), str(tmp_path)
    plan = v.plan(pod, pdir, {}, netns=names[0])
    assert mounter.read_plan(mounter.write_plan(plan)) == plan
    pid, start = v.start_holder(pdir, plan, "")
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            nsfs = [line.split()[4] for line in f if " - nsfs " in line]
        assert set(nsfs) == {f"/run/netns/{names[0]}"}, nsfs  # (seen under a mimic, too)
        later = "netsim-holder-test-later"
        fd, sock = rtnl.new_netns(later)  # a new pod's netns on the node
        os.close(fd)
        sock.close()
        names.append(later)
        with open(f"/proc/{pid}/mountinfo") as f:
            assert later not in f.read()
        r = _in_copy(pid, "ls /run/netns")  # what `ip netns exec` of the launcher finds
        assert r.stdout.split() == [names[0]], r.stdout + r.stderr
    finally:
        v.stop_holder(pid, start)
        for n in names:
            nl.remove_netns(n)
