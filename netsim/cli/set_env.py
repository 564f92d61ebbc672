"""`set env RESOURCE/NAME KEY=VAL ... KEY-`: kubectl's pkg/cmd/set/set_env.go.

Resources first, then the changes (`KEY=VAL` sets, `KEY-` removes, `-` reads KEY=VAL lines
from stdin; `-e/--env KEY=VAL` too); `--from=configmap/NAME|secret/NAME` adds a valueFrom
reference per key (only `--keys`, names upper-cased with other characters as `_` and a
Warning saying so), `--prefix` before every name; `-c/--containers` picks containers by
name with `*` wildcards (init containers included); `--overwrite=false` refuses to change a
value; `--list` prints the environment (with the changes) instead of writing, `--resolve`
shows the values of ConfigMap and Secret references. Works on anything with a pod template
(deploy, sts, ds, rs, job, cronjob) and on pods; a Deployment's changed template is a new
rollout. Prints `deployment.apps/x env updated`; an object it did not change prints nothing.
"""

from __future__ import annotations

import base64
import copy
import re
import sys

from netsim.api import errors
from netsim.api import validation as v
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.pflags import apply_globals, fetch, label_of, parse_flags, split_targets

_ENV_ARG = re.compile(r"(?s)^(.+)=(.*)$")
_NOT_ENV_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def split_env_from_resources(args: list[str]) -> tuple[list[str], list[str]]:
    """SplitEnvironmentFromResources."""
    resources, env_args = [], []
    first = True
    for s in args:
        is_env = bool(_ENV_ARG.match(s)) or s.endswith("-")
        if is_env:
            first = False
            env_args.append(s)
        elif first:
            resources.append(s)
        else:
            raise CliError("error: all resources must be specified before environment "
                           f"changes: {' '.join(args)}")
    return resources, env_args


def parse_env(specs: list[str], stdin=None) -> tuple[list[dict], list[str]]:
    """ParseEnv: (variables to set, names to remove)."""
    env: list[dict] = []
    remove: list[str] = []
    exists = set()
    for spec in specs:
        if spec == "-":
            text = (stdin or sys.stdin).read()
            for line in text.splitlines():
                line = line.split("#", 1)[0]
                if "=" in line:
                    k, _, val = line.partition("=")
                    env.append({"name": k, "value": val})
        elif "=" in spec:
            k, _, val = spec.partition("=")
            problems = v.is_env_var_name(k)
            if problems:
                raise CliError(f'error: "{k}" is not a valid key name: {";".join(problems)}')
            exists.add(k)
            env.append({"name": k, "value": val})
        elif spec.endswith("-"):
            remove.append(spec[:-1])
        else:
            raise CliError(f"error: unknown environment variable: {spec}")
    if any(r in exists for r in remove):
        raise CliError("error: can not both modify and remove the same environment variable "
                       "in the same command")
    return env, remove


def update_env(existing: list[dict], env: list[dict], remove: list[str]) -> list[dict]:
    """updateEnv: an added variable replaces every one of its name in place, a removed one
    goes, the rest stay; new ones at the end."""
    out_: list[dict] = []
    covered = set(remove)
    for e in existing:
        name = e.get("name")
        if name in covered:
            continue
        newer = next((x for x in env if x["name"] == name), None)
        if newer is not None:
            covered.add(name)
            out_.append(copy.deepcopy(newer))
            continue
        out_.append(e)
    for e in env:
        if e["name"] in covered:
            continue
        covered.add(e["name"])
        out_.append(copy.deepcopy(e))
    return out_


def select_string(s: str, spec: str) -> bool:
    """selectString: `*` matches anything (non-greedy, as kubectl's)."""
    if spec == "*":
        return True
    if "*" not in spec:
        return s == spec
    pattern = ".*?".join(re.escape(p) for p in spec.split("*"))
    return re.fullmatch(pattern, s) is not None


def ref_string(src: dict) -> str:
    """GetEnvVarRefString."""
    if src.get("configMapKeyRef"):
        r = src["configMapKeyRef"]
        return f"configmap {r.get('name', '')}, key {r.get('key', '')}"
    if src.get("secretKeyRef"):
        r = src["secretKeyRef"]
        return f"secret {r.get('name', '')}, key {r.get('key', '')}"
    if src.get("fieldRef"):
        return f"field path {src['fieldRef'].get('fieldPath', '')}"
    if src.get("resourceFieldRef"):
        r = src["resourceFieldRef"]
        prefix = f"{r['containerName']}/" if r.get("containerName") else ""
        return f"resource field {prefix}{r.get('resource', '')}"
    return "invalid valueFrom"


def _pod_spec(obj: dict) -> dict | None:
    from netsim.cli.workloads import pod_spec_of
    return pod_spec_of(obj)


class _Resolver:
    """GetEnvVarRefValue for ConfigMap and Secret keys (read once per object)."""

    def __init__(self, ctx: Ctx):
        self.ctx, self.cache = ctx, {}

    def value(self, src: dict, ns: str) -> str:
        for kind, plural, key in (("configMapKeyRef", "configmaps", "data"),
                                  ("secretKeyRef", "secrets", "data")):
            ref = src.get(kind)
            if not ref:
                continue
            obj = self.cache.get((plural, ref.get("name")))
            if obj is None:
                obj = self.cache[(plural, ref.get("name"))] = self.ctx.client.get(
                    plural, ref.get("name"), ns)
            data = obj.get(key) or {}
            if ref.get("key") not in data:
                what = "configmap" if plural == "configmaps" else "secret"
                raise LookupError(f"key {ref.get('key')} not found in {what} {ref.get('name')}")
            val = data[ref["key"]]
            return base64.b64decode(val).decode(errors="replace") if plural == "secrets" else val
        raise LookupError("unsupported reference")


def _env_from(ctx: Ctx, source: str, keys: list[str]) -> list[dict]:
    targets = split_targets([source])
    env = []
    for res, obj in fetch(ctx, targets):
        if res.plural not in ("configmaps", "secrets"):
            raise CliError("error: unsupported resource specified in --from")
        ref = "configMapKeyRef" if res.plural == "configmaps" else "secretKeyRef"
        for key in sorted(obj.get("data") or {}):
            if keys and key not in keys:
                continue
            name = _NOT_ENV_CHAR.sub("_", key).upper()
            if name != key:
                err(f"Warning: key {key} transferred to {name}")
            env.append({"name": name, "valueFrom": {ref: {"name": obj["metadata"]["name"],
                                                          "key": key}}})
    return env


def _normalize_short_e(args: list[str]) -> list[str]:
    """-e VAL / -eVAL / -e=VAL as --env (pflag's -e shorthand of --env)."""
    out_, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            out_ += args[i:]
            break
        if a == "-e":
            out_.append("--env")
        elif a.startswith("-e") and not a.startswith("--"):
            out_.append("--env=" + a[2:].lstrip("="))
        else:
            out_.append(a)
        i += 1
    return out_


def set_env_cmd(ctx: Ctx, args: list[str], stdin=None) -> int:
    p = parse_flags(_normalize_short_e(args),
                    {"containers", "container", "from", "prefix", "env", "keys", "selector",
                     "output", "dry-run", "filename", "field-manager"},
                    {"list", "resolve", "overwrite", "all", "local"}, verb="set env")
    apply_globals(ctx, p)
    if p.bool("all") and p.get("selector"):
        raise CliError("error: cannot set --all and --selector at the same time")
    resources, env_args = split_env_from_resources(p.positional)
    if not resources:
        raise CliError("error: one or more resources must be specified as <resource> <name> "
                       "or <resource>/<name>")
    if p.bool("list") and p.get("output"):
        raise CliError("error: --list and --output may not be specified together")
    keys = [k for arg in p.all("keys") for k in arg.split(",") if k]
    if keys and not p.get("from"):
        raise CliError("error: when specifying --keys, a configmap or secret must be provided "
                       "with --from")
    overwrite = p.get("overwrite") is None or p.bool("overwrite")
    dry = p.get("dry-run") or "none"
    env, remove = parse_env(p.all("env") + env_args, stdin)
    if p.get("from"):
        env += _env_from(ctx, p.get("from"), keys)
    prefix = p.get("prefix") or ""
    for e in env:
        e["name"] = prefix + e["name"]
    selector = p.get("container") or p.get("containers") or "*"
    targets = split_targets(resources, allow_selector=bool(p.get("selector") or p.bool("all")))
    objs = fetch(ctx, targets, p.get("selector"), p.bool("all"))
    resolver = _Resolver(ctx)
    problems: list[str] = []
    for res, obj in objs:
        name = obj["metadata"]["name"]
        new = copy.deepcopy(obj)
        spec = _pod_spec(new)
        if spec is None:
            problems.append(f"error: {res.plural}/{name} the object is not a pod or does not "
                            f"have a pod template: *v1.{obj.get('kind')}")
            continue
        containers = [c for key in ("containers", "initContainers")
                      for c in spec.get(key) or [] if select_string(c.get("name", ""), selector)]
        if not containers:
            err(f'Warning: {obj.get("kind")}/{name} does not have any containers matching '
                f'"{selector}"')
            continue
        failed = None
        for c in containers:
            if not overwrite:
                for e in env:
                    cur = next((x for x in c.get("env") or [] if x.get("name") == e["name"]),
                               None)
                    if cur is not None and cur.get("value", "") != e.get("value", ""):
                        failed = (f"'{cur['name']}' already has a value ({cur.get('value', '')})"
                                  ", and --overwrite is false")
                        break
                if failed:
                    break
            updated = update_env(c.get("env") or [], env, remove)
            if updated:
                c["env"] = updated
            else:
                c.pop("env", None)
            if p.bool("list"):
                _print_list(obj.get("kind"), name, c, p.bool("resolve"), resolver,
                            obj["metadata"].get("namespace") or ctx.ns)
        if failed:
            problems.append(f"error: {res.plural}/{name} {failed}")
            continue
        if p.bool("list") or new == obj:
            continue
        if dry in ("client", "true", "unchanged"):
            out(f"{label_of(res, obj)} env updated (dry run)")
            continue
        try:
            ctx.client.update(new, dry_run=dry == "server")
        except errors.Conflict:
            try:  # someone wrote it meanwhile: the change again on the current object
                cur = ctx.client.get(res.plural, name, obj["metadata"].get("namespace"))
                redo = copy.deepcopy(cur)
                sp = _pod_spec(redo)
                for c in [c for key in ("containers", "initContainers")
                          for c in sp.get(key) or [] if select_string(c.get("name", ""),
                                                                       selector)]:
                    c["env"] = update_env(c.get("env") or [], env, remove) or None
                    if c["env"] is None:
                        del c["env"]
                ctx.client.update(redo, dry_run=dry == "server")
            except errors.ApiError as e:
                problems.append(f"failed to patch env update to pod template: {server_error(e)}")
                continue
        except errors.ApiError as e:
            problems.append(f"failed to patch env update to pod template: {server_error(e)}")
            continue
        out(f"{label_of(res, obj)} env updated" + (" (server dry run)" if dry == "server"
                                                   else ""))
    if problems:
        msg = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise CliError(msg if msg.startswith("error: ") else "error: " + msg)
    return 0


def _print_list(kind: str, name: str, c: dict, resolve: bool, resolver: _Resolver,
                ns: str) -> None:
    out(f"# {kind} {name}, container {c.get('name')}")
    failures: dict[str, list[str]] = {}
    for e in c.get("env") or []:
        src = e.get("valueFrom")
        if not src:
            out(f"{e.get('name')}={e.get('value', '')}")
            continue
        if resolve:
            try:
                out(f"{e.get('name')}={resolver.value(src, ns)}")
                continue
            except (LookupError, errors.ApiError) as x:
                failures.setdefault(getattr(x, "message", str(x).strip("'\"")), []).append(
                    e.get("name"))
        out(f"# {e.get('name')} from {ref_string(src)}")
    for why, names in sorted(failures.items()):
        err(f"error retrieving reference for {', '.join(sorted(names))}: {why}")
