"""`describe job` and `describe cronjob`: describeJob and describeCronJob of kubectl's
``pkg/describe/describe.go``, on netsim.cli.describe's writer and pod-template section."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netsim.api import selectors
from netsim.api.printing.duration import human_duration, rfc1123z
from netsim.api.printing.format import NONE, UNSET, meta_of, spec_of, status_of, to_int
from netsim.api.timeutil import parse_rfc3339
from netsim.cli.describe import (
    _controlled_by,
    _object_header,
    _pod_template,
    _PrefixWriter,
    describe_events,
)


def _go_bool(v) -> str:
    return "true" if v else "false"


def _cap_indexes(indexes: str | None, soft_limit: int = 50) -> str:
    """capIndexesListOrNone."""
    if not indexes:
        return NONE
    ix = soft_limit
    while ix < len(indexes) and indexes[ix] != ",":
        ix += 1
    return indexes if ix >= len(indexes) else indexes[:ix + 1] + "..."


def describe_job(job: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(job), spec_of(job), status_of(job)
    _object_header(w, meta, selectors.to_string(spec.get("selector")))
    _controlled_by(w, job)
    if spec.get("parallelism") is not None:
        w.write(0, f"Parallelism:\t{to_int(spec['parallelism'])}\n")
    if spec.get("completions") is not None:
        w.write(0, f"Completions:\t{to_int(spec['completions'])}\n")
    else:
        w.write(0, f"Completions:\t{UNSET}\n")
    if spec.get("completionMode"):
        w.write(0, f"Completion Mode:\t{spec['completionMode']}\n")
    if spec.get("suspend") is not None:
        w.write(0, f"Suspend:\t{_go_bool(spec['suspend'])}\n")
    if spec.get("backoffLimit") is not None:
        w.write(0, f"Backoff Limit:\t{to_int(spec['backoffLimit'])}\n")
    if spec.get("ttlSecondsAfterFinished") is not None:
        w.write(0, f"TTL Seconds After Finished:\t{to_int(spec['ttlSecondsAfterFinished'])}\n")
    start, done = status.get("startTime"), status.get("completionTime")
    if start:
        w.write(0, f"Start Time:\t{rfc1123z(start)}\n")
    if done:
        w.write(0, f"Completed At:\t{rfc1123z(done)}\n")
    t0, t1 = parse_rfc3339(start), parse_rfc3339(done)
    if t0 is not None and t1 is not None:
        w.write(0, f"Duration:\t{human_duration((t1 - t0).total_seconds())}\n")
    if spec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{to_int(spec['activeDeadlineSeconds'])}s\n")
    counts = (to_int(status.get("active")), to_int(status.get("succeeded")),
              to_int(status.get("failed")))
    if status.get("ready") is None:
        w.write(0, f"Pods Statuses:\t{counts[0]} Active / {counts[1]} Succeeded / "
                   f"{counts[2]} Failed\n")
    else:
        w.write(0, f"Pods Statuses:\t{counts[0]} Active ({to_int(status['ready'])} Ready) / "
                   f"{counts[1]} Succeeded / {counts[2]} Failed\n")
    if spec.get("completionMode") == "Indexed":
        w.write(0, f"Completed Indexes:\t{_cap_indexes(status.get('completedIndexes'))}\n")
    _pod_template(w, spec.get("template"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def describe_cronjob(cj: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(cj), spec_of(cj), status_of(cj)
    _object_header(w, meta)
    w.write(0, f"Schedule:\t{spec.get('schedule', '')}\n")
    w.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}\n")
    suspend = spec.get("suspend")
    w.write(0, f"Suspend:\t{UNSET if suspend is None else ('True' if suspend else 'False')}\n")
    for title, key in (("Successful Job History Limit", "successfulJobsHistoryLimit"),
                       ("Failed Job History Limit", "failedJobsHistoryLimit")):
        v = spec.get(key)
        w.write(0, f"{title}:\t{UNSET if v is None else to_int(v)}\n")
    sds = spec.get("startingDeadlineSeconds")
    w.write(0, f"Starting Deadline Seconds:\t{UNSET if sds is None else f'{to_int(sds)}s'}\n")
    jspec = spec_of(spec.get("jobTemplate") or {})
    sel = jspec.get("selector")
    w.write(0, f"Selector:\t{UNSET if sel is None else selectors.to_string(sel)}\n")
    for title, key in (("Parallelism", "parallelism"), ("Completions", "completions")):
        v = jspec.get(key)
        w.write(0, f"{title}:\t{UNSET if v is None else to_int(v)}\n")
    if jspec.get("activeDeadlineSeconds") is not None:
        w.write(0, f"Active Deadline Seconds:\t{to_int(jspec['activeDeadlineSeconds'])}s\n")
    _pod_template(w, jspec.get("template"))
    last = status.get("lastScheduleTime")
    w.write(0, f"Last Schedule Time:\t{rfc1123z(last) if last else UNSET}\n")
    active = [a.get("name", "") for a in status.get("active") or []]
    w.write(0, f"Active Jobs:\t{', '.join(active) if active else NONE}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()
