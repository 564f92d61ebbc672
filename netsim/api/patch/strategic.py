"""Strategic merge patch, applied as kube-apiserver applies it (apimachinery's
pkg/util/strategicpatch StrategicMergeMapPatch: MergeParallelList and IgnoreUnmatchedNulls on).

Lists whose field says `patchStrategy: merge` merge by their `patchMergeKey` (containers and
env by name, container ports by containerPort, volumeMounts by mountPath, ...); other lists
and everything the schema does not describe are replaced whole. The directives are upstream's:
`$patch: replace|delete|merge`, `$setElementOrder/<list>`, `$retainKeys`,
`$deleteFromPrimitiveList/<list>`. The merge keys come from upstream's OpenAPI schema
(netsim.api.openapi.schema); any object with the same functions (child, items, list_info)
can stand in for it, as the unit tests' small schemas do.

The functions follow patch.go function by function, in its order of checks, so a patch
gives the same object and the same error text as on a real cluster; where Go's map order
would make a result random the same randomness does not matter (upstream's tests run each
case ten times to prove it)."""

from __future__ import annotations

from typing import Any

from netsim.api.patch import gofmt

DIRECTIVE = "$patch"
DELETE, REPLACE, MERGE = "delete", "replace", "merge"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"


class PatchError(Exception):
    """A patch that cannot be applied; `status` is the HTTP code the apiserver gives it
    (interpretStrategicMergePatchError: 400 for bad patch formats, 422 for lists of lists and
    retainKeys mismatches, 500 for everything else)."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.message, self.status = message, status


# mergepatch's sentinel errors, with the status the apiserver maps each to.
def _bad_json_doc() -> PatchError:
    return PatchError("invalid JSON document", 400)


def _bad_primitive_list() -> PatchError:
    return PatchError("invalid patch format of primitive list", 400)


def _bad_retain_keys() -> PatchError:
    return PatchError("invalid patch format of retainKeys", 400)


def _bad_set_element_order() -> PatchError:
    return PatchError("invalid patch format of setElementOrder list", 400)


def _no_list_of_lists() -> PatchError:
    return PatchError("lists of lists are not supported", 422)


def _no_merge_key(m: dict, key: str) -> PatchError:
    return PatchError(f"map: {gofmt.v(m)} does not contain declared merge key: {key}")


def _bad_arg_type(expected: str, actual: Any) -> PatchError:
    return PatchError(f"expected a {expected}, but received a {gofmt.type_name(actual)}")


def _bad_patch_type(t: Any, m: dict) -> PatchError:
    return PatchError(f"unknown patch type: {gofmt.s(t)} in map: {gofmt.v(m)}")


_MAP, _SLICE = "map[string]interface {}", "[]interface {}"


class Meta:
    """Where patch.go's LookupPatchMeta looks things up: one schema node (None: unknown, so
    no strategy) and the schema functions that walk it."""

    __slots__ = ("sch", "node", "name")

    def __init__(self, sch: Any, node: Any, name: str = ""):
        self.sch, self.node, self.name = sch, node, name

    def _field(self, key: str) -> Any:
        sch, node = self.sch, self.node
        if node is None:
            return None
        if sch.is_map(node):
            return sch.items(node)
        return sch.child(node, key)

    def for_struct(self, key: str) -> tuple[Meta, list[str]]:
        """The sub-schema of a map-valued field and its patch strategies."""
        f = self._field(key)
        return Meta(self.sch, f, key), _strategies(self.sch, f)

    def for_slice(self, key: str) -> tuple[Meta, list[str], str]:
        """The schema of a list field's items, its strategies and its merge key."""
        f = self._field(key)
        info = self.sch.list_info(f) if f is not None else None
        # a list in the data where the schema has a struct: the struct stands for each item
        # (upstream's lookup steps from a pointer or slice field to its element type alike)
        items = self.sch.items(f) if f is not None and self.sch.is_list(f) else f
        return (Meta(self.sch, items, key), _strategies(self.sch, f),
                (info.patch_merge_key or "") if info is not None else "")


def _strategies(sch: Any, node: Any) -> list[str]:
    if node is None:
        return []
    ps = sch.list_info(node).patch_strategy
    return ps.split(",") if ps else []


def _retain_keys_strategy(strategies: list[str]) -> tuple[bool, str]:
    """extractRetainKeysPatchStrategy."""
    if not strategies:
        return False, ""
    if len(strategies) == 1:
        return (True, "") if strategies[0] == "retainKeys" else (False, strategies[0])
    if len(strategies) == 2:
        if strategies[0] == "retainKeys":
            return True, strategies[1]
        if strategies[1] == "retainKeys":
            return True, strategies[0]
    raise PatchError(f"unexpected patch strategy: {gofmt.v(strategies)}")


def _kind(v: Any) -> str:
    """reflect.Kind as far as the merge cares: map, slice or a scalar's own type."""
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "slice"
    return gofmt.type_name(v)


def _eq(a: Any, b: Any) -> bool:
    """Go's == on two interface{} values (scalars: same dynamic type and value)."""
    return _kind(a) == _kind(b) and a == b


def apply(original: dict, patch: dict, sch: Any, node: Any) -> dict:
    """StrategicMergeMapPatch: `patch` applied to `original` (both are consumed)."""
    if not isinstance(original, dict) or not isinstance(patch, dict):
        raise _bad_json_doc()
    return merge_map(original, patch, Meta(sch, node))


def _handle_directive_in_merge_map(directive: Any, patch: dict) -> dict:
    if _eq(directive, REPLACE):
        del patch[DIRECTIVE]
        return patch
    if _eq(directive, DELETE):
        return {}
    raise _bad_patch_type(directive, patch)


def _contains_directive_marker(item: Any) -> bool:
    return isinstance(item, dict) and DIRECTIVE in item


def _merge_key_value_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _eq(left, right)
    if not isinstance(left, dict):
        raise _bad_arg_type(_MAP, left)
    if not isinstance(right, dict):
        raise _bad_arg_type(_MAP, right)
    if merge_key not in left:
        raise _no_merge_key(left, merge_key)
    if merge_key not in right:
        raise _no_merge_key(right, merge_key)
    return _eq(left[merge_key], right[merge_key])


def _extract_key(s: str, prefix: str) -> str:
    parts = s.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise _bad_primitive_list()
        if prefix == SET_ELEMENT_ORDER:
            raise _bad_set_element_order()
        raise PatchError(f"fail to find unknown prefix {gofmt.q(prefix)} in {s}\n")
    return parts[1]


def _validate_patch_with_set_order_list(patch_list: Any, set_order: Any, merge_key: str) -> None:
    if not isinstance(set_order, list) or not isinstance(patch_list, list):
        raise _bad_set_element_order()
    if not set_order or not patch_list:
        return
    non_delete = _extract_to_delete_items(patch_list)[0] if merge_key else patch_list
    pi = si = 0
    while pi < len(non_delete) and si < len(set_order):
        if _contains_directive_marker(non_delete[pi]):
            pi += 1
            continue
        if _merge_key_value_equal(non_delete[pi], set_order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(non_delete) and si >= len(set_order):
        raise PatchError(f"The order in patch list:\n{gofmt.v(patch_list)}\n doesn't match "
                         f"{SET_ELEMENT_ORDER} list:\n{gofmt.v(set_order)}\n")


def _apply_retain_keys_directive(original: dict, patch: dict) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _bad_retain_keys()
    try:
        keep = {gofmt.hashable(v) for v in retain}
    except TypeError as e:
        raise _bad_retain_keys() from e
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_FROM_PRIMITIVE_LIST) or \
                k.startswith(SET_ELEMENT_ORDER):
            continue
        if gofmt.hashable(k) not in keep:
            raise _bad_retain_keys()
    for k in list(original):
        if gofmt.hashable(k) not in keep:
            del original[k]


def _merge_patch_into_original(original: dict, patch: dict, meta: Meta) -> None:
    """The $setElementOrder lists: merge each with its list and enforce the order."""
    for key in list(patch):
        if not key.startswith(SET_ELEMENT_ORDER) or key not in patch:
            continue
        set_order = patch.pop(key)
        if not isinstance(set_order, list):
            raise _bad_arg_type(_SLICE, set_order)
        original_key = _extract_key(key, SET_ELEMENT_ORDER)
        found_original, found_patch = original_key in original, original_key in patch
        original_value: list = []
        patch_value: list = []
        if found_original:
            original_value = original[original_key]
            if not isinstance(original_value, list):
                raise _bad_arg_type(_SLICE, original_value)
        if found_patch:
            patch_value = patch[original_key]
            if not isinstance(patch_value, list):
                raise _bad_arg_type(_SLICE, patch_value)
        sub, strategies, merge_key = meta.for_slice(original_key)
        strategy = _retain_keys_strategy(strategies)[1]
        _validate_patch_with_set_order_list(patch_value, set_order, merge_key)
        # the merge below may write into the original's array: the order read after it
        # is that array, as upstream's is
        shared = gofmt.Slice.decoded(original_value)
        if found_original and not found_patch:
            merged = original_value
        elif not found_original and found_patch:
            merged = _remove_directives(patch_value)[0]
        elif found_original and found_patch:
            merged = _merge_slice_handler(shared, patch_value, sub, strategy, merge_key,
                                          False)
        else:
            continue
        original_value = shared.list()
        if not merge_key:
            patch_items, server_only = _partition_primitives(merged, set_order)
        else:
            patch_items, server_only = _partition_maps(merged, set_order, merge_key)
        kind = _slice_element_kind(original_value, patch_value)
        original[original_key] = _normalize_element_order(
            patch_items, server_only, set_order, original_value, merge_key, kind)
        patch.pop(original_key, None)


def _partition_primitives(original: list, partition_by: list) -> tuple[list, list]:
    in_patch = {gofmt.hashable(v) for v in partition_by if _is_scalar(v)}
    patch, server_only = [], []
    for v in original:
        (patch if _is_scalar(v) and gofmt.hashable(v) in in_patch else server_only).append(v)
    return patch, server_only


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _partition_maps(original: list, partition_by: list, merge_key: str) -> tuple[list, list]:
    patch, server_only = [], []
    for v in original:
        if not isinstance(v, dict):
            raise _bad_arg_type(_MAP, v)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        found = _find_map_in_slice(partition_by, merge_key, v[merge_key])[2]
        (patch if found else server_only).append(v)
    return patch, server_only


def _remove_directives(obj: Any) -> tuple[Any, bool]:
    if isinstance(obj, dict):
        if DIRECTIVE in obj:
            return None, False
        for k in list(obj):
            v, keep = _remove_directives(obj[k])
            if keep:
                obj[k] = v
            else:
                del obj[k]
        return obj, True
    if isinstance(obj, list):
        out = []
        for v in obj:
            nv, keep = _remove_directives(v)
            if keep:
                out.append(nv)
        return out, True
    return obj, True


def merge_map(original: dict | None, patch: dict, meta: Meta) -> dict:
    """mergeMap: fields of `patch` merged into `original` (changed in place)."""
    if DIRECTIVE in patch:
        return _handle_directive_in_merge_map(patch[DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys_directive(original, patch)
    _merge_patch_into_original(original, patch, meta)
    for k, patch_v in list(patch.items()):
        is_delete_list = False
        if k.startswith(DELETE_FROM_PRIMITIVE_LIST):
            k = _extract_key(k, DELETE_FROM_PRIMITIVE_LIST)
            is_delete_list = True
        if patch_v is None:
            original.pop(k, None)
            continue  # IgnoreUnmatchedNulls
        if k not in original or _kind(original[k]) != _kind(patch_v):
            if not is_delete_list:
                _discard_nulls(patch_v)
                v, keep = _remove_directives(patch_v)
                if keep:
                    original[k] = v
                else:
                    original.pop(k, None)
            continue
        kind = _kind(original[k])
        if kind == "map":
            sub, strategies = meta.for_struct(k)
            strategy = _retain_keys_strategy(strategies)[1]
            original[k] = patch_v if strategy == REPLACE else merge_map(original[k], patch_v, sub)
        elif kind == "slice":
            sub, strategies, merge_key = meta.for_slice(k)
            strategy = _retain_keys_strategy(strategies)[1]
            original[k] = _merge_slice_handler(gofmt.Slice.decoded(original[k]), patch_v, sub,
                                               strategy, merge_key, is_delete_list)
        else:
            v, keep = _remove_directives(patch_v)
            if keep:
                original[k] = v
            else:
                del original[k]
    return original


def _discard_nulls(v: Any) -> None:
    if isinstance(v, dict):
        for k in list(v):
            if v[k] is None:
                del v[k]
            else:
                _discard_nulls(v[k])
    elif isinstance(v, list):
        for i in v:
            _discard_nulls(i)


def _merge_slice_handler(original: gofmt.Slice, patch: Any, meta: Meta, strategy: str,
                         merge_key: str, is_delete_list: bool) -> list:
    if not isinstance(patch, list):
        raise _bad_arg_type(_SLICE, patch)
    if strategy == MERGE or is_delete_list:
        return _merge_slice(original, patch, meta, merge_key, is_delete_list)
    return patch


def _merge_slice(original: gofmt.Slice, patch: list, meta: Meta, merge_key: str,
                 is_delete_list: bool) -> list:
    if not len(original) and not patch:
        return original.list()
    kind = _slice_element_kind(original.list(), patch)
    if kind != "map":
        if is_delete_list:
            return _delete_from_slice(original.list(), patch)
        merged = _deduplicate_scalars(original.append(patch)).list()
    else:
        if not merge_key:
            raise PatchError(f"cannot merge lists without merge key for {meta.name}")
        original, patch = _merge_slice_with_special_elements(original, patch, merge_key)
        merged = _merge_slice_without_special_elements(original, patch, merge_key,
                                                       meta).list()
    if not merge_key:
        patch_items, server_only = _partition_primitives(merged, patch)
    else:
        patch_items, server_only = _partition_maps(merged, patch, merge_key)
    return _normalize_element_order(patch_items, server_only, patch, original.list(),
                                    merge_key, kind)


def _merge_slice_with_special_elements(original: gofmt.Slice, patch: list,
                                       merge_key: str) -> tuple[gofmt.Slice, list]:
    without = []
    replace = False
    for v in patch:
        if DIRECTIVE not in v:
            without.append(v)
            continue
        t = v[DIRECTIVE]
        if _eq(t, DELETE):
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            original = _delete_matching_entries(original, merge_key, v[merge_key])
        elif _eq(t, REPLACE):
            replace = True
        elif _eq(t, MERGE):
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(t, v)
    if replace:
        return gofmt.Slice.decoded(without), []
    return original, without


def _delete_matching_entries(original: gofmt.Slice, merge_key: str,
                             value: Any) -> gofmt.Slice:
    while True:
        _, i, found = _find_map_in_slice(original.list(), merge_key, value)
        if not found:
            return original
        original = original.head(i).append(original.tail(i + 1))


def _merge_slice_without_special_elements(original: gofmt.Slice, patch: list, merge_key: str,
                                          meta: Meta) -> gofmt.Slice:
    for v in patch:
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        m, i, found = _find_map_in_slice(original.list(), merge_key, v[merge_key])
        if found:
            original[i] = merge_map(m, v, meta)
        else:
            original = original.append([v])
    return original


def _delete_from_slice(current: list, to_delete: list) -> list:
    gone = {gofmt.hashable(v) for v in to_delete if _is_scalar(v)}
    return [v for v in current if not (_is_scalar(v) and gofmt.hashable(v) in gone)]


def _find_map_in_slice(m: list, key: str, value: Any) -> tuple[dict | None, int, bool]:
    for i, v in enumerate(m):
        if not isinstance(v, dict):
            raise PatchError(f"value for key {i} is not a map")
        if key in v and _eq(v[key], value):
            return v, i, True
    return None, 0, False


def _deduplicate_scalars(s: gofmt.Slice) -> gofmt.Slice:
    """deduplicateScalars, with its swap-the-last-in order (in the slice's own array)."""
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _eq(s[i], s[j]):
                s[j] = s[length]
                s = s.shrink(length)
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _slice_element_kind(*slices: list) -> str:
    prev = None
    for s in slices:
        for v in s:
            k = _kind(v)
            if prev is None:
                prev = k
                if prev == "slice":
                    raise _no_list_of_lists()
            elif prev != k:
                raise PatchError("list element types are not identical: "
                                 + gofmt.v(list(slices)))
    if prev is None:
        raise PatchError("no elements in any of the given slices")
    return prev


def _index(items: list, value: Any, merge_key: str, kind: str) -> int:
    def val(item: Any) -> Any:
        if kind == "map":
            return item.get(merge_key) if isinstance(item, dict) else None
        return item
    want = val(value)
    for i, v in enumerate(items):
        got = val(v)
        if (want is None and got is None) or (want is not None and _is_scalar(want)
                                              and _eq(want, got)):
            return i
    return -1


def _validate_merge_key_in_lists(merge_key: str, *lists: list) -> None:
    for lst in lists:
        for item in lst:
            if not isinstance(item, dict):
                raise _bad_arg_type(_MAP, item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)


def _extract_to_delete_items(items: list) -> tuple[list, list]:
    keep, delete = [], []
    for v in items:
        if not isinstance(v, dict):
            raise _bad_arg_type(_MAP, v)
        (delete if _eq(v.get(DIRECTIVE), DELETE) else keep).append(v)
    return keep, delete


def _normalize_slice_order(to_sort: list, order: list, merge_key: str, kind: str) -> list:
    to_delete: list = []
    if kind == "map":
        _validate_merge_key_in_lists(merge_key, to_sort, order)
        to_sort, to_delete = _extract_to_delete_items(to_sort)
    to_sort = list(to_sort)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, kind)
        if ia >= 0:
            ib = _index(order, b, merge_key, kind)
            if ib >= 0:
                return ia < ib
        return True
    gofmt.slice_stable(to_sort, less)
    return to_sort + to_delete


def _merge_sorted_slice(left: list, right: list, server_order: list, merge_key: str,
                        kind: str) -> list:
    out = []
    i = j = 0
    for _ in range(len(left) + len(right)):
        if i >= len(left) and j < len(right):
            out.append(right[j])
            j += 1
        elif j >= len(right) and i < len(left):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key, kind)
            ri = _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_element_order(patch: list, server_only: list, patch_order: list,
                             server_order: list, merge_key: str, kind: str) -> list:
    patch = _normalize_slice_order(patch, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted_slice(server_only, patch, server_order, merge_key, kind)
