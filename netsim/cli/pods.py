"""`exec`, `logs`, `node exec`: step into a pod's or a node's namespaces on this machine."""

from __future__ import annotations

import os
import time

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, err, server_error
from netsim.kubelet import cgroups, runtime
from netsim.kubelet.runtime import PodRecord, proc_starttime


def _pod(ctx: Ctx, name: str) -> dict:
    try:
        return ctx.client.get("pods", name, ctx.ns)
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e


_OWNER_KINDS = {
    "job": "jobs", "jobs": "jobs", "job.batch": "jobs", "jobs.batch": "jobs",
    "deployment": "deployments", "deployments": "deployments", "deploy": "deployments",
    "replicaset": "replicasets", "replicasets": "replicasets", "rs": "replicasets",
    "daemonset": "daemonsets", "daemonsets": "daemonsets", "ds": "daemonsets",
    "statefulset": "statefulsets", "statefulsets": "statefulsets", "sts": "statefulsets",
}
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def pod_for_logs(ctx: Ctx, ref: str) -> str:
    """The pod `logs TYPE/NAME` reads (LogsForObject): a pod by name, or for a workload the
    first of its selector's pods in podutils.ByLogging order (scheduled, running, ready,
    most restarts, newest), saying which when there are several, as kubectl does."""
    kind, _, name = ref.rpartition("/")
    if not kind or kind in ("pod", "pods", "po"):
        return name
    plural = _OWNER_KINDS.get(kind.lower())
    if plural is None:
        raise CliError(f"error: the server doesn't have a resource type \"{kind}\"")
    try:
        owner = ctx.client.get(plural, name, ctx.ns)
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    from netsim.api.selectors import from_label_selector
    match = from_label_selector((owner.get("spec") or {}).get("selector"))
    pods = [p for p in ctx.client.list("pods", ctx.ns)
            if match((p.get("metadata") or {}).get("labels") or {})]
    if not pods:
        raise CliError("error: timed out waiting for the condition")

    def rank(p: dict) -> tuple:
        st = p.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in st.get("conditions") or [])
        restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or [])
        return (bool((p.get("spec") or {}).get("nodeName")), _PHASE_ORDINAL.get(st.get("phase"), 0),
                ready, restarts, p["metadata"].get("creationTimestamp") or "")
    pods.sort(key=rank, reverse=True)
    if len(pods) > 1:
        err(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}")
    return pods[0]["metadata"]["name"]


def _pod_dir(ctx: Ctx, pod: dict) -> str | None:
    """Where the pod's kubelet keeps its record and logs (None before it is scheduled)."""
    md, node = pod["metadata"], pod["spec"].get("nodeName")
    if not node:
        return None
    return runtime.pod_dir(runtime.node_root(ctx.cluster, node), md["namespace"], md["name"],
                           md["uid"])


def _record(ctx: Ctx, pod: dict) -> PodRecord | None:
    d = _pod_dir(ctx, pod)
    return PodRecord.load(d) if d else None


def _container(pod: dict, name: str | None) -> str:
    names = [c["name"] for c in pod["spec"].get("containers", [])]
    if name is None:
        if len(names) > 1:
            err(f'Defaulted container "{names[0]}" out of: {", ".join(names)}')
        return names[0]
    if name not in names:
        raise CliError(f'error: container {name} is not valid for pod {pod["metadata"]["name"]}')
    return name


def exec_(ctx: Ctx, pod_name: str, container: str | None, command: list[str], tty: bool,
          stdin: bool) -> int:
    pod = _pod(ctx, pod_name)
    cname = _container(pod, container)
    rec = _record(ctx, pod)
    crec = rec.containers.get(cname) if rec else None
    if pod["status"].get("phase") in ("Succeeded", "Failed"):
        raise CliError("error: cannot exec into a container in a completed pod; current phase "
                       f"is {pod['status']['phase']}")
    if crec is None or not crec.pid or proc_starttime(crec.pid) != crec.starttime:
        raise CliError(f"error: unable to upgrade connection: container not found (\"{cname}\")")
    if not command:
        raise CliError("error: you must specify at least one command for the container")
    try:
        with open(f"/proc/{crec.pid}/environ", "rb") as f:
            env = dict(kv.split("=", 1) for kv in f.read().decode(errors="replace").split("\0") if "=" in kv)
    except OSError:
        env = {}
    env.setdefault("TERM", os.environ.get("TERM", "xterm"))
    argv = ["nsenter", "-t", str(crec.pid), "-n", "-u", "-m", "--wd=/", "--", *command]
    if crec.cgroup:  # like runc exec: the command dies with the container
        try:
            cgroups.join(crec.cgroup)
        except OSError as e:
            raise CliError(f"error: unable to upgrade connection: container not found (\"{cname}\")") from e
    try:
        os.execvpe("nsenter", argv, env)
    except FileNotFoundError as e:
        raise CliError(f"error: {e}") from e
    return 0


def logs(ctx: Ctx, pod_name: str, container: str | None, follow: bool, previous: bool,
         tail: int | None) -> int:
    pod = _pod(ctx, pod_name)
    cname = _container(pod, container)
    rec = _record(ctx, pod)
    crec = rec.containers.get(cname) if rec else None
    if crec is None or not crec.log_path:
        state = next((s.get("state") for s in pod.get("status", {}).get("containerStatuses", [])
                      if s["name"] == cname), {}) or {}
        reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
        raise CliError(f'Error from server (BadRequest): container "{cname}" in pod '
                       f'"{pod_name}" is waiting to start: {reason}')
    path = crec.log_path
    if previous:
        if crec.restart_count == 0:
            raise CliError(f'Error from server (BadRequest): previous terminated container "{cname}" '
                           f'in pod "{pod_name}" not found')
        path = runtime.log_path(_pod_dir(ctx, pod) or "", cname, crec.restart_count - 1)
    try:
        with open(path, "rb") as f:
            data = f.read()
            lines = data.splitlines(keepends=True)
            if tail is not None and tail >= 0:
                lines = lines[-tail:] if tail else []
            os.write(1, b"".join(lines))
            while follow:
                chunk = f.read()
                if chunk:
                    os.write(1, chunk)
                else:
                    if proc_starttime(crec.pid) != crec.starttime:
                        break
                    time.sleep(0.2)
    except FileNotFoundError:
        pass
    except KeyboardInterrupt:
        pass
    return 0


def node_exec(ctx: Ctx, node: str, command: list[str]) -> int:
    from netsim.cli.cluster_cmds import cluster_with_node
    cfg = cluster_with_node(ctx.cluster, node)
    if not command:
        command = [os.environ.get("SHELL", "/bin/bash")]
    from netsim.cluster.lifecycle import node_tools_dir
    tools = node_tools_dir(cfg.name)
    if os.path.isdir(tools):
        os.environ["PATH"] = tools + os.pathsep + os.environ.get("PATH", "")
    argv = ["ip", "netns", "exec", cfg.node_netns(node), "unshare", "--uts", "sh", "-c",
            'hostname "$0"; exec "$@"', node, *command]
    os.execvp("ip", argv)
    return 0
