"""The PersistentVolume controller (binder, protection, local-path provisioner) and the
scheduler's volume binding, on the in-process API, one reconcile at a time."""

from __future__ import annotations

import os

import pytest

from netsim.api.admission import admit
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.controllers import persistentvolume as pvmod
from netsim.controllers.persistentvolume import PersistentVolumeController
from netsim.controllers.scheduler import Scheduler

NS = "default"
NODES = ("k8s-master-171", "k8s-slave-172", "k8s-slave-173")


class Cluster:
    def __init__(self, root: str) -> None:
        self.store = Store(":memory:", admission=admit)
        self.store.bootstrap()
        self.client = LocalClient(self.store)
        self.ctrl = PersistentVolumeController(self.client)
        self.ctrl.root = root
        self.sched = Scheduler(self.client)
        for n in NODES:
            self.client.create({"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": n, "labels": {"kubernetes.io/hostname": n}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                           "allocatable": {"pods": "110", "cpu": "2", "memory": "4Gi"}}})
        pvmod.install(self.client, None)

    def sync(self, rounds: int = 4) -> None:
        for _ in range(rounds):
            for key in list(self.ctrl.all_keys()):
                self.ctrl.reconcile(key)

    def schedule(self) -> None:
        self.sched.reconcile("pending")

    def pvc(self, name: str = "data") -> dict:
        return self.client.get("persistentvolumeclaims", name, NS)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        return [(e["reason"], e["message"], e["source"]["component"])
                for e in self.client.list("events", NS)
                if e["involvedObject"]["name"] == name]


@pytest.fixture
def c(tmp_path):
    return Cluster(str(tmp_path / "local-path"))


def claim(name="data", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def pod(name="writer", claim_name="data", node=None) -> dict:
    spec = {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1d"],
                            "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim_name}}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": spec}


def test_default_class_waits_for_first_consumer_then_provisions(c, tmp_path):
    c.client.create(claim())
    c.sync()
    got = c.pvc()
    assert got["spec"]["storageClassName"] == "standard"
    assert got["status"]["phase"] == "Pending"
    assert ("WaitForFirstConsumer", "waiting for first consumer to be created before binding",
            "persistentvolume-controller") in c.events("data")
    c.client.create(pod(node="k8s-slave-173"))
    c.schedule()
    p = c.client.get("pods", "writer", NS)
    assert not p["spec"].get("nodeName")  # bound only once its claim is
    assert c.pvc()["metadata"]["annotations"][pvmod.SELECTED_NODE] == "k8s-slave-173"
    c.sync()
    got = c.pvc()
    uid = got["metadata"]["uid"]
    assert got["spec"]["volumeName"] == f"pvc-{uid}"
    assert got["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                             "capacity": {"storage": "1Gi"}}
    pv = c.client.get("persistentvolumes", f"pvc-{uid}")
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["claimRef"]["uid"] == uid
    path = pv["spec"]["hostPath"]["path"]
    assert path == str(tmp_path / "local-path" / f"pvc-{uid}_default_data")
    assert os.path.isdir(path)
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"][0]["values"] == ["k8s-slave-173"]
    reasons = [e[0] for e in c.events("data")]
    assert "Provisioning" in reasons and "ProvisioningSucceeded" in reasons
    assert ("ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}",
            pvmod.PROVISIONER_ID) in c.events("data")
    c.schedule()
    assert c.client.get("pods", "writer", NS)["spec"]["nodeName"] == "k8s-slave-173"


def test_a_new_pod_goes_where_the_volume_is(c):
    c.client.create(claim())
    c.client.create(pod(node="k8s-slave-172"))
    c.schedule()
    c.sync()
    c.schedule()
    c.client.delete("pods", "writer", NS, grace_period_seconds=0)
    # no nodeSelector this time: the volume's nodeAffinity alone decides
    c.client.create(pod("reader"))
    c.schedule()
    assert c.client.get("pods", "reader", NS)["spec"]["nodeName"] == "k8s-slave-172"


def test_missing_claim_is_the_schedulers_prefilter_message(c):
    c.client.create(pod(claim_name="nope"))
    c.schedule()
    p = c.client.get("pods", "writer", NS)
    cond = [x for x in p["status"]["conditions"] if x["type"] == "PodScheduled"][0]
    assert cond["message"] == ('0/3 nodes are available: persistentvolumeclaim "nope" not '
                               "found. preemption: 0/3 nodes are available: 3 Preemption is not "
                               "helpful for scheduling.")


def test_static_volume_binds_and_delete_reclaims(c, tmp_path):
    c.client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "small"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "512Mi"},
                              "storageClassName": "manual", "hostPath": {"path": "/tmp/s"}}})
    c.client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "big"},
                     "spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                              "capacity": {"storage": "5Gi"}, "storageClassName": "manual",
                              "hostPath": {"path": "/tmp/b"}}})
    c.sync()
    assert c.client.get("persistentvolumes", "big")["status"]["phase"] == "Available"
    c.client.create(claim(storageClassName="manual"))
    c.sync()
    assert c.pvc()["spec"]["volumeName"] == "big"
    assert c.pvc()["status"]["capacity"] == {"storage": "5Gi"}
    big = c.client.get("persistentvolumes", "big")
    assert (big["status"]["phase"], big["spec"]["claimRef"]["name"]) == ("Bound", "data")
    # a pod uses it: deleting the claim leaves it Terminating
    c.client.create(pod())
    c.client.delete("persistentvolumeclaims", "data", NS)
    c.sync()
    assert c.pvc()["metadata"].get("deletionTimestamp")
    c.client.delete("pods", "writer", NS, grace_period_seconds=0)
    c.sync()
    assert c.client.get_or_none("persistentvolumeclaims", "data", NS) is None
    # Retain (the default of a volume made by hand): Released, kept
    assert c.client.get("persistentvolumes", "big")["status"]["phase"] == "Released"


def test_deleting_a_provisioned_claim_deletes_volume_and_data(c):
    c.client.create(claim())
    c.client.create(pod(node="k8s-master-171"))
    c.schedule()
    c.sync()
    pv_name = c.pvc()["spec"]["volumeName"]
    path = c.client.get("persistentvolumes", pv_name)["spec"]["hostPath"]["path"]
    with open(os.path.join(path, "index.html"), "w") as f:
        f.write("hello\n")
    c.client.delete("pods", "writer", NS, grace_period_seconds=0)
    c.client.delete("persistentvolumeclaims", "data", NS)
    c.sync()
    assert c.client.get_or_none("persistentvolumeclaims", "data", NS) is None
    assert c.client.get_or_none("persistentvolumes", pv_name) is None
    assert not os.path.exists(path)


def test_no_class_and_no_volume(c):
    c.client.create(claim(storageClassName=""))
    c.sync()
    assert ("FailedBinding", "no persistent volumes available for this claim and no storage "
            "class is set", "persistentvolume-controller") in c.events("data")


def test_kubelet_binds_the_bound_volume_folder(c, tmp_path):
    from netsim.kubelet import volumes
    c.client.create(claim())
    p = pod()
    p["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "d", "mountPath": "/ro", "readOnly": True})
    c.client.create(p)
    p = c.client.get("pods", "writer", NS)
    with pytest.raises(volumes.MountError) as ei:
        volumes.claim_folders(p, c.client)
    assert str(ei.value) == ("Unable to attach or mount volumes: unmounted volumes=[d], "
                             "unattached volumes=[d], failed to process volumes=[d]: error "
                             "processing PVC default/data: PVC is not bound")
    c.schedule()
    c.sync()
    folders = volumes.claim_folders(p, c.client)
    path = c.client.get("persistentvolumes", c.pvc()["spec"]["volumeName"])["spec"][
        "hostPath"]["path"]
    assert folders == {"d": path}
    binds = volumes.container_binds(p, p["spec"]["containers"][0], str(tmp_path),
                                    lambda m: None, folders)
    assert [(b.src, b.dst, b.read_only) for b in binds] == [(path, "/data", False),
                                                            (path, "/ro", True)]


def test_a_volume_pre_bound_to_a_claim_waits_for_it(c):
    for name, ref in (("any", None), ("mine", {"name": "data", "namespace": NS})):
        spec = {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                "storageClassName": "manual", "hostPath": {"path": f"/tmp/{name}"}}
        if ref:
            spec["claimRef"] = ref
        c.client.create({"apiVersion": "v1", "kind": "PersistentVolume",
                         "metadata": {"name": name}, "spec": spec})
    c.sync()
    assert c.client.get("persistentvolumes", "mine")["status"]["phase"] == "Available"
    c.client.create(claim(storageClassName="manual"))
    c.sync()
    assert c.pvc()["spec"]["volumeName"] == "mine"
    assert c.client.get("persistentvolumes", "any")["status"]["phase"] == "Available"


def test_statefulset_retention_delete_claims_go_with_the_set(c):
    from netsim.controllers.gc import GarbageCollector
    from netsim.controllers.statefulset import StatefulSetController
    from tests.unit.test_statefulset_controller import web
    sts = web(replicas=1, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete",
                                                                 "whenScaled": "Retain"})
    c.client.create(sts)
    ssc = StatefulSetController(c.client)
    ssc.reconcile(f"{NS}/web")
    claim_ = c.pvc("www-web-0")
    assert [r["kind"] for r in claim_["metadata"]["ownerReferences"]] == ["StatefulSet"]
    c.client.delete("pods", "web-0", NS, grace_period_seconds=0)
    c.client.delete("statefulsets", "web", NS)
    gc = GarbageCollector(c.client)
    gc.sweep()
    c.sync()
    assert c.client.get_or_none("persistentvolumeclaims", "www-web-0", NS) is None
