"""More of Kubernetes' validation, in kubectl's words, and nothing stored (issue 9).

Malformed bodies are 400s on every write path (create, update, status, patch) through the
HTTP API and LocalClient alike; Nodes, tolerations, env, volumes, probes, resources, enums,
Jobs, CronJobs, Namespaces and Events are checked as the apiserver checks them; valid
manifests (the repo's examples, the Kubernetes docs' own) are still accepted.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import tempfile
import threading

import pytest
import yaml

from netsim.api import errors
from netsim.api import validation as v
from netsim.api.admission import Admission
from netsim.api.client import LocalClient
from netsim.api.kinds.core import DEFAULT_TOLERATIONS
from netsim.api.resources import BY_KIND
from netsim.api.server import serve
from netsim.api.store import Store
from tests.unit.apihelpers import container, pod, refused


@pytest.fixture
def api():
    """A real server on a temporary unix socket, its store with admission."""
    d = tempfile.mkdtemp(prefix="netsim-val-")
    store = Store(":memory:", admission=Admission())
    store.bootstrap()
    path = os.path.join(d, "api.sock")
    srv = serve(store, path)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield store, path
    srv.shutdown()
    srv.server_close()
    store.close()


def _http(path: str, method: str, url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    try:
        s.sendall(f"{method} {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    finally:
        s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


# ---- malformed bodies: 400 on every write path, never a 500 -----------------------------------
CM = {"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "b"}}
DECODE = 'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal '


@pytest.mark.parametrize("metadata, want", [
    ([], DECODE + "array into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    ("x", DECODE + "string into Go struct field ConfigMap.metadata of type v1.ObjectMeta"),
    ({"generateName": 5},
     DECODE + "number into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({"generateName": ["cfg-"]},
     DECODE + "array into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({"name": "cfg", "namespace": ["default"]},
     DECODE + "array into Go struct field ObjectMeta.metadata.namespace of type string"),
])
def test_malformed_metadata_is_a_400_through_local_client(client, metadata, want):
    assert refused(client, {**CM, "metadata": metadata}, code=400) == want


@pytest.mark.parametrize("body, want", [
    ({**CM, "metadata": {"generateName": 5}},
     DECODE + "number into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({**CM, "metadata": {"generateName": {"a": 1}}},
     DECODE + "object into Go struct field ObjectMeta.metadata.generateName of type string"),
    ({**CM, "metadata": {"name": "cfg", "labels": ["a"]}},
     DECODE + "array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
])
def test_malformed_bodies_are_400_through_the_http_api(api, body, want):
    store, path = api
    status, out = _http(path, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert (status, out["reason"], out["message"]) == (400, "BadRequest", want)
    assert store.list("configmaps")[0] == []


def test_update_status_and_patch_decode_first(api, client):
    store, path = api
    store.create(CM)
    cur = store.get("configmaps", "cfg", "default")
    bad = {**cur, "metadata": {**cur["metadata"], "finalizers": "x"}}
    want = DECODE + "string into Go struct field ObjectMeta.metadata.finalizers of type []string"
    status, out = _http(path, "PUT", "/api/v1/namespaces/default/configmaps/cfg", bad)
    assert (status, out["message"]) == (400, want)
    status, out = _http(path, "PATCH", "/api/v1/namespaces/default/configmaps/cfg",
                        {"metadata": {"finalizers": "x"}})
    assert (status, out["message"]) == (400, want)
    assert store.get("configmaps", "cfg", "default") == cur
    # status PUT decodes the whole body, as the apiserver does
    lc = LocalClient(store)
    p = lc.create(pod())
    with pytest.raises(errors.BadRequest) as ei:
        lc.update_status({**p, "status": "Running"})
    assert ei.value.message == ('Pod in version "v1" cannot be handled as a Pod: json: cannot '
                                "unmarshal string into Go struct field Pod.status of type "
                                "v1.PodStatus")
    with pytest.raises(errors.BadRequest):
        lc.patch("pods", "web", "default", {"metadata": {"generateName": 7}})
    assert lc.get("pods", "web", "default") == p


def test_bad_quantity_is_a_decode_error_for_pods_too(client):
    c = container(resources={"limits": {"cpu": "lots"}})
    assert refused(client, pod(containers=[c]), code=400) == (
        'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


# ---- pod specs: env, envFrom, volumes, probes, resources, enums, tolerations --------------------
ENV_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, "
           "'_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
           "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
           "'[-._a-zA-Z][-._a-zA-Z0-9]*')")
SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
             "'-' or '.', and must start and end with an alphanumeric character (e.g. "
             "'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
EFFECTS = 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
C0 = "spec.containers[0]"


def vol(name="data", **src):
    return {"name": name, **(src or {"emptyDir": {}})}


@pytest.mark.parametrize("spec, want", [
    # env names, values from refs, envFrom
    ({"containers": [container(env=[{"name": "1X", "value": "a"}])]},
     f'{C0}.env[0].name: Invalid value: "1X": {ENV_MSG}'),
    ({"containers": [container(env=[{"name": "A B"}])]},
     f'{C0}.env[0].name: Invalid value: "A B": {ENV_MSG}'),
    ({"containers": [container(env=[{"name": "..x"}])]},
     f"{C0}.env[0].name: Invalid value: \"..x\": must not start with '..'"),
    ({"containers": [container(env=[{"value": "a"}])]}, f"{C0}.env[0].name: Required value"),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {}}])]},
     f'{C0}.env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
     "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
    ({"containers": [container(env=[{"name": "A", "value": "x", "valueFrom": {
        "configMapKeyRef": {"name": "cfg", "key": "k"}}}])]},
     f'{C0}.env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "configMapKeyRef": {"name": "cfg", "key": "k"}, "secretKeyRef": {"name": "s", "key": "k"}}}])]},
     f'{C0}.env[0].valueFrom: Invalid value: "": may not have more than one field specified '
     "at a time"),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "configMapKeyRef": {"name": "cfg", "key": "bad/key"}}}])]},
     f'{C0}.env[0].valueFrom.configMapKeyRef.key: Invalid value: "bad/key": {v.CONFIG_KEY_MSG}'),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "secretKeyRef": {"name": "s"}}}])]},
     f"{C0}.env[0].valueFrom.secretKeyRef.key: Required value"),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "secretKeyRef": {"key": "k"}}}])]},
     f'{C0}.env[0].valueFrom.secretKeyRef.name: Invalid value: "": {SUBDOMAIN}'),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "spec.restartPolicy"}}}])]},
     f'{C0}.env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": '
     'supported values: "metadata.name", "metadata.namespace", "metadata.uid", '
     '"spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
     '"status.podIP", "status.podIPs"'),
    ({"containers": [container(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "bogus"}}}])]},
     f'{C0}.env[0].valueFrom.fieldRef.fieldPath: Invalid value: "bogus": error converting '
     "fieldPath: field label not supported: bogus"),
    ({"containers": [container(envFrom=[{"prefix": "1_", "configMapRef": {"name": "cfg"}}])]},
     f'{C0}.envFrom[0].prefix: Invalid value: "1_": {ENV_MSG}'),
    ({"containers": [container(envFrom=[{"prefix": "P_"}])]},
     f'{C0}.envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`'),
    # volumes and mounts
    ({"volumes": [vol("Data")]},
     'spec.volumes[0].name: Invalid value: "Data": ' + v.LABEL_MSG),
    ({"volumes": [vol(), vol()]}, 'spec.volumes[1].name: Duplicate value: "data"'),
    ({"volumes": [{"name": "data"}]}, "spec.volumes[0]: Required value: must specify a volume type"),
    ({"volumes": [vol(emptyDir={}, hostPath={"path": "/x"})]},
     "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"),
    ({"volumes": [vol(configMap={})]}, "spec.volumes[0].configMap.name: Required value"),
    ({"volumes": [vol(secret={"secretName": "s", "items": [{"key": "k", "path": "/abs"}]})]},
     'spec.volumes[0].secret.items[0].path: Invalid value: "/abs": must be a relative path'),
    ({"containers": [container(volumeMounts=[{"name": "x", "mountPath": "/x"}])]},
     f'{C0}.volumeMounts[0].name: Not found: "x"'),
    ({"volumes": [vol()], "containers": [container(volumeMounts=[{"name": "data"}])]},
     f"{C0}.volumeMounts[0].mountPath: Required value"),
    ({"volumes": [vol(), vol("b")], "containers": [container(volumeMounts=[
        {"name": "data", "mountPath": "/d"}, {"name": "b", "mountPath": "/d"}])]},
     f'{C0}.volumeMounts[1].mountPath: Invalid value: "/d": must be unique'),
    ({"volumes": [vol()], "containers": [container(volumeMounts=[
        {"name": "data", "mountPath": "/d", "subPath": "../x"}])]},
     f"{C0}.volumeMounts.subPath: Invalid value: \"../x\": must not contain '..'"),
    # probes
    ({"containers": [container(livenessProbe={"httpGet": {"port": 80},
                                              "tcpSocket": {"port": 80}})]},
     f"{C0}.livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
    ({"containers": [container(readinessProbe={"periodSeconds": 5})]},
     f"{C0}.readinessProbe: Required value: must specify a handler type"),
    ({"containers": [container(readinessProbe={"tcpSocket": {"port": 70000}})]},
     f"{C0}.readinessProbe.tcpSocket.port: Invalid value: 70000: "
     "must be between 1 and 65535, inclusive"),
    ({"containers": [container(readinessProbe={"httpGet": {"port": "web--x"}})]},
     f'{C0}.readinessProbe.httpGet.port: Invalid value: "web--x": '
     "must not contain consecutive hyphens"),
    ({"containers": [container(livenessProbe={"exec": {"command": ["true"]},
                                              "initialDelaySeconds": -1})]},
     f"{C0}.livenessProbe.initialDelaySeconds: Invalid value: -1: "
     "must be greater than or equal to 0"),
    ({"containers": [container(livenessProbe={"exec": {"command": ["true"]},
                                              "successThreshold": 2})]},
     f"{C0}.livenessProbe.successThreshold: Invalid value: 2: must be 1"),
    ({"containers": [container(startupProbe={"exec": {}})]},
     f"{C0}.startupProbe.exec.command: Required value"),
    ({"containers": [container(livenessProbe={"httpGet": {"port": 80, "scheme": "FTP"}})]},
     f'{C0}.livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: '
     '"HTTP", "HTTPS"'),
    ({"initContainers": [container(name="init", readinessProbe={"tcpSocket": {"port": 80}})]},
     "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers "
     "without restartPolicy=Always"),
    # resources
    ({"containers": [container(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})]},
     f'{C0}.resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ({"containers": [container(resources={"requests": {"memory": "1.5Gi"},
                                          "limits": {"memory": "1Gi"}})]},
     f'{C0}.resources.requests: Invalid value: "1536Mi": must be less than or equal to memory '
     "limit of 1Gi"),
    ({"containers": [container(resources={"limits": {"cpu": "-500m"}})]},
     f'{C0}.resources.limits[cpu]: Invalid value: "-500m": must be greater than or equal to 0'),
    ({"containers": [container(resources={"limits": {"gpu": "1"}})]},
     f'{C0}.resources.limits[gpu]: Invalid value: "gpu": must be a standard resource type or '
     "fully qualified"),
    ({"containers": [container(resources={"requests": {"example.com/dongle": "1"}})]},
     f"{C0}.resources.limits: Required value: Limit must be set for non overcommitable "
     "resources"),
    # enums
    ({"restartPolicy": "Sometimes"},
     'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
     '"OnFailure", "Never"'),
    ({"dnsPolicy": "Google"},
     'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
     '"ClusterFirst", "Default", "None"'),
    ({"containers": [container(imagePullPolicy="Sometimes")]},
     f'{C0}.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
     '"IfNotPresent", "Never"'),
    ({"containers": [container(terminationMessagePolicy="Log")]},
     f'{C0}.terminationMessagePolicy: Unsupported value: "Log": supported values: "File", '
     '"FallbackToLogsOnError"'),
    ({"activeDeadlineSeconds": 0},
     "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    ({"containers": [container(ports=[{"containerPort": 80, "hostPort": 8080}]),
                     container(name="b", ports=[{"containerPort": 81, "hostPort": 8080}])]},
     'spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"'),
    # tolerations
    ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
     "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` "
     "is 'Exists'"),
    ({"tolerations": [{"key": "k", "operator": "Bogus"}]},
     'spec.tolerations[0].operator: Unsupported value: "Bogus": supported values: "Equal", '
     '"Exists"'),
    ({"tolerations": [{"operator": "Equal", "value": "v"}]},
     'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` '
     'is empty, which means "match all values and all keys"'),
    ({"tolerations": [{"key": "k", "operator": "Exists", "effect": "Bogus"}]},
     f'spec.tolerations[0].effect: Unsupported value: "Bogus": {EFFECTS}'),
    ({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                       "tolerationSeconds": 30}]},
     'spec.tolerations[0].effect: Invalid value: "NoSchedule": effect must be \'NoExecute\' '
     "when `tolerationSeconds` is set"),
    ({"tolerations": [{"key": "k\n", "operator": "Exists"}]},
     'spec.tolerations[0].key: Invalid value: "k\\n": name part must consist of alphanumeric'),
])
def test_pod_spec_fields(client, spec, want):
    msg = refused(client, pod(**spec))
    assert msg.startswith('The Pod "web" is invalid: ') and want in msg, msg


def test_templates_get_the_same_pod_spec_checks(client):
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
             "metadata": {"labels": {"app": "web"}},
             "spec": {"containers": [container(env=[{"name": "1X"}])]}}}}
    assert refused(client, d) == (
        'The Deployment "web" is invalid: spec.template.spec.containers[0].env[0].name: '
        f'Invalid value: "1X": {ENV_MSG}')


def test_zero_probe_fields_are_defaulted_as_go_does(client):
    p = client.create(pod(containers=[container(readinessProbe={
        "httpGet": {"port": 80}, "periodSeconds": 0, "timeoutSeconds": 0})]))
    probe = p["spec"]["containers"][0]["readinessProbe"]
    assert (probe["periodSeconds"], probe["timeoutSeconds"], probe["httpGet"]["path"]) == \
        (10, 1, "/")


# ---- Nodes, Namespaces, Events, Jobs, CronJobs --------------------------------------------------
def node(name="n1", **spec):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("spec, want", [
    # upstream's ValidateNode reports taints under metadata.taints
    ({"taints": [{"key": "k", "effect": "Bogus"}]},
     f'metadata.taints[0].effect: Unsupported value: "Bogus": {EFFECTS}'),
    ({"taints": [{"key": "k"}]}, "metadata.taints[0].effect: Required value"),
    ({"taints": [{"key": "k\n", "effect": "NoSchedule"}]},
     'metadata.taints[0].key: Invalid value: "k\\n": name part must consist of'),
    ({"taints": [{"key": "k", "value": "a b", "effect": "NoSchedule"}]},
     f'metadata.taints[0].value: Invalid value: "a b": {v.LABEL_VALUE_MSG}'),
    ({"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}]},
     'metadata.taints[1]: Duplicate value: core.Taint{Key:"k", Value:"", Effect:"NoSchedule", '
     "TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair"),
    ({"podCIDR": "10.244.1.0/33"},
     'spec.podCIDRs[0]: Invalid value: "10.244.1.0/33": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ({"podCIDRs": ["10.244.1.0/24", "10.244.2.0/24"]},
     'spec.podCIDRs: Invalid value: []string{"10.244.1.0/24", "10.244.2.0/24"}: may specify '
     "no more than one CIDR for each IP family"),
])
def test_nodes(client, spec, want):
    msg = refused(client, node(**spec))
    assert msg.startswith('The Node "n1" is invalid: ') and want in msg, msg


def test_node_unschedulable_is_a_bool_and_pod_cidrs_are_immutable(client):
    assert refused(client, node(unschedulable="yes"), code=400) == (
        'Node in version "v1" cannot be handled as a Node: json: cannot unmarshal string into '
        "Go struct field NodeSpec.spec.unschedulable of type bool")
    n = client.create(node(podCIDR="10.244.1.0/24", podCIDRs=["10.244.1.0/24"],
                           taints=[{"key": "k", "effect": "NoSchedule"}]))
    n["spec"].update(podCIDR="10.244.9.0/24", podCIDRs=["10.244.9.0/24"])
    with pytest.raises(errors.Invalid) as ei:
        client.update(n)
    assert ei.value.message == ('The Node "n1" is invalid: spec.podCIDRs: Forbidden: node '
                                'updates may not change podCIDR except from "" to valid')
    assert client.get("nodes", "n1")["spec"]["podCIDRs"] == ["10.244.1.0/24"]


def test_namespace_finalizers(client):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"},
          "spec": {"finalizers": ["bogus"]}}
    assert refused(client, ns) == (
        'The Namespace "prod" is invalid: spec.finalizers: Invalid value: "bogus": name is '
        "neither a standard finalizer name nor is it fully qualified")
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "prod", "finalizers": ["orphan", "foregroundDeletion"]}}
    assert refused(client, ns) == (
        'The Namespace "prod" is invalid: metadata.finalizers: Invalid value: '
        '[]string{"orphan", "foregroundDeletion"}: finalizer orphan and foregroundDeletion '
        "cannot be both set")
    cmf = {**CM, "metadata": {**CM["metadata"], "finalizers": ["keep"]}}
    assert refused(client, cmf) == (
        'The ConfigMap "cfg" is invalid: metadata.finalizers[0]: Invalid value: "keep": name '
        "is neither a standard finalizer name nor is it fully qualified")
    client.create({**cmf, "metadata": {**CM["metadata"], "finalizers": ["example.com/keep"]}})


def test_events_must_sit_in_their_objects_namespace(client):
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "web", "namespace": "kube-system"},
          "reason": "Started", "message": "m"}
    assert refused(client, ev) == (
        'The Event "web.1" is invalid: involvedObject.namespace: Invalid value: "kube-system": '
        "does not match event.namespace")
    ev["involvedObject"]["namespace"] = "default"
    client.create(ev)
    node_ev = {**ev, "metadata": {"name": "n1.1", "namespace": "default"},
               "involvedObject": {"kind": "Node", "name": "n1"}}
    client.create(node_ev)  # a cluster-scoped object's Events live in "default"


def job(name="pi", restart="Never", **spec):
    tspec = {"containers": [{"name": "pi", "image": "perl:5.34.0",
                             "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}]}
    if restart:
        tspec["restartPolicy"] = restart
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": {"spec": tspec}, **spec}}


def test_jobs(client):
    assert refused(client, job(restart=None)) == (
        'The Job "pi" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
        '"Always": supported values: "OnFailure", "Never"')
    assert refused(client, job(completions=-1)) == (
        'The Job "pi" is invalid: spec.completions: Invalid value: -1: '
        "must be greater than or equal to 0")
    assert refused(client, job(parallelism=-2, backoffLimit=-1)) == (
        'The Job "pi" is invalid: [spec.parallelism: Invalid value: -2: must be greater than or '
        "equal to 0, spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0]")
    bad = job()
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Pi"
    assert f'spec.template.spec.containers[0].name: Invalid value: "Pi": {v.LABEL_MSG}' in \
        refused(client, bad)
    stored = client.create(job(backoffLimit=4))["spec"]
    assert (stored["completions"], stored["parallelism"], stored["backoffLimit"]) == (1, 1, 4)


def test_cronjobs(client):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob",
          "metadata": {"name": "hello", "namespace": "default"},
          "spec": {"schedule": "", "jobTemplate": {"spec": job(restart="OnFailure")["spec"]}}}
    assert refused(client, cj) == 'The CronJob "hello" is invalid: spec.schedule: Required value'
    cj["spec"].update(schedule="* * * * *", concurrencyPolicy="Sometimes")
    assert refused(client, cj) == (
        'The CronJob "hello" is invalid: spec.concurrencyPolicy: Unsupported value: '
        '"Sometimes": supported values: "Allow", "Forbid", "Replace"')
    cj["spec"]["concurrencyPolicy"] = "Forbid"
    cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert refused(client, cj) == (
        'The CronJob "hello" is invalid: spec.jobTemplate.spec.template.spec.restartPolicy: '
        'Unsupported value: "Always": supported values: "OnFailure", "Never"')
    cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert client.create(cj)["spec"]["successfulJobsHistoryLimit"] == 3


# ---- valid manifests are still accepted ---------------------------------------------------------
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _docs(path: pathlib.Path) -> list[dict]:
    """As `netsim apply -f` reads them (its loader takes the seed's TABs before comments)."""
    from netsim.cli import manifests
    return [d.obj for d in manifests.load([str(path)])]


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_admitted(client, path):
    """Everything under examples/ is admitted (namespaces first, as kubectl apply -f dir)."""
    docs = sorted(_docs(path), key=lambda d: d.get("kind") != "Namespace")
    for d in docs:
        if d.get("kind") not in BY_KIND:
            continue
        ns = (d.get("metadata") or {}).get("namespace")
        if ns and BY_KIND[d["kind"]].namespaced and client.get_or_none("namespaces", ns) is None:
            client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        client.create(d)


# Manifests as the Kubernetes docs print them (tasks/inject-data-application,
# configure-pod-container, scheduling/taint-and-toleration, workloads/controllers).
DOCS_MANIFESTS = """
apiVersion: v1
kind: Pod
metadata: {name: dapi-envars-fieldref}
spec:
  containers:
  - name: test-container
    image: registry.k8s.io/busybox
    command: ["sh", "-c"]
    args: ["while true; do echo -en '\\\\n'; printenv MY_NODE_NAME MY_POD_NAME; sleep 10; done;"]
    env:
    - name: MY_NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: MY_POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: MY_CPU_LIMIT
      valueFrom: {resourceFieldRef: {containerName: test-container, resource: limits.cpu}}
    - name: SPECIAL_LEVEL_KEY
      valueFrom: {configMapKeyRef: {name: special-config, key: special.how}}
    envFrom:
    - configMapRef: {name: special-config}
    - prefix: DB_
      secretRef: {name: db-secret}
    resources:
      requests: {memory: "32Mi", cpu: "125m"}
      limits: {memory: "64Mi", cpu: "250m"}
  restartPolicy: Never
---
apiVersion: v1
kind: Pod
metadata: {name: goproxy, labels: {app: goproxy}}
spec:
  containers:
  - name: goproxy
    image: registry.k8s.io/goproxy:0.1
    ports: [{containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 15, periodSeconds: 10}
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
        httpHeaders: [{name: Custom-Header, value: Awesome}]
      initialDelaySeconds: 3
      periodSeconds: 3
    startupProbe: {exec: {command: [cat, /tmp/healthy]}, failureThreshold: 30, periodSeconds: 10}
    lifecycle:
      preStop: {exec: {command: ["/bin/sh", "-c", "nginx -s quit"]}}
    volumeMounts:
    - {name: cache-volume, mountPath: /cache}
    - {name: config, mountPath: /etc/config, readOnly: true}
    - {name: host, mountPath: /var/log/host, subPath: app}
  volumes:
  - {name: cache-volume, emptyDir: {sizeLimit: 500Mi}}
  - name: config
    configMap: {name: log-config, items: [{key: log_level, path: log_level.conf}]}
  - {name: host, hostPath: {path: /var/log, type: Directory}}
  - {name: creds, secret: {secretName: mysecret, defaultMode: 0400}}
  tolerations:
  - {key: "key1", operator: "Equal", value: "value1", effect: "NoSchedule"}
  - {key: "key1", operator: "Exists", effect: "NoExecute", tolerationSeconds: 3600}
  - {operator: "Exists"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  template:
    spec:
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
  backoffLimit: 4
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command: [/bin/sh, -c, date; echo Hello from the Kubernetes cluster]
          restartPolicy: OnFailure
---
apiVersion: v1
kind: Node
metadata: {name: node1}
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, "fd00:10:244:1::/64"]
  unschedulable: true
  taints: [{key: key1, value: value1, effect: NoSchedule}, {key: key1, effect: NoExecute}]
"""


@pytest.mark.parametrize("doc", [d for d in yaml.safe_load_all(DOCS_MANIFESTS) if d],
                         ids=lambda d: d["metadata"]["name"])
def test_manifests_from_the_kubernetes_docs_are_accepted(client, doc):
    client.create({**doc, "metadata": {**doc["metadata"], "namespace": "default"}})


def test_ingress_class_controller_is_quoted_as_go_quotes_it(client):
    ic = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
          "metadata": {"name": "nginx"}, "spec": {"controller": "nginx\n"}}
    assert refused(client, ic) == (
        'The IngressClass "nginx" is invalid: spec.controller: Invalid value: "nginx\\n": '
        'must be a domain-prefixed path (such as "acme.io/foo")')
    ic["spec"] = {"controller": "k8s.io/ingress-nginx", "parameters": {
        "kind": "Params", "name": "p", "scope": "Everywhere"}}
    assert refused(client, ic) == (
        'The IngressClass "nginx" is invalid: spec.parameters.scope: Unsupported value: '
        '"Everywhere": supported values: "Cluster", "Namespace"')


def test_pod_updates_may_only_add_tolerations(client):
    p = client.create(pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                        "tolerationSeconds": 60}]))
    p["spec"]["tolerations"][0]["tolerationSeconds"] = 120
    p["spec"]["tolerations"].append({"key": "x", "operator": "Exists"})
    p = client.update(p)
    p["spec"]["tolerations"] = p["spec"]["tolerations"][1:]
    with pytest.raises(errors.Invalid) as ei:
        client.update(p)
    assert ei.value.message == ('The Pod "web" is invalid: spec.tolerations: Forbidden: existing '
                                "toleration can not be modified except its tolerationSeconds")


def test_an_update_without_the_default_tolerations_gets_them_again(client):
    """DefaultTolerationSeconds admits updates too: `apply` of the unchanged manifest sends
    the user's tolerations alone (the list is atomic) and must not read as removing the
    defaults the create added."""
    mine = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    p = client.create(pod(tolerations=[dict(mine)]))
    assert [t["key"] for t in p["spec"]["tolerations"]] == [
        "k", "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    p["spec"]["tolerations"] = [dict(mine)]
    assert client.update(p)["spec"]["tolerations"] == client.get("pods", "web", "default")[
        "spec"]["tolerations"] == [mine] + DEFAULT_TOLERATIONS


@pytest.mark.parametrize("schedule, want", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("@sometimes", "unrecognized descriptor: @sometimes"),
])
def test_cron_schedules_are_parsed(client, schedule, want):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob",
          "metadata": {"name": "hello", "namespace": "default"},
          "spec": {"schedule": schedule, "jobTemplate": {"spec": job(restart="OnFailure")["spec"]}}}
    assert refused(client, cj) == (f'The CronJob "hello" is invalid: spec.schedule: Invalid value: '
                                   f'{v.go_quote(schedule)}: {want}')


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 9-17 * jan-jun MON-FRI", "@hourly",
                                      "@every 1h30m", "15,45 */2 1,15 * ?"])
def test_good_cron_schedules_are_accepted(client, schedule):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob",
          "metadata": {"name": "hello", "namespace": "default"},
          "spec": {"schedule": schedule, "jobTemplate": {"spec": job(restart="OnFailure")["spec"]}}}
    client.create(cj)
