"""`exec`, `logs`, `node exec`: step into a pod's or a node's namespaces on this machine."""

from __future__ import annotations

import os
import signal
import subprocess

from netsim.api import errors
from netsim.api.streams.backend import StreamError
from netsim.api.streams.logs import LogOptions, read_log
from netsim.cli.context import CliError, Ctx, err, server_error
from netsim.kubelet.streams import NodeStreams


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


def _container(pod: dict, name: str | None) -> str:
    """The container kubectl picks (podcmd.FindOrDefaultContainerByName): the named one or
    the default-container annotation's, else the first, saying which when there are others."""
    spec = pod.get("spec") or {}
    md = pod.get("metadata") or {}
    names = ([c["name"] for c in spec.get("containers") or []]
             + [f"{c['name']} (ephem)" for c in spec.get("ephemeralContainers") or []]
             + [f"{c['name']} (init)" for c in spec.get("initContainers") or []])
    if not spec.get("containers"):
        raise CliError(f"error: pod {md.get('namespace')}/{md.get('name')} does not have any "
                       "containers")
    name = name or (md.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if name:
        every = {c["name"] for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or []}
        if name not in every:
            raise CliError(f"error: container {name} is not valid for pod {md.get('name')} "
                           f"out of: {', '.join(names)}")
        return name
    first = spec["containers"][0]["name"]
    if len(names) > 1:
        err(f'Defaulted container "{first}" out of: {", ".join(names)}')
    return first


def _terminal_delivers(signum: int) -> bool:
    """Whether the terminal sent `signum` to our whole foreground group (the child too)."""
    if signum not in (signal.SIGINT, signal.SIGQUIT):
        return False
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def exec_(ctx: Ctx, pod_name: str, container: str | None, command: list[str], tty: bool,
          stdin: bool) -> int:
    """kubectl exec, on this machine: the same checks and words, then the command
    runs inside the container (netsim.kubelet.streams, as pods/exec runs it)."""
    if not command:
        raise CliError("error: you must specify at least one command for the container")
    pod = _pod(ctx, pod_name)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise CliError("error: cannot exec into a container in a completed pod; current phase "
                       f"is {phase}")
    cname = _container(pod, container)
    streams = NodeStreams(ctx.cluster)
    try:
        crec = streams.running(pod, cname)
    except StreamError as e:
        raise CliError(f"error: Internal error occurred: {e}") from e
    argv = streams.exec_argv(crec, command)
    env = streams.exec_env(crec, os.environ.get("TERM", "xterm"))
    # A child, so its exit code can be reported in kubectl's words. ^C and ^\\ at a terminal
    # reach the child from the terminal itself; a signal sent to this process alone (kill
    # <pid>, a test's send_signal) is passed on to it, as the end of kubectl's stream
    # would end the remote command.
    sigs = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP)
    try:
        child = subprocess.Popen(argv, env=env)
    except OSError as e:
        raise CliError(f"error: {e}") from e

    def forward(signum, _frame):
        if not _terminal_delivers(signum):
            child.send_signal(signum)
    old = [signal.signal(s, forward) for s in sigs]
    try:
        code = child.wait()
    finally:
        for sig, handler in zip(sigs, old, strict=True):
            signal.signal(sig, handler)
    code = 128 - code if code < 0 else code
    if code:
        err(f"command terminated with exit code {code}")
    return code


def logs(ctx: Ctx, pod_name: str, container: str | None, follow: bool, previous: bool,
         tail: int | None) -> int:
    """kubectl logs, on this machine: the records pods/log reads, the same reader."""
    pod = _pod(ctx, pod_name)
    cname = _container(pod, container)
    if not (pod.get("spec") or {}).get("nodeName"):
        return 0  # not scheduled: nothing, as the apiserver streams nothing
    try:
        log = NodeStreams(ctx.cluster).log_file(pod, cname, previous)
    except StreamError as e:
        raise CliError(f"Error from server (BadRequest): {e}") from e
    opts = LogOptions(follow=follow, tail_lines=tail if tail is not None and tail >= 0 else None)
    try:
        for piece in read_log(log, opts):
            os.write(1, piece)
    except (KeyboardInterrupt, BrokenPipeError):
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
