"""Jobs and CronJobs (stored, not run): defaults and pkg/apis/batch/validation in its words.

The pod template is checked as every template is (podspec.validate_pod_spec), and a Job's
may only restart OnFailure or Never. A Job without `manualSelector: true` gets the selector
and template labels the apiserver generates from its uid (the store assigns the uid before
admission); what is left out is checking a user's own labels against that selector. Schedules are parsed as
robfig/cron/v3's ParseStandard parses them, with its error texts.
"""

from __future__ import annotations

from netsim.api import validation as v
from netsim.api.kinds.apps import default_template, go_label_selector, go_map
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.kinds.podspec import validate_pod_spec
from netsim.api.selectors import from_label_selector

JOB_RESTART_POLICIES = ("OnFailure", "Never")
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul",
                                           "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# minute, hour, day of month, month, day of week: (min, max, names)
_CRON_FIELDS = ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 6, _DAYS))
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_int(expr: str, names=None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    if not expr.lstrip("+-").isdigit() or expr.startswith("+"):
        raise ValueError(f'failed to parse int from {expr}: strconv.Atoi: parsing '
                         f'{v.go_quote(expr)}: invalid syntax')
    n = int(expr)
    if n < 0:
        raise ValueError(f"negative number ({n}) not allowed: {expr}")
    return n


def _cron_range(expr: str, lo: int, hi: int, names) -> None:
    range_step = expr.split("/")
    low_high = range_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _cron_int(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _cron_int(low_high[1], names)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    step = 1
    if len(range_step) == 2:
        step = _cron_int(range_step[1])
        if len(low_high) == 1:
            end = hi
    elif len(range_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    if start < lo:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise ValueError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")


def cron_error(spec: str) -> str | None:
    """robfig/cron/v3 ParseStandard's error for `spec`, or None when it parses."""
    if spec.startswith(("TZ=", "CRON_TZ=")):
        i = spec.find(" ")
        if i < 0:
            return f"invalid timezone specification: {spec}"
        spec = spec[i:].strip()
    if spec.startswith("@"):
        if spec in _DESCRIPTORS or spec.startswith("@every "):
            return None
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for f, (lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
            for expr in (e for e in f.split(",") if e):
                _cron_range(expr, lo, hi, names)
    except ValueError as e:
        return str(e)
    return None
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")


def _default_job_spec(spec: dict) -> None:
    """SetDefaults_Job: a Job with neither completions nor parallelism runs once."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podReplacementPolicy") is None:  # JobPodReplacementPolicy, GA in 1.34
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else \
            "TerminatingOrFailed"
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        default_template(tmpl)


def _default_job(obj: dict, old: dict | None) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _default_job_spec(spec)
        if old is None and spec.get("manualSelector") is not True:
            _generate_selector(obj, spec)
        # SetDefaults_Job: a Job without labels takes its template's
        md = obj.get("metadata")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if isinstance(md, dict) and not md.get("labels") and isinstance(labels, dict) and labels:
            md["labels"] = dict(labels)


JOB_LABELS = ("job-name", "batch.kubernetes.io/job-name")
UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


def _generate_selector(obj: dict, spec: dict) -> None:
    """The Job strategy's generateSelector: the template is labelled with the Job's name and
    uid (legacy and batch.kubernetes.io/ keys, labels the user set are kept), and the
    selector matches batch.kubernetes.io/controller-uid."""
    md = obj.get("metadata") or {}
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict) or not md.get("uid"):
        return
    tmd = tmpl.get("metadata")
    if not isinstance(tmd, dict):
        tmd = tmpl["metadata"] = {}
    labels = tmd.get("labels")
    if not isinstance(labels, dict):
        labels = tmd["labels"] = {}
    for k in JOB_LABELS:
        labels.setdefault(k, str(md.get("name") or ""))
    for k in UID_LABELS:
        labels.setdefault(k, md["uid"])
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        sel = spec["selector"] = {}
    ml = sel.get("matchLabels")
    if not isinstance(ml, dict):
        ml = sel["matchLabels"] = {}
    ml.setdefault(UID_LABELS[1], md["uid"])


def _default_cronjob(obj: dict, old: dict | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    jt = spec.get("jobTemplate")
    # SetDefaults_Job is for Jobs: a jobTemplate's counts stay unset (describe prints
    # <unset>), only its pod template gets the pod defaults.
    tmpl = (jt.get("spec") or {}).get("template") if isinstance(jt, dict) and \
        isinstance(jt.get("spec"), dict) else None
    if isinstance(tmpl, dict):
        default_template(tmpl)


def validate_job_spec(spec: dict, path: str) -> list[str]:
    """validateJobSpec: counts, the pod template, its restartPolicy."""
    causes: list[str] = []
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"):
        causes += v.nonnegative(spec.get(f), f"{path}.{f}")
    tmpl = spec.get("template") or {}
    tp = f"{path}.template"
    tmeta = tmpl.get("metadata") or {}
    causes += v.labels(tmeta.get("labels"), f"{tp}.labels")
    causes += v.annotations(tmeta.get("annotations"), f"{tp}.annotations")
    pod_spec = tmpl.get("spec") or {}
    causes += validate_pod_spec(pod_spec, f"{tp}.spec")
    rp = pod_spec.get("restartPolicy") or ""
    if rp not in JOB_RESTART_POLICIES:
        causes.append(v.unsupported(f"{tp}.spec.restartPolicy", rp, JOB_RESTART_POLICIES))
    return causes


def _validate_job(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") or {}
    causes = validate_job_spec(spec, "spec")
    if spec.get("manualSelector") is True:
        sel = spec.get("selector")
        if sel is None:
            causes.append(v.required("spec.selector"))
        else:
            causes += v.label_selector(sel, "spec.selector")
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not from_label_selector(sel)(labels):
                causes.append(f"spec.template.metadata.labels: Invalid value: {go_map(labels)}: "
                              "`selector` does not match template `labels`")
    if old is not None:
        ospec = old.get("spec") or {}
        if spec.get("completions") != ospec.get("completions"):
            causes.append(v.invalid("spec.completions", spec.get("completions"),
                                    "field is immutable"))
        if spec.get("template") != ospec.get("template"):
            # ValidateImmutableField(spec.Template, ...): Go's %#v of the whole template
            causes.append("spec.template: Invalid value: core.PodTemplateSpec{...}: "
                          "field is immutable")
    return causes


def _validate_cronjob(obj: dict, old: dict | None) -> list[str]:
    """ValidateCronJobSpec."""
    spec = obj.get("spec") or {}
    causes: list[str] = []
    schedule = spec.get("schedule") or ""
    if not schedule:
        causes.append(v.required("spec.schedule"))
    else:
        err = cron_error(schedule)
        if err:
            causes.append(v.invalid("spec.schedule", schedule, err))
        if "TZ" in schedule:
            causes.append(v.invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in "
                                    "schedule, use timeZone field instead"))
    causes += v.nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds")
    cp = spec.get("concurrencyPolicy") or ""
    if not cp:
        causes.append(v.required("spec.concurrencyPolicy"))
    elif cp not in CONCURRENCY_POLICIES:
        causes.append(v.unsupported("spec.concurrencyPolicy", cp, CONCURRENCY_POLICIES))
    jspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    causes += validate_job_spec(jspec, "spec.jobTemplate.spec")
    if jspec.get("selector") is not None:
        causes.append(f"spec.jobTemplate.spec.selector: Invalid value: "
                      f"{go_label_selector(jspec['selector'])}: `selector` will be auto-generated")
    if jspec.get("manualSelector") is True:
        causes.append(v.unsupported("spec.jobTemplate.spec.manualSelector", True,
                                    ("nil", "false")))
    for f in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += v.nonnegative(spec.get(f), f"spec.{f}")
    return causes


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Job", defaulter=_default_job, validator=_validate_job)
    reg.add("CronJob", defaulter=_default_cronjob, validator=_validate_cronjob)
