"""metadata.managedFields and server-side apply, as kube-apiserver's field manager keeps them
(k8s.io/apimachinery/pkg/util/managedfields over structured-merge-diff's merge.Updater).

Every write that names a fieldManager (kubectl always does: kubectl-client-side-apply,
kubectl-edit, kubectl-set, kubectl-patch, ...) records what it changed under an `Update`
entry of that manager (its API version, the time, FieldsV1); an apply owns exactly the
fields of its configuration under an `Apply` entry, drops the fields it applied last time
and no longer does (unless someone else owns them too) and fails with 409 when it would
change a field another manager owns, unless forced. kubectl's own apply manager
("kubectl") is let through on fields its client-side last-applied annotation already set
to the live value, and keeps that annotation in step, as upstream's lastApplied managers do.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from netsim.api import errors
from netsim.api.openapi import schema as openapi
from netsim.api.patch import fields as fp

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# stripMetaManager: never owned by anyone.
_STRIPPED = {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)} | {
    (("f", "metadata"), ("f", k)) for k in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")}
_STATUS = (("f", "status"),)


def _ignore(paths: fp.PathSet, sub: str | None) -> fp.PathSet:
    """The fields an operation can own: status only through /status, the rest only not."""
    if sub == "status":
        return {p for p in paths if p[:1] == _STATUS}
    return {p for p in paths if p not in _STRIPPED and p[:1] != _STATUS}


def _key(e: dict) -> tuple:
    """BuildManagerIdentifier: appliers are one manager whatever version they applied."""
    op = e.get("operation", "")
    return (e.get("manager", ""), op, "" if op == "Apply" else e.get("apiVersion", ""),
            e.get("subresource", "") or "")


class Managers:
    """The decoded managedFields of an object: identifier -> [entry, set]."""

    def __init__(self, entries: Any):
        self.sets: dict[tuple, fp.PathSet] = {}
        self.meta: dict[tuple, dict] = {}
        for e in entries if isinstance(entries, list) else []:
            if not isinstance(e, dict):
                continue
            k = _key(e)
            self.sets[k] = fp.decode(e.get("fieldsV1"))
            self.meta[k] = {x: e[x] for x in ("manager", "operation", "apiVersion", "time",
                                             "subresource") if e.get(x)}

    def encode(self) -> list[dict]:
        out = []
        for k, s in self.sets.items():
            if not s:
                continue
            m = self.meta[k]
            e = {"manager": m.get("manager", ""), "operation": m.get("operation", "")}
            if m.get("apiVersion"):
                e["apiVersion"] = m["apiVersion"]
            if m.get("time"):
                e["time"] = m["time"]
            e["fieldsType"] = "FieldsV1"
            e["fieldsV1"] = fp.encode(s)
            if m.get("subresource"):
                e["subresource"] = m["subresource"]
            out.append(e)
        # sortEncodedManagedFields: operation, time, manager, apiVersion, subresource
        out.sort(key=lambda e: (e["operation"], e.get("time", ""), e["manager"],
                                e.get("apiVersion", ""), e.get("subresource", "")))
        return out


def _node(obj: dict) -> Any:
    return openapi.resolve(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))


def _stripped(obj: dict) -> dict:
    out = dict(obj)
    md = out.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        out["metadata"] = {k: v for k, v in md.items() if k != "managedFields"}
    return out


def _store(obj: dict, managers: Managers) -> dict:
    md = obj.setdefault("metadata", {})
    entries = managers.encode()
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)
    return obj


def update(live: dict | None, new: dict, manager: str, api_version: str, sub: str | None,
           now: str) -> dict:
    """Record an ordinary write (create, update, any non-apply patch) by `manager`: it owns
    what it changed; others lose what it changed or removed (Updater.Update)."""
    if not isinstance(new.get("metadata"), dict):
        return new
    nmd = new["metadata"]
    if "managedFields" in nmd:  # a client may reset them (an empty list clears them)
        managers = Managers(nmd["managedFields"])
    else:
        managers = Managers(((live or {}).get("metadata") or {}).get("managedFields"))
    node = _node(new)
    added, modified, removed = fp.compare(_stripped(live) if live else {}, _stripped(new), node)
    changed = _ignore(added | modified, sub)
    removed = _ignore(removed, sub)
    me = (manager, "Update", api_version, sub or "")
    for k in list(managers.sets):
        if k != me:
            managers.sets[k] = managers.sets[k] - changed - removed
    if changed:
        managers.sets[me] = (managers.sets.get(me, set()) - removed) | changed
        managers.meta[me] = {"manager": manager, "operation": "Update",
                             "apiVersion": api_version, "time": now,
                             **({"subresource": sub} if sub else {})}
    elif me in managers.sets:
        managers.sets[me] = managers.sets[me] - removed
    return _store(new, managers)


def _conflict_error(conflicts: list[tuple[tuple, fp.Path]], managers: Managers) -> errors.ApiError:
    """NewConflictError in the apiserver's words."""
    def who(k: tuple) -> str:
        m = managers.meta.get(k, {})
        s = json.dumps(m.get("manager", ""))
        if m.get("subresource"):
            s += f" with subresource {json.dumps(m['subresource'])}"
        if m.get("operation") == "Update":
            s += f" using {m.get('apiVersion', '')}"
        return s
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {who(k)}",
               "field": fp.path_string(p)} for k, p in conflicts]
    if len(conflicts) == 1:
        k, p = conflicts[0]
        msg = f"Apply failed with 1 conflict: conflict with {who(k)}: {fp.path_string(p)}"
    else:
        lines = []
        by: dict[str, list] = {}
        for k, p in conflicts:
            by.setdefault(who(k), []).append(p)
        for name in sorted(by):
            lines.append(f"conflicts with {name}:")
            lines += [f"- {fp.path_string(p)}" for p in by[name]]
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.ApiError(msg, code=409, reason="Conflict", details={"causes": causes})


def _allowed_by_last_applied(live: dict, node: Any) -> fp.PathSet:
    """lastAppliedManager: the fields client-side apply set to what is live now."""
    la = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not la:
        return set()
    try:
        last = json.loads(la)
    except ValueError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
        return set()
    added, modified, removed = fp.compare(last, _stripped(live), node)
    return fp.to_set(last, node) - added - modified - removed


def _go_json(obj: Any) -> str:
    """encoding/json's Encoder output: sorted keys, HTML characters escaped, a newline."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def apply(live: dict | None, config: dict, manager: str, api_version: str, sub: str | None,
          force: bool, now: str) -> dict:
    """Server-side apply of `config` by `manager` onto `live` (None: the object is new)."""
    if config.get("apiVersion") != api_version:
        raise errors.BadRequest("Incorrect version specified in apply patch. Specified patch "
                                f"version: {_gv(config.get('apiVersion'))}, expected: "
                                f"{api_version}")
    cmd = config.get("metadata")
    if isinstance(cmd, dict) and cmd.get("managedFields"):
        raise errors.BadRequest("metadata.managedFields must be nil")
    node = _node(config)
    bad = fp.problems(config, node)
    if bad:
        md = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        group, _, version = api_version.rpartition("/")
        raise errors.ApiError(
            f"failed to create typed patch object ({md.get('namespace') or ''}/"
            f"{md.get('name') or ''}; {group}/{version}, Kind={config.get('kind') or ''}): "
            + (bad[0] if len(bad) == 1 else "errors:\n" + "\n".join("  " + b for b in bad)),
            code=500, reason="")
    live = live if live is not None else {}
    managers = Managers((live.get("metadata") or {}).get("managedFields"))
    live_s = _stripped(live)
    new = fp.merge(copy.deepcopy(live_s), copy.deepcopy(config), node)
    me = (manager, "Apply", "", sub or "")
    applied = _ignore(fp.to_set(config, node), sub)
    last = managers.sets.get(me)
    managers.sets[me] = applied
    old_meta = managers.meta.get(me, {})
    managers.meta[me] = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
                         **({"time": old_meta["time"]} if old_meta.get("time") else {}),
                         **({"subresource": sub} if sub else {})}
    if last:
        owned = set().union(*managers.sets.values())
        drop = [p for p in last - owned
                if not any(o[:len(p)] == p and o != p for o in owned)]
        if drop:
            new = fp.remove(new, drop, node)
    added, modified, removed = fp.compare(live_s, new, node)
    changed = _ignore(added | modified, sub)
    removed = _ignore(removed, sub)
    conflicts = [(k, p) for k, s in managers.sets.items() if k != me
                 for p in sorted(s & changed, key=fp.path_order)]
    if conflicts and not force and manager == "kubectl":
        allowed = _allowed_by_last_applied(live, node)
        if all(p in allowed for _, p in conflicts):
            force = True
        else:
            conflicts = [(k, p) for k, p in conflicts if p not in allowed]
    if conflicts and not force:
        raise _conflict_error(conflicts, managers)
    for k in list(managers.sets):
        if k != me:
            managers.sets[k] = managers.sets[k] - changed - removed
    if new != live_s or not managers.meta[me].get("time"):
        managers.meta[me]["time"] = now
    ann = ((new.get("metadata") or {}).get("annotations") or {})
    if manager == "kubectl" and ann.get(LAST_APPLIED):
        la = copy.deepcopy(config)
        cann = (la.get("metadata") or {}).get("annotations")
        if isinstance(cann, dict):
            cann.pop(LAST_APPLIED, None)
        ann[LAST_APPLIED] = _go_json(la)
    return _store(new, managers)


def _gv(api_version: Any) -> str:
    return api_version if isinstance(api_version, str) else ""
