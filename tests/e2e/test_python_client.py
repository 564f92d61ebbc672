"""The Python `kubernetes` client against a running cluster, as a user's script would use it:
the kubeconfig context `cluster up` merged, list and watch, create, patch the scale, read a
Service's ClusterIP, stream exec output and follow logs."""

from __future__ import annotations

import ipaddress
import os

import pytest

from tests.conftest import namespace_fixture, wait_for

kubernetes = pytest.importorskip("kubernetes", reason="pip install -e .[test] brings it")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.stream import stream  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.e2e]

ns = namespace_fixture("pyclient")

LOG_POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker", "labels": {"app": "talker"}},
    "spec": {"containers": [{
        "name": "talk", "image": "busybox",
        "command": ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done; sleep 3600"]}],
        "terminationGracePeriodSeconds": 1},
}

ECHO = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "echo"}},
             "template": {"metadata": {"labels": {"app": "echo"}},
                          "spec": {"containers": [{"name": "echo", "image": "netsim/echo",
                                                   "ports": [{"containerPort": 8080}]}]}}},
}


@pytest.fixture(scope="module")
def api(cluster):
    cfg = client.Configuration()
    config.load_kube_config(config_file=os.environ["KUBECONFIG"],
                            context=f"netsim-{cluster.name}", client_configuration=cfg)
    return client.ApiClient(cfg)


def _running(v1, name: str, namespace: str) -> bool:
    return v1.read_namespaced_pod(name, namespace).status.phase == "Running"


def test_list_and_watch_pods(api, ns):
    v1 = client.CoreV1Api(api)
    v1.create_namespaced_pod(ns, LOG_POD)
    seen = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, ns, timeout_seconds=60):
        seen.append(ev["type"])
        if ev["object"].metadata.name == "talker" and ev["object"].status.phase == "Running":
            w.stop()
    assert seen[0] == "ADDED" and "MODIFIED" in seen
    names = [p.metadata.name for p in v1.list_namespaced_pod(ns).items]
    assert "talker" in names
    one = v1.list_namespaced_pod(ns, label_selector="app=talker").items
    assert [p.metadata.name for p in one] == ["talker"]


def test_follow_logs(api, ns):
    v1 = client.CoreV1Api(api)
    wait_for(lambda: _running(v1, "talker", ns), 60, what="talker running")
    resp = v1.read_namespaced_pod_log("talker", ns, follow=True, _preload_content=False)
    got = b""
    try:
        for chunk in resp.stream(64):
            got += chunk
            if b"line3\n" in got:
                break
    finally:
        resp.release_conn()
    assert got.startswith(b"line1\nline2\nline3\n"), got
    assert v1.read_namespaced_pod_log("talker", ns, tail_lines=1) == "line3\n"


def test_exec_streams_output_and_exit_code(api, ns):
    v1 = client.CoreV1Api(api)
    wait_for(lambda: _running(v1, "talker", ns), 60, what="talker running")
    out = stream(v1.connect_get_namespaced_pod_exec, "talker", ns,
                 command=["sh", "-c", "echo hello; echo oops >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert "hello" in out and "oops" in out
    resp = stream(v1.connect_get_namespaced_pod_exec, "talker", ns,
                  command=["sh", "-c", "echo bye; exit 3"], stderr=True, stdin=False,
                  stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    assert resp.read_stdout() == "bye\n" or "bye" in resp.read_all()
    assert resp.returncode == 3


def test_deployment_scale_and_service_cluster_ip(api, ns):
    apps, v1 = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(ns, ECHO)
    wait_for(lambda: apps.read_namespaced_deployment("echo", ns).status.available_replicas == 1,
             90, what="echo available")
    apps.patch_namespaced_deployment_scale("echo", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment_scale("echo", ns).spec.replicas == 3
    wait_for(lambda: apps.read_namespaced_deployment("echo", ns).status.available_replicas == 3,
             90, what="echo scaled to 3")
    svc = v1.create_namespaced_service(ns, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    ip = ipaddress.ip_address(svc.spec.cluster_ip)
    assert ip in ipaddress.ip_network("10.96.0.0/12")
    assert v1.read_namespaced_service("echo", ns).spec.cluster_ip == str(ip)
    eps = wait_for(lambda: [a.ip for s in (v1.read_namespaced_endpoints("echo", ns).subsets or [])
                            for a in (s.addresses or [])] or None, 30, what="echo endpoints")
    assert len(eps) == 3
