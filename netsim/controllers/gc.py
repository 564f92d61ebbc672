"""Garbage collection (ownerReferences, background propagation) and namespace deletion."""

from __future__ import annotations

import contextlib

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.resources import BY_KIND, BY_PLURAL, RESOURCES
from netsim.controllers.periodic import PeriodicController
from netsim.machinery import InformerFactory

DEPENDENT_KINDS = ("pods", "replicasets", "endpointslices", "controllerrevisions", "jobs")
OWNER_KINDS = ("deployments", "replicasets", "services", "daemonsets", "statefulsets", "jobs",
               "cronjobs", "nodes")


def _readable(refs) -> bool:
    """ownerReferences as the API stores them: a list of objects with string kind/name/uid."""
    return isinstance(refs, list) and all(
        isinstance(r, dict) and all(isinstance(r.get(f, ""), str) for f in ("kind", "name", "uid"))
        for r in refs)


def _alive(plural: str, obj: dict) -> bool:
    """An owner that keeps its dependents: not being deleted (nodes always)."""
    return not obj["metadata"].get("deletionTimestamp") or plural == "nodes"


class GarbageCollector(PeriodicController):
    """Deletes objects whose owners are all gone; empties and removes terminating namespaces.

    Owners and dependents come from the informers' caches; before a dependent is deleted
    its owners are looked up in the API (upstream's attemptToDeleteItem does the same),
    since an owner's cache may not yet hold an owner created a moment ago. Emptying a
    namespace lists its contents from the API, as upstream's namespace controller does.
    """

    name = "garbage-collector"
    watches = tuple(dict.fromkeys(OWNER_KINDS + DEPENDENT_KINDS + ("namespaces",)))

    def __init__(self, client: Client, period: float = 1.0,
                 informers: InformerFactory | None = None):
        super().__init__(client, period, informers)

    def sweep(self) -> int:
        """One pass; returns how many objects it deleted."""
        uids = set()
        for plural in OWNER_KINDS:
            for o in self.lister(plural).list():
                if _alive(plural, o):
                    uids.add(o["metadata"]["uid"])
        deleted = 0
        for plural in DEPENDENT_KINDS:
            for o in self.lister(plural).list():
                refs = o["metadata"].get("ownerReferences") or []
                if not _readable(refs):
                    continue  # written around admission: never delete on a guess
                if refs and not any(r.get("uid") in uids for r in refs) \
                        and not o["metadata"].get("deletionTimestamp") \
                        and not self._an_owner_exists(o):
                    with contextlib.suppress(errors.NotFound):
                        self.client.delete(plural, o["metadata"]["name"],
                                           o["metadata"].get("namespace"))
                        deleted += 1
        for ns in self.lister("namespaces").list():
            if ns["metadata"].get("deletionTimestamp"):
                deleted += self._empty_namespace(ns)
        return deleted

    def _an_owner_exists(self, obj: dict) -> bool:
        """The live check: does any owner of `obj` (same uid) still exist in the API?"""
        ns = obj["metadata"].get("namespace")
        for r in obj["metadata"].get("ownerReferences") or []:
            res = BY_KIND.get(r.get("kind", ""))
            if res is None or not r.get("name"):
                continue
            owner = self.client.get_or_none(res.plural, r["name"], ns if res.namespaced else None)
            if owner is not None and owner["metadata"].get("uid") == r.get("uid") \
                    and _alive(res.plural, owner):
                return True
        return False

    def _empty_namespace(self, ns: dict) -> int:
        name = ns["metadata"]["name"]
        left = 0
        for r in RESOURCES:
            if not r.namespaced:
                continue
            for o in self.client.list(r.plural, name):
                left += 1
                if not o["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(errors.NotFound):
                        self.client.delete(r.plural, o["metadata"]["name"], name)
        if left == 0:
            ns = {**ns, "metadata": {**ns["metadata"], "finalizers": []}}
            with contextlib.suppress(errors.ApiError):
                self.client.update(ns)
        return left


__all__ = ["GarbageCollector", "BY_PLURAL"]
