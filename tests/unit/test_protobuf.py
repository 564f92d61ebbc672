"""Protobuf request bodies (`application/vnd.kubernetes.protobuf`): what kubectl's create
verbs and helm send that way is stored as the JSON body would be; garbage gets the
apiserver's words. The real kubectl runs against an in-process API (no root)."""

from __future__ import annotations

import base64

import pytest

from netsim.api import protobuf
from tests.unit.kubectl_api import requires_kubectl, running_api

PB = protobuf.CONTENT_TYPE


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        yield a


def _post(api, url, obj, method="POST"):
    return api.call(method, url, protobuf.encode(obj), PB)


# ---- the decoder -----------------------------------------------------------------------
def test_a_configmap_round_trips_through_the_wire_format():
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cfg", "namespace": "x", "labels": {"a": "b"},
                       "annotations": {"n": "1"}},
          "data": {"K": "v"}, "binaryData": {"bin": base64.b64encode(b"\x00\xff").decode()}}
    body = protobuf.encode(cm)
    assert body.startswith(b"k8s\x00")
    assert protobuf.decode(body) == cm


def test_go_zero_values_are_absent_but_set_pointers_are_kept():
    """Go writes non-pointer fields at their zero value; a pointer set to 0 means 0."""
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 0, "paused": False, "minReadySeconds": 0,
                  "selector": {"matchLabels": {"app": "d"}},
                  "template": {"metadata": {"labels": {"app": "d"}}, "spec": {
                      "containers": [{"name": "c", "image": "nginx",
                                      "ports": [{"containerPort": 80}],
                                      "resources": {"limits": {"cpu": "500m"}}}],
                      "volumes": [{"name": "v", "emptyDir": {}},
                                  {"name": "s", "secret": {"secretName": "x",
                                                           "defaultMode": 0o644}}]}}}}
    got = protobuf.decode(protobuf.encode(d))
    spec = got["spec"]
    assert spec["replicas"] == 0
    assert "paused" not in spec and "minReadySeconds" not in spec
    pod = spec["template"]["spec"]
    assert pod["volumes"] == [{"name": "v", "emptyDir": {}},  # VolumeSource inlined
                              {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}]
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "500m"}}  # Quantity


def test_int_or_string_and_times_take_their_json_forms():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}}
    assert protobuf.decode(protobuf.encode(svc))["spec"]["ports"] == svc["spec"]["ports"]
    t = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "p", "deletionTimestamp": "2026-01-02T03:04:05Z"}}
    assert protobuf.decode(protobuf.encode(t))["metadata"]["deletionTimestamp"] == \
        "2026-01-02T03:04:05Z"


def test_delete_options_decode_in_any_group_version():
    opts = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan",
            "gracePeriodSeconds": 0}
    assert protobuf.decode(protobuf.encode(opts)) == opts


def test_a_kind_it_has_no_message_for_keeps_only_its_type():
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    # the same bytes, kind renamed: the server's kind checks answer for it
    assert protobuf.decode(body.replace(b"ConfigMap", b"Gizmo0000"))["kind"] == "Gizmo0000"


# ---- through the API -------------------------------------------------------------------
def test_a_protobuf_configmap_is_stored_as_json(api):
    code, out = _post(api, "/api/v1/namespaces/default/configmaps",
                      {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pb1"},
                       "data": {"a": "1"}})
    assert code == 201, out
    assert out["data"] == {"a": "1"} and out["metadata"]["namespace"] == "default"
    assert api.store.get("configmaps", "pb1", "default")["data"] == {"a": "1"}


def test_garbage_gets_the_apiservers_error_and_nothing_is_stored(api):
    before = api.store.list("configmaps", "default")[0]
    code, out = api.call("POST", "/api/v1/namespaces/default/configmaps",
                         b"not a protobuf message at all, really", PB)
    assert code == 400
    assert out["message"] == (
        "the object provided is unrecognized (must be of type ConfigMap): provided data does "
        "not appear to be a protobuf message, expected prefix [107 56 115 0] "
        "(" + b"not a protobuf message at all,".hex() + " ...)")
    code, out = api.call("POST", "/api/v1/namespaces/default/configmaps",
                         b"k8s\x00\x0a\xff\xff", PB)
    assert code == 400 and out["message"] == \
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: unexpected EOF'
    assert api.store.list("configmaps", "default")[0] == before


def test_a_protobuf_body_of_another_kind_is_refused_in_the_apiservers_words(api):
    code, out = _post(api, "/api/v1/namespaces/default/configmaps",
                      {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    assert code == 400
    assert out["message"] == ('Secret in version "v1" cannot be handled as a ConfigMap: '
                              "converting (v1.Secret) to (core.ConfigMap): unknown conversion")


def test_helm_updates_its_release_secret_with_a_protobuf_put(api):
    sec = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "sh.helm.release.v1.demo.v1", "labels": {"owner": "helm"}},
           "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(b"H4s").decode()}}
    assert _post(api, "/api/v1/namespaces/default/secrets", sec)[0] == 201
    sec["metadata"]["labels"]["status"] = "superseded"
    code, out = _post(api, "/api/v1/namespaces/default/secrets/sh.helm.release.v1.demo.v1",
                      sec, "PUT")
    assert code == 200, out
    assert out["metadata"]["labels"] == {"owner": "helm", "status": "superseded"}
    # helm deletes with protobuf DeleteOptions
    code, out = api.call("DELETE", "/api/v1/namespaces/default/secrets/sh.helm.release.v1."
                         "demo.v1", protobuf.encode({"kind": "DeleteOptions",
                                                     "apiVersion": "v1"}), PB)
    assert code == 200, out
    assert api.store.list("secrets", "default")[0] == []


# ---- the real kubectl ------------------------------------------------------------------
@requires_kubectl
def test_kubectl_create_verbs_send_protobuf_and_store_what_they_mean(api, tmp_path):
    env = tmp_path / "app.env"
    env.write_text("COLOR=blue\nSIZE=3\n")
    c = api.certs
    for args, printed in [
            (("create", "configmap", "cfg", f"--from-env-file={env}"), "configmap/cfg created"),
            (("create", "secret", "generic", "pw", "--from-literal=pw=s3cret"),
             "secret/pw created"),
            (("create", "secret", "tls", "web-tls", f"--cert={c.server_crt}",
              f"--key={c.server_key}"), "secret/web-tls created"),
            (("create", "deployment", "d0", "--image=nginx", "--replicas=0", "--port=80"),
             "deployment.apps/d0 created"),
            (("create", "namespace", "ns2"), "namespace/ns2 created"),
            (("create", "service", "clusterip", "s2", "--tcp=80:8080"), "service/s2 created"),
            (("create", "job", "j2", "--image=busybox", "--", "sh", "-c", "echo hi"),
             "job.batch/j2 created"),
            (("create", "serviceaccount", "sa1"), "serviceaccount/sa1 created")]:
        p = api.kubectl("-n", "default", *args)
        assert (p.returncode, p.stdout.strip()) == (0, printed), p.stderr
    s = api.store
    assert s.get("configmaps", "cfg", "default")["data"] == {"COLOR": "blue", "SIZE": "3"}
    pw = s.get("secrets", "pw", "default")
    assert (pw["type"], pw["data"]) == ("Opaque", {"pw": base64.b64encode(b"s3cret").decode()})
    tls = s.get("secrets", "web-tls", "default")
    assert tls["type"] == "kubernetes.io/tls"
    assert base64.b64decode(tls["data"]["tls.crt"]) == open(c.server_crt, "rb").read()
    d0 = s.get("deployments", "d0", "default")
    assert d0["spec"]["replicas"] == 0  # a pointer set to zero survives the wire
    container = d0["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["ports"][0]["containerPort"]) == ("nginx", 80)
    assert s.get("namespaces", "ns2")["status"]["phase"] == "Active"
    assert s.get("services", "s2", "default")["spec"]["ports"][0]["targetPort"] == 8080
    job = s.get("jobs", "j2", "default")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["sh", "-c", "echo hi"]
    assert job["restartPolicy"] == "Never"


def test_a_pointer_int_or_string_set_to_zero_is_kept():
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"strategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}}}
    got = protobuf.decode(protobuf.encode(d))
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}


def test_garbage_on_a_subresource_names_the_subresources_kind():
    from netsim.api import routes
    from netsim.api.resources import BY_PLURAL
    req = routes.Request(None, "POST", "", {}, {}, b"", None, BY_PLURAL["serviceaccounts"],
                         "v1", "default", "robot", "token")
    with pytest.raises(Exception, match=r"must be of type TokenRequest\): provided data"):
        protobuf.decode_body(b"{}", req)
