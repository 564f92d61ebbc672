"""`netsim run`: the Pod and Service kubectl's run builds, and its refusals in its words."""

from __future__ import annotations

import pytest

from netsim.cli.pflags import Parsed
from netsim.cli.run_cmd import RunError, build


def _p(**flags) -> Parsed:
    p = Parsed()
    for k, v in flags.items():
        p.flags[k.replace("_", "-")] = v if isinstance(v, list) else [v]
    return p


def test_pod_as_kubectl_run_makes_it():
    (pod,) = build("nginx", _p(image="nginx"), [])
    assert pod == {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "nginx", "labels": {"run": "nginx"}},
                   "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}],
                            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"},
                   "status": {}}


def test_args_command_env_labels_port_and_expose():
    pod, svc = build("web", _p(image="netsim/echo", port="8080", expose="true",
                               env=["A=1", "B="], labels="app=web,tier=f", restart="Never"),
                     ["--x", "y"])
    c = pod["spec"]["containers"][0]
    assert c["args"] == ["--x", "y"] and "command" not in c
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": ""}]
    assert c["ports"] == [{"containerPort": 8080}]
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "f"}
    assert pod["spec"]["restartPolicy"] == "Never"
    assert svc["metadata"] == {"name": "web", "labels": {"app": "web", "tier": "f"}}
    assert svc["spec"] == {"ports": [{"port": 8080, "protocol": "TCP", "targetPort": 8080}],
                           "selector": {"app": "web", "tier": "f"}}
    (pod,) = build("sh", _p(image="busybox", command="true", stdin="true", tty="true"),
                   ["sh", "-c", "echo hi"])
    c = pod["spec"]["containers"][0]
    assert c["command"] == ["sh", "-c", "echo hi"]
    assert (c["stdin"], c["stdinOnce"], c["tty"]) == (True, True, True)
    # --expose without user labels: the Service has none and selects run=NAME
    _, svc = build("a", _p(image="i", port="80", expose="true"), [])
    assert "labels" not in svc["metadata"] and svc["spec"]["selector"] == {"run": "a"}


@pytest.mark.parametrize("flags, msg", [
    ({}, "--image is required"),
    ({"image": "i", "tty": "true"}, "-i/--stdin is required for containers with -t/--tty=true"),
    ({"image": "i", "expose": "true"}, "--port must be set when exposing a service"),
    ({"image": "i", "port": "http"}, "--port must be a number"),
    ({"image": "i", "restart": "Sometimes"},
     "invalid restart policy: Sometimes, valid values are: Always, OnFailure, Never"),
    ({"image": "i", "env": ["NOVALUE"]}, "invalid env: NOVALUE"),
    ({"image": "i", "labels": "a"}, "unexpected label spec: a"),
])
def test_refusals(flags, msg):
    with pytest.raises(RunError) as e:
        build("x", _p(**flags), [])
    assert str(e.value) == msg
