"""The DaemonSet controller against a real Store, with the real scheduler placing its pods.

A fake kubelet marks bound pods Running+Ready (the test says which images become ready) and
finishes graceful deletions; each step reconciles the DaemonSets, then schedules.
"""

from __future__ import annotations

import pytest

from netsim.controllers import history
from netsim.controllers.daemonset import DaemonSetController, target_node
from netsim.controllers.scheduler import Scheduler
from tests.unit.workload_helpers import FakeCluster, created_plus, pod_ready, running_status

NS = "kube-system"
CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
V1 = "quay.io/fluentd_elasticsearch/fluentd:v2.5.2"
V2 = "quay.io/fluentd_elasticsearch/fluentd:v2.6.0"


def node(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    spec = {"taints": taints} if taints else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                   **(labels or {})}},
            "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}


def fluentd(image: str = V1, tolerate_cp: bool = True, **spec) -> dict:
    """The Kubernetes docs' fluentd-elasticsearch DaemonSet (volumes trimmed)."""
    pod_spec: dict = {"containers": [{"name": "fluentd-elasticsearch", "image": image,
                                      "resources": {"limits": {"memory": "200Mi"},
                                                    "requests": {"cpu": "100m",
                                                                 "memory": "200Mi"}}}],
                      "terminationGracePeriodSeconds": 30}
    if tolerate_cp:
        pod_spec["tolerations"] = [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
             "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/master", "operator": "Exists",
             "effect": "NoSchedule"}]
    d = {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "fluentd-elasticsearch", "namespace": NS,
                      "labels": {"k8s-app": "fluentd-logging"}},
         "spec": {"selector": {"matchLabels": {"name": "fluentd-elasticsearch"}},
                  "template": {"metadata": {"labels": {"name": "fluentd-elasticsearch"}},
                               "spec": pod_spec}}}
    d["spec"].update(spec)
    return d


class Cluster(FakeCluster):
    def __init__(self, nodes: list[dict]) -> None:
        super().__init__()
        for n in nodes:
            self.client.create(n)
        self.dsc = DaemonSetController(self.client, clock=lambda: self.t)
        self.sched = Scheduler(self.client)
        self.sched.min_pass_gap = 0.0
        self.observers: list = []

    def kubelet(self) -> None:
        stamp = self.stamp()
        for pod in self.kubelet_pods(NS):
            if not pod["spec"].get("nodeName"):
                continue
            ok = self.should_be_ready(pod)
            if pod["status"].get("phase") != "Running" or pod_ready(pod) != ok:
                pod["status"].update(running_status(ok, stamp))
                self.client.update_status(pod)

    def step(self) -> None:
        self.kubelet()
        for fn in self.observers:
            fn(self)
        for ds in self.client.list("daemonsets", NS):
            self.dsc.reconcile(f"{NS}/{ds['metadata']['name']}")
            for fn in self.observers:
                fn(self)
        self.sched.reconcile("pending")

    def pods(self) -> list[dict]:
        return [p for p in self.client.list("pods", NS) if not p["metadata"].get("deletionTimestamp")]

    def ds(self, name: str = "fluentd-elasticsearch") -> dict:
        return self.client.get("daemonsets", name, NS)

    def events(self, reason: str) -> list[str]:
        return [e["message"] for e in self.client.list("events", NS) if e["reason"] == reason]


def three() -> list[dict]:
    return [node("k8s-master-171", {"node-role.kubernetes.io/control-plane": ""}, [CP_TAINT]),
            node("k8s-slave-172", {"disk": "ssd"}), node("k8s-slave-173")]


@pytest.fixture
def cl() -> Cluster:
    c = Cluster(three())
    c.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}) \
        if c.client.get_or_none("namespaces", NS) is None else None
    return c


def test_one_pod_per_node_including_a_tolerated_control_plane(cl: Cluster) -> None:
    cl.client.create(fluentd())
    cl.run()
    pods = cl.pods()
    assert sorted(p["spec"]["nodeName"] for p in pods) == \
        ["k8s-master-171", "k8s-slave-172", "k8s-slave-173"]
    for p in pods:
        assert p["metadata"]["name"].startswith("fluentd-elasticsearch-")
        labels = p["metadata"]["labels"]
        assert labels["pod-template-generation"] == "1"
        assert labels[history.POD_HASH_LABEL]
        # bound by affinity, placed by the scheduler
        terms = p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                           "values": [p["spec"]["nodeName"]]}]}]
        keys = {(t["key"], t.get("effect")) for t in p["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in keys
    st = cl.ds()["status"]
    assert st == {"currentNumberScheduled": 3, "numberMisscheduled": 0,
                  "desiredNumberScheduled": 3, "numberReady": 3, "observedGeneration": 1,
                  "updatedNumberScheduled": 3, "numberAvailable": 3}
    assert len(cl.events("SuccessfulCreate")) == 3
    assert all(m.startswith("Created pod: fluentd-elasticsearch-")
               for m in cl.events("SuccessfulCreate"))
    revs = cl.client.list("controllerrevisions", NS)
    assert len(revs) == 1 and revs[0]["revision"] == 1
    assert revs[0]["metadata"]["name"] == \
        "fluentd-elasticsearch-" + revs[0]["metadata"]["labels"][history.HASH_LABEL]
    # the API server's defaults, as kubectl get -o yaml shows them
    spec = cl.ds()["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert cl.ds()["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"


def test_untolerated_taint_node_selector_and_affinity(cl: Cluster) -> None:
    cl.client.create(fluentd(tolerate_cp=False))
    cl.run()
    assert sorted(p["spec"]["nodeName"] for p in cl.pods()) == ["k8s-slave-172", "k8s-slave-173"]
    assert cl.ds()["status"]["desiredNumberScheduled"] == 2
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    cl.client.update(ds)
    cl.run()
    assert [p["spec"]["nodeName"] for p in cl.pods()] == ["k8s-slave-172"]
    assert cl.ds()["status"]["desiredNumberScheduled"] == 1
    assert cl.events("SuccessfulDelete")
    assert cl.ds()["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"


def test_noschedule_taint_keeps_the_running_pod_noexecute_removes_it(cl: Cluster) -> None:
    cl.client.create(fluentd(tolerate_cp=False))
    cl.run()
    n = cl.client.get("nodes", "k8s-slave-173")
    n["spec"]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    cl.client.update(n)
    cl.run()
    assert len(cl.pods()) == 2
    assert cl.ds()["status"]["desiredNumberScheduled"] == 1
    assert cl.ds()["status"]["numberMisscheduled"] == 1
    n = cl.client.get("nodes", "k8s-slave-173")
    n["spec"]["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoExecute"}]
    cl.client.update(n)
    cl.run()
    assert [p["spec"]["nodeName"] for p in cl.pods()] == ["k8s-slave-172"]


def test_new_node_gets_a_pod_and_deleted_pod_comes_back(cl: Cluster) -> None:
    cl.client.create(fluentd())
    cl.run()
    cl.client.create(node("k8s-slave-174"))
    cl.run()
    assert "k8s-slave-174" in {p["spec"]["nodeName"] for p in cl.pods()}
    victim = next(p for p in cl.pods() if p["spec"]["nodeName"] == "k8s-slave-172")
    cl.client.delete("pods", victim["metadata"]["name"], NS)
    cl.run()
    on = [p for p in cl.pods() if p["spec"]["nodeName"] == "k8s-slave-172"]
    assert len(on) == 1 and on[0]["metadata"]["name"] != victim["metadata"]["name"]
    assert cl.ds()["status"]["numberReady"] == 4


def test_rolling_update_max_unavailable_1(cl: Cluster) -> None:
    cl.client.create(fluentd())
    cl.run()

    def bound(c: Cluster) -> None:
        ready = [p for p in c.pods() if p["status"].get("phase") == "Running"
                 and any(x["type"] == "Ready" and x["status"] == "True"
                         for x in p["status"].get("conditions") or [])]
        assert len(ready) >= 2, "more than maxUnavailable=1 pods down"
        per_node: dict = {}
        for p in c.pods():
            per_node.setdefault(target_node(p), []).append(p)
        assert all(len(v) == 1 for v in per_node.values())
    cl.observers.append(bound)
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V2}
    assert all(p["metadata"]["labels"]["pod-template-generation"] == "2" for p in cl.pods())
    st = cl.ds()["status"]
    assert st["updatedNumberScheduled"] == 3 and st["numberAvailable"] == 3
    assert st["observedGeneration"] == 2
    revs = sorted(cl.client.list("controllerrevisions", NS), key=lambda r: r["revision"])
    assert [r["revision"] for r in revs] == [1, 2]


def test_rolling_update_stalls_on_unready_new_pods(cl: Cluster) -> None:
    cl.client.create(fluentd())
    cl.run()
    cl.ready_images = {V1}
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    cl.run()
    images = sorted(p["spec"]["containers"][0]["image"] for p in cl.pods())
    assert images == [V1, V1, V2]
    assert cl.ds()["status"]["numberUnavailable"] == 1


def test_max_surge_starts_the_new_pod_before_removing_the_old(cl: Cluster) -> None:
    cl.client.create(fluentd(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}}))
    cl.run()

    def available(c: Cluster) -> None:
        per_node: dict = {}
        for p in c.pods():
            if p["spec"].get("nodeName") and p["status"].get("phase") == "Running":
                per_node.setdefault(p["spec"]["nodeName"], []).append(p)
        assert len(per_node) == 3, "a node lost its daemon pod during a surge update"
    cl.observers.append(available)
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    cl.run()
    assert sorted(p["spec"]["containers"][0]["image"] for p in cl.pods()) == [V2] * 3


def test_on_delete_updates_only_pods_that_are_deleted(cl: Cluster) -> None:
    cl.client.create(fluentd(updateStrategy={"type": "OnDelete"}))
    cl.run()
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V1}
    assert "updatedNumberScheduled" not in cl.ds()["status"]
    victim = cl.pods()[0]
    cl.client.delete("pods", victim["metadata"]["name"], NS)
    cl.run()
    assert sorted(p["spec"]["containers"][0]["image"] for p in cl.pods()) == [V1, V1, V2]
    assert cl.ds()["status"]["updatedNumberScheduled"] == 1


def test_rollback_restores_the_old_revision_as_a_new_number(cl: Cluster) -> None:
    cl.client.create(fluentd())
    cl.run()
    ds = cl.ds()
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    cl.run()
    revs = cl.client.list("controllerrevisions", NS)
    assert history.history_rows(history.owned(cl.ds(), revs)) == [(1, "<none>"), (2, "<none>")]
    new, msg = history.rollback(cl.ds(), revs, 0)
    assert msg == "rolled back"
    cl.client.update(new)
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V1}
    revs = cl.client.list("controllerrevisions", NS)
    assert sorted(r["revision"] for r in revs) == [2, 3]
    assert history.rollback(cl.ds(), revs, 3) == (
        None, "skipped rollback (current template already matches revision 3)")
    assert history.rollback(cl.ds(), revs, 7) == (
        None, "unable to find specified revision 7 in history")


def test_host_network_pods_tolerate_network_unavailable(cl: Cluster) -> None:
    d = fluentd()
    d["spec"]["template"]["spec"]["hostNetwork"] = True
    cl.client.create(d)
    cl.run()
    keys = {t["key"] for t in cl.pods()[0]["spec"]["tolerations"]}
    assert "node.kubernetes.io/network-unavailable" in keys


# ---- rollout status / history / undo ds, as kubectl prints them ------------------------------
def _ctx(cl: Cluster):
    from netsim.cli.context import Ctx
    c = Ctx(cluster="nsj2", namespace=NS, all_namespaces=False, argv=["rollout"])
    c._client = cl.client
    return c


def test_rollout_status_history_and_undo_ds(cl: Cluster, capsys) -> None:
    from netsim.cli import rollout_cmds
    from netsim.cli.context import CliError
    cl.client.create(fluentd())
    cl.run()
    ctx = _ctx(cl)
    assert rollout_cmds.run(ctx, ["status", "ds/fluentd-elasticsearch"]) == 0
    assert capsys.readouterr().out == 'daemon set "fluentd-elasticsearch" successfully rolled out\n'
    ds = cl.ds()
    ds["metadata"]["annotations"]["kubernetes.io/change-cause"] = "image v2"
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = V2
    cl.client.update(ds)
    assert rollout_cmds.run(ctx, ["status", "ds/fluentd-elasticsearch", "--watch=false"]) == 0
    assert capsys.readouterr().out == "Waiting for daemon set spec update to be observed...\n"
    cl.run()
    assert rollout_cmds.run(ctx, ["history", "daemonset", "fluentd-elasticsearch"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["daemonset.apps/fluentd-elasticsearch ", "REVISION  CHANGE-CAUSE",
                                "1         <none>", "2         image v2", ""]
    assert rollout_cmds.run(ctx, ["history", "ds/fluentd-elasticsearch", "--revision=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("daemonset.apps/fluentd-elasticsearch with revision #1\nPod Template:")
    assert V1 in out
    assert rollout_cmds.run(ctx, ["undo", "ds/fluentd-elasticsearch"]) == 0
    assert capsys.readouterr().out == "daemonset.apps/fluentd-elasticsearch rolled back\n"
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V1}
    assert rollout_cmds.run(ctx, ["undo", "ds/fluentd-elasticsearch", "--to-revision=3"]) == 0
    assert capsys.readouterr().out == ("daemonset.apps/fluentd-elasticsearch skipped rollback "
                                       "(current template already matches revision 3)\n")
    ds = cl.ds()
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    cl.client.update(ds)
    with pytest.raises(CliError, match="rollout status is only available for RollingUpdate"):
        rollout_cmds.run(ctx, ["status", "ds/fluentd-elasticsearch"])


# ---- kubectl get ds / describe ds ----------------------------------------------------------------
def test_get_and_describe_ds_as_kubectl(cl: Cluster) -> None:
    from netsim.api.printing import printers
    cl.client.create(fluentd())
    cl.run()
    ds = cl.ds()
    now = created_plus(ds, 125)
    assert printers.print_table("daemonsets", [ds], now=now) == (
        "NAME                    DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE\n"
        "fluentd-elasticsearch   3         3         3       3            3           <none>          2m5s\n")
    wide = printers.print_table("daemonsets", [ds], now=now, wide=True).splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["fluentd-elasticsearch", V1, "name=fluentd-elasticsearch"]
    rev = cl.client.list("controllerrevisions", NS)[0]
    assert printers.print_table("controllerrevisions", [rev], now=created_plus(rev, 5)).splitlines() \
        == ["NAME                               CONTROLLER                             REVISION   AGE",
            f"{rev['metadata']['name']:<35}daemonset.apps/fluentd-elasticsearch   1          5s"]
    lines = cl.described("daemonsets", ds, now)
    assert lines[:11] == [
        "Name:           fluentd-elasticsearch",
        "Selector:       name=fluentd-elasticsearch",
        "Node-Selector:  <none>",
        "Labels:         k8s-app=fluentd-logging",
        "Annotations:    deprecated.daemonset.template.generation: 1",
        "Desired Number of Nodes Scheduled: 3",
        "Current Number of Nodes Scheduled: 3",
        "Number of Nodes Scheduled with Up-to-date Pods: 3",
        "Number of Nodes Scheduled with Available Pods: 3",
        "Number of Nodes Misscheduled: 0",
        "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed"]
    assert "Pod Template:" in lines
    assert sum("SuccessfulCreate" in ln and "daemonset-controller" in ln
               and "Created pod: fluentd-elasticsearch-" in ln for ln in lines) == 3


@pytest.mark.parametrize("strategy, message", [
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
     "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when "
     "maxUnavailable is non-zero"),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
     "maxSurge is 0"),
    ({"type": "Recreate"},
     'spec.updateStrategy.type: Unsupported value: "Recreate": supported values: "OnDelete", '
     '"RollingUpdate"'),
])
def test_bad_update_strategies_say_what_the_apiserver_says(cl: Cluster, strategy, message) -> None:
    from netsim.api import errors
    with pytest.raises(errors.Invalid) as e:
        cl.client.create(fluentd(updateStrategy=strategy))
    assert message in str(e.value)


def test_rollout_restart_ds_replaces_every_pod(cl: Cluster, capsys) -> None:
    from netsim.cli import rollout_cmds
    cl.client.create(fluentd())
    cl.run()
    before = {p["metadata"]["uid"] for p in cl.pods()}
    assert rollout_cmds.run(_ctx(cl), ["restart", "ds/fluentd-elasticsearch"]) == 0
    assert capsys.readouterr().out == "daemonset.apps/fluentd-elasticsearch restarted\n"
    cl.run()
    pods = cl.pods()
    assert len(pods) == 3 and not before & {p["metadata"]["uid"] for p in pods}
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {})
               for p in pods)


def test_a_second_restart_within_the_same_second_is_refused_as_kubectl_does(
        cl: Cluster, capsys, monkeypatch) -> None:
    # kubectl's restartedAt has a second's resolution: the same second makes an empty patch,
    # which kubectl refuses rather than print "restarted" for a restart that did not happen
    from datetime import datetime, timezone

    from netsim.cli import rollout_cmds

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 2, 19, 11, 36, 400000, tzinfo=timezone.utc)
    monkeypatch.setattr(rollout_cmds, "datetime", Frozen)
    cl.client.create(fluentd())
    assert rollout_cmds.run(_ctx(cl), ["restart", "ds/fluentd-elasticsearch"]) == 0
    rv = cl.client.get("daemonsets", "fluentd-elasticsearch", NS)["metadata"]["resourceVersion"]
    capsys.readouterr()
    assert rollout_cmds.run(_ctx(cl), ["restart", "ds/fluentd-elasticsearch"]) == 1
    assert capsys.readouterr().err == (
        "error: failed to create patch for fluentd-elasticsearch: if restart has already been "
        "triggered within the past second, please wait before attempting to trigger another\n")
    assert cl.client.get("daemonsets", "fluentd-elasticsearch",
                         NS)["metadata"]["resourceVersion"] == rv


def test_node_heartbeats_do_not_queue_daemonsets(cl: Cluster) -> None:
    cl.client.create(fluentd())
    old = cl.client.get("nodes", "k8s-slave-172")
    beat = {**old, "status": {**old["status"], "conditions": [
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-12-01T10:00:00Z"}]}}
    cl.dsc._enqueue("nodes", old, beat)
    assert len(cl.dsc.queue) == 0
    tainted = {**old, "spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}
    cl.dsc._enqueue("nodes", old, tainted)
    assert len(cl.dsc.queue) == 1


def test_a_deleted_nodes_pod_is_left_to_the_pod_gc_an_unscheduled_one_goes(cl: Cluster) -> None:
    # upstream: the DaemonSet controller deletes only the unscheduled pods of a node that is
    # gone; the bound ones are the pod GC's orphans
    key = f"{NS}/fluentd-elasticsearch"
    cl.client.create(fluentd())
    cl.run()
    bound = next(p for p in cl.pods() if p["spec"]["nodeName"] == "k8s-slave-173")
    cl.client.create(node("k8s-slave-174"))
    cl.dsc.reconcile(key)  # its pod is made, not yet scheduled
    (waiting,) = [p for p in cl.pods() if not p["spec"].get("nodeName")]
    assert target_node(waiting) == "k8s-slave-174"
    cl.client.delete("nodes", "k8s-slave-173")
    cl.client.delete("nodes", "k8s-slave-174")
    cl.dsc.reconcile(key)
    left = {p["metadata"]["name"]: p for p in cl.client.list("pods", NS)}
    assert waiting["metadata"]["name"] not in left
    assert not left[bound["metadata"]["name"]]["metadata"].get("deletionTimestamp")
