"""pods/exec and pods/log through the API server, as users drive them: the real kubectl
(WebSocket v5.channel.k8s.io: exit codes, stdin, a terminal and its size, kubectl's own
errors, cp, attach) and the Python client (v5 and v4.channel.k8s.io exec, followed logs). The exec'd process
is in the container's namespaces and cgroup, and ends when the client goes away."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from netsim.kubelet import cgroups
from tests.conftest import namespace_fixture, wait_for
from tests.e2e.kubectl_helpers import KUBECTL, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

ns = namespace_fixture("streams")

OBJECTS = """
apiVersion: v1
kind: Pod
metadata: {name: talk, labels: {app: talk}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: talk
    image: busybox
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.5; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: first, image: busybox, command: ["sh", "-c", "echo from first; sleep 3600"]}
  - {name: second, image: busybox, command: ["sh", "-c", "echo from second; sleep 3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: busybox
    command: ["sh", "-c", "echo run at $(date +%s%N); sleep 1; exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {name: ghost}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: ghost, image: "no/such-image:1"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: once, image: busybox, command: ["sh", "-c", "echo job done"]}
"""


@pytest.fixture(scope="module")
def pods(cluster, ns):
    cluster.netsim("apply", "-n", ns, "-f", "-", input=OBJECTS)
    v1 = cluster.client

    def running(name):
        p = v1.get_or_none("pods", name, ns)
        return p and p.get("status", {}).get("phase") == "Running" and all(
            "running" in (s.get("state") or {}) for s in p["status"].get("containerStatuses", []))
    for name in ("talk", "duo"):
        wait_for(lambda n=name: running(n), timeout=90, what=f"pod {name} running")
    return ns


def k(cluster, ns, *args, check=True, input=None, timeout=60):
    if input is None:
        return kubectl(cluster, "-n", ns, *args, check=check)
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    return subprocess.run([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", ns, *args],
                          input=input, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HOME": home})


# ---- exec -------------------------------------------------------------------------------------
def test_exec_output_and_exit_code(cluster, pods):
    p = k(cluster, pods, "exec", "talk", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
          check=False)
    assert p.returncode == 3
    assert p.stdout == "out\n"
    assert p.stderr == "err\ncommand terminated with exit code 3\n"
    assert k(cluster, pods, "exec", "talk", "--", "hostname").stdout == "talk\n"
    # the container's umask, not the control plane's 077
    assert k(cluster, pods, "exec", "talk", "--", "sh", "-c", "umask").stdout == "0022\n"


def test_exec_with_stdin(cluster, pods):
    data = "".join(f"line {i}\n" for i in range(2000))
    p = k(cluster, pods, "exec", "-i", "talk", "--", "sh", "-c", "cat; echo eof", input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data + "eof\n"


def test_exec_joins_the_containers_cgroup(cluster, pods):
    mount, cg = cgroups.cgroup2_mount(), _container_cgroup(cluster, pods, "talk", "talk")
    if mount is None or not cg:
        pytest.skip("no cgroup v2 here")
    own = k(cluster, pods, "exec", "talk", "--", "cat", "/proc/self/cgroup").stdout
    assert f"0::{cg[len(mount):]}" in own.splitlines(), own  # (v1 hierarchies may be beside)


def test_exec_in_the_named_container_and_kubectls_errors(cluster, pods):
    assert k(cluster, pods, "exec", "duo", "-c", "second", "--", "echo", "hi").stdout == "hi\n"
    p = k(cluster, pods, "exec", "duo", "--", "true", check=False)
    assert p.returncode == 0
    assert p.stderr == 'Defaulted container "first" out of: first, second\n'
    p = k(cluster, pods, "exec", "duo", "-c", "nope", "--", "true", check=False)
    assert p.returncode == 1
    assert p.stderr == "error: container nope is not valid for pod duo out of: first, second\n"
    n = cluster.netsim("exec", "-n", pods, "duo", "-c", "nope", "--", "true", check=False)
    assert (n.returncode, n.stderr) == (1, p.stderr)


def test_exec_into_a_completed_pod(cluster, pods):
    v1 = cluster.client
    done = wait_for(lambda: [p for p in v1.list("pods", pods, "job-name=once")
                             if p["status"].get("phase") == "Succeeded"], timeout=60,
                    what="job pod Succeeded")
    p = k(cluster, pods, "exec", done[0]["metadata"]["name"], "--", "true", check=False)
    assert p.returncode == 1
    assert p.stderr == ("error: cannot exec into a container in a completed pod; current "
                        "phase is Succeeded\n")


def test_kubectl_cp_both_ways(cluster, pods, tmp_path):
    """kubectl cp is tar over exec: stdin one way, stdout the other."""
    src = tmp_path / "in.txt"
    src.write_text("copied through exec\n" * 1000)
    inside = f"/tmp/netsim-e2e-cp-{os.getpid()}.txt"  # pods share the host's filesystem
    try:
        k(cluster, pods, "cp", str(src), f"talk:{inside}")
        assert open(inside).read() == src.read_text()
        k(cluster, pods, "cp", f"talk:{inside}", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == src.read_text()
    finally:
        if os.path.exists(inside):
            os.unlink(inside)


def test_a_container_that_never_started(cluster, pods):
    v1 = cluster.client
    wait_for(lambda: ((v1.get("pods", "ghost", pods)["status"].get("containerStatuses") or [{}])[0]
                      .get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff"),
             timeout=60, what="ghost in ImagePullBackOff")
    p = k(cluster, pods, "logs", "ghost", check=False)
    assert (p.returncode, p.stderr) == (1, 'Error from server (BadRequest): container "ghost" in '
                                           'pod "ghost" is waiting to start: trying and failing '
                                           "to pull image\n")
    assert cluster.netsim("logs", "-n", pods, "ghost", check=False).stderr == p.stderr
    p = k(cluster, pods, "exec", "ghost", "--", "true", check=False)
    assert (p.returncode, p.stderr) == (1, "error: Internal error occurred: unable to upgrade "
                                           'connection: container not found ("ghost")\n')
    assert cluster.netsim("exec", "-n", pods, "ghost", "--", "true", check=False).stderr == \
        p.stderr


def _read_until(fd: int, want: bytes, timeout: float = 20) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while want not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_exec_with_a_terminal_and_its_size(cluster, pods):
    """kubectl exec -it from a terminal of 33 rows x 111 columns: the command sees a tty of
    that size; then the terminal grows and the command sees the new size (SIGWINCH)."""
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    proc = subprocess.Popen(
        [KUBECTL, "--context", f"netsim-{cluster.name}", "-n", pods, "exec", "-it", "talk",
         "--", "sh"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**os.environ, "HOME": home, "TERM": "xterm"},
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        os.write(master, b"tty; stty size; echo mark-$((40+2))\r")
        out = _read_until(master, b"mark-42")
        assert b"/dev/pts/" in out and b"33 111" in out, out
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        deadline = time.monotonic() + 10
        seen = b""
        while b"50 132" not in seen and time.monotonic() < deadline:
            os.write(master, b"stty size\r")
            seen += _read_until(master, b"50 132", timeout=1)
        assert b"50 132" in seen, seen
        os.write(master, b"exit 5\r")
        assert proc.wait(20) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


def _processes_in(cgroup: str) -> set[int]:
    return set(cgroups.pids(cgroup))


def _container_cgroup(cluster, ns: str, pod: str, container: str) -> str:
    from netsim.kubelet.streams import NodeStreams
    p = cluster.client.get("pods", pod, ns)
    return NodeStreams(cluster.name).record(p).containers[container].cgroup


def test_exec_ends_when_kubectl_goes_away(cluster, pods):
    cg = _container_cgroup(cluster, pods, "talk", "talk")
    if not cg:
        pytest.skip("no cgroup v2 here")
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    before = _processes_in(cg)
    proc = subprocess.Popen([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", pods, "exec",
                             "talk", "--", "sleep", "4242"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HOME": home})

    def sleeper():
        for pid in _processes_in(cg) - before:
            try:
                if open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\x004242\x00":
                    return pid
            except OSError:
                pass
        return None
    pid = wait_for(sleeper, timeout=20, what="the exec'd sleep in the container's cgroup")
    proc.kill()  # kubectl dies: no close frame, the connection just drops
    proc.wait()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=15,
             what="the exec'd process ends with its client")


# ---- logs -------------------------------------------------------------------------------------
def test_logs_tail_and_follow(cluster, pods):
    out = k(cluster, pods, "logs", "talk", "--tail=2").stdout
    assert len(out.splitlines()) == 2 and all(ln.startswith("line ") for ln in out.splitlines())
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    proc = subprocess.Popen([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", pods, "logs",
                             "-f", "--tail=1", "talk"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HOME": home})
    try:
        first = proc.stdout.readline()
        later = [proc.stdout.readline() for _ in range(3)]  # lines written while following
        n0 = int(first.split()[1])
        assert [int(x.split()[1]) for x in later] == [n0 + 1, n0 + 2, n0 + 3]
    finally:
        proc.kill()
        proc.wait()


def test_logs_of_a_deployment_or_job_and_with_timestamps(cluster, pods):
    wait_for(lambda: cluster.client.list("pods", pods, "job-name=once"), what="job pod")
    wait_for(lambda: k(cluster, pods, "logs", "job/once", check=False).stdout == "job done\n",
             timeout=60, what="kubectl logs job/once")
    out = k(cluster, pods, "logs", "talk", "--tail=1", "--timestamps").stdout
    stamp, _, rest = out.partition(" ")
    assert stamp.endswith("Z") and len(stamp) == len("2026-01-01T00:00:00.000000000Z")
    assert rest.startswith("line ")


def test_logs_of_several_containers_and_errors(cluster, pods):
    p = k(cluster, pods, "logs", "duo", check=False)
    assert p.stdout == "from first\n"
    assert p.stderr == 'Defaulted container "first" out of: first, second\n'
    assert k(cluster, pods, "logs", "duo", "-c", "second").stdout == "from second\n"
    p = k(cluster, pods, "logs", "duo", "-c", "nope", check=False)
    assert (p.returncode, p.stderr) == (
        1, "error: container nope is not valid for pod duo out of: first, second\n")
    assert cluster.netsim("logs", "-n", pods, "duo", "-c", "nope", check=False).stderr == \
        p.stderr
    p = k(cluster, pods, "logs", "talk", "--previous", check=False)
    assert p.returncode == 1
    assert p.stderr == ('Error from server (BadRequest): previous terminated container "talk" '
                        'in pod "talk" not found\n')


def test_logs_previous_after_a_restart(cluster, pods):
    v1 = cluster.client
    wait_for(lambda: (v1.get("pods", "crash", pods)["status"].get("containerStatuses") or
                      [{}])[0].get("restartCount", 0) >= 1, timeout=90, what="crash restarted")
    def same_previous():
        # the container keeps restarting: compare while no restart came in between
        before = k(cluster, pods, "logs", "crash", "--previous").stdout
        mine = cluster.netsim("logs", "-n", pods, "crash", "--previous").stdout
        after = k(cluster, pods, "logs", "crash", "--previous").stdout
        return (before, mine) if before == after else None
    prev, mine = wait_for(same_previous, 90, what="no restart between the two reads")
    assert prev.startswith("run at ") and len(prev.splitlines()) == 1
    assert mine == prev


def test_netsim_and_kubectl_print_the_same(cluster, pods):
    assert cluster.netsim("logs", "-n", pods, "duo", "-c", "second").stdout == \
        k(cluster, pods, "logs", "duo", "-c", "second").stdout
    args = ("exec", "-n", pods, "talk", "--", "sh", "-c", "echo out; exit 4")
    n, kc = cluster.netsim(*args, check=False), kubectl(cluster, *args, check=False)
    assert (n.returncode, n.stdout, n.stderr) == (kc.returncode, kc.stdout, kc.stderr) == (
        4, "out\n", "command terminated with exit code 4\n")


def test_attach_shows_the_containers_output_from_now_on(cluster, pods):
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    last = int(k(cluster, pods, "logs", "talk", "--tail=1").stdout.split()[1])
    proc = subprocess.Popen([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", pods,
                             "attach", "talk"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "HOME": home})
    try:
        nums = [int(proc.stdout.readline().split()[1]) for _ in range(2)]
        assert nums[0] > last and nums[1] == nums[0] + 1
    finally:
        proc.kill()
        proc.wait()


# ---- the Python client ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pyapi(cluster):
    kubernetes = pytest.importorskip("kubernetes")
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=os.environ["KUBECONFIG"],
                                       context=f"netsim-{cluster.name}",
                                       client_configuration=cfg)
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))


def test_python_client_exec(pyapi, pods):
    """The client offers v5 then v4: the server's preference, v5, with stdin's close."""
    from kubernetes.stream import stream
    out = stream(pyapi.connect_get_namespaced_pod_exec, "talk", pods,
                 command=["sh", "-c", "echo hello from $(hostname)"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "hello from talk\n"
    resp = stream(pyapi.connect_get_namespaced_pod_exec, "talk", pods,
                  command=["sh", "-c", "cat; exit 6"], stderr=True, stdin=True, stdout=True,
                  tty=False, _preload_content=False)
    assert resp.subprotocol == "v5.channel.k8s.io"
    resp.write_stdin("abc\n")
    resp.close_channel(0)
    resp.run_forever(timeout=20)
    assert resp.read_stdout() == "abc\n"
    assert resp.returncode == 6
    resp.close()


def test_python_client_exec_v4(pyapi, pods, monkeypatch):
    """A client that offers only v4.channel.k8s.io (older kubernetes releases)."""
    from kubernetes.stream import stream, ws_client
    monkeypatch.setattr(ws_client, "V5_CHANNEL_PROTOCOL", ws_client.V4_CHANNEL_PROTOCOL)
    resp = stream(pyapi.connect_get_namespaced_pod_exec, "talk", pods,
                  command=["sh", "-c", "read x; echo got $x; echo oops >&2; exit 7"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    assert resp.subprotocol == "v4.channel.k8s.io"
    resp.write_stdin("abc\n")
    resp.run_forever(timeout=20)
    assert (resp.read_stdout(), resp.read_stderr()) == ("got abc\n", "oops\n")
    assert resp.returncode == 7
    resp.close()


def test_python_client_follows_logs(pyapi, pods):
    r = pyapi.read_namespaced_pod_log("talk", pods, follow=True, tail_lines=1,
                                      _preload_content=False)
    got = b""
    for chunk in r.stream(64):
        got += chunk
        if got.count(b"\n") >= 3:
            break
    r.release_conn()
    nums = [int(x.split()[1]) for x in got.decode().splitlines()[:3]]
    assert nums == [nums[0], nums[0] + 1, nums[0] + 2]
