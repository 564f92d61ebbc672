"""The /scale subresource of Deployments, ReplicaSets and StatefulSets: an autoscaling/v1
Scale read and written as upstream's, and `kubectl scale` through it."""

from __future__ import annotations

import json

import pytest

from netsim.api import discovery
from tests.unit.kubectl_api import requires_kubectl, running_api

URL = "/apis/apps/v1/namespaces/default/deployments/web/scale"


def _deploy(name="web", replicas=2) -> dict:
    labels = {"app": name, "tier": "fe"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "c", "image": "nginx"}]}}}}


@pytest.fixture
def api():
    with running_api() as a:
        a.store.create(_deploy())
        yield a


def test_get_scale_is_an_autoscaling_v1_scale(api):
    d = api.store.get("deployments", "web", "default")
    code, out = api.call("GET", URL)
    assert code == 200, out
    assert out == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "web", "namespace": "default",
                                "uid": d["metadata"]["uid"],
                                "resourceVersion": d["metadata"]["resourceVersion"],
                                "creationTimestamp": d["metadata"]["creationTimestamp"]},
                   "spec": {"replicas": 2}, "status": {"replicas": 0,
                                                        "selector": "app=web,tier=fe"}}


def test_merge_patch_sets_replicas_and_bumps_the_generation(api):
    code, out = api.call("PATCH", URL, json.dumps({"spec": {"replicas": 5}}).encode(),
                         "application/merge-patch+json")
    assert code == 200, out
    assert out["spec"] == {"replicas": 5}
    d = api.store.get("deployments", "web", "default")
    assert (d["spec"]["replicas"], d["metadata"]["generation"]) == (5, 2)


def test_put_with_a_stale_resource_version_is_a_conflict(api):
    code, scale = api.call("GET", URL)
    scale["spec"]["replicas"] = 4
    assert api.call("PUT", URL, scale)[0] == 200
    scale["spec"]["replicas"] = 6  # still the old resourceVersion
    code, out = api.call("PUT", URL, scale)
    assert code == 409
    assert out["message"] == ('Operation cannot be fulfilled on deployments.apps "web": the '
                              "object has been modified; please apply your changes to the "
                              "latest version and try again")
    assert api.store.get("deployments", "web", "default")["spec"]["replicas"] == 4


def test_negative_replicas_are_invalid_and_nothing_changes(api):
    code, out = api.call("PATCH", URL, b'{"spec":{"replicas":-1}}',
                         "application/merge-patch+json")
    assert code == 422
    assert out["message"] == ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid '
                              "value: -1: must be greater than or equal to 0")
    assert api.store.get("deployments", "web", "default")["spec"]["replicas"] == 2


def test_scale_of_a_missing_deployment_is_not_found(api):
    code, out = api.call("GET", URL.replace("/web/", "/nope/"))
    assert (code, out["message"]) == (404, 'deployments.apps "nope" not found')


def test_scale_to_zero_is_kept(api):
    api.call("PATCH", URL, b'{"spec":{"replicas":0}}', "application/merge-patch+json")
    assert api.store.get("deployments", "web", "default")["spec"]["replicas"] == 0
    assert api.call("GET", URL)[1]["spec"] == {}  # ScaleSpec.replicas is omitempty


def test_discovery_lists_scale_subresources():
    doc = discovery.document("/apis/apps/v1")
    entries = {r["name"]: r for r in doc["resources"]}
    for plural in ("deployments", "replicasets", "statefulsets"):
        assert entries[f"{plural}/scale"] == {
            "name": f"{plural}/scale", "singularName": "", "namespaced": True,
            "group": "autoscaling", "version": "v1", "kind": "Scale",
            "verbs": ["get", "patch", "update"]}


@requires_kubectl
def test_kubectl_scale(api):
    p = api.kubectl("-n", "default", "scale", "deploy/web", "--replicas=3")
    assert (p.returncode, p.stdout) == (0, "deployment.apps/web scaled\n"), p.stderr
    assert api.store.get("deployments", "web", "default")["spec"]["replicas"] == 3
    p = api.kubectl("-n", "default", "scale", "deploy/web", "--replicas=1",
                    "--current-replicas=2")
    assert p.returncode == 1
    assert "Expected replicas to be 2, was 3" in p.stderr
