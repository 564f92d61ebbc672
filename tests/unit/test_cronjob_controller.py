"""The CronJob controller over a real Store, driven by hand with a fake clock.

The test plays the Job controller where it matters (marks Jobs Complete or Failed) and
looks at the Jobs, the CronJob's status and its events as `kubectl get cronjob`,
`get jobs` and `describe cronjob` would show them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from netsim.api.admission import admit
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339
from netsim.controllers.cronjob import (
    CronJobController,
    Schedule,
    job_name,
    most_recent_schedule,
    parse_go_duration,
)

NS = "uit"
T0 = datetime(2027, 3, 1, 12, 0, 30, tzinfo=timezone.utc).timestamp()  # 30 s past a minute


def hello(**spec) -> dict:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": NS},
          "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
              "restartPolicy": "OnFailure", "containers": [{
                  "name": "hello", "image": "busybox:1.28", "imagePullPolicy": "IfNotPresent",
                  "command": ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]}]}}}}}}
    cj["spec"].update(spec)
    return cj


class Cluster:
    def __init__(self) -> None:
        self.t = T0
        self.store = Store(":memory:", admission=admit, clock=lambda: format_rfc3339(self.t))
        self.store.bootstrap()
        self.client = LocalClient(self.store)
        self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        self.cc = CronJobController(self.client, clock=lambda: self.t)

    def sync(self):
        return self.cc.reconcile(f"{NS}/hello")

    def cj(self) -> dict:
        return self.client.get("cronjobs", "hello", NS)

    def jobs(self) -> list[dict]:
        return sorted(self.client.list("jobs", NS), key=lambda j: j["metadata"]["name"])

    def finish(self, job: dict, ctype: str = "Complete") -> None:
        job = self.client.get("jobs", job["metadata"]["name"], NS)
        stamp = format_rfc3339(self.t)
        job["status"] = {"startTime": stamp, "conditions": [
            {"type": ctype, "status": "True", "lastTransitionTime": stamp}]}
        if ctype == "Complete":
            job["status"]["completionTime"] = stamp
            job["status"]["succeeded"] = 1
        self.client.update_status(job)

    def events(self) -> list[tuple[str, str, str]]:
        evs = sorted(self.client.list("events", NS), key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in evs
                if e["involvedObject"]["kind"] == "CronJob"]


@pytest.fixture
def c() -> Cluster:
    return Cluster()


def minute(k: int) -> float:
    """The k-th whole minute after T0."""
    return T0 - 30 + 60 * k


def test_every_minute_makes_named_jobs_and_tracks_them(c):
    c.client.create(hello())
    after = c.sync()
    assert c.jobs() == []  # created 30 s into a minute: nothing due yet
    assert after == pytest.approx(30.1, abs=0.01)
    c.t = minute(1) + 0.5
    c.sync()
    jobs = c.jobs()
    assert [j["metadata"]["name"] for j in jobs] == [f"hello-{int(minute(1)) // 60}"]
    job = jobs[0]
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        format_rfc3339(minute(1))
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "hello", True)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.28"
    st = c.cj()["status"]
    assert st["lastScheduleTime"] == format_rfc3339(minute(1))
    assert [a["name"] for a in st["active"]] == [job["metadata"]["name"]]
    assert ("Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}") in c.events()
    c.sync()
    assert len(c.jobs()) == 1  # the same schedule time never twice

    c.t += 5
    c.finish(job)
    c.sync()
    st = c.cj()["status"]
    assert "active" not in st
    assert st["lastSuccessfulTime"] == format_rfc3339(c.t)
    assert ("Normal", "SawCompletedJob",
            f"Saw completed job: {job['metadata']['name']}, condition: Complete") in c.events()


def test_history_limits_keep_three_succeeded_and_one_failed(c):
    c.client.create(hello())
    for k in range(1, 7):
        c.t = minute(k) + 1
        c.sync()
        newest = c.jobs()[-1]
        c.finish(newest, "Failed" if k in (2, 4) else "Complete")
        c.sync()
    names = [j["metadata"]["name"] for j in c.jobs()]
    want_ok = [job_name("hello", minute(k)) for k in (3, 5, 6)]
    want_failed = [job_name("hello", minute(4))]
    assert sorted(names) == sorted(want_ok + want_failed)
    deleted = [m for t, r, m in c.events() if r == "SuccessfulDelete"]
    assert f"Deleted job {job_name('hello', minute(1))}" in deleted
    assert f"Deleted job {job_name('hello', minute(2))}" in deleted


def test_concurrency_forbid_and_replace(c):
    c.client.create(hello(concurrencyPolicy="Forbid"))
    c.t = minute(1) + 1
    c.sync()
    c.t = minute(2) + 1
    c.sync()
    assert len(c.jobs()) == 1
    assert ("Normal", "JobAlreadyActive", "Not starting job because prior execution is "
            "running and concurrency policy is Forbid") in c.events()
    cj = c.cj()
    cj["spec"]["concurrencyPolicy"] = "Replace"
    c.client.update(cj)
    c.sync()
    names = [j["metadata"]["name"] for j in c.jobs()]
    assert names == [job_name("hello", minute(2))]
    assert ("Normal", "SuccessfulDelete", f"Deleted job {job_name('hello', minute(1))}") in c.events()
    assert [a["name"] for a in c.cj()["status"]["active"]] == names


def test_allow_runs_concurrently(c):
    c.client.create(hello())
    for k in (1, 2, 3):
        c.t = minute(k) + 1
        c.sync()
    assert len(c.jobs()) == 3
    assert len(c.cj()["status"]["active"]) == 3


def test_suspend_and_starting_deadline(c):
    c.client.create(hello(suspend=True))
    c.t = minute(3) + 1
    assert c.sync() is None
    assert c.jobs() == []
    cj = c.cj()
    cj["spec"]["suspend"] = False
    cj["spec"]["startingDeadlineSeconds"] = 10
    c.client.update(cj)
    c.t = minute(3) + 20  # 20 s late for a 10 s deadline: that run is skipped
    c.sync()
    assert c.jobs() == []
    c.t = minute(4) + 5
    c.sync()
    assert [j["metadata"]["name"] for j in c.jobs()] == [job_name("hello", minute(4))]


def test_time_zone_and_descriptors():
    ny = ZoneInfo("America/New_York")
    s = Schedule("0 9 * * *", ny)
    t = datetime(2027, 3, 1, 0, 0, tzinfo=timezone.utc).timestamp()
    assert datetime.fromtimestamp(s.next(t), ny).hour == 9
    assert s.next(t) == datetime(2027, 3, 1, 14, 0, tzinfo=timezone.utc).timestamp()
    h = Schedule("@hourly", timezone.utc)
    assert h.next(T0) == datetime(2027, 3, 1, 13, 0, tzinfo=timezone.utc).timestamp()
    assert Schedule("@every 1h30m", timezone.utc).next(1000.0) == 1000.0 + 5400
    assert parse_go_duration("1.5h") == 5400
    with pytest.raises(ValueError):
        Schedule("@fortnightly", timezone.utc)
    # missed runs: the most recent one wins
    recent, missed = most_recent_schedule(minute(0), minute(5) + 3, Schedule("* * * * *", timezone.utc))
    assert recent == minute(5) and missed == 5


def test_time_zone_in_the_cronjob(c):
    c.client.create(hello(schedule="0 9 * * *", timeZone="Asia/Tokyo"))
    c.t = datetime(2027, 3, 2, 0, 0, 10, tzinfo=timezone.utc).timestamp()  # 09:00:10 in Tokyo
    c.sync()
    jobs = c.jobs()
    assert len(jobs) == 1
    assert jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] \
        == "2027-03-02T09:00:00+09:00"
