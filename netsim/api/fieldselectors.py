"""Field selectors: `?fieldSelector=spec.nodeName=n1,status.phase!=Failed` on list and watch.

As apimachinery's fields package: terms split on unescaped commas, each `key=value`,
`key==value` or `key!=value`, values unescaped (`\\,`, `\\=`, `\\\\`); every term must
hold. Which keys a kind accepts is the apiserver's field label conversion for that kind
(pkg/apis/core/v1/conversion.go and friends), refused in its words; the values compared
are the kind's ToSelectableFields (pkg/registry/*/strategy.go): strings, booleans as
"true"/"false", counts in decimal, a missing field as "" (or "false"/"0").

Each field is named by JSON paths into the stored object, so the store can read a list's
fields with SQLite's json_extract without decoding whole objects, and the watch log the
same fields from the objects it already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netsim.api import errors


@dataclass(frozen=True)
class Field:
    """One selectable field: the first of `paths` that is set, rendered as `kind` says."""

    paths: tuple[str, ...]
    kind: str = "str"  # "str" | "bool" | "int"

    def render(self, value) -> str:
        if self.kind == "bool":
            return "true" if value in (True, 1) else "false"
        if self.kind == "int":
            return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"
        if value is None or isinstance(value, (dict, list)):
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _f(*paths: str, kind: str = "str") -> Field:
    return Field(tuple(paths), kind)


_META = {"metadata.name": _f("metadata.name"), "metadata.namespace": _f("metadata.namespace")}

# plural -> (the fields it selects on, the conversion's refusal for any other key).
_NOT_SUPPORTED = "field label not supported: {}"
_KINDS: dict[str, tuple[dict[str, Field], str]] = {
    "pods": ({**_META,
              "spec.nodeName": _f("spec.nodeName"),
              "spec.restartPolicy": _f("spec.restartPolicy"),
              "spec.schedulerName": _f("spec.schedulerName"),
              "spec.serviceAccountName": _f("spec.serviceAccountName"),
              "spec.hostNetwork": _f("spec.hostNetwork", kind="bool"),
              "status.phase": _f("status.phase"),
              "status.podIP": _f("status.podIPs[0].ip", "status.podIP"),
              "status.podIPs": _f("status.podIPs[0].ip", "status.podIP"),
              "status.nominatedNodeName": _f("status.nominatedNodeName")}, _NOT_SUPPORTED),
    "nodes": ({"metadata.name": _f("metadata.name"),
               "spec.unschedulable": _f("spec.unschedulable", kind="bool")}, _NOT_SUPPORTED),
    "events": ({**_META,
                "involvedObject.kind": _f("involvedObject.kind"),
                "involvedObject.namespace": _f("involvedObject.namespace"),
                "involvedObject.name": _f("involvedObject.name"),
                "involvedObject.uid": _f("involvedObject.uid"),
                "involvedObject.apiVersion": _f("involvedObject.apiVersion"),
                "involvedObject.resourceVersion": _f("involvedObject.resourceVersion"),
                "involvedObject.fieldPath": _f("involvedObject.fieldPath"),
                "reason": _f("reason"),
                "reportingComponent": _f("reportingComponent"),
                # the source's component, else the reporting controller (events.k8s.io)
                "source": _f("source.component", "reportingComponent"),
                "type": _f("type")}, _NOT_SUPPORTED),
    "namespaces": ({"metadata.name": _f("metadata.name"),
                    "status.phase": _f("status.phase")}, _NOT_SUPPORTED),
    "secrets": ({**_META, "type": _f("type")}, _NOT_SUPPORTED),
    "services": ({**_META, "spec.clusterIP": _f("spec.clusterIP"),
                  "spec.type": _f("spec.type")}, _NOT_SUPPORTED),
    "replicasets": ({**_META, "status.replicas": _f("status.replicas", kind="int")},
                    _NOT_SUPPORTED),
    "jobs": ({**_META, "status.successful": _f("status.succeeded", kind="int")},
             'field label "{}" not supported for batchv1.Job'),
}
_DEFAULT = (_META, '"{}" is not a known field selector: only "metadata.name", '
                   '"metadata.namespace"')
# Old clients' name for spec.nodeName (the pod conversion still maps it).
_ALIASES = {("pods", "spec.host"): "spec.nodeName"}

Fields = dict[str, str]
Matcher = Callable[[Fields], bool]


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=" or "!="
    value: str


def fields_for(plural: str) -> dict[str, Field]:
    """The selectable fields of a kind."""
    return _KINDS.get(plural, _DEFAULT)[0]


def _steps(path: str) -> tuple[tuple[str, int | None], ...]:
    """`status.podIPs[0].ip` as ((status, None), (podIPs, 0), (ip, None))."""
    out = []
    for part in path.split("."):
        idx = None
        if part.endswith("]") and "[" in part:
            part, _, i = part[:-1].partition("[")
            idx = int(i)
        out.append((part, idx))
    return tuple(out)


def _get(obj, steps: tuple[tuple[str, int | None], ...]):
    cur = obj
    for key, idx in steps:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
        if idx is not None:
            cur = cur[idx] if isinstance(cur, list) and len(cur) > idx else None
    return cur


# plural -> [(field key, Field, the steps of each of its paths)], made once per kind
_COMPILED: dict[str, list] = {}


def extract(plural: str, obj: dict) -> Fields:
    """Every selectable field of `obj` (what a watch compares an event against); every
    write computes them, so the paths are walked precompiled."""
    spec = _COMPILED.get(plural)
    if spec is None:
        spec = _COMPILED[plural] = [(k, f, [_steps(p) for p in f.paths])
                                    for k, f in fields_for(plural).items()]
    out = {}
    for key, f, paths in spec:
        v = None
        for steps in paths:
            v = _get(obj, steps)
            if v is not None:
                break
        out[key] = f.render(v)
    return out


def sql_path(path: str) -> str:
    """A field's path as SQLite's json_extract names it."""
    return "$." + path


# ---- parsing ------------------------------------------------------------------------
def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (fields.splitTerms)."""
    terms, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            cur.append(ch)
            escaped = True
        elif ch == ",":
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """key, operator, value at the first unescaped operator (fields.splitTerm)."""
    escaped = False
    for i, ch in enumerate(term):
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    r"""fields.UnescapeValue: only `\\`, `\,` and `\=` are escapes; a bare `,` or `=` is
    refused."""
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise ValueError(f"invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ValueError(f"invalid field selector: unescaped {ch}")
        else:
            out.append(ch)
    if escaped:
        raise ValueError("invalid escape sequence: \\")
    return "".join(out)


def requirements(selector: str | None, plural: str | None = None) -> list[Requirement]:
    """The terms of a field selector, each key checked against `plural`'s fields (when
    given). Raises errors.BadRequest in the apiserver's words."""
    if not selector:
        return []
    reqs = []
    for term in sorted(_split_terms(selector)):
        if term == "":
            continue
        split = _split_term(term)
        if split is None:
            raise errors.BadRequest(
                f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, value = split
        try:
            value = _unescape(value)
        except ValueError as e:
            raise errors.BadRequest(str(e)) from None
        if plural is not None:
            key = _ALIASES.get((plural, key), key)
            known, refusal = _KINDS.get(plural, _DEFAULT)
            if key not in known:
                raise errors.BadRequest(refusal.format(key))
        reqs.append(Requirement(key, "!=" if op == "!=" else "=", value))
    return reqs


def matcher(reqs: list[Requirement]) -> Matcher:
    """A predicate over a fields dict (a field not in it reads as "")."""
    if not reqs:
        return lambda fields: True
    pairs = [(r.key, r.op == "=", r.value) for r in reqs]

    def match(fields: Fields) -> bool:
        for key, eq, value in pairs:
            if (fields.get(key, "") == value) != eq:
                return False
        return True
    return match


def parse(selector: str | None, plural: str) -> Matcher:
    """Compile a field selector for `plural` (BadRequest for bad syntax or keys)."""
    return matcher(requirements(selector, plural))


def to_string(pairs: dict[str, str]) -> str:
    """`k1=v1,k2=v2` with values escaped (fields.Set.AsSelector().String())."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
    return ",".join(f"{k}={esc(v)}" for k, v in pairs.items())
