"""Who sent a request: kube-apiserver's authenticators for netsim's listeners.

On the HTTPS listeners, in the apiserver's order (the first that succeeds wins):

1. a client certificate the TLS handshake verified against the cluster CA: username = CN,
   groups = the O attributes (kubectl's admin cert: `kubernetes-admin`, `system:masters`);
2. `Authorization: Bearer <token>` holding a ServiceAccount token (netsim.api.satoken):
   `system:serviceaccount:<ns>:<name>`, groups `system:serviceaccounts` and
   `system:serviceaccounts:<ns>`.

Everyone authenticated also gets `system:authenticated`. A request with neither, or with a
token that does not verify, is answered 401 `Unauthorized` (kube-apiserver with
--anonymous-auth=false; kubectl then says `error: You must be logged in to the server
(Unauthorized)`). The unix socket is root's only (0600) and serves netsim's own processes
(kubelets, kube-proxies, the CLI): its requests are the apiserver's loopback identity.

Authorization stays kind's admin view: every authenticated user may do everything.
"""

from __future__ import annotations

import ssl

from netsim.api import errors, routes, satoken

AUTHENTICATED = "system:authenticated"
# The identity of requests over the unix socket (kube-apiserver's loopback client).
LOOPBACK = {"username": "system:apiserver", "uid": "", "groups": ["system:masters",
                                                                  AUTHENTICATED]}
_CERT_USER = "_netsim_cert_user"  # the connection's certificate user, computed once


class Unauthorized(errors.ApiError):
    code, reason = 401, "Unauthorized"


def cert_user(peer: dict | None) -> dict | None:
    """The user of a verified client certificate (ssl.getpeercert()'s dict), or None."""
    if not peer:
        return None
    cn, orgs = "", []
    for rdn in peer.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    if not cn:
        return None  # the x509 authenticator refuses a certificate without a CN
    return {"username": cn, "uid": "", "groups": orgs + [AUTHENTICATED]}


def bearer(headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header ("" for an empty one)."""
    auth = headers.get("authorization") if headers is not None else None
    if not auth:
        return None
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def authenticate(handler) -> dict:
    """The user of the request `handler` is serving; raises Unauthorized (401)."""
    conn = handler.connection
    if not isinstance(conn, ssl.SSLSocket):
        return LOOPBACK
    user = getattr(handler, _CERT_USER, False)
    if user is False:  # once per connection: the certificate cannot change on it
        try:
            user = cert_user(conn.getpeercert())
        except (ValueError, OSError):
            user = None
        setattr(handler, _CERT_USER, user)
    if user is not None:
        return user
    token = bearer(handler.headers)
    if token:
        user = satoken.authenticate_token(handler.server.store, token)
        if user is not None:
            return user
    raise Unauthorized("Unauthorized")


def user_info(user: dict) -> dict:
    """authentication.k8s.io/v1 UserInfo: username, uid, groups, extra (empty ones left out)."""
    return {k: user[k] for k in ("username", "uid", "groups", "extra") if user.get(k)}


def self_subject_review(req: routes.Request) -> None:
    """SelfSubjectReview (`kubectl auth whoami`): the caller as authentication saw it. The
    body carries nothing the answer needs (and may be protobuf): it is not decoded."""
    req.handler._send(201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                            "metadata": {"creationTimestamp": None},
                            "status": {"userInfo": user_info(req.user or LOOPBACK)}})


routes.VIRTUAL["selfsubjectreviews"] = self_subject_review

__all__ = ["authenticate", "cert_user", "bearer", "user_info", "Unauthorized", "LOOPBACK"]
