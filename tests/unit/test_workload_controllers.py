"""Deployment and ReplicaSet controllers against a real Store, driven step by step.

A tiny fake kubelet binds pods and marks them Running+Ready (or not, per test), and removes
terminating pods; every controller call is followed by an observation of what a user would
see (`get po`, `get rs`, `describe deploy` events), so the bounds hold at every moment.
"""

from __future__ import annotations

import copy
import re

import pytest

from netsim.api import errors
from netsim.controllers import rollout as ro
from netsim.controllers.deployment import DeploymentController
from netsim.controllers.replicaset import ReplicaSetController, controller_ref, is_ready
from tests.unit.workload_helpers import FakeCluster, running_status

NS = "uit"
V1 = "192.168.3.171:5000/myblog:v1"
V2 = "192.168.3.171:5000/myblog:v2"
POD_NAME = re.compile(r"^ublog-[4-9bcdf]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def ublog(replicas: int = 3, image: str = V1, **spec) -> dict:
    """The seed's ublog Deployment (probes and env trimmed: no kubelet runs them here)."""
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "ublog", "namespace": NS},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "myblog"}},
                  "template": {"metadata": {"labels": {"app": "myblog"}},
                               "spec": {"containers": [{
                                   "name": "myblog", "image": image,
                                   "imagePullPolicy": "IfNotPresent",
                                   "ports": [{"containerPort": 8002}],
                                   "resources": {"requests": {"memory": "100Mi", "cpu": "50m"},
                                                 "limits": {"memory": "500Mi", "cpu": "100m"}}}]}}}}
    d["spec"].update(spec)
    return d


class Cluster(FakeCluster):
    def __init__(self) -> None:
        super().__init__(NS)
        self.rsc = ReplicaSetController(self.client, clock=lambda: self.t)
        self.dc = DeploymentController(self.client, clock=lambda: self.t)
        self.observers: list = []
        self.seen_events: dict[str, int] = {}
        self.event_log: list[str] = []

    # -- a fake kubelet -------------------------------------------------------------------
    def kubelet(self) -> None:
        stamp = self.stamp()
        for pod in self.kubelet_pods(NS, self.observe):
            pod = self.bound(pod)
            ok = self.should_be_ready(pod)
            if pod["status"].get("phase") != "Running" or is_ready(pod) != ok:
                pod["status"].update({
                    **running_status(ok, stamp),
                    "containerStatuses": [{"name": "myblog", "ready": ok, "restartCount": 0,
                                           "image": pod["spec"]["containers"][0]["image"]}]})
                self.client.update_status(pod)
            self.observe()

    # -- controllers, one call at a time, each followed by an observation ---------------------
    def step(self) -> None:
        self.kubelet()
        for rs in self.client.list("replicasets", NS):
            self.rsc.reconcile(f"{NS}/{rs['metadata']['name']}")
            self.observe()
        for d in self.client.list("deployments", NS):
            self.dc.reconcile(f"{NS}/{d['metadata']['name']}")
            self.observe()

    def observe(self) -> None:
        for ev in sorted(self.client.list("events", NS),
                         key=lambda e: int(e["metadata"]["resourceVersion"])):
            if ev["reason"] != "ScalingReplicaSet":
                continue
            n = ev["metadata"]["name"]
            if self.seen_events.get(n) != ev.get("count", 1):
                self.seen_events[n] = ev.get("count", 1)
                self.event_log.append(ev["message"])
        for fn in self.observers:
            fn(self)

    # -- what a user sees ---------------------------------------------------------------------
    def pods(self, active_only: bool = True) -> list[dict]:
        return [p for p in self.client.list("pods", NS)
                if not (active_only and p["metadata"].get("deletionTimestamp"))]

    def rss(self) -> list[dict]:
        return self.client.list("replicasets", NS)

    def deploy(self, name: str = "ublog") -> dict:
        return self.client.get("deployments", name, NS)

    def set_image(self, image: str, cause: str | None = None, name: str = "ublog") -> None:
        patch: dict = {"spec": {"template": {"spec": {"containers": [
            {**self.deploy(name)["spec"]["template"]["spec"]["containers"][0], "image": image}]}}}}
        if cause:
            patch["metadata"] = {"annotations": {ro.CHANGE_CAUSE: cause}}
        self.client.patch("deployments", name, NS, patch)

    def undo(self, to_revision: int = 0, name: str = "ublog") -> str:
        d = self.deploy(name)
        new, msg = ro.rollback_deployment(d, self.rss(), to_revision)
        if new is not None:
            self.client.update(new)
        return msg

    def revisions(self) -> list[int]:
        return sorted(ro.revision(rs) for rs in self.rss())


@pytest.fixture
def cl() -> Cluster:
    return Cluster()


def _hash_of(rs: dict) -> str:
    return rs["metadata"]["labels"][ro.HASH_LABEL]


def _by_image(cl: Cluster) -> dict[str, dict]:
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in cl.rss()}


# ---- creation, names, defaults -----------------------------------------------------------------
def test_create_names_labels_status_and_defaults(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=1))
    cl.run()
    (rs,) = cl.rss()
    h = _hash_of(rs)
    assert re.fullmatch(r"[4-9bcdf]{1,10}", h)
    assert rs["metadata"]["name"] == f"ublog-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "myblog", ro.HASH_LABEL: h}
    (pod,) = cl.pods()
    assert POD_NAME.match(pod["metadata"]["name"])
    assert pod["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
    assert pod["metadata"]["labels"] == {"app": "myblog", ro.HASH_LABEL: h}
    ref = controller_ref(pod)
    assert ref["kind"] == "ReplicaSet" and ref["name"] == rs["metadata"]["name"]
    assert ref["blockOwnerDeletion"] is True
    assert controller_ref(rs)["kind"] == "Deployment"
    d = cl.deploy()
    spec = d["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["metadata"] == {"creationTimestamp": None,
                                            "labels": {"app": "myblog"}}
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert d["metadata"]["annotations"][ro.REVISION] == "1"
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"],
            st["availableReplicas"]) == (1, 1, 1, 1)
    assert st["observedGeneration"] == d["metadata"]["generation"]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Progressing"]["message"] == \
        f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    assert rs["status"] == {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1,
                            "availableReplicas": 1, "observedGeneration": 1}
    assert cl.event_log == [f"Scaled up replica set {rs['metadata']['name']} to 1"]
    rs_events = [e["message"] for e in cl.client.list("events", NS)
                 if e["source"]["component"] == "replicaset-controller"]
    assert rs_events == [f"Created pod: {pod['metadata']['name']}"]


def test_same_template_same_hash_new_template_new_rs(cl: Cluster) -> None:
    cl.client.create(ublog())
    cl.run()
    h1 = _hash_of(cl.rss()[0])
    assert ro.compute_hash(cl.deploy()["spec"]["template"]) == h1
    cl.set_image(V2)
    cl.run()
    hashes = {_hash_of(rs) for rs in cl.rss()}
    assert len(hashes) == 2 and h1 in hashes


# ---- the seed's rolling update -------------------------------------------------------------------
def test_seed_rolling_update_bounds_and_event_order(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=3))
    cl.run()
    old = cl.rss()[0]["metadata"]["name"]
    seen = []

    def bounds(c: Cluster) -> None:
        pods = c.pods()
        avail = sum(1 for p in pods if is_ready(p))
        seen.append((len(pods), avail))
        assert len(pods) <= 4, "more than replicas + maxSurge pods"
        assert avail >= 3, "fewer than replicas - maxUnavailable available"

    cl.observers.append(bounds)
    cl.event_log.clear()
    cl.set_image(V2)
    cl.run()
    new = _by_image(cl)[V2]["metadata"]["name"]
    assert max(n for n, _ in seen) == 4
    assert cl.event_log == [
        f"Scaled up replica set {new} to 1",
        f"Scaled down replica set {old} to 2 from 3",
        f"Scaled up replica set {new} to 2 from 1",
        f"Scaled down replica set {old} to 1 from 2",
        f"Scaled up replica set {new} to 3 from 2",
        f"Scaled down replica set {old} to 0 from 1",
    ]
    rows = {rs["metadata"]["name"]: (rs["spec"]["replicas"], rs["status"].get("replicas", 0))
            for rs in cl.rss()}
    assert rows == {new: (3, 3), old: (0, 0)}
    d = cl.deploy()
    assert d["metadata"]["annotations"][ro.REVISION] == "2"
    assert [p["spec"]["containers"][0]["image"] for p in cl.pods()] == [V2] * 3


def test_rollback_by_edit_reuses_old_rs_and_counts_repeated_events(cl: Cluster) -> None:
    """The seed edits back to v1: the old RS is reused (scaled up from 0), no third RS."""
    cl.client.create(ublog(replicas=3))
    cl.run()
    first = cl.rss()[0]["metadata"]["name"]
    cl.set_image(V2)
    cl.run()
    cl.set_image(V1)
    cl.run()
    assert {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in cl.rss()}[first] == 3
    assert len(cl.rss()) == 2
    evs = {e["message"]: e["count"] for e in cl.client.list("events", NS)
           if e["reason"] == "ScalingReplicaSet"}
    assert evs[f"Scaled up replica set {first} to 3"] == 1     # its creation
    assert evs[f"Scaled up replica set {first} to 1 from 0"] == 1
    assert evs[f"Scaled up replica set {first} to 3 from 2"] == 1
    assert cl.revisions() == [2, 3]


def test_ten_replicas_surge_3_unavailable_2(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    cl.run()
    counts = []

    def bounds(c: Cluster) -> None:
        pods = c.pods()
        avail = sum(1 for p in pods if is_ready(p))
        counts.append((len(pods), avail))
        assert len(pods) <= 13
        assert avail >= 8

    cl.observers.append(bounds)
    cl.event_log.clear()
    cl.set_image(V2)
    cl.run()
    new = _by_image(cl)[V2]["metadata"]["name"]
    # Upstream's first step: the new RS gets the whole surge, the old RS drops by 2+3.
    assert cl.event_log[0] == f"Scaled up replica set {new} to 3"
    assert max(n for n, _ in counts) == 13
    assert min(a for _, a in counts) == 8
    assert sorted(rs["spec"]["replicas"] for rs in cl.rss()) == [0, 10]


def test_recreate_never_overlaps(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=3, strategy={"type": "Recreate"}))
    cl.run()
    assert "rollingUpdate" not in cl.deploy()["spec"]["strategy"]

    def no_overlap(c: Cluster) -> None:
        images = {p["spec"]["containers"][0]["image"] for p in c.pods(active_only=False)}
        assert not (V1 in images and V2 in images), "old and new pods at the same time"

    cl.observers.append(no_overlap)
    cl.event_log.clear()
    cl.set_image(V2)
    cl.run()
    by = _by_image(cl)
    old, new = by[V1]["metadata"]["name"], by[V2]["metadata"]["name"]
    assert cl.event_log == [f"Scaled down replica set {old} to 0 from 3",
                            f"Scaled up replica set {new} to 3"]
    assert len(cl.pods()) == 3


def test_unready_new_pods_stall_the_rollout_and_keep_old_ones(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=3))
    cl.run()
    cl.ready_images = {V1}
    cl.set_image(V2)
    for _ in range(10):
        cl.step()
    by = _by_image(cl)
    assert (by[V1]["spec"]["replicas"], by[V2]["spec"]["replicas"]) == (3, 1)
    d = cl.deploy()
    assert d["status"]["unavailableReplicas"] == 1
    prog = ro.get_condition(d["status"], "Progressing")
    assert prog["reason"] == "ReplicaSetUpdated"
    assert prog["message"] == f'ReplicaSet "{by[V2]["metadata"]["name"]}" is progressing.'
    cl.t += 601
    cl.step()
    prog = ro.get_condition(cl.deploy()["status"], "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert prog["message"] == f'ReplicaSet "{by[V2]["metadata"]["name"]}" has timed out ' \
        "progressing."
    with pytest.raises(ValueError, match='deployment "ublog" exceeded its progress deadline'):
        ro.rollout_status(cl.deploy())


def test_min_ready_seconds_delays_availability(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=2, minReadySeconds=30))
    for _ in range(6):
        cl.step()
    d = cl.deploy()
    assert d["status"].get("readyReplicas") == 2 and not d["status"].get("availableReplicas")
    assert ro.get_condition(d["status"], "Available")["status"] == "False"
    assert cl.rss()[0]["spec"]["minReadySeconds"] == 30
    cl.t += 31
    cl.run()
    assert cl.deploy()["status"]["availableReplicas"] == 2


# ---- scaling -------------------------------------------------------------------------------------
def test_scale_and_proportional_scaling_mid_rollout(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    cl.run()
    cl.ready_images = {V1}
    cl.set_image(V2)
    for _ in range(6):
        cl.step()
    by = _by_image(cl)
    assert (by[V1]["spec"]["replicas"], by[V2]["spec"]["replicas"]) == (8, 5)
    cl.client.patch("deployments", "ublog", NS, {"spec": {"replicas": 20}})
    cl.step()
    by = _by_image(cl)
    # allowed 20 + surge 3 = 23, i.e. +10 over 13: 8*23/13 -> 14 (+6), 5*23/13 -> 9 (+4)
    assert by[V1]["spec"]["replicas"] + by[V2]["spec"]["replicas"] == 23
    assert (by[V1]["spec"]["replicas"], by[V2]["spec"]["replicas"]) == (14, 9)
    assert by[V1]["metadata"]["annotations"][ro.DESIRED_REPLICAS] == "20"
    assert by[V1]["metadata"]["annotations"][ro.MAX_REPLICAS] == "23"


def test_scale_plain(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=1))
    cl.run()
    cl.client.patch("deployments", "ublog", NS, {"spec": {"replicas": 3}})
    cl.run()
    name = cl.rss()[0]["metadata"]["name"]
    assert len(cl.pods()) == 3
    assert cl.event_log[-1] == f"Scaled up replica set {name} to 3 from 1"
    cl.client.patch("deployments", "ublog", NS, {"spec": {"replicas": 1}})
    cl.run()
    assert len(cl.pods()) == 1
    assert cl.event_log[-1] == f"Scaled down replica set {name} to 1 from 3"


# ---- revisions, rollback, history ---------------------------------------------------------------
def test_undo_revisions_1_2_to_2_3(cl: Cluster) -> None:
    cl.client.create(ublog())
    cl.run()
    cl.set_image(V2)
    cl.run()
    assert cl.revisions() == [1, 2]
    assert cl.undo() == "rolled back"
    cl.run()
    assert cl.revisions() == [2, 3]
    assert cl.deploy()["metadata"]["annotations"][ro.REVISION] == "3"
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V1}
    v1rs = _by_image(cl)[V1]
    assert v1rs["metadata"]["annotations"][ro.REVISION_HISTORY] == "1"
    assert cl.undo(to_revision=3) == "skipped rollback (current template already matches " \
        "revision 3)"
    assert cl.undo(to_revision=7) == "unable to find specified revision 7 in history"


def test_undo_to_revision_1_from_1_2_3(cl: Cluster) -> None:
    cl.client.create(ublog())
    cl.run()
    cl.set_image(V2)
    cl.run()
    cl.set_image("192.168.3.171:5000/myblog:v3")
    cl.run()
    assert cl.revisions() == [1, 2, 3]
    tmpl, msg = ro.rollback_template(cl.deploy(), cl.rss(), 1)
    assert msg == "rolled back" and tmpl["spec"]["containers"][0]["image"] == V1
    assert ro.HASH_LABEL not in tmpl["metadata"]["labels"]
    assert cl.undo(to_revision=1) == "rolled back"
    cl.run()
    assert cl.revisions() == [2, 3, 4]
    assert ro.revision(_by_image(cl)[V1]) == 4


def test_change_cause_copied_and_history_like_the_seed(cl: Cluster) -> None:
    create = "kubectl create --filename=ublog.yaml --record=true"
    setimg = ("kubectl set image deploy ublog myblog=192.168.3.171:5000/myblog:v2 "
              "--namespace=uit --record=true")
    d = ublog()
    d["metadata"]["annotations"] = {ro.CHANGE_CAUSE: create}
    cl.client.create(d)
    cl.run()
    cl.set_image(V2, cause=setimg)
    cl.run()
    assert ro.history_rows(cl.rss(), cl.deploy()) == [(1, create), (2, setimg)]
    assert cl.undo(to_revision=1) == "rolled back"
    cl.run()
    rows = ro.history_rows(cl.rss(), cl.deploy())
    assert rows == [(2, setimg), (3, create)]
    assert ro.format_history("deployment.apps/ublog", rows) == (
        "deployment.apps/ublog \n"
        "REVISION  CHANGE-CAUSE\n"
        f"2         {setimg}\n"
        f"3         {create}\n\n")
    assert cl.deploy()["metadata"]["annotations"][ro.CHANGE_CAUSE] == create


def test_history_none_when_no_cause(cl: Cluster) -> None:
    cl.client.create(ublog())
    cl.run()
    assert ro.format_history("deployment.apps/ublog", ro.history_rows(cl.rss())) == (
        "deployment.apps/ublog \nREVISION  CHANGE-CAUSE\n1         <none>\n\n")


def test_revision_history_limit_2_keeps_2_old_rss(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=2, revisionHistoryLimit=2))
    cl.run()
    for v in range(2, 7):
        cl.set_image(f"192.168.3.171:5000/myblog:v{v}")
        cl.run()
    assert cl.revisions() == [4, 5, 6]
    assert sorted(rs["spec"]["replicas"] for rs in cl.rss()) == [0, 0, 2]


def test_pause_blocks_rollout_and_resume_continues(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=2))
    cl.run()
    cl.client.patch("deployments", "ublog", NS, {"spec": {"paused": True}})
    cl.set_image(V2)
    cl.run()
    assert len(cl.rss()) == 1
    prog = ro.get_condition(cl.deploy()["status"], "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == \
        ("Unknown", "DeploymentPaused", "Deployment is paused")
    assert cl.undo(to_revision=1) == (
        "you cannot rollback a paused deployment; resume it first with "
        "'kubectl rollout resume deployment/ublog' and try again")
    assert cl.undo() == 'no rollout history found for deployment "ublog"'
    cl.client.patch("deployments", "ublog", NS, {"spec": {"paused": None}})
    cl.run()
    assert {p["spec"]["containers"][0]["image"] for p in cl.pods()} == {V2}
    assert ro.rollout_status(cl.deploy()) == ('deployment "ublog" successfully rolled out\n',
                                              True)


def test_restart_annotation_rolls_new_pods(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=2))
    cl.run()
    before = {p["metadata"]["name"] for p in cl.pods()}
    cl.client.patch("deployments", "ublog", NS, {"spec": {"template": {"metadata": {
        "annotations": {ro.RESTARTED_AT: "2026-01-01T00:00:00Z"}}}}})
    cl.run()
    after = cl.pods()
    assert not before & {p["metadata"]["name"] for p in after}
    assert all(p["metadata"]["annotations"][ro.RESTARTED_AT] == "2026-01-01T00:00:00Z"
               for p in after)
    assert cl.revisions() == [1, 2]


# ---- ReplicaSet: self-heal, adoption, order --------------------------------------------------------
def test_replicaset_self_heals_after_pod_deletion(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=1))
    cl.run()
    (victim,) = cl.pods()
    cl.client.delete("pods", victim["metadata"]["name"], NS)
    assert cl.client.get("pods", victim["metadata"]["name"], NS)["metadata"]["deletionTimestamp"]
    cl.rsc.reconcile(f"{NS}/{cl.rss()[0]['metadata']['name']}")
    names = {p["metadata"]["name"] for p in cl.pods(active_only=False)}
    assert len(names) == 2    # the Terminating one and its replacement, as in the seed
    cl.run()
    (new,) = cl.pods()
    assert new["metadata"]["name"] != victim["metadata"]["name"]
    assert POD_NAME.match(new["metadata"]["name"])
    msgs = [e["message"] for e in cl.client.list("events", NS) if e["reason"] ==
            "SuccessfulCreate"]
    assert f"Created pod: {new['metadata']['name']}" in msgs


def test_failed_pod_is_replaced(cl: Cluster) -> None:
    cl.client.create(ublog(replicas=1))
    cl.run()
    (pod,) = cl.pods()
    pod["status"]["phase"] = "Failed"
    cl.client.update_status(pod)
    cl.rsc.reconcile(f"{NS}/{cl.rss()[0]['metadata']['name']}")
    running = [p for p in cl.pods() if p["status"].get("phase") != "Failed"]
    assert len(running) == 1 and running[0]["metadata"]["name"] != pod["metadata"]["name"]


def test_bare_replicaset_adopts_orphans_and_releases_relabelled_pods(cl: Cluster) -> None:
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "orphan", "namespace": NS, "labels": {"app": "x"}},
              "spec": {"containers": [{"name": "c", "image": "echo"}]}}
    cl.client.create(orphan)
    cl.client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                      "metadata": {"name": "x", "namespace": NS},
                      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                               "template": {"metadata": {"labels": {"app": "x"}},
                                            "spec": {"containers": [{"name": "c",
                                                                     "image": "echo"}]}}}})
    cl.rsc.reconcile(f"{NS}/x")
    pods = cl.pods()
    assert len(pods) == 2
    assert controller_ref(cl.client.get("pods", "orphan", NS))["name"] == "x"
    cl.client.patch("pods", "orphan", NS, {"metadata": {"labels": {"app": "other"}}})
    cl.rsc.reconcile(f"{NS}/x")
    assert controller_ref(cl.client.get("pods", "orphan", NS)) is None
    assert len([p for p in cl.pods() if p["metadata"]["labels"]["app"] == "x"]) == 2
    rs = cl.client.get("replicasets", "x", NS)
    assert rs["status"]["replicas"] == 2


def test_scale_down_deletes_unscheduled_then_unready_then_newest(cl: Cluster) -> None:
    from netsim.controllers.replicaset import deletion_order

    def pod(name, node, phase, ready, created, ready_at="2026-01-01T00:00:00Z"):
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": ready_at}]}}
    pods = [pod("old-ready", "n1", "Running", True, "2026-01-01T00:00:00Z"),
            pod("new-ready", "n2", "Running", True, "2026-01-02T00:00:00Z",
                "2026-01-02T00:00:00Z"),
            pod("unready", "n3", "Running", False, "2026-01-01T00:00:00Z"),
            pod("pending", "n4", "Pending", False, "2026-01-01T00:00:00Z"),
            pod("unscheduled", "", "Pending", False, "2026-01-01T00:00:00Z")]
    assert [p["metadata"]["name"] for p in deletion_order(pods)] == \
        ["unscheduled", "pending", "unready", "new-ready", "old-ready"]


# ---- bad manifests: kubectl's messages, nothing stored ---------------------------------------------
def _invalid(cl: Cluster, obj: dict) -> str:
    with pytest.raises(errors.ApiError) as ei:
        cl.client.create(obj)
    assert cl.client.list("deployments", NS) == []
    assert cl.client.list("replicasets", NS) == []
    assert cl.client.list("pods", NS) == []
    return ei.value.message


def test_bad_manifests_say_what_the_apiserver_says(cl: Cluster) -> None:
    d = ublog()
    del d["spec"]["selector"]
    assert _invalid(cl, d) == (
        'The Deployment "ublog" is invalid: [spec.selector: Required value, '
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"myblog"}: '
        "`selector` does not match template `labels`]")
    d = ublog()
    d["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    assert _invalid(cl, d) == (
        'The Deployment "ublog" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"x"}: `selector` does not match template `labels`')
    assert _invalid(cl, ublog(replicas=-1)) == (
        'The Deployment "ublog" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0")
    assert _invalid(cl, ublog(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": 0}})) == (
        'The Deployment "ublog" is invalid: spec.strategy.rollingUpdate.maxUnavailable: '
        "Invalid value: 0: may not be 0 when `maxSurge` is 0")
    assert _invalid(cl, ublog(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": "0%", "maxUnavailable": "0%"}})).endswith(
        'maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0')
    assert _invalid(cl, ublog(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": "110%"}})).endswith(
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "110%": '
        "must not be greater than 100%")
    assert _invalid(cl, ublog(strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": "20Percent"}})).endswith(
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"20Percent\": a valid percent "
        "string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
        "regex used for validation is '[0-9]+%')")
    d = ublog()
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "100Mx"
    with pytest.raises(errors.BadRequest) as ei:
        cl.client.create(d)
    assert ei.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: quantities must match '
        "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    d = ublog()
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "600Mi"
    assert _invalid(cl, d) == (
        'The Deployment "ublog" is invalid: spec.template.spec.containers[0].resources.'
        'requests: Invalid value: "600Mi": must be less than or equal to memory limit '
        "of 500Mi")
    d = ublog()
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert _invalid(cl, d).endswith(
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
        '"Always"')
    assert cl.client.list("deployments", NS) == []


def test_selector_is_immutable(cl: Cluster) -> None:
    cl.client.create(ublog())
    d = cl.deploy()
    d["spec"]["selector"] = {"matchLabels": {"app": "myblog", "tier": "web"}}
    d["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    with pytest.raises(errors.Invalid) as ei:
        cl.client.update(d)
    assert ei.value.message == (
        'The Deployment "ublog" is invalid: spec.selector: Invalid value: '
        'v1.LabelSelector{MatchLabels:map[string]string{"app":"myblog", "tier":"web"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable")
    assert cl.deploy()["spec"]["selector"] == {"matchLabels": {"app": "myblog"}}


def test_update_without_defaults_keeps_template_equal(cl: Cluster) -> None:
    """`apply` sends the manifest without defaults: same template, no new ReplicaSet."""
    cl.client.create(ublog())
    cl.run()
    d = cl.deploy()
    fresh = ublog()
    fresh["metadata"] = copy.deepcopy(d["metadata"])
    fresh["spec"]["replicas"] = 2
    cl.client.update(fresh)
    cl.run()
    assert len(cl.rss()) == 1 and len(cl.pods()) == 2


# ---- ConfigMap / Secret -----------------------------------------------------------------------------
def test_secret_string_data_and_tls(cl: Cluster) -> None:
    s = cl.client.create({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "ublog", "namespace": NS},
                          "data": {"A": "eA=="}, "stringData": {"MYSQL_PASSWD": "123456"}})
    assert s["type"] == "Opaque" and "stringData" not in s
    assert s["data"] == {"A": "eA==", "MYSQL_PASSWD": "MTIzNDU2"}
    with pytest.raises(errors.Invalid) as ei:
        cl.client.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                          "metadata": {"name": "tls", "namespace": NS},
                          "data": {"tls.crt": "eA=="}})
    assert ei.value.message == 'The Secret "tls" is invalid: data[tls.key]: Required value'
    with pytest.raises(errors.BadRequest) as ei:
        cl.client.create({"apiVersion": "v1", "kind": "Secret",
                          "metadata": {"name": "b", "namespace": NS}, "data": {"k": "a!bc"}})
    assert ei.value.message.endswith("illegal base64 data at input byte 1")
    with pytest.raises(errors.Invalid) as ei:
        cl.client.create({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "c", "namespace": NS}, "data": {"a b": "1"}})
    assert ei.value.message == (
        'The ConfigMap "c" is invalid: data[a b]: Invalid value: "a b": a valid config key '
        "must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
        "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    assert cl.client.list("configmaps", NS) == []
