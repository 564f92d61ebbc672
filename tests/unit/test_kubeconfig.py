"""The cluster's certificates and its kubeconfig entry: what kubectl trusts and reads.

No root, no cluster: certificates made in a temporary folder, kubeconfigs in temporary
files (never the real ~/.kube/config)."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netsim.cluster import kubeconfig, pki


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="netsim-pki-")
    return pki.create(d, ["127.0.0.1", "192.168.89.1", "10.96.0.1"])


def _cert(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.read(path))


def test_pki_files_are_root_only(certs):
    assert stat.S_IMODE(os.stat(certs.dir).st_mode) == 0o700
    for p in (certs.ca_crt, certs.ca_key, certs.server_crt, certs.server_key,
              certs.admin_crt, certs.admin_key):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert not [f for f in os.listdir(certs.dir) if f.endswith(".tmp")]


def test_server_cert_names_every_address_a_client_dials(certs):
    cert = _cert(certs.server_crt)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1", "192.168.89.1", "10.96.0.1"]
    assert san.get_values_for_type(x509.DNSName) == [
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local", "localhost"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_admin_cert_is_system_masters_signed_by_the_ca(certs):
    ca, admin = _cert(certs.ca_crt), _cert(certs.admin_crt)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == \
        "system:masters"
    admin.verify_directly_issued_by(ca)
    _cert(certs.server_crt).verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_default_path_is_kubeconfigs_first_file(monkeypatch):
    assert kubeconfig.default_path({"KUBECONFIG": f"/a/x{os.pathsep}/b/y"}) == "/a/x"
    assert kubeconfig.default_path({"KUBECONFIG": f"{os.pathsep}/b/y"}) == "/b/y"
    monkeypatch.setenv("HOME", "/home/someone")
    assert kubeconfig.default_path({}) == "/home/someone/.kube/config"


def _merge(path, name="c1", server="https://127.0.0.1:1234"):
    kubeconfig.merge(path, name, server, b"CA", b"CERT", b"KEY")


def test_merge_creates_a_private_file_with_current_context(tmp_path):
    path = str(tmp_path / "sub" / "config")
    _merge(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cfg = yaml.safe_load(open(path))
    assert cfg["current-context"] == "netsim-c1"
    assert cfg["clusters"] == [{"name": "netsim-c1", "cluster": {
        "server": "https://127.0.0.1:1234", "certificate-authority-data": "Q0E="}}]
    assert cfg["users"][0]["user"] == {"client-certificate-data": "Q0VSVA==",
                                       "client-key-data": "S0VZ"}
    assert cfg["contexts"] == [{"name": "netsim-c1",
                                "context": {"cluster": "netsim-c1", "user": "netsim-c1"}}]


def test_merge_and_remove_keep_other_entries(tmp_path):
    path = str(tmp_path / "config")
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "kind-x",
             "clusters": [{"name": "kind-x", "cluster": {"server": "https://1.2.3.4"}}],
             "users": [{"name": "kind-x", "user": {"token": "t"}}],
             "contexts": [{"name": "kind-x", "context": {"cluster": "kind-x", "user": "kind-x"}}],
             "preferences": {"colors": True}}
    with open(path, "w") as f:
        yaml.safe_dump(other, f)
    os.chmod(path, 0o640)
    _merge(path)
    _merge(path, server="https://127.0.0.1:999")  # a second up replaces, never duplicates
    _merge(path, name="c2")
    cfg = yaml.safe_load(open(path))
    assert [c["name"] for c in cfg["clusters"]] == ["kind-x", "netsim-c1", "netsim-c2"]
    assert cfg["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:999"
    assert cfg["current-context"] == "netsim-c2"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640  # an existing file keeps its mode
    assert kubeconfig.remove(path, "c2")
    cfg = yaml.safe_load(open(path))
    assert cfg["current-context"] == ""  # it named the removed context (kind does this)
    assert [c["name"] for c in cfg["contexts"]] == ["kind-x", "netsim-c1"]
    assert kubeconfig.remove(path, "c1")
    assert yaml.safe_load(open(path)) == {**other, "current-context": ""}
    assert not kubeconfig.remove(path, "c1")  # nothing left of it: the file is not rewritten
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".kubeconfig-")]


def test_remove_leaves_another_current_context(tmp_path):
    path = str(tmp_path / "config")
    _merge(path)
    cfg = yaml.safe_load(open(path))
    cfg["current-context"] = "elsewhere"
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    kubeconfig.remove(path, "c1")
    cfg = yaml.safe_load(open(path))
    assert cfg["current-context"] == "elsewhere" and cfg["clusters"] == []


def test_remove_of_a_missing_file_is_nothing(tmp_path):
    assert not kubeconfig.remove(str(tmp_path / "none"), "c1")
    assert not os.path.exists(tmp_path / "none")


def test_standalone_is_one_cluster():
    cfg = yaml.safe_load(kubeconfig.dump(kubeconfig.standalone("c1", "https://h:1", b"a", b"b", b"c")))
    assert cfg["current-context"] == "netsim-c1"
    assert len(cfg["clusters"]) == len(cfg["users"]) == len(cfg["contexts"]) == 1


def test_strings_kubectl_reads_as_booleans_stay_strings(tmp_path):
    path = str(tmp_path / "config")
    with open(path, "w") as f:
        f.write("contexts:\n- name: 'y'\n  context: {cluster: 'n', user: 'Y', namespace: 'yes'}\n")
    _merge(path)
    text = open(path).read()
    assert "name: 'y'" in text and "cluster: 'n'" in text and "user: 'Y'" in text
    assert "namespace: 'yes'" in text
    assert yaml.safe_load(text)["contexts"][0]["name"] == "y"
