"""kubectl-style (pflag) argument parsing, change causes and target resolution shared by the
imperative verbs (scale, set, label, taint, rollout, edit, create)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from netsim.api import errors
from netsim.api.resources import Resource, UnknownResource, lookup
from netsim.cli.context import CliError, Ctx, err, server_error

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


def _scan(args: list[str], *, long_name: Callable[[str], str], short_name: Callable[[str, str], str],
          is_bool: Callable[[str, str], bool], missing: Callable[[str, str], str],
          ) -> Iterator[tuple[str | None, str]]:
    """pflag's walk over the words: (None, word) for a positional word, (name, value) per flag.

    `--x=v`, `--x v`, `--x` for a bool (or a flag whose value may be left out); `-n v`,
    `-nv`, `-n=v`; bools may be bundled (`-it` is -i -t, `-in x` is -i -n x); `--` ends flags.
    `long_name`/`short_name` map (and may refuse) a flag, `is_bool(name, word)` says whether
    it takes no value, `missing` what a value-taking flag at the end gets (or raises)."""
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            for w in args[i:]:
                yield None, w
            return
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            name = long_name(name)
            if not eq:
                if is_bool(name, a):
                    val = "true"
                elif name in OPTIONAL_VALUE:
                    val = OPTIONAL_VALUE[name]
                elif i < len(args):
                    val, i = args[i], i + 1
                else:
                    val = missing(name, a)
            yield name, val
        elif a.startswith("-") and len(a) > 1 and not _is_number(a):
            shorts = a[1:]
            while shorts:
                name = short_name(shorts[0], a)
                if len(shorts) > 2 and shorts[1] == "=":
                    val, shorts = shorts[2:], ""
                elif is_bool(name, a):
                    val, shorts = "true", shorts[1:]
                elif len(shorts) > 1:
                    val, shorts = shorts[1:], ""
                elif i < len(args):
                    val, shorts, i = args[i], "", i + 1
                else:
                    val, shorts = missing(name, a), ""
                yield name, val
        else:
            yield None, a


def parse_flags(args: list[str], value_flags: set[str], bool_flags: set[str] | None = None,
                verb: str = "") -> Parsed:
    """kubectl (pflag) style: `--x=v`, `--x v`, `-n v`, `-nuit`, bools; `--` ends flags.
    Unknown flags and missing values fail in kubectl's words."""
    bools = BOOL_FLAGS | (bool_flags or set())
    known = set(value_flags) | bools | {"namespace", "cluster", "all-namespaces"}

    def long_name(name: str) -> str:
        if name not in known:
            raise CliError(f"error: unknown flag: --{name}\nSee 'netsim {verb} --help' for "
                           "usage.")
        return name

    def short_name(letter: str, word: str) -> str:
        name = SHORT.get("-" + letter)
        if name is None or name not in known:
            raise CliError(f"error: unknown shorthand flag: '{letter}' in {word}\n"
                           f"See 'netsim {verb} --help' for usage.")
        return name

    def missing(name: str, word: str) -> str:
        if word.startswith("--"):
            raise CliError(f"error: flag needs an argument: {word}")
        raise CliError(f"error: flag needs an argument: '{word[-1]}' in {word}")

    p = Parsed()
    for name, val in _scan(args, long_name=long_name, short_name=short_name,
                           is_bool=lambda name, word: name in bools, missing=missing):
        if name is None:
            p.positional.append(val)
        else:
            p.flags.setdefault(name, []).append(val)
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


def _cause_bool(name: str, word: str) -> bool:
    """The change cause knows no verb's own flags: a short one not known to take a value
    is taken for a bool, a long one only when kubectl's bools list it."""
    return name in BOOL_FLAGS or (not word.startswith("--") and name not in _VALUE_LONG)


def change_cause(argv: list[str], prog: str = "netsim") -> str:
    """kubectl's `--record` text: program, positional words, then each flag as `--name=value`
    in the order given (`netsim set image deploy ublog myblog=x:v2 --namespace=uit
    --record=true`)."""
    words: list[str] = []
    flags: list[str] = []
    scan = _scan(argv, long_name=lambda name: name,
                 short_name=lambda letter, word: SHORT.get("-" + letter, letter),
                 is_bool=_cause_bool,
                 missing=lambda name, word: "")
    for name, val in scan:
        if name is None:
            words.append(val)
        else:
            flags.append(f"--{name}={val}")
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


def update_or_report(ctx: Ctx, res: Resource, obj: dict, mutate) -> bool:
    """update_with_retry for verbs that go on with the next object: a server error is
    printed in kubectl's words and False returned."""
    try:
        update_with_retry(ctx, res, obj, mutate)
    except errors.ApiError as e:
        err(server_error(e))
        return False
    return True


def set_or_drop(d: dict, key: str, value) -> None:
    """Set a field, or leave it out when the value is empty (as kubectl's patches do)."""
    if value:
        d[key] = value
    else:
        d.pop(key, None)


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
