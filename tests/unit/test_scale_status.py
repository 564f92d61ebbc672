"""The /status subresource as upstream's: a write to /status changes only status; a write
to the object itself leaves status alone for kinds that have /status; kinds without one
have no /status path."""

from __future__ import annotations

import json

import pytest

from tests.unit.kubectl_api import running_api

URL = "/apis/apps/v1/namespaces/default/deployments/web"


@pytest.fixture
def api():
    with running_api() as a:
        labels = {"app": "web"}
        a.store.create({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                                 "template": {"metadata": {"labels": labels}, "spec": {
                                     "containers": [{"name": "c", "image": "nginx"}]}}}})
        yield a


def _merge(api, url, patch):
    return api.call("PATCH", url, json.dumps(patch).encode(), "application/merge-patch+json")


def test_a_status_patch_changes_only_status(api):
    code, out = _merge(api, URL + "/status", {"spec": {"replicas": 9},
                                              "metadata": {"labels": {"x": "y"}},
                                              "status": {"replicas": 2, "readyReplicas": 1}})
    assert code == 200, out
    d = api.store.get("deployments", "web", "default")
    assert d["status"] == {"replicas": 2, "readyReplicas": 1}
    assert d["spec"]["replicas"] == 2 and "labels" not in d["metadata"]
    assert d["metadata"]["generation"] == 1


def test_the_object_itself_ignores_status_even_when_it_has_none_yet(api):
    code, out = _merge(api, URL, {"status": {"replicas": 7}, "spec": {"replicas": 3}})
    assert code == 200, out
    d = api.store.get("deployments", "web", "default")
    assert "status" not in d and d["spec"]["replicas"] == 3
    _merge(api, URL + "/status", {"status": {"replicas": 2}})
    code, cur = api.call("GET", URL)
    cur["status"] = {"replicas": 99}
    cur["spec"]["replicas"] = 4
    assert api.call("PUT", URL, cur)[0] == 200
    d = api.store.get("deployments", "web", "default")
    assert (d["status"], d["spec"]["replicas"]) == ({"replicas": 2}, 4)


def test_a_kind_without_status_has_no_status_path(api):
    api.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "c", "namespace": "default"}})
    code, out = api.call("GET", "/api/v1/namespaces/default/configmaps/c/status")
    assert (code, out["message"]) == (404, "the server could not find the requested resource")


def test_a_created_workload_starts_without_the_status_it_was_posted_with(api):
    labels = {"app": "w2"}
    code, out = api.call("POST", "/apis/apps/v1/namespaces/default/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w2"},
        "spec": {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c",
                                                                     "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 3}})
    assert code == 201, out
    assert "status" not in out and "status" not in api.store.get("deployments", "w2", "default")
