"""Issue 12, Jobs and CronJobs as a user runs them: the docs' `pi`-style Job (a busybox
command, which runs the host's sh) reaching Complete with its output in the logs, a
failing Job reaching BackoffLimitExceeded, and the docs' `hello` CronJob run by hand with
`create job --from=cronjob/hello` (no waiting a minute for the schedule)."""

from __future__ import annotations

import pytest

from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "jobs"

PI = """apiVersion: batch/v1
kind: Job
metadata:
  name: pi
  namespace: jobs
spec:
  template:
    spec:
      containers:
      - name: pi
        image: busybox
        command: ["sh", "-c", "echo 3.14159"]
      restartPolicy: Never
  backoffLimit: 4
"""

HELLO = """apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
  namespace: jobs
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
"""


ns = namespace_fixture(NS)


def _complete(cluster, name: str) -> bool:
    job = cluster.client.get("jobs", name, NS)
    return any(c["type"] == "Complete" and c["status"] == "True"
               for c in job.get("status", {}).get("conditions") or [])


def test_pi_job_completes_and_logs_its_output(cluster, ns):
    assert cluster.netsim("apply", "-f", "-", input=PI).stdout == "job.batch/pi created\n"
    wait_for(lambda: _complete(cluster, "pi"), 60, what="job pi Complete")
    rows = cluster.netsim("-n", NS, "get", "jobs").stdout.splitlines()
    assert rows[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows[1].split()[:3] == ["pi", "Complete", "1/1"]
    pods = cluster.client.list("pods", NS)
    (pod,) = [p for p in pods if p["metadata"]["labels"].get("job-name") == "pi"]
    assert pod["status"]["phase"] == "Succeeded"  # kept after the Job finished
    po = cluster.netsim("-n", NS, "get", "po", pod["metadata"]["name"]).stdout.splitlines()
    assert po[1].split()[:3] == [pod["metadata"]["name"], "0/1", "Completed"]
    assert cluster.netsim("-n", NS, "logs", "job/pi").stdout == "3.14159\n"
    d = cluster.netsim("-n", NS, "describe", "job", "pi").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 1 Succeeded / 0 Failed\n" in d
    assert f"Created pod: {pod['metadata']['name']}" in d and "Job completed" in d


def test_failing_job_reaches_backoff_limit(cluster, ns):
    fails = PI.replace("name: pi", "name: fails").replace("echo 3.14159", "exit 3")
    cluster.netsim("apply", "-f", "-", input=fails.replace("backoffLimit: 4", "backoffLimit: 0"))

    def failed():
        j = cluster.client.get("jobs", "fails", NS)
        return any(c["type"] == "Failed" and c["status"] == "True"
                   for c in j.get("status", {}).get("conditions") or [])
    wait_for(failed, 60, what="job fails Failed")
    row = cluster.netsim("-n", NS, "get", "job", "fails").stdout.splitlines()[1].split()
    assert row[:3] == ["fails", "Failed", "0/1"]
    (pod,) = [p for p in cluster.client.list("pods", NS)
              if p["metadata"]["labels"].get("job-name") == "fails"]
    assert pod["status"]["phase"] == "Failed"
    d = cluster.netsim("-n", NS, "describe", "job", "fails").stdout
    assert "BackoffLimitExceeded" in d and "Job has reached the specified backoff limit" in d


def test_cronjob_hello_and_a_job_from_it(cluster, ns):
    assert cluster.netsim("apply", "-f", "-", input=HELLO).stdout == "cronjob.batch/hello created\n"
    rows = cluster.netsim("-n", NS, "get", "cronjobs").stdout.splitlines()
    assert rows[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST",
                               "SCHEDULE", "AGE"]
    assert rows[1].split()[:6] == ["hello", "*/1", "*", "*", "*", "*"]
    r = cluster.netsim("-n", NS, "create", "job", "hello-manual", "--from=cronjob/hello")
    assert r.stdout == "job.batch/hello-manual created\n"
    wait_for(lambda: _complete(cluster, "hello-manual"), 60, what="job hello-manual Complete")
    out = cluster.netsim("-n", NS, "logs", "job/hello-manual").stdout
    assert out.endswith("Hello from the Kubernetes cluster\n")
    d = cluster.netsim("-n", NS, "describe", "cronjob", "hello").stdout
    assert "Schedule:                      */1 * * * *\n" in d
    assert "Concurrency Policy:            Allow\n" in d
