"""The cluster's certificates, made at `cluster up` the way kind's kubeadm makes them.

A CA (``kubernetes``), the API server's serving certificate (every name a client may dial:
127.0.0.1, the host's LAN address, the `kubernetes` Service's ClusterIP and DNS names,
localhost), the admin client certificate (``CN=kubernetes-admin, O=system:masters``)
kubectl presents, and the ServiceAccount token signing key pair (kubeadm's ``sa.key`` /
``sa.pub``) that signs and verifies the JWTs pods present as bearer tokens. All files are root's only (0600) in the cluster's 0700 state folder;
`cluster down` removes the folder.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PKI_DIR = "pki"
# kubeadm's defaults: the CA lives ten years, the leaf certificates one.
CA_DAYS = 3650
LEAF_DAYS = 365
ADMIN_CN, ADMIN_ORG = "kubernetes-admin", "system:masters"
SERVICE_DNS = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local", "localhost"]


@dataclass(frozen=True)
class Paths:
    """Where one cluster's PKI files are."""

    dir: str

    @property
    def ca_crt(self) -> str:
        return os.path.join(self.dir, "ca.crt")

    @property
    def ca_key(self) -> str:
        return os.path.join(self.dir, "ca.key")

    @property
    def server_crt(self) -> str:
        return os.path.join(self.dir, "apiserver.crt")

    @property
    def server_key(self) -> str:
        return os.path.join(self.dir, "apiserver.key")

    @property
    def admin_crt(self) -> str:
        return os.path.join(self.dir, "admin.crt")

    @property
    def admin_key(self) -> str:
        return os.path.join(self.dir, "admin.key")

    @property
    def sa_key(self) -> str:
        return os.path.join(self.dir, "sa.key")

    @property
    def sa_pub(self) -> str:
        return os.path.join(self.dir, "sa.pub")


def paths(state: str) -> Paths:
    return Paths(os.path.join(state, PKI_DIR))


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256: what kubeadm makes with --encryption-algorithm=ECDSA-P256; fast to generate
    # (RSA 2048 costs ~50 ms per key at every `cluster up`).
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else [])
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, key, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _leaf(subject: x509.Name, ca_cert: x509.Certificate, ca_key, usage, sans=None):
    key = _key()
    b = (_builder(subject, ca_cert.subject, key, LEAF_DAYS)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                      content_commitment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def server_sans(ips: list[str]) -> list[x509.GeneralName]:
    """The serving certificate's names: the given IPs (deduplicated, in order), then the
    `kubernetes` Service's DNS names."""
    seen: list[str] = []
    for ip in ips:
        if ip not in seen:
            seen.append(ip)
    return ([x509.IPAddress(ipaddress.ip_address(ip)) for ip in seen]
            + [x509.DNSName(n) for n in SERVICE_DNS])


def _write(path: str, data: bytes) -> None:
    """Write a file root alone may read (created 0600, never wider for a moment)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def create(state: str, ips: list[str]) -> Paths:
    """Make the CA, the serving certificate for `ips` (and the Service names) and the
    admin client certificate under `state`/pki (0700, files 0600)."""
    p = paths(state)
    os.makedirs(p.dir, mode=0o700, exist_ok=True)
    os.chmod(p.dir, 0o700)
    ca_key = _key()
    ca_name = _name("kubernetes")
    ca_cert = (_builder(ca_name, ca_name, ca_key, CA_DAYS)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                            content_commitment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    srv_cert, srv_key = _leaf(_name("kube-apiserver"), ca_cert, ca_key,
                              ExtendedKeyUsageOID.SERVER_AUTH, server_sans(ips))
    adm_cert, adm_key = _leaf(_name(ADMIN_CN, ADMIN_ORG), ca_cert, ca_key,
                              ExtendedKeyUsageOID.CLIENT_AUTH)
    _write(p.ca_key, _pem_key(ca_key))
    _write(p.ca_crt, _pem_cert(ca_cert))
    _write(p.server_key, _pem_key(srv_key))
    _write(p.server_crt, _pem_cert(srv_cert))
    _write(p.admin_key, _pem_key(adm_key))
    _write(p.admin_crt, _pem_cert(adm_cert))
    # ServiceAccount tokens: P-256 like the certificates (ES256 JWTs, as kubeadm's sa.key
    # is with --encryption-algorithm=ECDSA-P256)
    sa_key = _key()
    _write(p.sa_key, _pem_key(sa_key))
    _write(p.sa_pub, sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return p


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
