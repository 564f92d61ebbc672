"""`apply`, `create`, `delete` with -f: all or nothing, kubectl's messages."""

from __future__ import annotations

import copy
import json

from netsim.api import errors
from netsim.api.resources import BY_PLURAL, DEPRECATED, for_object, lookup
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.manifests import Doc, ManifestError, load
from netsim.cli.pflags import CHANGE_CAUSE

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _check_namespaces(ctx: Ctx, docs: list[Doc]) -> None:
    """The server's dry run cannot know about Namespaces created earlier in the same apply;
    check namespaces here (kubectl's message) and let the dry run skip that check."""
    planned = {d.obj["metadata"].get("name") for d in docs if d.obj.get("kind") == "Namespace"}
    known: dict[str, bool] = {}
    for d in docs:
        ns = d.obj["metadata"].get("namespace")
        if not ns or ns in planned:
            continue
        if ns not in known:
            known[ns] = ctx.client.get_or_none("namespaces", ns) is not None
        if not known[ns]:
            raise CliError(f'Error from server (NotFound): error when creating "{d.source}": '
                           f'namespaces "{ns}" not found')


def _prepare(ctx: Ctx, docs: list[Doc]) -> None:
    for d in docs:
        res = for_object(d.obj)
        md = d.obj.setdefault("metadata", {})
        if res.namespaced:
            if ctx.namespace and md.get("namespace") and md["namespace"] != ctx.namespace:
                raise CliError(f"the namespace from the provided object \"{md['namespace']}\" does not "
                               f"match the namespace \"{ctx.namespace}\". You must pass "
                               f"'--namespace={md['namespace']}' to perform this operation.")
            md["namespace"] = md.get("namespace") or ctx.ns
        else:
            md.pop("namespace", None)
        w = DEPRECATED.get((d.obj.get("apiVersion"), d.obj.get("kind")))
        if w:
            err(f"Warning: {w}")


def _label(obj: dict) -> str:
    if obj.get("kind") == "Status":  # what a Binding's create answers: kubectl's name
        return "status/<unknown>"    # printer finds neither a resource nor a name in it
    res = for_object(obj)
    return f"{res.type_name}/{obj['metadata'].get('name') or obj['metadata'].get('generateName')}"


def _merge_apply(live: dict, last: dict | None, new: dict) -> dict:
    """Three-way merge (kubectl apply): drop what the last apply set and this one does not,
    overlay the new manifest; lists are replaced whole."""
    out_ = copy.deepcopy(live)

    def prune(target: dict, old: dict, cur: dict) -> None:
        for k, v in old.items():
            if k not in cur:
                target.pop(k, None)
            elif isinstance(v, dict) and isinstance(cur.get(k), dict) and isinstance(target.get(k), dict):
                prune(target[k], v, cur[k])

    def overlay(target: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(target.get(k), dict):
                overlay(target[k], v)
            else:
                target[k] = copy.deepcopy(v)

    if last:
        prune(out_, last, new)
    overlay(out_, new)
    return out_


def _dry_suffix(dry_run: str | None) -> str:
    if dry_run in (None, "none", "false"):
        return ""
    return " (server dry run)" if dry_run == "server" else " (dry run)"


def apply(ctx: Ctx, files: list[str], recursive: bool, record_cause: str | None,
          dry_run: str | None = None) -> int:
    plans = []
    # Dry run everything first: a bad document means nothing from these files is stored.
    for obj, d in _documents(ctx, files, recursive, record_cause):
        res = for_object(obj)
        md = obj["metadata"]
        if not md.get("name"):
            # manifests.check let it through only with a generateName; apply needs a name
            # to find the live object (kubectl's applyOneObject)
            raise CliError(f"error: from {md.get('generateName')}: cannot use generate name "
                           "with apply")
        anns = md.setdefault("annotations", {})
        last_cfg = copy.deepcopy(d.obj)
        last_cfg.get("metadata", {}).get("annotations", {}).pop(LAST_APPLIED, None)
        anns[LAST_APPLIED] = json.dumps(last_cfg, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            live = ctx.client.get(res.plural, md["name"], md.get("namespace"))
        except errors.NotFound:
            live = None
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        try:
            if live is None:
                ctx.client.create(obj, dry_run=True)
                plans.append(("created", obj, d))
            else:
                prev = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
                merged = _merge_apply(live, json.loads(prev) if prev else None, obj)
                merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                result = ctx.client.update(merged, dry_run=True)
                same = _strip(result) == _strip(live)
                plans.append(("unchanged" if same else "configured", merged, d))
        except errors.ApiError as e:
            action = "creating" if live is None else "patching"
            raise CliError(server_error(e, action, d.source)) from e
    return _carry_out(ctx, plans, dry_run, "applying")


def _documents(ctx: Ctx, files: list[str], recursive: bool,
               record_cause: str | None) -> list[tuple[dict, Doc]]:
    """The files' objects, prepared and their namespaces checked, each a private copy that
    carries the change cause when --record was given."""
    docs = _load(files, recursive)
    _prepare(ctx, docs)
    _check_namespaces(ctx, docs)
    found = []
    for d in docs:
        obj = copy.deepcopy(d.obj)
        if record_cause:
            obj["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = record_cause
        found.append((obj, d))
    return found


def _carry_out(ctx: Ctx, plans: list[tuple[str, dict, Doc]], dry_run: str | None,
               action: str) -> int:
    """Store what the dry runs accepted, or only say so under --dry-run. A server error on
    one object is printed and the others still go, as kubectl does."""
    if _dry_suffix(dry_run):
        for verb, obj, _ in plans:
            out(f"{_label(obj)} {verb}{_dry_suffix(dry_run)}")
        return 0
    failed = False
    for verb, obj, d in plans:
        try:
            if verb == "created":
                obj = ctx.client.create(obj)  # a generateName's name is the server's
            elif verb == "configured":
                ctx.client.update(obj)
            out(f"{_label(obj)} {verb}")
        except errors.ApiError as e:
            err(server_error(e, action, d.source))
            failed = True
    return 1 if failed else 0


def _strip(obj: dict) -> dict:
    o = copy.deepcopy(obj)
    for k in ("resourceVersion", "generation", "managedFields"):
        o.get("metadata", {}).pop(k, None)
    o.pop("status", None)
    return o


def _load(files: list[str], recursive: bool) -> list[Doc]:
    if not files:
        raise CliError("must specify one of -f and -k")
    try:
        return load(files, recursive)
    except ManifestError as e:
        raise CliError(f"error: {e}") from e
    except OSError as e:
        raise CliError(f"error: {e}") from e


def create(ctx: Ctx, files: list[str], recursive: bool, record_cause: str | None,
           dry_run: str | None = None) -> int:
    plans = []
    for obj, d in _documents(ctx, files, recursive, record_cause):
        try:
            tried = ctx.client.create(obj, dry_run=True)
        except errors.ApiError as e:
            raise CliError(server_error(e, "creating", d.source)) from e
        # a server dry run names a generateName object as the server would; a real create
        # sends the object without a name again, so the server picks the name it keeps
        plans.append(("created", tried if dry_run == "server" else obj, d))
    return _carry_out(ctx, plans, dry_run, "creating")


def _wait_gone(ctx: Ctx, items: list[tuple], timeout: float = 120) -> None:
    """kubectl delete waits (--wait=true) until the objects are really gone: an object of
    the same name with another uid (a StatefulSet's pod back by name) is a new one."""
    import time
    deadline = time.monotonic() + timeout

    def still_there(p: str, n: str, ns: str | None, uid: str | None = None) -> bool:
        cur = ctx.client.get_or_none(p, n, ns)
        return cur is not None and (uid is None or cur["metadata"].get("uid") == uid)
    left = list(items)
    while left and time.monotonic() < deadline:
        left = [item for item in left if still_there(*item)]
        if left:
            time.sleep(0.1)


def _uid(deleted) -> str | None:
    """The uid of what a DELETE returned (the object, or a Status naming it)."""
    if not isinstance(deleted, dict):
        return None
    return (deleted.get("metadata") or {}).get("uid") or \
        (deleted.get("details") or {}).get("uid")


def cascade_policy(value: str) -> str:
    """kubectl's --cascade: background (the default, also `true`), orphan (also `false`,
    deprecated), foreground; the DELETE's propagationPolicy."""
    v = (value or "background").lower()
    if v in ("true", "false"):
        if v == "false":
            err("warning: --cascade=false is deprecated (boolean value) and can be replaced "
                "with --cascade=orphan.")
        return "Background" if v == "true" else "Orphan"
    if v not in ("background", "orphan", "foreground"):
        raise CliError(f'error: invalid cascade value ({value}). Must be "background", '
                       '"foreground", or "orphan".')
    return v.capitalize()


def delete_files(ctx: Ctx, files: list[str], recursive: bool, grace: int | None,
                 ignore_not_found: bool, wait: bool = True, policy: str = "Background") -> int:
    docs = _load(files, recursive)
    _prepare(ctx, docs)
    rc = 0
    gone = []
    for d in docs:
        res = for_object(d.obj)
        md = d.obj["metadata"]
        if not md.get("name"):  # a generateName alone names nothing to delete
            err("error: resource name may not be empty")
            rc = 1
            continue
        try:
            deleted = ctx.client.delete(res.plural, md["name"], md.get("namespace"), grace,
                                        policy)
            out(_deleted(res, md["name"], md.get("namespace") or ctx.ns))
            gone.append((res.plural, md["name"], md.get("namespace"), _uid(deleted)))
        except errors.NotFound as e:
            if not ignore_not_found:
                err(server_error(e, "deleting", d.source))
                rc = 1
        except errors.ApiError as e:
            err(server_error(e, "deleting", d.source))
            rc = 1
    if wait:
        _wait_gone(ctx, gone)
    return rc


def _deleted(res, name: str, namespace: str | None) -> str:
    """kubectl 1.37's line: a namespaced object's says which namespace it left."""
    if res.namespaced and namespace:
        return f'{res.type_name} "{name}" deleted from {namespace} namespace'
    return f'{res.type_name} "{name}" deleted'


def delete_named(ctx: Ctx, kind: str, names: list[str], selector: str | None, all_: bool,
                 grace: int | None, ignore_not_found: bool, wait: bool = True,
                 policy: str = "Background") -> int:
    res = lookup(kind)
    rc = 0
    if selector or all_:
        objs = ctx.client.list(res.plural, ctx.ns if res.namespaced else None, selector)
        names = [o["metadata"]["name"] for o in objs]
        if not names:
            out("No resources found")
            return 0
    if not names:
        raise CliError("error: resource(s) were provided, but no name was specified")
    gone = []
    for n in names:
        try:
            deleted = ctx.client.delete(res.plural, n, ctx.ns if res.namespaced else None, grace,
                                        policy)
            out(_deleted(res, n, ctx.ns))
            gone.append((res.plural, n, ctx.ns if res.namespaced else None, _uid(deleted)))
        except errors.NotFound as e:
            if not ignore_not_found:
                err(server_error(e))
                rc = 1
        except errors.ApiError as e:
            err(server_error(e))
            rc = 1
    if wait:
        _wait_gone(ctx, gone)
    return rc


__all__ = ["apply", "create", "delete_files", "delete_named", "BY_PLURAL"]
