"""ServiceAccounts as pods and clients meet them: the `default` ServiceAccount and the
`kube-root-ca.crt` ConfigMap in every namespace (kept there), and the ServiceAccount
admission on pod creation (default name, the kube-api-access volume and its mounts, the
refusal of a missing ServiceAccount in upstream's words, automount opt-outs)."""

from __future__ import annotations

import copy

import pytest

from netsim.api.admission import Admission
from netsim.api.client import LocalClient
from netsim.api.kinds import DEFAULT_KINDS
from netsim.api.kinds import serviceaccount as sa_admission
from netsim.api.store import Store
from netsim.controllers.serviceaccount import DESCRIPTION, ServiceAccountController
from tests.unit.apihelpers import container, pod, refused

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture
def store():
    s = Store(":memory:", admission=Admission(kinds=(*DEFAULT_KINDS, sa_admission)))
    s.bootstrap()
    yield s
    s.close()


@pytest.fixture
def client(store):
    return LocalClient(store)


def settle(client) -> ServiceAccountController:
    ctl = ServiceAccountController(client, root_ca=CA)
    for key in list(ctl.all_keys()):
        ctl.reconcile(key)
    return ctl


def test_every_namespace_gets_default_and_the_root_ca(client):
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    settle(client)
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "team"):
        assert client.get("serviceaccounts", "default", ns)["metadata"]["name"] == "default"
        cm = client.get("configmaps", "kube-root-ca.crt", ns)
        assert cm["data"] == {"ca.crt": CA}
        assert cm["metadata"]["annotations"] == {"kubernetes.io/description": DESCRIPTION}


def test_deleted_or_edited_they_come_back(client):
    ctl = settle(client)
    client.delete("serviceaccounts", "default", "default")
    cm = client.get("configmaps", "kube-root-ca.crt", "default")
    cm["data"] = {"ca.crt": "mine"}
    client.update(cm)
    ctl.reconcile("default")
    assert client.get("serviceaccounts", "default", "default")
    assert client.get("configmaps", "kube-root-ca.crt", "default")["data"] == {"ca.crt": CA}


def test_a_pod_gets_the_default_account_and_the_api_access_volume(client):
    settle(client)
    p = client.create(pod("web", initContainers=[container(name="init")],
                          containers=[container(), container(name="side")]))
    spec = p["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    (vol,) = spec["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == 21
    assert vol["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt",
                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1",
                                                 "fieldPath": "metadata.namespace"},
                                    "path": "namespace"}]}}]}
    for c in spec["initContainers"] + spec["containers"]:
        assert c["volumeMounts"] == [{"mountPath": MOUNT, "name": vol["name"],
                                      "readOnly": True}]


def test_a_missing_service_account_refuses_the_pod(client):
    settle(client)
    msg = refused(client, pod("x", serviceAccountName="foo"), 403)
    assert msg == ('pods "x" is forbidden: error looking up service account default/foo: '
                   'serviceaccount "foo" not found')
    gen = pod("x", serviceAccountName="foo")
    del gen["metadata"]["name"]
    gen["metadata"]["generateName"] = "web-7d4b9c-"
    assert refused(client, gen, 403).startswith('pods "web-7d4b9c-" is forbidden: ')


def test_automount_opt_outs_and_own_mounts(client):
    settle(client)
    p = client.create(pod("a", automountServiceAccountToken=False))
    assert "volumes" not in p["spec"] and "volumeMounts" not in p["spec"]["containers"][0]
    client.create({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "quiet", "namespace": "default"},
                   "automountServiceAccountToken": False})
    p = client.create(pod("b", serviceAccountName="quiet"))
    assert "volumes" not in p["spec"]
    # the pod's own word wins over its account's
    p = client.create(pod("c", serviceAccountName="quiet", automountServiceAccountToken=True))
    assert p["spec"]["volumes"][0]["name"].startswith("kube-api-access-")
    own = {"name": "own", "mountPath": MOUNT}
    p = client.create(pod("d", volumes=[{"name": "own", "emptyDir": {}}],
                          containers=[container(volumeMounts=[own])]))
    assert [v["name"] for v in p["spec"]["volumes"]] == ["own"]
    assert p["spec"]["containers"][0]["volumeMounts"] == [own]


def test_updates_are_left_alone(client):
    settle(client)
    p = client.create(pod("u"))
    p["metadata"]["labels"] = {"x": "y"}
    assert client.update(p)["spec"]["volumes"] == p["spec"]["volumes"]


def test_an_update_that_leaves_the_api_access_out_keeps_it(client):
    settle(client)
    p = client.create(pod("k"))
    again = copy.deepcopy(p)  # lists replaced whole by the manifest's (netsim apply)
    again["spec"]["containers"] = pod("k")["spec"]["containers"]
    for key in ("volumes", "serviceAccountName", "serviceAccount"):
        del again["spec"][key]
    again["metadata"]["labels"] = {"x": "y"}
    out = client.update(again)
    assert out["spec"]["volumes"] == p["spec"]["volumes"]
    assert out["spec"]["containers"][0]["volumeMounts"] == \
        p["spec"]["containers"][0]["volumeMounts"]
    assert out["spec"]["serviceAccountName"] == "default"


def test_get_sa_columns_are_kubectls(client):
    from netsim.api import tables
    settle(client)
    t = tables.table("serviceaccounts", client.list("serviceaccounts", "default"), "1")
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Secrets", "Age"]
    assert t["rows"][0]["cells"][:2] == ["default", "0"]


@pytest.fixture
def issuer(tmp_path):
    from netsim.api import satoken
    from netsim.cluster import pki
    certs = pki.create(str(tmp_path), ["127.0.0.1"])
    satoken.configure(satoken.Issuer.from_files(certs.sa_key, certs.sa_pub))
    yield satoken
    satoken.configure(None)


def test_a_token_secret_gets_a_long_lived_token(client, store, issuer):
    import base64
    settle(client)
    msg = refused(client, {"apiVersion": "v1", "kind": "Secret", "type":
                           "kubernetes.io/service-account-token",
                           "metadata": {"name": "t", "namespace": "default"}})
    assert msg == ('The Secret "t" is invalid: metadata.annotations'
                   "[kubernetes.io/service-account.name]: Required value")
    client.create({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "build-robot", "namespace": "default"}})
    client.create({"apiVersion": "v1", "kind": "Secret",
                   "type": "kubernetes.io/service-account-token",
                   "metadata": {"name": "build-robot-secret", "namespace": "default",
                                "annotations": {
                                    "kubernetes.io/service-account.name": "build-robot"}}})
    settle(client)
    sec = client.get("secrets", "build-robot-secret", "default")
    data = {k: base64.b64decode(v).decode() for k, v in sec["data"].items()}
    assert data["ca.crt"] == CA and data["namespace"] == "default"
    sa = client.get("serviceaccounts", "build-robot", "default")
    assert sec["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == \
        sa["metadata"]["uid"]
    user = issuer.authenticate_token(store, data["token"])
    assert user["username"] == "system:serviceaccount:default:build-robot"
    rv = sec["metadata"]["resourceVersion"]
    settle(client)  # level-triggered: nothing to write the second time
    assert client.get("secrets", "build-robot-secret", "default")["metadata"][
        "resourceVersion"] == rv
    client.delete("secrets", "build-robot-secret", "default")
    issuer._cache.clear()
    assert issuer.authenticate_token(store, data["token"]) is None
