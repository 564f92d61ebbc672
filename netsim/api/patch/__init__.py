"""PATCH bodies beyond the built-in JSON merge patch, registered in routes.PATCH_TYPES:
strategic merge patch (strategic.py), JSON patch (RFC 6902, through the `jsonpatch` library)
and server-side apply (managed.py), each answering bad bodies in kube-apiserver's words;
and the managedFields every write that names a fieldManager records (`record_create`,
`record_update` for POST and PUT; the PATCH types here record their own).

netsim.api.server imports this package; an apply to a missing object is a create
(`on_missing`), as upstream's applyPatcher.createNewObject."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from netsim.api import errors, routes
from netsim.api.openapi import schema as openapi
from netsim.api.patch import managed, strategic

APPLY = "application/apply-patch+yaml"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# kube-apiserver's maxJSONPatchOperations
MAX_JSON_PATCH_OPERATIONS = 10000


def _json(raw: bytes) -> Any:
    """validateAndTranscodePatch: every non-apply patch must be JSON."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.BadRequest("invalid JSON patch") from e


def _go_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


def _same_object(cur: dict, new: dict, req: routes.Request) -> None:
    """A patch cannot move the object to another name or namespace (rest.checkName)."""
    md = new.get("metadata")
    if not isinstance(md, dict):
        return
    name = md.get("name")
    if name != req.name:
        raise errors.BadRequest(f"the name of the object ({name or ''}) does not match the "
                                f"name on the URL ({req.name})")
    ns = md.get("namespace")
    if req.res is not None and req.res.namespaced and ns and req.namespace and \
            ns != req.namespace:
        raise errors.BadRequest(f"the namespace of the object ({ns}) does not match the "
                                f"namespace on the URL ({req.namespace})")


def _manager(req: routes.Request) -> str | None:
    return req.query.get("fieldManager") or None


def _now(req: routes.Request) -> str:
    return req.store.clock()


def _defaulted(obj: dict, old: dict | None, req: routes.Request) -> dict:
    """A copy of `obj` with the kind's defaults, as the apiserver's field manager sees a
    write (decoding defaults it first): the writer owns the fields defaulting filled in.
    The store's admission applies the same defaults to the object itself."""
    reg = getattr(getattr(req.store, "admission", None), "registry", None)
    defaulters = getattr(reg, "defaulters", {}).get(str(obj.get("kind") or ""), [])
    if not defaulters:
        return obj
    c = copy.deepcopy(obj)
    try:
        for d in defaulters:
            d(c, old)
    except Exception:  # a shape admission will refuse in its own words: own what was sent
        return obj
    return c


def _recorded(cur: dict | None, new: dict, req: routes.Request, sub: str | None = None) -> dict:
    """`new` with the managedFields of this write by the request's fieldManager."""
    m = _manager(req)
    if m is None or not isinstance(new.get("metadata"), dict):
        return new
    seen = _defaulted(new, cur, req)
    seen = managed.update(copy.deepcopy(cur) if cur else None, seen, m,
                          req.url_api or str(new.get("apiVersion")), sub, _now(req))
    entries = seen["metadata"].get("managedFields")
    if entries:
        new["metadata"]["managedFields"] = entries
    else:
        new["metadata"].pop("managedFields", None)
    return new


def _unknown(message: str) -> errors.ApiError:
    """A plain Go error reaching the handler: ErrorToAPIStatus makes it a 500 with no
    reason (kubectl prints `Error from server: <message>`)."""
    return errors.ApiError(message, code=500, reason="")


def _no_force(req: routes.Request) -> None:
    """ValidatePatchOptions: force is for apply only."""
    if "force" in req.query:
        raise errors.ApiError('PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may '
                              "not be specified for non-apply patch", code=422,
                              reason="Invalid",
                              details={"group": "meta.k8s.io", "kind": "PatchOptions",
                                       "causes": [{"reason": "FieldValueForbidden",
                                                   "message": "Forbidden: may not be "
                                                              "specified for non-apply patch",
                                                   "field": "force"}]})


def strategic_merge(cur: dict, raw: bytes, req: routes.Request) -> dict:
    """application/strategic-merge-patch+json (strategicPatchObject)."""
    _no_force(req)
    patch = _json(raw)
    if not isinstance(patch, dict):
        raise errors.BadRequest(f"json: cannot unmarshal {_go_kind(patch)} into Go value of "
                                "type map[string]interface {}")
    node = openapi.resolve(str(cur.get("apiVersion") or ""), str(cur.get("kind") or ""))
    try:
        new = strategic.apply(copy.deepcopy(cur), patch, openapi, node)
    except strategic.PatchError as e:
        if e.status == 400:
            raise errors.BadRequest(e.message) from e
        if e.status == 422:
            raise errors.ApiError("the server rejected our request due to an error in our "
                                  "request", code=422, reason="Invalid", details={}) from e
        raise _unknown(e.message) from e
    _same_object(cur, new, req)
    return _recorded(cur, new, req, req.subresource)


def json_patch(cur: dict, raw: bytes, req: routes.Request) -> dict:
    """application/json-patch+json (evanphx/json-patch's DecodePatch, then Apply; an
    operation that does not apply is a 422 with the apiserver's generic text)."""
    _no_force(req)
    ops = _json(raw)
    if not isinstance(ops, list):
        raise errors.BadRequest(f"json: cannot unmarshal {_go_kind(ops)} into Go value of "
                                "type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise errors.BadRequest(f"json: cannot unmarshal {_go_kind(op)} into Go value of "
                                    "type jsonpatch.Operation")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.ApiError(f"The allowed maximum operations in a JSON patch is "
                              f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}", code=413,
                              reason="RequestEntityTooLarge")
    try:
        new = jsonpatch.JsonPatch(ops).apply(cur)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError,
            KeyError, IndexError, ValueError) as e:
        raise errors.ApiError("the server rejected our request due to an error in our "
                              "request", code=422, reason="Invalid", details={}) from e
    if not isinstance(new, dict):
        raise errors.BadRequest("json: cannot unmarshal " + _go_kind(new) + " into Go value "
                                "of type struct { APIVersion string \"json:\\\"apiVersion,"
                                "omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }")
    _same_object(cur, new, req)
    return _recorded(cur, new, req, req.subresource)


def _apply_body(raw: bytes, req: routes.Request) -> tuple[dict, str, bool]:
    """The applied configuration, its manager and force, checked as upstream's
    ValidatePatchOptions and applyPatcher do."""
    manager = _manager(req)
    if manager is None:
        raise errors.ApiError('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                              "value: is required for apply requests", code=422,
                              reason="Invalid",
                              details={"group": "meta.k8s.io", "kind": "PatchOptions",
                                       "causes": [{"reason": "FieldValueRequired",
                                                   "message": "Required value: is required "
                                                              "for apply requests",
                                                   "field": "fieldManager"}]})
    try:
        config = yaml.safe_load(raw.decode("utf-8")) if raw.strip() else {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise errors.BadRequest(f"error decoding patch: {e}") from e
    if not isinstance(config, dict):
        raise errors.BadRequest("error decoding patch: json: cannot unmarshal "
                                f"{_go_kind(config)} into Go value of type "
                                "map[string]interface {}")
    force = (req.query.get("force") or "").lower() in ("true", "1")
    return config, manager, force


def server_side_apply(cur: dict, raw: bytes, req: routes.Request) -> dict:
    """application/apply-patch+yaml onto an existing object."""
    config, manager, force = _apply_body(raw, req)
    md = config.get("metadata")
    if isinstance(md, dict) and req.res is not None and req.res.namespaced and \
            not md.get("namespace") and req.namespace:
        md["namespace"] = req.namespace
    new = managed.apply(cur, config, manager, req.url_api or str(cur.get("apiVersion")),
                        req.subresource, force, _now(req))
    _same_object(cur, new, req)
    return new


def on_missing(ctype: str, raw: bytes, req: routes.Request) -> dict | None:
    """The object an apply creates when there is none yet (None for other patch types:
    their 404 stands)."""
    if ctype != APPLY or req.subresource:
        return None
    config, manager, force = _apply_body(raw, req)
    md = config.get("metadata")
    if md is None:
        md = config["metadata"] = {}
    if not isinstance(md, dict):
        raise errors.BadRequest("error decoding patch: metadata must be an object")
    if not md.get("name"):
        md["name"] = req.name
    if req.res is not None and req.res.namespaced and req.namespace:
        md.setdefault("namespace", req.namespace)
    new = managed.apply(None, config, manager, req.url_api or "", None, force, _now(req))
    _same_object(new, new, req)
    return new


def record_create(obj: dict, req: routes.Request) -> dict:
    """POST with a fieldManager: it owns every field it set (and the defaults)."""
    return _recorded(None, obj, req)


def record_update(obj: dict, req: routes.Request) -> dict:
    """PUT with a fieldManager: it owns what it changed from the stored object."""
    if _manager(req) is None or req.res is None or not isinstance(obj.get("metadata"), dict):
        return obj
    try:
        cur = req.store.get(req.res.plural, req.name or "", req.namespace)
    except errors.NotFound:
        return obj
    return _recorded(cur, obj, req, req.subresource)


routes.PATCH_TYPES[STRATEGIC] = strategic_merge
routes.PATCH_TYPES[JSON_PATCH] = json_patch
routes.PATCH_TYPES[APPLY] = server_side_apply


def recording_merge(patch: dict, req: routes.Request) -> Any:
    """The built-in JSON merge patch, with its managedFields when it names a manager."""
    if _manager(req) is None:
        return patch
    from netsim.api.store import merge_patch

    def fn(cur: dict) -> dict:
        return _recorded(cur, merge_patch(copy.deepcopy(cur), copy.deepcopy(patch)), req,
                         req.subresource)
    return fn
