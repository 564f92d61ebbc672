"""Issue 12, PersistentVolumes as a kind cluster ships them, driven with the netsim CLI (and
the real kubectl for the tables): the default StorageClass `standard` (local-path,
WaitForFirstConsumer); a claim Bound once its first pod is scheduled, data a pod wrote read
by the next pod, which the volume's nodeAffinity sends to the same node; readOnly mounts;
the docs' `web` StatefulSet with its www claims, one folder per pod, kept on scale-down and
StatefulSet delete (Retain); deleting a claim removes its volume and folder; the folder root
is in the ledger, so `cluster down` removes whatever is left."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from netsim.net.ledger import Ledger
from tests.conftest import namespace_fixture, requires_root, wait_for
from tests.e2e.kubectl_helpers import assert_same, requires_kubectl

pytestmark = [requires_root, pytest.mark.e2e]
NS = "pvols"
ns = namespace_fixture(NS)

CLAIM_AND_WRITER = f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: writer, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  nodeSelector: {{kubernetes.io/hostname: k8s-slave-173}}
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo written-by-writer > /data/hello.txt; sleep 3600"]
    volumeMounts: [{{name: d, mountPath: /data}}]
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: data}}}}
"""

READER = f"""apiVersion: v1
kind: Pod
metadata: {{name: reader, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "cat /data/hello.txt; sleep 3600"]
    volumeMounts: [{{name: d, mountPath: /data, readOnly: true}}]
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: data}}}}
"""

NO_CLAIM = f"""apiVersion: v1
kind: Pod
metadata: {{name: lonely, namespace: {NS}}}
spec:
  containers:
  - {{name: main, image: busybox, command: [sleep, "3600"],
     volumeMounts: [{{name: d, mountPath: /data}}]}}
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: missing}}}}
"""

# https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#components
WEB = textwrap.dedent(f"""\
    apiVersion: v1
    kind: Service
    metadata:
      name: nginx
      namespace: {NS}
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
      namespace: {NS}
    spec:
      selector:
        matchLabels:
          app: nginx
      serviceName: "nginx"
      replicas: 2
      template:
        metadata:
          labels:
            app: nginx
        spec:
          terminationGracePeriodSeconds: 1
          containers:
          - name: nginx
            image: nginx
            ports:
            - containerPort: 80
              name: web
            volumeMounts:
            - name: www
              mountPath: /usr/share/nginx/html
      volumeClaimTemplates:
      - metadata:
          name: www
        spec:
          accessModes: [ "ReadWriteOnce" ]
          resources:
            requests:
              storage: 1Gi
    """)


def _json(cluster, *args: str) -> dict:
    return json.loads(cluster.netsim(*args, "-o", "json").stdout)


def _claim(cluster, name: str) -> dict | None:
    return cluster.client.get_or_none("persistentvolumeclaims", name, NS)


def _bound(cluster, name: str) -> dict | None:
    c = _claim(cluster, name)
    return c if c and (c.get("status") or {}).get("phase") == "Bound" else None


def _running(cluster, name: str) -> dict | None:
    p = cluster.client.get_or_none("pods", name, NS)
    return p if p and (p.get("status") or {}).get("phase") == "Running" else None


def _gone(cluster, resource: str, name: str, namespace: str | None = NS) -> bool:
    return cluster.client.get_or_none(resource, name, namespace) is None


def test_default_storage_class_as_kind_ships_it(cluster):
    out = cluster.netsim("get", "sc").stdout.splitlines()
    assert out[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                              "ALLOWVOLUMEEXPANSION", "AGE"]
    assert out[1].split()[:6] == ["standard", "(default)", "rancher.io/local-path", "Delete",
                                  "WaitForFirstConsumer", "false"]


def test_data_survives_the_pod_and_the_next_pod_follows_the_volume(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=CLAIM_AND_WRITER)
    claim = wait_for(lambda: _bound(cluster, "data"), 30, what="claim data Bound")
    assert claim["spec"]["storageClassName"] == "standard"  # DefaultStorageClass admission
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == \
        "k8s-slave-173"
    pv_name = claim["spec"]["volumeName"]
    assert pv_name == f"pvc-{claim['metadata']['uid']}"
    pv = cluster.client.get("persistentvolumes", pv_name)
    path = pv["spec"]["hostPath"]["path"]
    assert path == (f"/var/lib/netsim/{cluster.name}/local-path/"
                    f"pvc-{claim['metadata']['uid']}_{NS}_data")
    row = cluster.netsim("get", "pvc", "data", "-n", NS).stdout.splitlines()[1].split()
    assert row[:6] == ["data", "Bound", pv_name, "1Gi", "RWO", "standard"]
    events = cluster.netsim("describe", "pvc", "data", "-n", NS).stdout
    for words in ("Provisioning", "External provisioner is provisioning volume for claim "
                  f'"{NS}/data"', f"Successfully provisioned volume {pv_name}",
                  "rancher.io/local-path", "Used By:       writer"):
        assert words in events, events
    wait_for(lambda: _running(cluster, "writer"), 30, what="writer Running")
    wait_for(lambda: os.path.exists(os.path.join(path, "hello.txt")), 15,
             what="the file in the volume's folder")
    assert cluster.pod_exec("writer", "cat", "/data/hello.txt", namespace=NS).stdout == \
        "written-by-writer\n"
    assert not os.path.exists("/data/hello.txt")  # mounted in the pod only
    # deleting the claim while a pod uses it: Terminating until the pod is gone
    cluster.netsim("delete", "pod", "writer", "-n", NS)
    wait_for(lambda: _gone(cluster, "pods", "writer"), 30, what="writer gone")
    cluster.netsim("apply", "-f", "-", input=READER)
    reader = wait_for(lambda: _running(cluster, "reader"), 30, what="reader Running")
    assert reader["spec"]["nodeName"] == "k8s-slave-173"  # the volume's nodeAffinity
    wait_for(lambda: "written-by-writer" in cluster.netsim("logs", "reader", "-n", NS).stdout,
             15, what="the reader's log shows the data")
    p = cluster.pod_exec("reader", "sh", "-c", "echo x > /data/other", namespace=NS)
    assert p.returncode != 0 and "Read-only file system" in p.stdout + p.stderr
    cluster.netsim("delete", "pvc", "data", "-n", NS, "--wait=false")
    assert cluster.netsim("get", "pvc", "data", "-n", NS).stdout.splitlines()[1].split()[1] \
        == "Terminating"
    assert os.path.isdir(path)
    cluster.netsim("delete", "pod", "reader", "-n", NS)
    wait_for(lambda: _gone(cluster, "persistentvolumeclaims", "data"), 30, what="claim gone")
    wait_for(lambda: _gone(cluster, "persistentvolumes", pv_name, None), 30, what="volume gone")
    assert not os.path.exists(path)  # reclaimPolicy Delete: the data goes with it


def test_a_missing_claim_keeps_the_pod_pending(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=NO_CLAIM)

    def reason():
        p = cluster.client.get("pods", "lonely", NS)
        return next((c.get("message") for c in p["status"].get("conditions") or []
                     if c["type"] == "PodScheduled"), None)
    msg = wait_for(reason, 20, what="FailedScheduling")
    assert msg == ('0/3 nodes are available: persistentvolumeclaim "missing" not found. '
                   "preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
                   "scheduling.")
    row = cluster.netsim("get", "po", "lonely", "-n", NS).stdout.splitlines()[1].split()
    assert row[2] == "Pending"
    cluster.netsim("delete", "pod", "lonely", "-n", NS)


def test_web_statefulset_claims_per_pod(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=WEB)
    cluster.wait_pods_ready(NS, "app=nginx", 2, timeout=60)
    claims = {n: wait_for(lambda n=n: _bound(cluster, n), 30, what=f"{n} Bound")
              for n in ("www-web-0", "www-web-1")}
    assert all(c["metadata"]["labels"] == {"app": "nginx"} for c in claims.values())
    paths = {}
    for i in (0, 1):
        pod = f"web-{i}"
        assert cluster.pod_exec(pod, "sh", "-c", "hostname > /usr/share/nginx/html/index.html",
                                namespace=NS).returncode == 0
        pv = cluster.client.get("persistentvolumes", claims[f"www-{pod}"]["spec"]["volumeName"])
        paths[pod] = pv["spec"]["hostPath"]["path"]
        with open(os.path.join(paths[pod], "index.html")) as f:
            assert f.read() == f"{pod}\n"
    assert paths["web-0"] != paths["web-1"]
    # web-0 deleted comes back with its own claim and data
    old = cluster.client.get("pods", "web-0", NS)["metadata"]["uid"]
    cluster.netsim("delete", "pod", "web-0", "-n", NS)
    wait_for(lambda: (p := _running(cluster, "web-0")) and p["metadata"]["uid"] != old, 40,
             what="web-0 back")
    wait_for(lambda: cluster.pod_exec("web-0", "cat", "/usr/share/nginx/html/index.html",
                                      namespace=NS).stdout == "web-0\n", 15, what="web-0's data")
    # Retain (the default): the claims outlive scale-down and the StatefulSet
    cluster.netsim("scale", "sts", "web", "--replicas=1", "-n", NS)
    wait_for(lambda: _gone(cluster, "pods", "web-1"), 30, what="web-1 gone")
    assert _bound(cluster, "www-web-1")
    cluster.netsim("delete", "sts", "web", "-n", NS)
    wait_for(lambda: _gone(cluster, "pods", "web-0"), 30, what="web-0 gone")
    assert _bound(cluster, "www-web-0") and _bound(cluster, "www-web-1")
    cluster.netsim("delete", "pvc", "www-web-0", "www-web-1", "-n", NS)
    for pod, path in paths.items():
        pv = claims[f"www-{pod}"]["spec"]["volumeName"]
        wait_for(lambda pv=pv: _gone(cluster, "persistentvolumes", pv, None), 30,
                 what=f"{pv} gone")
        assert not os.path.exists(path)
    cluster.netsim("delete", "svc", "nginx", "-n", NS)


@requires_kubectl
def test_kubectl_prints_the_same_tables(cluster, ns):
    claim = CLAIM_AND_WRITER.replace("name: data", "name: shown").replace(
        "claimName: data", "claimName: shown").replace("name: writer", "name: shower")
    cluster.netsim("apply", "-f", "-", input=claim)
    wait_for(lambda: _bound(cluster, "shown"), 30, what="claim shown Bound")
    assert_same(cluster, "get", "pvc", "-n", NS)
    assert_same(cluster, "get", "sc")
    assert_same(cluster, "describe", "sc", "standard")
    cluster.netsim("delete", "pod", "shower", "-n", NS)
    cluster.netsim("delete", "pvc", "shown", "-n", NS)
    wait_for(lambda: _gone(cluster, "persistentvolumeclaims", "shown"), 30, what="gone")


def test_cluster_down_removes_the_folders(cluster):
    """The local-path root is a `dir` record of the ledger: `cluster down` rmtree's it."""
    root = f"/var/lib/netsim/{cluster.name}/local-path"
    assert {"kind": "dir", "path": root} in Ledger(cluster.name).records()


def test_a_volume_made_by_hand_binds_and_is_retained(cluster, ns, tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    cluster.netsim("apply", "-f", "-", input=f"""apiVersion: v1
kind: PersistentVolume
metadata: {{name: pvols-static}}
spec:
  capacity: {{storage: 2Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {{path: {folder}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: manual, namespace: {NS}}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: static-user, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo kept > /vol/note; sleep 3600"]
    volumeMounts: [{{name: v, mountPath: /vol}}]
  volumes:
  - {{name: v, persistentVolumeClaim: {{claimName: manual}}}}
""")
    claim = wait_for(lambda: _bound(cluster, "manual"), 30, what="claim manual Bound")
    assert claim["spec"]["volumeName"] == "pvols-static"
    assert claim["status"]["capacity"] == {"storage": "2Gi"}  # the volume's size
    wait_for(lambda: (folder / "note").exists(), 30, what="the pod's file in the folder")
    cluster.netsim("delete", "pod", "static-user", "-n", NS)
    cluster.netsim("delete", "pvc", "manual", "-n", NS)
    wait_for(lambda: cluster.client.get("persistentvolumes", "pvols-static")["status"]["phase"]
             == "Released", 30, what="the volume Released")
    assert (folder / "note").read_text() == "kept\n"  # Retain: nothing deleted
    cluster.netsim("delete", "pv", "pvols-static")
    wait_for(lambda: _gone(cluster, "persistentvolumes", "pvols-static", None), 30,
             what="volume gone")


def test_a_pod_placed_by_hand_waits_for_its_claim(cluster, ns):
    """nodeName set by hand skips the scheduler, so nobody picks a node for a
    WaitForFirstConsumer claim: the kubelet keeps the pod ContainerCreating, in its words."""
    cluster.netsim("apply", "-f", "-", input=f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: unbound, namespace: {NS}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: placed, namespace: {NS}}}
spec:
  nodeName: k8s-slave-172
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: busybox, command: [sleep, "3600"],
     volumeMounts: [{{name: d, mountPath: /data}}]}}
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: unbound}}}}
""")
    want = ("Unable to attach or mount volumes: unmounted volumes=[d], unattached volumes=[d], "
            f"failed to process volumes=[d]: error processing PVC {NS}/unbound: PVC is not bound")
    wait_for(lambda: want in cluster.netsim("describe", "pod", "placed", "-n", NS).stdout, 30,
             what="FailedMount")
    row = cluster.netsim("get", "po", "placed", "-n", NS).stdout.splitlines()[1].split()
    assert row[1:3] == ["0/1", "ContainerCreating"]
    assert _claim(cluster, "unbound")["status"]["phase"] == "Pending"
    cluster.netsim("delete", "pod", "placed", "-n", NS)
    cluster.netsim("delete", "pvc", "unbound", "-n", NS)
