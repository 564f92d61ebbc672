"""`netsim run`: the Pod (and with --expose the Service) kubectl's run command makes
(pkg/cmd/run/run.go), so `kubectl run nginx --image=nginx --port 80 --expose` and
`kubectl run tmp --rm -i --restart=Never --image=busybox -- wget -qO- svc` work with
`netsim` in its place.

netsim runs containers without stdin: with -i/--stdin the command's output is attached as
kubectl's attach shows it, and the command gets an empty stdin (said once on stderr)."""

from __future__ import annotations

import copy
import re
import time

from netsim.api import errors
from netsim.api.resources import lookup
from netsim.api.validation import is_env_var_name
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.pflags import Parsed, apply_globals, parse_flags

VALUE_FLAGS = {"image", "port", "labels", "env", "restart", "annotations", "image-pull-policy",
               "output", "dry-run", "overrides", "pod-running-timeout", "field-manager"}
BOOL_FLAGS = {"rm", "stdin", "tty", "attach", "command", "expose", "quiet", "privileged",
              "leave-stdin-open"}
_RESTARTS = ("Always", "OnFailure", "Never")
_PULLS = ("Always", "IfNotPresent", "Never")


class RunError(ValueError):
    """One of kubectl run's refusals, in its words (without `error: `)."""


def _labels(spec: str) -> dict[str, str]:
    """kubectl's parseLabels (the same as expose's), in run's error type."""
    from netsim.cli.expose import ExposeError, parse_labels
    try:
        return parse_labels(spec)
    except ExposeError as e:
        raise RunError(str(e)) from e


def _envs(items: list[str]) -> list[dict]:
    envs = []
    for e in items:
        name, sep, value = e.partition("=")
        if not sep or not name or is_env_var_name(name):
            raise RunError(f"invalid env: {e}")
        envs.append({"name": name, "value": value})
    return envs


def build(name: str, p: Parsed, args: list[str]) -> list[dict]:
    """The objects `kubectl run NAME ...` creates, in its order: the Pod, then the Service."""
    image = p.get("image") or ""
    if not image:
        raise RunError("--image is required")
    if re.search(r"\s", image) or image != image.strip() or image.endswith(":"):
        raise RunError(f'invalid image name "{image}": invalid reference format')
    if p.bool("tty") and not p.bool("stdin"):
        raise RunError("-i/--stdin is required for containers with -t/--tty=true")
    port = p.get("port") or ""
    if p.bool("expose") and not port:
        raise RunError("--port must be set when exposing a service")
    if port and not re.fullmatch(r"-?[0-9]+", port):
        raise RunError("--port must be a number")
    restart = p.get("restart") or "Always"
    if restart not in _RESTARTS:
        raise RunError(f"invalid restart policy: {restart}, valid values are: Always, "
                       "OnFailure, Never")
    pull = p.get("image-pull-policy") or ""
    if pull and pull not in _PULLS:
        raise RunError(f"invalid image pull policy: {pull}, valid values are: Always, "
                       "IfNotPresent, Never")
    user_labels = _labels(p.get("labels")) if p.get("labels") else {}
    labels = user_labels or {"run": name}
    annotations = {}
    for a in p.all("annotations"):
        k, sep, v = a.partition("=")
        if not sep:
            raise RunError(f"invalid annotation spec: {a}")
        annotations[k] = v
    c: dict = {"name": name, "image": image}
    if args:
        c["command" if p.bool("command") else "args"] = list(args)
    envs = _envs(p.all("env"))
    if envs:
        c["env"] = envs
    if pull:
        c["imagePullPolicy"] = pull
    if port:
        c["ports"] = [{"containerPort": int(port)}]
    c["resources"] = {}
    if p.bool("stdin"):
        c["stdin"] = True
        if not p.bool("leave-stdin-open"):
            c["stdinOnce"] = True
    if p.bool("tty"):
        c["tty"] = True
    if p.bool("privileged"):
        c["securityContext"] = {"privileged": True}
    md: dict = {"name": name, "labels": labels}
    if annotations:
        md["annotations"] = annotations
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": md,
           "spec": {"containers": [c], "dnsPolicy": "ClusterFirst", "restartPolicy": restart},
           "status": {}}
    objs = [pod]
    if p.bool("expose"):
        smd: dict = {"name": name}
        if user_labels:
            smd["labels"] = dict(user_labels)
        objs.append({"apiVersion": "v1", "kind": "Service", "metadata": smd,
                     "spec": {"ports": [{"port": int(port), "protocol": "TCP",
                                         "targetPort": int(port)}],
                              "selector": dict(labels)},
                     "status": {"loadBalancer": {}}})
    return objs


def _print(objs: list[dict], output: str | None, verb: str) -> None:
    if output in ("yaml", "json"):
        from netsim.cli.get import to_yaml
        from netsim.cli.goorder import go_json
        texts = [to_yaml(o) if output == "yaml" else go_json(o) for o in objs]
        out(("---\n" if output == "yaml" else "").join(texts) if output == "yaml"
            else "\n".join(texts))
        return
    for o in objs:
        ref = f"{lookup(o['kind']).type_name}/{o['metadata']['name']}"
        if output == "name":
            out(ref)
        elif output:
            raise CliError(f'error: unable to match a printer suitable for the output format '
                           f'"{output}", allowed formats are: json,name,yaml')
        else:
            out(f"{ref} {verb}")


def _wait_running(ctx: Ctx, name: str, timeout: float) -> dict:
    """The pod once a container runs or it has finished (kubectl's attach waits so)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pod = ctx.client.get("pods", name, ctx.ns)
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        st = pod.get("status") or {}
        if st.get("phase") in ("Running", "Succeeded", "Failed"):
            return pod
        if time.monotonic() >= deadline:
            raise CliError("error: timed out waiting for the condition")
        time.sleep(0.2)


def _exit_code(ctx: Ctx, name: str, timeout: float = 30) -> int:
    """The container's exit code once the pod finished (restartPolicy Never/OnFailure)."""
    deadline = time.monotonic() + timeout
    while True:
        pod = ctx.client.get("pods", name, ctx.ns)
        st = pod.get("status") or {}
        for cs in st.get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated")
            if term and st.get("phase") in ("Succeeded", "Failed"):
                return int(term.get("exitCode") or 0)
        if time.monotonic() >= deadline:
            return 0
        time.sleep(0.2)


def run(ctx: Ctx, args: list[str]) -> int:
    """`netsim run NAME --image=IMAGE [--port] [--expose] [--env] [-l] [--restart] [--rm]
    [-i] [--attach] [--command] [--dry-run] [-o] [-- ARGS...]`."""
    extra: list[str] = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    # run's -l is --labels and -i/-t its stdin/tty flags
    args = ["--labels" if a == "-l" else a for a in args]
    p = parse_flags(args, VALUE_FLAGS, BOOL_FLAGS, verb="run")
    apply_globals(ctx, p)
    if not p.positional:
        raise CliError("error: NAME is required for run\nSee 'netsim run -h' for help and "
                       "examples")
    name, pos_args = p.positional[0], p.positional[1:] + extra
    attach = p.bool("attach") or (p.get("attach") is None and p.bool("stdin"))
    dry = p.get("dry-run")
    try:
        objs = build(name, p, pos_args)
        if p.bool("rm") and not attach:
            raise RunError("--rm should only be used for attached containers")
        if dry in ("client", "server", "unchanged", "true") and attach:
            raise RunError("--dry-run=[server|client] can't be used with attached containers "
                           "options (--attach, --stdin, or --tty)")
    except RunError as e:
        raise CliError(f"error: {e}") from e
    if dry not in (None, "none", "client", "server", "unchanged", "true", "false"):
        raise CliError(f'error: Invalid dry-run value ({dry}). Must be "none", "server", or '
                       '"client".')
    output = p.get("output")
    if dry in ("client", "unchanged", "true"):
        _print(objs, output, "created (dry run)")
        return 0
    made = []
    for o in objs:
        send = copy.deepcopy(o)
        send["metadata"]["namespace"] = ctx.ns
        send.pop("status", None)
        try:
            made.append(ctx.client.create(send, dry_run=dry == "server"))
        except errors.ApiError as e:
            if not made:
                raise CliError(server_error(e)) from e
            err(server_error(e))
    if not attach or dry == "server":
        _print(made, output, "created (server dry run)" if dry == "server" else "created")
        return 0
    return _attach(ctx, name, p, made, output)


def _attach(ctx: Ctx, name: str, p: Parsed, made: list[dict], output: str | None) -> int:
    from netsim.cli import pods
    from netsim.cli.apply import _deleted
    timeout = float(re.sub(r"[a-z]+$", "", p.get("pod-running-timeout") or "60") or 60)
    code = 0
    try:
        if p.bool("stdin") and not p.bool("quiet"):
            err("Warning: netsim runs containers without stdin; the command's stdin is empty "
                f"(for a shell: netsim exec -it {name} -- sh)")
        _wait_running(ctx, name, timeout)
        pods.logs(ctx, name, None, follow=True, previous=False, tail=None)
        if (p.get("restart") or "Always") in ("Never", "OnFailure"):
            code = _exit_code(ctx, name)
    finally:
        if p.bool("rm"):
            for o in reversed(made):
                res = lookup(o["kind"])
                try:
                    ctx.client.delete(res.plural, o["metadata"]["name"], ctx.ns)
                except errors.ApiError:
                    continue
                out(_deleted(res, o["metadata"]["name"], ctx.ns))
    if code:
        err(f"pod {ctx.ns}/{name} terminated (Error)")
    return code
