"""A pod's life as the kubelet runs it, end to end (issues 12 and 18; root, a real cluster):
a `command` runs whatever the image, init containers run in order before the app (as
`netsim get po` shows it), postStart hooks, and the termination sequence: terminating
endpoints at once, the preStop hook, SIGTERM, SIGKILL after terminationGracePeriodSeconds.

Containers share the host's filesystem, so what they record (the time they got SIGTERM,
their pid) is written to files under the test's tmp_path and read from here.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "lifecycle"
PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too


ns = namespace_fixture(NS)


def _apply(cluster, obj: dict) -> None:
    cluster.netsim("apply", "-f", "-", input=json.dumps(obj))


def _pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
            "spec": {"containers": containers, **spec}}


def _status_col(cluster, name: str) -> str:
    out = cluster.netsim("-n", NS, "get", "po", name, "--no-headers", check=False).stdout.split()
    return out[2] if len(out) > 2 else ""


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "container process: " + " ".join(
                ln.strip() for ln in f if ln.startswith(("State:", "PPid:")))
    except OSError:
        return "container process: gone"


def _log_tail(cluster, node: str, lines: int = 40) -> str:
    path = f"/var/lib/netsim/{cluster.name}/logs/agent-{node}.log"
    try:
        with open(path) as f:
            return f"{path}, last lines:\n" + "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"{path}: {e}"


def _events(cluster, name: str) -> list[dict]:
    return [e for e in cluster.client.list("events", NS)
            if e["involvedObject"].get("name") == name]


def _http_get(cluster, pod: dict, port: int) -> str:
    node = pod["spec"]["nodeName"]
    code = ("import urllib.request,sys; "
            f"print(urllib.request.urlopen('http://{pod['status']['podIP']}:{port}/', timeout=2)"
            ".read().decode()[:200])")
    r = cluster.in_netns(cluster.node_netns(node), PYTHON, "-c", code, timeout=10)
    return r.stdout if r.returncode == 0 else ""


def test_python_image_with_command_serves_http(cluster, ns):
    _apply(cluster, _pod("py", [{"name": "web", "image": "python:3.12",
                                 "command": ["python3", "-m", "http.server", "8000"],
                                 "workingDir": "/",
                                 "ports": [{"containerPort": 8000}]}]))
    wait_for(lambda: _status_col(cluster, "py") == "Running", 30, what="py Running")
    pod = cluster.client.get("pods", "py", NS)
    assert "Directory listing" in wait_for(lambda: _http_get(cluster, pod, 8000), 20,
                                           what="http.server answering")
    msgs = {e["reason"]: e["message"] for e in _events(cluster, "py")}
    assert msgs["Pulled"] == 'Container image "python:3.12" already present on machine'
    assert msgs["Started"].startswith("Started container web: the host's \"python3\" for image "
                                      '"python:3.12"')
    # without a command, an image outside the catalog still fails as a pull would
    _apply(cluster, _pod("nopull", [{"name": "c", "image": "python:3.12"}]))
    wait_for(lambda: _status_col(cluster, "nopull") in ("ErrImagePull", "ImagePullBackOff"), 20,
             what="nopull ErrImagePull")
    cluster.netsim("-n", NS, "delete", "pod", "py", "nopull", "--grace-period=1", check=False)


def _svc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app.kubernetes.io/name": name},
                     "ports": [{"protocol": "TCP", "port": 80, "targetPort": 9376}]}}


def test_init_containers_wait_for_their_services(cluster, ns, tmp_path):
    """The docs' myapp-pod: Init:0/2 until myservice exists, Init:1/2 until mydb does."""
    order = tmp_path / "order"
    inits = [{"name": f"init-{svc}", "image": "busybox:1.28",
              "command": ["sh", "-c", f"until getent hosts {svc}; do sleep 0.2; done; "
                                      f"echo init-{svc} >> {order}"]}
             for svc in ("myservice", "mydb")]
    app = {"name": "myapp-container", "image": "busybox:1.28",
           "command": ["sh", "-c", f"echo The app is running! && echo app >> {order} && sleep 3600"]}
    _apply(cluster, _pod("myapp-pod", [app], initContainers=inits))
    wait_for(lambda: _status_col(cluster, "myapp-pod") == "Init:0/2", 30, what="Init:0/2")
    time.sleep(1.5)  # it stays there while the Service does not exist
    assert _status_col(cluster, "myapp-pod") == "Init:0/2"
    pod = cluster.client.get("pods", "myapp-pod", NS)
    cond = {c["type"]: c for c in pod["status"]["conditions"]}
    assert cond["Initialized"]["status"] == "False"
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    _apply(cluster, _svc("myservice"))
    wait_for(lambda: _status_col(cluster, "myapp-pod") == "Init:1/2", 30, what="Init:1/2")
    _apply(cluster, _svc("mydb"))
    wait_for(lambda: _status_col(cluster, "myapp-pod") == "Running", 30, what="Running")
    pod = cluster.client.get("pods", "myapp-pod", NS)
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Initialized"] == "True"
    assert [s["state"]["terminated"]["reason"] for s in pod["status"]["initContainerStatuses"]] \
        == ["Completed", "Completed"]
    # Running says the app container started, not that its shell has run its first line yet
    wait_for(lambda: len(order.read_text().split()) >= 3, 10, what="the app's line")
    assert order.read_text().split() == ["init-myservice", "init-mydb", "app"]
    cluster.netsim("-n", NS, "delete", "pod", "myapp-pod", "--grace-period=1", check=False)


def test_sidecar_keeps_running_and_failed_init_shows_init_error(cluster, ns):
    side = {"name": "log", "image": "busybox", "restartPolicy": "Always",
            "command": ["sh", "-c", "sleep 3600"]}
    main = {"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}
    _apply(cluster, _pod("withsidecar", [main], initContainers=[side]))
    wait_for(lambda: cluster.netsim("-n", NS, "get", "po", "withsidecar", "--no-headers")
             .stdout.split()[1:3] == ["2/2", "Running"], 30, what="sidecar and app running")
    failing = {"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 3"]}
    _apply(cluster, _pod("badinit", [main], initContainers=[failing], restartPolicy="Never"))
    wait_for(lambda: _status_col(cluster, "badinit") == "Init:Error", 30, what="Init:Error")
    assert cluster.client.get("pods", "badinit", NS)["status"]["phase"] == "Failed"
    # a Job-like pod: when its app container is done, the sidecar is stopped, the pod ends
    short = {"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 1"]}
    _apply(cluster, _pod("sidecarjob", [short], initContainers=[side], restartPolicy="Never"))
    wait_for(lambda: cluster.client.get("pods", "sidecarjob", NS)["status"].get("phase")
             == "Succeeded", 40, what="sidecarjob Succeeded")
    st = cluster.client.get("pods", "sidecarjob", NS)["status"]
    assert "terminated" in st["initContainerStatuses"][0]["state"]
    assert _status_col(cluster, "sidecarjob") == "Completed"
    cluster.netsim("-n", NS, "delete", "pod", "withsidecar", "badinit", "sidecarjob",
                   "--grace-period=1", check=False)


def test_post_start_hooks(cluster, ns, tmp_path):
    mark = tmp_path / "poststart"
    ok = {"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 3600"],
          "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", f"hostname > {mark}"]}}}}
    _apply(cluster, _pod("hooked", [ok]))
    wait_for(lambda: mark.exists() and mark.read_text().strip() == "hooked", 30,
             what="postStart ran inside the container (its hostname)")
    bad = {"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 3600"],
           "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}}}
    _apply(cluster, _pod("badhook", [bad]))
    ev = wait_for(lambda: [e for e in _events(cluster, "badhook")
                           if e["reason"] == "FailedPostStartHook"], 30,
                  what="FailedPostStartHook")
    assert ev[0]["type"] == "Warning" and "Exec lifecycle hook ([sh -c exit 7])" in ev[0]["message"]
    wait_for(lambda: cluster.client.get("pods", "badhook", NS)["status"]
             ["containerStatuses"][0]["restartCount"] >= 1, 30, what="badhook restarted")
    cluster.netsim("-n", NS, "delete", "pod", "hooked", "badhook", "--grace-period=1", check=False)


TERM_LOGGER = ("import signal, sys, time\n"
               "def term(*_):\n"
               "    open(sys.argv[1], 'w').write(str(time.time()))\n"
               "    sys.exit(0)\n"
               "signal.signal(signal.SIGTERM, term)\n"
               "import http.server\n"
               "http.server.HTTPServer(('', 8080), http.server.SimpleHTTPRequestHandler)"
               ".serve_forever()\n")


def _endpoint_conditions(cluster, svc: str) -> list[dict]:
    slices = cluster.client.list("endpointslices", NS, f"kubernetes.io/service-name={svc}")
    return [ep.get("conditions") for s in slices for ep in s.get("endpoints") or []]


def test_pre_stop_sleep_delays_sigterm_while_endpoints_say_terminating(cluster, ns, tmp_path):
    got_term = tmp_path / "term"
    c = {"name": "web", "image": "python:3.12", "command": [PYTHON, "-c", TERM_LOGGER, str(got_term)],
         "ports": [{"containerPort": 8080}],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
         "lifecycle": {"preStop": {"sleep": {"seconds": 4}}}}
    _apply(cluster, _pod("slow", [c], terminationGracePeriodSeconds=20))
    _apply(cluster, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "slow", "namespace": NS},
                     "spec": {"selector": {"app": "slow"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    cluster.wait_pods_ready(NS, "app=slow", 1, 30)
    wait_for(lambda: _endpoint_conditions(cluster, "slow") == [
        {"ready": True, "serving": True, "terminating": False}], 20, what="a ready endpoint")
    t0 = time.time()
    cluster.netsim("-n", NS, "delete", "pod", "slow", "--wait=false")
    wait_for(lambda: _endpoint_conditions(cluster, "slow") == [
        {"ready": False, "serving": True, "terminating": True}], 3,
        what="the endpoint terminating at once")
    assert not got_term.exists()  # still in its preStop sleep
    wait_for(got_term.exists, 20, what="SIGTERM after the preStop hook")
    waited = float(got_term.read_text()) - t0
    assert 3.5 <= waited < 10, f"SIGTERM {waited:.1f}s after the delete (preStop sleep 4 s)"
    wait_for(lambda: cluster.client.get_or_none("pods", "slow", NS) is None, 20, what="pod gone")
    reasons = [e["reason"] for e in _events(cluster, "slow")]
    assert "Killing" in reasons and "FailedPreStopHook" not in reasons


def test_grace_period_kills_a_container_ignoring_sigterm(cluster, ns, tmp_path):
    pidfile = tmp_path / "pid"
    code = ("import os, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
            "while True: time.sleep(1)\n")
    c = {"name": "stubborn", "image": "busybox", "command": [PYTHON, "-c", code, str(pidfile)],
         "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "exit 1"]}}}}
    _apply(cluster, _pod("stubborn", [c], terminationGracePeriodSeconds=3))
    wait_for(lambda: _status_col(cluster, "stubborn") == "Running" and pidfile.exists()
             and pidfile.read_text(), 30, what="stubborn Running")
    pid = int(pidfile.read_text())
    t0 = time.monotonic()
    node = cluster.client.get("pods", "stubborn", NS)["spec"]["nodeName"]
    cluster.netsim("-n", NS, "delete", "pod", "stubborn", "--wait=false")
    try:
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 20, interval=0.05,
                 what="the container killed")
    except AssertionError as e:  # what the kubelet was doing meanwhile (CI shows no logs)
        raise AssertionError(f"{e}\n{_proc_state(pid)}\nevents: "
                             f"{[(x['reason'], x['message']) for x in _events(cluster, 'stubborn')]}"
                             f"\n{_log_tail(cluster, node)}") from None
    took = time.monotonic() - t0
    assert 2.5 <= took < 8, f"killed {took:.1f}s after the delete (grace 3 s)"
    wait_for(lambda: cluster.client.get_or_none("pods", "stubborn", NS) is None, 20,
             what="pod gone")
    ev = {e["reason"]: e for e in _events(cluster, "stubborn")}
    assert ev["Killing"]["message"] == "Stopping container stubborn"
    assert ev["FailedPreStopHook"]["type"] == "Warning"


def test_crash_loop_back_off(cluster, ns):
    """A crashing container (and init container) restarts at once, then backs off 10 s,
    20 s, ... with the kubelet's words in its waiting state and events."""
    crash = {"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 1"]}
    _apply(cluster, _pod("crashy", [crash]))
    init = {"name": "setup", "image": "busybox", "command": ["sh", "-c", "exit 2"]}
    main = {"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}
    _apply(cluster, _pod("crashinit", [main], initContainers=[init]))
    wait_for(lambda: _status_col(cluster, "crashy") == "CrashLoopBackOff", 30,
             what="crashy CrashLoopBackOff")
    wait_for(lambda: _status_col(cluster, "crashinit") == "Init:CrashLoopBackOff", 30,
             what="crashinit Init:CrashLoopBackOff")
    pod = cluster.client.get("pods", "crashy", NS)
    cs = pod["status"]["containerStatuses"][0]
    md = pod["metadata"]
    assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["state"]["waiting"]["message"] == (
        f"back-off 10s restarting failed container=c pod=crashy_{NS}({md['uid']})")
    ev = [e for e in _events(cluster, "crashy") if e["reason"] == "BackOff"]
    assert ev and ev[0]["type"] == "Warning" and ev[0]["message"] == (
        f"Back-off restarting failed container c in pod crashy_{NS}({md['uid']})")
    # after its 10 s it runs again (restart 2), then waits 20 s
    wait_for(lambda: cluster.client.get("pods", "crashy", NS)["status"]["containerStatuses"][0]
             ["state"].get("waiting", {}).get("message", "").startswith("back-off 20s"), 30,
             what="back-off 20s")
    cs = cluster.client.get("pods", "crashy", NS)["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 2
    # (between two back-offs it runs for a moment: its state is running, then terminated)
    wait_for(lambda: cluster.client.get("pods", "crashinit", NS)["status"]
             ["initContainerStatuses"][0]["state"].get("waiting", {}).get("reason")
             == "CrashLoopBackOff", 30, what="crashinit's init container waiting in back-off")
    ics = cluster.client.get("pods", "crashinit", NS)["status"]["initContainerStatuses"][0]
    assert ics["lastState"]["terminated"]["exitCode"] == 2
    cluster.netsim("-n", NS, "delete", "pod", "crashy", "crashinit", "--grace-period=1",
                   check=False)
