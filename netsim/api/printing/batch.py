"""`get jobs` and `get cronjobs` rows: printJob and printCronJob of kubernetes
``pkg/printers/internalversion/printers.go`` (1.37), cells as kubectl shows them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netsim.api import selectors
from netsim.api.printing.duration import age, human_duration
from netsim.api.printing.format import NONE, meta_of, spec_of, status_of, to_int
from netsim.api.timeutil import parse_rfc3339

JOB_COLUMNS = ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
CRONJOB_COLUMNS = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
WIDE_COLUMNS = ["CONTAINERS", "IMAGES", "SELECTOR"]


def _containers(pod_template: Mapping) -> tuple[str, str]:
    """layoutContainerCells."""
    cs = (pod_template.get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _selector(sel) -> str:
    """metav1.FormatLabelSelector: `<none>` when empty."""
    return selectors.to_string(sel) or NONE


def _has_condition(job: Mapping, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in status_of(job).get("conditions") or [])


def job_status(job: Mapping) -> str:
    """The STATUS column, in printJob's order."""
    if _has_condition(job, "Complete"):
        return "Complete"
    if _has_condition(job, "Failed"):
        return "Failed"
    if meta_of(job).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _has_condition(job, ctype):
            return ctype
    return "Running"


def job_completions(job: Mapping) -> str:
    spec, status = spec_of(job), status_of(job)
    succeeded = to_int(status.get("succeeded"))
    if spec.get("completions") is not None:
        return f"{succeeded}/{to_int(spec.get('completions'))}"
    parallelism = to_int(spec.get("parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(job: Mapping, now: datetime) -> str:
    status = status_of(job)
    start = parse_rfc3339(status.get("startTime"))
    if start is None:
        return ""
    end = parse_rfc3339(status.get("completionTime"))
    if end is None:
        if now.tzinfo is None:
            now = now.replace(tzinfo=start.tzinfo)
        return human_duration((now - start).total_seconds())
    return human_duration((end - start).total_seconds())


def job_row(job: Mapping, now: datetime) -> list[str]:
    spec, meta = spec_of(job), meta_of(job)
    names, images = _containers(spec.get("template") or {})
    return [meta.get("name", ""), job_status(job), job_completions(job), job_duration(job, now),
            age(meta.get("creationTimestamp"), now), names, images, _selector(spec.get("selector"))]


def _bool_ptr(v) -> str:
    """printBoolPtr."""
    if v is None:
        return "<unset>"
    return "True" if v else "False"


def cronjob_row(cj: Mapping, now: datetime) -> list[str]:
    spec, status, meta = spec_of(cj), status_of(cj), meta_of(cj)
    last = status.get("lastScheduleTime")
    jspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers(jspec.get("template") or {})
    return [meta.get("name", ""), str(spec.get("schedule", "")), spec.get("timeZone") or NONE,
            _bool_ptr(spec.get("suspend")), str(len(status.get("active") or [])),
            age(last, now) if last else NONE, age(meta.get("creationTimestamp"), now),
            names, images, _selector(jspec.get("selector"))]
