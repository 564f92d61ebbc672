"""ListOptions of a list or watch request, read and checked as kube-apiserver does.

labelSelector, fieldSelector (netsim.api.fieldselectors, the kind's own fields), limit and
continue (pages in the list's order; the token is upstream's shape: base64 of
{"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\\x00"}), resourceVersion,
resourceVersionMatch, watch, allowWatchBookmarks, sendInitialEvents and timeoutSeconds.
The combinations apimachinery's ValidateListOptions forbids are a 422 in its words.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from netsim.api import errors
from netsim.api import fieldselectors as fsel
from netsim.api.selectors import parse as parse_selector

_INT64 = re.compile(r"[+-]?[0-9]+")


@dataclass
class ListOptions:
    label_selector: str | None = None
    field_selector: str | None = None
    limit: int | None = None
    after: tuple[str, str] | None = None  # where a continued list resumes
    resource_version: int | None = None
    rv_match: str = ""
    watch: bool = False
    bookmarks: bool = False
    send_initial_events: bool | None = None
    timeout: int | None = None


def int_param(query: dict, key: str) -> int | None:
    """An int64 query parameter, parsed as Go's strconv.ParseInt does."""
    v = query.get(key)
    if v is None or v == "":
        return None
    if not _INT64.fullmatch(v):
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{v}": invalid syntax')
    n = int(v)
    if not -(1 << 63) <= n < (1 << 63):
        raise errors.BadRequest(f'strconv.ParseInt: parsing "{v}": value out of range')
    return n


def _bool(query: dict, key: str) -> bool | None:
    """None when absent; else anything but "0" / "false" is true (the apiserver's reading)."""
    v = query.get(key)
    if v is None:
        return None
    return v != "0" and v.lower() != "false"


def _rv(query: dict) -> int | None:
    v = query.get("resourceVersion")
    if v is None or v == "":
        return None
    if not (v.isascii() and v.isdigit()) or int(v) >= 1 << 64:
        why = "value out of range" if v.isascii() and v.isdigit() else "invalid syntax"
        raise errors.BadRequest(f'resourceVersion: Invalid value: "{v}": strconv.ParseUint: '
                                f'parsing "{v}": {why}')
    return int(v)


def encode_continue(rv: int, after: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{after[0]}/{after[1]}\x00"}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()
                                    ).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError("server does not recognize this encoded key")
        start = str(data.get("start") or "").rstrip("\x00")
        ns, _, name = start.rpartition("/")
        return int(data.get("rv") or 0), (ns, name)
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError) as e:
        why = e if isinstance(e, ValueError) and "encoded key" in str(e) else \
            "continue key is not valid: illegal base64 data"
        raise errors.BadRequest(f"invalid continue token: {why}") from None


def parse(query: dict, plural: str) -> ListOptions:
    """The request's ListOptions (400 for a bad value, 422 for a forbidden mix)."""
    o = ListOptions()
    o.label_selector = query.get("labelSelector") or None
    if o.label_selector:
        try:
            parse_selector(o.label_selector)
        except ValueError as e:
            raise errors.BadRequest(str(e)) from e
    o.field_selector = query.get("fieldSelector") or None
    fsel.requirements(o.field_selector, plural)  # BadRequest in the conversion's words
    o.limit = int_param(query, "limit")
    o.resource_version = _rv(query)
    o.rv_match = query.get("resourceVersionMatch") or ""
    o.watch = bool(_bool(query, "watch"))
    o.bookmarks = bool(_bool(query, "allowWatchBookmarks"))
    o.send_initial_events = _bool(query, "sendInitialEvents")
    o.timeout = int_param(query, "timeoutSeconds")
    cont = query.get("continue") or ""
    _validate(o, query, cont)
    if cont and not o.watch:
        _, o.after = decode_continue(cont)
    return o


def _validate(o: ListOptions, query: dict, cont: str) -> None:
    """apimachinery's ValidateListOptions (the WatchList feature on, as in 1.34+)."""
    errs: list[str] = []
    rvm = "resourceVersionMatch"
    if o.watch:
        if o.send_initial_events is not None and o.rv_match != "NotOlderThan":
            errs.append(f"{rvm}: Forbidden: sendInitialEvents requires setting "
                        f"{rvm} to NotOlderThan")
        if o.rv_match:
            if o.send_initial_events is None:
                errs.append(f"{rvm}: Forbidden: {rvm} is forbidden for watch unless "
                            "sendInitialEvents is provided")
            if o.rv_match != "NotOlderThan":
                errs.append(f'{rvm}: Unsupported value: "{o.rv_match}": supported values: '
                            '"NotOlderThan"')
            if cont:
                errs.append(f"{rvm}: Forbidden: {rvm} is forbidden when continue is provided")
    else:
        if o.rv_match:
            if query.get("resourceVersion") in (None, ""):
                errs.append(f"{rvm}: Forbidden: {rvm} is forbidden unless resourceVersion is "
                            "provided")
            if cont:
                errs.append(f"{rvm}: Forbidden: {rvm} is forbidden when continue is provided")
            if o.rv_match not in ("Exact", "NotOlderThan"):
                errs.append(f'{rvm}: Unsupported value: "{o.rv_match}": supported values: '
                            '"Exact", "NotOlderThan", ""')
            if o.rv_match == "Exact" and query.get("resourceVersion") == "0":
                errs.append(f'{rvm}: Forbidden: {rvm} "exact" is forbidden for '
                            'resourceVersion "0"')
        if o.send_initial_events is not None:
            errs.append("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")
    if errs:
        agg = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        raise errors.Invalid(f'ListOptions.meta.k8s.io "" is invalid: {agg}')
