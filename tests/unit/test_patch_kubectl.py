"""The real kubectl's patching commands against an in-process API (no controllers, no
root): apply twice and after an edit of the file, set image / set env, edit with an EDITOR
script, patch of each type, rollout undo / restart / pause / resume, apply --server-side
with a conflict and --force-conflicts, label / annotate, taint / cordon; a bad patch gives
kubectl's own error line and stores nothing."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from tests.unit.kubectl_api import KUBECTL, requires_kubectl, running_api

pytestmark = requires_kubectl

DEPLOY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
          - name: web
            image: nginx:1.25
            ports:
            - containerPort: 80
    """)
URL = "/apis/apps/v1/namespaces/default/deployments/web"


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        yield a


@pytest.fixture
def web(api, tmp_path):
    """A deployment file (not yet applied) and a clean slate."""
    api.call("DELETE", URL)
    f = tmp_path / "web.yaml"
    f.write_text(DEPLOY)
    yield f
    api.call("DELETE", URL)


def kubectl(api, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "KUBECONFIG": api.kubeconfig, "HOME": api.home, **(env or {})}
    return subprocess.run([KUBECTL, "--context", "netsim-unit", *args], env=e,
                          capture_output=True, text=True, timeout=60)


def ok(api, *args: str, env: dict | None = None) -> str:
    p = kubectl(api, *args, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout


def get(api) -> dict:
    return api.call("GET", URL)[1]


def container(api) -> dict:
    return get(api)["spec"]["template"]["spec"]["containers"][0]


def test_apply_twice_then_after_an_edit_of_the_file(api, web):
    assert ok(api, "apply", "-f", str(web)) == "deployment.apps/web created\n"
    assert ok(api, "apply", "-f", str(web)) == "deployment.apps/web unchanged\n"
    web.write_text(DEPLOY.replace("nginx:1.25", "nginx:1.26").replace("replicas: 2",
                                                                      "replicas: 3"))
    assert ok(api, "apply", "-f", str(web)) == "deployment.apps/web configured\n"
    c = container(api)
    assert c["image"] == "nginx:1.26"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert get(api)["spec"]["replicas"] == 3
    assert ok(api, "apply", "-f", str(web)) == "deployment.apps/web unchanged\n"


def test_set_image_and_set_env_keep_the_ports(api, web):
    ok(api, "apply", "-f", str(web))
    assert ok(api, "set", "image", "deploy/web", "web=nginx:1.27") == \
        "deployment.apps/web image updated\n"
    ok(api, "set", "env", "deploy/web", "A=1", "B=2")
    ok(api, "set", "env", "deploy/web", "A-")
    c = container(api)
    assert (c["image"], c["env"], c["ports"]) == (
        "nginx:1.27", [{"name": "B", "value": "2"}], [{"containerPort": 80, "protocol": "TCP"}])
    mf = {e["manager"] for e in get(api)["metadata"]["managedFields"]}
    assert mf == {"kubectl-client-side-apply", "kubectl-set"}


def test_edit_with_an_editor_script(api, web, tmp_path):
    ok(api, "apply", "-f", str(web))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: nginx:1.25/image: nginx:1.99/' \"$1\"\n")
    editor.chmod(0o755)
    env = {"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}
    assert ok(api, "edit", "deploy/web", env=env) == "deployment.apps/web edited\n"
    assert container(api)["image"] == "nginx:1.99"
    assert container(api)["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_patch_of_each_type(api, web):
    ok(api, "apply", "-f", str(web))
    assert ok(api, "patch", "deploy", "web", "--type=json", "-p",
              '[{"op":"replace","path":"/spec/replicas","value":4}]') == \
        "deployment.apps/web patched\n"
    ok(api, "patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    ok(api, "patch", "deploy", "web", "--type=strategic", "-p",
       '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}')
    d = get(api)
    assert d["spec"]["replicas"] == 4 and d["metadata"]["labels"] == {"app": "web", "m": "1"}
    assert container(api)["image"] == "nginx:1.28" and container(api)["ports"]


@pytest.mark.parametrize("args,line", [
    (("--type=json", "-p", '[{"op":"replace","path":"/spec/nope/x","value":1}]'),
     "The request is invalid: the server rejected our request due to an error in our request"),
    (("-p", '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}'),
     "Error from server: map: map[image:x] does not contain declared merge key: name"),
    (("-p", "[1]"), "Error from server (BadRequest): json: cannot unmarshal array into Go value "
                    "of type map[string]interface {}"),
])
def test_a_bad_patch_gives_kubectls_line_and_stores_nothing(api, web, args, line):
    ok(api, "apply", "-f", str(web))
    rv = get(api)["metadata"]["resourceVersion"]
    p = kubectl(api, "patch", "deploy", "web", *args)
    assert p.returncode == 1
    assert p.stderr.strip() == line
    assert get(api)["metadata"]["resourceVersion"] == rv


def test_rollout_restart_pause_resume(api, web):
    ok(api, "apply", "-f", str(web))
    assert ok(api, "rollout", "pause", "deploy/web") == "deployment.apps/web paused\n"
    assert get(api)["spec"]["paused"] is True
    assert ok(api, "rollout", "resume", "deploy/web") == "deployment.apps/web resumed\n"
    assert not get(api)["spec"].get("paused")
    assert ok(api, "rollout", "restart", "deploy/web") == "deployment.apps/web restarted\n"
    ann = get(api)["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in ann


def test_rollout_undo_sends_a_json_patch_of_the_old_template(api, web):
    ok(api, "apply", "-f", str(web))
    d = get(api)
    d["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "2"
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert api.call("PUT", URL, d)[0] == 200
    d = get(api)
    old = json.loads(json.dumps(d["spec"]["template"]))
    old["spec"]["containers"][0]["image"] = "nginx:1.25"
    old["metadata"]["labels"]["pod-template-hash"] = "abc"
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-abc", "labels": {"app": "web", "pod-template-hash": "abc"},
                       "annotations": {"deployment.kubernetes.io/revision": "1"},
                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": "web", "uid": d["metadata"]["uid"],
                                            "controller": True}]},
          "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web",
                                                               "pod-template-hash": "abc"}},
                   "template": old}}
    assert api.call("POST", "/apis/apps/v1/namespaces/default/replicasets", rs)[0] == 201
    try:
        assert ok(api, "rollout", "undo", "deploy/web", "--to-revision=1") == \
            "deployment.apps/web rolled back\n"
        assert container(api)["image"] == "nginx:1.25"
    finally:
        api.call("DELETE", "/apis/apps/v1/namespaces/default/replicasets/web-abc")


def test_apply_server_side_twice_a_conflict_and_force(api, web):
    assert ok(api, "apply", "--server-side", "-f", str(web)) == \
        "deployment.apps/web serverside-applied\n"
    assert ok(api, "apply", "--server-side", "-f", str(web)) == \
        "deployment.apps/web serverside-applied\n"
    ok(api, "patch", "deploy", "web", "-p", '{"spec":{"replicas":6}}')
    web.write_text(DEPLOY.replace("replicas: 2", "replicas: 3"))
    p = kubectl(api, "apply", "--server-side", "-f", str(web))
    assert p.returncode == 1
    assert p.stderr.splitlines()[0] == ('error: Apply failed with 1 conflict: conflict with '
                                        '"kubectl-patch" using apps/v1: .spec.replicas')
    assert get(api)["spec"]["replicas"] == 6
    ok(api, "apply", "--server-side", "--force-conflicts", "-f", str(web))
    assert get(api)["spec"]["replicas"] == 3


def test_label_and_annotate(api, web):
    ok(api, "apply", "-f", str(web))
    assert ok(api, "label", "deploy", "web", "tier=front") == "deployment.apps/web labeled\n"
    assert ok(api, "annotate", "deploy", "web", "kubernetes.io/change-cause=v2") == \
        "deployment.apps/web annotated\n"
    md = get(api)["metadata"]
    assert md["labels"]["tier"] == "front"
    assert md["annotations"]["kubernetes.io/change-cause"] == "v2"
    ok(api, "label", "deploy", "web", "tier-")
    assert "tier" not in get(api)["metadata"]["labels"]


def test_taint_and_cordon_a_node(api):
    api.call("DELETE", "/api/v1/nodes/node1")
    assert api.call("POST", "/api/v1/nodes", {"metadata": {"name": "node1"}})[0] == 201
    try:
        assert ok(api, "taint", "node", "node1", "k=v:NoSchedule") == "node/node1 tainted\n"
        assert ok(api, "cordon", "node1") == "node/node1 cordoned\n"
        spec = api.call("GET", "/api/v1/nodes/node1")[1]["spec"]
        assert spec["unschedulable"] is True
        assert [(t["key"], t["value"], t["effect"]) for t in spec["taints"]] == [
            ("k", "v", "NoSchedule")]
        ok(api, "uncordon", "node1")
        ok(api, "taint", "node", "node1", "k-")
        spec = api.call("GET", "/api/v1/nodes/node1")[1]["spec"]
        assert not spec.get("unschedulable") and not spec.get("taints")
    finally:
        api.call("DELETE", "/api/v1/nodes/node1")


def test_netsim_get_yaml_leaves_managed_fields_out_as_kubectl_does(api, web, capsys):
    from netsim.api.client import LocalClient
    from netsim.cli import get as get_cmd
    from netsim.cli.context import Ctx
    ok(api, "apply", "-f", str(web))
    assert get(api)["metadata"]["managedFields"]
    ctx = Ctx(cluster="unit", namespace="default", all_namespaces=False, argv=["get"])
    ctx._client = LocalClient(api.store)
    get_cmd.get(ctx, ["deploy", "web"], "yaml", None, False)
    assert capsys.readouterr().out == ok(api, "get", "deploy", "web", "-o", "yaml")
