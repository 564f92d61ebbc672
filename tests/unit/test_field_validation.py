"""fieldValidation=Strict|Warn|Ignore on POST, PUT and PATCH: unknown and duplicate fields in
the apiserver's words (sigs.k8s.io/json's paths), 400/422 and nothing stored for Strict,
`Warning: 299 - "..."` headers for Warn (the default), unknown fields dropped as Go's
decoding drops them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading

import pytest

from netsim.api import fieldvalidation as fv
from netsim.api.admission import admit
from netsim.api.server import serve
from netsim.api.store import Store
from tests.unit.kubectl_api import _UnixConnection


@pytest.fixture
def api():
    d = tempfile.mkdtemp(prefix="netsim-fv-")
    store = Store(":memory:", admission=admit)
    store.bootstrap()
    srv = serve(store, os.path.join(d, "api.sock"))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()

    def call(method: str, url: str, body: str | dict | None = None,
             ctype: str = "application/json"):
        if isinstance(body, dict):
            body = json.dumps(body)
        c = _UnixConnection(os.path.join(d, "api.sock"))
        c.request(method, url, body=body.encode() if body is not None else None,
                  headers={"Content-Type": ctype} if body is not None else {})
        r = c.getresponse()
        data = json.loads(r.read() or b"null")
        c.close()
        return r.status, data, [v for k, v in r.getheaders() if k.lower() == "warning"]
    call.store = store
    yield call
    srv.shutdown()
    srv.server_close()
    store.close()
    shutil.rmtree(d, ignore_errors=True)


DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name="web", **spec_extra) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec_extra,
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{"name": "web", "image": "nginx",
                                         "imagePullPolicyy": "Always"}]}}}}


def test_strict_create_refuses_unknown_fields_in_kubectls_words_and_stores_nothing(api):
    status, body, _ = api("POST", DEPLOYS + "?fieldValidation=Strict", deployment(replicass=2))
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicass", unknown field '
        '"spec.template.spec.containers[0].imagePullPolicyy"')
    assert api("GET", DEPLOYS + "/web")[0] == 404


def test_duplicate_keys_are_found_in_the_raw_body_in_document_order(api):
    raw = ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"1",'
           '"a":"2"},"name":"c"},"data":{"k":"v"},"bogus":{"x":1},"data":{"k":"w"}}')
    status, body, _ = api("POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
                          raw)
    assert status == 400
    assert body["message"].endswith(
        'strict decoding error: duplicate field "metadata.labels.a", duplicate field '
        '"metadata.name", unknown field "bogus", duplicate field "data"')


def test_a_repeated_key_alone_is_found_on_create_and_update(api):
    # No unknown field: the body's parse alone tells that a key came twice.
    cms = "/api/v1/namespaces/default/configmaps"
    status, _, warnings = api("POST", cms, '{"metadata":{"name":"c"},"data":{"k":"v","k":"w"}}')
    assert status == 201 and warnings == ['299 - "duplicate field \\"data.k\\""']
    cur = api("GET", cms + "/c")[1]
    assert cur["data"] == {"k": "w"}  # the last one wins, as Go's decoder has it
    body = json.dumps(cur)[:-1] + ',"data":{"k":"x"}}'
    status, body, _ = api("PUT", cms + "/c?fieldValidation=Strict", body)
    assert status == 400 and body["message"].endswith('strict decoding error: duplicate field "data"')
    status, _, warnings = api("PUT", cms + "/c", json.dumps(cur))
    assert status == 200 and warnings == []


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
     "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
     "spec": {"containers": [{"name": "c", "image": "i", "portz": []}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"x": "y"}},
     "spec": {"containers": [], "nodeSelector": {"k": "v"}}, "statuss": {}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labelz": {}},
     "data": {"a": "b"}},
])
def test_the_quick_unknown_check_agrees_with_the_walk(obj):
    from netsim.api.openapi import schema
    node = schema.resolve(obj["apiVersion"], obj["kind"])
    walked = fv._Errors()
    fv._walk(obj, node, "", walked, False, False)
    assert fv._has_unknown(obj, node) == bool(walked)
    assert fv.errors_for(obj, obj["apiVersion"], obj["kind"], repeats=False) == list(walked)


def test_warn_is_the_default_and_drops_the_unknown_fields(api):
    status, body, warnings = api("POST", DEPLOYS, deployment(replicass=2))
    assert status == 201
    assert warnings == ['299 - "unknown field \\"spec.replicass\\""',
                        '299 - "unknown field \\"spec.template.spec.containers[0].'
                        'imagePullPolicyy\\""']
    assert "replicass" not in body["spec"]
    assert "imagePullPolicyy" not in body["spec"]["template"]["spec"]["containers"][0]
    stored = api("GET", DEPLOYS + "/web")[1]
    assert "replicass" not in stored["spec"] and stored["spec"]["replicas"] == 1


def test_ignore_says_nothing_and_drops_them_too(api):
    status, body, warnings = api("POST", DEPLOYS + "?fieldValidation=Ignore",
                                 deployment(replicass=2))
    assert (status, warnings) == (201, [])
    assert "replicass" not in body["spec"]


def test_an_unknown_directive_is_refused_as_the_options_are(api):
    status, body, _ = api("POST", DEPLOYS + "?fieldValidation=strict", deployment())
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == ('CreateOptions.meta.k8s.io "" is invalid: fieldValidation: '
                               'Unsupported value: "strict": supported values: "", "Ignore", '
                               '"Strict", "Warn"')


def test_strict_update_refuses_and_keeps_the_stored_object(api):
    api("POST", DEPLOYS, deployment())
    cur = api("GET", DEPLOYS + "/web")[1]
    cur["spec"]["replicas"] = 5
    cur["spec"]["pausedd"] = True
    status, body, _ = api("PUT", DEPLOYS + "/web?fieldValidation=Strict", cur)
    assert status == 400 and body["message"].endswith(
        'strict decoding error: unknown field "spec.pausedd"')
    assert api("GET", DEPLOYS + "/web")[1]["spec"]["replicas"] == 1


def test_a_merge_patch_is_checked_on_the_patched_object(api):
    api("POST", DEPLOYS, deployment())
    status, body, _ = api("PATCH", DEPLOYS + "/web?fieldValidation=Strict",
                          {"spec": {"replicas": 3, "foo": 1}}, "application/merge-patch+json")
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: "{\\"apiVersion')
    assert body["message"].endswith('": strict decoding error: unknown field "spec.foo"')
    assert body["details"]["causes"][0]["field"] == "patch"
    assert api("GET", DEPLOYS + "/web")[1]["spec"]["replicas"] == 1
    status, body, warnings = api("PATCH", DEPLOYS + "/web", {"spec": {"replicas": 3, "foo": 1}},
                                 "application/merge-patch+json")
    assert status == 200 and warnings == ['299 - "unknown field \\"spec.foo\\""']
    assert body["spec"]["replicas"] == 3 and "foo" not in body["spec"]


def test_a_patchs_own_repeated_keys_come_first():
    assert fv.patch_repeats(b'{"spec":{"replicas":1,"replicas":2}}',
                            "application/merge-patch+json") == ['duplicate field "spec.replicas"']
    assert fv.patch_repeats(b'[{"op":"add","path":"/a","valu":1}]',
                            "application/json-patch+json") == [
        'json patch unknown field "[0].valu"']
    assert fv.patch_repeats(b'{"a":1}', "application/merge-patch+json") == []


def test_strategic_patch_errors_show_the_patch_as_go_prints_a_map():
    cur = deployment()
    cur.update(metadata={"name": "web", "namespace": "default"})

    def smp(c):  # what the strategic merge would give: here, the patch's fields added
        c["spec"]["foo"] = {"b": [1, 2.5], "a": True}
        return c
    raw = b'{"spec":{"foo":{"b":[1,2.5],"a":true}}}'
    fn = fv.checked(smp, raw, fv.STRATEGIC, fv.STRICT, [])
    with pytest.raises(fv.errors.Invalid) as e:
        fn(cur)
    assert e.value.message == (' "" is invalid: patch: Invalid value: "map[spec:map[foo:map[a:true '
                               'b:[1 2.5]]]]": strict decoding error: unknown field "spec.foo", '
                               'unknown field "spec.template.spec.containers[0].imagePullPolicyy"')


def test_free_form_fields_and_maps_take_any_key():
    cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {
        "name": "r", "labels": {"anything": "x"}, "annotations": {"a.b/c": "d"},
        "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:x": {}}}}]},
        "revision": 1, "data": {"spec": {"whatever": {"deep": 1}}}}
    assert fv.errors_for(cr, "apps/v1", "ControllerRevision") == []
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "image": "i", "resources": {"limits": {"cpu": "1"}},
                        "ports": [{"containerPort": 80, "hostPortt": 1}]}]}}
    assert fv.errors_for(pod, "v1", "Pod") == [
        'unknown field "spec.containers[0].ports[0].hostPortt"']
    # an old version netsim converts has no schema here: nothing to say
    assert fv.errors_for({"spec": {"backend": {"serviceName": "s"}}}, "extensions/v1beta1",
                         "Ingress") == []


def test_server_side_applys_typed_conversion_words():
    body = deployment(replicass=2)
    assert fv.typed_patch_errors(body, "apps/v1", "Deployment") == (
        "failed to create typed patch object (/web; apps/v1, Kind=Deployment): errors:\n"
        "  .spec.replicass: field not declared in schema\n"
        '  .spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared in '
        "schema")
    del body["spec"]["replicass"]
    del body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"]
    assert fv.typed_patch_errors(body, "apps/v1", "Deployment") is None


def test_server_side_apply_body_checks():
    cur = deployment()
    cur["metadata"]["namespace"] = "default"

    def ssa(c):
        return c
    body = json.dumps({**deployment(), "metadata": {"name": "web", "namespace": "default"}})
    with pytest.raises(fv.errors.ApiError) as e:
        fv.checked(ssa, body.encode(), fv.APPLY, fv.IGNORE, [])(cur)
    assert e.value.code == 500 and e.value.message.startswith(
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared')
    raw = (b'{"apiVersion": "v1", "kind": "ConfigMap",\n "metadata": {"name": "c"},\n'
           b' "data": {"a": "1",\n "a": "2"}}')
    with pytest.raises(fv.errors.BadRequest) as e:
        fv.checked(ssa, raw, fv.APPLY, fv.STRICT, [])({"apiVersion": "v1", "kind": "ConfigMap"})
    assert e.value.message == ('error strict decoding patch: error converting YAML to JSON: yaml: '
                               'unmarshal errors:\n  line 4: key "a" already set in map')
    warnings: list[str] = []
    fv.checked(ssa, raw, fv.APPLY, fv.WARN, warnings)({"apiVersion": "v1", "kind": "ConfigMap"})
    assert warnings == ['error converting YAML to JSON: yaml: unmarshal errors:\n'
                        '  line 4: key "a" already set in map']


def test_an_apply_that_creates_is_checked_too(api):
    body = {**deployment("ssa"), "metadata": {"name": "ssa", "namespace": "default"}}
    status, out, _ = api("PATCH", DEPLOYS + "/ssa?fieldManager=kubectl&fieldValidation=Strict",
                         body, "application/apply-patch+yaml")
    assert status == 500 and out["message"] == (
        "failed to create typed patch object (default/ssa; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared in '
        "schema")
    assert api("GET", DEPLOYS + "/ssa")[0] == 404
    del body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"]
    status, out, _ = api("PATCH", DEPLOYS + "/ssa?fieldManager=kubectl&fieldValidation=Strict",
                         body, "application/apply-patch+yaml")
    assert status == 201 and out["metadata"]["name"] == "ssa"
