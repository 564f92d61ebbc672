"""Issue #9: where the kubelet finds cgroup v2, and the names it gives container cgroups."""

from __future__ import annotations

from netsim.kubelet import cgroups

HYBRID = """\
23 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PURE_V2 = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
V1_ONLY = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
"""


def _mountinfo(tmp_path, text: str) -> str:
    p = tmp_path / "mountinfo"
    p.write_text(text)
    return str(p)


def test_cgroup2_found_on_hybrid_and_pure_v2_layouts(tmp_path):
    assert cgroups.cgroup2_mount(_mountinfo(tmp_path, HYBRID)) == "/sys/fs/cgroup/unified"
    assert cgroups.cgroup2_mount(_mountinfo(tmp_path, PURE_V2)) == "/sys/fs/cgroup"


def test_no_cgroup2_without_a_v2_mount(tmp_path):
    assert cgroups.cgroup2_mount(_mountinfo(tmp_path, V1_ONLY)) is None
    assert cgroups.cgroup2_mount(str(tmp_path / "missing")) is None


def test_mount_point_escapes_are_decoded(tmp_path):
    text = "41 31 0:38 / /mnt/cg\\040two rw - cgroup2 cgroup2 rw\n"
    assert cgroups.cgroup2_mount(_mountinfo(tmp_path, text)) == "/mnt/cg two"


def test_container_cgroup_names_stay_inside_the_pod_cgroup():
    pod = "/sys/fs/cgroup/netsim/c/n/podX"
    assert cgroups.container_path(pod, "web") == f"{pod}/ctr-web"
    for odd in ("..", "a/b", "", "x" * 300):
        path = cgroups.container_path(pod, odd)
        assert path.startswith(pod + "/ctr-") and "/" not in path[len(pod) + 1:]
        assert not path.endswith("/ctr-..")
    # never a cgroup interface file such as cgroup.procs
    assert cgroups.container_path(pod, "cgroup.procs").endswith("/ctr-cgroup.procs")


def test_teardown_never_kills_through_the_shared_top(tmp_path, monkeypatch):
    killed, removed = [], []
    monkeypatch.setattr(cgroups, "kill", lambda p, timeout=5.0: killed.append(p) or True)
    monkeypatch.setattr(cgroups, "remove", lambda p: removed.append(p))
    top = tmp_path / "netsim"
    (top / "c" / "n").mkdir(parents=True)
    recs = [{"kind": "cgroup", "path": str(top), "shared": True},
            {"kind": "cgroup", "path": str(top / "c")},
            {"kind": "cgroup", "path": str(top / "c" / "n")},
            {"kind": "netns", "name": "x"}]
    cgroups.teardown(recs)
    # cgroup.kill of c takes its subtree (c/n) with it: one kill, never the shared top
    assert killed == [str(top / "c")]
    assert removed == [str(top / "c")]  # one walk of its subtree (deepest first in it)
    assert top.exists()  # the shared top goes only when empty: here it still holds c/


def test_kill_all_writes_cgroup_kill_of_each_top_only_and_waits_for_empty(tmp_path, monkeypatch):
    """`cluster down`'s kill: one cgroup.kill write per topmost cgroup (the pods under a
    node need none), never the shared top; None on a kernel without cgroup.kill."""
    shared = tmp_path / "netsim"
    node, pod, other = shared / "c" / "n", shared / "c" / "n" / "pod", shared / "d"
    for d in (pod, other):
        d.mkdir(parents=True)
    for d in (shared, shared / "c", node, pod, other):
        (d / "cgroup.kill").write_text("")
        (d / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    recs = [{"kind": "cgroup", "path": str(shared), "shared": True},
            {"kind": "cgroup", "path": str(node)}, {"kind": "cgroup", "path": str(pod)},
            {"kind": "cgroup", "path": str(other)}, {"kind": "netns", "name": "x"}]
    tops = cgroups.kill_all(recs)
    assert tops == [str(node), str(other)]
    written = sorted(str(p.parent) for p in shared.rglob("cgroup.kill") if p.read_text() == "1")
    assert written == [str(node), str(other)]
    assert cgroups.wait_empty(tops, timeout=1.0)
    (other / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert not cgroups.wait_empty(tops, timeout=0.05)
    monkeypatch.setattr(cgroups, "_cgroup_kill", lambda path: False)  # Linux < 5.14
    assert cgroups.kill_all(recs) is None  # the caller stops them by pid
