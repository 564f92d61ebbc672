"""`get jobs`, `get cronjobs`, `describe job`, `describe cronjob` as kubectl 1.37 prints them
(printJob/printCronJob, describeJob/describeCronJob), for objects the controllers made."""

from __future__ import annotations

from datetime import datetime, timezone

from netsim.api.printing.printers import print_table
from netsim.cli.describe import describe

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
UID = "c9948307-e56d-4b5d-8302-ae2d7b7da67c"


def pi(**status) -> dict:
    labels = {"batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
              "controller-uid": UID, "job-name": "pi"}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": UID, "labels": labels,
                         "creationTimestamp": "2026-12-01T09:58:00Z"},
            "spec": {"parallelism": 1, "completions": 1, "completionMode": "NonIndexed",
                     "suspend": False, "backoffLimit": 4,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "restartPolicy": "Never", "containers": [{
                             "name": "pi", "image": "busybox",
                             "command": ["sh", "-c", "echo 3.14159"]}]}}},
            "status": status}


def cond(t: str) -> dict:
    return {"type": t, "status": "True", "reason": "CompletionsReached"}


def test_get_jobs_status_completions_duration():
    done = pi(succeeded=1, ready=0, startTime="2026-12-01T09:58:00Z",
              completionTime="2026-12-01T09:58:07Z",
              conditions=[cond("SuccessCriteriaMet"), cond("Complete")])
    running = pi(active=1, ready=1, startTime="2026-12-01T09:58:00Z")
    running["metadata"]["name"] = "pi2"
    failed = pi(failed=5, startTime="2026-12-01T09:58:00Z",
                conditions=[{"type": "FailureTarget", "status": "True"},
                            {"type": "Failed", "status": "True"}])
    failed["metadata"]["name"] = "pi3"
    susp = pi(conditions=[{"type": "Suspended", "status": "True"}])
    susp["metadata"]["name"] = "pi4"
    queue = pi(succeeded=0)
    queue["metadata"]["name"] = "pi5"
    queue["spec"].pop("completions")
    queue["spec"]["parallelism"] = 3
    assert print_table("jobs", [done, running, failed, susp, queue], now=NOW) == (
        "NAME   STATUS      COMPLETIONS   DURATION   AGE\n"
        "pi     Complete    1/1           7s         2m\n"
        "pi2    Running     0/1           2m         2m\n"
        "pi3    Failed      0/1           2m         2m\n"
        "pi4    Suspended   0/1                      2m\n"
        "pi5    Running     0/1 of 3                 2m\n")
    assert print_table("jobs", [done], now=NOW, wide=True) == (
        "NAME   STATUS     COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES    SELECTOR\n"
        f"pi     Complete   1/1           7s         2m    pi           busybox   "
        f"batch.kubernetes.io/controller-uid={UID}\n")


def hello(**status) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default",
                         "creationTimestamp": "2026-12-01T09:50:00Z"},
            "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"template": {"spec": {
                         "restartPolicy": "OnFailure", "containers": [{
                             "name": "hello", "image": "busybox:1.28",
                             "command": ["/bin/sh", "-c", "date"]}]}}}}},
            "status": status}


def test_get_cronjobs():
    cj = hello(lastScheduleTime="2026-12-01T09:59:00Z", active=[{"name": "hello-29409599"}])
    fresh = hello()
    fresh["metadata"]["name"] = "tz"
    fresh["spec"]["timeZone"] = "Etc/UTC"
    assert print_table("cronjobs", [cj, fresh], now=NOW) == (
        "NAME    SCHEDULE    TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE\n"
        "hello   * * * * *   <none>     False     1        60s             10m\n"
        "tz      * * * * *   Etc/UTC    False     0        <none>          10m\n")
    assert print_table("cronjobs", [cj], now=NOW, wide=True).splitlines()[1].endswith(
        "10m   hello        busybox:1.28   <none>")


def test_describe_job():
    job = pi(succeeded=1, ready=0, startTime="2026-12-01T09:58:00Z",
             completionTime="2026-12-01T09:58:07Z",
             conditions=[cond("SuccessCriteriaMet"), cond("Complete")])
    text = describe("jobs", job, related={"events": []}, now=NOW)
    assert text.startswith(
        "Name:             pi\n"
        "Namespace:        default\n"
        f"Selector:         batch.kubernetes.io/controller-uid={UID}\n"
        f"Labels:           batch.kubernetes.io/controller-uid={UID}\n"
        "                  batch.kubernetes.io/job-name=pi\n"
        f"                  controller-uid={UID}\n"
        "                  job-name=pi\n"
        "Annotations:      <none>\n"
        "Parallelism:      1\n"
        "Completions:      1\n"
        "Completion Mode:  NonIndexed\n"
        "Suspend:          false\n"
        "Backoff Limit:    4\n"
        "Start Time:       Tue, 01 Dec 2026 09:58:00 +0000\n"
        "Completed At:     Tue, 01 Dec 2026 09:58:07 +0000\n"
        "Duration:         7s\n"
        "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed\n"
        "Pod Template:\n")
    assert text.endswith("  Tolerations:     <none>\nEvents:            <none>\n")


def test_describe_cronjob():
    cj = hello(lastScheduleTime="2026-12-01T09:59:00Z", active=[{"name": "hello-29409599"}])
    text = describe("cronjobs", cj, related={"events": []}, now=NOW)
    assert text.startswith(
        "Name:                          hello\n"
        "Namespace:                     default\n"
        "Labels:                        <none>\n"
        "Annotations:                   <none>\n"
        "Schedule:                      * * * * *\n"
        "Concurrency Policy:            Allow\n"
        "Suspend:                       False\n"
        "Successful Job History Limit:  3\n"
        "Failed Job History Limit:      1\n"
        "Starting Deadline Seconds:     <unset>\n"
        "Selector:                      <unset>\n"
        "Parallelism:                   <unset>\n"
        "Completions:                   <unset>\n"
        "Pod Template:\n")
    assert "Last Schedule Time:  Tue, 01 Dec 2026 09:59:00 +0000\n" \
           "Active Jobs:         hello-29409599\n" in text
