"""The real kubectl writing objects on a running cluster through netsim's OpenAPI and field
validation: `create -f` of the seed's Deployment, `apply -f` twice, unknown fields refused
under kubectl's default --validate=strict in the apiserver's words with nothing stored (create,
apply of a change, server-side apply, edit), warned about and dropped with --validate=warn,
and `kubectl explain` printing upstream's text."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.conftest import namespace_fixture
from tests.e2e.kubectl_helpers import kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

ns = namespace_fixture("kwrite")
UBLOG = Path(__file__).resolve().parents[2] / "examples" / "uit" / "ublog.yaml"

BAD = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: bad
      namespace: kwrite
    spec:
      replicass: 2
      selector: {matchLabels: {app: bad}}
      template:
        metadata: {labels: {app: bad}}
        spec:
          containers:
          - name: web
            image: nginx:1.25
            imagePullPolicyy: Always
    """)
UNKNOWN = ('strict decoding error: unknown field "spec.replicass", unknown field '
           '"spec.template.spec.containers[0].imagePullPolicyy"')


def k(cluster, *args: str, check: bool = True, env: dict | None = None):
    old = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        return kubectl(cluster, "-n", "kwrite", *args, check=check)
    finally:
        for key, v in old.items():
            if v is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = v


def missing(cluster, name: str) -> bool:
    p = k(cluster, "get", "deploy", name, check=False)
    return p.returncode == 1 and "NotFound" in p.stderr


def test_create_f_of_the_seeds_deployment(cluster, ns, tmp_path):
    f = tmp_path / "ublog.yaml"
    f.write_text(UBLOG.read_text().replace("namespace: uit", "namespace: kwrite"))
    assert k(cluster, "create", "-f", str(f)).stdout == "deployment.apps/ublog created\n"
    p = k(cluster, "create", "-f", str(f), check=False)
    assert p.returncode == 1
    assert p.stderr == (f'Error from server (AlreadyExists): error when creating "{f}": '
                        'deployments.apps "ublog" already exists\n')
    d = json.loads(k(cluster, "get", "deploy", "ublog", "-o", "json").stdout)
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/blog/index/"
    assert [e["name"] for e in c["env"]] == ["MYSQL_HOST", "MYSQL_PASSWD"]


def test_apply_twice(cluster, ns, tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(BAD.replace("name: bad", "name: good").replace("replicass", "replicas")
                 .replace("imagePullPolicyy", "imagePullPolicy"))
    assert k(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/good created\n"
    assert k(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/good unchanged\n"


def test_unknown_fields_are_refused_in_the_apiservers_words(cluster, ns, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    for verb in ("create", "apply"):
        p = k(cluster, verb, "-f", str(f), "--validate=strict", check=False)
        assert p.returncode == 1
        assert p.stderr == (f'Error from server (BadRequest): error when creating "{f}": '
                            'Deployment in version "v1" cannot be handled as a Deployment: '
                            f"{UNKNOWN}\n")
        assert missing(cluster, "bad")
    # kubectl's default is strict too
    assert k(cluster, "apply", "-f", str(f), check=False).stderr.endswith(UNKNOWN + "\n")
    p = k(cluster, "apply", "--server-side", "-f", str(f), check=False)
    assert p.returncode == 1
    assert p.stderr == (
        "Error from server: failed to create typed patch object (kwrite/bad; apps/v1, "
        "Kind=Deployment): errors:\n  .spec.replicass: field not declared in schema\n"
        '  .spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared in '
        "schema\n")
    assert missing(cluster, "bad")


def test_a_change_with_an_unknown_field_stores_nothing(cluster, ns, tmp_path):
    f = tmp_path / "chg.yaml"
    good = BAD.replace("name: bad", "name: chg").replace("replicass", "replicas") \
        .replace("imagePullPolicyy", "imagePullPolicy")
    f.write_text(good)
    k(cluster, "apply", "-f", str(f))
    f.write_text(good.replace("  replicas: 2\n", "  replicas: 4\n  pausedd: true\n"))
    p = k(cluster, "apply", "-f", str(f), check=False)
    assert p.returncode == 1
    assert p.stderr.startswith('The request is invalid: patch: Invalid value: "map[')
    assert p.stderr.endswith('": strict decoding error: unknown field "spec.pausedd"\n')
    d = json.loads(k(cluster, "get", "deploy", "chg", "-o", "json").stdout)
    assert d["spec"]["replicas"] == 2 and "pausedd" not in d["spec"]


def test_edit_with_an_unknown_field_is_cancelled(cluster, ns, tmp_path):
    k(cluster, "create", "deployment", "ed", "--image=nginx:1.25")
    editor = tmp_path / "editor.sh"
    # spec.replicas only (status has a `  replicas: 1` line too), once: kubectl reopens the
    # file after an error, and an unchanged file cancels the edit
    editor.write_text("#!/bin/sh\ngrep -q pausedd \"$1\" || "
                      "sed -i '0,/^  replicas: 1$/s//  replicas: 3\\n  pausedd: true/' \"$1\"\n")
    editor.chmod(0o755)
    p = k(cluster, "edit", "deploy", "ed", check=False, env={"EDITOR": str(editor)})
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    assert lines[0] == 'error: deployments.apps "ed" is invalid'
    assert lines[1].startswith("A copy of your changes has been stored to ")
    assert lines[-1] == "error: Edit cancelled, no valid changes were saved."
    assert json.loads(k(cluster, "get", "deploy", "ed", "-o", "json").stdout)["spec"][
        "replicas"] == 1
    p = k(cluster, "edit", "deploy", "ed", "--validate=warn", env={"EDITOR": str(editor)})
    assert p.stdout == "deployment.apps/ed edited\n"
    assert p.stderr == 'Warning: unknown field "spec.pausedd"\n'
    spec = json.loads(k(cluster, "get", "deploy", "ed", "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 3 and "pausedd" not in spec


def test_validate_warn_warns_and_drops_the_unknown_fields(cluster, ns, tmp_path):
    f = tmp_path / "warned.yaml"
    f.write_text(BAD.replace("name: bad", "name: warned"))
    p = k(cluster, "create", "-f", str(f), "--validate=warn")
    assert p.stdout == "deployment.apps/warned created\n"
    assert p.stderr == ('Warning: unknown field "spec.replicass"\n'
                        'Warning: unknown field "spec.template.spec.containers[0].'
                        'imagePullPolicyy"\n')
    d = json.loads(k(cluster, "get", "deploy", "warned", "-o", "json").stdout)
    assert "replicass" not in d["spec"] and d["spec"]["replicas"] == 1
    assert "imagePullPolicyy" not in d["spec"]["template"]["spec"]["containers"][0]


def test_explain_prints_upstreams_text(cluster):
    out = kubectl(cluster, "explain", "deploy").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                          "DESCRIPTION:\n"
                          "    Deployment enables declarative updates for Pods and ReplicaSets.\n")
    assert "  spec\t<DeploymentSpec>\n    Specification of the desired behavior of the " \
           "Deployment.\n" in out
    out = kubectl(cluster, "explain", "deploy.spec").stdout
    assert out.startswith(
        "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
        "FIELD: spec <DeploymentSpec>\n\n\nDESCRIPTION:\n"
        "    Specification of the desired behavior of the Deployment.\n"
        "    DeploymentSpec is the specification of the desired behavior of the\n"
        "    Deployment.\n    \nFIELDS:\n  minReadySeconds\t<integer>\n")
    assert "  template\t<PodTemplateSpec> -required-\n" in out
    out = kubectl(cluster, "explain", "svc.spec.type").stdout
    assert out.startswith("KIND:       Service\nVERSION:    v1\n\nFIELD: type <string>\n\n\n"
                          "DESCRIPTION:\n    type determines how the Service is exposed. Defaults "
                          "to ClusterIP. Valid\n")
