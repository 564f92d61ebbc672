"""Authentication on the HTTPS listener and ServiceAccount tokens, as a client sees them:
the admin certificate, `Authorization: Bearer` with a token from TokenRequest, 401
`Unauthorized` for no or bad credentials, upstream's bound-token claims, revocation when
the bound pod goes, and TokenRequest's errors in kube-apiserver's words."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request

import jwt
import pytest

from netsim.api import authn, satoken
from netsim.api.server import serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import pki

UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


@pytest.fixture(scope="module")
def api():
    d = tempfile.mkdtemp(prefix="netsim-authn-")
    certs = pki.create(d, ["127.0.0.1"])
    satoken.configure(satoken.Issuer.from_files(certs.sa_key, certs.sa_pub))
    store = Store()
    store.bootstrap()
    store.create({"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": "default", "namespace": "default"}})
    srv = serve_tls(store, "127.0.0.1", 0, tls_context(certs.server_crt, certs.server_key,
                                                       certs.ca_crt))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield store, srv, certs
    srv.shutdown()
    srv.server_close()
    store.close()
    satoken.configure(None)
    shutil.rmtree(d, ignore_errors=True)


def call(api, method, path, body=None, *, cert=True, token=None):
    """(status, decoded JSON body) of one request; cert: present the admin certificate."""
    _, srv, certs = api
    ctx = ssl.create_default_context(cafile=certs.ca_crt)
    if cert:
        ctx.load_cert_chain(certs.admin_crt, certs.admin_key)
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"https://127.0.0.1:{srv.server_address[1]}{path}",
                                 data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def token_for(api, sa="default", ns="default", **spec):
    code, out = call(api, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": spec})
    assert code == 201, out
    return out


def unverified(token: str) -> tuple[dict, dict]:
    head = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return head, jwt.decode(token, options={"verify_signature": False})


def test_no_credentials_is_401_unauthorized(api):
    for path in ("/api/v1/namespaces/default/pods", "/version", "/api"):
        assert call(api, "GET", path, cert=False) == (401, UNAUTHORIZED)


def test_the_admin_certificate_is_kubernetes_admin_in_system_masters():
    peer = {"subject": ((("organizationName", "system:masters"),),
                        (("commonName", "kubernetes-admin"),))}
    assert authn.cert_user(peer) == {"username": "kubernetes-admin", "uid": "",
                                     "groups": ["system:masters", "system:authenticated"]}
    assert authn.cert_user(None) is None and authn.cert_user({}) is None


def test_a_requested_token_authenticates_and_a_wrong_one_does_not(api):
    out = token_for(api)
    assert out["kind"] == "TokenRequest" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["spec"]["expirationSeconds"] == 3600
    assert out["spec"]["audiences"] == ["https://kubernetes.default.svc.cluster.local"]
    tok = out["status"]["token"]
    code, pods = call(api, "GET", "/api/v1/namespaces/default/pods", cert=False, token=tok)
    assert code == 200 and pods["kind"] == "PodList"
    bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    for wrong in (bad, "not-a-jwt", ""):
        assert call(api, "GET", "/api/v1/namespaces/default/pods", cert=False,
                    token=wrong) == (401, UNAUTHORIZED)


def test_token_claims_are_upstreams_bound_token(api):
    store, _, certs = api
    out = token_for(api)
    head, c = unverified(out["status"]["token"])
    pub = satoken.issuer().public_key
    assert head == {"alg": "ES256", "kid": satoken.key_id(pub)}
    sa = store.get("serviceaccounts", "default", "default")
    assert c["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert c["sub"] == "system:serviceaccount:default:default"
    assert c["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert c["exp"] - c["iat"] == 3600 and c["nbf"] == c["iat"]
    assert c["kubernetes.io"] == {"namespace": "default", "serviceaccount": {
        "name": "default", "uid": sa["metadata"]["uid"]}}
    assert list(c) == sorted(c)  # go-jose's key order
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c["iat"] + 3600))
    assert out["status"]["expirationTimestamp"] == exp


def test_a_pod_bound_token_dies_with_its_pod(api):
    store, _, _ = api
    pod = store.create({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "bound", "namespace": "default"},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "bound", "uid": pod["metadata"]["uid"]}
    out = token_for(api, expirationSeconds=3607, boundObjectRef=ref)
    assert out["spec"]["expirationSeconds"] == 3607
    _, c = unverified(out["status"]["token"])
    # the kubelet's 3607 s: a year-long token that says when to warn (extended expiration)
    assert c["exp"] - c["iat"] == 365 * 24 * 3600
    assert c["kubernetes.io"]["warnafter"] - c["iat"] == 3607
    assert c["kubernetes.io"]["pod"] == {"name": "bound", "uid": pod["metadata"]["uid"]}
    tok = out["status"]["token"]
    assert call(api, "GET", "/api/v1/namespaces/default/pods/bound", cert=False,
                token=tok)[0] == 200
    store.delete("pods", "bound", "default", 0)
    satoken._cache.clear()  # the apiserver's 10 s token cache, skipped
    assert call(api, "GET", "/api/v1/namespaces/default/pods", cert=False,
                token=tok) == (401, UNAUTHORIZED)


def test_token_request_errors_in_upstreams_words(api):
    code, out = call(api, "POST", "/api/v1/namespaces/default/serviceaccounts/nope/token", {})
    assert (code, out["message"]) == (404, 'serviceaccounts "nope" not found')
    code, out = call(api, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                     {"spec": {"expirationSeconds": 60}})
    assert code == 422
    assert out["message"] == ('TokenRequest.authentication.k8s.io "default" is invalid: '
                              "spec.expirationSeconds: Invalid value: 60: may not specify a "
                              "duration less than 10 minutes")
    assert out["details"]["kind"] == "TokenRequest"
    code, out = call(api, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                     {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                  "name": "ghost"}}})
    assert (code, out["message"]) == (404, 'pods "ghost" not found')
    code, out = call(api, "GET", "/api/v1/namespaces/default/serviceaccounts/default/token")
    assert code == 405


def test_a_token_of_another_issuer_is_refused(api):
    from cryptography.hazmat.primitives.asymmetric import ec
    store, _, _ = api
    sa = store.get("serviceaccounts", "default", "default")
    forged = jwt.encode(satoken.claims(sa, 3600, satoken.API_AUDIENCES),
                        ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    assert call(api, "GET", "/api/v1/pods", cert=False, token=forged)[0] == 401


def test_whoami_and_token_review(api):
    code, out = call(api, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert code == 201
    assert out["status"]["userInfo"] == {"username": "kubernetes-admin",
                                         "groups": ["system:masters", "system:authenticated"]}
    tok = token_for(api)["status"]["token"]
    code, out = call(api, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {},
                     cert=False, token=tok)
    info = out["status"]["userInfo"]
    assert (code, info["username"]) == (201, "system:serviceaccount:default:default")
    assert info["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                              "system:authenticated"]
    assert info["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    code, out = call(api, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                     {"spec": {"token": tok}})
    assert code == 201 and out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == "system:serviceaccount:default:default"
    code, out = call(api, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                     {"spec": {"token": "nope"}})
    assert code == 201 and "authenticated" not in out["status"]


def test_discovery_lists_the_token_subresource(api):
    code, doc = call(api, "GET", "/api/v1")
    entry = next(r for r in doc["resources"] if r["name"] == "serviceaccounts/token")
    assert entry == {"name": "serviceaccounts/token", "singularName": "", "namespaced": True,
                     "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
                     "verbs": ["create"]}


def test_issuer_discovery_lets_a_client_verify_tokens_itself(api):
    code, cfg = call(api, "GET", "/.well-known/openid-configuration")
    port = api[1].server_address[1]
    assert code == 200 and cfg == {
        "issuer": "https://kubernetes.default.svc.cluster.local",
        "jwks_uri": f"https://127.0.0.1:{port}/openid/v1/jwks",
        "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"]}
    code, keys = call(api, "GET", "/openid/v1/jwks")
    (key,) = keys["keys"]
    assert list(key) == ["use", "kty", "kid", "crv", "alg", "x", "y"]
    tok = token_for(api)["status"]["token"]
    pub = jwt.PyJWK(key).key
    claims = jwt.decode(tok, pub, algorithms=["ES256"], audience=cfg["issuer"],
                        issuer=cfg["issuer"])
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert call(api, "GET", "/openid/v1/jwks", cert=False)[0] == 401
