"""Strategic merge patch with the real schema (upstream's OpenAPI merge keys), as the
patches kubectl sends meet it: set image / set env / apply / taint on real kinds, and the
apiserver's answers to bad patches."""

from __future__ import annotations

import copy

import pytest

from netsim.api.openapi import schema
from netsim.api.patch import strategic


def deployment(**container) -> dict:
    c = {"name": "web", "image": "nginx:1.25",
         "ports": [{"containerPort": 80, "protocol": "TCP"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], **container}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2,
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [c],
                                           "tolerations": [{"key": "a", "operator": "Exists"}]}}}}


def smp(obj: dict, patch: dict) -> dict:
    node = schema.resolve(obj["apiVersion"], obj["kind"])
    return strategic.apply(copy.deepcopy(obj), copy.deepcopy(patch), schema, node)


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def tpl(spec: dict) -> dict:
    return {"spec": {"template": {"spec": spec}}}


def test_set_image_keeps_the_ports_and_env():
    got = smp(deployment(), tpl({"containers": [{"name": "web", "image": "nginx:1.27"}]}))
    assert containers(got) == containers(deployment(image="nginx:1.27"))


def test_a_container_with_a_new_name_is_added_in_front():
    got = smp(deployment(), tpl({"containers": [{"name": "side", "image": "busybox"}]}))
    assert [c["name"] for c in containers(got)] == ["side", "web"]


def test_set_element_order_puts_the_list_in_the_patch_order():
    two = smp(deployment(), tpl({"containers": [{"name": "side", "image": "busybox"}]}))
    got = smp(two, tpl({"$setElementOrder/containers": [{"name": "web"}, {"name": "side"}]}))
    assert [c["name"] for c in containers(got)] == ["web", "side"]


def test_env_merges_by_name_and_patch_delete_removes_one():
    got = smp(deployment(), tpl({"containers": [{"name": "web", "env": [
        {"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]}]}))
    assert containers(got)[0]["env"] == [{"name": "C", "value": "3"}, {"name": "B", "value": "2"}]


def test_null_removes_a_field():
    got = smp(deployment(), {"spec": {"replicas": None}})
    assert "replicas" not in got["spec"]


def test_lists_without_a_strategy_are_replaced_whole():
    got = smp(deployment(), tpl({"tolerations": [{"key": "b", "operator": "Exists"}]}))
    assert got["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_retain_keys_clears_the_rolling_update_of_a_recreate_strategy():
    got = smp(deployment(), {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert got["spec"]["strategy"] == {"type": "Recreate"}


def test_patch_replace_on_a_map():
    got = smp(deployment(), {"spec": {"template": {"metadata": {"labels": {
        "$patch": "replace", "x": "y"}}}}})
    assert got["spec"]["template"]["metadata"]["labels"] == {"x": "y"}


def test_a_directive_for_a_field_not_there_is_dropped():
    got = smp(deployment(), {"metadata": {"labels": {"$patch": "replace", "x": "y"}}})
    assert "labels" not in got["metadata"]


def test_delete_from_primitive_list_on_finalizers():
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "finalizers": ["a/b", "c/d"]}}
    got = smp(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/b"]}})
    assert got["metadata"]["finalizers"] == ["c/d"]


def test_service_ports_merge_by_port():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                              {"name": "https", "port": 443}]}}
    got = smp(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert got["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 9090},
                                    {"name": "https", "port": 443}]


def test_node_taints_and_unschedulable_as_kubectl_taint_and_cordon_send_them():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}, "spec": {}}
    tainted = smp(node, {"spec": {"taints": [{"key": "k", "value": "v",
                                              "effect": "NoSchedule"}]}})
    cordoned = smp(tainted, {"spec": {"unschedulable": True}})
    assert cordoned["spec"] == {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}],
                                "unschedulable": True}


@pytest.mark.parametrize("patch,status,message", [
    (tpl({"containers": [{"image": "x"}]}), 500,
     "map: map[image:x] does not contain declared merge key: name"),
    (tpl({"$setElementOrder/containers": "web"}), 500,
     "expected a []interface {}, but received a string"),
    ({"$setElementOrderX": []}, 400, "invalid patch format of setElementOrder list"),
    ({"spec": {"strategy": {"$retainKeys": "type"}}}, 400, "invalid patch format of retainKeys"),
    ({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, 400,
     "invalid patch format of retainKeys"),
    ({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}, 400,
     "invalid patch format of primitive list"),
    (tpl({"containers": [{"name": "web", "$patch": "merge"}]}), 500,
     "merging lists cannot yet be specified in the patch"),
    ({"spec": {"template": {"metadata": {"labels": {"$patch": "bogus"}}}}}, 500,
     "unknown patch type: bogus in map: map[$patch:bogus]"),
    (tpl({"containers": [1]}), 500, "list element types are not identical: [[map[env:[map[name:A "
     "value:1] map[name:B value:2]] image:nginx:1.25 name:web ports:[map[containerPort:80 "
     "protocol:TCP]]]] [1]]"),
])
def test_bad_patches_in_upstream_words(patch, status, message):
    with pytest.raises(strategic.PatchError) as e:
        smp(deployment(), patch)
    assert (e.value.status, e.value.message) == (status, message)


def test_lists_of_lists_are_unprocessable():
    obj = deployment()
    containers(obj).clear()
    with pytest.raises(strategic.PatchError) as e:
        smp(obj, tpl({"containers": [["nested"]]}))
    assert (e.value.status, e.value.message) == (422, "lists of lists are not supported")
