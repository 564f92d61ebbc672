"""Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`), as kube-apiserver does
it: unknown and duplicate JSON fields, found against the kinds' OpenAPI schemas
(netsim.api.openapi.schema) and worded as its strict JSON decoder (sigs.k8s.io/json) words
them: `unknown field "spec.replicass"`, `duplicate field "spec.replicas"` (paths joined with
".", list items as "[0]", map entries by key).

- The directive: absent or "" means Warn, as upstream (kubectl sends Strict, or Ignore with
  --validate=false); anything else is refused as the apiserver refuses it. Warn and Ignore
  drop the unknown fields before the object is stored, as decoding into Go structs does.
- POST and PUT: the body as sent, in its order. Strict: 400 `<Kind> in version "<v>" cannot
  be handled as a <Kind>: strict decoding error: <errors, comma-separated>`, nothing stored.
  Warn: each error a `Warning: 299 - "..."` response header (kubectl prints
  `Warning: unknown field "..."`).
- PATCH: the patched object, as upstream decodes it (merge and JSON patch: the patched JSON,
  keys sorted; strategic merge: the merged map), after the patch's own duplicate keys
  (JSON patch operations: `json patch unknown field "[0].valu"`). Strict: 422 `"" is invalid:
  patch: Invalid value: ...: strict decoding error: ...`. Server-side apply: the body's
  duplicate keys (400 `error strict decoding patch: ...`); its unknown fields are the typed
  conversion's 500, whatever the directive (`typed_patch_errors`, structured-merge-diff's
  words).

Duplicate keys need the pairs json.loads would merge: only requests that validate pay for a
cheap object_pairs_hook, and the exact pairs are re-read only when a key did repeat.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from netsim.api import errors
from netsim.api.openapi import schema
from netsim.api.openapi.schema import Node
from netsim.api.validation import go_quote

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
_ALLOWED = ("", IGNORE, STRICT, WARN)
_MAX_ERRORS = 100  # sigs.k8s.io/json keeps at most this many
_JSON_TYPES = ("", "application/json")
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
_JSON_PATCH_OP = {"op", "path", "from", "value"}


def directive(query: dict, options_kind: str) -> str:
    """The request's fieldValidation: Strict, Warn (also when absent) or Ignore."""
    v = query.get("fieldValidation", "")
    if v not in _ALLOWED:
        raise errors.Invalid(
            f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
            f'{go_quote(v)}: supported values: "", "Ignore", "Strict", "Warn"')
    return v or WARN


# ---- parsing that notices repeated keys ------------------------------------------------
class _Repeated(Exception):
    pass


def _no_repeats(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Repeated
    return d


class _Pairs(list):
    """A JSON object as its (key, value) pairs, in order, repeats kept."""


def has_repeated_keys(raw: bytes | str) -> bool:
    """True when some JSON object in `raw` names a key twice (raw must be valid JSON)."""
    try:
        json.loads(raw, object_pairs_hook=_no_repeats)
    except _Repeated:
        return True
    return False


def parse_noting_repeats(raw: bytes | str) -> tuple[Any, bool]:
    """A JSON body decoded once, and whether some object in it names a key twice (the
    value then as json.loads gives it: the last one wins). The API parses every write's
    body this way, so its field validation need not parse it a second time to ask."""
    try:
        return json.loads(raw, object_pairs_hook=_no_repeats), False
    except _Repeated:
        return json.loads(raw), True


def _pairs(raw: bytes | str) -> Any:
    return json.loads(raw, object_pairs_hook=_Pairs)


# ---- the walk --------------------------------------------------------------------------
class _Errors(list):
    """Strict decoding errors in the order met, each once, at most 100."""

    def add(self, kind: str, path: str) -> None:
        e = f"{kind} {go_quote(path)}"
        if len(self) < _MAX_ERRORS and e not in self:
            self.append(e)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, node: Node | None, path: str, out: _Errors | None, ordered: bool,
          prune: bool) -> None:
    """The errors Go's strict decoder meets decoding `value` into `node`'s type (into `out`,
    unless None), and with `prune` the unknown fields dropped as decoding into Go structs
    drops them. A value is a dict (unique keys), a _Pairs (repeats kept) or a list. Hot:
    every write walks its object (~25 us for a pod)."""
    if node is None:
        return
    t = type(value)
    if t is list:
        if node.type == "array":
            item = node.items
            for i, v in enumerate(value):
                if type(v) in _CONTAINERS:
                    _walk(v, item, f"{path}[{i}]" if out is not None else "", out, ordered, prune)
        return
    if t is dict:
        items = sorted(value.items()) if ordered else value.items()
    elif t is _Pairs:
        items = value
    else:
        return
    if node.is_struct:  # known names only
        fields = node.fields
        unknown = None
        seen: set[str] | None = set() if out is not None else None
        for k, v in items:
            sub = fields.get(k)
            if sub is None:
                if unknown is None:
                    unknown = [k]
                else:
                    unknown.append(k)
                if out is not None:
                    out.add("unknown field", _join(path, k))
                continue
            if seen is not None:
                if k in seen:
                    out.add("duplicate field", _join(path, k))
                seen.add(k)
            if type(v) in _CONTAINERS:
                _walk(v, sub, _join(path, k) if out is not None else "", out, ordered, prune)
        if prune and unknown and t is dict:
            for k in unknown:
                del value[k]
    elif node.is_map:  # any key, each once
        item = node.items
        seen = set()
        for k, v in items:
            if out is not None:
                if k in seen:
                    out.add("duplicate field", _join(path, k))
                seen.add(k)
            if type(v) in _CONTAINERS:
                _walk(v, item, _join(path, k) if out is not None else "", out, ordered, prune)
    # anything else: free-form (RawExtension, FieldsV1: raw bytes, no checks) or a type error


_CONTAINERS = frozenset((dict, list, _Pairs))


def _has_unknown(value: Any, node: Node | None) -> bool:
    """Whether decoding `value` (dicts and lists, no repeats) into `node`'s type meets a
    field the type does not have: _walk's question without its paths, for the clean
    object nearly every write is."""
    if node is None:
        return False
    t = type(value)
    if t is list:
        if node.type == "array":
            item = node.items
            return any(type(v) in _CONTAINERS and _has_unknown(v, item) for v in value)
        return False
    if t is _Pairs:
        return True  # repeats kept: the full walk answers
    if t is not dict:
        return False
    if node.is_struct:
        fields = node.fields
        for k, v in value.items():
            sub = fields.get(k)
            if sub is None:
                return True
            if type(v) in _CONTAINERS and _has_unknown(v, sub):
                return True
    elif node.is_map:
        item = node.items
        return any(type(v) in _CONTAINERS and _has_unknown(v, item) for v in value.values())
    return False


def _free_repeats(value: Any, path: str, out: _Errors) -> None:
    """Repeated keys in a map[string]any (a merge or strategic patch, an apply body)."""
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for k, v in value:
            if k in seen:
                out.add("duplicate field", _join(path, k))
            seen.add(k)
            _free_repeats(v, _join(path, k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _free_repeats(v, f"{path}[{i}]", out)


def errors_for(obj: Any, api_version: str, kind: str, raw: bytes | str | None = None,
               ordered: bool = False, prune: bool = False, repeats: bool | None = None
               ) -> list[str]:
    """The strict decoding errors of `obj` as `kind` (none for a kind without a schema here,
    such as an old version netsim converts). `raw`: the JSON text it was parsed from, for
    repeated keys (`repeats`: whether it has some, when the caller knows already).
    `ordered`: walk keys sorted (a patched object, as Go re-encodes it). `prune`: drop the
    unknown fields from `obj`, as the apiserver's decoding does."""
    node = schema.resolve(api_version, kind)
    if node is None:
        return []
    if raw is not None and repeats is None:
        repeats = has_repeated_keys(raw)
    if not (raw is not None and repeats) and not _has_unknown(obj, node):
        return []  # the common case, told without building a path for every field
    out = _Errors()
    if raw is not None and repeats:
        _walk(_pairs(raw), node, "", out, ordered, False)
        if prune:
            _walk(obj, node, "", None, ordered, True)
    else:
        _walk(obj, node, "", out, ordered, prune)
    return out


def prune(obj: dict) -> None:
    """Drop the fields `obj`'s schema does not know (what Go structs drop when they decode)."""
    node = schema.resolve(obj.get("apiVersion") or "", obj.get("kind") or "")
    if node is not None:
        _walk(obj, node, "", None, False, True)


def warning_headers(warnings: list[str]) -> bytes:
    """`Warning: 299 - "<text>"` lines (net/http's NewWarningHeader quoting)."""
    return b"".join(b"Warning: 299 - %s\r\n" % go_quote(w).encode() for w in warnings)


def _strict(errs: list[str]) -> str:
    return "strict decoding error: " + ", ".join(errs)


# ---- POST / PUT ------------------------------------------------------------------------
def check_body(raw: bytes, headers: Any, obj: dict, url_kind: str, directive_: str,
               repeats: bool | None = None) -> bytes:
    """A create or update body: raises for Strict (the apiserver's decode error), returns
    the Warning header lines for Warn (b"" when clean or Ignore). `headers`: the request's
    (its Content-Type says whether `raw` is the JSON `obj` came from); `repeats`: whether
    `raw` names a key twice in some object, when its parse told (parse_noting_repeats)."""
    if directive_ == IGNORE:
        prune(obj)
        return b""
    content_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    api, kind = obj.get("apiVersion") or "", obj.get("kind") or url_kind
    errs = errors_for(obj, api, kind, raw if content_type in _JSON_TYPES else None,
                      prune=directive_ == WARN, repeats=repeats)
    if not errs:
        return b""
    if directive_ == STRICT:
        raise errors.BadRequest(f'{kind} in version "{api.rsplit("/", 1)[-1]}" cannot be '
                                f"handled as a {url_kind}: {_strict(errs)}")
    return warning_headers(errs)


# ---- PATCH -----------------------------------------------------------------------------
def _go_v(v: Any) -> str:
    """fmt's %+v of a decoded JSON value (map keys sorted)."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_v(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _go_float(v)
    return str(v)


def _go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64): shortest digits, exponent form below 1e-4 and
    from 1e21 (two exponent digits at least)."""
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    d = Decimal(repr(f)).normalize()
    exp = d.adjusted()
    if exp < -4 or exp >= 21:
        sign, digits, _ = d.as_tuple()
        m = "".join(map(str, digits))
        m = m[0] + ("." + m[1:] if len(m) > 1 else "")
        return f"{'-' if sign else ''}{m}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return format(d, "f")


def _go_json(v: Any) -> str:
    """json.Marshal of a map: keys sorted, compact, <>& escaped."""
    s = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _patch_invalid(shown: str, errs: list[str]) -> errors.Invalid:
    """errors.NewInvalid(schema.GroupKind{}, "", field.Invalid("patch", shown, ...))."""
    cause = f"Invalid value: {go_quote(shown)}: {_strict(errs)}"
    return errors.Invalid(f' "" is invalid: patch: {cause}', details={
        "causes": [{"reason": "FieldValueInvalid", "message": cause, "field": "patch"}]})


def patch_repeats(raw: bytes, content_type: str) -> list[str]:
    """The patch body's own strict errors (decoded into map[string]any, or []jsonPatchOp)."""
    try:
        if not has_repeated_keys(raw) and content_type != JSON_PATCH:
            return []
        doc = _pairs(raw)
    except ValueError:  # not JSON: the patch itself reports that
        return []
    out = _Errors()
    if content_type == JSON_PATCH:
        if isinstance(doc, list):
            for i, op in enumerate(doc):
                if isinstance(op, _Pairs):
                    seen: set[str] = set()
                    for k, v in op:
                        p = f"[{i}].{k}"
                        if k not in _JSON_PATCH_OP:
                            out.add("unknown field", p)
                            continue
                        if k in seen:
                            out.add("duplicate field", p)
                        seen.add(k)
                        _free_repeats(v, p, out)
        return ["json patch " + e for e in out]
    _free_repeats(doc, "", out)
    return list(out)


def checked(fn: Callable[[dict], dict] | dict, raw: bytes, content_type: str, directive_: str,
            warnings: list[str]) -> Callable[[dict], dict] | dict:
    """Wrap a patch (a function current object -> patched, or a merge patch's dict) with the
    strict checks of its type; a Strict failure raises inside the store's patch, so nothing
    is stored. Warn fills `warnings` (send them with warning_headers)."""
    if not callable(fn):
        from netsim.api.store import merge_patch
        merge, fn = fn, lambda cur: merge_patch(cur, merge)
    if directive_ == IGNORE and content_type != APPLY:
        def ignore(cur: dict) -> dict:
            new = fn(cur)
            prune(new)
            return new
        return ignore
    own = patch_repeats(raw, content_type) if directive_ != IGNORE else []
    if content_type == APPLY:
        def apply(cur: dict) -> dict:
            body = _apply_body(raw)
            if isinstance(body, dict):
                typed = typed_patch_errors(body, body.get("apiVersion") or cur.get("apiVersion")
                                           or "", body.get("kind") or cur.get("kind") or "")
                if typed:
                    raise errors.ApiError(typed, code=500, reason="")
            repeats = _yaml_repeats(raw) if directive_ != IGNORE else None
            if repeats and directive_ == STRICT:
                raise errors.BadRequest("error strict decoding patch: " + repeats)
            warnings[:] = [repeats] if repeats else []
            return fn(cur)
        return apply

    def run(cur: dict) -> dict:
        new = fn(cur)
        errs = own + errors_for(new, new.get("apiVersion") or cur.get("apiVersion") or "",
                                new.get("kind") or cur.get("kind") or "", ordered=True,
                                prune=directive_ == WARN)
        if errs and directive_ == STRICT:
            if content_type == STRATEGIC:
                try:
                    shown = _go_v(json.loads(raw))
                except ValueError:
                    shown = raw.decode("utf-8", "replace")
            else:
                shown = _go_json(new)
            raise _patch_invalid(shown, errs)
        warnings[:] = errs  # a retried patch reports its last attempt only
        return new
    return run


def checked_create(make: Callable[[], dict | None], raw: bytes, content_type: str,
                   directive_: str, warnings: list[str]) -> dict | None:
    """An apply to a missing object (a create, upstream's createNewObject): the same body
    checks as `checked`, then `make()` builds the object."""
    if content_type != APPLY:
        return make()
    return checked(lambda _cur: make(), raw, content_type, directive_, warnings)({})


# ---- server-side apply's typed conversion ------------------------------------------------
def _smd_key(item: Any, keys: tuple[str, ...]) -> str:
    parts = []
    for k in keys:
        if isinstance(item, dict) and k in item:
            v = item[k]
            parts.append(f"{k}={json.dumps(v) if isinstance(v, str) else _go_v(v)}")
    return "[" + ",".join(parts) + "]"


def _smd_walk(value: Any, node: Node | None, path: str, out: list[str]) -> None:
    if node is None or node.preserve_unknown or not isinstance(value, (dict, list)):
        return
    if isinstance(value, list):
        if node.type != "array":
            return
        info, item = node.list, node.items
        for i, v in enumerate(value):
            if info.list_type == "map" and info.map_keys:
                elem = _smd_key(v, info.map_keys)
            elif info.list_type == "set":
                elem = f"[={json.dumps(v)}]"
            else:
                elem = f"[{i}]"
            _smd_walk(v, item, path + elem, out)
        return
    if node.type != "object":
        return
    if node.is_struct:
        for k, v in sorted(value.items()):
            sub = node.fields.get(k)
            if sub is None:
                out.append(f"{path}.{k}: field not declared in schema")
            else:
                _smd_walk(v, sub, f"{path}.{k}", out)
        return
    if node.is_map:
        for k, v in sorted(value.items()):
            _smd_walk(v, node.items, f"{path}.{k}", out)


def typed_patch_errors(obj: Any, api_version: str, kind: str) -> str | None:
    """Server-side apply's refusal of fields the schema lacks, whatever fieldValidation says
    (structured-merge-diff's typed conversion): `failed to create typed patch object
    (default/web; apps/v1, Kind=Deployment): .spec.replicass: field not declared in schema`,
    None when every field is known. The apiserver answers it as a 500 with that message."""
    node = schema.resolve(api_version, kind)
    if node is None or not isinstance(obj, dict):
        return None
    out: list[str] = []
    _smd_walk(obj, node, "", out)
    if not out:
        return None
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    group, _, version = api_version.rpartition("/")
    detail = out[0] if len(out) == 1 else "errors:\n" + "\n".join("  " + e for e in out)
    return (f"failed to create typed patch object ({md.get('namespace') or ''}/"
            f"{md.get('name') or ''}; {group}/{version}, Kind={kind}): {detail}")


def _yaml_repeats(raw: bytes) -> str | None:
    """An apply body's repeated keys as sigs.k8s.io/yaml's strict decoding words them
    (go-yaml: one line per repeat, with the line it is on)."""
    try:
        json.loads(raw, object_pairs_hook=_no_repeats)
        return None
    except _Repeated:
        pass
    except ValueError:  # YAML, not JSON: go look
        pass
    import yaml
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    lines: list[tuple[int, str]] = []
    stack = [root]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: set = set()
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        lines.append((k.start_mark.line, f"  line {k.start_mark.line + 1}: key "
                                                         f"{go_quote(k.value)} already set in map"))
                    seen.add(k.value)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    if not lines:
        return None
    return ("error converting YAML to JSON: yaml: unmarshal errors:\n"
            + "\n".join(t for _, t in sorted(lines)))


def _apply_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        try:
            import yaml
            return yaml.safe_load(raw)
        except Exception:  # the apply itself reports a bad body
            return None


__all__ = ["STRICT", "WARN", "IGNORE", "directive", "errors_for", "check_body", "checked",
           "checked_create", "patch_repeats", "prune", "warning_headers", "typed_patch_errors",
           "has_repeated_keys"]
