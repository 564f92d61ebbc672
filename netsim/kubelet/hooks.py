"""Lifecycle hooks (postStart, preStop), run as the kubelet's handler runner runs them.

An exec hook runs inside the container's cgroup and namespaces and an httpGet hook is sent
to the pod's IP, both through the probes' runner (netsim.kubelet.probes.run_probe); the
`sleep` action only waits. Failure messages are upstream's (pkg/kubelet/lifecycle
handlers.go), which the FailedPostStartHook and FailedPreStopHook events carry.
"""

from __future__ import annotations

import json
import threading

from netsim.kubelet.probes import run_probe

ACTIONS = ("exec", "httpGet", "sleep")


def action(handler: dict | None) -> str | None:
    """Which action a LifecycleHandler names (exec, httpGet or sleep); None for none (or
    tcpSocket, which upstream accepts for compatibility and never runs)."""
    for a in ACTIONS:
        if isinstance(handler, dict) and handler.get(a) is not None:
            return a
    return None


def handler(container: dict, hook: str) -> dict | None:
    """The container's postStart or preStop handler, when it names an action we run."""
    h = ((container or {}).get("lifecycle") or {}).get(hook)
    return h if action(h) else None


def sleep_seconds(h: dict, timeout: float) -> float:
    """How long a `sleep` action waits: its seconds, cut at the time left (the grace)."""
    try:
        want = float((h.get("sleep") or {}).get("seconds", 0))
    except (TypeError, ValueError):
        want = 0.0
    return max(0.0, min(want, timeout))


def _q(text: str) -> str:
    """Go's %q for the texts hooks print (json's escaping is close enough)."""
    return json.dumps(text)


def _pod_ref(pod: dict) -> str:
    md = pod["metadata"]
    return f"{md['name']}_{md['namespace']}({md['uid']})"


def run(h: dict, container: dict, pod: dict, pod_ip: str, pid: int, cgroup: str,
        timeout: float, stop: threading.Event | None = None) -> str | None:
    """Run one hook (at most `timeout` seconds); returns None, or the failure message."""
    kind = action(h)
    cname = container.get("name", "")
    if kind == "sleep":
        (stop or threading.Event()).wait(sleep_seconds(h, timeout))
        return None
    timeout = max(timeout, 1.0)
    if kind == "exec":
        cmd = (h["exec"] or {}).get("command") or []
        ok, msg = run_probe({"exec": {"command": cmd}, "timeoutSeconds": timeout},
                            container, pod_ip, pid, cgroup)
        if ok:
            return None
        return (f"Exec lifecycle hook ([{' '.join(map(str, cmd))}]) for Container {_q(cname)} "
                f"in Pod {_q(_pod_ref(pod))} failed - error: command "
                f"'{' '.join(map(str, cmd))}' exited with a failure, message: {_q(msg)}")
    if kind == "httpGet":
        ok, msg = run_probe({"httpGet": h["httpGet"], "timeoutSeconds": timeout},
                            container, pod_ip, pid, cgroup)
        if ok:
            return None
        return (f"HTTP lifecycle hook ({h['httpGet'].get('path', '')}) for Container "
                f"{_q(cname)} in Pod {_q(_pod_ref(pod))} failed - error: {msg}")
    return None
