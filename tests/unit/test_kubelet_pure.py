"""The kubelet's pure parts, as a user sees them inside a pod and in `kubectl get pod -o yaml`:
the container's environment, /etc/resolv.conf, /etc/hosts and the pod's status.

Expected values follow upstream: kubelet_pods.go makeEnvironmentVariables and
envvars.FromServices, pkg/kubelet/network/dns/dns.go with containerd's resolv.conf writer
(search, nameserver, options), kubelet_pods.go managedHostsFileContent, getPhase and
status.GenerateContainersReadyCondition/GeneratePodReadyCondition. No root needed.
"""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from netsim.kubelet import sandbox
from netsim.kubelet import status as st
from netsim.kubelet.env import ConfigError, container_env, service_env

NOW, EARLIER = "2026-12-01T10:05:00Z", "2026-12-01T10:00:00Z"


def _pod(name="web", ns="uit", **spec) -> dict:
    return {"metadata": {"name": name, "namespace": ns, "uid": "u-1",
                         "labels": {"app": "web"}, "annotations": {"team": "blue"}},
            "spec": {"nodeName": "k8s-slave-172", "serviceAccountName": "builder", **spec},
            "status": {"podIP": "10.244.1.5", "hostIP": "192.168.3.172"}}


def _getter(objs: dict):
    return lambda kind, name, ns: objs.get((kind, ns, name))


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


# ---- environment --------------------------------------------------------------------------

OBJS = {("configmaps", "uit", "ublog"): {"data": {"MYSQL_HOST": "svc-mysql", "DEBUG": "0"}},
        ("secrets", "uit", "ublog"): {"data": {"MYSQL_PASSWD": _b64("123456"),
                                              "MYSQL_USER": _b64("root")}}}


def test_value_from_config_map_secret_and_fields():
    c = {"env": [
        {"name": "MYSQL_HOST", "valueFrom": {"configMapKeyRef": {"name": "ublog", "key": "MYSQL_HOST"}}},
        {"name": "MYSQL_PASSWD", "valueFrom": {"secretKeyRef": {"name": "ublog", "key": "MYSQL_PASSWD"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
    ]}
    assert container_env(_getter(OBJS), _pod(), c) == {
        "MYSQL_HOST": "svc-mysql", "MYSQL_PASSWD": "123456", "POD": "web", "NS": "uit",
        "UID": "u-1", "NODE": "k8s-slave-172", "SA": "builder", "HOST_IP": "192.168.3.172",
        "POD_IP": "10.244.1.5", "APP": "web", "TEAM": "blue"}


def test_env_from_with_prefix_and_env_overrides_it():
    c = {"envFrom": [{"configMapRef": {"name": "ublog"}},
                     {"secretRef": {"name": "ublog"}, "prefix": "S_"}],
         "env": [{"name": "DEBUG", "value": "1"}]}
    assert container_env(_getter(OBJS), _pod(), c) == {
        "MYSQL_HOST": "svc-mysql", "DEBUG": "1", "S_MYSQL_PASSWD": "123456", "S_MYSQL_USER": "root"}


@pytest.mark.parametrize("c,message", [
    ({"envFrom": [{"configMapRef": {"name": "nope"}}]}, 'configmap "nope" not found'),
    ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]},
     'secret "nope" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "ublog", "key": "K"}}}]},
     "couldn't find key K in ConfigMap uit/ublog"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "ublog", "key": "K"}}}]},
     "couldn't find key K in Secret uit/ublog"),
])
def test_missing_sources_are_create_container_config_errors_in_the_kubelets_words(c, message):
    with pytest.raises(ConfigError) as e:
        container_env(_getter(OBJS), _pod(), c)
    assert str(e.value) == message


def test_optional_sources_may_be_missing():
    c = {"envFrom": [{"configMapRef": {"name": "nope", "optional": True}}],
         "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k",
                                                               "optional": True}}},
                 {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "ublog", "key": "K",
                                                                  "optional": True}}}]}
    assert container_env(_getter(OBJS), _pod(), c) == {}


SERVICES = [
    {"metadata": {"name": "svc-mysql", "namespace": "uit"},
     "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 3306, "protocol": "TCP"}]}},
    {"metadata": {"name": "ublog", "namespace": "uit"},
     "spec": {"clusterIP": "10.96.0.21", "ports": [
         {"name": "http", "port": 80, "protocol": "TCP"},
         {"name": "dns-udp", "port": 53, "protocol": "UDP"}]}},
    {"metadata": {"name": "headless", "namespace": "uit"},
     "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
    {"metadata": {"name": "external", "namespace": "uit"},
     "spec": {"type": "ExternalName", "externalName": "example.com"}},
    {"metadata": {"name": "elsewhere", "namespace": "other"},
     "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 80}]}},
    {"metadata": {"name": "kubernetes", "namespace": "default"},
     "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443,
                                                   "protocol": "TCP"}]}},
]

KUBERNETES_VARS = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}


def test_service_env_as_the_kubelet_injects_it():
    env = service_env(SERVICES, "uit")
    assert env == {
        "SVC_MYSQL_SERVICE_HOST": "10.96.0.20", "SVC_MYSQL_SERVICE_PORT": "3306",
        "SVC_MYSQL_PORT": "tcp://10.96.0.20:3306",
        "SVC_MYSQL_PORT_3306_TCP": "tcp://10.96.0.20:3306",
        "SVC_MYSQL_PORT_3306_TCP_PROTO": "tcp", "SVC_MYSQL_PORT_3306_TCP_PORT": "3306",
        "SVC_MYSQL_PORT_3306_TCP_ADDR": "10.96.0.20",
        "UBLOG_SERVICE_HOST": "10.96.0.21", "UBLOG_SERVICE_PORT": "80",
        "UBLOG_SERVICE_PORT_HTTP": "80", "UBLOG_SERVICE_PORT_DNS_UDP": "53",
        "UBLOG_PORT": "tcp://10.96.0.21:80",
        "UBLOG_PORT_80_TCP": "tcp://10.96.0.21:80", "UBLOG_PORT_80_TCP_PROTO": "tcp",
        "UBLOG_PORT_80_TCP_PORT": "80", "UBLOG_PORT_80_TCP_ADDR": "10.96.0.21",
        "UBLOG_PORT_53_UDP": "udp://10.96.0.21:53", "UBLOG_PORT_53_UDP_PROTO": "udp",
        "UBLOG_PORT_53_UDP_PORT": "53", "UBLOG_PORT_53_UDP_ADDR": "10.96.0.21",
        **KUBERNETES_VARS}


def test_enable_service_links_false_keeps_only_the_kubernetes_service():
    assert service_env(SERVICES, "uit", enable_links=False) == KUBERNETES_VARS


def test_value_expands_declared_and_service_variables():
    c = {"envFrom": [{"configMapRef": {"name": "ublog"}}],
         "env": [{"name": "DSN", "value": "mysql://$(MYSQL_HOST):$(SVC_MYSQL_SERVICE_PORT)/db"},
                 {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST)"},
                 {"name": "LITERAL", "value": "$$(MYSQL_HOST) $(UNDEFINED) $5"},
                 {"name": "LATER", "value": "$(AFTER)"}, {"name": "AFTER", "value": "x"}]}
    env = container_env(_getter(OBJS), _pod(), c, service_env(SERVICES, "uit"))
    assert env["DSN"] == "mysql://svc-mysql:3306/db"
    assert env["API"] == "https://10.96.0.1"
    assert env["LITERAL"] == "$(MYSQL_HOST) $(UNDEFINED) $5"
    assert env["LATER"] == "$(AFTER)"  # only variables declared before it
    assert "SVC_MYSQL_SERVICE_HOST" not in env  # service variables are added by the caller


# ---- resolv.conf --------------------------------------------------------------------------

@pytest.fixture
def host_resolv(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text("# the node's\nnameserver 192.168.3.1\nnameserver 8.8.8.8\n"
                 "search lan.example corp.example.\noptions edns0 timeout:2\n")
    return str(p)


def _resolv(pod, host_resolv):
    return sandbox.resolv_conf(pod, dns_ip="10.96.0.10", domain="cluster.local",
                               host_resolv=host_resolv)


def test_cluster_first(host_resolv, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    assert _resolv(_pod(), str(empty)) == (
        "search uit.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    # the node's search domains follow the cluster's; its servers and options do not
    assert _resolv(_pod(dnsPolicy="ClusterFirst"), host_resolv) == (
        "search uit.svc.cluster.local svc.cluster.local cluster.local lan.example corp.example\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")


def test_default_is_the_nodes_resolv_conf(host_resolv):
    assert _resolv(_pod(dnsPolicy="Default"), host_resolv) == (
        "search lan.example corp.example\nnameserver 192.168.3.1\nnameserver 8.8.8.8\n"
        "options edns0 timeout:2\n")


def test_host_network(host_resolv):
    # ClusterFirst on the host network falls back to Default ...
    assert _resolv(_pod(hostNetwork=True), host_resolv) == _resolv(
        _pod(dnsPolicy="Default"), host_resolv)
    # ... ClusterFirstWithHostNet keeps the cluster's DNS
    assert _resolv(_pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), host_resolv) == (
        "search uit.svc.cluster.local svc.cluster.local cluster.local lan.example corp.example\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")


def test_none_with_dns_config(host_resolv):
    cfg = {"nameservers": ["1.1.1.1", "1.0.0.1"], "searches": ["a.example", "b.example"],
           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert _resolv(_pod(dnsPolicy="None", dnsConfig=cfg), host_resolv) == (
        "search a.example b.example\nnameserver 1.1.1.1\nnameserver 1.0.0.1\n"
        "options ndots:2 edns0\n")


def test_dns_config_is_merged_into_cluster_first(host_resolv, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    cfg = {"nameservers": ["10.96.0.10", "1.1.1.1"], "searches": ["svc.cluster.local", "x.example"],
           "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}
    assert _resolv(_pod(dnsConfig=cfg), str(empty)) == (
        "search uit.svc.cluster.local svc.cluster.local cluster.local x.example\n"
        "nameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:1 single-request-reopen\n")


def test_at_most_three_nameservers(host_resolv):
    cfg = {"nameservers": ["1.1.1.1", "1.0.0.1", "9.9.9.9"]}
    out = _resolv(_pod(dnsConfig=cfg), host_resolv)
    assert [line for line in out.splitlines() if line.startswith("nameserver")] == [
        "nameserver 10.96.0.10", "nameserver 1.1.1.1", "nameserver 1.0.0.1"]


# ---- /etc/hosts ---------------------------------------------------------------------------

HEADER = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
          "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
          "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")


def test_hosts_file():
    assert sandbox.hosts_file(_pod(), "10.244.1.5") == HEADER + "10.244.1.5\tweb\n"
    assert sandbox.hosts_file(_pod(hostname="db-0", subdomain="db"), "10.244.1.6") == (
        HEADER + "10.244.1.6\tdb-0.db.uit.svc.cluster.local\tdb-0\n")


def test_hosts_file_host_aliases_under_one_heading():
    aliases = [{"ip": "192.168.3.171", "hostnames": ["registry", "registry.lan"]},
               {"ip": "192.168.3.1", "hostnames": ["gateway"]}]
    assert sandbox.hosts_file(_pod(hostAliases=aliases), "10.244.1.5") == (
        HEADER + "10.244.1.5\tweb\n\n# Entries added by HostAliases.\n"
        "192.168.3.171\tregistry\tregistry.lan\n192.168.3.1\tgateway\n")


def test_long_pod_names_are_cut_to_a_63_character_hostname():
    name = "a" * 62 + "-bcd"
    assert sandbox.pod_hostname(_pod(name=name)) == "a" * 62  # and no trailing '-'
    assert sandbox.hosts_file(_pod(name=name), "10.244.1.5").endswith(f"10.244.1.5\t{'a' * 62}\n")


# ---- pod status ---------------------------------------------------------------------------

def _rec(**kw):
    base = {"pid": 0, "restart_count": 0, "last_terminated": None, "started_at": EARLIER,
            "finished_at": None, "exit_code": None, "reason": "", "live": False}
    base.update(kw)
    live = base.pop("live")
    return SimpleNamespace(alive=lambda: live, **base)


def _status(rec, **kw):
    args = {"image_error": None, "config_error": None, "backoff": False, "ready": False,
            "started": None, "image_id": "netsim://busybox"}
    args.update(kw)
    return st.container_status({"name": "c", "image": "busybox"}, rec, **args)


def test_container_states():
    assert _status(None)["state"] == {"waiting": {"reason": "ContainerCreating"}}
    running = _status(_rec(pid=42, live=True), ready=True)
    assert running["state"] == {"running": {"startedAt": EARLIER}}
    assert (running["ready"], running["started"], running["containerID"]) == (True, True,
                                                                               "netsim://42")
    pull = _status(None, image_error=("ErrImagePull", "not found"))
    assert pull["state"] == {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
    cfg = _status(None, config_error='configmap "nope" not found')
    assert cfg["state"] == {"waiting": {"reason": "CreateContainerConfigError",
                                        "message": 'configmap "nope" not found'}}
    done = _status(_rec(pid=42, exit_code=0, reason="Completed", finished_at=NOW))
    assert done["state"]["terminated"]["reason"] == "Completed"
    assert done["state"]["terminated"]["exitCode"] == 0 and not done["ready"]


def test_crash_loop_back_off_and_restart_count():
    last = {"exitCode": 1, "reason": "Error", "startedAt": EARLIER, "finishedAt": NOW}
    s = _status(_rec(pid=42, exit_code=1, reason="Error", restart_count=3, last_terminated=last,
                     finished_at=NOW), backoff=True)
    assert s["restartCount"] == 3
    assert s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert s["lastState"]["terminated"]["exitCode"] == 1
    again = _status(_rec(pid=43, live=True, restart_count=4, last_terminated=last), ready=True)
    assert again["restartCount"] == 4 and again["lastState"] == {"terminated": last}


def _state(kind, **kw):
    if kind == "running":
        return {"state": {"running": {}}, "lastState": {}}
    if kind == "waiting":
        return {"state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
    if kind == "backoff":
        return {"state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": kw.get("code", 1)}}}
    return {"state": {"terminated": {"exitCode": kw.get("code", 0)}}, "lastState": {}}


@pytest.mark.parametrize("policy,states,phase", [
    ("Always", [], "Pending"),
    ("Always", ["waiting"], "Pending"),
    ("Always", ["running"], "Running"),
    # one container still waiting to start: the pod is Pending (upstream's getPhase)
    ("Always", ["running", "waiting"], "Pending"),
    ("Always", ["backoff"], "Running"),
    ("Always", [("terminated", 0)], "Running"),
    ("OnFailure", [("terminated", 0)], "Succeeded"),
    ("OnFailure", [("terminated", 1)], "Running"),
    ("Never", [("terminated", 0), ("terminated", 0)], "Succeeded"),
    ("Never", [("terminated", 0), ("terminated", 2)], "Failed"),
    ("Never", ["running", ("terminated", 1)], "Running"),
])
def test_pod_phase(policy, states, phase):
    statuses = [_state(s[0], code=s[1]) if isinstance(s, tuple) else _state(s) for s in states]
    assert st.pod_phase(policy, statuses) == phase


def test_condition_keeps_its_transition_time_while_unchanged():
    old = [{"type": "Ready", "status": "False", "lastTransitionTime": EARLIER}]
    assert st.condition("Ready", False, old, NOW)["lastTransitionTime"] == EARLIER
    flipped = st.condition("Ready", True, old, NOW)
    assert flipped == {"type": "Ready", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": NOW}


def _by_type(conds):
    return {c["type"]: c for c in conds}


def test_pod_conditions_in_the_kubelets_order_and_words():
    statuses = [{"name": "app", "ready": True}, {"name": "sidecar", "ready": False},
                {"name": "log", "ready": False}]
    conds = st.pod_conditions(statuses, "Running", sandbox_ready=True, old=[], now=NOW)
    assert [c["type"] for c in conds] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                          "ContainersReady", "PodScheduled"]
    c = _by_type(conds)
    for t in ("Ready", "ContainersReady"):
        assert (c[t]["status"], c[t]["reason"], c[t]["message"]) == (
            "False", "ContainersNotReady", "containers with unready status: [sidecar log]")
    assert c["PodScheduled"]["status"] == c["Initialized"]["status"] == "True"
    ready = _by_type(st.pod_conditions([{"name": "app", "ready": True}], "Running",
                                       sandbox_ready=True, old=conds, now=NOW))
    assert ready["Ready"]["status"] == "True" and "reason" not in ready["Ready"]


@pytest.mark.parametrize("phase,reason", [("Succeeded", "PodCompleted"), ("Failed", "PodFailed")])
def test_a_finished_pod_is_not_ready_with_the_phases_reason(phase, reason):
    c = _by_type(st.pod_conditions([{"name": "job", "ready": False}], phase,
                                   sandbox_ready=True, old=[], now=NOW))
    for t in ("Ready", "ContainersReady"):
        assert (c[t]["status"], c[t]["reason"], c[t].get("message")) == ("False", reason, None)
