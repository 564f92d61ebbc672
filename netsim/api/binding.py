"""v1 Binding: a pod assigned to a node, the way kube-scheduler does it.

`POST /api/v1/namespaces/<ns>/pods/<name>/binding` (what kube-scheduler and custom
schedulers send) and `POST /api/v1/namespaces/<ns>/bindings` (what `kubectl create -f
binding.yaml` sends) behave as upstream's BindingREST: the Binding's `target` must be a Node
(or name no kind) and name one; the pod must exist, have no spec.nodeName, no
schedulingGates and no deletionTimestamp, and match the Binding's uid and resourceVersion
when it gives them. The pod then gets spec.nodeName, the Binding's annotations and the
condition PodScheduled=True, in one storage-level write (no pod admission, validation or
generation bump: upstream writes storage directly). The answer is 201 with a Status
Success. A refusal is 409 `Operation cannot be fulfilled on pods/binding "x": pod x is
already assigned to node "n"`; a bad target is upstream's 500 with the field errors.
"""

from __future__ import annotations

from netsim.api import discovery, errors, routes
from netsim.api import validation as v
from netsim.api.kinds.types import json_kind
from netsim.api.resources import BY_PLURAL
from netsim.api.timeutil import now_rfc3339

KIND, API_VERSION = "Binding", "v1"
_SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def problems(binding: dict) -> list[str]:
    """ValidatePodBinding."""
    target = binding.get("target") if isinstance(binding.get("target"), dict) else {}
    out = []
    kind = target.get("kind") or ""
    if kind and kind != "Node":
        out.append(v.unsupported("target.kind", kind, ["Node", "<empty>"]))
    if not target.get("name"):
        out.append(v.required("target.name"))
    return out


def _refused(name: str, why: str) -> errors.Conflict:
    """errors.NewConflict(pods/binding): what assignPod makes of a plain refusal."""
    return errors.Conflict(f'Operation cannot be fulfilled on pods/binding "{name}": {why}',
                           details={"name": name, "kind": "pods/binding"})


def _precondition(namespace: str, name: str, what: str, want: str, have) -> errors.Conflict:
    """A failed uid / resourceVersion precondition, in etcd3 storage's words."""
    return errors.Conflict(
        f'Operation cannot be fulfilled on pods "{name}": StorageError: invalid object, '
        f"Code: 4, Key: /registry/pods/{namespace}/{name}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: {what} in precondition: {want}, {what} "
        f"in object meta: {have or ''}", details={"name": name, "kind": "pods"})


def scheduled(status: dict, now: str) -> None:
    """podutil.UpdatePodCondition with PodScheduled=True: the condition replaced in place
    (reason and message dropped), its lastTransitionTime kept when it was True already."""
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    new = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
           "lastTransitionTime": now}
    for i, c in enumerate(conds):
        if c.get("type") == "PodScheduled":
            if c.get("status") == "True" and c.get("lastTransitionTime"):
                new["lastTransitionTime"] = c["lastTransitionTime"]
            conds[i] = new
            break
    else:
        conds.append(new)
    status["conditions"] = conds


def bind(store, namespace: str, name: str, node: str, *, annotations: dict | None = None,
         uid: str | None = None, resource_version: str | None = None,
         dry_run: bool = False) -> dict:
    """Assign the pod to `node` (setPodNodeAndMetadata): the bound pod, or Conflict /
    NotFound as upstream."""
    now = now_rfc3339()

    def assign(pod: dict) -> None:
        md = pod["metadata"]
        if uid and md.get("uid") != uid:
            raise _precondition(namespace, name, "UID", uid, md.get("uid"))
        if resource_version and md.get("resourceVersion") != resource_version:
            raise _precondition(namespace, name, "ResourceVersion", resource_version,
                                md.get("resourceVersion"))
        spec = pod.setdefault("spec", {})
        if md.get("deletionTimestamp"):
            raise _refused(name, f"pod {name} is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise _refused(name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        if spec.get("schedulingGates"):
            raise _refused(name, f"pod {name} has non-empty .spec.schedulingGates")
        spec["nodeName"] = node
        if annotations:
            md["annotations"] = {**(md.get("annotations") or {}), **annotations}
        status = pod.get("status")
        if not isinstance(status, dict):
            status = pod["status"] = {}
        scheduled(status, now)

    return store.guaranteed_update("pods", name, namespace, assign, dry_run=dry_run)


def _body(req: routes.Request) -> dict:
    """The request's Binding, or the apiserver's 400 for a body that is none."""
    raw = req.body
    if req.content_type() in routes.BODY_DECODERS:  # protobuf from a Go client
        obj = routes.BODY_DECODERS[req.content_type()](raw, req)
    else:
        obj = req.handler._json_body(BY_PLURAL["bindings"])
    if not isinstance(obj, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type Binding)")
    kind, api = obj.get("kind") or KIND, obj.get("apiVersion") or API_VERSION
    if kind != KIND or api != API_VERSION:
        raise errors.unregistered_kind(kind, api, KIND)
    md = obj.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise errors.BadRequest('Binding in version "v1" cannot be handled as a Binding: json: '
                                f"cannot unmarshal {json_kind(md)} into Go struct field "
                                "Binding.metadata of type v1.ObjectMeta")
    ns = (md or {}).get("namespace")
    if ns and req.namespace and ns != req.namespace:
        raise errors.BadRequest("the namespace of the provided object does not match the "
                                "namespace sent on the request")
    return obj


def _create(req: routes.Request, name: str, obj: dict) -> None:
    if not name:
        raise errors.BadRequest("Name parameter required.")
    causes = problems(obj)
    if causes:  # a plain error upstream (errs.ToAggregate()): a 500 without a reason
        raise errors.ApiError(causes[0] if len(causes) == 1 else "[" + ", ".join(causes) + "]",
                              code=500, reason="")
    md = obj.get("metadata") or {}
    notes = md.get("annotations") if isinstance(md.get("annotations"), dict) else None
    bind(req.store, req.namespace or "default", name, obj["target"]["name"],
         annotations=notes, uid=md.get("uid") or None,
         resource_version=md.get("resourceVersion") or None,
         dry_run=req.query.get("dryRun") == "All")
    req.handler._send(201, dict(_SUCCESS))


@routes.subresource("pods", "binding")
def serve_pod_binding(req: routes.Request) -> None:
    """POST .../pods/<name>/binding (BindingREST)."""
    if req.method != "POST":
        raise errors.method_not_allowed()
    obj = _body(req)
    if (obj.get("metadata") or {}).get("name") != req.name:
        raise errors.BadRequest("name in URL does not match name in Binding object")
    _create(req, req.name or "", obj)


def serve_bindings(req: routes.Request) -> None:
    """POST .../namespaces/<ns>/bindings (LegacyBindingREST: the name is the body's; the
    server answers any other verb on a routes.VIRTUAL resource with 405)."""
    obj = _body(req)
    _create(req, str((obj.get("metadata") or {}).get("name") or ""), obj)


routes.VIRTUAL["bindings"] = serve_bindings
discovery.SUBRESOURCE_ENTRIES.setdefault("pods", []).append(
    {"name": "pods/binding", "kind": KIND, "verbs": ["create"]})
