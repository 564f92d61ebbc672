"""Pod status as the kubelet reports it: phase, conditions, container states (pure)."""

from __future__ import annotations


def container_status(c: dict, rec, *, image_error: tuple[str, str] | None, config_error: str | None,
                     backoff: bool, ready: bool, started: bool | None, image_id: str) -> dict:
    """One entry of status.containerStatuses."""
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
            st["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message":
                                       f"back-off restarting failed container {c['name']}"}}
            st["lastState"] = {"terminated": term}
        else:
            st["state"] = {"terminated": term}
    else:
        st["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return st


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
                   now: str) -> list[dict]:
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
    return [condition("PodReadyToStartContainers", sandbox_ready, old, now),
            condition("Initialized", True, old, now),
            condition("Ready", all_ready, old, now, reason, msg),
            condition("ContainersReady", all_ready, old, now, reason, msg),
            condition("PodScheduled", True, old, now)]
