"""`get -o jsonpath=...` prints what kubectl prints (client-go's jsonpath templates)."""

from __future__ import annotations

import pytest

from netsim.cli import get as get_cmd
from netsim.cli import jsonpath
from netsim.cli.context import CliError, Ctx


def _pod(name: str, ready: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"app": "web", "app.kubernetes.io/name": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [
                {"containerPort": 80}, {"containerPort": 443}]}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": ready}]}}


@pytest.fixture
def ctx(client):
    c = Ctx(cluster="nsh4", namespace=None, all_namespaces=False, argv=["get"])
    c._client = client
    for n in ("web-1", "web-2"):
        c.client.create(_pod(n, "True"))
    return c


def test_names_of_a_list_and_of_one_pod_as_kubectl(ctx, capsys):
    assert get_cmd.get(ctx, ["po"], "jsonpath={.items[*].metadata.name}", None, False) == 0
    assert capsys.readouterr().out == "web-1 web-2"  # no newline, as kubectl
    assert get_cmd.get(ctx, ["po", "web-1"], "jsonpath={.metadata.name}", None, False) == 0
    assert capsys.readouterr().out == "web-1"


def test_text_range_literals_and_quotes_kept(ctx, capsys):
    get_cmd.get(ctx, ["po"], 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}',
                None, False)
    assert capsys.readouterr().out == "web-1\nweb-2\n"
    # quotes a shell did not remove are text, printed as they are (this printed nothing)
    get_cmd.get(ctx, ["po"], "jsonpath='{.items[*].metadata.name}'", None, False)
    assert capsys.readouterr().out == "'web-1 web-2'"
    get_cmd.get(ctx, ["po", "web-2"], "jsonpath=name: {.metadata.name}", None, False)
    assert capsys.readouterr().out == "name: web-2"


def test_unparsable_template_is_kubectls_error(ctx):
    with pytest.raises(CliError, match="error parsing jsonpath"):
        get_cmd.get(ctx, ["po"], "jsonpath={.items[*].metadata.name", None, False)


@pytest.mark.parametrize("template, want", [
    ("{.metadata.labels}", '{"app":"web","app.kubernetes.io/name":"web-1"}'),
    ("{.metadata.labels.app\\.kubernetes\\.io/name}", "web-1"),
    ("{.metadata.labels['app.kubernetes.io/name']}", "web-1"),
    ('{.status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.spec.containers[0].ports[*].containerPort}", "80 443"),
    ("{.spec.containers[0].ports[-1].containerPort}", "443"),
    ("{.spec.containers[0].ports[0:1].containerPort}", "80"),
    ("{..containerPort}", "80 443"),
    ("{.metadata.nothing}", ""),
    ("{$.metadata.name}", "web-1"),
])
def test_paths(template, want):
    assert jsonpath.render(template, _pod("web-1", "True")) == want
