"""pods/binding and bindings on the in-process API: what a custom scheduler (and `kubectl
create -f binding.yaml`) sees — discovery, 201 Status, the bound pod, and upstream's refusals
word for word."""

from __future__ import annotations

import pytest

from netsim.api.client import HttpClient, LocalClient
from netsim.cli import apply as apply_cmd
from netsim.cli.context import CliError, Ctx
from tests.unit.kubectl_api import requires_kubectl, running_api

NS = "default"
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "code": 201}


def bind_url(name: str) -> str:
    return f"/api/v1/namespaces/{NS}/pods/{name}/binding"


def binding(name: str, node: str | None = "node1", kind: str | None = "Node", **md) -> dict:
    target = {k: val for k, val in (("kind", kind), ("name", node)) if val is not None}
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": NS, **md}, "target": target}


def make_pod(store, name: str, **spec) -> dict:
    return store.create({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": NS},
                         "spec": {"schedulerName": "my-scheduler",
                                  "containers": [{"name": "c", "image": "echo"}], **spec}})


def pod(api, name: str) -> dict:
    return api.store.get("pods", name, NS)


@pytest.fixture
def api():
    with running_api() as a:
        yield a


def test_discovery_lists_pods_binding_and_bindings_as_create_only(api):
    code, doc = api.call("GET", "/api/v1")
    assert code == 200
    by_name = {r["name"]: r for r in doc["resources"]}
    assert (by_name["pods/binding"]["kind"], by_name["pods/binding"]["verbs"]) == \
        ("Binding", ["create"])
    assert (by_name["bindings"]["kind"], by_name["bindings"]["verbs"],
            by_name["bindings"]["namespaced"]) == ("Binding", ["create"], True)


def test_binding_assigns_the_node_and_marks_the_pod_scheduled(api):
    before = make_pod(api.store, "p")
    code, out = api.call("POST", bind_url("p"),
                         binding("p", annotations={"scheduled-by": "mine"}))
    assert (code, out) == (201, SUCCESS)
    after = pod(api, "p")
    assert after["spec"]["nodeName"] == "node1"
    assert after["metadata"]["annotations"]["scheduled-by"] == "mine"
    cond = next(c for c in after["status"]["conditions"] if c["type"] == "PodScheduled")
    assert cond["status"] == "True" and cond["lastTransitionTime"]
    # a storage write past the update strategy: the spec's generation stays
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


def test_a_bound_pod_cannot_be_bound_again(api):
    make_pod(api.store, "p")
    assert api.call("POST", bind_url("p"), binding("p"))[0] == 201
    code, out = api.call("POST", bind_url("p"), binding("p", "node2"))
    assert (code, out["reason"]) == (409, "Conflict")
    assert out["message"] == ('Operation cannot be fulfilled on pods/binding "p": '
                              'pod p is already assigned to node "node1"')
    assert pod(api, "p")["spec"]["nodeName"] == "node1"


def test_a_pod_being_deleted_or_gated_is_not_bound(api):
    make_pod(api.store, "gated", schedulingGates=[{"name": "wait"}])
    code, out = api.call("POST", bind_url("gated"), binding("gated"))
    assert code == 409
    assert out["message"].endswith("pod gated has non-empty .spec.schedulingGates")
    make_pod(api.store, "going")
    # (netsim's store deletes an unbound pod at once, finalizers or not: mark it by hand)
    api.store.guaranteed_update("pods", "going", NS, lambda p: p["metadata"].update(
        deletionTimestamp="2026-01-01T00:00:00Z"))
    code, out = api.call("POST", bind_url("going"), binding("going"))
    assert code == 409
    assert out["message"].endswith("pod going is being deleted, cannot be assigned to a host")
    assert not pod(api, "going")["spec"].get("nodeName")


def test_a_uid_precondition_that_does_not_match_is_a_conflict(api):
    uid = make_pod(api.store, "p")["metadata"]["uid"]
    code, out = api.call("POST", bind_url("p"), binding("p", uid="not-the-uid"))
    assert code == 409
    assert out["message"] == (
        'Operation cannot be fulfilled on pods "p": StorageError: invalid object, Code: 4, '
        f"Key: /registry/pods/{NS}/p, ResourceVersion: 0, AdditionalErrorMsg: Precondition "
        f"failed: UID in precondition: not-the-uid, UID in object meta: {uid}")
    assert api.call("POST", bind_url("p"), binding("p", uid=uid))[0] == 201


def test_bad_bindings_are_refused_and_change_nothing(api):
    make_pod(api.store, "p")
    code, out = api.call("POST", bind_url("p"), binding("q"))
    assert (code, out["message"]) == (400, "name in URL does not match name in Binding object")
    code, out = api.call("POST", bind_url("nope"), binding("nope"))
    assert (code, out["message"]) == (404, 'pods "nope" not found')
    code, out = api.call("POST", bind_url("p"), binding("p", node=None))
    assert (code, out["message"]) == (500, "target.name: Required value")
    assert "reason" not in out
    code, out = api.call("POST", bind_url("p"), binding("p", kind="Pod"))
    assert code == 500
    assert out["message"] == ('target.kind: Unsupported value: "Pod": supported values: '
                              '"Node", "<empty>"')
    code, _ = api.call("GET", bind_url("p"))
    assert code == 405
    code, _ = api.call("GET", f"/api/v1/namespaces/{NS}/bindings")
    assert code == 405
    code, out = api.call("POST", bind_url("p"), {**binding("p"), "kind": "Pod"})
    assert (code, out["message"]) == (400, 'Pod in version "v1" cannot be handled as a Binding: '
                                      'no kind "Pod" is registered for version "v1" in scheme '
                                      '"pkg/api/legacyscheme/scheme.go:30"')
    assert not pod(api, "p")["spec"].get("nodeName")


def test_dry_run_binding_changes_nothing(api):
    rv = make_pod(api.store, "p")["metadata"]["resourceVersion"]
    code, out = api.call("POST", bind_url("p") + "?dryRun=All", binding("p"))
    assert (code, out) == (201, SUCCESS)
    assert pod(api, "p")["metadata"]["resourceVersion"] == rv
    assert not pod(api, "p")["spec"].get("nodeName")


def test_the_namespaced_bindings_collection_takes_the_name_from_the_body(api):
    make_pod(api.store, "p")
    code, out = api.call("POST", f"/api/v1/namespaces/{NS}/bindings", binding("p", "node2"))
    assert (code, out) == (201, SUCCESS)
    assert pod(api, "p")["spec"]["nodeName"] == "node2"
    code, out = api.call("POST", f"/api/v1/namespaces/{NS}/bindings", binding(""))
    assert (code, out["message"]) == (400, "Name parameter required.")


def test_the_in_process_client_binds_and_returns_the_pod(api):
    uid = make_pod(api.store, "p")["metadata"]["uid"]
    out = LocalClient(api.store).bind(NS, "p", "node3", uid)
    assert out["spec"]["nodeName"] == "node3"
    assert pod(api, "p")["spec"]["nodeName"] == "node3"


@requires_kubectl
def test_kubectl_create_of_a_binding_binds_the_pod(api):
    make_pod(api.store, "p")
    yaml = ("apiVersion: v1\nkind: Binding\nmetadata:\n  name: p\n"
            "target:\n  apiVersion: v1\n  kind: Node\n  name: node1\n")
    out = api.kubectl("create", "-f", "-", stdin=yaml)
    assert out.returncode == 0, out.stderr
    # the apiserver answers a Status, which kubectl's name printer cannot name
    assert out.stdout.strip() == "status/<unknown> created"
    assert pod(api, "p")["spec"]["nodeName"] == "node1"
    again = api.kubectl("create", "-f", "-", stdin=yaml)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        'Error from server (Conflict): error when creating "STDIN": Operation cannot be '
        'fulfilled on pods/binding "p": pod p is already assigned to node "node1"')


def test_netsim_create_of_a_binding_says_what_kubectl_says(api, tmp_path, capsys):
    make_pod(api.store, "p")
    f = tmp_path / "binding.yaml"
    f.write_text("apiVersion: v1\nkind: Binding\nmetadata:\n  name: p\n"
                 "target:\n  kind: Node\n  name: node2\n")
    ctx = Ctx(cluster="unit", namespace=None, all_namespaces=False, argv=["create"])
    ctx._client = HttpClient(path=api.sock)
    assert apply_cmd.create(ctx, [str(f)], False, None) == 0
    assert capsys.readouterr().out == "status/<unknown> created\n"
    assert pod(api, "p")["spec"]["nodeName"] == "node2"
    with pytest.raises(CliError) as e:
        apply_cmd.create(ctx, [str(f)], False, None)
    assert str(e.value) == (
        f'Error from server (Conflict): error when creating "{f}": Operation cannot be '
        'fulfilled on pods/binding "p": pod p is already assigned to node "node2"')
