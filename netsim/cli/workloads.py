"""Imperative verbs: scale, label, annotate, taint, cordon, set image, create X (and the
dispatch to `rollout` and `edit`), with kubectl's arguments, messages and change causes.

The argument parsers and the label/taint/env-file/change-cause functions are pure, so the
unit tests run them without a cluster.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import time
from dataclasses import dataclass, field

from netsim.api import errors
from netsim.api.resources import Resource, UnknownResource, lookup
from netsim.cli.context import CliError, Ctx, err, out, server_error

CHANGE_CAUSE = "kubernetes.io/change-cause"
RECORD_WARNING = "Flag --record has been deprecated, --record will be removed in the future"

# ---------------------------------------------------------------------------- flags

# kubectl's short flags and the long names they stand for (change causes use the long name)
SHORT = {"-n": "namespace", "-f": "filename", "-l": "selector", "-o": "output",
         "-c": "container", "-R": "recursive", "-A": "all-namespaces", "-L": "label-columns",
         "-i": "stdin", "-t": "tty", "-w": "watch", "-p": "previous", "-r": "revision",
         "-k": "kustomize"}
# flags that never take a separate value (`--record` alone means --record=true)
BOOL_FLAGS = {"record", "overwrite", "all", "recursive", "all-namespaces", "force", "now",
              "watch", "local", "ignore-not-found", "show-labels", "no-headers", "stdin", "tty",
              "previous", "list", "save-config", "follow", "append-hash", "help",
              "ignore-daemonsets", "delete-emptydir-data", "wait"}
# flags whose value may be left out (`--dry-run` alone means --dry-run=unchanged/client)
OPTIONAL_VALUE = {"dry-run": "client", "record": "true"}


@dataclass
class Parsed:
    positional: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        v = self.flags.get(name)
        return v[-1] if v else default

    def all(self, name: str) -> list[str]:
        return list(self.flags.get(name) or [])

    def bool(self, name: str) -> bool:
        v = self.get(name)
        return v is not None and v.lower() not in ("false", "0", "f")


def parse_flags(args: list[str], value_flags: set[str], bool_flags: set[str] | None = None,
                verb: str = "") -> Parsed:
    """kubectl (pflag) style: `--x=v`, `--x v`, `-n v`, `-nuit`, bools; `--` ends flags."""
    bools = BOOL_FLAGS | (bool_flags or set())
    known = set(value_flags) | bools | {"namespace", "cluster", "all-namespaces"}
    p = Parsed()
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            p.positional.extend(args[i + 1:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            if name not in known:
                raise CliError(f"error: unknown flag: --{name}\nSee 'netsim {verb} --help' for "
                               "usage.")
            if not eq:
                if name in bools:
                    val = "true"
                elif name in OPTIONAL_VALUE:
                    val = OPTIONAL_VALUE[name]
                elif i + 1 < len(args):
                    i += 1
                    val = args[i]
                else:
                    raise CliError(f"error: flag needs an argument: --{name}")
            p.flags.setdefault(name, []).append(val)
        elif a.startswith("-") and len(a) > 1 and not _is_number(a):
            short, rest = a[:2], a[2:]
            name = SHORT.get(short)
            if name is None or name not in known:
                raise CliError(f"error: unknown shorthand flag: '{a[1]}' in {a}\n"
                               f"See 'netsim {verb} --help' for usage.")
            if name in bools:
                val = "true"
            elif rest:
                val = rest[1:] if rest.startswith("=") else rest
            elif i + 1 < len(args):
                i += 1
                val = args[i]
            else:
                raise CliError(f"error: flag needs an argument: '{a[1]}' in {a}")
            p.flags.setdefault(name, []).append(val)
        else:
            p.positional.append(a)
        i += 1
    return p


def _is_number(s: str) -> bool:
    return re.fullmatch(r"-[0-9]+", s) is not None


def apply_globals(ctx: Ctx, p: Parsed) -> None:
    """-n/--namespace, -A and --cluster given after the verb's arguments."""
    if p.get("namespace"):
        ctx.namespace = p.get("namespace")
    if p.bool("all-namespaces"):
        ctx.all_namespaces = True
    if p.get("cluster"):
        ctx.cluster = p.get("cluster")


# ---------------------------------------------------------------------------- change cause

# kubectl flags that take a value: the ones a change cause may contain
_VALUE_LONG = {"namespace", "filename", "selector", "output", "container", "label-columns",
               "replicas", "current-replicas", "to-revision", "revision", "grace-period",
               "image", "port", "cluster", "timeout", "type", "from-literal", "from-file",
               "from-env-file", "cert", "key", "dry-run", "field-selector", "resource-version",
               "kustomize", "context", "kubeconfig", "field-manager", "name"}


def change_cause(argv: list[str], prog: str = "netsim") -> str:
    """kubectl's `--record` text: program, positional words, then each flag as `--name=value`
    in the order given (`netsim set image deploy ublog myblog=x:v2 --namespace=uit
    --record=true`)."""
    words: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            words.extend(argv[i + 1:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            if not eq:
                if name in BOOL_FLAGS:
                    val = "true"
                elif name in OPTIONAL_VALUE:
                    val = OPTIONAL_VALUE[name]
                elif i + 1 < len(argv):
                    i += 1
                    val = argv[i]
            flags.append(f"--{name}={val}")
        elif a.startswith("-") and len(a) > 1 and not _is_number(a):
            name = SHORT.get(a[:2], a[1:2])
            rest = a[2:]
            if name in BOOL_FLAGS or name not in _VALUE_LONG:
                val = "true"
            elif rest:
                val = rest[1:] if rest.startswith("=") else rest
            elif i + 1 < len(argv):
                i += 1
                val = argv[i]
            else:
                val = ""
            flags.append(f"--{name}={val}")
        else:
            words.append(a)
        i += 1
    return " ".join([prog, *words, *flags])


def record_cause(ctx: Ctx, p: Parsed) -> str | None:
    """The change cause to store when --record was given (and its deprecation warning)."""
    if not p.bool("record"):
        return None
    err(RECORD_WARNING)
    return change_cause(ctx.argv)


# ---------------------------------------------------------------------------- targets

def resolve(kind: str) -> Resource:
    try:
        return lookup(kind)
    except UnknownResource as e:
        raise CliError(f"error: {e}") from e


def split_targets(args: list[str], allow_selector: bool = False) -> list[tuple[Resource, list[str]]]:
    """kubectl's ResourceTypeOrNameArgs: `TYPE NAME...`, `TYPE/NAME...`, `TYPE` (with -l/--all)."""
    if not args:
        return []
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError("error: there is no need to specify a resource type as a separate "
                           "argument when passing arguments in resource/name form (e.g. "
                           "'netsim get resource/<resource_name>' instead of 'netsim get "
                           "resource resource/<resource_name>'")
        out_: list[tuple[Resource, list[str]]] = []
        for a in args:
            k, n = a.split("/", 1)
            out_.append((resolve(k), [n]))
        return out_
    kinds = [resolve(k) for k in args[0].split(",") if k]
    names = args[1:]
    if not names and not allow_selector:
        raise CliError("error: resource(s) were provided, but no name was specified")
    return [(r, names) for r in kinds]


def fetch(ctx: Ctx, targets: list[tuple[Resource, list[str]]], selector: str | None = None,
          all_: bool = False) -> list[tuple[Resource, dict]]:
    """The objects named (or selected); NotFound raises kubectl's server error."""
    found: list[tuple[Resource, dict]] = []
    for res, names in targets:
        ns = ctx.ns if res.namespaced else None
        if names:
            for n in names:
                try:
                    found.append((res, ctx.client.get(res.plural, n, ns)))
                except errors.ApiError as e:
                    raise CliError(server_error(e)) from e
        elif selector or all_:
            lns = None if (ctx.all_namespaces or not res.namespaced) else ns
            for o in ctx.client.list(res.plural, lns, selector):
                found.append((res, o))
    return found


def label_of(res: Resource, obj: dict) -> str:
    return f"{res.type_name}/{obj['metadata']['name']}"


def update_with_retry(ctx: Ctx, res: Resource, obj: dict, mutate, attempts: int = 5) -> dict:
    """GET-mutate-PUT, retried on resourceVersion conflicts (kubectl patches; same effect)."""
    cur = obj
    for i in range(attempts):
        new = copy.deepcopy(cur)
        mutate(new)
        try:
            return ctx.client.update(new)
        except errors.Conflict:
            if i == attempts - 1:
                raise
            md = cur["metadata"]
            cur = ctx.client.get(res.plural, md["name"], md.get("namespace"))
    return cur


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


def get_resources_and_pairs(args: list[str], pair_type: str) -> tuple[list[str], list[str]]:
    """cmdutil.GetResourcesAndPairs: resources first, then `k=v` / `k-` pairs."""
    resources: list[str] = []
    pairs: list[str] = []
    found = False
    for s in args:
        non_resource = ("=" in s and not s.startswith("=")) or (s.endswith("-") and s != "-")
        if non_resource:
            found = True
            pairs.append(s)
        elif found:
            raise CliError(f"error: all resources must be specified before {pair_type} changes: {s}")
        else:
            resources.append(s)
    return resources, pairs


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


# ---------------------------------------------------------------------------- label / annotate

QUALIFIED_NAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                      "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                      "'my.name',  or '123-abc', regex used for validation is "
                      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def qualified_name_errors(key: str) -> list[str]:
    """validation.IsQualifiedName."""
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253 or not _DNS1123_SUB.match(prefix):
            return ["prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    else:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
                "'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                "prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        return ["name part must be non-empty"]
    errs_ = []
    if len(name) > 63:
        errs_.append("name part must be no more than 63 characters")
    if not _NAME_RE.match(name):
        errs_.append(QUALIFIED_NAME_MSG)
    return errs_


def label_value_errors(value: str) -> list[str]:
    errs_ = []
    if len(value) > 63:
        errs_.append("must be no more than 63 characters")
    if value and not _NAME_RE.match(value):
        errs_.append(LABEL_VALUE_MSG)
    return errs_


def parse_labels(pairs: list[str], kind: str = "label") -> tuple[dict[str, str], list[str]]:
    """`k=v` to set and `k-` to remove (kubectl's parseLabels / parseAnnotations)."""
    add: dict[str, str] = {}
    remove: list[str] = []
    for pr in pairs:
        if "=" in pr:
            k, _, v = pr.partition("=")
            if kind == "label":
                if not k or qualified_name_errors(k):
                    raise CliError(f"error: invalid label spec: {pr}")
                if label_value_errors(v):
                    raise CliError(f'error: invalid label value: "{pr}": '
                                   + "; ".join(label_value_errors(v)))
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
        from netsim.cli.printers import no_resources_message
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
                if _new:
                    o["metadata"][field_] = _new
                else:
                    o["metadata"].pop(field_, None)
            try:
                update_with_retry(ctx, res, obj, mutate)
            except errors.ApiError as e:
                err(server_error(e))
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
            e = label_value_errors(value)
            if e:
                raise CliError(f"error: invalid taint spec: {spec}, {'; '.join(e)}")
    else:
        raise CliError(f"error: invalid taint spec: {spec}")
    e = qualified_name_errors(key)
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
            if _new:
                o.setdefault("spec", {})["taints"] = _new
            else:
                o.setdefault("spec", {}).pop("taints", None)
        try:
            update_with_retry(ctx, res, node, mutate)
        except errors.ApiError as e:
            err(server_error(e))
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
            if want:
                o.setdefault("spec", {})["unschedulable"] = True
            else:
                o.setdefault("spec", {}).pop("unschedulable", None)
        try:
            update_with_retry(ctx, res, node, mutate)
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        out(f"node/{node['metadata']['name']} {verb}ed")
    return 0


# ---------------------------------------------------------------------------- create X

ENV_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
                "or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                "'[-._a-zA-Z][-._a-zA-Z0-9]*')")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CM_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CM_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
              "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
              "'[-._a-zA-Z0-9]+')")


def parse_env_file(text: str, path: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """kubectl's env-file reader: `KEY=VALUE` lines, `#` comments and blank lines skipped,
    leading whitespace trimmed, a bare `KEY` takes its value from the environment."""
    env = os.environ if environ is None else environ
    pairs = []
    for n, raw in enumerate(text.split("\n")):
        line = raw[1:] if n == 0 and raw.startswith("\ufeff") else raw
        line = line.rstrip("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not _ENV_NAME.match(key):
            raise CliError(f'error: "{key}" is not a valid key name: {ENV_NAME_MSG}')
        if not eq:
            if key not in env:
                continue
            value = env[key]
        pairs.append((key, value))
    return pairs


def _read_source(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise CliError(f"error: lstat {path}: no such file or directory") from e
    except OSError as e:
        raise CliError(f"error: {e}") from e


def collect_data(p: Parsed, kind: str, name: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """--from-literal / --from-file / --from-env-file -> (text data, binary data)."""
    data: dict[str, str] = {}
    binary: dict[str, bytes] = {}
    label = "ConfigMap" if kind == "configmap" else "Secret"

    def put(k: str, v: bytes | str) -> None:
        if not _CM_KEY.match(k):
            raise CliError(f'error: "{k}" is not a valid key name for a {label}: {CM_KEY_MSG}')
        if k in data or k in binary:
            raise CliError(f"error: cannot add key {k}, another key by that name already exists "
                           f"in {'Data' if kind == 'secret' else 'data'} for {label} \"{name}\"")
        if isinstance(v, str):
            data[k] = v
            return
        try:
            data[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            binary[k] = v

    env_files = p.all("from-env-file")
    if env_files and (p.all("from-literal") or p.all("from-file")):
        raise CliError("error: from-env-file cannot be combined with from-file or from-literal")
    for lit in p.all("from-literal"):
        k, eq, v = lit.partition("=")
        if not eq or not k:
            raise CliError(f"error: invalid literal source {lit}, expected key=value")
        put(k, v)
    for src in p.all("from-file"):
        k, eq, path = src.partition("=")
        if not eq:
            k, path = "", src
        elif not k:
            raise CliError(f"error: key name for file path {path} missing")
        if os.path.isdir(path):
            if k:
                raise CliError(f"error: cannot give a key name for a directory path {path}")
            for f in sorted(os.listdir(path)):
                fp = os.path.join(path, f)
                if os.path.isfile(fp):
                    put(f, _read_source(fp))
        else:
            put(k or os.path.basename(path), _read_source(path))
    for path in env_files:
        raw = _read_source(path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CliError(f"error: env file {path} contains invalid utf8 bytes") from e
        for k, v in parse_env_file(text, path):
            if k in data:
                data.pop(k)  # later lines win in an env file
            put(k, v)
    return data, binary


def _check_pem(cert: bytes, key: bytes) -> None:
    """tls.X509KeyPair's checks, with its messages."""
    import ssl
    import tempfile
    if b"-----BEGIN" not in cert:
        raise CliError("error: failed to load key pair tls: failed to find any PEM data in "
                       "certificate input")
    if b"-----BEGIN CERTIFICATE-----" not in cert:
        raise CliError("error: failed to load key pair tls: failed to find certificate PEM data "
                       "in certificate input, but did find a private key; PEM inputs may have "
                       "been switched")
    if b"-----BEGIN" not in key:
        raise CliError("error: failed to load key pair tls: failed to find any PEM data in key "
                       "input")
    if b"PRIVATE KEY-----" not in key:
        raise CliError("error: failed to load key pair tls: failed to find PEM block with type "
                       "ending in \"PRIVATE KEY\" in key input after skipping PEM blocks of the "
                       "following types: [CERTIFICATE]")
    with tempfile.TemporaryDirectory() as d:
        cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cp, "wb") as f:
            f.write(cert)
        with open(kp, "wb") as f:
            f.write(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_cert_chain(cp, kp)
        except ssl.SSLError as e:
            if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
                raise CliError("error: failed to load key pair tls: private key does not match "
                               "public key") from e
            raise CliError("error: failed to load key pair x509: malformed certificate") from e


def image_container_name(image: str) -> str:
    """kubectl create deployment: container named after the image (`nginx` for nginx:1.19)."""
    base = image.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    last = last.split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", last.lower()).strip("-") or "app"


def _namespace_md(ctx: Ctx, md: dict) -> dict:
    if ctx.namespace:
        md["namespace"] = ctx.namespace
    return md


def build_generic(ctx: Ctx, what: str, name: str, p: Parsed) -> dict:
    """The object `create configmap|secret|namespace|deployment` would send."""
    if what in ("configmap", "cm"):
        data, binary = collect_data(p, "configmap", name)
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": _namespace_md(ctx, {"name": name, "creationTimestamp": None})}
        if binary:
            obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
        if data:
            obj["data"] = data
        return obj
    if what == "secret generic":
        data, binary = collect_data(p, "secret", name)
        allb = {k: v.encode() for k, v in data.items()}
        allb.update(binary)
        obj = {"apiVersion": "v1", "kind": "Secret",
               "metadata": _namespace_md(ctx, {"name": name, "creationTimestamp": None})}
        if allb:
            obj["data"] = {k: base64.b64encode(allb[k]).decode() for k in sorted(allb)}
        if p.get("type"):
            obj["type"] = p.get("type")
        return obj
    if what == "secret tls":
        missing = [f'"{f}"' for f in ("cert", "key") if not p.get(f)]
        if missing:
            raise CliError(f"error: required flag(s) {', '.join(missing)} not set")
        cert, key = _read_source(p.get("cert")), _read_source(p.get("key"))
        _check_pem(cert, key)
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": _namespace_md(ctx, {"name": name, "creationTimestamp": None}),
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": base64.b64encode(cert).decode(),
                         "tls.key": base64.b64encode(key).decode()}}
    if what in ("namespace", "ns"):
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "creationTimestamp": None},
                "spec": {}, "status": {}}
    if what in ("deployment", "deploy"):
        images = p.all("image")
        if not images:
            raise CliError("error: required flag(s) \"image\" not set")
        containers = []
        for img in images:
            c = {"image": img, "name": image_container_name(img), "resources": {}}
            containers.append(c)
        if p.get("port") and p.get("port") != "-1":
            containers[0]["ports"] = [{"containerPort": int(p.get("port"))}]
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": _namespace_md(ctx, {"name": name, "creationTimestamp": None,
                                                "labels": dict(labels)}),
                "spec": {"replicas": int(p.get("replicas") or 1),
                         "selector": {"matchLabels": dict(labels)},
                         "strategy": {},
                         "template": {"metadata": {"creationTimestamp": None,
                                                   "labels": dict(labels)},
                                      "spec": {"containers": containers}}},
                "status": {}}
    raise CliError(f'error: unknown command "{what}" for "netsim create"\n'
                   "See 'netsim create -h' for help and examples")


def _parsed_from_namespace(args) -> Parsed:
    """The argparse namespace main.py hands over, as the same Parsed the other verbs use."""
    p = Parsed()

    def put(name: str, v) -> None:
        if v is None or v == [] or v is False:
            return
        if isinstance(v, list):
            p.flags[name] = [str(x) for x in v]
        else:
            p.flags[name] = [str(v) if not isinstance(v, bool) else "true"]
    for attr, name in (("from_literal", "from-literal"), ("from_file", "from-file"),
                       ("from_env_file", "from-env-file"), ("cert", "cert"), ("key", "key"),
                       ("type", "type"), ("image", "image"), ("replicas", "replicas"),
                       ("port", "port"), ("output", "output"), ("dry_run", "dry-run")):
        put(name, getattr(args, attr, None))
    p.positional = list(getattr(args, "args", []) or [])
    return p


def create_generic(ctx: Ctx, args) -> int:
    p = _parsed_from_namespace(args)
    pos = p.positional
    if not pos:
        raise CliError("error: must specify one of -f and -k")
    what, rest = pos[0], pos[1:]
    if what == "secret":
        if not rest:
            raise CliError("error: Unknown command: use one of 'secret generic', 'secret tls', "
                           "'secret docker-registry'")
        what, rest = f"secret {rest[0]}", rest[1:]
    if not rest:
        raise CliError("error: exactly one NAME is required, got 0\n"
                       f"See 'netsim create {what} -h' for help and examples")
    if len(rest) > 1:
        raise CliError(f"error: exactly one NAME is required, got {len(rest)}\n"
                       f"See 'netsim create {what} -h' for help and examples")
    name = rest[0]
    obj = build_generic(ctx, what, name, p)
    from netsim.api.resources import for_object
    res = for_object(obj)
    if res.namespaced:
        obj["metadata"].setdefault("namespace", ctx.ns)
    dry = p.get("dry-run")
    if dry not in (None, "none", "client", "server", "unchanged", "true", "false"):
        raise CliError(f'error: Invalid dry-run value ({dry}). Must be "none", "server", or '
                       '"client".')
    output = p.get("output")
    if dry in ("client", "unchanged", "true"):
        shown = copy.deepcopy(obj)
        if not ctx.namespace:
            shown["metadata"].pop("namespace", None)
        return _print_result(shown, res, output, "created (dry run)")
    send = copy.deepcopy(obj)
    send["metadata"].pop("creationTimestamp", None)
    send.pop("status", None)
    try:
        created = ctx.client.create(send, dry_run=dry == "server")
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    return _print_result(created, res, output,
                         "created (server dry run)" if dry == "server" else "created")


def _print_result(obj: dict, res: Resource, output: str | None, verb: str) -> int:
    if output in ("yaml", "json"):
        import json

        from netsim.cli.get import _yaml
        out(_yaml(obj) if output == "yaml" else json.dumps(obj, indent=4))
    elif output == "name":
        out(f"{res.type_name}/{obj['metadata']['name']}")
    elif output:
        raise CliError(f'error: unable to match a printer suitable for the output format '
                       f'"{output}", allowed formats are: json,name,yaml')
    else:
        out(f"{res.type_name}/{obj['metadata']['name']} {verb}")
    return 0


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
    if verb == "set":
        return set_cmd(ctx, args)
    if verb == "rollout":
        from netsim.cli import rollout_cmds
        return rollout_cmds.run(ctx, args)
    if verb == "edit":
        from netsim.cli import edit
        return edit.run(ctx, args)
    raise CliError(f"error: {verb} is not implemented yet")


def wait_until(pred, timeout: float, interval: float = 0.2):
    """Poll pred() until truthy or the deadline passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
