"""pods/log against a real API server (unix socket) and the real node side's log-status
rules (netsim.kubelet.streams) over a kubelet record written here: which instance's file
is read, tail/limit/timestamps/since, follow until the container ends or the client
leaves, and the apiserver's and kubelet's error words."""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest

from netsim.api.client import LocalClient
from netsim.api.streams import backend, logs
from netsim.kubelet.runtime import ContainerRecord, PodRecord
from netsim.kubelet.streams import NodeStreams
from tests.conftest import wait_for
from tests.unit.streamhelpers import Api


class TmpStreams(NodeStreams):
    """Pod records under a temporary folder instead of the cluster's state."""

    def __init__(self, tmp: str) -> None:
        super().__init__("unit")
        self.tmp = tmp

    def pod_dir(self, pod):
        return os.path.join(self.tmp, pod["metadata"]["name"])


class Alive:
    """A container instance that runs until ended."""

    def __init__(self) -> None:
        self.on = True

    def __call__(self) -> bool:
        return self.on


@pytest.fixture
def api(tmp_path):
    a = Api()
    a.node = TmpStreams(str(tmp_path))
    backend.install(a.node)
    a.client = LocalClient(a.store)
    yield a
    backend.install(None)
    a.stop()


def _pod(api, name, containers=("app",), node="n1", statuses=None, init=()):
    spec = {"containers": [{"name": n, "image": "echo"} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": "echo"} for n in init]
    if node:
        spec["nodeName"] = node
    p = api.client.create({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    if statuses is not None:
        p["status"] = {"phase": "Running", "containerStatuses": statuses}
        p = api.client.update_status(p)
    return p


def _record(api, pod, name="app", pid=4242, restarts=0, logs_by_restart=None, last=None):
    d = api.node.pod_dir(pod)
    rec = PodRecord(uid=pod["metadata"]["uid"], namespace="default", name=pod["metadata"]["name"])
    for n, text in (logs_by_restart or {}).items():
        os.makedirs(os.path.join(d, name), exist_ok=True)
        with open(os.path.join(d, name, f"{n}.log"), "w") as f:
            f.write(text)
    rec.containers[name] = ContainerRecord(name=name, pid=pid, restart_count=restarts,
                                           log_path=os.path.join(d, name, f"{restarts}.log"),
                                           last_terminated=last or {})
    rec.save(d)


def _running(pid=4242, restarts=0, last=None):
    st = {"name": "app", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
          "containerID": f"netsim://{pid}", "restartCount": restarts, "lastState": {}}
    if last:
        st["lastState"] = {"terminated": last}
    return st


def _get(api, url: str) -> tuple[int, str, bytes]:
    s = api.connect()
    s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    ctype = re.search(rb"Content-Type: ([^\r]+)", head).group(1).decode()
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < n:
        body += s.recv(65536)
    s.close()
    return status, ctype, body


URL = "/api/v1/namespaces/default/pods/{}/log"


def test_log_as_text_with_tail_and_limit(api):
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "one\ntwo\nthree\n"})
    assert _get(api, URL.format("web")) == (200, "text/plain", b"one\ntwo\nthree\n")
    assert _get(api, URL.format("web") + "?container=app&tailLines=1")[2] == b"three\n"
    assert _get(api, URL.format("web") + "?tailLines=0")[2] == b""
    assert _get(api, URL.format("web") + "?limitBytes=5")[2] == b"one\nt"


def test_timestamps_prefix_every_line(api):
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "a\nb\n"})
    body = _get(api, URL.format("web") + "?timestamps=true")[2].decode()
    lines = body.splitlines()
    assert len(lines) == 2
    for ln, want in zip(lines, "ab", strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z " + want, ln), ln


def test_since_seconds_drops_output_older_than_the_window(api):
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "old\n"})
    path = os.path.join(api.node.pod_dir(p), "app", "0.log")
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert _get(api, URL.format("web") + "?sinceSeconds=60")[2] == b""
    assert _get(api, URL.format("web") + "?sinceSeconds=7200")[2] == b"old\n"


def test_previous_reads_the_instance_before(api):
    last = {"exitCode": 1, "reason": "Error", "containerID": "netsim://1111"}
    p = _pod(api, "web", statuses=[_running(pid=2222, restarts=1, last=last)])
    _record(api, p, pid=2222, restarts=1, logs_by_restart={0: "first run\n", 1: "second\n"},
            last=last)
    assert _get(api, URL.format("web"))[2] == b"second\n"
    assert _get(api, URL.format("web") + "?previous=true")[2] == b"first run\n"


def test_previous_in_crash_loop_back_off_is_the_instance_that_just_ended(api):
    """Waiting in back-off: the current record's instance is the last terminated one."""
    term = {"exitCode": 1, "reason": "Error", "containerID": "netsim://3333"}
    st = {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
          "lastState": {"terminated": term}, "restartCount": 1}
    p = _pod(api, "web", statuses=[st])
    _record(api, p, pid=3333, restarts=1, logs_by_restart={0: "run 0\n", 1: "run 1\n"})
    assert _get(api, URL.format("web") + "?previous=true")[2] == b"run 1\n"
    assert _get(api, URL.format("web"))[2] == b"run 1\n"


def _message(api, url):
    status, _, body = _get(api, url)
    return status, json.loads(body)["message"]


def test_errors_in_the_apiservers_and_kubelets_words(api):
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "x\n"})
    assert _message(api, URL.format("web") + "?previous=true") == (
        400, 'previous terminated container "app" in pod "web" not found')
    assert _message(api, URL.format("web") + "?container=nope") == (
        400, "container nope is not valid for pod web")
    _pod(api, "two", containers=("a", "b"), init=("setup",))
    assert _message(api, URL.format("two")) == (
        400, "a container name must be specified for pod two, choose one of: [setup a b]")
    _pod(api, "waiting", statuses=[{"name": "app", "state": {"waiting": {
        "reason": "ContainerCreating"}}}])
    assert _message(api, URL.format("waiting")) == (
        400, 'container "app" in pod "waiting" is waiting to start: ContainerCreating')
    _pod(api, "pulling", statuses=[{"name": "app", "state": {"waiting": {
        "reason": "ImagePullBackOff"}}}])
    assert _message(api, URL.format("pulling")) == (
        400, 'container "app" in pod "pulling" is waiting to start: trying and failing to '
             "pull image")
    assert _message(api, URL.format("ghost")) == (404, 'pods "ghost" not found')
    status, msg = _message(api, URL.format("web") + "?tailLines=-1")
    assert (status, msg) == (422, 'The PodLogOptions "web" is invalid: tailLines: Invalid '
                                  "value: -1: must be greater than or equal to 0")


def test_an_unscheduled_pod_has_an_empty_log(api):
    _pod(api, "pending", node=None)
    assert _get(api, URL.format("pending")) == (200, "text/plain", b"")


def _follower(path, content: bytes) -> tuple[Alive, list[bytes], threading.Thread]:
    """A log file with `content`, followed by read_log in a thread collecting the chunks."""
    path.write_bytes(content)
    alive = Alive()
    got: list[bytes] = []
    lf = backend.LogFile(str(path), alive)
    t = threading.Thread(target=lambda: got.extend(logs.read_log(
        lf, logs.LogOptions(follow=True))))
    t.start()
    return alive, got, t


def test_read_log_follows_until_the_container_ends(tmp_path):
    path = tmp_path / "0.log"
    alive, got, t = _follower(path, b"a\n")
    wait_for(lambda: got == [b"a\n"], what="history")
    with open(path, "ab") as f:
        f.write(b"b\n")
    wait_for(lambda: b"".join(got) == b"a\nb\n", what="new output")
    with open(path, "ab") as f:
        f.write(b"last\n")
    alive.on = False
    t.join(5)
    assert not t.is_alive() and b"".join(got) == b"a\nb\nlast\n"


def test_follow_goes_on_after_the_log_is_rotated(tmp_path):
    """copytruncate (netsim.kubelet.logrotate): a follower reads on from the new start."""
    from netsim.kubelet import logrotate
    path = tmp_path / "0.log"
    alive, got, t = _follower(path, b"x" * 100 + b"\n")
    wait_for(lambda: len(b"".join(got)) == 101, what="history")
    assert logrotate.rotate(str(path), max_size=50)
    with open(path, "ab") as f:
        f.write(b"after\n")
    wait_for(lambda: b"".join(got).endswith(b"\nafter\n"), what="output after the rotation")
    alive.on = False
    t.join(5)
    assert not t.is_alive()


def test_follow_is_chunked_and_ends_when_the_client_leaves(api):
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "hello\n"})
    alive = Alive()
    real = api.node.log_file
    api.node.log_file = lambda *a: backend.LogFile(real(*a).path, alive)
    s = api.connect()
    s.sendall(f"GET {URL.format('web')}?follow=true HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"hello" not in buf:
        buf += s.recv(65536)
    assert b"Transfer-Encoding: chunked" in buf and b"Content-Type: text/plain" in buf
    with open(os.path.join(api.node.pod_dir(p), "app", "0.log"), "a") as f:
        f.write("more\n")
    while b"more" not in buf:
        buf += s.recv(65536)
    before = threading.active_count()
    s.close()  # the client leaves: the server's follow ends though the container runs
    wait_for(lambda: threading.active_count() < before, timeout=5, what="follow thread ends")
    alive.on = False


def test_attach_streams_new_output_until_the_container_ends(api):
    from tests.unit.streamhelpers import WsClient
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: "before attach\n"})
    alive = Alive()
    real = api.node.log_file
    api.node.log_file = lambda *a: backend.LogFile(real(*a).path, alive)
    c = WsClient(api.connect(), URL.format("web").replace("/log", "/attach") +
                 "?container=app&stdout=true&stderr=true", ["v5.channel.k8s.io"])
    assert c.status == 101 and c.next_message() == b"\x01"
    with open(os.path.join(api.node.pod_dir(p), "app", "0.log"), "a") as f:
        f.write("after\n")
    assert c.next_message() == b"\x01after\n"
    c.send(b"\x00ignored")
    alive.on = False
    msgs = c.messages()
    assert json.loads(msgs[-1][1:]) == {"metadata": {}, "status": "Success"}


def test_attach_to_a_container_not_running(api):
    from tests.unit.streamhelpers import WsClient
    p = _pod(api, "web", statuses=[_running()])
    _record(api, p, logs_by_restart={0: ""})
    api.node.log_file = lambda *a: backend.LogFile("", lambda: False)
    c = WsClient(api.connect(), URL.format("web").replace("/log", "/attach") + "?stdout=true",
                 ["v5.channel.k8s.io"])
    st = json.loads(c.messages()[-1][1:])
    assert st["message"] == ('Internal error occurred: unable to upgrade connection: container '
                             'not found ("app")')
