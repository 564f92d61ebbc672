"""The Job controller: runs pods to completion, as kube-controller-manager's (1.37) does.

One sync per Job: claim its pods (selector + controller ref), count succeeded and failed
ones (counts never go down: a finished pod someone deleted stays counted), then decide in
upstream's order: backoffLimit exceeded (new failures beyond it, or with restartPolicy
OnFailure the containers' restarts reaching it), activeDeadlineSeconds passed, or the
completions reached. A finished Job gets the interim condition (FailureTarget /
SuccessCriteriaMet) and, once none of its pods is still terminating, the terminal one
(Failed / Complete, completionTime), with upstream's reasons, messages and events; its
active pods are deleted, finished ones kept. Otherwise pods are created towards
min(parallelism, remaining completions) — NonIndexed `<job>-<5 chars>`, Indexed
`<job>-<index>-<5 chars>` with the completion-index annotation, label, hostname and
JOB_COMPLETION_INDEX — after the pod-failure back-off (10 s doubling to 10 min), or
deleted while the Job is suspended. ttlSecondsAfterFinished deletes a finished Job (the
TTL-after-finished controller's part), its pods following through the garbage collector.

Left out: pod finalizers (`batch.kubernetes.io/job-tracking`, uncountedTerminatedPods as
a write-ahead; the store holds a deleted pod for its finalizers, as upstream's does, but
this controller puts none on its pods), podFailurePolicy, successPolicy,
backoffLimitPerIndex, podReplacementPolicy Failed.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from netsim.api import errors, events
from netsim.api.client import Client
from netsim.api.timeutil import format_rfc3339
from netsim.api.timeutil import rfc3339_seconds as parse_time
from netsim.controllers.base import split_key
from netsim.controllers.fields import dicts_at, obj_at
from netsim.controllers.replicaset import (
    OwnerController,
    claim,
    deletion_order,
    is_ready,
)
from netsim.machinery import InformerFactory, clone

COMPONENT = "job-controller"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
BACKOFF_BASE = 10.0       # DefaultJobPodFailureBackOff
BACKOFF_MAX = 600.0       # MaxJobPodFailureBackOff
MAX_GENERATED_NAME = 58   # names.MaxGeneratedNameLength: 63 less the 5 random chars
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
SUCCESS_MESSAGE = "Reached expected number of succeeded pods"
MAX_POD_CREATE_DELETE_PER_SYNC = 500  # upstream's MaxPodCreateDeletePerSync: the rest next sync


# ---- pure helpers --------------------------------------------------------------------------
def condition(job: dict, ctype: str) -> dict | None:
    for c in dicts_at(job, "status", "conditions"):
        if c.get("type") == ctype:
            return c
    return None


def has_condition(job: dict, ctype: str) -> bool:
    c = condition(job, ctype)
    return c is not None and c.get("status") == "True"


def is_finished(job: dict) -> bool:
    """IsJobFinished: Complete or Failed is True."""
    return has_condition(job, "Complete") or has_condition(job, "Failed")


def finish_time(job: dict) -> float | None:
    """When the Job finished (the TTL controller's getFinishAndExpireTime)."""
    for ctype in ("Complete", "Failed"):
        c = condition(job, ctype)
        if c is not None and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def new_condition(ctype: str, reason: str, message: str, now: float,
                  status: str = "True") -> dict:
    stamp = format_rfc3339(now)
    return {"type": ctype, "status": status, "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(job: dict, cond: dict) -> bool:
    """ensureJobConditionStatus: add it, or update it when its status changed."""
    conds = job.setdefault("status", {}).setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            if c.get("status") == cond["status"] and c.get("reason") == cond["reason"]:
                return False
            conds[i] = cond
            return True
    conds.append(cond)
    return True


def completion_index(pod: dict) -> int | None:
    """getCompletionIndex: the annotation, None when missing or not a number >= 0."""
    v = obj_at(pod, "metadata", "annotations").get(INDEX_KEY)
    try:
        i = int(v)
    except (TypeError, ValueError):
        return None
    return i if i >= 0 else None


def format_indexes(indexes: set[int]) -> str:
    """orderedIntervals.String(): `0-2,4,6-7`."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        lo, _, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if hi else a
        except ValueError:
            continue
        out.update(i for i in range(a, b + 1) if i < completions)
    return out


def phase(pod: dict) -> str:
    return obj_at(pod, "status").get("phase") or ""


def terminating(pod: dict) -> bool:
    return bool(obj_at(pod, "metadata").get("deletionTimestamp")) and \
        phase(pod) not in ("Succeeded", "Failed")


def active(pod: dict) -> bool:
    return not obj_at(pod, "metadata").get("deletionTimestamp") and \
        phase(pod) not in ("Succeeded", "Failed")


def pod_finished_at(pod: dict) -> float | None:
    """The latest finishedAt of the pod's terminated containers."""
    times = [parse_time(obj_at(cs, "state", "terminated").get("finishedAt"))
             for cs in dicts_at(pod, "status", "containerStatuses")]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def restarts(pods: list[dict]) -> int:
    """pastBackoffLimitOnFailure's sum: restarts of running and pending pods' containers."""
    n = 0
    for p in pods:
        if phase(p) in ("Running", "Pending"):
            for key in ("initContainerStatuses", "containerStatuses"):
                n += sum(int(cs.get("restartCount") or 0) for cs in dicts_at(p, "status", key))
    return n


def failure_backoff(pods: list[dict], now: float) -> float:
    """Seconds before a new pod may be created after failures (the backoff record's
    getRemainingTime): 10 s doubling per failure since the last success, at most 10 min."""
    last_success = max((t for p in pods if phase(p) == "Succeeded"
                        if (t := pod_finished_at(p)) is not None), default=None)
    failures = [pod_finished_at(p) or now for p in pods if phase(p) == "Failed"]
    failures = [t for t in failures if last_success is None or t > last_success]
    if not failures:
        return 0.0
    delay = min(BACKOFF_BASE * 2 ** (len(failures) - 1), BACKOFF_MAX)
    return max(0.0, max(failures) + delay - now)


def pod_name_prefix(job_name: str, index: int | None) -> str:
    """generateName: `<job>-`, Indexed `<job>-<index>-` (podGenerateNameWithIndex)."""
    if index is None:
        return job_name + "-"
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME:
        prefix = prefix[:MAX_GENERATED_NAME - len(suffix)] + suffix
    return prefix


def owner_ref(job: dict) -> dict:
    md = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_from_template(job: dict, index: int | None = None) -> dict:
    """GetPodFromTemplate, plus for Indexed Jobs the completion index as annotation and
    label, the hostname `<job>-<index>` and JOB_COMPLETION_INDEX in every container (from
    the label, through a fieldRef, as upstream adds it)."""
    md = job["metadata"]
    tmpl = obj_at(job, "spec", "template")
    tmd = obj_at(tmpl, "metadata")
    meta: dict = {"generateName": pod_name_prefix(md["name"], index),
                  "namespace": md.get("namespace") or "default",
                  "labels": dict(tmd.get("labels") or {}),
                  "ownerReferences": [owner_ref(job)]}
    if tmd.get("annotations"):
        meta["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        meta["finalizers"] = list(tmd["finalizers"])
    spec = copy.deepcopy(obj_at(tmpl, "spec"))
    if index is not None:
        meta.setdefault("annotations", {})[INDEX_KEY] = str(index)
        meta["labels"][INDEX_KEY] = str(index)
        if not spec.get("hostname"):
            spec["hostname"] = pod_name_prefix(md["name"], index).rstrip("-")
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                env = c.setdefault("env", [])
                if not any(e.get("name") == INDEX_ENV for e in env):
                    env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                        "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX_KEY}']"}}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _int(v, default: int | None = None) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else default


# ---- the controller ------------------------------------------------------------------------
class JobController(OwnerController):
    """Reconciles one Job per key `namespace/name`."""

    name = COMPONENT
    kind = "Job"
    watches = ("jobs", "pods")
    resync_seconds = 30.0

    def __init__(self, client: Client, clock: Callable[[], float] = time.time,
                 informers: InformerFactory | None = None):
        super().__init__(client, clock, informers)

    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        job = self.lister("jobs").get_by_name(name, ns)
        if job is None or obj_at(job, "metadata").get("deletionTimestamp"):
            return None
        job = clone(job)
        now = self.clock()
        if is_finished(job):
            return self._ttl(job, now)
        spec = obj_at(job, "spec")
        pods = claim(self.client, job, "pods", self.lister("pods").list(ns))
        prev = copy.deepcopy(obj_at(job, "status"))
        job.setdefault("status", {})
        status = job["status"]
        indexed = spec.get("completionMode") == "Indexed"
        completions = _int(spec.get("completions"))
        parallelism = _int(spec.get("parallelism"), 1) or 0
        backoff_limit = _int(spec.get("backoffLimit"), 6)
        suspended = spec.get("suspend") is True
        requeue: list[float] = []
        emitted: list[tuple[str, str, str]] = []

        succeeded_pods = [p for p in pods if phase(p) == "Succeeded"]
        failed = max(_int(prev.get("failed"), 0), sum(1 for p in pods if phase(p) == "Failed"))
        done_indexes: set[int] = set()
        if indexed and completions is not None:
            done_indexes = parse_indexes(prev.get("completedIndexes"), completions)
            done_indexes.update(i for p in succeeded_pods if (i := completion_index(p)) is not None
                                and i < completions)
            succeeded = len(done_indexes)
        else:
            succeeded = max(_int(prev.get("succeeded"), 0), len(succeeded_pods))
        act = [p for p in pods if active(p)]

        # Suspension, and the start time (reset when a suspended Job resumes).
        susp = condition(job, "Suspended")
        if suspended:
            if set_condition(job, new_condition("Suspended", "JobSuspended", "Job suspended", now)):
                emitted.append(("Normal", "Suspended", "Job suspended"))
        elif susp is not None and susp.get("status") == "True":
            set_condition(job, new_condition("Suspended", "JobResumed", "Job resumed", now,
                                             status="False"))
            emitted.append(("Normal", "Resumed", "Job resumed"))
            status["startTime"] = format_rfc3339(now)
        if not suspended and not status.get("startTime"):
            status["startTime"] = format_rfc3339(now)

        # The finished condition, in upstream's order.
        finished: tuple[str, str, str] | None = None   # (interim type, final type, reason)
        for interim, final in (("FailureTarget", "Failed"), ("SuccessCriteriaMet", "Complete")):
            c = condition(job, interim)
            if finished is None and c is not None and c.get("status") == "True":
                finished = (interim, final, str(c.get("reason") or ""))
        new_failure = failed > _int(prev.get("failed"), 0)
        started = parse_time(status.get("startTime"))
        deadline = _int(spec.get("activeDeadlineSeconds"))
        past_restarts = obj_at(spec, "template", "spec").get("restartPolicy") == "OnFailure" \
            and backoff_limit is not None and (
                restarts(pods) > 0 if backoff_limit == 0 else restarts(pods) >= backoff_limit)
        if finished is not None:
            pass
        elif backoff_limit is not None and ((new_failure and len(act) != parallelism
                                           and failed > backoff_limit) or past_restarts):
            finished = ("FailureTarget", "Failed", "BackoffLimitExceeded")
        elif deadline is not None and not suspended and started is not None:
            if now - started >= deadline:
                finished = ("FailureTarget", "Failed", "DeadlineExceeded")
            else:
                requeue.append(started + deadline - now)

        if finished is None and not suspended:
            act = self._manage(job, act, pods, done_indexes, succeeded, completions,
                               parallelism, indexed, now, requeue)
        elif suspended:
            self.delete_pods(job, act)
            act = []
        if finished is None:
            if completions is None:
                complete = succeeded > 0 and not act
            else:
                complete = succeeded >= completions and not act
            if complete:
                finished = ("SuccessCriteriaMet", "Complete", "CompletionsReached")
        if finished is not None:
            self.delete_pods(job, act)  # a finished Job keeps no running pod
            act = []

        # Status.
        live = self.lister("pods").list(ns) if finished is not None else pods
        uid = job["metadata"]["uid"]
        n_terminating = sum(1 for p in live if terminating(p) and any(
            r.get("uid") == uid for r in dicts_at(p, "metadata", "ownerReferences")))
        status["active"] = len(act)
        status["ready"] = sum(1 for p in act if is_ready(p))
        status["terminating"] = n_terminating
        status["succeeded"] = succeeded
        status["failed"] = failed
        status["uncountedTerminatedPods"] = {}
        if indexed:
            status["completedIndexes"] = format_indexes(done_indexes)
        for k in ("active", "succeeded", "failed", "completedIndexes"):
            if not status.get(k):
                status.pop(k, None)
        if finished is not None:
            interim, final, reason = finished
            message = {"BackoffLimitExceeded": BACKOFF_MESSAGE,
                       "DeadlineExceeded": DEADLINE_MESSAGE}.get(reason, SUCCESS_MESSAGE)
            set_condition(job, new_condition(interim, reason, message, now))
            if n_terminating == 0:
                set_condition(job, new_condition(final, reason, message, now))
                if final == "Complete":
                    status["completionTime"] = format_rfc3339(now)
                    emitted.append(("Normal", "Completed", "Job completed"))
                else:
                    emitted.append(("Warning", reason, message))
            else:
                requeue.append(1.0)
        if not status.get("conditions"):
            status.pop("conditions", None)
        if status != prev:
            try:
                job = self.client.update_status(job)
            except errors.NotFound:
                return None
        for etype, reason, message in emitted:
            events.record(self.client, job, etype, reason, message, COMPONENT)
        if is_finished(job):
            return self._ttl(job, now)
        return max(0.1, min(requeue)) if requeue else None

    # -- pods -------------------------------------------------------------------------------
    def _manage(self, job: dict, act: list[dict], pods: list[dict], done: set[int],
                succeeded: int, completions: int | None, parallelism: int, indexed: bool,
                now: float, requeue: list[float]) -> list[dict]:
        """manageJob: delete surplus pods, create missing ones; returns the active pods."""
        if indexed and completions is not None:
            keep, surplus = [], []
            seen: set[int] = set()
            for p in deletion_order(act)[::-1]:  # the best of duplicates is kept
                i = completion_index(p)
                if i is None or i >= completions or i in done or i in seen:
                    surplus.append(p)
                else:
                    seen.add(i)
                    keep.append(p)
            self.delete_pods(job, surplus)
            act = keep
            want = [i for i in range(completions) if i not in done and i not in seen]
            room = max(0, parallelism - len(act))
            todo: list[int | None] = list(want[:room])
        else:
            if completions is None:
                want_active = len(act) if succeeded > 0 else parallelism
            else:
                want_active = max(0, min(completions - succeeded, parallelism))
            if len(act) > want_active:
                extra = deletion_order(act)[:len(act) - want_active]
                if len(extra) > MAX_POD_CREATE_DELETE_PER_SYNC:
                    extra = extra[:MAX_POD_CREATE_DELETE_PER_SYNC]
                    requeue.append(0.0)
                self.delete_pods(job, extra)
                gone = {id(p) for p in extra}
                act = [p for p in act if id(p) not in gone]
            todo = [None] * max(0, want_active - len(act))
        if not todo:
            return act
        if len(todo) > MAX_POD_CREATE_DELETE_PER_SYNC:  # a parallelism of 5,000: in steps,
            todo = todo[:MAX_POD_CREATE_DELETE_PER_SYNC]  # the status counting each one
            requeue.append(0.0)
        wait = failure_backoff(pods, now)
        if wait > 0:
            requeue.append(wait)
            return act
        for index in todo:
            try:
                pod = self.client.create(pod_from_template(job, index))
            except errors.ApiError as e:
                events.record(self.client, job, "Warning", "FailedCreate",
                              f"Error creating: {e.message}", COMPONENT)
                requeue.append(5.0)
                break
            events.record(self.client, job, "Normal", "SuccessfulCreate",
                          f"Created pod: {pod['metadata']['name']}", COMPONENT)
            act.append(pod)
        return act

    # -- ttlSecondsAfterFinished --------------------------------------------------------------
    def _ttl(self, job: dict, now: float) -> float | None:
        ttl = _int(obj_at(job, "spec").get("ttlSecondsAfterFinished"))
        done = finish_time(job)
        if ttl is None or done is None:
            return None
        if now < done + ttl:
            return done + ttl - now
        md = job["metadata"]
        try:
            self.client.delete("jobs", md["name"], md.get("namespace"))
        except errors.NotFound:
            pass
        return None
