"""PATCH bodies over the API (in-process server, raw requests): JSON patch (RFC 6902) and
strategic merge patch as kube-apiserver answers them, good and bad; a refused patch
stores nothing."""

from __future__ import annotations

import json

import pytest

from tests.unit.kubectl_api import running_api

URL = "/api/v1/namespaces/default/configmaps/cfg"
JSON_PATCH = "application/json-patch+json"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        yield a


@pytest.fixture
def cm(api):
    api.call("DELETE", URL)
    code, obj = api.call("POST", "/api/v1/namespaces/default/configmaps",
                         {"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}})
    assert code == 201
    yield obj
    api.call("DELETE", URL)


def patch(api, body, ctype=JSON_PATCH):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.call("PATCH", URL, raw, ctype)


def test_json_patch_operations(api, cm):
    code, obj = patch(api, [{"op": "replace", "path": "/data/a", "value": "9"},
                            {"op": "remove", "path": "/data/b"},
                            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
                            {"op": "test", "path": "/data/a", "value": "9"}])
    assert code == 200
    assert obj["data"] == {"a": "9"} and obj["metadata"]["labels"] == {"x": "y"}


@pytest.mark.parametrize("ops", [
    [{"op": "replace", "path": "/data/nope/x", "value": "1"}],
    [{"op": "remove", "path": "/data/nope"}],
    [{"op": "test", "path": "/data/a", "value": "2"}],
    [{"op": "bogus", "path": "/data/a"}],
    [{"path": "/data/a"}],
    [{"op": "add", "path": "/data/c"}],
])
def test_a_json_patch_that_does_not_apply_is_422_and_stores_nothing(api, cm, ops):
    code, status = patch(api, ops + [{"op": "replace", "path": "/data/b", "value": "x"}])
    assert (code, status["reason"], status["message"]) == (
        422, "Invalid", "the server rejected our request due to an error in our request")
    assert api.call("GET", URL)[1]["metadata"]["resourceVersion"] == \
        cm["metadata"]["resourceVersion"]


@pytest.mark.parametrize("body,message", [
    (b"not json", "invalid JSON patch"),
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    (["x"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
])
def test_a_json_patch_that_is_no_patch_is_400(api, cm, body, message):
    code, status = patch(api, body)
    assert (code, status["reason"], status["message"]) == (400, "BadRequest", message)


def test_too_many_operations_are_413(api, cm):
    code, status = patch(api, [{"op": "test", "path": "/data/a", "value": "1"}] * 10001)
    assert code == 413
    assert status["message"] == ("The allowed maximum operations in a JSON patch is 10000, "
                                 "got 10001")


def test_a_patch_cannot_rename_the_object(api, cm):
    code, status = patch(api, [{"op": "replace", "path": "/metadata/name", "value": "other"}])
    assert (code, status["message"]) == (
        400, "the name of the object (other) does not match the name on the URL (cfg)")
    code, status = patch(api, {"metadata": {"name": "other"}}, SMP)
    assert code == 400


@pytest.mark.parametrize("body,message", [
    (b"{", "invalid JSON patch"),
    (b"[1]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    (b'"x"', "json: cannot unmarshal string into Go value of type map[string]interface {}"),
    (b'{"metadata": {"$setElementOrderX": []}}', "invalid patch format of setElementOrder list"),
])
def test_a_bad_strategic_patch_is_400(api, cm, body, message):
    code, status = patch(api, body, SMP)
    assert (code, status["reason"], status["message"]) == (400, "BadRequest", message)
    assert api.call("GET", URL)[1]["metadata"]["resourceVersion"] == \
        cm["metadata"]["resourceVersion"]


def test_strategic_patch_of_a_missing_object_is_404(api):
    code, status = api.call("PATCH", "/api/v1/namespaces/default/configmaps/none",
                            b'{"data": {"a": "1"}}', SMP)
    assert (code, status["message"]) == (404, 'configmaps "none" not found')


def test_force_is_for_apply_only(api, cm):
    code, status = api.call("PATCH", URL + "?force=true", b'{"data": {"a": "2"}}', SMP)
    assert (code, status["message"]) == (
        422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified '
             "for non-apply patch")
