"""The kubelet's lifecycle rules, pure (issues 12 and 18): pod phase and conditions while
init containers run, which lifecycle hook action a handler names, and the restart back-off.

Expected values follow upstream: kubelet_pods.go getPhase and status.GeneratePodInitializedCondition,
kubectl's printPod (Init:N/M, Init:Error, Init:CrashLoopBackOff, PodInitializing),
pkg/kubelet/lifecycle/handlers.go, and flowcontrol.Backoff as kuberuntime's doBackOff uses it.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone

import pytest

from netsim.api.printing import printers
from netsim.kubelet import hooks
from netsim.kubelet import status as st

NOW = "2026-12-01T10:05:00Z"


def _s(name, kind, code=0, started=None, ready=False):
    if kind == "running":
        return {"name": name, "state": {"running": {"startedAt": NOW}}, "lastState": {},
                "started": True if started is None else started, "ready": ready,
                "restartCount": 0}
    if kind == "terminated":
        return {"name": name, "state": {"terminated": {"exitCode": code,
                                                       "reason": "Completed" if code == 0 else "Error"}},
                "lastState": {}, "started": False, "ready": code == 0, "restartCount": 0}
    if kind == "backoff":
        return {"name": name, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": code or 1, "reason": "Error"}},
                "started": False, "ready": False, "restartCount": 1}
    return {"name": name, "state": {"waiting": {"reason": kind}}, "lastState": {},
            "started": False, "ready": False, "restartCount": 0}


INITS = [{"name": "init-myservice"}, {"name": "init-mydb"}]


@pytest.mark.parametrize("policy,states,phase", [
    ("Always", [("running",), ("PodInitializing",)], "Pending"),
    ("Always", [("terminated", 0), ("running",)], "Pending"),
    ("Always", [("terminated", 0), ("terminated", 0)], None),
    ("Always", [("terminated", 1), ("PodInitializing",)], "Pending"),
    ("OnFailure", [("backoff",), ("PodInitializing",)], "Pending"),
    ("Never", [("terminated", 1), ("PodInitializing",)], "Failed"),
])
def test_init_phase(policy, states, phase):
    statuses = [_s(c["name"], *s) for c, s in zip(INITS, states, strict=True)]
    assert st.init_phase(policy, INITS, statuses) == phase


def test_a_started_sidecar_does_not_block_the_next_init_container():
    specs = [{"name": "log", "restartPolicy": "Always"}, {"name": "setup"}]
    assert st.init_done(specs[0], _s("log", "running", started=True))
    assert not st.init_done(specs[0], _s("log", "running", started=False))
    assert not st.init_done(specs[1], _s("setup", "running"))
    assert st.init_phase("Always", specs, [_s("log", "running"), _s("setup", "terminated")]) is None


def test_initialized_condition_false_until_init_containers_are_done():
    apps = [_s("myapp", "PodInitializing")]
    conds = {c["type"]: c for c in st.pod_conditions(
        apps, "Pending", sandbox_ready=True, old=[], now=NOW,
        not_initialized=["init-myservice", "init-mydb"])}
    init = conds["Initialized"]
    assert (init["status"], init["reason"], init["message"]) == (
        "False", "ContainersNotInitialized",
        "containers with incomplete status: [init-myservice init-mydb]")
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["message"] == "containers with unready status: [myapp]"
    done = {c["type"]: c for c in st.pod_conditions(
        [_s("myapp", "running", ready=True)], "Running", sandbox_ready=True, old=[], now=NOW)}
    assert done["Initialized"]["status"] == done["Ready"]["status"] == "True"


def _pod(init_states, app_states=(("PodInitializing",),), phase="Pending", inits=INITS):
    return {"metadata": {"name": "myapp-pod", "namespace": "default",
                         "creationTimestamp": NOW},
            "spec": {"initContainers": inits, "containers": [{"name": "myapp"}]},
            "status": {"phase": phase,
                       "initContainerStatuses": [_s(c["name"], *s) for c, s in
                                                 zip(inits, init_states, strict=True)],
                       "containerStatuses": [_s("myapp", *s) for s in app_states]}}


@pytest.mark.parametrize("init_states,app,phase,shown", [
    ([("running",), ("PodInitializing",)], [("PodInitializing",)], "Pending", "Init:0/2"),
    ([("terminated", 0), ("running",)], [("PodInitializing",)], "Pending", "Init:1/2"),
    ([("terminated", 1), ("PodInitializing",)], [("PodInitializing",)], "Failed", "Init:Error"),
    ([("backoff",), ("PodInitializing",)], [("PodInitializing",)], "Pending",
     "Init:CrashLoopBackOff"),
    ([("terminated", 0), ("terminated", 0)], [("PodInitializing",)], "Pending", "PodInitializing"),
    ([("terminated", 0), ("terminated", 0)], [("running",)], "Running", "Running"),
])
def test_kubectl_shows_init_progress_from_the_kubelets_statuses(init_states, app, phase, shown):
    """What the kubelet writes is what `kubectl get po` turns into Init:N/M."""
    _, status, _ = printers.pod_ready_restarts_status(_pod(init_states, app, phase),
                                                     datetime.now(timezone.utc))
    assert status == shown


# ---- hooks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("handler,kind", [
    ({"exec": {"command": ["sleep", "2"]}}, "exec"),
    ({"httpGet": {"path": "/shutdown", "port": 8080}}, "httpGet"),
    ({"sleep": {"seconds": 5}}, "sleep"),
    ({"tcpSocket": {"port": 80}}, None),  # accepted by the API for compatibility, never run
    ({}, None),
    (None, None),
])
def test_hook_action(handler, kind):
    assert hooks.action(handler) == kind
    c = {"name": "c", "lifecycle": {"preStop": handler}} if handler is not None else {"name": "c"}
    assert (hooks.handler(c, "preStop") is not None) == (kind is not None)
    assert hooks.handler(c, "postStart") is None


def test_sleep_hook_is_cut_at_the_grace_left():
    assert hooks.sleep_seconds({"sleep": {"seconds": 5}}, 30.0) == 5.0
    assert hooks.sleep_seconds({"sleep": {"seconds": 50}}, 30.0) == 30.0
    assert hooks.sleep_seconds({"sleep": {"seconds": 5}}, -1.0) == 0.0
    stop = threading.Event()
    t0 = time.monotonic()
    assert hooks.run({"sleep": {"seconds": 0.2}}, {"name": "c"}, {}, "", 0, "", 5.0, stop) is None
    assert 0.15 < time.monotonic() - t0 < 2.0


def test_failed_http_hook_message_is_upstreams():
    pod = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}}
    msg = hooks.run({"httpGet": {"path": "/stop", "port": 1}}, {"name": "c"}, pod, "127.0.0.1",
                    0, "", 1.0)
    assert msg.startswith('HTTP lifecycle hook (/stop) for Container "c" in Pod '
                          '"web_default(u-1)" failed - error: Get "http://127.0.0.1:1/stop": ')


# ---- back-off -----------------------------------------------------------------------------

def test_backoff_doubles_from_10s_to_5min():
    entry, now, delays = None, 1000.0, []
    for _ in range(8):
        # a container that crashes at once after each restart
        wait = st.backoff_wait(entry, now, now)
        delays.append(round(wait))
        now += wait
        entry = st.backoff_next(entry, now)
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]


def test_backoff_waits_from_the_last_restart_and_resets_after_10_minutes():
    entry = st.backoff_next(None, 100.0)  # restarted at 100: 10 s
    assert st.backoff_wait(entry, 103.0, 103.0) == pytest.approx(7.0)
    assert st.backoff_wait(entry, 115.0, 115.0) == 0.0  # ran longer than the delay
    entry = (300.0, 100.0)
    assert st.backoff_next(entry, 200.0) == (300.0, 200.0)
    assert st.backoff_next(entry, 100.0 + 601) == (10.0, 701.0)  # 10 min later: from 10 s


@pytest.mark.parametrize("secs,text", [(10, "10s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"),
                                       (300, "5m0s")])
def test_backoff_message(secs, text):
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}}
    assert st.backoff_message(secs, "c", pod) == \
        f"back-off {text} restarting failed container=c pod=p_ns(u-1)"


# ---- exit codes and launch --------------------------------------------------------------

def test_exit_code_survives_other_subprocesses(tmp_path):
    """A container's exit code is its own even when another subprocess starts meanwhile
    (subprocess's cleanup of dropped Popens once read an init container's 3 as 0)."""
    import subprocess
    import sys

    from netsim.kubelet import runtime

    pid, _ = runtime.spawn([sys.executable, "-c", "raise SystemExit(3)"], str(tmp_path / "log"))
    deadline = time.monotonic() + 10
    codes: dict[int, int] = {}
    while pid not in codes and time.monotonic() < deadline:
        subprocess.run([sys.executable, "-c", "pass"], check=True)  # a Popen's _cleanup
        codes.update(runtime.reap([pid]))
    assert codes == {pid: 3}



def test_a_restarting_sidecar_does_not_send_a_running_pod_back_to_pending():
    specs = [{"name": "log", "restartPolicy": "Always"}]
    down = [_s("log", "backoff")]
    assert st.init_phase("Always", specs, down) == "Pending"
    assert st.init_phase("Always", specs, down, apps_started=True) is None


@pytest.mark.parametrize("policy,codes,done", [
    ("Always", [0], False),
    ("OnFailure", [0, 0], True),
    ("OnFailure", [0, 1], False),
    ("Never", [0, 1], True),
    ("Never", [0, None], False),
    ("Never", ["absent"], False),
])
def test_apps_done_stops_the_sidecars(policy, codes, done):
    from types import SimpleNamespace
    recs = [None if c == "absent" else SimpleNamespace(exit_code=c) for c in codes]
    assert st.apps_done(policy, recs) is done


def _zombie(pid: int) -> bool:
    from netsim.kubelet import runtime

    return (runtime._stat(pid) or ["gone"])[0] == "Z"


def test_a_stop_reaps_a_container_it_sees_a_zombie(tmp_path):
    """A container that is already a zombie when the stop looks (killed between two looks)
    is reaped by that stop, its own code kept: once its pod's record is dropped nobody
    else would, and `ps` would show it <defunct> for as long as the agent lives."""
    import signal
    import sys

    from netsim.kubelet import runtime

    pid, start = runtime.spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                               str(tmp_path / "log"))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not _zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _zombie(pid)
    runtime.terminate([(pid, start)], grace=1.0)  # it sees no live process
    assert not os.path.exists(f"/proc/{pid}")
    assert runtime.take_exit(pid) == 143  # killed by its SIGTERM, as the status shows it
    assert runtime.take_exit(pid) is None


def test_collect_reaps_dead_children_and_leaves_a_reused_pid_alone(tmp_path):
    import signal
    import sys

    from netsim.kubelet import runtime

    dead, dstart = runtime.spawn([sys.executable, "-c", "pass"], str(tmp_path / "a"))
    live, lstart = runtime.spawn([sys.executable, "-c", "import time; time.sleep(60)"],
                                 str(tmp_path / "b"))
    try:
        deadline = time.monotonic() + 10
        while not _zombie(dead) and time.monotonic() < deadline:
            time.sleep(0.01)
        runtime.collect([(dead, dstart), (live, lstart + 1), (0, 0)], timeout=0.2)
        assert not os.path.exists(f"/proc/{dead}")
        assert runtime.take_exit(dead) == 0
        assert runtime.proc_starttime(live) == lstart  # another start time: not touched
    finally:
        os.kill(live, signal.SIGKILL)
        runtime.collect([(live, lstart)])
    assert not os.path.exists(f"/proc/{live}")
