"""PersistentVolumes, PersistentVolumeClaims and StorageClasses: kubectl's names, upstream's
defaults, validation in its words, the DefaultStorageClass admission and kubectl's tables."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from netsim.api import discovery, errors, resources
from netsim.api.printing.printers import print_table


def pvc(name="data", **spec) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            **spec}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def pv(name="pv1", **spec) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2Gi"},
            "hostPath": {"path": "/tmp/pv1"}, **spec}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": spec}


def sc(name="standard", default=True, **fields) -> dict:
    md = {"name": name}
    if default:
        md["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md,
            "provisioner": "rancher.io/local-path", **fields}


def refused(client, obj, code=422) -> str:
    with pytest.raises(errors.ApiError) as ei:
        client.create(copy.deepcopy(obj))
    assert ei.value.code == code, ei.value.message
    return ei.value.message


def test_names_kubectl_accepts():
    for name, plural, api, namespaced in (
            ("pvc", "persistentvolumeclaims", "v1", True),
            ("pv", "persistentvolumes", "v1", False),
            ("sc", "storageclasses", "storage.k8s.io/v1", False),
            ("storageclasses.storage.k8s.io", "storageclasses", "storage.k8s.io/v1", False)):
        r = resources.lookup(name)
        assert (r.plural, r.api_version, r.namespaced) == (plural, api, namespaced)


def test_discovery_lists_them_with_status():
    core = {r["name"]: r for r in discovery.resource_list("", "v1")["resources"]}
    assert core["persistentvolumeclaims"]["shortNames"] == ["pvc"]
    assert core["persistentvolumes"]["namespaced"] is False
    assert "persistentvolumeclaims/status" in core and "persistentvolumes/status" in core
    storage = discovery.resource_list("storage.k8s.io", "v1")["resources"]
    assert [r["name"] for r in storage] == ["storageclasses"]
    assert any(g["name"] == "storage.k8s.io" for g in discovery.api_group_list()["groups"])


def test_defaults_and_protection_finalizers(client):
    got = client.create(pvc())
    assert got["spec"]["volumeMode"] == "Filesystem"
    assert got["status"] == {"phase": "Pending"}
    assert got["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    got = client.create(pv())
    assert got["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert got["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    got = client.create(sc(default=False))
    assert (got["reclaimPolicy"], got["volumeBindingMode"]) == ("Delete", "Immediate")


def test_default_storage_class_admission(client):
    assert "storageClassName" not in client.create(pvc("before"))["spec"]
    client.create(sc())
    assert client.create(pvc("a"))["spec"]["storageClassName"] == "standard"
    # "" names no class on purpose: left as it is
    assert client.create(pvc("b", storageClassName=""))["spec"]["storageClassName"] == ""
    assert client.create(pvc("c", storageClassName="fast"))["spec"]["storageClassName"] == "fast"


def test_claim_validation_in_upstreams_words(client):
    bad = pvc()
    bad["spec"] = {"resources": {}}
    msg = refused(client, bad)
    assert msg == ('The PersistentVolumeClaim "data" is invalid: [spec.accessModes: Required '
                   "value: at least 1 access mode is required, spec.resources[storage]: "
                   "Required value]")
    msg = refused(client, pvc(accessModes=["ReadWriteSometimes"],
                              resources={"requests": {"storage": "0"}}))
    assert msg == ('The PersistentVolumeClaim "data" is invalid: [spec.accessModes: Unsupported '
                   'value: "ReadWriteSometimes": supported values: "ReadOnlyMany", '
                   '"ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod", '
                   'spec.resources[storage]: Invalid value: "0": must be greater than zero]')
    assert client.list("persistentvolumeclaims", "default") == []


def test_claim_spec_immutable_except_storage_when_bound(client):
    got = client.create(pvc(storageClassName="standard"))
    got["spec"]["storageClassName"] = "fast"
    with pytest.raises(errors.Invalid) as ei:
        client.update(got)
    assert ei.value.message.startswith(
        'The PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after '
        "creation except resources.requests and volumeAttributesClassName for bound claims\n")
    # the binder sets volumeName once
    cur = client.get("persistentvolumeclaims", "data", "default")
    cur["spec"]["volumeName"] = "pv1"
    cur = client.update(cur)
    cur["spec"]["volumeName"] = "pv2"
    with pytest.raises(errors.Invalid):
        client.update(cur)


def test_volume_validation(client):
    bad = pv()
    bad["spec"] = {"capacity": {"storage": "1Gi"}}
    assert refused(client, bad) == (
        'The PersistentVolume "pv1" is invalid: [spec.accessModes: Required value, '
        "spec: Required value: must specify a volume type]")
    msg = refused(client, pv(local={"path": "/x"}, hostPath=None))
    assert msg == ('The PersistentVolume "pv1" is invalid: spec.nodeAffinity: Required value: '
                   "Local volume requires node affinity")
    got = client.create(pv())
    got["spec"]["hostPath"] = {"path": "/elsewhere", "type": ""}
    with pytest.raises(errors.Invalid) as ei:
        client.update(got)
    assert "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable " \
           "after creation" in ei.value.message


def test_storage_class_validation(client):
    msg = refused(client, sc(provisioner="", reclaimPolicy="Recycle",
                             volumeBindingMode="Sometimes"))
    assert msg == ('The StorageClass "standard" is invalid: [provisioner: Required value, '
                   'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", '
                   '"Retain", volumeBindingMode: Unsupported value: "Sometimes": supported '
                   'values: "Immediate", "WaitForFirstConsumer"]')
    got = client.create(sc())
    got["provisioner"] = "example.com/other"
    with pytest.raises(errors.Invalid) as ei:
        client.update(got)
    assert ei.value.message == ('The StorageClass "standard" is invalid: provisioner: '
                                "Forbidden: updates to provisioner are forbidden.")


NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)
MADE = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _made(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["creationTimestamp"] = MADE
    return obj


def test_kubectl_tables():
    uid = "0c7d8a5e-1111-2222-3333-444455556666"
    bound = _made(pvc("www-web-0", storageClassName="standard", volumeName=f"pvc-{uid}",
                      volumeMode="Filesystem"))
    bound["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                       "capacity": {"storage": "1Gi"}}
    pending = _made(pvc("data", storageClassName="standard", volumeMode="Filesystem"))
    pending["status"] = {"phase": "Pending"}
    assert print_table("persistentvolumeclaims", [bound, pending], now=NOW).splitlines() == [
        "NAME        STATUS    VOLUME                                     CAPACITY   ACCESS MODES"
        "   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE",
        f"www-web-0   Bound     pvc-{uid}   1Gi        RWO            standard       <unset>    "
        "             5m",
        "data        Pending   " + " " * 43 + " " * 11 + " " * 15 + "standard       <unset>"
        "                 5m",
    ]
    vol = _made(pv(f"pvc-{uid}", storageClassName="standard", volumeMode="Filesystem",
                   persistentVolumeReclaimPolicy="Delete",
                   claimRef={"namespace": "default", "name": "www-web-0"}))
    vol["status"] = {"phase": "Bound"}
    assert print_table("persistentvolumes", [vol], now=NOW).splitlines() == [
        "NAME                                       CAPACITY   ACCESS MODES   RECLAIM POLICY   "
        "STATUS   CLAIM               STORAGECLASS   VOLUMEATTRIBUTESCLASS   REASON   AGE",
        f"pvc-{uid}   2Gi        RWO            Delete           Bound    default/www-web-0   "
        "standard       <unset>                          5m",
    ]
    classes = [_made(sc(reclaimPolicy="Delete", volumeBindingMode="WaitForFirstConsumer")),
               _made(sc("fast", default=False, allowVolumeExpansion=True))]
    assert print_table("storageclasses", classes, now=NOW).splitlines() == [
        "NAME                 PROVISIONER             RECLAIMPOLICY   VOLUMEBINDINGMODE      "
        "ALLOWVOLUMEEXPANSION   AGE",
        "standard (default)   rancher.io/local-path   Delete          WaitForFirstConsumer   "
        "false                  5m",
        "fast                 rancher.io/local-path   Delete          Immediate              "
        "true                   5m",
    ]


def test_protobuf_bodies_decode():
    from netsim.api import protobuf
    vol = pv(claimRef={"namespace": "default", "name": "data"},
             nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
                 {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}})
    msg = protobuf.message_for("v1", "PersistentVolume")
    assert protobuf.decode(protobuf.encode(vol, msg))["spec"] == vol["spec"]
    cls = sc(volumeBindingMode="WaitForFirstConsumer")
    msg = protobuf.message_for("storage.k8s.io/v1", "StorageClass")
    assert protobuf.decode(protobuf.encode(cls, msg)) == cls


def test_describe_in_kubectls_layout():
    from netsim.cli.describe_storage import describe_pv, describe_pvc, describe_sc
    uid = "0c7d8a5e-1111-2222-3333-444455556666"
    claim = _made(pvc("www-web-0", storageClassName="standard", volumeName=f"pvc-{uid}",
                      volumeMode="Filesystem"))
    claim["metadata"]["labels"] = {"app": "nginx"}
    claim["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
    claim["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                       "capacity": {"storage": "1Gi"}}
    user = {"metadata": {"name": "web-0"}, "spec": {"volumes": [
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}}]}}
    assert describe_pvc(claim, {"pods": [user], "events": []}, NOW).splitlines() == [
        "Name:          www-web-0",
        "Namespace:     default",
        "StorageClass:  standard",
        "Status:        Bound",
        f"Volume:        pvc-{uid}",
        "Labels:        app=nginx",
        "Annotations:   pv.kubernetes.io/bind-completed: yes",
        "Finalizers:    [kubernetes.io/pvc-protection]",
        "Capacity:      1Gi",
        "Access Modes:  RWO",
        "VolumeMode:    Filesystem",
        "Used By:       web-0",
        "Events:        <none>",
    ]
    vol = _made(pv(f"pvc-{uid}", storageClassName="standard", volumeMode="Filesystem",
                   persistentVolumeReclaimPolicy="Delete",
                   hostPath={"path": "/var/lib/netsim/x/local-path/p", "type": "DirectoryOrCreate"},
                   claimRef={"namespace": "default", "name": "www-web-0"},
                   nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
                       {"key": "kubernetes.io/hostname", "operator": "In",
                        "values": ["k8s-slave-172"]}]}]}}))
    vol["metadata"]["finalizers"] = ["kubernetes.io/pv-protection"]
    vol["status"] = {"phase": "Bound"}
    assert describe_pv(vol, {"events": []}, NOW).splitlines() == [
        f"Name:              pvc-{uid}",
        "Labels:            <none>",
        "Annotations:       <none>",
        "Finalizers:        [kubernetes.io/pv-protection]",
        "StorageClass:      standard",
        "Status:            Bound",
        "Claim:             default/www-web-0",
        "Reclaim Policy:    Delete",
        "Access Modes:      RWO",
        "VolumeMode:        Filesystem",
        "Capacity:          2Gi",
        "Node Affinity:     ",
        "  Required Terms:  ",
        "    Term 0:        kubernetes.io/hostname in [k8s-slave-172]",
        "Message:           ",
        "Source:",
        "    Type:          HostPath (bare host directory volume)",
        "    Path:          /var/lib/netsim/x/local-path/p",
        "    HostPathType:  DirectoryOrCreate",
        "Events:            <none>",
    ]
    cls = _made(sc(reclaimPolicy="Delete", volumeBindingMode="WaitForFirstConsumer"))
    assert describe_sc(cls, {"events": []}, NOW).splitlines() == [
        "Name:                  standard",
        "IsDefaultClass:        Yes",
        "Annotations:           storageclass.kubernetes.io/is-default-class=true",
        "Provisioner:           rancher.io/local-path",
        "Parameters:            <none>",
        "AllowVolumeExpansion:  <unset>",
        "MountOptions:          <none>",
        "ReclaimPolicy:         Delete",
        "VolumeBindingMode:     WaitForFirstConsumer",
        "Events:                <none>",
    ]
