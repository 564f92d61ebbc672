"""The objects netsim's imperative verbs print with --dry-run=client, byte for byte against
the real kubectl (the venv's, 1.37: no `creationTimestamp: null` since apimachinery's
omitzero), in YAML and JSON. kubectl talks HTTPS to an in-process API (expose and
`create job --from` read from it); netsim's verbs run in-process on a LocalClient over the
same store."""

from __future__ import annotations

import json
import shlex
from shlex import quote as shlex_quote

import pytest

from netsim.api.client import LocalClient
from netsim.cli import create_cmds, workloads
from netsim.cli.main import _after_verb, build_parser, reorder
from tests.unit.kubectl_api import requires_kubectl, running_api

pytestmark = requires_kubectl


class FakeCtx:
    def __init__(self, client, argv, namespace):
        self.client, self.argv, self.namespace = client, argv, namespace
        self.ns = namespace or "default"
        self.all_namespaces = False


@pytest.fixture(scope="module")
def api():
    with running_api() as a:
        client = LocalClient(a.store)
        client.create({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "default",
                                    "labels": {"app": "web"}},
                       "spec": {"selector": {"matchLabels": {"app": "web"}},
                                "template": {"metadata": {"labels": {"app": "web"}},
                                             "spec": {"containers": [{
                                                 "name": "c", "image": "nginx",
                                                 "ports": [{"containerPort": 8080}]}]}}}})
        client.create({"apiVersion": "batch/v1", "kind": "CronJob",
                       "metadata": {"name": "hello", "namespace": "default"},
                       "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {
                           "spec": {"restartPolicy": "OnFailure", "containers": [
                               {"name": "c", "image": "busybox", "command": ["date"]}]}}}}}})
        yield a


def netsim(api, capsys, argv: list[str]) -> str:
    args, _ = build_parser().parse_known_args(reorder(list(argv)))
    ctx = FakeCtx(LocalClient(api.store), list(argv), args.namespace)
    if args.verb == "create":
        create_cmds.create_generic(ctx, args)
    else:
        workloads.run(args.verb, ctx, _after_verb(list(argv), args.verb), list(argv))
    return capsys.readouterr().out


CASES = [
    "create deployment web2 --image=nginx",
    "create deployment multi --image=nginx --image=busybox:1.36 --replicas=3 --port=80",
    "create service clusterip s --tcp=80:8080 --tcp=443:https",
    "create service clusterip headless --clusterip=None",
    "create service nodeport np --tcp=80:8080 --node-port=30080",
    "create service loadbalancer lb --tcp=443",
    "create service externalname ext --external-name=example.com",
    "create configmap cm --from-literal=a=b --from-literal=flag=y --from-literal=n=1e3",
    "create secret generic s --from-literal=user=admin --type=Opaque",
    "create secret docker-registry reg --docker-username=u --docker-password=p",
    "create job pi --image=busybox -- sh -c 'echo 3.14'",
    "create job manual --from=cronjob/hello",
    "create cronjob cj --image=busybox --schedule=*/5_*_*_*_* -- date",
    "create namespace n",
    "create pdb budget --selector=app=web --min-available=1",
    "create poddisruptionbudget b2 --selector=app=web --max-unavailable=50%",
    "run p --image=nginx",
    "run p --image=nginx --port=80 --labels=a=b --env=X=1 --restart=Never --command -- sleep 1",
    "run p --image=nginx --port=80 --expose",
    "expose deployment web --port=80 --target-port=8080",
    "expose deployment web --name=web-np --type=NodePort --port=80",
    "-n other create configmap cm --from-literal=a=b",
]
# strings go-yaml quotes and PyYAML does not, and the other way round (netsim.cli.goyaml)
LOOK_ALIKES = ["y", "N", "Off", "1e3", "0o17", "+.5", "-.5", "1_000", "0x_1F", "09", "12:30",
               "1:70", "2001-1-1", "2001-13-01", "2001-01-01T10:00:00Z", "2001-01-01T10:00:00",
               "=", "<<", "0b2", "._", ".nan", "~", "", "-", "x #y", "a: b", "oN",
               "0xFFFFFFFFFFFFFFFFFF", "1e400", "-9223372036854775809", "é", "<a & b>"]
CASES.append("create configmap looks " + " ".join(
    shlex_quote(f"--from-literal=k{i}={v}") for i, v in enumerate(LOOK_ALIKES)))


@pytest.mark.parametrize("output", ["yaml", "json"])
@pytest.mark.parametrize("case", CASES)
def test_dry_run_client_prints_what_kubectl_prints(api, capsys, case, output):
    argv = [w.replace("_", " ") if w.startswith("--schedule") else w for w in shlex.split(case)]
    at = argv.index("--") if "--" in argv else len(argv)
    argv[at:at] = ["--dry-run=client", "-o", output]  # before a container's command
    want = api.kubectl(*argv)
    assert want.returncode == 0, want.stderr
    got = netsim(api, capsys, argv)
    assert "creationTimestamp" not in got
    assert got == want.stdout
    if output == "json" and got.count('"apiVersion"') == 1:
        json.loads(got)
