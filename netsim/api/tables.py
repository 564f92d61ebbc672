"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`.

kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints the
columns the server sends (priority 0; 1 only with `-o wide`), adding NAMESPACE (`-A`),
LABELS (`--show-labels`) and `-L` columns from each row's PartialObjectMetadata. The
columns and cells are netsim.api.printing.printers' (one definition for `netsim get` and kubectl),
so both print the same bytes for the same objects.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import datetime, timedelta, timezone

from netsim.api.printing import printers
from netsim.api.timeutil import parse_rfc3339

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
# The default table convertor's columns for a kind with no printer (upstream prints
# Name and Created At; AGE is what netsim's CLI prints for those).
_FALLBACK = [("NAME", False), ("AGE", False)]


def wants_table(accept: str | None) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table (v1 or v1beta1)."""
    if not accept or "as=Table" not in accept:
        return False
    for media in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in media.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


# Upstream's column names (pkg/printers/internalversion) that are not the printed header
# with each word capitalized; kubectl upper-cases a name when it prints it, so the header
# netsim's CLI prints is the name upper-cased, byte for byte.
_UPSTREAM_NAMES = {
    "IP": "IP", "UP-TO-DATE": "Up-to-date", "CLUSTER-IP": "Cluster-IP",
    "EXTERNAL-IP": "External-IP", "INTERNAL-IP": "Internal-IP", "PORT(S)": "Port(s)",
    "OS-IMAGE": "OS-Image", "KERNEL-VERSION": "Kernel-Version",
    "CONTAINER-RUNTIME": "Container-Runtime", "ADDRESSTYPE": "AddressType",
    "POD-SELECTOR": "Pod-Selector",
}


def _column_name(header: str) -> str:
    """The column's name as kube-apiserver sends it ("Name", "Nominated Node", ...)."""
    return _UPSTREAM_NAMES.get(header) or " ".join(w.capitalize() for w in header.split(" "))


def _definition(header: str, wide: bool) -> dict:
    d = {"name": _column_name(header), "type": "string", "format": "", "description": "",
         "priority": 1 if wide else 0}
    if header == "NAME":
        d["format"] = "name"
    return d


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def _fallback_row(obj: dict, now: datetime) -> list[str]:
    from netsim.api.printing.duration import age
    md = obj.get("metadata") or {}
    return [md.get("name", ""), age(md.get("creationTimestamp"), now)]


def table(plural: str, objs: list[dict], resource_version: str | None = None,
          now: datetime | None = None) -> dict:
    """The Table for `objs` of resource `plural` (a list or one object)."""
    now = now or datetime.now(timezone.utc)
    if printers.has_columns(plural):
        cols, fn = printers.columns(plural)
    else:
        cols, fn = _FALLBACK, _fallback_row
    meta: dict = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [_definition(h, w) for h, w in cols],
            "rows": [{"cells": fn(o, now), "object": _partial(o)} for o in objs]}


# ---- the fast path: rows cached per stored object version ------------------------------
# A stored object's JSON text -> [the decoded object, its PartialObjectMetadata as JSON, its
# cells as JSON, the first and last wall-clock second those cells hold for, the object's
# creation (epoch seconds, or None)]. The text is the key: the same text is the same object
# version (kind, uid and resourceVersion included), so a list decodes and encodes only the
# objects that changed since the last one, and prints the cells again only when the clock
# may have moved them (AGE, "(5m ago)": one second's resolution at the finest).
#
# An object older than ten minutes has ages that move by the minute or slower: its row is
# printed for now and for HORIZON seconds later, and when both agree it holds for the
# whole span (each age is a step function of the clock that never comes back to a string
# it left, so equal ends mean equal all along), so `kubectl get` every few seconds on a
# long-running cluster prints each row once in HORIZON seconds, not on every list.
HORIZON = 10
_OLD = 600
# Bounded by the bytes of the texts (the decoded objects take a few times that): 32 MB
# holds some ten thousand pods; past it the oldest tenth goes (insertion order).
_ROWS: dict[str, list] = {}
_ROWS_MAX_BYTES = 32 * 1024 * 1024
_rows_bytes = 0
_rows_lock = threading.Lock()


def _row_entry(text: str) -> list:
    global _rows_bytes
    e = _ROWS.get(text)
    if e is None:
        obj = json.loads(text)
        try:
            created = parse_rfc3339((obj.get("metadata") or {}).get("creationTimestamp"))
        except (ValueError, TypeError, AttributeError):  # a bad stamp: printed afresh
            created = None
        e = [obj, json.dumps(_partial(obj), separators=(",", ":")), None, None, None,
             created.timestamp() if created is not None else None]
        if len(text) > _ROWS_MAX_BYTES // 100:
            return e  # a huge object is not worth keeping
        with _rows_lock:
            if _rows_bytes + len(text) > _ROWS_MAX_BYTES:
                for k in list(itertools.islice(_ROWS, max(1, len(_ROWS) // 10))):
                    if _ROWS.pop(k, None) is not None:
                        _rows_bytes -= len(k)
            if text not in _ROWS:
                _ROWS[text] = e
                _rows_bytes += len(text)
    return e


def table_bytes(plural: str, texts: list[str], resource_version: str | None = None,
                now: datetime | None = None, extra_meta: dict | None = None) -> bytes:
    """table() for stored JSON texts, encoded: the same bytes as
    json.dumps(table(plural, [json.loads(t) for t in texts], ...)), at a fraction of the
    cost for objects seen before. `extra_meta` adds list metadata (continue, ...)."""
    now = now or datetime.now(timezone.utc)
    sec = int(now.timestamp())
    if printers.has_columns(plural):
        cols, fn = printers.columns(plural)
    else:
        cols, fn = _FALLBACK, _fallback_row
    meta: dict = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    if extra_meta:
        meta.update(extra_meta)
    entries = [_row_entry(t) for t in texts]
    stale = [e for e in entries if e[3] is None or not e[3] <= sec <= e[4]]
    if stale:
        # one encoder call for every row printed afresh, cut at the markers between the
        # rows' cells (the marker's quotes are bare: no JSON string can hold them)
        items: list = []
        until = []
        later = now + timedelta(seconds=HORIZON)
        for e in stale:
            cells = fn(e[0], now)
            old = e[5] is not None and sec - e[5] >= _OLD
            until.append(sec + HORIZON if old and fn(e[0], later) == cells else sec)
            items += (cells, "\x01")
        enc = json.dumps(items[:-1], separators=(",", ":"))[2:-2]
        for e, cells, last in zip(stale, enc.split('],"\\u0001",['), until, strict=True):
            e[2], e[3], e[4] = cells, sec, last
    rows = ['{"cells":[' + e[2] + '],"object":' + e[1] + "}" for e in entries]
    head = json.dumps({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                       "columnDefinitions": [_definition(h, w) for h, w in cols]},
                      separators=(",", ":"))
    return (head[:-1] + ',"rows":[' + ",".join(rows) + "]}").encode()


def object_table(plural: str, text: str, now: datetime | None = None) -> bytes:
    """The Table of one stored object (a `get -w` event's object, a get of one name),
    its resourceVersion the object's."""
    md = _row_entry(text)[0].get("metadata") or {}
    return table_bytes(plural, [text], md.get("resourceVersion"), now)
