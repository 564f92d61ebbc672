"""The StatefulSet controller against a real Store, driven one reconcile at a time.

A fake kubelet binds pods and marks them Running+Ready (per image, as the test says) and
finishes graceful deletions; every reconcile is followed by the test's observers, so the
ordering guarantees (web-1 never before web-0 is Ready, one pod at a time) hold at every
moment, not only at the end.
"""

from __future__ import annotations

import pytest

from netsim.controllers import history
from netsim.controllers.endpoints import EndpointsController
from netsim.controllers.statefulset import StatefulSetController
from tests.unit.workload_helpers import FakeCluster, created_plus, pod_ready, running_status

NS = "default"
V1 = "registry.k8s.io/nginx-slim:0.24"
V2 = "registry.k8s.io/nginx-slim:0.25"


def web(replicas: int = 2, image: str = V1, **spec) -> dict:
    """The Kubernetes docs' `web` StatefulSet."""
    s = {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "web", "namespace": NS},
         "spec": {"serviceName": "nginx", "replicas": replicas,
                  "selector": {"matchLabels": {"app": "nginx"}},
                  "template": {"metadata": {"labels": {"app": "nginx"}},
                               "spec": {"containers": [{
                                   "name": "nginx", "image": image,
                                   "ports": [{"containerPort": 80, "name": "web"}],
                                   "volumeMounts": [{"name": "www",
                                                     "mountPath": "/usr/share/nginx/html"}]}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                      "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}]}}
    s["spec"].update(spec)
    return s


NGINX_SVC = {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "nginx", "namespace": NS, "labels": {"app": "nginx"}},
             "spec": {"ports": [{"port": 80, "name": "web"}], "clusterIP": "None",
                      "selector": {"app": "nginx"}}}


class Cluster(FakeCluster):
    settle_message = "controller did not settle"

    def __init__(self) -> None:
        super().__init__()
        self.ssc = StatefulSetController(self.client, clock=lambda: self.t)
        self.hold: set[str] = set()     # pods the kubelet leaves Pending
        self.observers: list = []
        self.created: list[str] = []    # pod names in creation order
        self.ip = 10

    def kubelet(self) -> None:
        stamp = self.stamp()
        for pod in self.kubelet_pods(NS, self.observe):
            if pod["metadata"]["name"] in self.hold or pod["status"].get("phase") == "Failed":
                continue
            pod = self.bound(pod)
            ok = self.should_be_ready(pod)
            if pod["status"].get("phase") != "Running" or pod_ready(pod) != ok:
                if not pod["status"].get("podIP"):
                    self.ip += 1
                pod["status"].update({**running_status(ok, stamp),
                                      "podIP": pod["status"].get("podIP") or f"10.244.1.{self.ip}"})
                self.client.update_status(pod)
                self.observe()

    def observe(self) -> None:
        for p in self.client.list("pods", NS):
            uid = p["metadata"]["uid"]
            if uid not in self.created:
                self.created.append(uid)
                self.created.append(p["metadata"]["name"])
        for fn in self.observers:
            fn(self)

    def order(self) -> list[str]:
        return self.created[1::2]

    def step(self) -> None:
        self.kubelet()
        for s in self.client.list("statefulsets", NS):
            self.ssc.reconcile(f"{NS}/{s['metadata']['name']}")
            self.observe()

    def run(self, steps: int = 60) -> None:
        super().run(steps)

    def set_image(self, image: str) -> None:
        s = self.sts()
        s["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.client.update(s)

    def images(self) -> dict[str, str]:
        return {n: p["spec"]["containers"][0]["image"] for n, p in self.pods().items()}

    def pods(self) -> dict[str, dict]:
        return {p["metadata"]["name"]: p for p in self.client.list("pods", NS)
                if not p["metadata"].get("deletionTimestamp")}

    def sts(self) -> dict:
        return self.client.get("statefulsets", "web", NS)

    def events(self, reason: str) -> list[str]:
        evs = sorted(self.client.list("events", NS),
                     key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [e["message"] for e in evs if e["reason"] == reason]


@pytest.fixture
def cl() -> Cluster:
    return Cluster()


def _ready(p: dict) -> bool:
    return p["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])


def ordered_ready(c: Cluster) -> None:
    """OrderedReady: a pod exists only when every lower ordinal is Running and Ready."""
    pods = c.pods()
    for name in pods:
        n = int(name.rsplit("-", 1)[1])
        for lower in range(n):
            low = pods.get(f"web-{lower}")
            assert low is not None and _ready(low), f"{name} exists before web-{lower} is Ready"


def test_ordered_creation_identity_and_status(cl: Cluster) -> None:
    cl.client.create(web(replicas=3))
    cl.observers.append(ordered_ready)
    cl.run()
    pods = cl.pods()
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    assert cl.order() == ["web-0", "web-1", "web-2"]
    p = pods["web-1"]
    assert p["spec"]["hostname"] == "web-1" and p["spec"]["subdomain"] == "nginx"
    labels = p["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    st = cl.sts()["status"]
    assert labels[history.POD_HASH_LABEL] == st["updateRevision"] == st["currentRevision"]
    assert st["updateRevision"].startswith("web-")
    assert st["replicas"] == 3 and st["readyReplicas"] == 3
    assert st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
    assert st["availableReplicas"] == 3 and st["observedGeneration"] == 1
    # volumeClaimTemplates: the pod names its claim, made just before the pod
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in \
        p["spec"]["volumes"]
    assert cl.events("SuccessfulCreate") == [
        "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        "create Pod web-0 in StatefulSet web successful",
        "create Claim www-web-1 Pod web-1 in StatefulSet web success",
        "create Pod web-1 in StatefulSet web successful",
        "create Claim www-web-2 Pod web-2 in StatefulSet web success",
        "create Pod web-2 in StatefulSet web successful"]
    claim = cl.client.get("persistentvolumeclaims", "www-web-1", NS)
    assert claim["metadata"]["labels"] == {"app": "nginx"}
    assert "ownerReferences" not in claim["metadata"]  # Retain: nobody owns it
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    spec = cl.sts()["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}


def test_next_pod_waits_for_the_previous_one(cl: Cluster) -> None:
    cl.hold = {"web-0"}
    cl.client.create(web(replicas=3))
    cl.run()
    assert sorted(cl.pods()) == ["web-0"]
    cl.hold = set()
    cl.run()
    assert sorted(cl.pods()) == ["web-0", "web-1", "web-2"]


def test_parallel_creates_all_at_once(cl: Cluster) -> None:
    cl.hold = {"web-0", "web-1", "web-2"}
    cl.client.create(web(replicas=3, podManagementPolicy="Parallel"))
    cl.step()
    assert sorted(cl.pods()) == ["web-0", "web-1", "web-2"]


def test_scale_down_from_the_highest_ordinal_one_at_a_time(cl: Cluster) -> None:
    cl.client.create(web(replicas=4))
    cl.run()
    gone: list[str] = []

    def one_at_a_time(c: Cluster) -> None:
        live = c.pods()
        for n in ("web-3", "web-2", "web-1"):
            if n not in live and n not in gone:
                gone.append(n)
        terminating = [p for p in c.client.list("pods", NS) if p["metadata"].get("deletionTimestamp")]
        assert len(terminating) <= 1
    cl.observers.append(one_at_a_time)
    s = cl.sts()
    s["spec"]["replicas"] = 1
    cl.client.update(s)
    cl.run()
    assert sorted(cl.pods()) == ["web-0"]
    assert gone == ["web-3", "web-2", "web-1"]
    assert cl.events("SuccessfulDelete") == [
        f"delete Pod web-{i} in StatefulSet web successful" for i in (3, 2, 1)]


def test_deleted_pod_comes_back_with_its_name(cl: Cluster) -> None:
    cl.client.create(web(replicas=2))
    cl.run()
    uid = cl.pods()["web-0"]["metadata"]["uid"]
    cl.client.delete("pods", "web-0", NS)
    cl.run()
    pods = cl.pods()
    assert sorted(pods) == ["web-0", "web-1"]
    assert pods["web-0"]["metadata"]["uid"] != uid
    assert pods["web-0"]["spec"]["hostname"] == "web-0"


def test_rolling_update_from_the_top_waiting_for_ready(cl: Cluster) -> None:
    cl.client.create(web(replicas=3))
    cl.run()
    old_rev = cl.sts()["status"]["currentRevision"]

    def one_down(c: Cluster) -> None:
        pods = c.pods()
        assert sum(1 for p in pods.values() if _ready(p)) >= 2
    cl.observers.append(one_down)
    cl.set_image(V2)
    order: list[str] = []

    def updated_order(c: Cluster) -> None:
        for name, p in c.pods().items():
            if p["spec"]["containers"][0]["image"] == V2 and name not in order:
                order.append(name)
    cl.observers.append(updated_order)
    cl.run()
    assert order == ["web-2", "web-1", "web-0"]
    st = cl.sts()["status"]
    assert st["updateRevision"] != old_rev and st["currentRevision"] == st["updateRevision"]
    assert st["updatedReplicas"] == 3 and st["currentReplicas"] == 3
    assert len(cl.client.list("controllerrevisions", NS)) == 2


def test_partition_keeps_lower_ordinals_on_the_old_revision(cl: Cluster) -> None:
    cl.client.create(web(replicas=3, updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
    cl.run()
    cl.set_image(V2)
    cl.run()
    imgs = cl.images()
    assert imgs == {"web-0": V1, "web-1": V1, "web-2": V2}
    st = cl.sts()["status"]
    assert st["currentReplicas"] == 2 and st["updatedReplicas"] == 1
    assert st["currentRevision"] != st["updateRevision"]
    # a deleted pod below the partition comes back on the current (old) revision
    cl.client.delete("pods", "web-0", NS)
    cl.run()
    assert cl.pods()["web-0"]["spec"]["containers"][0]["image"] == V1


def test_rolling_update_stalls_on_an_unready_new_pod(cl: Cluster) -> None:
    cl.client.create(web(replicas=3))
    cl.run()
    cl.ready_images = {V1}
    cl.set_image(V2)
    cl.run()
    imgs = cl.images()
    assert imgs == {"web-0": V1, "web-1": V1, "web-2": V2}


def test_on_delete_uses_the_new_template_only_for_recreated_pods(cl: Cluster) -> None:
    cl.client.create(web(replicas=2, updateStrategy={"type": "OnDelete"}))
    cl.run()
    cl.set_image(V2)
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods().values()} == {V1}
    cl.client.delete("pods", "web-1", NS)
    cl.run()
    imgs = cl.images()
    assert imgs == {"web-0": V1, "web-1": V2}


def test_failed_pod_is_replaced(cl: Cluster) -> None:
    cl.client.create(web(replicas=1))
    cl.run()
    p = cl.pods()["web-0"]
    uid = p["metadata"]["uid"]
    p["status"]["phase"] = "Failed"
    cl.client.update_status(p)
    cl.run()
    assert cl.pods()["web-0"]["metadata"]["uid"] != uid


def test_headless_service_endpoints_carry_the_hostname(cl: Cluster) -> None:
    cl.client.create(NGINX_SVC)
    cl.client.create(web(replicas=2))
    cl.run()
    ec = EndpointsController(cl.client)
    for key in ec.all_keys():
        ec.reconcile(key)
    slices = cl.client.list("endpointslices", NS)
    hosts = sorted(ep.get("hostname") for sl in slices
                   if sl["metadata"]["labels"].get("kubernetes.io/service-name") == "nginx"
                   for ep in sl.get("endpoints") or [])
    assert hosts == ["web-0", "web-1"]


def test_rollout_status_history_and_undo_sts(cl: Cluster, capsys) -> None:
    from netsim.cli import rollout_cmds
    from netsim.cli.context import Ctx
    ctx = Ctx(cluster="nsj2", namespace=NS, all_namespaces=False, argv=["rollout"])
    ctx._client = cl.client
    cl.client.create(web(replicas=2))
    cl.run()
    assert rollout_cmds.run(ctx, ["status", "sts/web"]) == 0
    assert capsys.readouterr().out == "partitioned roll out complete: 2 new pods have been updated...\n"
    cl.set_image(V2)
    cl.ssc.reconcile(f"{NS}/web")
    assert rollout_cmds.run(ctx, ["status", "statefulset/web", "--watch=false"]) == 0
    assert capsys.readouterr().out == "Waiting for partitioned roll out to finish: 0 out of 2 " \
        "new pods have been updated...\n"
    cl.run()
    assert rollout_cmds.run(ctx, ["history", "sts/web"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "statefulset.apps/web ", "REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>", ""]
    assert rollout_cmds.run(ctx, ["undo", "sts/web", "--to-revision=1"]) == 0
    assert capsys.readouterr().out == "statefulset.apps/web rolled back\n"
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods().values()} == {V1}
    assert sorted(r["revision"] for r in cl.client.list("controllerrevisions", NS)) == [2, 3]


def test_get_and_describe_sts_as_kubectl(cl: Cluster) -> None:
    from netsim.api.printing import printers
    from netsim.api.printing.duration import rfc1123z
    cl.client.create(web(replicas=2))
    cl.run()
    s = cl.sts()
    now = created_plus(s, 45)
    assert printers.print_table("statefulsets", [s], now=now) == (
        "NAME   READY   AGE\n"
        "web    2/2     45s\n")
    assert printers.print_table("statefulsets", [s], now=now, wide=True) == (
        "NAME   READY   AGE   CONTAINERS   IMAGES\n"
        f"web    2/2     45s   nginx        {V1}\n")
    lines = cl.described("statefulsets", s, now)
    assert lines[:10] == [
        "Name:               web",
        "Namespace:          default",
        f"CreationTimestamp:  {rfc1123z(s['metadata']['creationTimestamp'])}",
        "Selector:           app=nginx",
        "Labels:             <none>",
        "Annotations:        <none>",
        "Replicas:           2 desired | 2 total",
        "Update Strategy:    RollingUpdate",
        "  Partition:        0",
        "Pods Status:        2 Running / 0 Waiting / 0 Succeeded / 0 Failed"]
    i = lines.index("Volume Claims:")
    assert [ln.rstrip() for ln in lines[i + 1:i + 7]] == [
        "  Name:          www",
        "  StorageClass:",
        "  Labels:        <none>",
        "  Annotations:   <none>",
        "  Capacity:      1Gi",
        "  Access Modes:  [ReadWriteOnce]"]
    assert any(ln.endswith("statefulset-controller  create Pod web-1 in StatefulSet web successful")
               for ln in lines)


def test_delete_pod_returns_when_the_statefulset_brings_it_back_by_name(cl: Cluster,
                                                                        capsys) -> None:
    """kubectl delete waits for the object it deleted (its uid), not for the name to be
    free: web-0 comes back at once under the same name."""
    import time

    from netsim.cli import apply
    from netsim.cli.context import Ctx
    cl.client.create(web(replicas=1))
    cl.run()
    ctx = Ctx(cluster="nsj2", namespace=NS, all_namespaces=False, argv=["delete"])

    class Recreating:
        def __getattr__(self, name):
            return getattr(cl.client, name)

        def delete(self, *args, **kwargs):
            out = cl.client.delete(*args[:3], grace_period_seconds=0)
            cl.run()  # the controller puts web-0 back
            return out
    ctx._client = Recreating()
    t0 = time.monotonic()
    assert apply.delete_named(ctx, "pod", ["web-0"], None, False, None, False) == 0
    assert time.monotonic() - t0 < 5
    assert capsys.readouterr().out == 'pod "web-0" deleted from default namespace\n'
    assert "web-0" in cl.pods()


def test_a_matching_pod_of_another_name_is_not_adopted(cl: Cluster) -> None:
    cl.client.create({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "stray", "namespace": NS, "labels": {"app": "nginx"}},
                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    cl.client.create(web(replicas=1))
    cl.run()
    assert "ownerReferences" not in cl.client.get("pods", "stray", NS)["metadata"]
    assert cl.sts()["status"]["replicas"] == 1


def test_bad_statefulsets_say_what_the_apiserver_says(cl: Cluster) -> None:
    from netsim.api import errors
    with pytest.raises(errors.Invalid, match='spec.podManagementPolicy: Unsupported value: '
                                             '"Serial": supported values: "OrderedReady", '
                                             '"Parallel"'):
        cl.client.create(web(podManagementPolicy="Serial"))
    cl.client.create(web())
    s = cl.sts()
    s["spec"]["serviceName"] = "other"
    with pytest.raises(errors.Invalid, match="spec: Forbidden: updates to statefulset spec for "
                                             "fields other than 'replicas', 'ordinals', "
                                             "'template', 'updateStrategy'"):
        cl.client.update(s)
    s = cl.sts()
    s["spec"]["replicas"] = 5
    s["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert cl.client.update(s)["spec"]["replicas"] == 5


def test_offline_build_runs_daemonsets_and_statefulsets() -> None:
    """netsim render's offline cluster: the web StatefulSet's pods and a DaemonSet's pods
    exist, bound and Ready, and the headless Service's slice names web-0 and web-1."""
    import yaml

    from netsim import offline
    from tests.e2e.test_daemonset_statefulset import FLUENTD, WEB
    objs = [d for d in yaml.safe_load_all(FLUENTD + "---\n" + WEB) if d]
    snap = offline.build(objs)
    pods = {p["metadata"]["name"]: p for p in snap.objects["pods"]}
    assert {"web-0", "web-1"} <= set(pods)
    ds_nodes = sorted(p["spec"]["nodeName"] for n, p in pods.items()
                      if n.startswith("fluentd-elasticsearch-"))
    assert ds_nodes == sorted(n["metadata"]["name"] for n in snap.objects["nodes"])
    hosts = sorted(ep.get("hostname") for sl in snap.objects["endpointslices"]
                   if sl["metadata"]["labels"].get("kubernetes.io/service-name") == "nginx"
                   for ep in sl.get("endpoints") or [])
    assert hosts == ["web-0", "web-1"]
