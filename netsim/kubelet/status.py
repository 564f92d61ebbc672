"""Pod and Node status as the kubelet reports them: phase, conditions, container states,
the node's capacity (pure)."""

from __future__ import annotations


def container_status(c: dict, rec, *, image_error: tuple[str, str] | None, config_error: str | None,
                     backoff: bool | str, ready: bool, started: bool | None, image_id: str,
                     waiting: str = "ContainerCreating") -> dict:
    """One entry of status.containerStatuses (or initContainerStatuses). `backoff` is the
    CrashLoopBackOff message (True: a generic one); `waiting` the reason of a container not
    started yet (PodInitializing while init containers run)."""
    st: dict = {"name": c["name"], "image": c.get("image", ""), "imageID": image_id,
                "ready": False, "restartCount": rec.restart_count if rec else 0,
                "started": False, "lastState": {}, "state": {}}
    if rec and rec.last_terminated:
        st["lastState"] = {"terminated": rec.last_terminated}
    if rec and rec.alive():
        st["containerID"] = f"netsim://{rec.pid}"
        st["state"] = {"running": {"startedAt": rec.started_at}}
        st["ready"] = ready
        st["started"] = bool(started) if started is not None else True
    elif image_error:
        st["state"] = {"waiting": {"reason": image_error[0], "message": image_error[1]}}
    elif config_error:
        st["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": config_error}}
    elif rec and rec.exit_code is not None:
        term = {"exitCode": rec.exit_code, "reason": rec.reason or ("Completed" if rec.exit_code == 0 else "Error"),
                "startedAt": rec.started_at, "finishedAt": rec.finished_at,
                "containerID": f"netsim://{rec.pid}"}
        if backoff:
            msg = backoff if isinstance(backoff, str) else \
                f"back-off restarting failed container {c['name']}"
            st["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
            st["lastState"] = {"terminated": term}
        else:
            st["state"] = {"terminated": term}
    else:
        st["state"] = {"waiting": {"reason": waiting}}
    return st


# ---- init containers ------------------------------------------------------------------------

def is_sidecar(c: dict) -> bool:
    """A restartable init container (restartPolicy Always): it keeps running beside the app."""
    return (c or {}).get("restartPolicy") == "Always"


def init_done(c: dict, s: dict) -> bool:
    """Whether init container `c` (status `s`) lets the next one start: a regular one has
    exited 0, a sidecar has started (its startupProbe passed)."""
    if is_sidecar(c):
        return "running" in s["state"] and bool(s.get("started"))
    term = s["state"].get("terminated")
    return term is not None and term.get("exitCode") == 0


def init_failed(s: dict) -> bool:
    """An init container that exited non-zero (now, or before its back-off)."""
    term = s["state"].get("terminated") or (s.get("lastState") or {}).get("terminated")
    return "running" not in s["state"] and term is not None and term.get("exitCode") != 0


def init_phase(restart_policy: str, init_specs: list[dict], init_statuses: list[dict],
               apps_started: bool = False) -> str | None:
    """The phase while init containers are not done (None when they are): a failed regular
    init container fails the pod under restartPolicy Never, else the pod is Pending. Once
    an app container has started, a sidecar that is not running puts it back in no phase
    (upstream's !HasAnyRegularContainerStarted)."""
    pending = [s for c, s in zip(init_specs, init_statuses, strict=True)
               if not init_done(c, s) and not (apps_started and is_sidecar(c))]
    if not pending:
        return None
    if restart_policy == "Never" and any(init_failed(s) for c, s in zip(init_specs, init_statuses, strict=True)
                                         if not is_sidecar(c)):
        return "Failed"
    return "Pending"


def apps_done(restart_policy: str, records: list) -> bool:
    """Whether every app container has finished for good (none will restart): never
    under Always; under OnFailure when all exited 0; under Never when all exited."""
    if restart_policy == "Always" or not records:
        return False
    for r in records:
        if r is None or r.exit_code is None:
            return False
        if restart_policy == "OnFailure" and r.exit_code != 0:
            return False
    return True


# ---- restart back-off -----------------------------------------------------------------------

BACKOFF_INITIAL, BACKOFF_CAP, BACKOFF_RESET = 10.0, 300.0, 600.0


def backoff_wait(entry: tuple[float, float] | None, finished: float, now: float) -> float:
    """Seconds a crashed container still waits before its restart (0: restart now).

    Upstream's flowcontrol.Backoff as the kubelet uses it: `entry` is (delay, lastUpdate)
    of the container's last restart; a container that finished within `delay` of it is in
    back-off until lastUpdate + delay (IsInBackOffSince)."""
    if entry is None:
        return 0.0
    delay, last = entry
    if finished - last >= delay:
        return 0.0
    return max(0.0, last + delay - now)


def backoff_next(entry: tuple[float, float] | None, now: float) -> tuple[float, float]:
    """The entry after a restart at `now` (Backoff.Next): 10 s, then doubling to 5 min; an
    entry not updated for 10 min (2 x the cap) starts again at 10 s."""
    if entry is None or now - entry[1] > 2 * BACKOFF_CAP:
        return (BACKOFF_INITIAL, now)
    return (min(entry[0] * 2, BACKOFF_CAP), now)


def go_duration(seconds: float) -> str:
    """A whole number of seconds as Go's time.Duration prints it: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s"
    h, m = divmod(m, 60)
    return f"{h}h{m}m{s}s"


def backoff_message(delay: float, container: str, pod: dict) -> str:
    """The CrashLoopBackOff waiting message, as kuberuntime's doBackOff words it."""
    md = pod["metadata"]
    return (f"back-off {go_duration(delay)} restarting failed container={container} "
            f"pod={md['name']}_{md['namespace']}({md['uid']})")


def pod_phase(restart_policy: str, statuses: list[dict]) -> str:
    if not statuses:
        return "Pending"
    running = sum(1 for s in statuses if "running" in s["state"])
    terminated = [s["state"]["terminated"] for s in statuses if "terminated" in s["state"]]
    waiting_after_run = sum(1 for s in statuses if "waiting" in s["state"] and s.get("lastState"))
    if any("waiting" in s["state"] and not s.get("lastState") for s in statuses):
        return "Pending"  # upstream getPhase: a container not started yet wins over running
    if running or waiting_after_run:
        return "Running"
    if len(terminated) == len(statuses):
        if all(t["exitCode"] == 0 for t in terminated):
            return "Succeeded" if restart_policy != "Always" else "Running"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def condition(ctype: str, ok: bool, old: list[dict], now: str, reason: str | None = None,
              message: str | None = None) -> dict:
    """A condition that keeps its lastTransitionTime while its status does not change."""
    status = "True" if ok else "False"
    prev = next((c for c in old if c.get("type") == ctype), None)
    ltt = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
    out = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": ltt}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def pod_conditions(statuses: list[dict], phase: str, *, sandbox_ready: bool, old: list[dict],
                   now: str, not_initialized: list[str] | None = None) -> list[dict]:
    """status.conditions in the kubelet's order. Ready/ContainersReady as upstream's
    GenerateContainersReadyCondition: a finished pod is not ready with reason PodCompleted
    or PodFailed; else the unready containers are named."""
    all_ready = bool(statuses) and all(s["ready"] for s in statuses)
    if phase in ("Succeeded", "Failed"):
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        all_ready, msg = False, None
    else:
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else None
        reason = "ContainersNotReady" if not_ready else None
    if not_initialized:
        init = condition("Initialized", False, old, now, "ContainersNotInitialized",
                         f"containers with incomplete status: [{' '.join(not_initialized)}]")
        if phase not in ("Succeeded", "Failed"):
            reason, msg = "ContainersNotReady", \
                f"containers with unready status: [{' '.join(s['name'] for s in statuses)}]"
        all_ready = False
    else:
        init = condition("Initialized", True, old, now)
    return [condition("PodReadyToStartContainers", sandbox_ready, old, now),
            init,
            condition("Ready", all_ready, old, now, reason, msg),
            condition("ContainersReady", all_ready, old, now, reason, msg),
            condition("PodScheduled", True, old, now)]


# ---- node -----------------------------------------------------------------------------------

def node_capacity(cpus: int, mem_kib: int, max_pods: int) -> dict[str, str]:
    """status.capacity of the Node: `pods` is the kubelet's maxPods (110 unless the cluster
    was made with --max-pods), which the scheduler's NodeResourcesFit counts against."""
    return {"cpu": str(cpus), "memory": f"{mem_kib}Ki", "pods": str(max_pods),
            "ephemeral-storage": "50Gi", "hugepages-2Mi": "0"}
