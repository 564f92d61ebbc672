"""The real kubectl against a running cluster, for the protocol pieces of issue 11 that are
not reads: create verbs that send protobuf bodies, `auth can-i`, `scale` through /scale,
`delete --cascade=orphan|foreground`, and `get deploy,rs,po` printed as `netsim get` does."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import namespace_fixture, wait_for
from tests.e2e.kubectl_helpers import assert_same, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

NS = "kmisc"
ns = namespace_fixture(NS)


def _k(cluster, *args, check=True):
    return kubectl(cluster, "-n", NS, *args, check=check)


def _json(cluster, *args) -> dict:
    return json.loads(_k(cluster, "get", *args, "-o", "json").stdout)


def _tls_pair(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "tls.crt", tmp_path / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return str(crt), str(pem)


def test_create_verbs_send_protobuf_and_the_objects_are_right(cluster, ns, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("COLOR=blue\nSIZE=3\n")
    crt, key = _tls_pair(tmp_path)
    assert _k(cluster, "create", "configmap", "cfg", f"--from-env-file={env}").stdout == \
        "configmap/cfg created\n"
    assert _k(cluster, "create", "secret", "generic", "pw",
              "--from-literal=pw=s3cret").stdout == "secret/pw created\n"
    assert _k(cluster, "create", "secret", "tls", "web-tls", f"--cert={crt}",
              f"--key={key}").stdout == "secret/web-tls created\n"
    assert _json(cluster, "cm", "cfg")["data"] == {"COLOR": "blue", "SIZE": "3"}
    assert base64.b64decode(_json(cluster, "secret", "pw")["data"]["pw"]) == b"s3cret"
    tls = _json(cluster, "secret", "web-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert base64.b64decode(tls["data"]["tls.crt"]) == open(crt, "rb").read()
    assert _k(cluster, "create", "serviceaccount", "robot").stdout == \
        "serviceaccount/robot created\n"
    token = _k(cluster, "create", "token", "robot").stdout.strip()  # a TokenRequest
    assert token.count(".") == 2, token
    p = kubectl(cluster, "create", "namespace", "kmisc-two")
    try:
        assert p.stdout == "namespace/kmisc-two created\n"
        assert "kmisc-two" in kubectl(cluster, "get", "ns", "-o", "name").stdout
    finally:
        kubectl(cluster, "delete", "namespace", "kmisc-two", "--wait=false", check=False)


def test_auth_can_i(cluster):
    assert kubectl(cluster, "auth", "can-i", "create", "deployments").stdout == "yes\n"
    assert kubectl(cluster, "auth", "can-i", "delete", "nodes").stdout == "yes\n"


def test_scale_then_get_then_orphan(cluster, ns):
    _k(cluster, "create", "deployment", "web", "--image=netsim/echo:v1", "--replicas=1")
    try:
        assert _k(cluster, "scale", "deploy/web", "--replicas=3").stdout == \
            "deployment.apps/web scaled\n"
        cluster.wait_pods_ready(NS, "app=web", 3, timeout=90)
        assert_same(cluster, "get", "deploy,rs,po", "-n", NS)
        out = _k(cluster, "get", "deploy,rs,po").stdout
        assert "deployment.apps/web" in out and "\n\nNAME" in out
        (rs,) = _json(cluster, "rs", "-l", "app=web")["items"]
        pods = {p["metadata"]["name"] for p in _json(cluster, "po", "-l", "app=web")["items"]}
        assert _k(cluster, "delete", "deploy", "web", "--cascade=orphan").stdout == \
            f'deployment.apps "web" deleted from {NS} namespace\n'
        assert _k(cluster, "get", "deploy", "web", check=False).returncode == 1
        left = _json(cluster, "rs", rs["metadata"]["name"])
        assert "ownerReferences" not in left["metadata"]
        assert left["metadata"]["uid"] == rs["metadata"]["uid"]
        # the ReplicaSet keeps its pods (the same ones) and keeps them running
        cluster.wait_pods_ready(NS, "app=web", 3, timeout=30)
        assert {p["metadata"]["name"] for p in _json(cluster, "po", "-l", "app=web")["items"]} \
            == pods
    finally:
        _k(cluster, "delete", "deploy,rs", "-l", "app=web", "--ignore-not-found", check=False)


def test_foreground_deletion_waits_for_the_pods(cluster, ns):
    _k(cluster, "create", "deployment", "fg", "--image=netsim/echo:v1", "--replicas=2")
    cluster.wait_pods_ready(NS, "app=fg", 2, timeout=90)
    p = _k(cluster, "delete", "deploy", "fg", "--cascade=foreground", "--timeout=90s")
    assert p.stdout == f'deployment.apps "fg" deleted from {NS} namespace\n'
    # kubectl returned once the Deployment was gone: by then its pods and ReplicaSet were
    assert _json(cluster, "rs", "-l", "app=fg")["items"] == []
    assert _json(cluster, "po", "-l", "app=fg")["items"] == []


def test_background_is_the_default_and_the_collector_follows(cluster, ns):
    _k(cluster, "create", "deployment", "bg", "--image=netsim/echo:v1", "--replicas=1")
    cluster.wait_pods_ready(NS, "app=bg", 1, timeout=90)
    _k(cluster, "delete", "deploy", "bg")
    wait_for(lambda: not _json(cluster, "rs,po", "-l", "app=bg")["items"], timeout=60,
             what="the collector to remove bg's ReplicaSet and pod")
