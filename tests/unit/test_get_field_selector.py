"""`netsim get --field-selector` against the real kubectl on an in-process API holding the
same store: the rows it keeps, "No resources found", and kubectl's words when the server
refuses a selector (cli-runtime's `Unable to find "/v1, Resource=pods" that match ...`) or
a name comes with a selector. AGE aside."""

from __future__ import annotations

import re

import pytest

from netsim.api.client import LocalClient
from netsim.cli import get as get_cmd
from netsim.cli.context import CliError, Ctx
from netsim.cli.main import build_parser, reorder
from tests.unit.kubectl_api import requires_kubectl, running_api

pytestmark = requires_kubectl
_AGE = re.compile(r"\b\d+[smhd]\d*[smh]?\b")


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        a.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
        for name, node, ns in (("p1", "n1", "default"), ("p2", "n2", "default"),
                               ("p3", "n1", "other")):
            a.store.create({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": name, "namespace": ns},
                            "spec": {"nodeName": node,
                                     "containers": [{"name": "c", "image": "nginx"}]}})
        a.store.create({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"selector": {"matchLabels": {"app": "web"}},
                                 "template": {"metadata": {"labels": {"app": "web"}},
                                              "spec": {"containers": [{"name": "c",
                                                                       "image": "nginx"}]}}}})
        yield a


def netsim(api, capsys, argv: list[str]) -> tuple[int, str, str]:
    args, _ = build_parser().parse_known_args(reorder(list(argv)))
    ctx = Ctx(cluster="unit", namespace=args.namespace, all_namespaces=args.all_namespaces,
              argv=list(argv))
    ctx._client = LocalClient(api.store)
    try:
        rc = get_cmd.get(ctx, args.args, args.output, args.selector, args.show_labels,
                         args.no_headers, [], args.field_selector)
    except CliError as e:
        cap = capsys.readouterr()
        return 1, cap.out, cap.err + str(e) + "\n"
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("argv", [
    ["get", "pods", "--field-selector=spec.nodeName=n1"],
    ["get", "pods", "--field-selector", "spec.nodeName!=n1"],
    ["get", "pods", "-A", "--field-selector=spec.nodeName=n1,metadata.namespace!=default"],
    ["get", "pods", "-o", "name", "--field-selector=metadata.name=p2"],
    ["get", "pods,deployments", "--field-selector=metadata.name=web"],
    ["get", "pods", "--field-selector=spec.nodeName=n3"],
    ["get", "pods", "--field-selector=status.phase=Running", "-o", "name"],
    # refused: the server's words, wrapped as kubectl wraps them
    ["get", "pods", "--field-selector", "foo=bar"],
    ["get", "pods", "--field-selector=spec.nodeName"],
    ["get", "deployments", "-l", "app=web", "--field-selector=spec.replicas=1"],
    ["get", "pods", "p1", "--field-selector=spec.nodeName=n1"],
    ["get", "pods", "p1", "-l", "app=web"],
])
def test_field_selector_as_kubectl(api, capsys, argv):
    want = api.kubectl(*argv)
    rc, out, err = netsim(api, capsys, argv)
    assert (rc, _AGE.sub("<age>", out), err) == (
        want.returncode, _AGE.sub("<age>", want.stdout), want.stderr)
