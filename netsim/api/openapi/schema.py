"""The schema of every kind netsim serves, from upstream's OpenAPI v3 documents (compacted by
netsim/api/openapi/generate.py into schemas.json.gz, kubectl-validate's 1.35 copy of
kube-apiserver's /openapi/v3): field names, types, the $ref graph and the extensions that
decide how objects merge and validate. STABLE INTERFACE, used by field validation, the
/openapi/v3 documents, strategic merge patch and server-side apply; keep these names and
meanings: `resolve(api_version, kind)` gives the Node of a kind's top object (None when
unknown); `child(node, field)` the Node of an object's field (None when the object has no
such field, or takes any field: check `accepts_any`); `items(node)` an array's items or a
map's values; `is_map(node)` / `is_list(node)`; `list_info(node)` the ListInfo of a field
(`list_type` "atomic"|"set"|"map"|None from x-kubernetes-list-type, `map_keys` from
x-kubernetes-list-map-keys, `patch_strategy` e.g. "merge" or "merge,retainKeys" and
`patch_merge_key` from x-kubernetes-patch-*). Nodes are shared and immutable: never change
one. A field whose schema is a $ref plus its own extensions (DeploymentSpec.strategy with
patch strategy retainKeys) gets a Node of its own carrying both.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas.json.gz")
_PREFIX = "#/components/schemas/"


@dataclass(frozen=True)
class ListInfo:
    """How a field merges: upstream's x-kubernetes-list-* and x-kubernetes-patch-* values."""

    list_type: str | None = None          # "atomic" | "set" | "map" | None
    map_keys: tuple[str, ...] = ()        # x-kubernetes-list-map-keys
    patch_strategy: str | None = None     # "merge", "merge,retainKeys", "replace", "retainKeys"
    patch_merge_key: str | None = None    # x-kubernetes-patch-merge-key


_NO_LIST_INFO = ListInfo()


class Node:
    """One schema: a struct (named fields), a map (`additionalProperties`), an array, a
    scalar, or anything (RawExtension, FieldsV1, x-kubernetes-preserve-unknown-fields).
    Fields and items are resolved on first use."""

    __slots__ = ("name", "raw", "type", "format", "description", "map_type", "int_or_string",
                 "preserve_unknown", "is_map", "is_struct", "list", "required", "_base", "_fields", "_items")

    def __init__(self, raw: dict, name: str | None = None, base: Node | None = None) -> None:
        self.name = name
        self.raw = raw
        self._base = base              # set for a $ref field with extensions of its own
        src = base.raw if base is not None else raw
        self.type: str | None = src.get("type")
        self.format: str | None = src.get("format")
        self.description: str = raw.get("description") or (base.description if base else "")
        self.map_type: str | None = raw.get("x-kubernetes-map-type") or (
            base.map_type if base else None)
        self.int_or_string = bool(src.get("x-kubernetes-int-or-string")
                                  or src.get("format") == "int-or-string")
        self.required: tuple[str, ...] = tuple(src.get("required") or ())
        self.preserve_unknown = bool(
            src.get("x-kubernetes-preserve-unknown-fields")
            or (self.type == "object" and "properties" not in src
                and "additionalProperties" not in src))
        # a map: free keys (additionalProperties); a struct: named fields only
        self.is_map = self.type == "object" and "additionalProperties" in src
        self.is_struct = self.type == "object" and not self.is_map and not self.preserve_unknown
        keys = raw.get("x-kubernetes-list-map-keys")
        info = ListInfo(raw.get("x-kubernetes-list-type"), tuple(keys) if keys else (),
                        raw.get("x-kubernetes-patch-strategy"),
                        raw.get("x-kubernetes-patch-merge-key"))
        self.list = _NO_LIST_INFO if info == _NO_LIST_INFO else info
        self._fields: dict[str, Node] | None = None
        self._items: Node | None | bool = False  # False: not resolved yet

    @property
    def fields(self) -> dict[str, Node]:
        """A struct's fields by JSON name ({} for anything else)."""
        if self._base is not None:
            return self._base.fields
        f = self._fields
        if f is None:
            f = {k: _node(v) for k, v in (self.raw.get("properties") or {}).items()}
            self._fields = f
        return f

    @property
    def items(self) -> Node | None:
        if self._base is not None:
            return self._base.items
        it = self._items
        if it is False:
            sub = self.raw.get("items") if self.type == "array" else \
                self.raw.get("additionalProperties")
            if sub is True:
                sub = {}
            it = _node(sub) if isinstance(sub, dict) else None
            self._items = it
        return it

    @property
    def accepts_any(self) -> bool:
        """True when any field is allowed here (nothing to check below)."""
        return self.preserve_unknown

    def __repr__(self) -> str:
        return f"<Node {self.name or self.type}>"


_lock = threading.Lock()
_loaded: dict[str, Any] = {}
_defs: dict[str, Node] = {}


def _data() -> dict:
    d = _loaded.get("data")
    if d is None:
        with _lock:
            d = _loaded.get("data")
            if d is None:
                with gzip.open(_DATA, "rt", encoding="utf-8") as f:
                    d = json.load(f)
                _loaded["data"] = d
    return d


def definition(name: str) -> Node | None:
    """The Node of a named schema (`io.k8s.api.apps.v1.Deployment`)."""
    n = _defs.get(name)
    if n is None:
        raw = _data()["schemas"].get(name)
        if raw is None:
            return None
        n = _defs.setdefault(name, Node(raw, name))
    return n


def _ref(schema: dict) -> str | None:
    ref = schema.get("$ref")
    if ref is None:
        all_of = schema.get("allOf")
        if all_of and len(all_of) == 1:
            ref = all_of[0].get("$ref")
    return ref[len(_PREFIX):] if isinstance(ref, str) and ref.startswith(_PREFIX) else None


def _node(schema: dict) -> Node:
    ref = _ref(schema)
    if ref is None:
        return Node(schema)
    base = definition(ref)
    if base is None:  # a dangling $ref: take anything
        return Node({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    if any(k.startswith("x-kubernetes-") for k in schema):
        return Node(schema, ref, base)
    return base


def resolve(api_version: str, kind: str) -> Node | None:
    """The schema of a kind's top object (`resolve("apps/v1", "Deployment")`). Only the
    exact version: an old one netsim converts (extensions/v1beta1 Ingress) has no schema
    here (its fields are not v1's), so it gives None."""
    name = (_data()["kinds"].get(api_version) or {}).get(kind)
    return definition(name) if name else None


def child(node: Node | None, field: str) -> Node | None:
    """The schema of `field` in a struct; None if it has no such field (or takes any)."""
    if node is None:
        return None
    return node.fields.get(field)


def items(node: Node | None) -> Node | None:
    """An array's item schema, or a map's value schema."""
    return node.items if node is not None else None


def is_map(node: Node | None) -> bool:
    """A map with free keys (labels, data, nodeSelector, resources.limits, ...)."""
    return node is not None and node.is_map


def is_list(node: Node | None) -> bool:
    return node is not None and node.type == "array"


def list_info(node: Node | None) -> ListInfo:
    """How a field merges (all None/() when the schema says nothing)."""
    return node.list if node is not None else _NO_LIST_INFO


def kinds() -> dict[str, dict[str, str]]:
    """{"apps/v1": {"Deployment": "io.k8s.api.apps.v1.Deployment", ...}, ...}."""
    return _data()["kinds"]


def raw_schemas() -> dict[str, dict]:
    """The upstream schemas by name, as upstream wrote them (do not modify)."""
    return _data()["schemas"]


def kubernetes_release() -> str:
    """The release the schemas were generated from (e.g. "1.35")."""
    return _data()["kubernetes"]


__all__ = ["ListInfo", "Node", "resolve", "child", "items", "is_map", "is_list", "list_info",
           "definition", "kinds", "raw_schemas", "kubernetes_release"]
