"""`apply -f` / `create -f` / `delete -f` of objects named only by metadata.generateName,
in kubectl's words, over an in-memory store with admission (no cluster needed)."""

from __future__ import annotations

import re

import pytest

from netsim.cli import apply as apply_cmd
from netsim.cli.context import CliError, Ctx

POD = """apiVersion: v1
kind: Pod
metadata:
  generateName: web-
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
"""


@pytest.fixture
def ctx(client):
    c = Ctx(cluster="nsh4", namespace=None, all_namespaces=False, argv=["apply"])
    c._client = client
    return c


@pytest.fixture
def manifest(tmp_path):
    p = tmp_path / "pod.yaml"
    p.write_text(POD)
    return str(p)


def _pods(ctx) -> list[str]:
    return sorted(p["metadata"]["name"] for p in ctx.client.list("pods", "default"))


def test_apply_refuses_generate_name_as_kubectl(ctx, manifest):
    with pytest.raises(CliError) as e:
        apply_cmd.apply(ctx, [manifest], False, None)
    assert str(e.value) == "error: from web-: cannot use generate name with apply"
    assert _pods(ctx) == []


def test_create_generates_the_name_and_prints_it(ctx, manifest, capsys):
    assert apply_cmd.create(ctx, [manifest], False, None) == 0
    assert apply_cmd.create(ctx, [manifest], False, None) == 0
    names = _pods(ctx)
    assert len(names) == 2 and all(re.fullmatch(r"web-[a-z0-9]{5}", n) for n in names)
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == [f"pod/{n} created" for n in names]


def test_create_dry_runs_store_nothing(ctx, manifest, capsys):
    assert apply_cmd.create(ctx, [manifest], False, None, dry_run="server") == 0
    assert re.fullmatch(r"pod/web-[a-z0-9]{5} created \(server dry run\)\n",
                        capsys.readouterr().out)
    assert apply_cmd.create(ctx, [manifest], False, None, dry_run="client") == 0
    assert capsys.readouterr().out == "pod/web- created (dry run)\n"
    assert _pods(ctx) == []


def test_delete_of_a_generate_name_says_it_names_nothing(ctx, manifest, capsys):
    assert apply_cmd.delete_files(ctx, [manifest], False, None, False, wait=False) == 1
    assert capsys.readouterr().err == "error: resource name may not be empty\n"


def test_generate_name_namespace_in_the_same_file(ctx, tmp_path):
    """A Namespace with only a generateName next to other objects (its name was read as
    metadata["name"] when planning namespaces)."""
    p = tmp_path / "ns.yaml"
    p.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  generateName: team-\n")
    assert apply_cmd.create(ctx, [str(p)], False, None) == 0
    assert any(n["metadata"]["name"].startswith("team-") for n in ctx.client.list("namespaces"))
