"""fieldSelector on list and watch, as a user of kubectl or client-go notices it.

`kubectl get po --field-selector status.phase=Running`, describe's Events
(involvedObject.*), the kubelet's own pods (spec.nodeName=<node>), the apiserver's
refusals for unknown fields in its words, and watches that see an object start or stop
matching (ADDED / DELETED), for label selectors as for field selectors.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest

from netsim.api import errors
from netsim.api import fieldselectors as fsel
from netsim.api.client import HttpClient, LocalClient, _UnixConnection
from netsim.machinery import InformerFactory
from tests.unit import test_api_hardening as hardening

api = hardening.api  # (store, socket path, server): an API server on a temp socket


def _pod(name: str, node: str = "", phase: str = "Pending", ns: str = "default",
         labels: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "netsim/echo:v1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "web"}},
            "spec": spec, "status": {"phase": phase}}


def _get(path: str, url: str) -> tuple[int, dict]:
    c = _UnixConnection(path)
    try:
        c.request("GET", url)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def _q(**kw) -> str:
    return urllib.parse.urlencode(kw)


def _names(out: dict) -> list[str]:
    return [i["metadata"]["name"] for i in out["items"]]


# ---- parsing --------------------------------------------------------------------------
def test_operators_commas_and_escapes():
    reqs = fsel.requirements("status.phase!=Failed,spec.nodeName==n1,metadata.name=a\\,b",
                             "pods")
    assert [(r.key, r.op, r.value) for r in reqs] == [
        ("metadata.name", "=", "a,b"), ("spec.nodeName", "=", "n1"),
        ("status.phase", "!=", "Failed")]
    m = fsel.matcher(reqs)
    assert m({"metadata.name": "a,b", "spec.nodeName": "n1", "status.phase": "Running"})
    assert not m({"metadata.name": "a,b", "spec.nodeName": "n1", "status.phase": "Failed"})
    assert fsel.requirements("", "pods") == []
    assert [r.key for r in fsel.requirements("spec.host=n1", "pods")] == ["spec.nodeName"]


@pytest.mark.parametrize("plural,selector,message", [
    ("pods", "spec.foo=x", "field label not supported: spec.foo"),
    ("events", "involvedObject.foo=x", "field label not supported: involvedObject.foo"),
    ("nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("ingresses", "foo.bar=baz",
     '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("jobs", "status.failed=1", 'field label "status.failed" not supported for batchv1.Job'),
    ("pods", "status.phase", "invalid selector: 'status.phase'; can't understand "
                             "'status.phase'"),
])
def test_unknown_fields_refused_in_the_apiservers_words(plural, selector, message):
    with pytest.raises(errors.BadRequest) as e:
        fsel.requirements(selector, plural)
    assert str(e.value) == message


def test_selectable_fields_as_the_registry_renders_them():
    pod = _pod("p", node="n1", phase="Running")
    pod["status"]["podIPs"] = [{"ip": "10.244.1.5"}]
    f = fsel.extract("pods", pod)
    assert f["spec.nodeName"] == "n1" and f["status.phase"] == "Running"
    assert f["spec.hostNetwork"] == "false" and f["status.podIP"] == "10.244.1.5"
    assert fsel.extract("nodes", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"
    ev = {"metadata": {"name": "e", "namespace": "default"}, "reportingComponent": "kubelet",
          "involvedObject": {"kind": "Pod", "name": "p", "uid": "u1"}, "type": "Normal"}
    f = fsel.extract("events", ev)
    assert (f["involvedObject.kind"], f["involvedObject.uid"], f["source"]) == \
        ("Pod", "u1", "kubelet")
    assert fsel.extract("jobs", {"status": {"succeeded": 2}})["status.successful"] == "2"


# ---- list -----------------------------------------------------------------------------
def test_list_by_phase_node_and_name(client):
    for name, node, phase in (("a", "n1", "Running"), ("b", "n2", "Running"),
                              ("c", "n1", "Succeeded"), ("d", "", "Pending")):
        client.create(_pod(name, node, phase))
    names = lambda fs: [p["metadata"]["name"] for p in client.list("pods", None,  # noqa: E731
                                                                  field_selector=fs)]
    assert names("status.phase=Running") == ["a", "b"]
    assert names("spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed") == ["a"]
    assert names("spec.nodeName=") == ["d"]
    assert names("metadata.name=c") == ["c"]
    assert names("metadata.namespace=default,metadata.name!=a") == ["b", "c", "d"]
    assert names("metadata.namespace=kube-system") == []
    assert [p["metadata"]["name"] for p in client.list(
        "pods", None, "app=web", field_selector="spec.nodeName=n2")] == ["b"]


def test_http_list_with_field_selector_and_the_400(api):
    store, path, _ = api
    c = LocalClient(store)
    for name, node in (("a", "n1"), ("b", "n2")):
        c.create(_pod(name, node, "Running"))
    status, out = _get(path, "/api/v1/pods?" + _q(fieldSelector="spec.nodeName=n2"))
    assert status == 200 and _names(out) == ["b"]
    status, out = _get(path, "/api/v1/namespaces/default/pods?" + _q(
        fieldSelector="metadata.name=a", limit="500", resourceVersion="0"))
    assert status == 200 and _names(out) == ["a"]
    status, out = _get(path, "/api/v1/pods?" + _q(fieldSelector="status.hostIP=1.2.3.4"))
    assert status == 400 and out["reason"] == "BadRequest"
    assert out["message"] == "field label not supported: status.hostIP"
    assert HttpClient(path=path).list("pods", "default", field_selector="spec.nodeName=n1")[0][
        "metadata"]["name"] == "a"


def test_describe_events_selector(api):
    """kubectl describe po's request: the Events whose involvedObject is the pod."""
    store, path, _ = api
    c = LocalClient(store)
    pod = c.create(_pod("web", "n1"))
    other = c.create(_pod("db", "n1"))
    for i, (obj, reason) in enumerate(((pod, "Scheduled"), (other, "Scheduled"),
                                       (pod, "Pulled"))):
        md = obj["metadata"]
        c.create({"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": f"e{i}", "namespace": "default"},
                  "involvedObject": {"kind": "Pod", "namespace": "default", "name": md["name"],
                                     "uid": md["uid"]},
                  "reason": reason, "message": "m", "type": "Normal",
                  "source": {"component": "kubelet"}})
    sel = (f"involvedObject.uid={pod['metadata']['uid']},involvedObject.name=web,"
           "involvedObject.namespace=default")
    status, out = _get(path, "/api/v1/namespaces/default/events?" + _q(fieldSelector=sel,
                                                                       limit="500"))
    assert status == 200 and [e["reason"] for e in out["items"]] == ["Scheduled", "Pulled"]
    status, out = _get(path, "/api/v1/events?" + _q(
        fieldSelector="involvedObject.kind=Pod,involvedObject.name=db,source=kubelet"))
    assert [e["metadata"]["name"] for e in out["items"]] == ["e1"]


# ---- watch ----------------------------------------------------------------------------
def _watch_events(store, n: int, **kw) -> tuple[list, threading.Thread]:
    """The version is taken before the thread starts: the store replays every change after
    it from its log, so the caller may write at once (no wait for the watch to register)."""
    got: list = []
    since = store.resource_version

    def run():
        for etype, obj in store.watch("pods", resource_version=since,
                                      timeout=5, **kw):
            if etype != "BOOKMARK":
                got.append((etype, obj["metadata"]["name"], obj["status"].get("phase")))
            if len(got) >= n:
                return
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return got, t


def test_field_selector_watch_sees_objects_start_and_stop_matching(store, client):
    client.create(_pod("a", "n1", "Pending"))
    got, t = _watch_events(store, 4, field_selector="status.phase=Running")
    client.patch("pods", "a", "default", {"status": {"phase": "Running"}}, "status")
    client.patch("pods", "a", "default", {"metadata": {"labels": {"x": "1"}}})
    client.patch("pods", "a", "default", {"status": {"phase": "Succeeded"}}, "status")
    client.create(_pod("b", "n1", "Running"))
    t.join(5)
    # the DELETED carries the last state that matched (upstream's watch cache)
    assert got == [("ADDED", "a", "Running"), ("MODIFIED", "a", "Running"),
                   ("DELETED", "a", "Running"), ("ADDED", "b", "Running")]


def test_label_selector_watch_sees_relabelled_objects_come_and_go(store, client):
    client.create(_pod("a", "n1", labels={"app": "web"}))
    got, t = _watch_events(store, 3, label_selector="app=web")
    client.patch("pods", "a", "default", {"metadata": {"labels": {"app": "db"}}})
    client.patch("pods", "a", "default", {"metadata": {"labels": {"app": "web"}}})
    client.delete("pods", "a", "default", 0)
    t.join(5)
    assert [g[0] for g in got] == ["DELETED", "ADDED", "DELETED"]


def test_node_informer_holds_only_its_nodes_pods(store, client):
    """The kubelet's informer: spec.nodeName=<node>; a pod bound later is added."""
    client.create(_pod("mine", "n1"))
    client.create(_pod("theirs", "n2"))
    client.create(_pod("unbound"))
    factory = InformerFactory(client)
    inf = factory.informer("pods", field_selector="spec.nodeName=n1")
    assert factory.informer("pods") is not inf
    factory.start()
    try:
        assert inf.wait_for_sync(5)
        assert [p["metadata"]["name"] for p in inf.indexer.list()] == ["mine"]
        client.patch("pods", "unbound", "default", {"spec": {"nodeName": "n1"}})
        deadline = time.monotonic() + 5
        while len(inf.indexer.list()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(p["metadata"]["name"] for p in inf.indexer.list()) == ["mine", "unbound"]
    finally:
        factory.stop()
        factory.join(3)


def test_netsims_describe_asks_for_the_objects_events_as_kubectl_does(client):
    """netsim describe's Events: the same field selector kubectl describe sends, so an
    older object of the same name (another uid) or another kind's events stay out."""
    from netsim.api import events
    pod = client.create(_pod("web", "n1"))
    events.record(client, pod, "Normal", "Scheduled", "assigned", "default-scheduler")
    old = {**pod, "metadata": {**pod["metadata"], "uid": "old-uid"}}
    events.record(client, old, "Normal", "Killing", "old pod", "kubelet", "n1")
    svc = {"kind": "Service", "apiVersion": "v1",
           "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"}}
    events.record(client, svc, "Normal", "Created", "svc", "service-controller")
    assert [e["reason"] for e in events.for_object(client, pod)] == ["Scheduled"]
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "uid": "node-uid"}}
    events.record(client, node, "Normal", "Starting", "kubelet up", "kubelet", "n1")
    by_name = {**node, "metadata": {"name": "n1", "uid": "n1"}}
    events.record(client, by_name, "Normal", "NodeReady", "ready", "kubelet", "n1")
    assert sorted(e["reason"] for e in events.for_object(client, node)) == \
        ["NodeReady", "Starting"]


def test_get_w_with_a_field_selector_over_http(api):
    """`kubectl get po -w --field-selector status.phase=Running`: Table events, only the
    pods that match; one leaving the phase is a DELETED row."""
    store, path, _ = api
    c = LocalClient(store)
    c.create(_pod("a", "n1", "Pending"))
    rv = store.resource_version
    conn = _UnixConnection(path, timeout=10)
    got = []
    try:
        conn.request("GET", "/api/v1/namespaces/default/pods?" + _q(
            watch="true", resourceVersion=str(rv), fieldSelector="status.phase=Running",
            timeoutSeconds="5"), headers={"Accept": "application/json;as=Table;v=v1;"
                                                    "g=meta.k8s.io,application/json"})
        r = conn.getresponse()
        assert r.status == 200
        c.create(_pod("b", "n1", "Pending"))
        c.patch("pods", "a", "default", {"status": {"phase": "Running"}}, "status")
        c.patch("pods", "a", "default", {"status": {"phase": "Failed"}}, "status")
        while len(got) < 2:
            line = r.readline()
            if not line:
                break
            if line.strip():
                ev = json.loads(line)
                assert ev["object"]["kind"] == "Table"
                got.append((ev["type"], ev["object"]["rows"][0]["cells"][0],
                            ev["object"]["rows"][0]["cells"][2]))
    finally:
        conn.close()
    assert got == [("ADDED", "a", "Running"), ("DELETED", "a", "Running")]
