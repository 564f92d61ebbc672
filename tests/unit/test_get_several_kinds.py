"""`netsim get` of several kinds prints what kubectl prints for the same objects (AGE
aside): `<kind>/<name>` when the answers are of more than one kind, a blank line between
kinds, none with --no-headers; the server's Tables carry upstream's column names, which
kubectl upper-cases. The real kubectl reads an in-process API holding the same store."""

from __future__ import annotations

import re

import pytest

from netsim.api.client import LocalClient
from netsim.cli import get as get_cmd
from netsim.cli.context import Ctx
from tests.unit.kubectl_api import requires_kubectl, running_api

_AGE = re.compile(r"\b\d+[smhd]\d*[smh]?\b")


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        s = a.store
        labels = {"app": "web"}
        tmpl = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}
        d = s.create({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "web", "namespace": "default"},
                      "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                               "template": tmpl}})
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
               "uid": d["metadata"]["uid"], "controller": True}
        s.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": "web-5d8f", "namespace": "default", "labels": labels,
                               "ownerReferences": [ref]},
                  "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                           "template": tmpl}})
        for i in range(2):
            s.create({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"web-5d8f-{i}", "namespace": "default",
                                   "labels": labels},
                      "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}})
        s.create({"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "1"}})
        yield a


def _netsim(api, capsys, args, **kw) -> str:
    ctx = Ctx(cluster="unit", namespace="default", all_namespaces=kw.get("all", False),
              argv=["get"])
    ctx._client = LocalClient(api.store)
    get_cmd.get(ctx, args, kw.get("output"), None, kw.get("labels", False),
                kw.get("no_headers", False))
    return capsys.readouterr().out


def _aged(text: str) -> str:
    return _AGE.sub("<age>", text)


@requires_kubectl
@pytest.mark.parametrize("args, kw", [
    (["deploy,rs,po"], {}),
    (["deploy,rs,po"], {"output": "wide"}),
    (["deploy,rs,po"], {"no_headers": True}),
    (["deploy,cm"], {}),
    (["po"], {}),
    (["deploy/web", "cm/cfg"], {}),
    (["svc,cm"], {}),  # no Services: still <kind>/<name> for the ConfigMap
    (["deploy,po"], {"all": True}),
    (["deploy,po"], {"labels": True}),
    (["ns,cm"], {"all": True}),
])
def test_several_kinds_print_as_kubectl_prints_them(api, capsys, args, kw):
    flags = (["-o", kw["output"]] if kw.get("output") else []) + \
        (["--no-headers"] if kw.get("no_headers") else []) + \
        (["-A"] if kw.get("all") else []) + (["--show-labels"] if kw.get("labels") else [])
    p = api.kubectl("-n", "default", "get", *args, *flags)
    assert p.returncode == 0, p.stderr
    assert _aged(_netsim(api, capsys, args, **kw)) == _aged(p.stdout)


def test_prefixes_and_blank_lines(api, capsys):
    text = _netsim(api, capsys, ["deploy,rs,po"])
    blocks = text.split("\n\n")
    assert [b.splitlines()[1].split()[0] for b in blocks] == [
        "deployment.apps/web", "replicaset.apps/web-5d8f", "pod/web-5d8f-0"]
    assert _netsim(api, capsys, ["po"]).splitlines()[1].split()[0] == "web-5d8f-0"
