"""Server-side apply and managedFields over the API (in-process server, raw requests): what
a client sees of `PATCH application/apply-patch+yaml` — a create when the object is missing,
re-applies that change nothing, fields dropped from the configuration pruned, conflicts with
other managers in the apiserver's words (409) unless forced, and the managedFields entries
ordinary writes leave."""

from __future__ import annotations

import copy
import json

import pytest

from tests.unit.kubectl_api import running_api

URL = "/apis/apps/v1/namespaces/default/deployments/web"
APPLY = "application/apply-patch+yaml"


def config(replicas: int = 2, labels: dict | None = None, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "ports": [{"containerPort": 80}]}]}}}}


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        yield a


@pytest.fixture
def clean(api):
    api.call("DELETE", URL)
    yield api
    api.call("DELETE", URL)


def apply(api, body: dict, manager: str = "kubectl", force: bool = False):
    q = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return api.call("PATCH", URL + q, json.dumps(body).encode(), APPLY)


def entries(obj: dict) -> dict:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def test_apply_creates_then_a_reapply_changes_nothing(clean):
    code, created = apply(clean, config())
    assert code == 201
    assert created["spec"]["replicas"] == 2
    e = entries(created)[("kubectl", "Apply")]
    assert e["apiVersion"] == "apps/v1" and e["fieldsType"] == "FieldsV1" and e["time"]
    assert e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
            'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}
    code, again = apply(clean, config())
    assert code == 200
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_a_field_dropped_from_the_configuration_goes(clean):
    apply(clean, config(labels={"app": "web", "tier": "front"}))
    code, obj = apply(clean, config(labels={"app": "web"}))
    assert code == 200 and obj["metadata"]["labels"] == {"app": "web"}


def test_a_dropped_field_another_manager_also_owns_stays(clean):
    apply(clean, config(labels={"app": "web", "tier": "front"}))
    apply(clean, config(labels={"app": "web", "tier": "front"}), manager="other")
    code, obj = apply(clean, config(labels={"app": "web"}))
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_a_conflict_is_409_in_the_apiservers_words_and_force_takes_the_field(clean):
    apply(clean, config(replicas=2))
    code, status = apply(clean, config(replicas=5), manager="other")
    assert code == 409, status
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl": ' \
                                ".spec.replicas"
    assert status["details"]["causes"] == [{"type": "FieldManagerConflict",
                                            "message": 'conflict with "kubectl"',
                                            "field": ".spec.replicas"}]
    assert clean.call("GET", URL)[1]["spec"]["replicas"] == 2  # nothing stored
    code, obj = apply(clean, config(replicas=5), manager="other", force=True)
    assert code == 200 and obj["spec"]["replicas"] == 5
    mine = entries(obj)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in mine
    assert "f:replicas" in entries(obj)[("other", "Apply")]["fieldsV1"]["f:spec"]


def test_the_same_value_is_shared_not_a_conflict(clean):
    apply(clean, config(replicas=2))
    code, obj = apply(clean, config(replicas=2), manager="other")
    assert code == 200


def test_conflicts_with_several_managers_are_listed_by_manager(clean):
    apply(clean, config(replicas=2))
    clean.call("PATCH", URL + "?fieldManager=kubectl-edit",
               json.dumps({"spec": {"template": {"spec": {"containers": [
                   {"name": "web", "image": "nginx:1.26"}]}}}}).encode(),
               "application/strategic-merge-patch+json")
    code, status = apply(clean, config(replicas=3, image="nginx:1.27"), manager="other")
    assert code == 409
    assert status["message"] == (
        "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .spec.replicas\n"
        "conflicts with \"kubectl-edit\" using apps/v1:\n"
        "- .spec.template.spec.containers[name=\"web\"].image")


def test_an_update_takes_the_fields_it_changes(clean):
    apply(clean, config(replicas=2))
    code, obj = clean.call("PATCH", URL + "?fieldManager=kubectl-patch",
                           b'{"spec":{"replicas":4}}', "application/merge-patch+json")
    assert code == 200
    e = entries(obj)
    assert e[("kubectl-patch", "Update")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in e[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
    code, status = apply(clean, config(replicas=2))
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "kubectl-patch" '
                                 "using apps/v1: .spec.replicas")


def test_kubectl_may_take_what_its_client_side_apply_set(clean):
    """A client-side-applied object moves to `apply --server-side` without conflicts on
    the fields its last-applied annotation holds at their live values; the annotation
    follows the new configuration."""
    body = config(replicas=2)
    last = copy.deepcopy(body)
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last)}
    code, _ = clean.call("POST", "/apis/apps/v1/namespaces/default/deployments"
                         "?fieldManager=kubectl-client-side-apply", body)
    assert code == 201
    code, status = apply(clean, config(replicas=3), manager="other")
    assert status["message"] == ('Apply failed with 1 conflict: conflict with '
                                 '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    code, obj = apply(clean, config(replicas=3))
    assert code == 200 and obj["spec"]["replicas"] == 3
    la = json.loads(obj["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert la["spec"]["replicas"] == 3


def test_apply_needs_a_field_manager(clean):
    code, status = clean.call("PATCH", URL, json.dumps(config()).encode(), APPLY)
    assert code == 422
    assert status["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                 "Required value: is required for apply requests")


def test_apply_of_another_version_is_refused(clean):
    body = config()
    body["apiVersion"] = "apps/v1beta1"
    code, status = apply(clean, body)
    assert (code, status["message"]) == (400, "Incorrect version specified in apply patch. "
                                               "Specified patch version: apps/v1beta1, "
                                               "expected: apps/v1")


def test_apply_with_managed_fields_is_refused(clean):
    body = config()
    body["metadata"]["managedFields"] = [{"manager": "x", "operation": "Apply"}]
    code, status = apply(clean, body)
    assert (code, status["message"]) == (400, "metadata.managedFields must be nil")


def test_a_body_that_is_no_yaml_is_refused(clean):
    code, status = clean.call("PATCH", URL + "?fieldManager=kubectl", b"a: [", APPLY)
    assert code == 400 and status["message"].startswith("error decoding patch: ")


def test_create_records_its_manager(clean):
    code, obj = clean.call("POST", "/apis/apps/v1/namespaces/default/deployments"
                           "?fieldManager=kubectl-create", config())
    e = entries(obj)[("kubectl-create", "Update")]
    assert e["apiVersion"] == "apps/v1"
    assert e["fieldsV1"]["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert "f:status" not in e["fieldsV1"]


def test_the_writer_owns_the_defaults_of_its_write(clean):
    """As on a real cluster: decoding defaults a create before the field manager sees it,
    so the creator owns progressDeadlineSeconds, the strategy, imagePullPolicy, ..."""
    code, obj = clean.call("POST", "/apis/apps/v1/namespaces/default/deployments"
                           "?fieldManager=kubectl-client-side-apply", config())
    f = entries(obj)[("kubectl-client-side-apply", "Update")]["fieldsV1"]["f:spec"]
    assert {"f:progressDeadlineSeconds", "f:revisionHistoryLimit", "f:strategy"} <= set(f)
    assert f["f:strategy"] == {"f:rollingUpdate": {"f:maxSurge": {}, "f:maxUnavailable": {}},
                               "f:type": {}}
    web = f["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert {"f:imagePullPolicy", "f:terminationMessagePath", "f:resources"} <= set(web)
    assert "f:creationTimestamp" not in f["f:template"]["f:metadata"]
    body = config()
    body["spec"]["strategy"] = {"type": "Recreate"}
    code, status = apply(clean, body, manager="other")
    assert code == 409
    assert status["message"] == ('Apply failed with 1 conflict: conflict with '
                                 '"kubectl-client-side-apply" using apps/v1: .spec.strategy.type')


@pytest.mark.parametrize("containers,message", [
    ([{"image": "x"}], '.spec.template.spec.containers: element 0: associative list with keys '
                       'has an element that omits all key fields ["name"] (and doesn\'t have '
                       "default values for any key fields)"),
    ([{"name": "web", "image": "x"}, {"name": "web", "image": "y"}],
     '.spec.template.spec.containers: duplicate entries for key [name="web"]'),
])
def test_an_applied_list_its_keys_cannot_name_is_refused(clean, containers, message):
    body = config()
    body["spec"]["template"]["spec"]["containers"] = containers
    code, status = apply(clean, body)
    assert (code, status["message"]) == (
        500, "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
             + message)
    assert clean.call("GET", URL)[0] == 404
