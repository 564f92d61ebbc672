"""`create poddisruptionbudget|pdb NAME --selector=... --min-available=N|N%
--max-unavailable=N|N%`: kubectl's pkg/cmd/create/create_pdb.go."""

from __future__ import annotations

import re

from netsim.api.selectors import _SET_RE, _split_top
from netsim.cli.context import CliError, Ctx
from netsim.cli.pflags import Parsed


def parse_to_label_selector(text: str) -> dict:
    """metav1.ParseToLabelSelector: `k=v` into matchLabels, the rest as matchExpressions
    (`!=` a NotIn of one value), requirements sorted by key as labels.Parse sorts them."""
    labels: dict[str, str] = {}
    exprs: list[tuple[str, dict]] = []
    for raw in _split_top(text):
        term = raw.strip()
        if not term:
            continue
        m = _SET_RE.fullmatch(term)
        if m:
            op = "In" if m.group(2) == "in" else "NotIn"
            vals = sorted({v.strip() for v in m.group(3).split(",") if v.strip()})
            exprs.append((m.group(1), {"key": m.group(1), "operator": op, "values": vals}))
        elif "!=" in term:
            k, val = (s.strip() for s in term.split("!=", 1))
            exprs.append((k, {"key": k, "operator": "NotIn", "values": [val]}))
        elif "=" in term:
            k, val = (s.strip() for s in re.split("==?", term, maxsplit=1))
            labels[k] = val
        elif term.startswith("!"):
            k = term[1:].strip()
            exprs.append((k, {"key": k, "operator": "DoesNotExist"}))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", term):
            exprs.append((term, {"key": term, "operator": "Exists"}))
        else:
            raise CliError(f"error: unable to parse requirement: {term}")
    sel: dict = {}
    if labels:
        sel["matchLabels"] = labels
    if exprs:
        sel["matchExpressions"] = [e for _, e in sorted(exprs, key=lambda x: x[0])]
    return sel


def _intstr(value: str):
    """intstr.Parse: a number is an int, anything else a string."""
    return int(value) if value.isdigit() else value


def build_pdb(ctx: Ctx, name: str, p: Parsed) -> dict:
    from netsim.cli.create_cmds import _namespace_md
    selector = p.get("selector") or ""
    lo, hi = p.get("min-available") or "", p.get("max-unavailable") or ""
    if not selector:
        raise CliError("error: a selector must be specified")
    if not lo and not hi:
        raise CliError("error: one of min-available or max-unavailable must be specified")
    if lo and hi:
        raise CliError("error: min-available and max-unavailable cannot be both specified")
    if lo and not re.fullmatch(r"[0-9]+%?", lo):
        raise CliError("error: invalid format specified for min-available")
    if hi and not re.fullmatch(r"[0-9]+%?", hi):
        raise CliError("error: invalid format specified for max-unavailable")
    spec: dict = {}
    if lo:
        spec["minAvailable"] = _intstr(lo)
    else:
        spec["maxUnavailable"] = _intstr(hi)
    spec["selector"] = parse_to_label_selector(selector)
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _namespace_md(ctx, {"name": name}), "spec": spec,
            "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0,
                       "expectedPods": 0}}
