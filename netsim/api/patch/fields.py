"""Field sets as structured-merge-diff (sigs.k8s.io/structured-merge-diff) keeps them for
server-side apply: which fields of an object a manager owns, walked with the object's schema
so list items are named by their keys (`k:{"name":"web"}`), set items by value (`v:"x"`)
and atomic lists and maps are one leaf. A set is a Python set of paths; a path is a tuple of
path elements:

    ("f", "spec")                      a field or map key            f:spec
    ("k", (("name", '"web"'),))        an associative list item      k:{"name":"web"}
    ("v", '"x"')                       a set item                    v:"x"
    ("i", 3)                           an atomic list's index        i:3

Key and set values are kept as their compact JSON, as upstream serializes them. Only
members are stored (a path whose node was itself touched); FieldsV1 writes a member that
also has children as its "." entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from netsim.api.openapi import schema as openapi

Path = tuple
PathSet = set


def _j(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


# ---- the schema's view of a node ---------------------------------------------------------
def _list_kind(node: Any) -> tuple[str, tuple[str, ...]]:
    """("map", keys) | ("set", ()) | ("atomic", ()): how a list's items are told apart,
    as upstream's schema conversion decides (list-type, else a merge patch strategy)."""
    info = openapi.list_info(node)
    lt = info.list_type
    if lt == "map" and info.map_keys:
        return "map", info.map_keys
    if lt == "set":
        return "set", ()
    if lt == "atomic":
        return "atomic", ()
    if info.patch_strategy and "merge" in info.patch_strategy.split(","):
        if info.patch_merge_key:
            return "map", (info.patch_merge_key,)
        return "set", ()
    return "atomic", ()


def _is_struct(node: Any) -> bool:
    return node is not None and node.type == "object" and bool(node.fields)


def _atomic_map(node: Any) -> bool:
    return node is not None and node.map_type == "atomic"


def _sub(node: Any, key: str) -> Any:
    if node is None:
        return None
    if openapi.is_map(node):
        return openapi.items(node)
    return openapi.child(node, key)


def item_element(node: Any, item: Any, index: int) -> tuple:
    """The path element naming one list item."""
    kind, keys = _list_kind(node)
    if kind == "map" and isinstance(item, dict):
        out = []
        for k in keys:
            if k in item:
                out.append((k, _j(item[k])))
            else:  # a key left out counts as its schema default (ports' protocol: TCP)
                d = _key_default(node, k)
                if d is not None:
                    out.append((k, _j(d)))
        return ("k", tuple(sorted(out)))
    if kind == "set":
        return ("v", _j(item))
    return ("i", index)


def _key_default(node: Any, key: str) -> Any:
    sub = openapi.child(openapi.items(node), key)
    d = sub.raw.get("default") if sub is not None else None
    return None if d == "" else d  # "" is the generator's zero value, no real default


def _is_leaf(node: Any, value: Any) -> bool:
    if isinstance(value, dict):
        return _atomic_map(node)
    if isinstance(value, list):
        return node is None or _list_kind(node)[0] == "atomic"
    return True


# ---- ToFieldSet ----------------------------------------------------------------------------
def to_set(value: Any, node: Any, path: Path = ()) -> PathSet:
    """Every field `value` sets (typed.ToFieldSet)."""
    out: PathSet = set()
    _walk_set(value, node, path, out)
    return out


def _walk_set(value: Any, node: Any, path: Path, out: PathSet) -> None:
    if _is_leaf(node, value):
        if path:
            out.add(path)
        return
    if isinstance(value, dict):
        struct = _is_struct(node)
        for k, v in value.items():
            p = path + (("f", k),)
            sub = _sub(node, k)
            _walk_set(v, sub, p, out)
            if v is None or (isinstance(v, dict) and not v) or not struct or sub is None:
                out.add(p)
        return
    items = openapi.items(node)
    for i, item in enumerate(value):
        p = path + (item_element(node, item, i),)
        _walk_set(item, items, p, out)
        out.add(p)


# ---- the typed conversion's checks of an applied configuration ----------------------------
def problems(value: Any, node: Any, path: str = "") -> list[str]:
    """What ObjectToTyped refuses in an applied configuration: list items an associative
    list cannot name, and items named twice (typed.validate, in its words)."""
    out: list[str] = []
    _check(value, node, path, out)
    return out


def _check(value: Any, node: Any, path: str, out: list[str]) -> None:
    if _is_leaf(node, value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check(v, _sub(node, k), f"{path}.{k}", out)
        return
    kind, keys = _list_kind(node)
    items = openapi.items(node)
    seen: set = set()
    for i, item in enumerate(value):
        err = None
        if kind == "map":
            if item is None:
                err = "associative list with keys may not have a null element"
            elif not isinstance(item, dict):
                err = "associative list with keys may not have non-map elements"
            elif not item_element(node, item, i)[1]:
                err = (f"associative list with keys has an element that omits all key fields "
                       f"[{' '.join(json.dumps(k) for k in keys)}] (and doesn't have default "
                       "values for any key fields)")
        elif kind == "set":
            if isinstance(item, dict):
                err = "associative list without keys has an element that's a map type"
            elif isinstance(item, list):
                err = "not supported: associative list with lists as elements"
            elif item is None:
                err = "associative list without keys has an element that's an explicit null"
        if err:
            out.append(f"{path}: element {i}: {err}")
            return
        pe = item_element(node, item, i)
        if pe in seen:
            out.append(f"{path}: duplicate entries for key {path_string((pe,))}")
        seen.add(pe)
        _check(item, items, path + path_string((pe,)), out)


# ---- Merge (apply) ---------------------------------------------------------------------
def merge(live: Any, config: Any, node: Any) -> Any:
    """The applied configuration merged onto the live object (typed.Merge): maps and
    structs field by field, associative lists item by item, everything else replaced."""
    if live is None or config is None or _is_leaf(node, config) or \
            type(live) is not type(config):
        return config
    if isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge(live.get(k), v, _sub(node, k)) if k in live else v
        return out
    return _merge_list(live, config, node)


def _merge_list(lhs: list, rhs: list, node: Any) -> list:
    """mergingWalker.visitListItems: the order of both lists kept where they agree."""
    items = openapi.items(node)
    lpe = [item_element(node, x, i) for i, x in enumerate(lhs)]
    rpe = [item_element(node, x, i) for i, x in enumerate(rhs)]
    lobs: dict = {}
    for pe, x in zip(lpe, lhs, strict=True):
        lobs[pe] = None if pe in lobs else x  # duplicates are not merged
    robs = dict(zip(rpe, rhs, strict=True))
    shared = [pe for pe in rpe if pe in lobs]
    nxt = shared.pop(0) if shared else None
    merged: set = set()
    out = []
    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                merged.add(pe)
                out.append(merge(lobs.get(pe), robs.get(pe), items))
                li += 1
                ri += 1
                nxt = shared.pop(0) if shared else None
                continue
            if pe in robs and nxt is not None and nxt != pe:
                li += 1
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in robs:
                out.append(lhs[li])
                li += 1
                continue
            if pe in merged:
                li += 1
        if ri < len(rpe):
            pe = rpe[ri]
            merged.add(pe)
            out.append(merge(lobs.get(pe), robs.get(pe), items) if pe in lobs else robs[pe])
            ri += 1
            if nxt is not None and nxt == pe:
                nxt = shared.pop(0) if shared else None
    return out


# ---- Compare ----------------------------------------------------------------------------
def compare(old: Any, new: Any, node: Any, path: Path = ()) -> tuple[PathSet, PathSet, PathSet]:
    """(added, modified, removed) between two versions of an object (typed.Compare). A
    struct field that appears or goes is not a member itself (in Go it was a zero-value
    struct, there all along); a map, a list item or a leaf is."""
    added: PathSet = set()
    modified: PathSet = set()
    removed: PathSet = set()
    _cmp(old, new, node, path, added, modified, removed, False)
    return added, modified, removed


def _cmp(old: Any, new: Any, node: Any, path: Path, added: PathSet, modified: PathSet,
         removed: PathSet, member: bool) -> None:
    if old is None and new is None:
        return
    if old is None or new is None:
        _appeared(new if old is None else old, node, path, added if old is None else removed,
                  member)
        return
    if _is_leaf(node, new) or type(old) is not type(new) or _is_leaf(node, old):
        if old != new and path:
            modified.add(path)
        return
    if isinstance(new, dict):
        struct = _is_struct(node)
        for k in set(old) | set(new):
            sub = _sub(node, k)
            _cmp(old.get(k), new.get(k), sub, path + (("f", k),), added, modified, removed,
                 not struct or sub is None)
        return
    items = openapi.items(node)
    o = {item_element(node, x, i): x for i, x in enumerate(old)}
    n = {item_element(node, x, i): x for i, x in enumerate(new)}
    for pe in o.keys() | n.keys():
        _cmp(o.get(pe), n.get(pe), items, path + (pe,), added, modified, removed, True)


def _appeared(v: Any, node: Any, path: Path, out: PathSet, member: bool) -> None:
    """Every path of a subtree one side lacks: ToFieldSet's, plus the maps themselves
    (a nil map in Go, so its appearing is a change of its own)."""
    if path and (member or openapi.is_map(node) or _is_leaf(node, v)):
        out.add(path)
    if _is_leaf(node, v):
        return
    if isinstance(v, dict):
        struct = _is_struct(node)
        for k, x in v.items():
            if x is None:  # a null is what Go's zero value was on the other side too
                continue
            sub = _sub(node, k)
            _appeared(x, sub, path + (("f", k),), out,
                      not struct or sub is None or (isinstance(x, dict) and not x))
        return
    items = openapi.items(node)
    for i, x in enumerate(v):
        _appeared(x, items, path + (item_element(node, x, i),), out, True)


# ---- removing owned-but-dropped fields (prune) ------------------------------------------
def remove(value: Any, paths: Iterable[Path], node: Any) -> Any:
    """A copy of `value` without the fields and items at `paths`."""
    by_head: dict = {}
    here = False
    for p in paths:
        if not p:
            here = True
        else:
            by_head.setdefault(p[0], []).append(p[1:])
    if here:
        return _GONE
    if not by_head or not isinstance(value, (dict, list)):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = by_head.get(("f", k))
            nv = remove(v, sub, _sub(node, k)) if sub else v
            if nv is not _GONE:
                out[k] = nv
        return out
    items = openapi.items(node)
    out_l = []
    for i, x in enumerate(value):
        sub = by_head.get(item_element(node, x, i))
        nv = remove(x, sub, items) if sub else x
        if nv is not _GONE:
            out_l.append(nv)
    return out_l


_GONE = object()


# ---- FieldsV1 ---------------------------------------------------------------------------
def _pe_str(pe: tuple) -> str:
    t, v = pe
    if t == "f":
        return "f:" + v
    if t == "k":
        return "k:{" + ",".join(f"{_j(k)}:{val}" for k, val in v) + "}"
    if t == "v":
        return "v:" + v
    return f"i:{v}"


def _pe_order(pe: tuple) -> tuple:
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}[pe[0]]
    return rank, pe[1] if pe[0] != "k" else tuple(pe[1])


def encode(paths: PathSet) -> dict:
    """The FieldsV1 object of a set (`{"f:spec": {"f:replicas": {}}}`), sorted as upstream."""
    tree: dict = {}
    for p in paths:
        t = tree
        for pe in p:
            t = t.setdefault(pe, {})
        t[None] = True  # a member
    return _emit(tree, include_self=False)


def _emit(tree: dict, include_self: bool) -> dict:
    out: dict = {}
    children = sorted((k for k in tree if k is not None), key=_pe_order)
    if include_self and tree.get(None) and children:
        out["."] = {}
    for pe in children:
        out[_pe_str(pe)] = _emit(tree[pe], True)
    return out


def decode(fields: Any, prefix: Path = ()) -> PathSet:
    """A set from its FieldsV1 object."""
    out: PathSet = set()
    if not isinstance(fields, dict):
        return out
    for k, v in fields.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        pe = _parse_pe(k)
        if pe is None:
            continue
        p = prefix + (pe,)
        if not v:
            out.add(p)
        else:
            out |= decode(v, p)
    return out


def _parse_pe(s: str) -> tuple | None:
    t, _, rest = s.partition(":")
    if t == "f":
        return ("f", rest)
    if t == "v":
        try:
            return ("v", _j(json.loads(rest)))
        except ValueError:
            return None
    if t == "i":
        try:
            return ("i", int(rest))
        except ValueError:
            return None
    if t == "k":
        try:
            obj = json.loads(rest)
        except ValueError:
            return None
        if isinstance(obj, dict):
            return ("k", tuple(sorted((k, _j(v)) for k, v in obj.items())))
    return None


def path_string(p: Path) -> str:
    """fieldpath.Path.String(): `.spec.template.spec.containers[name="web"].image`."""
    out = []
    for t, v in p:
        if t == "f":
            out.append("." + v)
        elif t == "k":
            out.append("[" + ",".join(f"{k}={val}" for k, val in v) + "]")
        elif t == "v":
            out.append(f"[={v}]")
        else:
            out.append(f"[{v}]")
    return "".join(out)


def under(paths: PathSet, prefix: Path) -> PathSet:
    return {p for p in paths if p[:len(prefix)] == prefix}


def path_order(p: Path) -> tuple:
    return tuple(_pe_order(pe) for pe in p)
