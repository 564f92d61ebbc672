"""pods/exec over WebSocket against a real API server (unix socket) and the real node side
(netsim.kubelet.streams) minus the namespaces: the command runs on this machine as the
container's. Channels as kubectl (v5) and the Python client (v4) read them: output,
stdin and its close, exit codes in the status, a terminal and its size, hang-ups."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

from netsim.api.client import LocalClient
from netsim.api.streams import backend
from netsim.kubelet.runtime import ContainerRecord, PodRecord, proc_starttime
from netsim.kubelet.streams import NodeStreams
from tests.conftest import wait_for
from tests.unit.streamhelpers import Api, WsClient

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"


class LocalStreams(NodeStreams):
    """The node side with this test process as every container's leader and no
    nsenter (no root needed): the command runs as it is."""

    def __init__(self, tmp: str) -> None:
        super().__init__("unit")
        self.tmp = tmp
        self.alive = True

    def pod_dir(self, pod: dict) -> str | None:
        return os.path.join(self.tmp, pod["metadata"]["name"])

    def record(self, pod: dict) -> PodRecord | None:
        if not self.alive:
            return None
        rec = PodRecord(uid="u", namespace="default", name=pod["metadata"]["name"])
        for c in pod["spec"]["containers"]:
            rec.containers[c["name"]] = ContainerRecord(
                name=c["name"], pid=os.getpid(), starttime=proc_starttime(os.getpid()))
        return rec

    def exec_argv(self, crec, command, *, new_session_tty=False):
        return ["setsid", "-c", *command] if new_session_tty else list(command)


@pytest.fixture
def api(tmp_path):
    a = Api()
    a.node = LocalStreams(str(tmp_path))
    backend.install(a.node)
    c = LocalClient(a.store)
    for name, containers, node in (("web", ["app"], "n1"), ("two", ["a", "b"], "n1"),
                                   ("pending", ["app"], None)):
        spec = {"containers": [{"name": n, "image": "echo"} for n in containers]}
        if node:
            spec["nodeName"] = node
        c.create({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    yield a
    backend.install(None)
    a.stop()


def _url(pod: str, command: list[str], **flags) -> str:
    q = [("command", w) for w in command] + [(k, "true") for k, v in flags.items()
                                              if v is True] + \
        [(k, v) for k, v in flags.items() if isinstance(v, str)]
    return f"/api/v1/namespaces/default/pods/{pod}/exec?" + urllib.parse.urlencode(q)


def _run(api, command, protos=(V5,), pod="web", **flags):
    flags.setdefault("stdout", True)
    flags.setdefault("stderr", True)
    c = WsClient(api.connect(), _url(pod, command, **flags), list(protos))
    return c


def _split(msgs: list[bytes]) -> tuple[dict[int, bytes], dict | None]:
    out: dict[int, bytes] = {}
    status = None
    for m in msgs:
        if m[0] == 3 and len(m) > 1:
            status = json.loads(m[1:])
        else:
            out[m[0]] = out.get(m[0], b"") + m[1:]
    return out, status


def test_output_channels_and_success(api):
    c = _run(api, ["sh", "-c", "echo out; echo err >&2"])
    assert c.protocol == V5
    msgs = c.messages()
    assert msgs[0] == b"\x01"  # the stream is up: an empty stdout message first
    out, status = _split(msgs)
    assert out == {1: b"out\n", 2: b"err\n"}
    assert status == {"metadata": {}, "status": "Success"}
    assert c.closed_code == 1000


def test_exit_code_is_the_status_cause_kubectl_exits_with(api):
    _, status = _split(_run(api, ["sh", "-c", "exit 3"]).messages())
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    _, status = _split(_run(api, ["sh", "-c", "kill -9 $$"]).messages())
    assert status["details"]["causes"][0]["message"] == "137"


def test_stdin_and_its_close_in_v5(api):
    c = _run(api, ["cat"], stdin=True)
    c.send(b"\x00hello ")
    c.send(b"\x00world\n")
    c.send(b"\xff\x00")  # v5: stdin's end of file
    out, status = _split(c.messages())
    assert out[1] == b"hello world\n" and status["status"] == "Success"


def test_v4_for_the_python_client(api):
    c = _run(api, ["sh", "-c", "echo v4; exit 2"], protos=(V4,))
    assert c.protocol == V4
    out, status = _split(c.messages())
    assert out[1] == b"v4\n"
    assert status["details"]["causes"][0]["message"] == "2"


def test_tty_gets_its_size_from_resize_messages(api):
    c = _run(api, ["sh", "-c", "read x; stty size"], stdin=True, tty=True, stderr=False)
    c.send(b'\x04{"Width":100,"Height":40}')
    c.send(b"\x00go\r")
    out, status = _split(c.messages())
    assert b"40 100" in out[1]
    assert 2 not in out and status["status"] == "Success"


def test_tty_is_the_controlling_terminal(api):
    out, status = _split(_run(api, ["sh", "-c", "tty; test -t 0 && echo yes"], tty=True,
                              stdin=True, stderr=False).messages())
    assert b"/dev/pts/" in out[1] and b"yes" in out[1]


def test_client_hang_up_ends_the_process(api):
    c = _run(api, ["sh", "-c", "echo $$; exec sleep 600"])
    assert c.next_message() == b"\x01"
    pid = int(c.next_message()[1:])
    assert proc_starttime(pid) is not None
    c.sock.close()
    wait_for(lambda: proc_starttime(pid) is None, timeout=10, what="exec'd process gone")


def test_client_close_frame_ends_the_process(api):
    c = _run(api, ["sh", "-c", "echo $$; exec sleep 600"], protos=(V4,))
    c.next_message()
    pid = int(c.next_message()[1:])
    c.close()
    wait_for(lambda: proc_starttime(pid) is None, timeout=10, what="exec'd process gone")


def test_refusals_before_the_upgrade_in_the_apiservers_words(api):
    c = _run(api, ["ls"], container="nope")
    assert c.status == 400
    assert json.loads(c.reject_body)["message"] == "container nope is not valid for pod web"
    c = _run(api, ["ls"], pod="two")
    assert json.loads(c.reject_body)["message"] == \
        "a container name must be specified for pod two, choose one of: [a b]"
    c = _run(api, ["ls"], pod="pending")
    assert json.loads(c.reject_body)["message"] == "pod pending does not have a host assigned"
    c = _run(api, ["ls"], pod="ghost")
    assert c.status == 404 and json.loads(c.reject_body)["message"] == 'pods "ghost" not found'
    c = _run(api, ["ls"], stdout=False, stderr=False)
    assert json.loads(c.reject_body)["message"] == \
        "you must specify at least 1 of stdin, stdout, stderr"


def test_no_websocket_protocol_in_common_is_403(api):
    assert _run(api, ["ls"], protos=("channel.k8s.io",)).status == 403


def test_a_container_not_running_fails_in_the_status(api):
    api.node.alive = False
    c = _run(api, ["ls"])
    assert c.status == 101
    _, status = _split(c.messages())
    assert status["reason"] == "InternalError" and status["message"] == \
        'Internal error occurred: unable to upgrade connection: container not found ("app")'


def test_several_containers_with_one_named(api):
    out, status = _split(_run(api, ["echo", "b"], pod="two", container="b").messages())
    assert out[1] == b"b\n" and status["status"] == "Success"
