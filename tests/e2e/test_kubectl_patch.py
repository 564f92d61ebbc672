"""The real kubectl's patching commands on a running cluster, with the controllers at work:
apply twice (created, unchanged) and after an edit of the file (configured, the container
port kept), set image rolling out new pods, set env, edit with an EDITOR script, rollout
undo back to the first revision (a JSON patch), restart/pause/resume, apply --server-side
twice with a conflict and --force-conflicts, label/annotate, taint/cordon on a node; a bad
patch gives kubectl's own line and stores nothing."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from tests.conftest import namespace_fixture, wait_for
from tests.e2e.kubectl_helpers import kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

ns = namespace_fixture("kpatch")

DEPLOY = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: kpatch
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


def k(cluster, *args: str, check: bool = True, env: dict | None = None):
    if env:
        os.environ.update(env)
        try:
            return kubectl(cluster, "-n", "kpatch", *args, check=check)
        finally:
            for key in env:
                os.environ.pop(key, None)
    return kubectl(cluster, "-n", "kpatch", *args, check=check)


def deploy(cluster) -> dict:
    return json.loads(k(cluster, "get", "deploy", "web", "-o", "json").stdout)


def container(cluster) -> dict:
    return deploy(cluster)["spec"]["template"]["spec"]["containers"][0]


def pod_images(cluster) -> set[str]:
    pods = json.loads(k(cluster, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    return {p["spec"]["containers"][0]["image"] for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def rolled_out(cluster, image: str) -> None:
    k(cluster, "rollout", "status", "deploy/web", "--timeout=90s")
    wait_for(lambda: pod_images(cluster) == {image}, 60, what=f"pods running {image}")


def test_apply_set_edit_and_undo(cluster, ns, tmp_path):
    f = tmp_path / "web.yaml"
    f.write_text(DEPLOY)
    assert k(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/web created\n"
    assert k(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/web unchanged\n"
    rolled_out(cluster, "nginx:1.25")
    f.write_text(DEPLOY.replace("replicas: 2", "replicas: 3"))
    assert k(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/web configured\n"
    assert container(cluster)["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    assert k(cluster, "set", "image", "deploy/web", "web=nginx:1.26").stdout == \
        "deployment.apps/web image updated\n"
    assert container(cluster)["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    rolled_out(cluster, "nginx:1.26")
    k(cluster, "set", "env", "deploy/web", "MODE=fast")
    assert container(cluster)["env"] == [{"name": "MODE", "value": "fast"}]

    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: nginx:1.26/image: nginx:1.27/' \"$1\"\n")
    editor.chmod(0o755)
    assert k(cluster, "edit", "deploy/web", env={"EDITOR": str(editor)}).stdout == \
        "deployment.apps/web edited\n"
    rolled_out(cluster, "nginx:1.27")

    assert k(cluster, "rollout", "undo", "deploy/web", "--to-revision=1").stdout == \
        "deployment.apps/web rolled back\n"
    rolled_out(cluster, "nginx:1.25")
    c = container(cluster)
    assert (c["image"], c.get("env"), c["ports"]) == (
        "nginx:1.25", None, [{"containerPort": 80, "protocol": "TCP"}])


def test_rollout_restart_pause_resume(cluster, ns):
    assert k(cluster, "rollout", "pause", "deploy/web").stdout == "deployment.apps/web paused\n"
    assert deploy(cluster)["spec"]["paused"] is True
    assert k(cluster, "rollout", "resume", "deploy/web").stdout == \
        "deployment.apps/web resumed\n"
    before = {p for p in k(cluster, "get", "pods", "-l", "app=web", "-o", "name").stdout.split()}
    assert k(cluster, "rollout", "restart", "deploy/web").stdout == \
        "deployment.apps/web restarted\n"
    k(cluster, "rollout", "status", "deploy/web", "--timeout=90s")
    wait_for(lambda: not before & set(
        k(cluster, "get", "pods", "-l", "app=web", "-o", "name").stdout.split()), 60,
        what="the restart to replace every pod")


def test_patch_types_and_a_bad_patch(cluster, ns):
    k(cluster, "patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    k(cluster, "patch", "deploy", "web", "--type=json", "-p",
      '[{"op":"replace","path":"/spec/replicas","value":2}]')
    k(cluster, "patch", "deploy", "web", "-p",
      '{"spec":{"template":{"spec":{"containers":[{"name":"web","imagePullPolicy":"Always"}]}}}}')
    d = deploy(cluster)
    assert d["metadata"]["labels"]["m"] == "1" and d["spec"]["replicas"] == 2
    assert container(cluster)["imagePullPolicy"] == "Always" and container(cluster)["ports"]
    # (the controller writes the status meanwhile: spec and generation tell what a patch did)
    before = (d["metadata"]["generation"], d["spec"])
    p = k(cluster, "patch", "deploy", "web", "--type=json", "-p",
          '[{"op":"remove","path":"/spec/nope"}]', check=False)
    assert (p.returncode, p.stderr.strip()) == (
        1, "The request is invalid: the server rejected our request due to an error in our "
           "request")
    p = k(cluster, "patch", "deploy", "web", "-p",
          '{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}', check=False)
    assert p.stderr.strip() == ("Error from server: map: map[image:x] does not contain declared "
                                "merge key: name")
    d = deploy(cluster)
    assert (d["metadata"]["generation"], d["spec"]) == before


def test_apply_server_side_conflict_and_force(cluster, ns, tmp_path):
    f = tmp_path / "api.yaml"
    body = DEPLOY.replace("name: web", "name: api").replace("app: web", "app: api")
    f.write_text(body)
    assert k(cluster, "apply", "--server-side", "-f", str(f)).stdout == \
        "deployment.apps/api serverside-applied\n"
    assert k(cluster, "apply", "--server-side", "-f", str(f)).stdout == \
        "deployment.apps/api serverside-applied\n"
    k(cluster, "patch", "deploy", "api", "-p", '{"spec":{"replicas":1}}')
    f.write_text(body.replace("replicas: 2", "replicas: 3"))
    p = k(cluster, "apply", "--server-side", "-f", str(f), check=False)
    assert p.returncode == 1
    assert p.stderr.splitlines()[0] == ('error: Apply failed with 1 conflict: conflict with '
                                        '"kubectl-patch" using apps/v1: .spec.replicas')
    k(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(f))
    k(cluster, "rollout", "status", "deploy/api", "--timeout=90s")
    assert json.loads(k(cluster, "get", "deploy", "api", "-o", "json").stdout)[
        "status"]["readyReplicas"] == 3
    k(cluster, "delete", "deploy", "api")


def test_label_annotate_taint_cordon(cluster, ns):
    k(cluster, "label", "deploy", "web", "tier=front")
    k(cluster, "annotate", "deploy", "web", "kubernetes.io/change-cause=pinned")
    md = deploy(cluster)["metadata"]
    assert md["labels"]["tier"] == "front"
    assert md["annotations"]["kubernetes.io/change-cause"] == "pinned"
    node = json.loads(kubectl(cluster, "get", "nodes", "-o", "json").stdout)["items"][-1][
        "metadata"]["name"]
    try:
        assert kubectl(cluster, "taint", "node", node, "e2e=x:NoSchedule").stdout == \
            f"node/{node} tainted\n"
        assert kubectl(cluster, "cordon", node).stdout == f"node/{node} cordoned\n"
        spec = json.loads(kubectl(cluster, "get", "node", node, "-o", "json").stdout)["spec"]
        assert spec["unschedulable"] is True
        assert {"key": "e2e", "value": "x", "effect": "NoSchedule"} in spec["taints"]
    finally:
        kubectl(cluster, "uncordon", node, check=False)
        kubectl(cluster, "taint", "node", node, "e2e-", check=False)
    spec = json.loads(kubectl(cluster, "get", "node", node, "-o", "json").stdout)["spec"]
    assert not spec.get("unschedulable")
    assert not [t for t in spec.get("taints") or [] if t["key"] == "e2e"]
