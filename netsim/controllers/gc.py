"""Garbage collection (ownerReferences; background, orphan and foreground propagation) and
namespace deletion."""

from __future__ import annotations

import contextlib
import time

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.propagation import FOREGROUND, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, OWNERS
from netsim.api.resources import BY_KIND, BY_PLURAL, RESOURCES
from netsim.controllers.periodic import PeriodicController
from netsim.machinery import InformerFactory

DEPENDENT_KINDS = ("pods", "replicasets", "endpointslices", "controllerrevisions", "jobs",
                   "persistentvolumeclaims")  # a StatefulSet's claims (retention Delete)
OWNER_KINDS = OWNERS


def _readable(refs) -> bool:
    """ownerReferences as the API stores them: a list of objects with string kind/name/uid."""
    return isinstance(refs, list) and all(
        isinstance(r, dict) and all(isinstance(r.get(f, ""), str) for f in ("kind", "name", "uid"))
        for r in refs)


def _alive(plural: str, obj: dict) -> bool:
    """An owner that keeps its dependents: not being deleted (nodes always), or being
    deleted with the orphan finalizer (its dependents stay, without it)."""
    md = obj["metadata"]
    return not md.get("deletionTimestamp") or plural == "nodes" or \
        ORPHAN_FINALIZER in (md.get("finalizers") or [])


def _finalizers(obj: dict) -> list:
    f = obj["metadata"].get("finalizers")
    return f if isinstance(f, list) else []


class GarbageCollector(PeriodicController):
    """Deletes objects whose owners are all gone; empties and removes terminating namespaces.

    Owners and dependents come from the informers' caches; before a dependent is deleted
    its owners are looked up in the API (upstream's attemptToDeleteItem does the same),
    since an owner's cache may not yet hold an owner created a moment ago. Emptying a
    namespace lists its contents from the API, as upstream's namespace controller does.
    """

    name = "garbage-collector"
    watches = tuple(dict.fromkeys(OWNER_KINDS + DEPENDENT_KINDS + ("namespaces",)))
    # A sweep reads every owner and dependent in the caches: once a second, on a quiet
    # cluster too, its CPU growing with the cluster (the Deployment rollout's profile:
    # ~20 ms a sweep at 200 pods, profiler included). It runs when one of them
    # changed since the last sweep (upstream's collector is driven by the same events),
    # and at least this often regardless (a write that failed is tried again).
    full_sweep_every = 30.0

    def __init__(self, client: Client, period: float = 1.0,
                 informers: InformerFactory | None = None):
        super().__init__(client, period, informers)
        self._changed = True
        self._last_sweep = float("-inf")
        self._handlers: list = []

    def start(self):
        def changed(*_):
            self._changed = True
        for res in self.watches:
            inf = self.informer(res)
            self._handlers.append((inf, inf.add_handler(on_add=changed, on_update=changed,
                                                        on_delete=changed)))
        return super().start()

    def stop(self) -> None:
        for inf, h in self._handlers:
            inf.remove_handler(h)
        self._handlers = []
        super().stop()

    def needs_sweep(self) -> bool:
        now = time.monotonic()
        if not self._changed and now < self._last_sweep + self.full_sweep_every:
            return False
        self._changed = False  # before the sweep: a change during it brings the next one
        self._last_sweep = now
        return True

    def sweep(self) -> int:
        """One pass; returns how many objects it deleted."""
        uids, owners = set(), []
        for plural in OWNER_KINDS:
            for o in self.lister(plural).list():
                if _alive(plural, o):
                    uids.add(o["metadata"]["uid"])
                if o["metadata"].get("deletionTimestamp"):
                    owners.append((plural, o))
        # owner uid -> its dependents, with the reference naming it
        dependents: dict[str, list[tuple[str, dict, dict]]] = {}
        owned: list[tuple[str, dict, list]] = []  # read once: every dependent, every sweep
        for plural in DEPENDENT_KINDS:
            for o in self.lister(plural).list():
                refs = o["metadata"].get("ownerReferences") or []
                if _readable(refs):
                    owned.append((plural, o, refs))
                    for r in refs:
                        dependents.setdefault(r.get("uid", ""), []).append((plural, o, r))
        foreground = set()
        for plural, owner in owners:
            uid, deps = owner["metadata"]["uid"], dependents.get(owner["metadata"]["uid"], [])
            if ORPHAN_FINALIZER in _finalizers(owner):
                self._orphan(plural, owner, deps)
            elif FOREGROUND_FINALIZER in _finalizers(owner):
                foreground.add(uid)
                if not any(r.get("blockOwnerDeletion") is True for _, _, r in deps):
                    self._finish(plural, owner, FOREGROUND_FINALIZER)
        deleted = 0
        # (the unreadable ones, written around admission, are never deleted on a guess)
        for plural, o, refs in owned:
            if refs and not any(r.get("uid") in uids for r in refs) \
                    and not o["metadata"].get("deletionTimestamp") \
                    and not self._an_owner_exists(o):
                # a dependent of a foreground deletion that has dependents itself goes
                # in the foreground too (upstream's attemptToDeleteItem)
                kw = {"propagation_policy": FOREGROUND} if o["metadata"]["uid"] in \
                    dependents and any(r.get("uid") in foreground for r in refs) else {}
                with contextlib.suppress(errors.NotFound):
                    self.client.delete(plural, o["metadata"]["name"],
                                       o["metadata"].get("namespace"), **kw)
                    deleted += 1
        for ns in self.lister("namespaces").list():
            if ns["metadata"].get("deletionTimestamp"):
                deleted += self._empty_namespace(ns)
        return deleted

    def _orphan(self, plural: str, owner: dict, deps: list[tuple[str, dict, dict]]) -> None:
        """Orphan propagation: drop the owner from its dependents' ownerReferences, then
        its orphan finalizer (the owner goes once none is left)."""
        uid = owner["metadata"]["uid"]
        for dplural, dep, _ in deps:
            refs = [r for r in dep["metadata"].get("ownerReferences") or []
                    if r.get("uid") != uid]
            try:
                self.client.patch(dplural, dep["metadata"]["name"],
                                  dep["metadata"].get("namespace"),
                                  {"metadata": {"ownerReferences": refs or None}})
            except errors.NotFound:
                continue
            except errors.ApiError:
                return  # retried next sweep; the finalizer stays until all are orphaned
        self._finish(plural, owner, ORPHAN_FINALIZER)

    def _finish(self, plural: str, owner: dict, finalizer: str) -> None:
        """Remove one of the collector's finalizers from an owner being deleted."""
        md = owner["metadata"]
        rest = [f for f in _finalizers(owner) if f != finalizer]
        with contextlib.suppress(errors.NotFound):
            self.client.patch(plural, md["name"], md.get("namespace"),
                              {"metadata": {"finalizers": rest or None}})

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
