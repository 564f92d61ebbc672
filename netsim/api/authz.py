"""authorization.k8s.io/v1 SelfSubjectAccessReview and SelfSubjectRulesReview: `kubectl auth
can-i` (and `--list`) ask the server what the caller may do.

netsim authorizes as a kind cluster does for the users it has: the admin certificate's
group system:masters may do everything (kube-apiserver's privileged-group authorizer, first
in its chain: allowed, no reason). Anyone else (a ServiceAccount's token; the authentication
module sets `req.user`) holds only what upstream's default ClusterRoles give every
authenticated user: system:basic-user (create these reviews) and system:discovery /
system:public-info-viewer (GET the discovery and health paths). A request without a known
user is the admin's: the unix socket and the admin certificate.
"""

from __future__ import annotations

import fnmatch
import json

from netsim.api import errors, routes

GROUP = "authorization.k8s.io"
MASTERS = "system:masters"
ADMIN = {"username": "kubernetes-admin", "groups": [MASTERS, "system:authenticated"]}

# What system:masters holds (cluster-admin) and what every authenticated user holds
# (system:basic-user; system:discovery and system:public-info-viewer), as upstream's
# bootstrap policy writes them.
_ADMIN_RULES = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
_ADMIN_NON_RESOURCE = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
_BASIC_RULES = [
    {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
     "resources": ["selfsubjectreviews"]},
]
_BASIC_NON_RESOURCE = [
    {"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                                           "/livez", "/openapi", "/openapi/*", "/readyz",
                                           "/version", "/version/"]},
]


def user_of(req: routes.Request) -> dict:
    """Who sent the request (absent: the admin)."""
    return req.user if req.user and req.user.get("username") else ADMIN


def is_master(user: dict) -> bool:
    return MASTERS in (user.get("groups") or [])


def _matches(pattern_list: list[str], value: str) -> bool:
    return "*" in pattern_list or value in pattern_list


def allowed(user: dict, attrs: dict | None = None, non_resource: dict | None = None) -> bool:
    """Whether `user` may do what the review's attributes describe."""
    if is_master(user):
        return True
    if non_resource is not None:
        verb, path = non_resource.get("verb", ""), non_resource.get("path", "")
        return any(_matches(r["verbs"], verb) and any(
            fnmatch.fnmatchcase(path, p) if p.endswith("*") else path == p
            for p in r["nonResourceURLs"]) for r in _BASIC_NON_RESOURCE)
    attrs = attrs or {}
    resource = attrs.get("resource", "")
    if attrs.get("subresource"):
        resource += "/" + attrs["subresource"]
    return any(_matches(r["verbs"], attrs.get("verb", "")) and
               _matches(r["apiGroups"], attrs.get("group", "")) and
               _matches(r["resources"], resource) for r in _BASIC_RULES)


def _review_body(req: routes.Request) -> dict:
    """The posted review (JSON or protobuf), kind and apiVersion checked as for any object."""
    obj = req.handler._object(req.res, req.url_api)
    if not isinstance(obj.get("spec"), dict):
        obj["spec"] = {}
    return obj


def _invalid(kind: str, message: str) -> errors.Invalid:
    qual = f"{kind}.{GROUP}"
    return errors.Invalid(f'{qual} "" is invalid: {message}',
                          details={"group": GROUP, "kind": kind, "name": "",
                                   "causes": [{"message": message}]})


def _reply(req: routes.Request, obj: dict, status: dict) -> None:
    md = obj.get("metadata") or {}
    out = {"kind": obj["kind"], "apiVersion": obj["apiVersion"],
           "metadata": {k: v for k, v in md.items() if k in ("name", "labels", "annotations")},
           "spec": obj["spec"], "status": status}
    req.handler._send_raw(201, json.dumps(out, separators=(",", ":")).encode())


def self_subject_access_review(req: routes.Request) -> None:
    """POST selfsubjectaccessreviews: allowed or not, for the caller."""
    obj = _review_body(req)
    spec = obj["spec"]
    attrs, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if attrs is not None and non_res is not None:
        raise _invalid("SelfSubjectAccessReview", "spec.nonResourceAttributes: Invalid value: "
                       f"{_go_value(non_res)}: cannot be specified in combination with "
                       "resourceAttributes")
    if attrs is None and non_res is None:
        raise _invalid("SelfSubjectAccessReview", "spec.resourceAttributes: Invalid value: "
                       "null: exactly one of nonResourceAttributes or resourceAttributes "
                       "must be specified")
    ok = allowed(user_of(req), attrs, non_res)
    _reply(req, obj, {"allowed": True} if ok else {"allowed": False})


def self_subject_rules_review(req: routes.Request) -> None:
    """POST selfsubjectrulesreviews: the caller's rules in spec.namespace (`can-i --list`)."""
    obj = _review_body(req)
    user = user_of(req)
    rules, non_res = list(_BASIC_RULES), list(_BASIC_NON_RESOURCE)
    if is_master(user):
        rules, non_res = rules + _ADMIN_RULES, non_res + _ADMIN_NON_RESOURCE
    _reply(req, obj, {"resourceRules": rules, "nonResourceRules": non_res,
                      "incomplete": False})


def _go_value(v) -> str:
    """%v of a Go struct pointer in a field error, roughly: &{...}."""
    return "&{" + " ".join(str(x) for x in v.values()) + "}" if isinstance(v, dict) else str(v)


routes.VIRTUAL["selfsubjectaccessreviews"] = self_subject_access_review
routes.VIRTUAL["selfsubjectrulesreviews"] = self_subject_rules_review
