"""`netsim drain` (netsim.cluster.drain) on the in-process API, and the real kubectl's drain
against the same API: kubectl's filters and refusals, its lines, PDB retries, dry runs."""

from __future__ import annotations

import threading
import time

import pytest

from netsim.api.client import LocalClient
from netsim.cluster.drain import (
    DAEMONSET_FATAL,
    LOCAL_STORAGE_FATAL,
    UNMANAGED_FATAL,
    Drainer,
    DrainOptions,
    filter_pod,
    go_duration,
)
from tests.unit.kubectl_api import requires_kubectl, running_api
from tests.unit.test_eviction import NS, make_pdb, make_pod, make_rs, sync


def make_node(store, name="node1") -> dict:
    return store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})


def make_ds(store, name="agent") -> dict:
    return store.create({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})


class Lines:
    def __init__(self):
        self.out: list[str] = []
        self.err: list[str] = []


def drainer(store, lines: Lines, **opts) -> Drainer:
    opts.setdefault("poll", 0.05)
    return Drainer(LocalClient(store), DrainOptions(**opts), lines.out.append, lines.err.append)


def pod_names(store) -> set[str]:
    return {p["metadata"]["name"] for p in store.list("pods", NS)[0]}


@pytest.fixture
def api():
    with running_api() as a:
        make_node(a.store, "node1")
        make_node(a.store, "node2")
        yield a


def test_go_duration_prints_as_go():
    assert [go_duration(s) for s in (5, 60, 90, 1.5, 0.1, 3600)] == \
        ["5s", "1m0s", "1m30s", "1.5s", "100ms", "1h0m0s"]


def test_refusals_drain_nothing_and_name_every_pod(api):
    ds = make_ds(api.store)
    make_pod(api.store, "agent-x", {"app": "agent"}, owner=ds)
    make_pod(api.store, "lonely", {"app": "x"})
    rs = make_rs(api.store, replicas=1)
    pod = make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    pod["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    api.store.delete("pods", "web-0", NS, 0)
    api.store.create({k: pod[k] for k in ("apiVersion", "kind", "spec")} |
                     {"metadata": {k: pod["metadata"][k] for k in
                                   ("name", "namespace", "labels", "ownerReferences")}})
    lines = Lines()
    d = drainer(api.store, lines)
    assert not d.drain(["node1"])
    assert lines.out == ["node/node1 cordoned"]
    assert api.store.get("nodes", "node1")["spec"]["unschedulable"] is True
    problem = lines.err[0]
    assert problem.startswith('error: unable to drain node "node1" due to error: [')
    for want in (f"cannot delete {DAEMONSET_FATAL}: default/agent-x",
                 f"cannot delete {UNMANAGED_FATAL}: default/lonely",
                 f"cannot delete {LOCAL_STORAGE_FATAL}: default/web-0"):
        assert want in problem
    assert problem.endswith(", continuing command...")
    assert lines.err[1:] == ["There are pending nodes to be drained:", " node1"]
    assert pod_names(api.store) == {"agent-x", "lonely", "web-0"}
    # a second drain: already cordoned
    lines = Lines()
    drainer(api.store, lines).drain(["node1"])
    assert lines.out[0] == "node/node1 already cordoned"


def test_drain_with_kubectls_flags_evicts_and_waits(api):
    ds = make_ds(api.store)
    make_pod(api.store, "agent-x", {"app": "agent"}, owner=ds)
    make_pod(api.store, "lonely", {"app": "x"})
    rs = make_rs(api.store, replicas=3)
    for i in range(2):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    make_pod(api.store, "web-2", {"app": "web"}, owner=rs, node="node2")
    lines = Lines()
    assert drainer(api.store, lines, ignore_daemonsets=True, force=True).drain(["node1"])
    assert lines.err == ["Warning: ignoring DaemonSet-managed Pods: default/agent-x; "
                         "deleting Pods that declare no controller: default/lonely"]
    assert lines.out[0] == "node/node1 cordoned"
    assert lines.out[-1] == "node/node1 drained"
    assert sorted(lines.out[1:-1]) == sorted(
        [f"evicting pod default/{n}" for n in ("lonely", "web-0", "web-1")]
        + [f"pod/{n} evicted" for n in ("lonely", "web-0", "web-1")])
    assert pod_names(api.store) == {"agent-x", "web-2"}


def test_pod_selector_limits_the_drain(api):
    rs = make_rs(api.store, replicas=2)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    make_pod(api.store, "other", {"app": "other"}, owner=rs)
    lines = Lines()
    assert drainer(api.store, lines, pod_selector="app=web").drain(["node1"])
    assert pod_names(api.store) == {"other"}


def test_a_budget_refusal_is_retried_until_it_allows(api):
    rs = make_rs(api.store, replicas=2)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    make_pod(api.store, "web-1", {"app": "web"}, owner=rs, node="node2", ready=False)
    make_pdb(api.store, minAvailable=1)
    assert sync(api.store)["status"]["disruptionsAllowed"] == 0
    lines = Lines()

    def heal():  # the replacement becomes Ready after the first refusal
        deadline = time.monotonic() + 10
        while not lines.err and time.monotonic() < deadline:
            time.sleep(0.02)
        p = api.store.get("pods", "web-1", NS)
        p["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        api.store.update(p, subresource="status")
        sync(api.store)
    t = threading.Thread(target=heal)
    t.start()
    ok = drainer(api.store, lines, retry_delay=0.3).drain(["node1"])
    t.join()
    assert ok, lines.err
    assert lines.err[0] == ('error when evicting pods/"web-0" -n "default" (will retry after '
                            "300ms): Cannot evict pod as it would violate the pod's disruption "
                            "budget.")
    assert lines.out.count("evicting pod default/web-0") >= 2
    assert lines.out[-2:] == ["pod/web-0 evicted", "node/node1 drained"]


def test_the_global_timeout_ends_a_refused_drain(api):
    rs = make_rs(api.store, replicas=1)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    make_pdb(api.store, minAvailable=1)
    sync(api.store)
    lines = Lines()
    d = drainer(api.store, lines, retry_delay=0.2, timeout=0.5)
    assert not d.drain(["node1"])
    assert d.failure == 'error when evicting pods/"web-0" -n "default": global timeout reached: ' \
                        "500ms"
    assert 'There are pending pods in node "node1" when an error occurred: ' in "\n".join(lines.err)
    assert "pod/web-0" in lines.err
    assert pod_names(api.store) == {"web-0"}


def test_disable_eviction_deletes_past_the_budget(api):
    rs = make_rs(api.store, replicas=1)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    make_pdb(api.store, minAvailable=1)
    sync(api.store)
    lines = Lines()
    assert drainer(api.store, lines, disable_eviction=True).drain(["node1"])
    assert lines.out == ["node/node1 cordoned", "pod/web-0 deleted", "node/node1 drained"]


def test_client_dry_run_changes_nothing(api):
    rs = make_rs(api.store, replicas=1)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    lines = Lines()
    assert drainer(api.store, lines, dry_run="client").drain(["node1"])
    assert lines.out == ["node/node1 cordoned (dry run)", "evicting pod default/web-0 (dry run)",
                         "node/node1 drained (dry run)"]
    assert not (api.store.get("nodes", "node1").get("spec") or {}).get("unschedulable")
    assert pod_names(api.store) == {"web-0"}


def test_filters_finished_and_orphaned_pods():
    ds_ref = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "gone", "uid": "u",
               "controller": True}]
    pod = {"metadata": {"name": "p", "namespace": NS, "ownerReferences": ds_ref},
           "spec": {}, "status": {"phase": "Running"}}
    missing = lambda ref: 'daemonsets.apps "gone" not found'  # noqa: E731
    assert filter_pod(pod, DrainOptions(), missing) == \
        (False, "Error", 'daemonsets.apps "gone" not found')
    assert filter_pod(pod, DrainOptions(force=True), missing) == (True, "Okay", "")
    done = {**pod, "status": {"phase": "Succeeded"}, "metadata": {"name": "p", "namespace": NS}}
    assert filter_pod(done, DrainOptions(), missing) == (True, "Okay", "")
    mirror = {"metadata": {"name": "m", "annotations": {"kubernetes.io/config.mirror": "x"}},
              "spec": {}}
    assert filter_pod(mirror, DrainOptions(), missing) == (False, "Skip", "")


@requires_kubectl
def test_real_kubectl_drain_against_netsims_api(api):
    ds = make_ds(api.store)
    make_pod(api.store, "agent-x", {"app": "agent"}, owner=ds)
    rs = make_rs(api.store, replicas=2)
    make_pod(api.store, "web-0", {"app": "web"}, owner=rs)
    make_pod(api.store, "lonely", {"app": "x"})
    r = api.kubectl("drain", "node1")
    assert r.returncode == 1
    assert r.stdout == "node/node1 cordoned\n"
    assert "error: unable to drain node \"node1\" due to error: " in r.stderr
    assert f"cannot delete {DAEMONSET_FATAL}: default/agent-x" in r.stderr
    assert f"cannot delete {UNMANAGED_FATAL}: default/lonely" in r.stderr
    r = api.kubectl("drain", "node1", "--ignore-daemonsets", "--force")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ("Warning: ignoring DaemonSet-managed Pods: default/agent-x; deleting "
                        "Pods that declare no controller: default/lonely\n") or r.stderr == (
        "Warning: deleting Pods that declare no controller: default/lonely; ignoring "
        "DaemonSet-managed Pods: default/agent-x\n")
    out = r.stdout.splitlines()
    assert out[0] == "node/node1 already cordoned"
    assert out[-1] == "node/node1 drained"
    assert sorted(out[1:-1]) == sorted(["evicting pod default/web-0", "evicting pod default/lonely",
                                        "pod/web-0 evicted", "pod/lonely evicted"])
    assert pod_names(api.store) == {"agent-x"}
    # a budget that allows nothing: kubectl's retry line, then its global timeout
    make_pod(api.store, "web-1", {"app": "web"}, owner=rs, node="node2")
    make_pdb(api.store, minAvailable=1)
    sync(api.store)
    r = api.kubectl("drain", "node2", "--timeout=2s")
    assert r.returncode == 1
    assert ('error when evicting pods/"web-1" -n "default" (will retry after 5s): Cannot evict '
            "pod as it would violate the pod's disruption budget.") in r.stderr
    assert 'error when evicting pods/"web-1" -n "default": global timeout reached: 2s' in r.stderr
    r = api.kubectl("uncordon", "node1")
    assert r.stdout == "node/node1 uncordoned\n"
