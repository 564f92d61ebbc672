"""kubectl's `-o jsonpath=` templates (k8s.io/client-go/util/jsonpath), the parts people use.

A template is text with actions in braces: `{.items[*].metadata.name}`, `{"\\n"}`,
`{range .items[*]}{.metadata.name}{"\\n"}{end}`. Text outside braces is printed as it is
(so `'{.metadata.name}'` with the quotes kept prints the quotes, as kubectl does). Several
results of one action are joined by a space; strings print raw, maps and lists as compact
JSON. Missing keys print nothing (kubectl get's --allow-missing-template-keys=true).
Supported in paths: `.field` (with `\\.` inside a name), `['field']`, `[n]`, `[a:b]`, `[*]`,
`..field` (recursive descent) and `[?(@.path == "value")]` (also `!=`, `<`, `>`, ...).
"""

from __future__ import annotations

import json
import operator
import re

_OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge,
        "<": operator.lt, ">": operator.gt}
_FILTER = re.compile(r"\?\(\s*@((?:\.[^\s=!<>]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)")


class JsonPathError(ValueError):
    """A template kubectl would not parse (its message is `error parsing jsonpath ...`)."""


def _split_actions(template: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)]: braces open actions; a quoted string inside one may
    hold braces."""
    parts, i, n = [], 0, len(template)
    while i < n:
        j = template.find("{", i)
        if j < 0:
            parts.append(("text", template[i:]))
            break
        if j > i:
            parts.append(("text", template[i:j]))
        k, quote = j + 1, None
        while k < n and (quote or template[k] != "}"):
            c = template[k]
            if quote and c == "\\":
                k += 1
            elif c in "\"'" and (quote is None or quote == c):
                quote = None if quote else c
            k += 1
        if k >= n:
            raise JsonPathError(f"error parsing jsonpath {template}, unclosed action")
        parts.append(("action", template[j + 1:k].strip()))
        i = k + 1
    return parts


def _steps(path: str) -> list[tuple[str, object]]:
    """`.a.b[0][*]..c` -> [("key", "a"), ("key", "b"), ("index", 0), ("all", None), ...]."""
    steps: list[tuple[str, object]] = []
    i, n = 0, len(path)
    if path.startswith("$"):
        i = 1
    elif path.startswith("@"):
        i = 1
    while i < n:
        c = path[i]
        if path.startswith("..", i):
            steps.append(("descend", None))
            i += 1
            continue
        if c == ".":
            i += 1
            continue
        if c == "[":
            depth, k = 0, i
            while k < n:
                if path[k] == "[":
                    depth += 1
                elif path[k] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            if k >= n:
                raise JsonPathError(f"error parsing jsonpath {{{path}}}, unterminated array")
            steps.append(_bracket(path[i + 1:k].strip(), path))
            i = k + 1
            continue
        name, k = [], i
        while k < n and path[k] not in ".[":
            if path[k] == "\\" and k + 1 < n:
                k += 1
            name.append(path[k])
            k += 1
        steps.append(("key", "".join(name)))
        i = k
    return steps


def _bracket(inner: str, path: str) -> tuple[str, object]:
    if inner == "*":
        return ("all", None)
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
        return ("key", inner[1:-1])
    m = _FILTER.fullmatch(inner)
    if m:
        return ("filter", (_steps(m.group(1) or ""), m.group(2), _literal(m.group(3))))
    if re.fullmatch(r"-?\d*:-?\d*(:-?\d+)?", inner):
        a, b, *st = (int(x) if x else None for x in inner.split(":"))
        return ("slice", slice(a, b, st[0] if st else None))
    if re.fullmatch(r"-?\d+", inner):
        return ("index", int(inner))
    raise JsonPathError(f"error parsing jsonpath {{{path}}}, invalid array index {inner}")


def _literal(text: str | None):
    if text is None:
        return None
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _walk(values: list, steps: list[tuple[str, object]]) -> list:
    for kind, arg in steps:
        nxt: list = []
        for v in values:
            if kind == "key":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "all":
                nxt.extend(v if isinstance(v, list) else v.values() if isinstance(v, dict) else [])
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "slice":
                if isinstance(v, list):
                    nxt.extend(v[arg])
            elif kind == "descend":
                nxt.extend(_descendants(v))
            elif kind == "filter" and isinstance(v, list):
                sub, op, want = arg
                for item in v:
                    got = _walk([item], sub)
                    if op is None and got or op and got and _compare(got[0], op, want):
                        nxt.append(item)
        values = nxt
    return values


def _compare(got, op: str, want) -> bool:
    try:
        return bool(_OPS[op](got, want))
    except TypeError:
        return False


def _descendants(v) -> list:
    out = [v]
    children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else []
    for c in children:
        out.extend(_descendants(c))
    return out


def _text(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _action_values(action: str, data) -> tuple[bool, list]:
    """(is a string literal, values)."""
    if len(action) >= 2 and action[0] == action[-1] and action[0] in "\"'":
        try:
            return True, [json.loads('"' + action[1:-1].replace('"', '\\"') + '"')
                          if action[0] == "'" else json.loads(action)]
        except ValueError:
            return True, [action[1:-1]]
    return False, _walk([data], _steps(action))


def render(template: str, data) -> str:
    """What `kubectl get -o jsonpath=<template>` prints for `data` (no newline added)."""
    parts = _split_actions(template)
    out, _ = _render(parts, 0, data, template)
    return out


def _render(parts: list[tuple[str, str]], i: int, data, template: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(parts):
        kind, s = parts[i]
        if kind == "text":
            out.append(s)
            i += 1
            continue
        if s == "end":
            return "".join(out), i + 1
        if s.startswith("range ") or s == "range":
            items = _walk([data], _steps(s[5:].strip()))
            body_end = _skip_range(parts, i + 1, template)
            for item in items:
                text, _ = _render(parts[:body_end], i + 1, item, template)
                out.append(text)
            i = body_end
            continue
        _, values = _action_values(s, data)
        out.append(" ".join(_text(v) for v in values))
        i += 1
    return "".join(out), i


def _skip_range(parts: list[tuple[str, str]], i: int, template: str) -> int:
    """The index just past the `{end}` closing the range whose body starts at `i`."""
    depth = 1
    while i < len(parts):
        kind, s = parts[i]
        if kind == "action" and (s.startswith("range ") or s == "range"):
            depth += 1
        elif kind == "action" and s == "end":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise JsonPathError(f"error parsing jsonpath {template}, unclosed range")
