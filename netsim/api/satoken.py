"""ServiceAccount tokens as kube-apiserver issues them: the TokenRequest subresource
(`POST .../serviceaccounts/<name>/token`, what `kubectl create token` and the kubelet's
projected volumes call), the JWTs it signs, and TokenReview.

The tokens are upstream's bound tokens (pkg/serviceaccount/claims.go): issuer and default
audience `https://kubernetes.default.svc.cluster.local`, iat/nbf/exp, a jti, subject
`system:serviceaccount:<ns>:<name>` and the private `kubernetes.io` claim naming the
namespace, the ServiceAccount and the object the token is bound to (a Pod, with its Node,
a Secret or a Node) with their uids. A token is valid while its ServiceAccount and bound
object still exist with those uids (the apiserver's legacy-free validator); deleting the pod
revokes it. Signed ES256 with the cluster's `sa.key` (netsim.cluster.pki); the key id is
upstream's: base64url(sha256(DER public key)).

`configure()` loads the keys once per process (the control plane); until then TokenRequest
answers 500 and no bearer token authenticates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization

from netsim.api import discovery, errors, routes
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339, rfc3339_seconds

ISSUER = "https://kubernetes.default.svc.cluster.local"
# Long-lived tokens in Secrets of type kubernetes.io/service-account-token (the tokens
# controller fills them; upstream's LegacyClaims): no audience, no expiry.
LEGACY_ISSUER = "kubernetes/serviceaccount"
SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
_LEGACY = "kubernetes.io/serviceaccount/"
API_AUDIENCES = [ISSUER]
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # "may not specify a duration less than 10 minutes"
MAX_EXPIRATION = (1 << 32) - 1  # math.MaxUint32
# The kubelet asks for 3607 s; the apiserver then issues a year-long token whose
# `warnafter` is the 3607 s it asked for (--service-account-extend-token-expiration).
WARN_ONLY_EXPIRATION = 3607
EXTENDED_EXPIRATION = 365 * 24 * 3600
_ALG = "ES256"
_GROUP_VERSION = "authentication.k8s.io/v1"


def username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass
class Issuer:
    """The signing key (None: verify only) and the public key with its key id."""

    private_key: object | None
    public_key: object
    kid: str

    @classmethod
    def from_files(cls, key_path: str | None, pub_path: str) -> Issuer:
        with open(pub_path, "rb") as f:
            pub = serialization.load_pem_public_key(f.read())
        priv = None
        if key_path:
            with open(key_path, "rb") as f:
                priv = serialization.load_pem_private_key(f.read(), None)
        return cls(priv, pub, key_id(pub))

    def sign(self, claims: dict) -> str:
        if self.private_key is None:
            raise errors.ApiError("no service account signing key")
        # go-jose's header: alg and kid, no typ
        return jwt.encode(claims, self.private_key, algorithm=_ALG,
                          headers={"kid": self.kid, "typ": None})

    def decode_legacy(self, token: str) -> dict:
        """A Secret-held token's verified claims (signature and issuer only)."""
        return jwt.decode(token, self.public_key, algorithms=[_ALG], issuer=LEGACY_ISSUER,
                          options={"verify_aud": False, "require": ["iss", "sub"]})

    def decode(self, token: str) -> dict:
        """The verified claims (signature, issuer, api audience, exp/nbf); raises
        jwt.InvalidTokenError."""
        return jwt.decode(token, self.public_key, algorithms=[_ALG], issuer=ISSUER,
                          audience=API_AUDIENCES, leeway=0,
                          options={"require": ["exp", "iat", "iss", "sub"]})


def key_id(public_key) -> str:
    """upstream keyIDFromPublicKey: base64url (no padding) of sha256 over the PKIX DER."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


_issuer: Issuer | None = None


def configure(issuer: Issuer | None) -> None:
    """Install (None: remove) this process's token issuer."""
    global _issuer
    _issuer = issuer
    _cache.clear()


def issuer() -> Issuer | None:
    return _issuer


# ---- issuing ---------------------------------------------------------------------------
def claims(sa: dict, expiration: int, audiences: list[str], *, pod: dict | None = None,
           node: dict | None = None, secret: dict | None = None, warn_after: int = 0,
           now: float | None = None) -> dict:
    """upstream serviceaccount.Claims: registered claims plus the `kubernetes.io` claim, in
    the order go-jose writes them (sorted keys)."""
    now = int(time.time() if now is None else now)
    md = sa["metadata"]
    k8s: dict = {"namespace": md["namespace"]}
    if node is not None:
        k8s["node"] = _ref(node)
    if pod is not None:
        k8s["pod"] = _ref(pod)
    if secret is not None:
        k8s["secret"] = _ref(secret)
    k8s["serviceaccount"] = _ref(sa)
    if warn_after:
        k8s["warnafter"] = now + warn_after
    return {"aud": list(audiences), "exp": now + expiration, "iat": now, "iss": ISSUER,
            "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "nbf": now,
            "sub": username(md["namespace"], md["name"])}


def legacy_claims(sa: dict, secret_name: str) -> dict:
    """upstream serviceaccount.LegacyClaims, keys sorted as go-jose writes them."""
    md = sa["metadata"]
    return {"iss": LEGACY_ISSUER, _LEGACY + "namespace": md["namespace"],
            _LEGACY + "secret.name": secret_name,
            _LEGACY + "service-account.name": md["name"],
            _LEGACY + "service-account.uid": md.get("uid", ""),
            "sub": username(md["namespace"], md["name"])}


def _ref(obj: dict) -> dict:
    return {"name": obj["metadata"]["name"], "uid": obj["metadata"].get("uid", "")}


def _get(store: Store, plural: str, name: str, ns: str | None) -> dict | None:
    try:
        return store.get(plural, name, ns)
    except errors.NotFound:
        return None


def _int(v, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise errors.BadRequest(f"json: cannot unmarshal {type(v).__name__} into Go struct "
                                f"field {path} of type int64")
    return v


def request_token(store: Store, namespace: str, name: str, body: dict,
                  now: float | None = None) -> dict:
    """The TokenRequest answer for ServiceAccount namespace/name (kube-apiserver's
    pkg/registry/core/serviceaccount/storage/token.go), raising its errors."""
    iss = _issuer
    if iss is None or iss.private_key is None:
        raise errors.ApiError("the server is not configured to issue service account tokens")
    sa = _get(store, "serviceaccounts", name, namespace)
    if sa is None:
        raise errors.not_found("serviceaccounts", name)
    spec = dict(body.get("spec") or {})
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise errors.BadRequest("json: cannot unmarshal into Go struct field "
                                "TokenRequestSpec.spec.audiences of type []string")
    exp = spec.get("expirationSeconds")
    exp = DEFAULT_EXPIRATION if exp is None else _int(exp, "TokenRequestSpec.spec.expirationSeconds")
    causes = []
    if exp < MIN_EXPIRATION:
        causes.append(f"spec.expirationSeconds: Invalid value: {exp}: may not specify a "
                      "duration less than 10 minutes")
    if exp > MAX_EXPIRATION:
        causes.append(f"spec.expirationSeconds: Too long: may not be more than "
                      f"{MAX_EXPIRATION} bytes")
    if causes:
        # NewInvalid's own message (no "The ": `kubectl create token` prints it as it is)
        detail = causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]"
        raise errors.Invalid(f'TokenRequest.authentication.k8s.io "{name}" is invalid: {detail}',
                             details={"name": name, "group": "authentication.k8s.io",
                                      "kind": "TokenRequest",
                                      "causes": [{"message": c} for c in causes]})
    pod = node = secret = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind, api = ref.get("kind") or "", ref.get("apiVersion") or ""
        rname, ruid = ref.get("name") or "", ref.get("uid") or ""
        group = api.rpartition("/")[0] if "/" in api else ""
        if group == "" and kind == "Pod":
            pod = _get(store, "pods", rname, namespace)
            if pod is None:
                raise errors.not_found("pods", rname)
            if (pod.get("spec") or {}).get("serviceAccountName", "default") != name:
                raise errors.BadRequest(f'cannot bind token for serviceaccount "{name}" to '
                                        "pod running with different serviceaccount name.")
            target = pod
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                node = _get(store, "nodes", node_name, None)
        elif group == "" and kind == "Secret":
            secret = target = _get(store, "secrets", rname, namespace)
            if secret is None:
                raise errors.not_found("secrets", rname)
        elif group == "" and kind == "Node":
            node = target = _get(store, "nodes", rname, None)
            if node is None:
                raise errors.not_found("nodes", rname)
        else:
            raise errors.BadRequest(f'cannot bind token for serviceaccount "{name}" to object '
                                    f'of kind "{kind}"')  # upstream: gvk, same meaning
        uid = target["metadata"].get("uid", "")
        if ruid and ruid != uid:
            raise errors.Conflict(
                f'Operation cannot be fulfilled on {kind} "{rname}": the UID in the bound '
                f"object reference ({ruid}) does not match the UID in record. The object "
                "might have been deleted and then recreated")
    warn_after, issued = 0, exp
    if pod is not None and exp == WARN_ONLY_EXPIRATION and \
            set(audiences) <= set(API_AUDIENCES):
        warn_after, issued = exp, EXTENDED_EXPIRATION
    t = time.time() if now is None else now
    token = iss.sign(claims(sa, issued, audiences, pod=pod, node=node, secret=secret,
                            warn_after=warn_after, now=t))
    spec_out = {"audiences": audiences, "expirationSeconds": exp,
                "boundObjectRef": ref or None}
    return {"kind": "TokenRequest", "apiVersion": _GROUP_VERSION,
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": spec_out,
            "status": {"token": token,
                       "expirationTimestamp": format_rfc3339(int(t) + exp)}}


# ---- validating ------------------------------------------------------------------------
# token -> (user, valid until (monotonic)): the apiserver caches token results too (10 s)
_CACHE_TTL = 10.0
_CACHE_MAX = 4096
_cache: dict[str, tuple[dict, float]] = {}
_cache_lock = threading.Lock()


def authenticate_token(store: Store, token: str) -> dict | None:
    """The user a ServiceAccount token stands for, or None (bad signature, wrong issuer or
    audience, expired, or its ServiceAccount or bound object gone or replaced)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(token)
    if hit and hit[1] > now:
        return hit[0]
    user = _validate(store, token)
    if user is not None:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[token] = (user, now + _CACHE_TTL)
    return user


def _validate(store: Store, token: str) -> dict | None:
    iss = _issuer
    if iss is None or token.count(".") != 2:
        return None
    try:
        c = iss.decode(token)
    except jwt.InvalidTokenError:
        return _validate_legacy(store, iss, token)
    k8s = c.get("kubernetes.io")
    if not isinstance(k8s, dict):
        return None
    ns = k8s.get("namespace")
    sa_ref = k8s.get("serviceaccount") or {}
    if not isinstance(ns, str) or not isinstance(sa_ref, dict) or \
            c.get("sub") != username(ns, str(sa_ref.get("name"))):
        return None
    if not _alive(store, "serviceaccounts", sa_ref, ns):
        return None
    extra = {"authentication.kubernetes.io/credential-id": [f"JTI={c.get('jti', '')}"]}
    for kind, plural, scoped in (("pod", "pods", True), ("secret", "secrets", True),
                                 ("node", "nodes", False)):
        ref = k8s.get(kind)
        if ref is None:
            continue
        if not isinstance(ref, dict) or not _alive(store, plural, ref, ns if scoped else None):
            return None
        if kind in ("pod", "node"):
            extra[f"authentication.kubernetes.io/{kind}-name"] = [ref.get("name")]
            extra[f"authentication.kubernetes.io/{kind}-uid"] = [ref.get("uid")]
    return {"username": c["sub"], "uid": sa_ref.get("uid", ""),
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                       "system:authenticated"],
            "extra": extra}


def _validate_legacy(store: Store, iss: Issuer, token: str) -> dict | None:
    """A Secret-held token: valid while its Secret holds exactly it and its ServiceAccount
    is the one it names (upstream's legacy validator)."""
    try:
        c = iss.decode_legacy(token)
    except jwt.InvalidTokenError:
        return None
    ns, secret_name = c.get(_LEGACY + "namespace"), c.get(_LEGACY + "secret.name")
    sa_name, sa_uid = c.get(_LEGACY + "service-account.name"), c.get(_LEGACY + "service-account.uid")
    if not all(isinstance(v, str) and v for v in (ns, secret_name, sa_name)) or \
            c.get("sub") != username(ns, sa_name):
        return None
    secret = _get(store, "secrets", secret_name, ns)
    if secret is None or secret["metadata"].get("deletionTimestamp"):
        return None
    held = (secret.get("data") or {}).get("token") or ""
    try:
        if base64.b64decode(held).decode() != token:
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    if not _alive(store, "serviceaccounts", {"name": sa_name, "uid": sa_uid}, ns):
        return None
    return {"username": c["sub"], "uid": sa_uid or "",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                       "system:authenticated"]}


def _alive(store: Store, plural: str, ref: dict, ns: str | None) -> bool:
    """The referenced object exists with the token's uid and is not past its deletion."""
    obj = _get(store, plural, str(ref.get("name")), ns)
    if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
        return False
    deleted = obj["metadata"].get("deletionTimestamp")
    if deleted and plural != "pods":
        return False
    if deleted:  # a pod is still itself until its deletion time has passed
        when = rfc3339_seconds(deleted)
        return when is None or when > time.time()
    return True


# ---- the API ---------------------------------------------------------------------------
def _body(req: routes.Request) -> dict:
    raw = req.body
    ctype = req.content_type()
    if ctype in routes.BODY_DECODERS:  # kubectl create token sends protobuf
        obj = routes.BODY_DECODERS[ctype](raw, req)
    elif not raw.strip():
        obj = {}
    else:
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise errors.BadRequest(f"the object provided is unrecognized (must be of type "
                                    f"TokenRequest): couldn't get version/kind; json parse "
                                    f"error: {e}") from e
    if not isinstance(obj, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type "
                                "TokenRequest)")
    return obj


@routes.subresource("serviceaccounts", "token")
def token_subresource(req: routes.Request) -> None:
    """POST .../serviceaccounts/<name>/token: 201 with the TokenRequest and its token."""
    if req.method != "POST" or not req.name:
        raise errors.method_not_allowed()
    out = request_token(req.store, req.namespace or "default", req.name, _body(req))
    req.handler._send(201, out)


def review(req: routes.Request) -> None:
    """TokenReview (create-only): whether spec.token authenticates, and as whom."""
    obj = _body(req)
    token = (obj.get("spec") or {}).get("token") or ""
    user = authenticate_token(req.store, token) if token else None
    status: dict = {"authenticated": True, "user": user,
                    "audiences": list(API_AUDIENCES)} if user else \
        {"user": {}, "error": "[invalid bearer token, service account token is not valid]"}
    md = dict(obj.get("metadata") or {})
    md.setdefault("creationTimestamp", None)
    req.handler._send(201, {"kind": "TokenReview", "apiVersion": _GROUP_VERSION,
                            "metadata": md, "spec": obj.get("spec") or {}, "status": status})


# ---- ServiceAccount issuer discovery (OIDC): verify tokens without asking the API ------
def _get_only(req: routes.Request) -> None:
    if req.method != "GET":
        raise errors.method_not_allowed()
    if _issuer is None:
        raise errors.NotFound("the server could not find the requested resource")


def openid_configuration(req: routes.Request) -> None:
    """GET /.well-known/openid-configuration, as kube-apiserver answers it (the JWKS URI on
    the address the client reached)."""
    _get_only(req)
    addr = req.handler._server_address() or "kubernetes.default.svc"
    doc = {"issuer": ISSUER, "jwks_uri": f"https://{addr}/openid/v1/jwks",
           "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
           "id_token_signing_alg_values_supported": [_ALG]}
    req.handler._send_raw(200, json.dumps(doc, separators=(",", ":")).encode())


def jwks(req: routes.Request) -> None:
    """GET /openid/v1/jwks: the signing key's public half (go-jose's field order)."""
    _get_only(req)
    pub = jwt.algorithms.ECAlgorithm.to_jwk(_issuer.public_key, as_dict=True)
    key = {"use": "sig", "kty": "EC", "kid": _issuer.kid, "crv": pub["crv"], "alg": _ALG,
           "x": pub["x"], "y": pub["y"]}
    req.handler._send_raw(200, json.dumps({"keys": [key]}, separators=(",", ":")).encode(),
                          content_type=b"application/jwk-set+json")


routes.PATHS["/.well-known/openid-configuration"] = openid_configuration
routes.PATHS["/openid/v1/jwks"] = jwks
routes.VIRTUAL["tokenreviews"] = review
discovery.SUBRESOURCE_ENTRIES.setdefault("serviceaccounts", []).append(
    {"name": "serviceaccounts/token", "group": "authentication.k8s.io", "version": "v1",
     "kind": "TokenRequest", "verbs": ["create"]})
