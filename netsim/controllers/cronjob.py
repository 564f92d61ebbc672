"""The CronJob controller: makes Jobs on a schedule, as kube-controller-manager's
cronjob_controllerv2 does.

Each sync: update status.active from the CronJob's Jobs (SawCompletedJob, MissingJob,
lastSuccessfulTime), then, unless suspended, find the most recent schedule time since the
last one (or the creation), bounded by startingDeadlineSeconds (MissSchedule when it is
too late), honour concurrencyPolicy (Forbid: JobAlreadyActive; Replace: the active Jobs
are deleted), create `<cronjob>-<scheduled time in minutes since the epoch>` from the
jobTemplate and record it in status.active/lastScheduleTime; finally delete the oldest
finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit. It requeues
itself for the next schedule time (plus upstream's 100 ms).

Schedules are standard five-field cron (the admission's parser says what is valid, as
robfig/cron's ParseStandard does); next times come from cronsim, in spec.timeZone
(zoneinfo) or UTC; `@hourly`-style descriptors are robfig's fixed expansions, and
`@every D` a constant delay.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from netsim.api import errors, events
from netsim.api.client import Client
from netsim.api.timeutil import format_rfc3339
from netsim.api.timeutil import rfc3339_seconds as parse_time
from netsim.controllers.base import split_key
from netsim.controllers.fields import dicts_at, obj_at
from netsim.controllers.job import is_finished
from netsim.controllers.replicaset import OwnerController, controller_ref
from netsim.machinery import InformerFactory, clone

COMPONENT = "cronjob-controller"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1
MAX_MISSED = 100
# robfig/cron's descriptors (parser.go parseDescriptor)
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@hourly": "0 * * * *"}
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Schedule:
    """A parsed schedule: next(t) is the first fire time after t (Unix seconds)."""

    def __init__(self, spec: str, tz: tzinfo):
        self.tz = tz
        self.every: float | None = None
        spec = spec.strip()
        if spec.startswith("@every "):
            self.every = parse_go_duration(spec[len("@every "):].strip())
            if self.every < 1:
                self.every = 1.0  # robfig: at least one second
            self.expr = ""
            return
        self.expr = DESCRIPTORS.get(spec, spec)
        if self.expr.startswith("@"):
            raise ValueError(f"unrecognized descriptor: {spec}")
        try:
            CronSim(self.expr, datetime.now(tz))
        except CronSimError as e:
            raise ValueError(str(e)) from None

    def next(self, t: float) -> float:
        if self.every is not None:
            return float(int(t - t % 1 + self.every))
        start = datetime.fromtimestamp(t, self.tz)
        return next(CronSim(self.expr, start)).timestamp()


def parse_go_duration(text: str) -> float:
    """time.ParseDuration for `@every`: `1h30m`, `90s`, `1.5h`."""
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"failed to parse duration {text}")
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def job_name(cronjob_name: str, scheduled: float) -> str:
    """getJobName: the scheduled time in minutes since the epoch."""
    return f"{cronjob_name}-{int(scheduled) // 60}"


def most_recent_schedule(earliest: float, now: float, sched: Schedule) -> tuple[float | None, int]:
    """mostRecentScheduleTime: the latest fire time in (earliest, now], and how many were
    missed (at most MAX_MISSED + 1 are counted)."""
    t1 = sched.next(earliest)
    if now < t1:
        return None, 0
    t2 = sched.next(t1)
    if now < t2:
        return t1, 1
    missed, t = 1, t1
    while True:
        nxt = sched.next(t)
        if nxt > now:
            return t, missed
        t, missed = nxt, missed + 1
        if missed > MAX_MISSED + 1:
            # upstream computes the last one arithmetically; the count is all it reports
            while (nxt := sched.next(t)) <= now:
                t = nxt
            return t, missed


def _is_succeeded(job: dict) -> bool:
    return any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in dicts_at(job, "status", "conditions"))


def _finished_condition(job: dict) -> str:
    for c in dicts_at(job, "status", "conditions"):
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return ""


def _rfc1123z(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")


class CronJobController(OwnerController):
    """Reconciles one CronJob per key `namespace/name`."""

    name = COMPONENT
    kind = "CronJob"
    watches = ("cronjobs", "jobs")
    workers = 1

    def __init__(self, client: Client, clock: Callable[[], float] = time.time,
                 informers: InformerFactory | None = None):
        super().__init__(client, clock, informers)

    def owner_keys(self, obj: dict) -> list[str]:
        """Jobs are the CronJob's by controller reference only (no selector)."""
        md = obj.get("metadata") or {}
        ref = controller_ref(obj)
        if ref is not None and ref.get("kind") == self.kind:
            return [f"{md.get('namespace') or 'default'}/{ref['name']}"]
        return []

    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        cj = self.lister("cronjobs").get_by_name(name, ns)
        if cj is None:
            return None
        cj = clone(cj)
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.lister("jobs").list(ns)
                if (controller_ref(j) or {}).get("uid") == uid]
        status = cj.setdefault("status", {})
        before = repr(status)
        now = self.clock()
        emitted: list[tuple[str, str, str]] = []
        requeue = self._sync(cj, jobs, now, emitted)
        self._cleanup(cj, jobs, emitted)
        if not status.get("active"):
            status.pop("active", None)
        if repr(status) != before:
            try:
                cj = self.client.update_status(cj)
            except errors.NotFound:
                return None
        for etype, reason, message in emitted:
            events.record(self.client, cj, etype, reason, message, COMPONENT)
        return requeue

    # -- syncCronJob ------------------------------------------------------------------------
    def _sync(self, cj: dict, jobs: list[dict], now: float,
              emitted: list[tuple[str, str, str]]) -> float | None:
        status = cj["status"]
        active = dicts_at(cj, "status", "active")
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        for j in jobs:
            juid = j["metadata"]["uid"]
            found = any(r.get("uid") == juid for r in active)
            if not found and not is_finished(j):
                emitted.append(("Warning", "UnexpectedJob",
                                f"Saw a job that the controller did not create or forgot: "
                                f"{j['metadata']['name']}"))
            elif found and is_finished(j):
                active = [r for r in active if r.get("uid") != juid]
                emitted.append(("Normal", "SawCompletedJob",
                                f"Saw completed job: {j['metadata']['name']}, "
                                f"condition: {_finished_condition(j)}"))
            if _is_succeeded(j):
                done = parse_time(obj_at(j, "status").get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if done is not None and (last is None or done > last):
                    status["lastSuccessfulTime"] = format_rfc3339(done)
        for r in list(active):
            if r.get("uid") in by_uid:
                continue
            if self.client.get_or_none("jobs", r.get("name", ""), cj["metadata"].get("namespace")) \
                    is None:
                emitted.append(("Normal", "MissingJob", f"Active job went missing: {r.get('name')}"))
                active = [a for a in active if a is not r]
        status["active"] = active
        if cj["metadata"].get("deletionTimestamp"):
            return None
        spec = obj_at(cj, "spec")
        tz: tzinfo = timezone.utc
        if spec.get("timeZone"):
            try:
                tz = ZoneInfo(str(spec["timeZone"]))
            except (ZoneInfoNotFoundError, ValueError) as e:
                emitted.append(("Warning", "UnknownTimeZone",
                                f"invalid timeZone: {spec['timeZone']!r}: {e}"))
                return None
        try:
            sched = Schedule(str(spec.get("schedule") or ""), tz)
        except ValueError as e:
            emitted.append(("Warning", "UnparseableSchedule",
                            f"unparseable schedule: {spec.get('schedule')!r} : {e}"))
            return None
        if spec.get("suspend") is True:
            return None
        earliest = parse_time(status.get("lastScheduleTime")) or \
            parse_time(cj["metadata"].get("creationTimestamp")) or now
        sds = spec.get("startingDeadlineSeconds")
        if isinstance(sds, int) and now - sds > earliest:
            earliest = now - sds
        scheduled, missed = (None, 0) if earliest > now else most_recent_schedule(earliest, now, sched)
        if missed > MAX_MISSED:
            emitted.append(("Warning", "TooManyMissedTimes",
                            f"too many missed start times: {missed}. Set or decrease "
                            ".spec.startingDeadlineSeconds or check clock skew"))
        next_in = self._next_in(cj, now, sched)
        if scheduled is None:
            return next_in
        if isinstance(sds, int) and scheduled + sds < now:
            emitted.append(("Warning", "MissSchedule", "Missed scheduled time to start a job: "
                            f"{_rfc1123z(scheduled)}"))
            return next_in
        name = job_name(cj["metadata"]["name"], scheduled)
        if any(r.get("name") == name for r in active) or \
                parse_time(status.get("lastScheduleTime")) == scheduled:
            return next_in
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            emitted.append(("Normal", "JobAlreadyActive", "Not starting job because prior "
                            "execution is running and concurrency policy is Forbid"))
            return next_in
        if policy == "Replace":
            for r in list(active):
                j = self.client.get_or_none("jobs", r.get("name", ""), cj["metadata"].get("namespace"))
                if j is None:
                    continue
                if self._delete_job(cj, j, emitted):
                    active = [a for a in active if a.get("uid") != r.get("uid")]
            status["active"] = active
        try:
            job = self.client.create(self._job_from_template(cj, scheduled, tz, name))
        except errors.AlreadyExists:
            return next_in  # made by another actor: it updates the status
        except errors.ApiError as e:
            emitted.append(("Warning", "FailedCreate", f"Error creating job: {e.message}"))
            return next_in
        emitted.append(("Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}"))
        jmd = job["metadata"]
        active.append({"kind": "Job", "namespace": jmd.get("namespace"), "name": jmd["name"],
                       "uid": jmd["uid"], "apiVersion": "batch/v1",
                       "resourceVersion": jmd.get("resourceVersion")})
        status["active"] = active
        status["lastScheduleTime"] = format_rfc3339(scheduled)
        jobs.append(job)
        return next_in

    def _next_in(self, cj: dict, now: float, sched: Schedule) -> float:
        """nextScheduleTimeDuration: until the next fire time after the most recent one."""
        earliest = parse_time(obj_at(cj, "status").get("lastScheduleTime")) or \
            parse_time(cj["metadata"].get("creationTimestamp")) or now
        recent, _ = most_recent_schedule(earliest, now, sched)
        base = recent if recent is not None else earliest
        return max(NEXT_SCHEDULE_DELTA, sched.next(base) + NEXT_SCHEDULE_DELTA - now)

    def _job_from_template(self, cj: dict, scheduled: float, tz: tzinfo, name: str) -> dict:
        """getJobFromTemplate2: the template's labels/annotations, the scheduled time."""
        md = cj["metadata"]
        tmpl = obj_at(cj, "spec", "jobTemplate")
        tmd = obj_at(tmpl, "metadata")
        ann = dict(tmd.get("annotations") or {})
        when = datetime.fromtimestamp(scheduled, tz)
        ann[SCHEDULED_ANNOTATION] = when.isoformat().replace("+00:00", "Z")
        meta = {"name": name, "namespace": md.get("namespace") or "default",
                "labels": dict(tmd.get("labels") or {}), "annotations": ann,
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                     "name": md["name"], "uid": md["uid"], "controller": True,
                                     "blockOwnerDeletion": True}]}
        if not meta["labels"]:
            del meta["labels"]
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                "spec": copy.deepcopy(obj_at(tmpl, "spec"))}

    def _delete_job(self, cj: dict, job: dict, emitted: list) -> bool:
        try:
            self.client.delete("jobs", job["metadata"]["name"], job["metadata"].get("namespace"))
        except errors.NotFound:
            return True
        except errors.ApiError as e:
            emitted.append(("Warning", "FailedDelete",
                            f"Deleted job: {job['metadata']['name']}: {e.message}"))
            return False
        emitted.append(("Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}"))
        return True

    # -- cleanupFinishedJobs -----------------------------------------------------------------
    def _cleanup(self, cj: dict, jobs: list[dict], emitted: list) -> bool:
        spec = obj_at(cj, "spec")
        changed = False
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):
            if not isinstance(limit, int):
                continue
            done = [j for j in jobs if _finished_condition(j) == kind]
            if len(done) <= limit:
                continue

            def started(j: dict) -> tuple:
                t = parse_time(obj_at(j, "status").get("startTime"))
                return (t is None, t or 0.0, j["metadata"]["name"])
            for j in sorted(done, key=started)[:len(done) - limit]:
                if self._delete_job(cj, j, emitted):
                    changed = True
        return changed

