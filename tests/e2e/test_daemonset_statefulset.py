"""DaemonSet and StatefulSet end to end (root; the cluster fixture skips without it).

The Kubernetes docs' manifests, applied as a user would:
- the `fluentd-elasticsearch` DaemonSet (docs: "DaemonSet"), which tolerates the
  control-plane taint, so it lands one pod on every node, the control-plane node included.
  Its image is outside netsim's catalog, so the container runs busybox's `sleep infinity`
  (the docs' volumes are left out: they mount host log directories).
- the `web` StatefulSet with its headless `nginx` Service (docs: "StatefulSet Basics");
  nginx-slim is replaced by the catalog's `nginx` (an HTTP server on port 80), and the
  volumeClaimTemplates stay (the pods name their claims; netsim has no PVCs yet, so the
  mount is left out). web-0 and web-1 come up in order, `dig` from a pod answers web-0's
  address for web-0.nginx.<ns>.svc.cluster.local, and a deleted web-0 comes back by name.
"""

from __future__ import annotations

import textwrap

import pytest

from netsim.api.timeutil import rfc3339_seconds
from tests.conftest import wait_for

NS = "stse2e"
DOMAIN = "cluster.local"

FLUENTD = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: fluentd-elasticsearch
      namespace: {ns}
      labels:
        k8s-app: fluentd-logging
    spec:
      selector:
        matchLabels:
          name: fluentd-elasticsearch
      template:
        metadata:
          labels:
            name: fluentd-elasticsearch
        spec:
          tolerations:
          # these tolerations are to have the daemonset runnable on control plane nodes
          # remove them if your control plane nodes should not run pods
          - key: node-role.kubernetes.io/control-plane
            operator: Exists
            effect: NoSchedule
          - key: node-role.kubernetes.io/master
            operator: Exists
            effect: NoSchedule
          containers:
          - name: fluentd-elasticsearch
            image: busybox
            command: [sleep, infinity]
            resources:
              limits:
                memory: 200Mi
              requests:
                cpu: 100m
                memory: 200Mi
          terminationGracePeriodSeconds: 30
    """).format(ns=NS)

WEB = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata:
      name: nginx
      namespace: {ns}
      labels:
        app: nginx
    spec:
      ports:
      - port: 80
        name: web
      clusterIP: None
      selector:
        app: nginx
    ---
    apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: web
      namespace: {ns}
    spec:
      serviceName: "nginx"
      replicas: 2
      selector:
        matchLabels:
          app: nginx
      template:
        metadata:
          labels:
            app: nginx
        spec:
          containers:
          - name: nginx
            image: nginx
            ports:
            - containerPort: 80
              name: web
      volumeClaimTemplates:
      - metadata:
          name: www
        spec:
          accessModes: [ "ReadWriteOnce" ]
          resources:
            requests:
              storage: 1Gi
    """).format(ns=NS)


def _ready_since(pod: dict) -> float | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c["type"] == "Ready" and c["status"] == "True":
            return rfc3339_seconds(c.get("lastTransitionTime"))
    return None


@pytest.fixture(scope="module")
def ns(cluster):
    cluster.netsim("create", "namespace", NS)
    yield NS
    cluster.netsim("delete", "namespace", NS, check=False, timeout=120)


def test_fluentd_daemonset_one_pod_per_node(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=FLUENTD)
    nodes = sorted(n["metadata"]["name"] for n in cluster.client.list("nodes"))
    pods = cluster.wait_pods_ready(ns, "name=fluentd-elasticsearch", len(nodes), timeout=90)
    assert sorted(p["spec"]["nodeName"] for p in pods) == nodes
    assert any("control-plane" in "".join(n["metadata"].get("labels", {}))
               for n in cluster.client.list("nodes"))
    st = wait_for(lambda: (s := cluster.client.get("daemonsets", "fluentd-elasticsearch", ns)
                           ["status"]).get("numberAvailable") == len(nodes) and s, 30,
                  what="the DaemonSet's status")
    assert st["desiredNumberScheduled"] == st["currentNumberScheduled"] == len(nodes)
    assert st["numberReady"] == st["updatedNumberScheduled"] == len(nodes)
    out = cluster.netsim("rollout", "status", "ds/fluentd-elasticsearch", "-n", ns).stdout
    assert 'daemon set "fluentd-elasticsearch" successfully rolled out' in out
    rows = cluster.netsim("get", "ds", "-n", ns).stdout.splitlines()
    assert rows[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                               "NODE", "SELECTOR", "AGE"]
    n = str(len(nodes))
    assert rows[1].split()[:7] == ["fluentd-elasticsearch", n, n, n, n, n, "<none>"]


def test_fluentd_rolling_update_and_history(cluster, ns):
    """set image rolls one node at a time (maxUnavailable 1); rollout status follows it."""
    nodes = sorted(n["metadata"]["name"] for n in cluster.client.list("nodes"))
    cluster.netsim("set", "image", "ds/fluentd-elasticsearch", "fluentd-elasticsearch=alpine",
                   "-n", ns)
    out = cluster.netsim("rollout", "status", "ds/fluentd-elasticsearch", "-n", ns,
                         "--timeout=120s", timeout=150).stdout
    assert out.rstrip().endswith('daemon set "fluentd-elasticsearch" successfully rolled out')
    pods = cluster.wait_pods_ready(ns, "name=fluentd-elasticsearch", len(nodes), timeout=60)
    assert sorted(p["spec"]["nodeName"] for p in pods) == nodes
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"alpine"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}
    hist = cluster.netsim("rollout", "history", "ds/fluentd-elasticsearch", "-n", ns).stdout
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["1", "2"]


def test_web_statefulset_in_order_dns_and_recreated_by_name(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=WEB)
    pods = cluster.wait_pods_ready(ns, "app=nginx", 2, timeout=90)
    by_name = {p["metadata"]["name"]: p for p in pods}
    assert sorted(by_name) == ["web-0", "web-1"]
    # OrderedReady: web-1 was created only once web-0 was Running and Ready
    web1_created = rfc3339_seconds(by_name["web-1"]["metadata"]["creationTimestamp"])
    assert web1_created >= _ready_since(by_name["web-0"])
    assert by_name["web-0"]["spec"]["hostname"] == "web-0"
    assert by_name["web-0"]["spec"]["subdomain"] == "nginx"
    # the pod's own hostname, as `kubectl exec web-0 -- hostname` shows it
    assert cluster.pod_exec("web-0", "hostname", namespace=ns).stdout.strip() == "web-0"

    def dig_web0() -> str:
        p = cluster.pod_exec("web-1", "dig", "+short", "+time=2", "+tries=2",
                             f"web-0.nginx.{ns}.svc.{DOMAIN}", namespace=ns)
        return p.stdout.strip()
    ip0 = by_name["web-0"]["status"]["podIP"]
    wait_for(lambda: dig_web0() == ip0, 30, interval=0.5, what="web-0's record")

    uid = by_name["web-0"]["metadata"]["uid"]
    cluster.netsim("delete", "pod", "web-0", "-n", ns, timeout=90)

    def back() -> dict | None:
        p = cluster.client.get_or_none("pods", "web-0", ns)
        return p if p and p["metadata"]["uid"] != uid and _ready_since(p) else None
    new0 = wait_for(back, 90, interval=0.5, what="web-0 back by name")
    wait_for(lambda: dig_web0() == new0["status"]["podIP"], 30, interval=0.5,
             what="web-0's record after it came back")
    st = cluster.client.get("statefulsets", "web", ns)["status"]
    assert st["replicas"] == 2 and st["readyReplicas"] == 2
    assert st["currentRevision"] == st["updateRevision"]
    rows = cluster.netsim("get", "sts", "-n", ns).stdout.splitlines()
    assert rows[0].split() == ["NAME", "READY", "AGE"] and rows[1].split()[:2] == ["web", "2/2"]
