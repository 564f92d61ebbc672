"""SelfSubjectAccessReview / SelfSubjectRulesReview (`kubectl auth can-i [--list]`): the
admin (system:masters) may do everything; a ServiceAccount only what upstream's default
roles give every authenticated user."""

from __future__ import annotations

import pytest

from netsim.api import authz, discovery, protobuf
from tests.unit.kubectl_api import requires_kubectl, running_api

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SA = {"username": "system:serviceaccount:default:robot",
      "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                 "system:authenticated"]}


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        yield a


def _review(**spec) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": spec}


def test_the_admin_may_create_deployments(api):
    code, out = api.call("POST", SSAR, _review(resourceAttributes={
        "namespace": "default", "verb": "create", "group": "apps", "resource": "deployments"}))
    assert code == 201, out
    assert out["status"] == {"allowed": True}
    assert out["spec"]["resourceAttributes"]["resource"] == "deployments"
    assert api.store.list("namespaces")[0]  # nothing else happened: reviews are not stored


def test_a_protobuf_review_is_answered_too(api):
    code, out = api.call("POST", SSAR, protobuf.encode(_review(nonResourceAttributes={
        "path": "/healthz", "verb": "get"})), protobuf.CONTENT_TYPE)
    assert (code, out["status"]) == (201, {"allowed": True})


def test_a_review_must_name_exactly_one_kind_of_attributes(api):
    code, out = api.call("POST", SSAR, _review())
    assert code == 422
    assert out["message"] == (
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
        "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must "
        "be specified")


def test_reviews_can_only_be_created(api):
    assert api.call("GET", SSAR)[0] == 405


def test_a_service_account_gets_only_the_default_roles():
    assert not authz.allowed(SA, {"verb": "create", "group": "apps", "resource": "deployments"})
    assert not authz.allowed(SA, {"verb": "list", "resource": "pods", "namespace": "default"})
    assert authz.allowed(SA, {"verb": "create", "group": "authorization.k8s.io",
                              "resource": "selfsubjectaccessreviews"})
    assert authz.allowed(SA, non_resource={"verb": "get", "path": "/apis/apps/v1"})
    assert authz.allowed(SA, non_resource={"verb": "get", "path": "/version"})
    assert not authz.allowed(SA, non_resource={"verb": "get", "path": "/metrics"})
    assert authz.allowed(authz.ADMIN, {"verb": "delete", "resource": "nodes"})


def test_discovery_lists_the_reviews_as_create_only():
    doc = discovery.document("/apis/authorization.k8s.io/v1")
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["selfsubjectaccessreviews"] == {
        "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
        "namespaced": False, "kind": "SelfSubjectAccessReview", "verbs": ["create"]}
    assert by_name["selfsubjectrulesreviews"]["verbs"] == ["create"]
    assert "authorization.k8s.io/v1" in [g["preferredVersion"]["groupVersion"]
                                         for g in discovery.api_group_list()["groups"]]


@requires_kubectl
def test_kubectl_auth_can_i(api):
    p = api.kubectl("auth", "can-i", "create", "deployments")
    assert (p.returncode, p.stdout) == (0, "yes\n"), p.stderr
    p = api.kubectl("auth", "can-i", "delete", "nodes", "--all-namespaces")
    assert (p.returncode, p.stdout) == (0, "yes\n"), p.stderr
    p = api.kubectl("auth", "can-i", "--list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names",
                                "Verbs"]
    assert lines[1].split() == ["*.*", "[]", "[]", "[*]"]
