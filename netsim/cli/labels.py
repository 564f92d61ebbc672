"""`label`, `annotate`, `taint`, `cordon`, `uncordon` with kubectl's rules and messages."""

from __future__ import annotations

from netsim.api import errors, validation
from netsim.api.resources import lookup
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.pflags import (
    CHANGE_CAUSE,
    apply_globals,
    fetch,
    get_resources_and_pairs,
    label_of,
    parse_flags,
    set_or_drop,
    split_targets,
    update_or_report,
    update_with_retry,
)

# ---------------------------------------------------------------------------- label / annotate

def parse_labels(pairs: list[str], kind: str = "label") -> tuple[dict[str, str], list[str]]:
    """`k=v` to set and `k-` to remove (kubectl's parseLabels / parseAnnotations)."""
    add: dict[str, str] = {}
    remove: list[str] = []
    for pr in pairs:
        if "=" in pr:
            k, _, v = pr.partition("=")
            if kind == "label":
                if not k or validation.is_qualified_name(k):
                    raise CliError(f"error: invalid label spec: {pr}")
                if validation.is_label_value(v):
                    raise CliError(f'error: invalid label value: "{pr}": '
                                   + "; ".join(validation.is_label_value(v)))
            elif not k:
                raise CliError(f"error: invalid annotation format: {pr}")
            add[k] = v
        elif pr.endswith("-"):
            remove.append(pr[:-1])
        else:
            raise CliError(f"error: invalid {kind} format: {pr}")
    for k in remove:
        if k in add:
            raise CliError(f"error: can not both modify and remove {kind}s in the same command")
    return add, remove


def update_map(current: dict[str, str] | None, add: dict[str, str], remove: list[str],
               overwrite: bool, kind: str = "label") -> tuple[dict[str, str], list[str], list[str]]:
    """New labels/annotations, errors (overwrite rule) and notes (`label "x" not found.`)."""
    cur = dict(current or {})
    problems: list[str] = []
    if not overwrite:
        for k, v in add.items():
            if kind == "annotation" and k == CHANGE_CAUSE:
                continue  # kubectl always lets the change cause be overwritten
            if k in cur and cur[k] != v:
                problems.append(f"'{k}' already has a value ({cur[k]}), and --overwrite is false")
    if problems:
        return cur, problems, []
    notes = []
    for k, v in add.items():
        cur[k] = v
    for k in remove:
        if k not in cur:
            notes.append(f'{kind} "{k}" not found.')
        cur.pop(k, None)
    return cur, [], notes


def change_message(old: dict[str, str], new: dict[str, str], overwrite: bool, verb: str) -> str:
    """kubectl's updateDataChangeMsg: labeled / unlabeled / not labeled."""
    if old == new:
        return f"not {verb}"
    if not overwrite and len(new) < len(old):
        return f"un{verb}"
    return verb


def label_cmd(ctx: Ctx, args: list[str], kind: str) -> int:
    verb = "labeled" if kind == "label" else "annotated"
    p = parse_flags(args, {"selector", "output", "dry-run", "filename", "resource-version",
                           "field-selector", "field-manager"}, verb=kind)
    apply_globals(ctx, p)
    resources, pairs = get_resources_and_pairs(p.positional, kind)
    if not resources:
        raise CliError("error: one or more resources must be specified as <resource> <name> or "
                       "<resource>/<name>")
    if not pairs and not p.bool("list"):
        raise CliError(f"error: at least one {kind} update is required")
    add, remove = parse_labels(pairs, "label" if kind == "label" else "annotation")
    overwrite = p.bool("overwrite")
    sel_mode = bool(p.get("selector") or p.bool("all"))
    targets = split_targets(resources, allow_selector=sel_mode)
    objs = fetch(ctx, targets, p.get("selector"), p.bool("all"))
    if not objs and sel_mode:
        from netsim.api.printing.printers import no_resources_message
        err(no_resources_message(None if ctx.all_namespaces else ctx.ns))
        return 0
    field_ = "labels" if kind == "label" else "annotations"
    rc = 0
    for res, obj in objs:
        old = dict(obj["metadata"].get(field_) or {})
        new, problems, notes = update_map(old, add, remove, overwrite,
                                          "label" if kind == "label" else "annotation")
        if problems:
            if kind == "label":
                for m in problems:
                    err(f"error: {m}")
            else:
                err("error: --overwrite is false but found the following declared "
                    "annotation(s): " + "; ".join(problems).replace(", and --overwrite is false", ""))
            rc = 1
            continue
        for n in notes:
            out(n)
        msg = change_message(old, new, overwrite, verb) if kind == "label" else verb
        if new != old and p.get("dry-run") not in ("client", "unchanged"):
            def mutate(o: dict, _new=new) -> None:
                set_or_drop(o["metadata"], field_, _new)
            if not update_or_report(ctx, res, obj, mutate):
                rc = 1
                continue
        out(f"{label_of(res, obj)} {msg}")
    return rc


# ---------------------------------------------------------------------------- taint / cordon

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_taint(spec: str) -> dict:
    """`key=value:Effect`, `key:Effect` or `key` (kubectl's parseTaint)."""
    parts = spec.split(":")
    value = ""
    effect = ""
    if len(parts) == 1:
        key = parts[0]
    elif len(parts) == 2:
        effect = parts[1]
        if effect not in TAINT_EFFECTS:
            raise CliError(f"error: invalid taint effect: {effect}, unsupported taint effect")
        kv = parts[0].split("=")
        if len(kv) > 2:
            raise CliError(f"error: invalid taint spec: {spec}")
        key = kv[0]
        if len(kv) == 2:
            value = kv[1]
            e = validation.is_label_value(value)
            if e:
                raise CliError(f"error: invalid taint spec: {spec}, {'; '.join(e)}")
    else:
        raise CliError(f"error: invalid taint spec: {spec}")
    e = validation.is_qualified_name(key)
    if e:
        raise CliError(f"error: invalid taint spec: {spec}, {'; '.join(e)}")
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


def parse_taints(specs: list[str]) -> tuple[list[dict], list[dict]]:
    add: list[dict] = []
    remove: list[dict] = []
    for s in specs:
        if s.endswith("-"):
            t = parse_taint(s[:-1])
            remove.append({"key": t["key"], "effect": t["effect"]})
        else:
            t = parse_taint(s)
            if not t["effect"]:
                raise CliError(f"error: invalid taint spec: {s}")
            if any(a["key"] == t["key"] and a["effect"] == t["effect"] for a in add):
                raise CliError("error: duplicated taints with the same key and effect: "
                               f"{taint_string(t)}")
            add.append(t)
    return add, remove


def taint_string(t: dict) -> str:
    """Taint.ToString(): key=value:effect, key:effect, key=value, key."""
    s = t["key"]
    if t.get("value"):
        s += "=" + t["value"]
    if t.get("effect"):
        s += ":" + t["effect"]
    return s


def reorganize_taints(old: list[dict], add: list[dict], remove: list[dict],
                      overwrite: bool) -> tuple[str, list[dict], list[str]]:
    """kubectl's reorganizeTaints: (operation, new taints, errors)."""
    new = [dict(t) for t in add]
    for o in old:
        if not any(t["key"] == o["key"] and t.get("effect") == o.get("effect") for t in new):
            new.append(dict(o))
    added = len(old) != len(new)
    problems = []
    deleted = False
    for r in remove:
        before = len(new)
        if r.get("effect"):
            new = [t for t in new if not (t["key"] == r["key"] and t.get("effect") == r["effect"])]
        else:
            new = [t for t in new if t["key"] != r["key"]]
        deleted = before != len(new)
        if not deleted:
            problems.append(f'taint "{taint_string(r)}" not found')
    if (added and deleted) or overwrite:
        op = "modified"
    elif added:
        op = "tainted"
    else:
        op = "untainted"
    return op, new, problems


def taint_cmd(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"selector", "output", "dry-run", "field-manager"}, verb="taint")
    apply_globals(ctx, p)
    resources, specs = get_resources_and_pairs(p.positional, "taint")
    # a bare `key:Effect` has no '=' and no trailing '-': it is a taint, not a resource
    while len(resources) > (1 if (p.get("selector") or p.bool("all")) else 2) \
            and ":" in resources[-1]:
        specs.insert(0, resources.pop())
    if len(resources) == 2 and ":" in resources[1] and "/" not in resources[0] \
            and not specs:
        specs.insert(0, resources.pop())
    if not resources:
        raise CliError("error: at least one resource name must be specified since 'all' "
                       "parameter is not set")
    if not specs:
        raise CliError("error: at least one taint update is required")
    add, remove = parse_taints(specs)
    targets = split_targets(resources, allow_selector=bool(p.get("selector") or p.bool("all")))
    for res, _ in targets:
        if res.plural != "nodes":
            raise CliError(f"error: invalid resource type {resources[0].split('/')[0]}, only "
                           "node types are supported")
    objs = fetch(ctx, targets, p.get("selector"), p.bool("all"))
    rc = 0
    overwrite = p.bool("overwrite")
    for res, node in objs:
        old = list((node.get("spec") or {}).get("taints") or [])
        if not overwrite:
            exists = [t["key"] for t in add for o in old
                      if t["key"] == o["key"] and t["effect"] == o.get("effect")]
            if exists:
                err(f"error: node {node['metadata']['name']} already has {','.join(exists)} "
                    "taint(s) with same effect(s) and --overwrite is false")
                rc = 1
                continue
        op, new, problems = reorganize_taints(old, add, remove, overwrite)
        if problems:
            for m in problems:
                err(f"error: {m}")
            rc = 1
            continue

        def mutate(o: dict, _new=new) -> None:
            set_or_drop(o.setdefault("spec", {}), "taints", _new)
        if not update_or_report(ctx, res, node, mutate):
            rc = 1
            continue
        out(f"{label_of(res, node)} {op}")
    return rc


def cordon_cmd(ctx: Ctx, args: list[str], verb: str) -> int:
    p = parse_flags(args, {"selector", "dry-run"}, verb=verb)
    apply_globals(ctx, p)
    if not p.positional and not p.get("selector"):
        raise CliError(f"error: USAGE: {verb} NODE [flags]\nSee 'netsim {verb} -h' for help and "
                       "examples")
    want = verb == "cordon"
    res = lookup("nodes")
    if p.positional:
        names = [a.split("/", 1)[-1] for a in p.positional]
        objs = fetch(ctx, [(res, names)])
    else:
        objs = fetch(ctx, [(res, [])], p.get("selector"))
    for _, node in objs:
        cur = bool((node.get("spec") or {}).get("unschedulable"))
        if cur == want:
            out(f"node/{node['metadata']['name']} already {verb}ed")
            continue

        def mutate(o: dict) -> None:
            set_or_drop(o.setdefault("spec", {}), "unschedulable", want)
        try:
            update_with_retry(ctx, res, node, mutate)
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        out(f"node/{node['metadata']['name']} {verb}ed")
    return 0


