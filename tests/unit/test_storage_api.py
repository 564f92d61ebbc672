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
