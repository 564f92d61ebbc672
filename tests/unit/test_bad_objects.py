"""One object a consumer cannot use must not stop it serving every other object (issue 9).

Objects are written straight into an in-memory store without admission, as an older
version or a direct write could have stored them. kube-proxy and the ingress controller
must leave the bad object out (one log line, one Warning event on it), render everything
else, and never put unvalidated text into iptables-restore / nft / nginx.conf input.
"""

from __future__ import annotations

import copy
import logging
import shutil
import subprocess
import threading

import pytest

from netsim.api import events
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.proxy import agent, iptables, nftables
from netsim.proxy.model import ProxySnapshot
from tests.conftest import is_root, wait_for

NODE, NODE_IP = "k8s-slave-172", "192.168.84.172"
INJECTION = "127.0.0.1 max_fails=0; } server { listen 81; location / { return 200 pwned; } } #"


def svc(name: str, *, ns: str = "default", cip: str = "10.96.0.10", port=80, port_name="http",
        node_port=None, **spec) -> dict:
    p = {"name": port_name, "port": port, "protocol": "TCP", "targetPort": 8080}
    if node_port is not None:
        p["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": cip,
                     "selector": {"app": name}, "ports": [p], **spec}}


def eps(service: str, addrs: list, *, ns: str = "default", port=8080, port_name="http",
        name: str | None = None) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": NODE}
                          for a in addrs]}


def good_objects() -> tuple[list[dict], list[dict]]:
    return ([svc("web", cip="10.96.0.10"), svc("api", cip="10.96.0.11", node_port=30080)],
            [eps("web", ["10.244.1.5", "10.244.2.5"]), eps("api", ["10.244.1.6"])])


# each: (what is wrong, a bad Service or None, a bad EndpointSlice or None)
BAD_SERVICES = {
    "port name with a newline": svc("bad", cip="10.96.0.20", port_name="http\n"),
    "port name with a quote": svc("bad", cip="10.96.0.20", port_name='a"b'),
    "port not an int": svc("bad", cip="10.96.0.20", port="abc"),
    "port out of range": svc("bad", cip="10.96.0.20", port=70000),
    "nodePort out of range": svc("bad", cip="10.96.0.20", node_port=70000),
    "healthCheckNodePort not an int": svc("bad", cip="10.96.0.20", node_port=30090,
                                          type="LoadBalancer", externalTrafficPolicy="Local",
                                          healthCheckNodePort="abc"),
    "clusterIP not an IP": svc("bad", cip="10.96.0.20 -j ACCEPT"),
    "externalIP with a newline": svc("bad", cip="10.96.0.20", externalIPs=["10.0.0.9\n"]),
    "protocol unknown": {**svc("bad", cip="10.96.0.20"), "spec": {
        "clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "tcp\n"}]}},
    "ports not a list": {**svc("bad", cip="10.96.0.20"), "spec": {
        "clusterIP": "10.96.0.20", "ports": {"name": "http"}}},
}
BAD_SLICES = {
    "port not an int": eps("bad", ["10.244.3.5"], port="abc"),
    "address is nginx text": eps("bad", [INJECTION]),
    "address with a newline": eps("bad", ["10.244.3.5\n"]),
    "port name with a newline": eps("bad", ["10.244.3.5"], port_name="http\n"),
    "endpoints not a list": {**eps("bad", []), "endpoints": "10.244.3.5"},
}


def snapshot(services, slices) -> ProxySnapshot:
    return ProxySnapshot.from_objects(services, slices, node_name=NODE, node_ips=[NODE_IP],
                                      cluster_cidr="10.244.0.0/16")


def assert_kernel_accepts(ipt_text: str, nft_text: str) -> None:
    """`iptables-restore --test` and `nft -c` in a throwaway netns (`unshare -n`: nothing
    outside this one process' new namespace is touched)."""
    if not is_root() or not shutil.which("unshare"):
        return
    restore = shutil.which("iptables-legacy-restore") or shutil.which("iptables-restore")
    if restore:
        p = subprocess.run(["unshare", "-n", restore, "--test"], input=ipt_text, text=True,
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
    if shutil.which("nft"):
        p = subprocess.run(["unshare", "-n", "nft", "-c", "-f", "-"], input=nft_text, text=True,
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr


# --------------------------------------------------------------------------- kube-proxy


@pytest.mark.parametrize("bad_svc,bad_slice", [
    *[pytest.param(s, eps("bad", ["10.244.3.5"]), id=f"service: {k}")
      for k, s in BAD_SERVICES.items()],
    *[pytest.param(svc("bad", cip="10.96.0.20"), s, id=f"slice: {k}")
      for k, s in BAD_SLICES.items()],
])
def test_kube_proxy_leaves_out_the_bad_object_and_renders_the_rest(bad_svc, bad_slice):
    services, slices = good_objects()
    snap = snapshot(services + [copy.deepcopy(bad_svc)], slices + [copy.deepcopy(bad_slice)])
    bad_svc_ok = bad_svc == svc("bad", cip="10.96.0.20")
    assert [r.key for r in snap.rejected] == ["default/bad-abcde" if bad_svc_ok else "default/bad"]
    assert "is invalid: " in snap.rejected[0].message and "\n" not in snap.rejected[0].message
    good = {sp.name_string: [e.endpoint for e in sp.endpoints] for sp in snap.service_ports}
    assert good["default/web:http"] == ["10.244.1.5:8080", "10.244.2.5:8080"]
    assert good["default/api:http"] == ["10.244.1.6:8080"]
    if bad_svc_ok:  # the Service is fine, its slice is not: no endpoints for it
        assert good["default/bad:http"] == []
    else:
        assert not any(k.startswith("default/bad") for k in good)

    ipt = iptables.render_full(snap, iptables.RenderOptions())
    nft = nftables.render(snap, nftables.NftOptions()).text
    for text in (ipt, nft):
        assert "10.96.0.10" in text and "10.96.0.11" in text and "30080" in text
        assert "max_fails" not in text and "10.244.3.5" not in text
        assert all(line.count('"') % 2 == 0 for line in text.splitlines())
    assert_kernel_accepts(ipt, nft)


def test_comment_text_cannot_break_out_of_its_quotes():
    """The second fence: even a name that got past validation is quoted safely."""
    from netsim.proxy.model import safe_comment
    assert safe_comment('ns/a"b\nc\\d', 255) == "ns/a?b?c?d"
    assert iptables._bare("default/web:http") == "default/web:http"
    assert iptables._bare("x y") == '"x y"'
    assert len(iptables._q("x" * 400)) == 257


class _Node:
    name, ip = NODE, NODE_IP


class _Cfg:
    pod_cidr = "10.244.0.0/16"
    proxy_mode = "iptables"


class FakeSyncer:
    """Stands in for the iptables backend: records what it was asked to program."""

    def __init__(self, fail_times: int = 0):
        self.snapshots: list[ProxySnapshot] = []
        self.fail_times = fail_times

    def sync(self, snap, changed):
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("boom")
        self.snapshots.append(snap)
        text = iptables.render_full(snap, iptables.RenderOptions())
        return agent.SyncResult(True, 0.0, 0.0, len(text))

    def lost_state(self):
        return False

    def reset(self):
        pass


@pytest.fixture
def client():
    store = Store(":memory:")  # no admission: what an older version may have stored
    store.bootstrap()
    yield LocalClient(store)
    store.close()


def _proxy(client, syncer) -> agent.KubeProxy:
    kp = agent.KubeProxy(client, _Cfg(), _Node(), check_netns=False, hold_node_ports=False)
    kp.syncer = syncer
    return kp


def _fill(kp: agent.KubeProxy, client) -> None:
    """What the informers' reflectors do with a (re)list (they are not started here)."""
    for res in agent.RESOURCES:
        kp.informers[res].replace(*client.list_rv(res))


def _warnings(client, resource, name) -> list[dict]:
    obj = client.get(resource, name, "default")
    return [e for e in events.for_object(client, obj) if e["type"] == "Warning"]


def test_kube_proxy_reports_a_bad_object_once_with_a_warning_event(client, caplog):
    services, slices = good_objects()
    for o in services + slices + [svc("bad", cip="10.96.0.20", port_name="http\n"),
                                  svc("bad2", cip="10.96.0.21"),
                                  eps("bad2", ["10.244.3.5"], port="abc")]:
        client.create(o)
    kp = _proxy(client, FakeSyncer())
    _fill(kp, client)
    with caplog.at_level(logging.WARNING, "netsim.proxy"):
        for _ in range(3):  # a sync loop must not flood events or logs
            assert kp.sync_once()
    snap = kp.syncer.snapshots[-1]
    assert {sp.name for sp in snap.service_ports} == {"web", "api", "bad2"}
    (ev,) = _warnings(client, "services", "bad")
    assert ev["reason"] == "Rejected" and ev["count"] == 1
    assert ev["source"] == {"component": "kube-proxy", "host": NODE}
    assert 'spec.ports[0].name: Invalid value: "http\\n"' in ev["message"]
    (ev,) = _warnings(client, "endpointslices", "bad2-abcde")
    assert 'ports[0].port: Invalid value: "abc": must be between 1 and 65535' in ev["message"]
    assert _warnings(client, "services", "web") == []
    assert sum("left out of the rules" in r.getMessage() for r in caplog.records) == 2
    # fixed: forgotten; broken again later: reported again
    fixed = client.get("services", "bad", "default")
    fixed["spec"]["ports"][0]["name"] = "http"
    client.update(fixed)
    _fill(kp, client)
    assert kp.sync_once() and "bad" in {sp.name for sp in kp.syncer.snapshots[-1].service_ports}
    assert ("services", "default/bad") not in kp._reported


def _run_loop(kp: agent.KubeProxy) -> threading.Thread:
    t = threading.Thread(target=kp._loop, daemon=True)
    t.start()
    kp._wake.set()
    return t


def test_kube_proxy_thread_survives_an_endpoint_slice_port_of_abc(client, monkeypatch):
    """Before: int("abc") raised outside the sync's try and ended the thread for good."""
    monkeypatch.setattr(agent, "CANARY_INTERVAL", 0.05)
    services, slices = good_objects()
    for o in services + slices + [eps("web", ["10.244.3.5"], port="abc", name="web-bad")]:
        client.create(o)
    kp = _proxy(client, FakeSyncer())
    _fill(kp, client)
    t = _run_loop(kp)
    try:
        wait_for(lambda: kp.syncs >= 1, timeout=5, what="a sync")
        assert t.is_alive()
        eps_web = {e.endpoint for sp in kp.last_snapshot.service_ports if sp.name == "web"
                   for e in sp.endpoints}
        assert eps_web == {"10.244.1.5:8080", "10.244.2.5:8080"}
        # and it keeps serving changes
        client.create(svc("late", cip="10.96.0.30"))
        _fill(kp, client)
        kp._wake.set()
        wait_for(lambda: "late" in kp.last_snapshot.service_names() or
                 "default/late" in kp.last_snapshot.service_names(), timeout=5, what="late")
    finally:
        kp.stopped.set()
        kp._wake.set()
        t.join(5)


def test_kube_proxy_sync_loop_survives_exceptions_and_backs_off(client, monkeypatch):
    monkeypatch.setattr(agent, "RETRY_SECONDS", 0.02)
    monkeypatch.setattr(agent, "CANARY_INTERVAL", 10.0)
    services, slices = good_objects()
    for o in services + slices:
        client.create(o)
    calls = {"n": 0}
    real = ProxySnapshot.from_objects

    def flaky(*a, **kw):  # a bug anywhere in a sync, twice
        calls["n"] += 1
        if calls["n"] <= 2:
            raise KeyError("surprise")
        return real(*a, **kw)

    monkeypatch.setattr(agent.ProxySnapshot, "from_objects", flaky)
    kp = _proxy(client, FakeSyncer(fail_times=1))
    _fill(kp, client)
    t = _run_loop(kp)
    try:
        # the loop resets `failures` after sync_once counted the sync: wait for both
        wait_for(lambda: kp.syncs >= 1 and kp.failures == 0, timeout=5,
                 what="a sync after three failures")
        assert t.is_alive()
        assert {sp.name for sp in kp.last_snapshot.service_ports} == {"web", "api"}
    finally:
        kp.stopped.set()
        kp._wake.set()
        t.join(5)
    kp.failures = 1
    assert kp.retry_delay() == pytest.approx(0.02)
    kp.failures = 30
    assert kp.retry_delay() == agent.MAX_RETRY_SECONDS


# --------------------------------------------------------------------------- ingress


def _ingress(name: str, host: str, service: str, *, ns: str = "default", path: str = "/") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns,
                         "creationTimestamp": f"2026-11-25T10:00:0{len(name) % 10}Z"},
            "spec": {"rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": "Prefix",
                 "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}}


BAD_INGRESSES = {
    "host with a newline": _ingress("bad", "bad.example.com\n", "web"),
    "namespace with a newline": _ingress("bad", "bad.example.com", "web", ns="default\n"),
    "service name with a newline": _ingress("bad", "bad.example.com", "web\n"),
    "spec not an object": {**_ingress("bad", "x", "web"), "spec": ["rules"]},
    "host not a string": _ingress("bad", 42, "web"),  # type: ignore[arg-type]
}


def _render(ings, services, slices):
    from netsim.ingress.render import render_nginx_conf
    return render_nginx_conf(ings, services, slices, [], cert_dir="/tmp/netsim-t/certs",
                             pid_path="/tmp/netsim-t/nginx.pid", log_dir="/tmp/netsim-t/logs")


def _nginx_accepts(result) -> None:
    from netsim.ingress.render import validate
    if shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin"):
        ok, msg = validate(result.conf, result.files)
        assert ok, msg


@pytest.mark.parametrize("bad", list(BAD_INGRESSES.values()), ids=list(BAD_INGRESSES))
def test_ingress_render_skips_a_bad_ingress_and_serves_the_rest(bad):
    services, slices = good_objects()
    good = [_ingress("web", "web.example.com", "web"), _ingress("api", "api.example.com", "api")]
    r = _render(good + [copy.deepcopy(bad)], services, slices)
    assert "server_name web.example.com;" in r.conf and "server_name api.example.com;" in r.conf
    assert "server 10.244.1.5:8080;" in r.conf and "server 10.244.1.6:8080;" in r.conf
    assert "bad.example.com" not in r.conf and "return 200;" not in r.conf
    (key,) = r.errors
    assert key.endswith("/bad") and "\n" not in r.errors[key]
    _nginx_accepts(r)


def test_ingress_path_with_nginx_syntax_stays_inside_its_quotes():
    """A valid Prefix path may hold braces and semicolons: it is quoted, not interpreted."""
    services, slices = good_objects()
    r = _render([_ingress("web", "web.example.com", "web", path="/x { return 200; }")],
                services, slices)
    assert 'location "/x { return 200; }/" {' in r.conf and not r.errors
    _nginx_accepts(r)


@pytest.mark.parametrize("bad_slice", list(BAD_SLICES.values()), ids=list(BAD_SLICES))
def test_ingress_render_uses_only_endpoints_that_parse(bad_slice):
    """IngressNightmare class: an EndpointSlice address must never become nginx text."""
    services, slices = good_objects()
    services.append(svc("bad", cip="10.96.0.20"))
    bad_slice = copy.deepcopy(bad_slice)
    ings = [_ingress("web", "web.example.com", "web"), _ingress("bad", "bad.example.com", "bad")]
    r = _render(ings, services, slices + [bad_slice])
    assert "server 10.244.1.5:8080;" in r.conf and "server 10.244.2.5:8080;" in r.conf
    assert "max_fails" not in r.conf and "pwned" not in r.conf and "10.244.3.5" not in r.conf
    assert "server_name bad.example.com;" in r.conf  # served, with no endpoints: 503
    assert list(r.invalid) == [("endpointslices", "default/bad-abcde")]
    assert "is invalid: " in r.invalid[("endpointslices", "default/bad-abcde")]
    _nginx_accepts(r)


def test_ingress_render_leaves_out_a_bad_service():
    services, slices = good_objects()
    services.append(svc("bad", cip="10.96.0.20", port="abc"))
    slices.append(eps("bad", ["10.244.3.5"]))
    ings = [_ingress("web", "web.example.com", "web"), _ingress("bad", "bad.example.com", "bad")]
    r = _render(ings, services, slices)
    assert "server 10.244.1.5:8080;" in r.conf and "10.244.3.5" not in r.conf
    assert list(r.invalid) == [("services", "default/bad")]
    assert any("is invalid" in w for w in r.warnings["default/bad"])
    _nginx_accepts(r)


def test_ingress_controller_warns_on_the_bad_objects_once(client, tmp_path, monkeypatch):
    """The controller's sync: nginx.conf has the good Ingress; Warning events on the bad
    Ingress and the bad EndpointSlice, not repeated by the next sync."""
    from netsim.ingress import controller as ctl_mod
    if not shutil.which("nginx"):
        monkeypatch.setattr(ctl_mod, "validate", lambda conf, files, nginx=None: (True, "ok"))
    services, slices = good_objects()
    objs = services + slices + [
        _ingress("web", "web.example.com", "web"),
        _ingress("bad", "bad.example.com\n", "web"),
        svc("evil", cip="10.96.0.22"), eps("evil", [INJECTION]),
        _ingress("evil", "evil.example.com", "evil"),
    ]
    for o in objs:
        client.create(o)
    ctl = ctl_mod.IngressController(client, cluster="unit", state_dir=str(tmp_path),
                                    create_class=False, update_status=False)
    applied: list[str] = []
    monkeypatch.setattr(ctl, "apply", lambda result: applied.append(result.conf) or True)
    monkeypatch.setattr(ctl, "default_certificate", lambda: None)
    for res in ctl_mod.RESOURCES:  # what the informers' reflectors do with their list
        ctl.informers[res].replace(*client.list_rv(res))
    ctl.sync()
    ctl.sync()
    conf = applied[-1]
    assert "server_name web.example.com;" in conf and "server 10.244.1.5:8080;" in conf
    assert "pwned" not in conf and "max_fails" not in conf
    (ev,) = _warnings(client, "ingresses", "bad")
    assert ev["reason"] == "Rejected" and ev["count"] == 1 and "spec.rules[0].host" in ev["message"]
    (ev,) = _warnings(client, "endpointslices", "evil-abcde")
    assert ev["reason"] == "Rejected" and ev["count"] == 1
    assert "must be a valid IPv4 address" in ev["message"]
    assert _warnings(client, "ingresses", "web") == []


def test_ingress_controller_keeps_the_last_good_config_when_nginx_t_fails(client, tmp_path,
                                                                          monkeypatch):
    """nginx -t rejecting even the config without any Ingress: the sync fails, nothing is
    applied (the running nginx keeps its config), and the controller's Pod gets
    ingress-nginx's `Warning RELOAD` event once."""
    from netsim.ingress import controller as ctl_mod
    client.create({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "ingress-0", "namespace": "default"},
                   "spec": {"containers": [{"name": "c", "image": "x"}]}})
    monkeypatch.setattr(ctl_mod, "validate",
                        lambda conf, files, nginx=None: (False, "nginx: [emerg] broken"))
    ctl = ctl_mod.IngressController(client, cluster="unit", state_dir=str(tmp_path),
                                    pod_name="ingress-0", pod_namespace="default",
                                    create_class=False, update_status=False)
    applied: list[str] = []
    monkeypatch.setattr(ctl, "apply", lambda result: applied.append(result.conf) or True)
    monkeypatch.setattr(ctl, "default_certificate", lambda: None)
    for _ in range(2):
        with pytest.raises(RuntimeError) as exc:
            ctl.sync()
        ctl._report_sync_failure(exc.value)
    assert applied == []
    (ev,) = _warnings(client, "pods", "ingress-0")
    assert ev["reason"] == "RELOAD" and ev["message"].startswith("Error reloading NGINX: ")
    assert ev["count"] == 1



# --------------------------------------------------------------------------- controllers


def _pod(name: str, ip: str, **overrides) -> dict:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
           "spec": {"nodeName": NODE, "containers": [
               {"name": "c", "image": "netsim/echo",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
           "status": {"phase": "Running", "podIP": ip,
                      "conditions": [{"type": "Ready", "status": "True"}]}}
    for path, value in overrides.items():
        *parents, last = path.split(".")
        target = pod
        for p in parents:
            target = target[p]
        target[last] = value
    return pod


BAD_PODS = {
    "status not an object": _pod("bad", "10.244.1.9", status="Running"),
    "conditions not a list": _pod("bad", "10.244.1.9", **{"status.conditions": "Ready"}),
    "containers not a list": _pod("bad", "10.244.1.9", **{"spec.containers": "echo"}),
    "podIP is nginx text": _pod("bad", INJECTION),
}


@pytest.mark.parametrize("bad", list(BAD_PODS.values()), ids=list(BAD_PODS))
def test_endpoints_controller_leaves_out_a_bad_pod_and_serves_the_others(client, bad):
    """Before: one such pod made reconcile raise for its Service on every retry, so the
    Service's endpoints never followed its other pods."""
    from netsim.controllers.endpoints import EndpointsController
    client.create({**svc("web"), "spec": {**svc("web")["spec"], "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}})
    client.create(_pod("good", "10.244.1.5"))
    client.create(copy.deepcopy(bad))
    ctl = EndpointsController(client)
    ctl.reconcile("default/web")
    ctl.reconcile("default/web")
    (sl,) = client.list("endpointslices")
    assert [e["addresses"] for e in sl["endpoints"]] == [["10.244.1.5"]]
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    (ep,) = [e for e in client.list("endpoints") if e["metadata"]["name"] == "web"]
    assert [a["ip"] for s in ep["subsets"] for a in s["addresses"]] == ["10.244.1.5"]
    (ev,) = _warnings(client, "pods", "bad")
    assert ev["reason"] == "Rejected" and ev["count"] == 1
    assert "left out of the endpoints of Service default/web" in ev["message"]
    # the slice it wrote is one kube-proxy accepts
    snap = snapshot(client.list("services"), client.list("endpointslices"))
    assert not snap.rejected


def test_a_replica_set_with_an_unreadable_selector_does_not_hide_pods_from_the_others(client):
    from netsim.controllers.replicaset import ReplicaSetController
    tmpl = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "netsim/echo"}]}}
    client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "bad", "namespace": "default"},
                   "spec": {"replicas": 1, "selector": "app=web", "template": tmpl}})
    client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "good", "namespace": "default"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                            "template": tmpl}})
    ctl = ReplicaSetController(client)
    assert ctl.keys_for("pods", _pod("orphan", "10.244.1.5")) == ["default/good"]
    odd = _pod("odd", "10.244.1.6")
    odd["metadata"]["ownerReferences"] = "good"
    assert ctl.keys_for("pods", odd) == ["default/good"]


UNSCHEDULABLE = {
    "affinity not an object": ("affinity", "n1"),
    "nodeSelector not a map": ("nodeSelector", ["disk=ssd"]),
    "hostPort not an int": ("containers", [{"name": "c", "image": "x",
                                            "ports": [{"containerPort": 80, "hostPort": "abc"}]}]),
    "containers not a list": ("containers", "x"),
}


@pytest.mark.parametrize("field,value", list(UNSCHEDULABLE.values()), ids=list(UNSCHEDULABLE))
def test_scheduler_places_the_other_pods_around_an_unreadable_one(client, field, value):
    """Before: the pass raised on the bad pod, so no pod of the cluster was placed."""
    from netsim.controllers.scheduler import Scheduler
    client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE},
                   "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                          "allocatable": {"cpu": "2", "memory": "2Gi",
                                                          "pods": "110"}}})
    def pod(name, **spec):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default",
                             "creationTimestamp": "2026-12-01T10:00:00Z"},
                "spec": {"containers": [{"name": "c", "image": "x"}], **spec}}
    client.create(pod("bad", **{field: value}))
    client.create(pod("good"))
    sched = Scheduler(client)
    sched.reconcile("pending")
    sched.reconcile("pending")
    assert client.get("pods", "good", "default")["spec"]["nodeName"] == NODE
    assert not client.get("pods", "bad", "default")["spec"].get("nodeName")
    (ev,) = _warnings(client, "pods", "bad")
    assert ev["reason"] == "FailedScheduling" and ev["count"] == 1


def test_garbage_collector_sweeps_around_unreadable_owner_references(client):
    """Before: the sweep raised on the odd pod each period, so nothing was collected."""
    from netsim.controllers.gc import GarbageCollector
    def pod(name, refs):
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "ownerReferences": refs},
                "spec": {"containers": [{"name": "c", "image": "x"}]}}
    client.create(pod("odd", "web-5d8f"))
    client.create(pod("orphan", [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "name": "gone", "uid": "u-gone", "controller": True}]))
    GarbageCollector(client).sweep()
    assert client.get_or_none("pods", "orphan", "default") is None
    assert client.get_or_none("pods", "odd", "default") is not None
