"""`netsim create job|cronjob` as kubectl builds them, through the real argument parser and a
LocalClient over an in-memory store (no cluster)."""

from __future__ import annotations

import pytest

from netsim.cli import create_cmds
from netsim.cli.context import CliError
from netsim.cli.main import build_parser, reorder


class FakeCtx:
    def __init__(self, client, argv):
        self.client, self.argv, self.namespace, self.ns = client, argv, None, "default"


def run(client, capsys, *argv: str) -> str:
    argv = list(argv)
    args, _ = build_parser().parse_known_args(reorder(argv))
    create_cmds.create_generic(FakeCtx(client, argv), args)
    return capsys.readouterr().out


def test_create_job_with_a_command(client, capsys):
    assert run(client, capsys, "create", "job", "pi", "--image=busybox", "--", "sh", "-c",
               "echo 3.14159") == "job.batch/pi created\n"
    job = client.get("jobs", "pi", "default")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["command"]) == ("pi", "busybox", ["sh", "-c", "echo 3.14159"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_create_cronjob_then_job_from_it(client, capsys):
    assert run(client, capsys, "create", "cronjob", "hello", "--image=busybox",
               "--schedule=*/1 * * * *", "--", "date") == "cronjob.batch/hello created\n"
    cj = client.get("cronjobs", "hello", "default")
    assert cj["spec"]["schedule"] == "*/1 * * * *"
    tmpl = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert tmpl["restartPolicy"] == "OnFailure" and tmpl["containers"][0]["command"] == ["date"]
    assert run(client, capsys, "create", "job", "manual", "--from=cronjob/hello") == \
        "job.batch/manual created\n"
    job = client.get("jobs", "manual", "default")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("CronJob", "hello", cj["metadata"]["uid"])


@pytest.mark.parametrize("argv, msg", [
    (["create", "job", "x"], "either --image or --from must be specified"),
    (["create", "job", "x", "--image=a", "--from=cronjob/y"], "--image and --from are mutually exclusive"),
    (["create", "job", "x", "--from=cronjob/y", "--", "date"], "cannot specify --from and command"),
    (["create", "job", "x", "--from=cronjob/nope"], 'cronjobs.batch "nope" not found'),
    (["create", "cronjob", "x", "--image=a"], 'required flag(s) "schedule" not set'),
])
def test_create_job_errors_are_kubectls(client, capsys, argv, msg):
    with pytest.raises(CliError) as e:
        run(client, capsys, *argv)
    assert msg in str(e.value)


def test_logs_job_picks_the_jobs_pod(client, capsys):
    from netsim.cli import pods
    from netsim.controllers.job import JobController
    run(client, capsys, "create", "job", "pi", "--image=busybox", "--", "sh", "-c", "echo 3")
    JobController(client).reconcile("default/pi")
    (pod,) = client.list("pods", "default")
    ctx = FakeCtx(client, [])
    assert pods.pod_for_logs(ctx, "job/pi") == pod["metadata"]["name"]
    assert pods.pod_for_logs(ctx, "pod/x") == "x" and pods.pod_for_logs(ctx, "x") == "x"
    with pytest.raises(CliError, match='jobs.batch "nope" not found'):
        pods.pod_for_logs(ctx, "job/nope")
