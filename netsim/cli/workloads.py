"""Imperative verbs: scale, label, annotate, taint, cordon, set image, create X (and the
dispatch to `rollout` and `edit`), with kubectl's arguments, messages and change causes.

The argument parsers and the label/taint/env-file/change-cause functions are pure, so the
unit tests run them without a cluster.
"""

from __future__ import annotations

import copy
import re
import time

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.labels import cordon_cmd, label_cmd, taint_cmd
from netsim.cli.pflags import (
    CHANGE_CAUSE,
    apply_globals,
    fetch,
    get_resources_and_pairs,
    label_of,
    parse_flags,
    record_cause,
    split_targets,
    update_with_retry,
)

# ---------------------------------------------------------------------------- scale

def scale(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"replicas", "current-replicas", "selector", "resource-version",
                           "timeout", "output", "dry-run", "filename"}, verb="scale")
    apply_globals(ctx, p)
    replicas = p.get("replicas")
    if replicas is None or not re.fullmatch(r"[0-9]+", replicas):
        raise CliError("error: --replicas=COUNT is required, and COUNT must be greater than or "
                       "equal to 0")
    want = int(replicas)
    targets = split_targets(p.positional, allow_selector=bool(p.get("selector") or p.bool("all")))
    if not targets:
        raise CliError("error: You must provide one or more resources by argument or filename.\n"
                       "Example resource specifications include:\n   '-f rsrc.yaml'\n"
                       "   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
    cause = record_cause(ctx, p)
    objs = fetch(ctx, targets, p.get("selector"), p.bool("all"))
    if not objs:
        raise CliError("error: no objects passed to scale")
    rc = 0
    for res, obj in objs:
        if res.plural not in ("deployments", "replicasets", "statefulsets"):
            err(f'error: cannot scale {res.plural}.{res.group or ""}'.rstrip(".")
                + f' "{obj["metadata"]["name"]}"')
            rc = 1
            continue
        cur_flag = p.get("current-replicas")
        if cur_flag is not None and cur_flag != "-1":
            actual = (obj.get("spec") or {}).get("replicas", 1)
            if int(cur_flag) != actual:
                raise CliError(f"error: Expected replicas to be {cur_flag}, was {actual}")

        def mutate(o: dict) -> None:
            o.setdefault("spec", {})["replicas"] = want
            if cause:
                o["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = cause
        if p.get("dry-run") in ("client", "true", "unchanged"):
            out(f"{label_of(res, obj)} scaled (dry run)")
            continue
        try:
            update_with_retry(ctx, res, obj, mutate)
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        out(f"{label_of(res, obj)} scaled")
    return rc


# ---------------------------------------------------------------------------- set image

def pod_spec_of(obj: dict) -> dict | None:
    kind = obj.get("kind")
    if kind == "Pod":
        return obj.setdefault("spec", {})
    if kind == "CronJob":
        return (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}) \
            .get("template", {}).get("spec")
    return ((obj.get("spec") or {}).get("template") or {}).get("spec")


def set_images(spec: dict, images: dict[str, str]) -> list[str]:
    """Set container images in a pod spec; returns kubectl's errors for unknown containers."""
    errs = []
    for name, image in images.items():
        found = False
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                if c.get("name") == name or name == "*":
                    c["image"] = image
                    found = True
        if not found:
            errs.append(f'error: unable to find container named "{name}"')
    return errs


def set_cmd(ctx: Ctx, args: list[str]) -> int:
    if not args:
        raise CliError("error: Unknown command: use one of 'set image', 'set env'\n"
                       "See 'netsim set -h' for help and examples")
    sub, rest = args[0], args[1:]
    if sub == "env":
        from netsim.cli.set_env import set_env_cmd
        return set_env_cmd(ctx, rest)
    if sub != "image":
        # `-n uit set image ...` arrives as `set -n uit image ...` only via reorder edge cases
        raise CliError(f'error: unknown command "{sub}" for "netsim set"')
    p = parse_flags(rest, {"selector", "output", "dry-run", "filename", "resource-version",
                           "field-manager"}, verb="set image")
    apply_globals(ctx, p)
    resources, pairs = get_resources_and_pairs(p.positional, "image")
    errs_: list[str] = []
    if p.bool("all") and p.get("selector"):
        errs_.append("cannot set --all and --selector at the same time")
    if not resources:
        errs_.append("one or more resources must be specified as <resource> <name> or "
                     "<resource>/<name>")
    images: dict[str, str] = {}
    for pr in pairs:
        if pr.endswith("-") and "=" not in pr:
            raise CliError(f"error: invalid image format: {pr}")
        k, _, v = pr.partition("=")
        images[k] = v
    if not images:
        errs_.append("at least one image update is required")
    elif len(images) > 1 and "*" in images:
        errs_.append("all containers are already specified by *, but saw more than one "
                     "container_name=container_image pairs")
    if errs_:
        raise CliError("\n".join(f"error: {e}" for e in errs_))
    targets = split_targets(resources, allow_selector=bool(p.get("selector") or p.bool("all")))
    cause = record_cause(ctx, p)
    objs = fetch(ctx, targets, p.get("selector"), p.bool("all"))
    rc = 0
    for res, obj in objs:
        new = copy.deepcopy(obj)
        spec = pod_spec_of(new)
        if spec is None:
            err(f"error: {label_of(res, obj)} the object is not a pod or does not have a pod "
                "template: *v1.{obj.get('kind')}")
            rc = 1
            continue
        problems = set_images(spec, images)
        for m in problems:
            err(m)
            rc = 1
        if cause:
            new["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = cause
        if new == obj:
            continue
        if p.get("dry-run") in ("client", "unchanged"):
            out(f"{label_of(res, obj)} image updated (dry run)")
            continue
        try:
            cur = obj

            def mutate(o: dict, _new=new) -> None:
                sp = pod_spec_of(o)
                set_images(sp, images)
                if cause:
                    o["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = cause
            update_with_retry(ctx, res, cur, mutate)
        except errors.ApiError as e:
            err(f"failed to patch image update to pod template: {server_error(e)}")
            rc = 1
            continue
        out(f"{label_of(res, obj)} image updated")
    return rc


# ---------------------------------------------------------------------------- dispatch

def run(verb: str, ctx: Ctx, args: list[str], argv: list[str]) -> int:
    if verb == "scale":
        return scale(ctx, args)
    if verb in ("label", "annotate"):
        return label_cmd(ctx, args, verb)
    if verb == "taint":
        return taint_cmd(ctx, args)
    if verb in ("cordon", "uncordon"):
        return cordon_cmd(ctx, args, verb)
    if verb == "drain":
        from netsim.cli.drain import drain_cmd
        return drain_cmd(ctx, args)
    if verb == "set":
        return set_cmd(ctx, args)
    if verb == "rollout":
        from netsim.cli import rollout_cmds
        return rollout_cmds.run(ctx, args)
    if verb == "edit":
        from netsim.cli import edit
        return edit.run(ctx, args)
    if verb == "expose":
        from netsim.cli import expose
        return expose.run(ctx, args)
    if verb == "run":
        from netsim.cli import run_cmd
        return run_cmd.run(ctx, args)
    raise CliError(f"error: {verb} is not implemented yet")


def wait_until(pred, timeout: float, interval: float = 0.2):
    """Poll pred() until truthy or the deadline passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
