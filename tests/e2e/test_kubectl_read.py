"""The real kubectl's read path: field selectors, describe's Events, and the commands
kubectl 1.37 runs on a watch with sendInitialEvents (rollout status, wait, delete --wait).

What a user sees: `--field-selector status.phase=Running` lists the running pods and an
unknown field is refused in the apiserver's words; `kubectl describe` shows the Events
the scheduler, kubelet and controllers recorded; `rollout status` and `wait` return as
soon as the Deployment is done (at once when it already is); `delete --wait` returns once
the object is gone."""

from __future__ import annotations

import time

import pytest

from tests.conftest import namespace_fixture, wait_for
from tests.e2e.kubectl_helpers import kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

NS = "kread"
ns = namespace_fixture(NS)


def _k(cluster, *args: str, check: bool = True):
    return kubectl(cluster, "-n", NS, *args, check=check)


@pytest.fixture(scope="module")
def web(cluster, ns):
    _k(cluster, "create", "deployment", "web", "--image=netsim/echo:v1", "--replicas=2")
    yield "web"
    _k(cluster, "delete", "deploy", "web", "--ignore-not-found", check=False)


def test_rollout_status_and_wait_return_when_available(cluster, web):
    out = _k(cluster, "rollout", "status", "deploy/web", "--timeout=120s").stdout
    assert out.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'
    out = _k(cluster, "wait", "--for=condition=Available", "deploy/web", "--timeout=60s").stdout
    assert out.strip() == "deployment.apps/web condition met"
    # already done: the initial events say so at once (no waiting for a change)
    t = time.monotonic()
    _k(cluster, "rollout", "status", "deploy/web", "--timeout=30s")
    _k(cluster, "wait", "--for=condition=Available", "deploy/web", "--timeout=30s")
    assert time.monotonic() - t < 10


def test_field_selectors_through_kubectl(cluster, web):
    _k(cluster, "rollout", "status", "deploy/web", "--timeout=120s")
    names = _k(cluster, "get", "po", "--field-selector", "status.phase=Running",
               "-o", "name").stdout.split()
    assert len(names) == 2 and all(n.startswith("pod/web-") for n in names)
    p = _k(cluster, "get", "po", "--field-selector", "status.phase=Pending")
    assert p.stdout == "" and p.stderr.strip() == f"No resources found in {NS} namespace."
    pod = names[0].split("/", 1)[1]
    node = _k(cluster, "get", "po", pod, "-o", "jsonpath={.spec.nodeName}").stdout
    out = _k(cluster, "get", "po", "--field-selector", f"spec.nodeName={node},metadata.name={pod}",
             "-o", "name").stdout.split()
    assert out == [f"pod/{pod}"]
    out = kubectl(cluster, "get", "po", "-A", "--field-selector",
                  f"metadata.namespace!={NS},metadata.namespace!=kube-system", "-o",
                  "name").stdout.split()
    assert not any(n.startswith("pod/web-") for n in out)
    bad = _k(cluster, "get", "po", "--field-selector", "spec.foo=bar", check=False)
    assert bad.returncode != 0
    assert "field label not supported: spec.foo" in bad.stderr
    bad = _k(cluster, "get", "deploy", "--field-selector", "foo.bar=baz", check=False)
    assert ('"foo.bar" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"') in bad.stderr


def test_describe_shows_the_events(cluster, web):
    _k(cluster, "rollout", "status", "deploy/web", "--timeout=120s")
    pod = _k(cluster, "get", "po", "-o", "name").stdout.split()[0].split("/", 1)[1]

    def events_of(*what: str) -> str:
        out = _k(cluster, "describe", *what).stdout
        assert "\nEvents:" in out, out
        return out.split("\nEvents:", 1)[1]
    wait_for(lambda: "Started" in events_of("po", pod), 30, what="the pod's Started event")
    ev = events_of("po", pod)
    assert "Scheduled" in ev and "default-scheduler" in ev
    assert "ScalingReplicaSet" in events_of("deploy", "web")
    # netsim describe lists the same events (kubectl orders those of one second as the
    # server listed them, netsim by their microsecond time: compared as sets)
    mine = cluster.netsim("describe", "po", pod, "-n", NS).stdout.split("\nEvents:", 1)[1]
    assert sorted(line.split()[1] for line in mine.strip().splitlines()[2:]) == \
        sorted(line.split()[1] for line in events_of("po", pod).strip().splitlines()[2:])


def test_delete_wait_returns_once_gone(cluster, ns):
    _k(cluster, "create", "deployment", "gone", "--image=netsim/echo:v1", "--replicas=1")
    _k(cluster, "rollout", "status", "deploy/gone", "--timeout=120s")
    t = time.monotonic()
    out = _k(cluster, "delete", "deploy", "gone", "--wait", "--timeout=60s").stdout
    assert out.strip() == f'deployment.apps "gone" deleted from {NS} namespace'  # 1.37's words
    assert time.monotonic() - t < 30
    p = _k(cluster, "get", "deploy", "gone", check=False)
    assert 'deployments.apps "gone" not found' in p.stderr
    wait_for(lambda: not _k(cluster, "get", "po", "-l", "app=gone", "-o", "name").stdout.strip(),
             60, what="the deployment's pods to go")
