"""`rollout status|history|undo|pause|resume|restart`: kubectl's rollout verbs.

Deployments (history in ReplicaSets), DaemonSets and StatefulSets (history in
ControllerRevisions; no pause/resume, as kubectl). The arithmetic and wording live in
netsim.controllers.rollout and netsim.controllers.history (pure); this module fetches,
writes back and prints.
"""

from __future__ import annotations

import copy
import re
import time
from datetime import datetime

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.pflags import (
    apply_globals,
    fetch,
    label_of,
    parse_flags,
    split_targets,
    update_with_retry,
)
from netsim.controllers import history as hist
from netsim.controllers import rollout as ro

SUBCOMMANDS = ("history", "pause", "restart", "resume", "status", "undo")
# verbs kubectl has for DaemonSets and StatefulSets too (no pauser/resumer for them)
REVISIONED = ("daemonsets", "statefulsets")
_REVISIONED_VERBS = ("history", "undo", "status", "restart")


def parse_duration(s: str) -> float:
    """Go's time.ParseDuration for what users type: `0`, `30s`, `5m`, `1h30m`, `1.5s`, `250ms`."""
    if re.fullmatch(r"[0-9]+", s):
        if s == "0":
            return 0.0
        raise CliError(f'error: invalid argument "{s}" for "--timeout" flag: time: missing unit '
                       f'in duration "{s}"')
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise CliError(f'error: invalid argument "{s}" for "--timeout" flag: time: invalid '
                       f'duration "{s}"')
    return sum(float(a) * units[b] for a, b in parts)


def _deployments(ctx: Ctx, positional: list[str], sub: str) -> list[tuple]:
    if not positional:
        raise CliError("error: required resource not specified")
    targets = split_targets(positional)
    objs = fetch(ctx, targets)
    for res, _ in objs:
        if res.plural in REVISIONED and sub in _REVISIONED_VERBS:
            continue
        if res.plural != "deployments":
            what = {"history": "no history viewer has been implemented for",
                    "undo": "no rollbacker has been implemented for",
                    "status": "no status viewer has been implemented for"}.get(sub)
            if what:
                raise CliError(f'error: {what} "{res.kind}"')
            raise CliError(f"error: {res.plural}.{res.group} {sub} is not supported".replace(
                "..", "."))
    return objs


def _owned_rss(ctx: Ctx, deploy: dict) -> list[dict]:
    ns = deploy["metadata"].get("namespace")
    return [rs for rs in ctx.client.list("replicasets", ns) if ro.owned_by(rs, deploy)]


def history(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"revision", "output", "selector", "filename"}, verb="rollout history")
    apply_globals(ctx, p)
    rev = p.get("revision")
    try:
        revision = int(rev) if rev is not None else 0
    except ValueError as e:
        raise CliError(f'error: invalid argument "{rev}" for "--revision" flag: strconv.ParseInt: '
                       f'parsing "{rev}": invalid syntax') from e
    if revision < 0:
        raise CliError(f"error: revision must be a positive integer: {revision}")
    texts = []
    for res, d in _deployments(ctx, p.positional, "history"):
        if res.plural in REVISIONED:
            texts.append(_revision_history(ctx, res, d, revision))
            continue
        rss = _owned_rss(ctx, d)
        if revision > 0:
            rs = next((r for r in rss if ro.revision(r) == revision), None)
            if rs is None:
                raise CliError("error: unable to find the specified revision")
            texts.append(f"{label_of(res, d)} with revision #{revision}\n"
                         + pod_template_text(rs))
        else:
            texts.append(ro.format_history(label_of(res, d), ro.history_rows(rss, d)))
    for t in texts:
        out(t if t.endswith("\n") else t + "\n")
    return 0


def _owned_revisions(ctx: Ctx, owner: dict) -> list[dict]:
    return hist.owned(owner, ctx.client.list("controllerrevisions",
                                             owner["metadata"].get("namespace")))


def _revision_history(ctx: Ctx, res, owner: dict, revision: int) -> str:
    """DaemonSetHistoryViewer / StatefulSetHistoryViewer: the revisions' table, or one
    revision's pod template."""
    revs = _owned_revisions(ctx, owner)
    if revision > 0:
        rev = next((r for r in revs if hist.number(r) == revision), None)
        if rev is None:
            raise CliError("error: unable to find the specified revision")
        return (f"{label_of(res, owner)} with revision #{revision}\n"
                + pod_template_text({"spec": {"template": hist.template_of(rev)}}))
    return ro.format_history(label_of(res, owner), hist.history_rows(revs))


def pod_template_text(rs: dict) -> str:
    """kubectl's DescribePodTemplate of one revision (its ReplicaSet's template)."""
    from netsim.cli import describe as dsc
    tpl = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    w = dsc._PrefixWriter()
    dsc._pod_template(w, tpl)
    return w.text()


def undo(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"to-revision", "output", "dry-run", "selector", "filename"},
                    verb="rollout undo")
    apply_globals(ctx, p)
    raw = p.get("to-revision", "0")
    try:
        to_rev = int(raw)
    except ValueError as e:
        raise CliError(f'error: invalid argument "{raw}" for "--to-revision" flag: '
                       f'strconv.ParseInt: parsing "{raw}": invalid syntax') from e
    if to_rev < 0:
        raise CliError(f"error: revision must be a positive integer: {to_rev}")
    rc = 0
    for res, d in _deployments(ctx, p.positional, "undo"):
        for attempt in range(5):
            if res.plural in REVISIONED:
                new, msg = hist.rollback(d, _owned_revisions(ctx, d), to_rev)
            else:
                new, msg = ro.rollback_deployment(d, _owned_rss(ctx, d), to_rev)
            if new is None:
                if msg.startswith("skipped"):
                    out(f"{label_of(res, d)} {msg}")
                else:
                    err(f"error: {msg}")
                    rc = 1
                break
            if p.get("dry-run") in ("client", "unchanged", "server"):
                out(f"{label_of(res, d)} rolled back (dry run)")
                break
            try:
                ctx.client.update(new)
            except errors.Conflict:
                d = ctx.client.get("deployments", d["metadata"]["name"],
                                   d["metadata"].get("namespace"))
                if attempt < 4:
                    continue
                raise
            except errors.ApiError as e:
                raise CliError(server_error(e)) from e
            out(f"{label_of(res, d)} rolled back")
            break
    return rc


def _toggle(ctx: Ctx, args: list[str], sub: str) -> int:
    p = parse_flags(args, {"selector", "filename", "field-manager", "output"},
                    verb=f"rollout {sub}")
    apply_globals(ctx, p)
    errs_ = []
    for res, d in _deployments(ctx, p.positional, sub):
        paused = bool((d.get("spec") or {}).get("paused"))
        qual = f"{res.plural}.{res.group}" if res.group else res.plural
        name = d["metadata"]["name"]
        if sub == "pause" and paused:
            errs_.append(f'error: {qual} "{name}" is already paused')
            continue
        if sub == "resume" and not paused:
            errs_.append(f'error: {qual} "{name}" is not paused')
            continue
        if sub == "restart" and paused:
            errs_.append(f"error: {qual} \"{name}\" can't restart paused deployment (run rollout "
                         "resume first)")
            continue
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        tmeta = ((d.get("spec") or {}).get("template") or {}).get("metadata") or {}
        if sub == "restart" and (tmeta.get("annotations") or {}).get(ro.RESTARTED_AT) == now:
            # kubectl's patch would be empty (the annotation has a second's resolution)
            errs_.append(f"error: failed to create patch for {name}: if restart has already "
                         "been triggered within the past second, please wait before "
                         "attempting to trigger another")
            continue

        def mutate(o: dict, now: str = now) -> None:
            spec = o.setdefault("spec", {})
            if sub == "pause":
                spec["paused"] = True
            elif sub == "resume":
                spec.pop("paused", None)
            else:
                md = spec.setdefault("template", {}).setdefault("metadata", {})
                md.setdefault("annotations", {})[ro.RESTARTED_AT] = now
        try:
            update_with_retry(ctx, res, d, mutate)
        except errors.ApiError as e:
            errs_.append(f"failed to patch: {server_error(e)}")
            continue
        out(f"{label_of(res, d)} {sub}d" if sub != "restart" else f"{label_of(res, d)} restarted")
    for m in errs_:
        err(m)
    return 1 if errs_ else 0


def status(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"timeout", "revision", "selector", "filename"}, verb="rollout status")
    apply_globals(ctx, p)
    watch = p.get("watch", "true").lower() not in ("false", "0", "f")
    timeout = parse_duration(p.get("timeout", "0s"))
    objs = _deployments(ctx, p.positional, "status")
    if p.get("revision") not in (None, "0") and any(r.plural == "deployments" for r, _ in objs):
        raise CliError("error: revision is not supported for Deployment status")
    viewers = {"deployments": ro.rollout_status, "daemonsets": hist.daemonset_status,
               "statefulsets": hist.statefulset_status}
    deadline = time.monotonic() + timeout if timeout > 0 else None
    for res, d in objs:
        name, ns = d["metadata"]["name"], d["metadata"].get("namespace")
        last = None
        while True:
            try:
                msg, done = viewers[res.plural](d)
            except ValueError as e:
                raise CliError(f"error: {e}") from e
            if msg != last:
                out(msg.rstrip("\n"))
                last = msg
            if done or not watch:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError("error: timed out waiting for the condition")
            time.sleep(0.2)
            try:
                d = ctx.client.get(res.plural, name, ns)
            except errors.NotFound as e:
                raise CliError(f'error: object has been deleted: {server_error(e)}') from e
    return 0


def run(ctx: Ctx, args: list[str]) -> int:
    # global flags may sit between `rollout` and its sub-command (`rollout -nuit history ...`)
    i = 0
    pre: list[str] = []
    while i < len(args) and args[i].startswith("-"):
        pre.append(args[i])
        if args[i] in ("-n", "--namespace", "--cluster") and i + 1 < len(args):
            pre.append(args[i + 1])
            i += 1
        i += 1
    if i >= len(args):
        raise CliError("error: Unknown command: use one of 'rollout history', 'rollout pause', "
                       "'rollout restart', 'rollout resume', 'rollout status', 'rollout undo'\n"
                       "See 'netsim rollout -h' for help and examples")
    sub, rest = args[i], pre + args[i + 1:]
    if sub == "history":
        return history(ctx, rest)
    if sub == "undo":
        return undo(ctx, rest)
    if sub == "status":
        return status(ctx, rest)
    if sub in ("pause", "resume", "restart"):
        return _toggle(ctx, rest, sub)
    raise CliError(f'error: unknown command "{sub}" for "netsim rollout"\n\nDid you mean this?\n'
                   + "".join(f"\t{s}\n" for s in SUBCOMMANDS if s[0] == sub[:1]).rstrip("\n"))
