"""The image server's plan for a container (netsim/images/zygote.py, no root): the same
namespaces, mounts, environment and argv the exec launcher (netsim.kubelet.runtime) gives
it, and which containers the kubelet hands to the server at all."""

from __future__ import annotations

import os
import sys

import pytest

from netsim.images import catalog
from netsim.images import zygote as server
from netsim.kubelet import zygote


@pytest.fixture(autouse=True)
def _room(monkeypatch):
    """The room the kubelet gives the server (this process's own blocks are pytest's)."""
    monkeypatch.setattr(server, "ARGS_ROOM", zygote.ARGV_ROOM)
    monkeypatch.setattr(server, "ENVS_ROOM", zygote.ENV_ROOM)


def _req(tmp_path, **kw) -> dict:
    argv = catalog.resolve("netsim/echo", {"name": "c"}).argv
    return {"argv": argv, "env": {"POD": "p", "EMPTY": ""}, "cwd": "/data", "log": "/x/0.log",
            "exit_file": "/x/0.exit", "cgroup": "/cg/ctr-c", "hostname": "web-0", **kw}


def test_builtin_images_are_forked_and_commands_exec_d():
    for image in ("netsim/echo", "tcp-echo", "mysql", "myblog", "busybox", "pause"):
        argv = catalog.resolve(image, {"name": "c"}).argv
        assert zygote.serves(argv), image
        assert server.program(argv) is not None, image
    for argv in (catalog.resolve("python:3.12", {"name": "c", "command": ["python3"]}).argv,
                 catalog.resolve("busybox", {"name": "c", "args": ["sh", "-c", "true"]}).argv,
                 [sys.executable, "-S", "/elsewhere/echo.py"], [sys.executable]):
        assert not zygote.serves(argv), argv
        assert server.program(argv) is None, argv


def test_plan_mounts_like_ip_netns_exec_and_the_volume_binds(tmp_path, monkeypatch):
    binds = tmp_path / "binds"
    binds.write_text("/src/a\t/etc/a\n/src/b\t/etc/b\tro\n")
    p = server.plan(_req(tmp_path, netns="nsx", binds=str(binds), etc_dir=""))
    mounts = [(m[0], m[1], m[3]) for m in p["mounts"]]
    assert mounts[0] == (b"none", b"/", server.MS_REC | server.MS_PRIVATE)
    assert mounts[1] == (b"nsx", b"/sys", -1)  # the netns's own sysfs, as `ip netns exec`
    assert mounts[-3:] == [(b"/src/a", b"/etc/a", server.MS_BIND),
                           (b"/src/b", b"/etc/b", server.MS_BIND),
                           (b"none", b"/etc/b", server.MS_REMOUNT | server.MS_BIND | server.MS_RDONLY)]
    assert p["net"] == "nsx"  # opened through mounter.open_netns
    assert p["mnt"] == b""
    assert p["hostname"] == b"web-0" and p["cwd"] == b"/data"
    assert p["env"] == {b"POD": b"p", b"EMPTY": b""}
    assert p["argv"][0].endswith("/images/echo.py") and "--port" in p["argv"]
    assert p["program"] == "echo.py" and p["exit"] == b"/x/0.exit"


def test_plan_enters_the_pods_mount_namespace_through_its_holder(tmp_path):
    p = server.plan(_req(tmp_path, netns="", mount_ns="/proc/42/ns/mnt"))
    assert p["mnt"] == b"/proc/42/ns/mnt" and p["root"] == b"/proc/42/root"
    assert p["net"] == "" and len(p["mounts"]) == 1  # hostNetwork: the node's own /sys


def test_argv_and_environment_blocks_are_the_containers(tmp_path, monkeypatch):
    req = _req(tmp_path)
    p = server.plan(req)
    assert p["title"] == b"".join(a.encode() + b"\0" for a in req["argv"])  # /proc/<pid>/cmdline
    assert p["environ"] == b"POD=p\0EMPTY=\0"  # /proc/<pid>/environ, read by `netsim exec`
    monkeypatch.setattr(server, "ENVS_ROOM", 8)  # does not fit: the kubelet execs it
    with pytest.raises(server.NoRoom):
        server.plan(req)


def test_exit_file_sits_beside_the_log_and_is_read_back(tmp_path):
    log = str(tmp_path / "c" / "2.log")
    assert zygote.exit_file(log) == str(tmp_path / "c" / "2.exit")
    os.makedirs(tmp_path / "c")
    assert zygote.read_exit(zygote.exit_file(log), lambda: False) is None
    (tmp_path / "c" / "2.exit").write_text("137\n")
    assert zygote.read_exit(zygote.exit_file(log), lambda: True) == 137


def test_exit_watch_sees_a_process_end_and_a_stale_record():
    import subprocess

    from netsim.kubelet import runtime

    p = subprocess.Popen(["sleep", "30"])
    try:
        key = (p.pid, wait_starttime(runtime, p.pid))
        watch = zygote.ExitWatch()
        assert watch.exited([key]) == set()
        assert watch.exited([key, (p.pid, key[1] + 1)]) == {(p.pid, key[1] + 1)}  # pid reused
        p.kill()
        p.wait()
        assert watch.exited([key]) == {key}
        assert watch.exited([]) == set() and not watch.fds  # forgotten: its pidfd closed
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_starttime(runtime, pid: int) -> int:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        st = runtime.proc_starttime(pid)
        if st is not None:
            return st
        time.sleep(0.01)
    raise AssertionError(f"no /proc entry for {pid}")


def test_warm_up_answers_its_requests_and_leaves_nothing_behind():
    """The image server's warm-up runs echo's real accept loop (serve's `until`) over its own
    loopback listener, its requests answered in the loop as echo answers them: afterwards
    no thread, socket or descriptor of it is left, stdout is the server's own again, and
    echo's app is ready as its main() leaves it."""
    import threading

    from netsim.images import _common, echo

    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    answered = []
    real = _common.answer_at_once

    def counting(conn, peer, app, server="netsim"):
        done = real(conn, peer, app, server=server)
        answered.append((server, done))
        return done

    # Other tests' threads may end meanwhile in a full run: what matters is that none of
    # warm_up's own threads or descriptors is left, not the totals.
    before, out = fds(), os.fstat(1)
    threads = set(threading.enumerate())
    _common.answer_at_once = counting
    try:
        server.warm_up()
    finally:
        _common.answer_at_once = real
    assert answered == [("netsim-echo", False)] * server.WARM_ROUNDS  # answered, closed
    assert set(threading.enumerate()) - threads == set()
    assert fds() - before == set()
    assert os.fstat(1) == out
    assert echo.json is not None


def test_exit_watch_waits_until_a_process_ends_or_a_wake():
    """The kubelet's monitor sleeps in wait(): an exit ends the sleep at once, so does
    wake() (a container just started); an exit already reported keeps being reported while
    it is asked about, without keeping wait() from sleeping."""
    import subprocess
    import threading
    import time

    from netsim.kubelet import runtime

    p = subprocess.Popen(["sleep", "30"])
    watch = zygote.ExitWatch()
    try:
        key = (p.pid, wait_starttime(runtime, p.pid))
        assert watch.exited([key]) == set()
        t = time.monotonic()
        watch.wait(0.2)  # nothing happens: the whole timeout
        assert time.monotonic() - t >= 0.15
        threading.Timer(0.1, watch.wake).start()
        t = time.monotonic()
        watch.wait(10)
        assert time.monotonic() - t < 5
        threading.Timer(0.1, p.kill).start()
        t = time.monotonic()
        watch.wait(10)
        assert time.monotonic() - t < 5
        assert watch.exited([key]) == {key}
        t = time.monotonic()
        watch.wait(0.2)  # reported: its pidfd no longer wakes the sleep
        assert time.monotonic() - t >= 0.15
        assert watch.exited([key]) == {key}  # still asked about: still reported
        assert watch.exited([]) == set() and not watch.fds
    finally:
        watch.close()
        watch.wake()  # after close: does nothing
        if p.poll() is None:
            p.kill()
        p.wait()
