"""Label selectors: kubectl's `-l` string form and the API's matchLabels/matchExpressions form."""

from __future__ import annotations

import re
from collections.abc import Callable

Matcher = Callable[[dict], bool]

_SET_RE = re.compile(r"\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse(selector: str | None) -> Matcher:
    """Compile `app=x,tier!=db,env in (a,b),!legacy` into a predicate over a labels dict."""
    if not selector or not selector.strip():
        return lambda labels: True
    tests: list[Matcher] = []
    for raw in _split_top(selector):
        term = raw.strip()
        m = _SET_RE.fullmatch(term)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(lambda lb, k=key, v=vals: lb.get(k) in v)
            else:
                tests.append(lambda lb, k=key, v=vals: lb.get(k) not in v)
        elif "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda lb, k=k, v=v: lb.get(k) != v)
        elif "==" in term or "=" in term:
            k, v = (s.strip() for s in re.split("==?", term, maxsplit=1))
            tests.append(lambda lb, k=k, v=v: lb.get(k) == v)
        elif term.startswith("!"):
            neg = term[1:].strip()
            tests.append(lambda lb, k=neg: k not in lb)
        else:
            if not re.fullmatch(r"[A-Za-z0-9._/-]+", term):
                raise ValueError(f"unable to parse requirement: {term}")
            tests.append(lambda lb, k=term: k in lb)
    return lambda labels: all(t(labels or {}) for t in tests)


def from_label_selector(sel: dict | None) -> Matcher:
    """Compile a LabelSelector (`matchLabels` + `matchExpressions`). None matches nothing,
    an empty selector matches everything, as in the API."""
    if sel is None:
        return lambda labels: False
    if not sel.get("matchExpressions"):  # the usual selector: one closure, no test list
        wanted = dict(sel.get("matchLabels") or {})
        if all(isinstance(v, str) for v in wanted.values()):
            # a subset test of the label pairs, in C (a missing label never equals a string)
            pairs = wanted.items()
            return lambda labels: pairs <= (labels or {}).items()
        items = tuple(wanted.items())
        return lambda labels: all((labels or {}).get(k) == v for k, v in items)
    tests: list[Matcher] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        tests.append(lambda lb, k=k, v=v: lb.get(k) == v)
    for expr in sel.get("matchExpressions") or []:
        k, op, vals = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In":
            tests.append(lambda lb, k=k, v=vals: lb.get(k) in v)
        elif op == "NotIn":
            tests.append(lambda lb, k=k, v=vals: lb.get(k) not in v)
        elif op == "Exists":
            tests.append(lambda lb, k=k: k in lb)
        elif op == "DoesNotExist":
            tests.append(lambda lb, k=k: k not in lb)
    return lambda labels: all(t(labels or {}) for t in tests)


def from_map(sel: dict | None) -> Matcher:
    """A Service-style selector (plain map). An empty/absent map selects nothing."""
    if not sel:
        return lambda labels: False
    return lambda labels: all((labels or {}).get(k) == v for k, v in sel.items())


def to_string(sel: dict | None) -> str:
    """``LabelSelectorAsSelector(sel).String()``: requirements sorted by key, "" if empty
    (what kubectl prints for a Deployment's selector, and what `-l` reads back)."""
    if not sel:
        return ""
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in sel.get("matchExpressions") or []:
        key = expr.get("key", "")
        op = expr.get("operator", "")
        values = sorted(expr.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r[1] for r in reqs)
