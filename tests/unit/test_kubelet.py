"""The kubelet on netsim.machinery, against a real Store (no root, no containers started):
which pods it syncs and when, the pod it reads (cache, or its own newer status write), its
env sources, and stop. sync() itself starts processes in namespaces: the netns tests run it.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

from netsim.api import errors
from netsim.kubelet import runtime
from netsim.kubelet.agent import Kubelet
from netsim.kubelet.env import ConfigError, container_env, service_links
from netsim.net import ledger
from netsim.net.topology import ClusterConfig, NodeSpec
from tests.conftest import wait_for

ME, OTHER = "node-a", "node-b"


@pytest.fixture
def kubelet(client, tmp_path, monkeypatch):
    monkeypatch.setattr(ledger, "STATE_ROOT", str(tmp_path))  # pod records, IPAM, ledger
    node = NodeSpec(name=ME, ip="192.168.1.2", pod_cidr="10.244.1.0/24")
    cfg = ClusterConfig(name="unit", nodes=[node])
    k = Kubelet(client, cfg, node)
    yield k
    k.stop()


def pod(name: str, node: str = "", ns: str = "default") -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "netsim/echo"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


class Syncs:
    """Stands in for Kubelet.sync: remembers the keys and whether the caches had synced."""

    def __init__(self, k: Kubelet):
        self.k, self.keys, self.unsynced = k, [], []
        self.lock = threading.Lock()

    def __call__(self, key: str):
        with self.lock:
            self.keys.append(key)
            if not all(i.has_synced() for i in self.k.informers.informers()):
                self.unsynced.append(key)
        return None

    def count(self, key: str) -> int:
        with self.lock:
            return self.keys.count(key)


def serve(k: Kubelet, monkeypatch) -> tuple[Syncs, threading.Thread]:
    syncs = Syncs(k)
    monkeypatch.setattr(k, "sync", syncs)
    t = threading.Thread(target=k.serve, daemon=True)
    t.start()
    return syncs, t


def test_syncs_this_nodes_pods_and_left_records_only_after_the_caches_synced(
        kubelet, client, monkeypatch):
    client.create(pod("mine", ME))
    client.create(pod("theirs", OTHER))
    client.create(pod("later"))  # not scheduled yet
    # a container the agent left running before a restart, whose pod was deleted meanwhile
    kubelet.records["u-gone"] = runtime.PodRecord(uid="u-gone", namespace="default", name="gone")
    syncs, t = serve(kubelet, monkeypatch)
    wait_for(lambda: syncs.count("default/mine") and syncs.count("default/gone"), 5,
             what="the node's pod and the left record synced")
    assert syncs.unsynced == []  # nothing was synced from a half-filled cache

    cur = client.get("pods", "later", "default")
    cur["spec"]["nodeName"] = ME  # bound to this node
    client.update(cur)
    wait_for(lambda: syncs.count("default/later"), 5, what="the bound pod synced")

    before = syncs.count("default/mine")
    client.delete("pods", "mine", "default", grace_period_seconds=0)
    wait_for(lambda: syncs.count("default/mine") > before, 5, what="the deleted pod synced")
    client.update_status({**client.get("pods", "theirs", "default"), "status": {"phase": "Running"}})
    assert "default/theirs" not in syncs.keys
    kubelet.stop()
    t.join(2)
    assert not t.is_alive()


def test_a_status_write_coming_back_syncs_nothing(kubelet, client, monkeypatch):
    """The kubelet owns a pod's status: an update that changed only the status (its own
    write, by watch) queues no sync, as upstream's podsDifferSemantically; a change of
    spec or metadata does, and a pod with readinessGates is synced for its conditions."""
    queued: list[str] = []
    queue = kubelet._pod_event
    monkeypatch.setattr(kubelet, "_pod_event",
                        lambda p: (queued.append(p["metadata"]["name"]), queue(p)))
    client.create(pod("mine", ME))
    gated = pod("gated", ME)
    gated["spec"]["readinessGates"] = [{"conditionType": "example.com/ready"}]
    client.create(gated)
    syncs, t = serve(kubelet, monkeypatch)

    def seen(out: dict) -> None:  # the handlers have run for this write
        assert kubelet.pods.wait_for_resource_version(int(out["metadata"]["resourceVersion"]), 5)
    try:
        wait_for(lambda: syncs.count("default/mine") and syncs.count("default/gated"), 5,
                 what="the first syncs")
        queued.clear()
        seen(client.update_status({**client.get("pods", "mine", "default"),
                                   "status": {"phase": "Running"}}))
        assert queued == []
        cur = client.get("pods", "mine", "default")
        cur["metadata"]["labels"] = {"app": "web"}
        seen(client.update(cur))
        assert queued == ["mine"]
        seen(client.update_status({**client.get("pods", "gated", "default"), "status": {
            "conditions": [{"type": "example.com/ready", "status": "True"}]}}))
        assert queued == ["mine", "gated"]
    finally:
        kubelet.stop()
        t.join(2)


def test_stop_while_the_api_is_away_returns_at_once_and_syncs_nothing(kubelet, monkeypatch):
    def refuse(*a, **kw):
        raise errors.ApiError("The connection to the netsim API server was refused", code=503)
    monkeypatch.setattr(kubelet.client, "list_rv", refuse)
    kubelet.records["u1"] = runtime.PodRecord(uid="u1", namespace="default", name="web")
    syncs, t = serve(kubelet, monkeypatch)
    wait_for(lambda: kubelet.pods.reflector.last_error, 5, what="the pod list refused")
    assert syncs.keys == []  # failing and backing off: nothing is synced meanwhile
    t0 = time.monotonic()
    kubelet.stop()
    t.join(2)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0
    assert syncs.keys == []  # the adopted container was never taken for an orphan


def _status(k: Kubelet, p: dict, ip: str) -> None:
    rec = runtime.PodRecord(uid=p["metadata"]["uid"], namespace="default", name="web",
                            netns="ns1", ip=ip)
    k._write_status(p, rec, [], "Always")


def test_status_written_again_before_the_cache_caught_up(kubelet, client, store):
    """The cache (fed by hand here, so it lags on purpose) still has the pod without
    status: the next sync reads the kubelet's own write, writes nothing that is already
    there, and a change is written at once (not refused as a conflict and lost)."""
    client.create(pod("web", ME))
    items, rv = client.list_rv("pods")
    kubelet.pods.replace(items, rv)
    key = "default/web"
    _status(kubelet, kubelet.pod(key), "10.244.1.5")
    written = client.get("pods", "web", "default")
    assert written["status"]["podIP"] == "10.244.1.5"
    assert kubelet.pod(key)["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    assert kubelet.pods.indexer.get(key).get("status", {}).get("podIP") is None  # untouched

    _status(kubelet, kubelet.pod(key), "10.244.1.5")  # nothing new: no write
    assert client.get("pods", "web", "default")["metadata"]["resourceVersion"] == \
        written["metadata"]["resourceVersion"]
    _status(kubelet, kubelet.pod(key), "10.244.1.6")  # a change, cache still behind
    assert client.get("pods", "web", "default")["status"]["podIP"] == "10.244.1.6"

    items, rv = client.list_rv("pods")  # the cache catches up: it is read again
    kubelet.pods.replace(items, rv)
    assert kubelet.pod(key) is kubelet.pods.indexer.get(key)
    assert kubelet._written == {}


def test_pod_of_another_uid_or_node_is_not_this_kubelets(kubelet, client):
    client.create(pod("web", ME))
    client.create(pod("db", OTHER))
    items, rv = client.list_rv("pods")
    kubelet.pods.replace(items, rv)
    _status(kubelet, kubelet.pod("default/web"), "10.244.1.5")
    assert kubelet.pod("default/db") is None
    client.delete("pods", "web", "default", grace_period_seconds=0)
    client.create(pod("web", ME))  # the same name, a new pod
    items, rv = client.list_rv("pods")
    kubelet.pods.replace(items, rv)
    got = kubelet.pod("default/web")
    assert got["metadata"]["uid"] == client.get("pods", "web", "default")["metadata"]["uid"]
    assert "status" not in got or not got["status"].get("podIP")


def test_env_sources_come_from_the_caches_and_the_api_only_when_not_cached(
        kubelet, client, monkeypatch):
    client.create({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cfg", "namespace": "default"}, "data": {"MODE": "fast"}})
    calls = []
    real_get = client.get

    def counting_get(resource, name, namespace=None):
        calls.append((resource, name))
        return real_get(resource, name, namespace)
    monkeypatch.setattr(client, "get", counting_get)
    c = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}],
         "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t"}}}]}
    p = pod("web", ME)
    with pytest.raises(ConfigError, match='secret "tok" not found'):
        container_env(kubelet._config_object, p, c)
    # neither was asked for by a GET: each is watched alone (metadata.name), ConfigMaps as
    # Secrets (the node holds no other object of the cluster)
    assert calls == [] and kubelet.secrets.watched() == {("default", "tok")}
    assert kubelet.configmaps.watched() == {("default", "cfg")}
    client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tok", "namespace": "default"},
                   "data": {"t": base64.b64encode(b"s3cret").decode()}})
    # made just now: the Secret's own watch brings it
    assert wait_for(lambda: container_env(kubelet._config_object, p, c) ==
                    {"MODE": "fast", "S": "s3cret"}, 5, what="the secret through its watch")
    assert calls == []
    kubelet.secrets.keep(set())
    assert kubelet.secrets.watched() == set()
    kubelet.configmaps.keep(set())
    assert kubelet.configmaps.watched() == set()


def _getter(objs: dict):
    return lambda kind, name, ns: objs.get((kind, ns, name))


def test_container_env_as_the_kubelet_builds_it():
    objs = {("configmaps", "default", "cfg"): {"data": {"A": "1", "B": "2"}},
            ("secrets", "default", "s"): {"data": {"pw": base64.b64encode(b"x").decode()}}}
    p = {"metadata": {"name": "web", "namespace": "default", "uid": "u1",
                      "labels": {"app": "web"}},
         "spec": {"nodeName": ME}, "status": {"podIP": "10.244.1.5"}}
    c = {"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"},
                     {"secretRef": {"name": "missing", "optional": True}}],
         "env": [{"name": "X", "value": "$(CM_A)-$$-$(NOPE)"},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    assert container_env(_getter(objs), p, c) == {
        "CM_A": "1", "CM_B": "2", "X": "1-$-$(NOPE)", "PW": "x", "NODE": ME, "APP": "web",
        "IP": "10.244.1.5"}
    bad = {"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "C"}}}]}
    with pytest.raises(ConfigError, match="couldn't find key C in ConfigMap default/cfg"):
        container_env(_getter(objs), p, bad)


def test_service_links_of_the_pods_namespace_only():
    svcs = [{"metadata": {"name": "web-api", "namespace": "default"},
             "spec": {"clusterIP": "10.96.0.10",
                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
            {"metadata": {"name": "db", "namespace": "other"},
             "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 5432}]}},
            {"metadata": {"name": "headless", "namespace": "default"},
             "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}]
    env = service_links(svcs, "default")
    assert env["WEB_API_SERVICE_HOST"] == "10.96.0.10"
    assert env["WEB_API_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_API_PORT_80_TCP"] == "tcp://10.96.0.10:80"
    assert not any(k.startswith(("DB_", "HEADLESS_")) for k in env)
