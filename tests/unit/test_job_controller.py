"""The Job controller over a real Store, driven by hand with a fake clock.

The test plays the kubelet: it marks pods Running, Succeeded or Failed (terminated
containers with a finishedAt, restart counts for OnFailure) and removes terminating
pods; after each step the controller reconciles and we look at what `kubectl get job`,
`get pods` and `describe job` would show.
"""

from __future__ import annotations

import re

import pytest

from netsim.api.timeutil import format_rfc3339
from netsim.controllers.job import JobController, format_indexes, parse_indexes
from tests.unit.workload_helpers import FakeCluster

NS = "uit"
ALPHABET = "[bcdfghjklmnpqrstvwxz2456789]{5}"


def pi_job(name: str = "pi", restart: str = "Never", **spec) -> dict:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
           "spec": {"template": {"spec": {"restartPolicy": restart, "containers": [{
               "name": "pi", "image": "busybox", "command": ["sh", "-c", "echo 3.14159"]}]}}}}
    job["spec"].update(spec)
    return job


class Cluster(FakeCluster):
    def __init__(self) -> None:
        super().__init__(NS)
        self.jc = JobController(self.client, clock=lambda: self.t)

    def sync(self, name: str = "pi"):
        return self.jc.reconcile(f"{NS}/{name}")

    def job(self, name: str = "pi") -> dict:
        return self.client.get("jobs", name, NS)

    def pods(self) -> list[dict]:
        return sorted(self.client.list("pods", NS), key=lambda p: p["metadata"]["name"])

    def active(self) -> list[dict]:
        return [p for p in self.pods() if p["status"].get("phase") not in ("Succeeded", "Failed")
                and not p["metadata"].get("deletionTimestamp")]

    def finish(self, pod: dict, code: int) -> None:
        """The kubelet's view of a container that exited with `code` (restartPolicy Never)."""
        pod = self.client.get("pods", pod["metadata"]["name"], NS)
        pod["spec"]["nodeName"] = "node1"
        pod = self.client.update(pod)
        stamp = format_rfc3339(self.t)
        pod["status"] = {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [{
            "name": "pi", "ready": False, "restartCount": 0, "image": "busybox",
            "state": {"terminated": {"exitCode": code, "finishedAt": stamp,
                                     "reason": "Completed" if code == 0 else "Error"}}}]}
        self.client.update_status(pod)

    def running(self, pod: dict, restarts: int = 0, ready: bool = True) -> None:
        pod = self.client.get("pods", pod["metadata"]["name"], NS)
        if not pod["spec"].get("nodeName"):
            pod["spec"]["nodeName"] = "node1"
            pod = self.client.update(pod)
        pod["status"] = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "pi", "ready": ready, "restartCount": restarts,
                                   "image": "busybox", "state": {"running": {}}}]}
        self.client.update_status(pod)

    def kubelet_removes_terminating(self) -> None:
        for p in self.pods():
            if p["metadata"].get("deletionTimestamp"):
                self.client.delete("pods", p["metadata"]["name"], NS, grace_period_seconds=0)

    def events(self) -> list[tuple[str, str, str]]:
        evs = sorted(self.client.list("events", NS), key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in evs
                if e["involvedObject"]["kind"] == "Job"]


def conds(job: dict) -> list[tuple[str, str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
            for c in job["status"].get("conditions") or []]


@pytest.fixture
def c() -> Cluster:
    return Cluster()


def test_pi_job_runs_one_pod_to_completion(c):
    c.client.create(pi_job())
    job = c.job()
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["podReplacementPolicy"] == "TerminatingOrFailed"
    assert job["metadata"]["labels"]["job-name"] == "pi"  # the template's, as SetDefaults_Job
    c.sync()
    pods = c.pods()
    assert len(pods) == 1
    pod = pods[0]
    assert re.fullmatch(f"pi-{ALPHABET}", pod["metadata"]["name"])
    assert pod["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid, "job-name": "pi"}
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("Job", "pi", True)
    st = c.job()["status"]
    assert st["active"] == 1 and st["ready"] == 0 and st["startTime"] == format_rfc3339(c.t)
    assert "conditions" not in st
    c.sync()
    assert len(c.pods()) == 1  # no second pod while the first runs

    c.running(pod)
    c.sync()
    assert c.job()["status"]["ready"] == 1
    c.t += 7
    c.finish(pod, 0)
    c.sync()
    job = c.job()
    st = job["status"]
    assert st["succeeded"] == 1 and "active" not in st and st["ready"] == 0
    assert st["completionTime"] == format_rfc3339(c.t)
    assert conds(job) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
        ("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods")]
    assert c.events() == [("Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"),
                          ("Normal", "Completed", "Job completed")]
    # The finished Job's pod is kept, and nothing more happens.
    c.sync()
    assert [p["metadata"]["name"] for p in c.pods()] == [pod["metadata"]["name"]]


def test_completions_and_parallelism(c):
    c.client.create(pi_job(completions=5, parallelism=2))
    c.sync()
    assert len(c.active()) == 2
    for _ in range(10):
        for p in c.active()[:1]:
            c.finish(p, 0)
        c.sync()
        assert len(c.active()) <= 2
        if c.job()["status"].get("conditions"):
            break
    job = c.job()
    assert job["status"]["succeeded"] == 5
    assert len(c.pods()) == 5
    assert ("Complete", "True") == conds(job)[-1][:2]


def test_a_sync_creates_and_deletes_at_most_a_burst_and_counts_them(c, monkeypatch):
    """Upstream's MaxPodCreateDeletePerSync: a parallelism of 12 with a cap of 5 is three
    syncs, each coming back at once and `get job` counting 5, 10, 12 active as they go;
    parallelism cut to 1 deletes in steps likewise."""
    from netsim.controllers import job as jobctl

    monkeypatch.setattr(jobctl, "MAX_POD_CREATE_DELETE_PER_SYNC", 5)
    c.client.create(pi_job(parallelism=12, completions=20))
    seen = []
    for _ in range(3):
        seen.append((c.sync(), c.job()["status"]["active"]))
    assert seen == [(0.1, 5), (0.1, 10), (None, 12)]
    job = c.job()
    job["spec"]["parallelism"] = 1
    c.client.update(job)
    assert c.sync() == 0.1
    c.kubelet_removes_terminating()
    assert len(c.active()) == 7
    c.sync()
    c.kubelet_removes_terminating()
    c.sync()
    c.kubelet_removes_terminating()
    assert len(c.active()) == 1


def test_never_failures_make_new_pods_with_backoff_then_backoff_limit_exceeded(c):
    c.client.create(pi_job(backoffLimit=2))
    c.sync()
    first = c.active()[0]
    c.finish(first, 1)
    after = c.sync()
    assert c.active() == []  # the back-off: 10 s after the first failure
    assert after == pytest.approx(10, abs=0.2)
    c.t += 10
    c.sync()
    second = c.active()[0]
    assert second["metadata"]["name"] != first["metadata"]["name"]
    c.finish(second, 1)
    assert c.sync() == pytest.approx(20, abs=0.2)  # doubling
    c.t += 20
    c.sync()
    c.finish(c.active()[0], 1)
    c.sync()
    job = c.job()
    assert job["status"]["failed"] == 3
    assert conds(job) == [
        ("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]
    assert ("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit") in c.events()
    assert "completionTime" not in job["status"]
    assert len(c.pods()) == 3  # failed pods are kept
    c.t += 1000
    c.sync()
    assert c.active() == []


def test_on_failure_restarts_count_toward_backoff_limit(c):
    c.client.create(pi_job(restart="OnFailure", backoffLimit=3))
    c.sync()
    pod = c.active()[0]
    c.running(pod, restarts=2, ready=False)
    c.sync()
    assert not c.job()["status"].get("conditions")
    c.running(pod, restarts=3, ready=False)
    c.sync()
    # The running pod is deleted first; Failed comes once it is gone.
    job = c.job()
    assert conds(job) == [("FailureTarget", "True", "BackoffLimitExceeded",
                           "Job has reached the specified backoff limit")]
    assert job["status"]["terminating"] == 1
    c.kubelet_removes_terminating()
    c.sync()
    assert [t for t, *_ in conds(c.job())] == ["FailureTarget", "Failed"]
    assert c.pods() == []


def test_active_deadline_seconds(c):
    c.client.create(pi_job(activeDeadlineSeconds=30))
    after = c.sync()
    assert after == pytest.approx(30, abs=0.2)
    pod = c.active()[0]
    c.running(pod)
    c.t += 30
    c.sync()
    c.kubelet_removes_terminating()
    c.sync()
    job = c.job()
    assert conds(job)[-1] == ("Failed", "True", "DeadlineExceeded",
                              "Job was active longer than specified deadline")
    assert ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline") in c.events()


def test_ttl_seconds_after_finished_deletes_the_job(c):
    c.client.create(pi_job(ttlSecondsAfterFinished=100))
    c.sync()
    c.finish(c.active()[0], 0)
    after = c.sync()
    assert after == pytest.approx(100, abs=0.2)
    c.t += 100
    c.sync()
    assert c.client.get_or_none("jobs", "pi", NS) is None


def test_indexed_job(c):
    c.client.create(pi_job(completions=3, parallelism=3, completionMode="Indexed"))
    c.sync()
    pods = c.active()
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
                for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for i, p in by_index.items():
        assert re.fullmatch(f"pi-{i}-{ALPHABET}", p["metadata"]["name"])
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == i
        assert p["spec"]["hostname"] == f"pi-{i}"
        env = p["spec"]["containers"][0]["env"]
        assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}]
    c.finish(by_index["1"], 0)
    c.sync()
    assert c.job()["status"]["completedIndexes"] == "1"
    c.finish(by_index["0"], 1)  # index 0 fails: a new pod for index 0 after the back-off
    c.sync()
    c.t += 10
    c.sync()
    again = [p for p in c.active()
             if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0"]
    assert len(again) == 1
    c.finish(again[0], 0)
    c.finish(by_index["2"], 0)
    c.sync()
    job = c.job()
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3
    assert job["status"]["failed"] == 1
    assert conds(job)[-1][:2] == ("Complete", "True")


def test_suspend_and_resume(c):
    c.client.create(pi_job(suspend=True))
    c.sync()
    job = c.job()
    assert c.pods() == [] and "startTime" not in job["status"]
    assert conds(job) == [("Suspended", "True", "JobSuspended", "Job suspended")]
    job["spec"]["suspend"] = False
    c.client.update(job)
    c.t += 5
    c.sync()
    job = c.job()
    assert conds(job) == [("Suspended", "False", "JobResumed", "Job resumed")]
    assert job["status"]["startTime"] == format_rfc3339(c.t)
    assert len(c.active()) == 1
    assert [e[1] for e in c.events()] == ["Suspended", "SuccessfulCreate", "Resumed"]
    # Suspending again deletes the running pod.
    job["spec"]["suspend"] = True
    c.client.update(c.job() | {"spec": job["spec"]})
    c.sync()
    assert c.active() == []
    assert conds(c.job())[0][:3] == ("Suspended", "True", "JobSuspended")


def test_work_queue_job_without_completions(c):
    c.client.create(pi_job(parallelism=2))
    job = c.job()
    job["spec"].pop("completions", None)
    c.sync()
    pods = c.active()
    assert len(pods) == 2
    c.finish(pods[0], 0)
    c.sync()
    assert len(c.active()) == 1  # no new pod once one succeeded
    c.finish(pods[1], 0)
    c.sync()
    assert conds(c.job())[-1][:2] == ("Complete", "True")


def test_index_intervals():
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert parse_indexes("0-2,4,6-7", 7) == {0, 1, 2, 4, 6}
    assert format_indexes(set()) == ""
