"""DELETE's propagation policy (DeleteOptions.propagationPolicy / orphanDependents) and the
garbage-collection finalizers it puts on the object, as upstream's generic registry does
(ValidateDeleteOptions, shouldOrphanDependents, shouldDeleteDependents,
deletionFinalizersForGarbageCollection).

Background: the object goes now, the garbage collector deletes its dependents afterwards.
Orphan: the object stays, with the `orphan` finalizer, until the collector has removed it
from its dependents' ownerReferences. Foreground: the object stays, with
`foregroundDeletion`, until the collector has deleted the dependents that block it
(ownerReference blockOwnerDeletion). No policy: the object's own GC finalizer if it has one,
else the kind's default (batch/v1 Jobs orphan their pods, for backward compatibility).
"""

from __future__ import annotations

from netsim.api import errors

ORPHAN, BACKGROUND, FOREGROUND = "Orphan", "Background", "Foreground"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# Kinds whose default policy is to orphan (upstream's DefaultGarbageCollectionPolicy).
DEFAULT_ORPHAN = {"jobs"}
# The kinds netsim's garbage collector watches as owners (netsim.controllers.gc). Only these
# get its finalizers: any other kind has no dependents here, so Orphan and Foreground are
# Background for it (upstream's collector would drop the finalizer at once).
OWNERS = ("deployments", "replicasets", "services", "daemonsets", "statefulsets", "jobs",
          "cronjobs", "nodes")


def _invalid(message: str) -> errors.Invalid:
    return errors.Invalid(f'DeleteOptions.meta.k8s.io "" is invalid: {message}',
                          details={"group": "meta.k8s.io", "kind": "DeleteOptions", "name": "",
                                   "causes": [{"message": message}]})


def _bool(v) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):  # a query parameter
        return v.lower() not in ("", "0", "false")
    raise errors.BadRequest("json: cannot unmarshal " + type(v).__name__ + " into Go struct "
                            "field DeleteOptions.orphanDependents of type bool")


def policy(query: dict, options: dict | None) -> str | None:
    """The request's propagation policy (None: the object's or kind's default), checked as
    ValidateDeleteOptions does. DeleteOptions in the body win over the query."""
    options = options if isinstance(options, dict) else {}
    pp = options.get("propagationPolicy", query.get("propagationPolicy"))
    orphan = _bool(options.get("orphanDependents", query.get("orphanDependents")))
    if pp is not None and not isinstance(pp, str):
        raise errors.BadRequest("json: cannot unmarshal " + type(pp).__name__ + " into Go "
                                "struct field DeleteOptions.propagationPolicy of type "
                                "v1.DeletionPropagation")
    if orphan is not None and pp is not None:
        raise _invalid(f'propagationPolicy: Invalid value: "{pp}": orphanDependents and '
                       "deletionPropagation cannot be both set")
    if pp is not None and pp not in (ORPHAN, BACKGROUND, FOREGROUND):
        raise _invalid(f'propagationPolicy: Unsupported value: "{pp}": supported values: '
                       '"Foreground", "Background", "Orphan", "nil"')
    if orphan is not None:
        return ORPHAN if orphan else BACKGROUND
    return pp


def finalizers(plural: str, finalizers: list, pp: str | None) -> list | None:
    """The object's finalizers after a DELETE with policy `pp` (None: unchanged)."""
    if plural not in OWNERS or plural == "nodes":  # a node's deletion keeps its pods
        return None
    current = [f for f in finalizers or [] if isinstance(f, str)]
    if pp == ORPHAN:
        orphan, foreground = True, False
    elif pp in (BACKGROUND, FOREGROUND):
        orphan, foreground = False, pp == FOREGROUND
    elif ORPHAN_FINALIZER in current:
        orphan, foreground = True, False
    elif FOREGROUND_FINALIZER in current:
        orphan, foreground = False, True
    else:
        orphan, foreground = plural in DEFAULT_ORPHAN, False
    new = [f for f in current if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if orphan:
        new.append(ORPHAN_FINALIZER)
    if foreground:
        new.append(FOREGROUND_FINALIZER)
    return None if set(new) == set(current) else new
