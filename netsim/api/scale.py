"""The `/scale` subresource of Deployments, ReplicaSets and StatefulSets: an autoscaling/v1
Scale (spec.replicas; status.replicas and status.selector as a selector string) read and
written as upstream's scale REST does. `kubectl scale deploy web --replicas=3` sends a merge
patch to it; HPAs and the Python client's patch_namespaced_deployment_scale use it too.

A write changes only the parent's spec.replicas (through Store.patch, so admission and the
generation bump are the main resource's); a Scale naming a resourceVersion is a
precondition on the parent's, as upstream's scaleUpdatedObjectInfo makes it.
"""

from __future__ import annotations

import json

from netsim.api import discovery, errors, routes, selectors
from netsim.api.store import merge_patch

SCALED = ("deployments", "replicasets", "statefulsets")
VERBS = ["get", "patch", "update"]
_MERGE_TYPES = ("", "application/merge-patch+json", "application/json",
                "application/strategic-merge-patch+json")  # a Scale has no lists to merge


def to_scale(obj: dict) -> dict:
    """The Scale of a Deployment, ReplicaSet or StatefulSet (upstream's scaleFrom*)."""
    md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    meta = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                               "creationTimestamp") if k in md}
    scale_spec = {}
    if spec.get("replicas"):  # ScaleSpec.replicas is omitempty
        scale_spec["replicas"] = spec["replicas"]
    status = {"replicas": (obj.get("status") or {}).get("replicas") or 0}
    selector = selectors.to_string(spec.get("selector"))
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
            "spec": scale_spec, "status": status}


def _conflict(res, name: str) -> errors.ApiError:
    # not errors.Conflict: Store.patch retries those, a failed precondition is final
    return errors.ApiError(
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        code=409, reason="Conflict")


def _checked(req: routes.Request, scale, cur: dict) -> int:
    """The replicas a written Scale asks for, after upstream's checks (kind, name, the
    resourceVersion precondition, ValidateScale)."""
    if not isinstance(scale, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type Scale)")
    kind, api = scale.get("kind"), scale.get("apiVersion")
    if (kind and kind != "Scale") or (api and api != "autoscaling/v1"):
        v = str(api or "autoscaling/v1").rsplit("/", 1)[-1]
        raise errors.BadRequest(f'{kind or "Scale"} in version "{v}" cannot be handled as a '
                                f'Scale: no kind "{kind}" is registered for version "{api}" in '
                                'scheme "pkg/api/legacyscheme/scheme.go:30"')
    md = scale.get("metadata") if isinstance(scale.get("metadata"), dict) else {}
    if md.get("name", req.name) != req.name:
        raise errors.BadRequest(f"the name of the object ({md.get('name') or ''}) does not "
                                f"match the name on the URL ({req.name})")
    rv = md.get("resourceVersion")
    if rv and rv != cur["metadata"].get("resourceVersion"):
        raise _conflict(req.res, req.name)
    replicas = (scale.get("spec") or {}).get("replicas", 0) \
        if isinstance(scale.get("spec"), dict) else 0
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.BadRequest(
            "json: cannot unmarshal " + type(replicas).__name__.replace("str", "string") +
            " into Go struct field ScaleSpec.spec.replicas of type int32")
    if replicas < 0:
        raise errors.Invalid(f'Scale.autoscaling "{req.name}" is invalid: spec.replicas: '
                             f"Invalid value: {replicas}: must be greater than or equal to 0",
                             details={"group": "autoscaling", "kind": "Scale",
                                      "name": req.name, "causes": [{
                                          "reason": "FieldValueInvalid",
                                          "message": f"Invalid value: {replicas}: must be "
                                                     "greater than or equal to 0",
                                          "field": "spec.replicas"}]})
    return replicas


def _patched_scale(req: routes.Request, cur: dict) -> dict:
    """The parent's Scale with the request's patch applied."""
    ctype = req.content_type()
    scale = to_scale(cur)
    if ctype in _MERGE_TYPES:
        try:
            patch = json.loads(req.body or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise errors.BadRequest(f"error decoding patch: {e}") from e
        if not isinstance(patch, dict):
            raise errors.BadRequest("json: cannot unmarshal array into Go value of type "
                                    "map[string]interface {}")
        return merge_patch(scale, patch)
    fn = routes.PATCH_TYPES.get(ctype)
    if fn is None:
        raise errors.ApiError(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml, application/strategic-merge-patch+json",
            code=415, reason="UnsupportedMediaType")
    return fn(scale, req.body, req)


def serve_scale(req: routes.Request) -> None:
    store, res = req.store, req.res
    dry_run = req.query.get("dryRun") == "All"
    if req.method == "GET":
        obj = store.get(res.plural, req.name, req.namespace)
        return req.handler._send(200, to_scale(obj))
    if req.method == "PUT":
        scale = req.handler._json_body(res)

        def write(cur: dict) -> dict:
            cur.setdefault("spec", {})["replicas"] = _checked(req, scale, cur)
            return cur
    elif req.method == "PATCH":
        def write(cur: dict) -> dict:
            scale = _patched_scale(req, cur)
            cur.setdefault("spec", {})["replicas"] = _checked(req, scale, cur)
            return cur
    else:
        raise errors.method_not_allowed()
    obj = store.patch(res.plural, req.name, req.namespace, write, None, dry_run)
    req.handler._send(200, to_scale(obj))


for _plural in SCALED:
    routes.SUBRESOURCES[(_plural, "scale")] = serve_scale
    discovery.SUBRESOURCE_ENTRIES.setdefault(_plural, []).append(
        {"name": f"{_plural}/scale", "group": "autoscaling", "version": "v1", "kind": "Scale",
         "verbs": list(VERBS)})
