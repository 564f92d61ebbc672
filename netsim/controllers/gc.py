"""Garbage collection (ownerReferences; background, orphan and foreground propagation) and
namespace deletion."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.propagation import FOREGROUND, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, OWNERS
from netsim.api.resources import BY_KIND, BY_PLURAL, RESOURCES
from netsim.controllers.periodic import PeriodicController
from netsim.machinery import InformerFactory, key_of

log = logging.getLogger("netsim.controllers")

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


def _md(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _finalizers(obj: dict) -> list:
    f = obj["metadata"].get("finalizers")
    return f if isinstance(f, list) else []


def owner_uids_index(obj: dict) -> list[str]:
    """Dependents by the uid of each owner they name (readable ownerReferences only)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r["uid"] for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)
            and r["uid"]] if _readable(refs) else []


OWNER_UIDS = "gc-owner-uids"


class GarbageCollector(PeriodicController):
    """Deletes objects whose owners are all gone; empties and removes terminating namespaces.

    Driven by events, as upstream's graph builder: an owner deleted or being deleted
    brings its dependents (an index by owner uid) to be looked at, a new dependent or one
    whose ownerReferences changed is looked at, a dependent gone brings its owners (a
    foreground deletion may now finish). A pass costs what changed, not the cluster: a
    sweep of every owner and dependent each second made a 5,000-pod rollout O(n) per
    change. A full sweep still runs every `full_sweep_every` seconds (a write that failed
    is tried again sooner: its object stays pending).

    Owners and dependents come from the informers' caches; before a dependent is deleted
    its owners are looked up in the API (upstream's attemptToDeleteItem does the same),
    since an owner's cache may not yet hold an owner created a moment ago. Emptying a
    namespace lists its contents from the API, as upstream's namespace controller does.
    """

    name = "garbage-collector"
    watches = tuple(dict.fromkeys(OWNER_KINDS + DEPENDENT_KINDS + ("namespaces",)))
    indexers = {plural: {OWNER_UIDS: owner_uids_index} for plural in DEPENDENT_KINDS}
    full_sweep_every = 30.0

    def __init__(self, client: Client, period: float = 1.0,
                 informers: InformerFactory | None = None):
        super().__init__(client, period, informers)
        self._last_sweep = float("-inf")
        self._handlers: list = []
        self._lock = threading.Lock()
        self._owners: dict[str, tuple[str, str]] = {}  # owner uid -> (plural, key) to look at
        self._dependents: set[tuple[str, str]] = set()  # (plural, key) to look at
        self._terminating: set[str] = set()            # namespaces being emptied
        self.checked = 0  # dependents looked at by the last pass (tests, profiles)

    # -- events -----------------------------------------------------------------------------
    def start(self):
        for plural in OWNER_KINDS:
            inf = self.informer(plural)
            self._handlers.append((inf, inf.add_handler(
                on_add=lambda o, p=plural: self._owner_event(p, None, o),
                on_update=lambda old, new, p=plural: self._owner_event(p, old, new),
                on_delete=lambda o, p=plural: self._owner_gone(p, o))))
        for plural in DEPENDENT_KINDS:
            inf = self.informer(plural)
            self._handlers.append((inf, inf.add_handler(
                on_add=lambda o, p=plural: self._dependent_event(p, None, o),
                on_update=lambda old, new, p=plural: self._dependent_event(p, old, new),
                on_delete=self._dependent_gone)))
        inf = self.informer("namespaces")
        self._handlers.append((inf, inf.add_handler(
            on_add=self._namespace_event, on_update=lambda _, new: self._namespace_event(new),
            on_delete=self._namespace_gone)))
        self.wake()  # the first pass, the full sweep, once the caches are synced
        return super().start()

    def stop(self) -> None:
        for inf, h in self._handlers:
            inf.remove_handler(h)
        self._handlers = []
        super().stop()

    def _owner_event(self, plural: str, old: dict | None, new: dict) -> None:
        """An owner being deleted, or whose finalizers changed while it is."""
        md = _md(new)
        if md.get("deletionTimestamp") and (old is None or not _md(old).get("deletionTimestamp")
                                            or _md(old).get("finalizers") != md.get("finalizers")):
            self._owner_pending(plural, new)

    def _owner_gone(self, plural: str, obj: dict) -> None:
        self._owner_pending(plural, obj)

    def _owner_pending(self, plural: str, obj: dict) -> None:
        md = _md(obj)
        if md.get("uid"):
            with self._lock:
                self._owners[md["uid"]] = (plural, key_of(obj))
            self.wake()

    def _dependent_event(self, plural: str, old: dict | None, new: dict) -> None:
        refs = _md(new).get("ownerReferences")
        before = None if old is None else _md(old).get("ownerReferences")
        if old is not None and refs == before:
            return
        if refs:
            with self._lock:
                self._dependents.add((plural, key_of(new)))
            self.wake()
        if before:  # an owner it left may be waiting in the foreground for it
            self._refs_pending(_md(old).get("namespace"), before)

    def _dependent_gone(self, obj: dict) -> None:
        self._refs_pending(_md(obj).get("namespace"), _md(obj).get("ownerReferences"))

    def _refs_pending(self, ns: str | None, refs) -> None:
        """The owners `refs` name, to look at (one in the foreground may finish)."""
        if not _readable(refs):
            return
        with self._lock:
            before = len(self._owners)
            for r in refs:
                res = BY_KIND.get(r.get("kind", ""))
                if res is not None and res.plural in OWNER_KINDS and r.get("uid") \
                        and r.get("name"):
                    self._owners[r["uid"]] = (
                        res.plural, f"{ns}/{r['name']}" if res.namespaced and ns else r["name"])
            added = len(self._owners) > before
        if added:
            self.wake()

    def _namespace_event(self, ns: dict) -> None:
        if _md(ns).get("deletionTimestamp"):
            name = _md(ns).get("name", "")
            with self._lock:
                new = name not in self._terminating
                self._terminating.add(name)
            if new:  # then each period while it empties (its pods' grace periods)
                self.wake()

    def _namespace_gone(self, ns: dict) -> None:
        with self._lock:
            self._terminating.discard(_md(ns).get("name", ""))

    # -- passes -----------------------------------------------------------------------------
    def needs_sweep(self) -> bool:
        """Whether the next pass has work: something pending, a terminating namespace, or
        the full sweep's time."""
        with self._lock:
            return bool(self._owners or self._dependents or self._terminating) or \
                time.monotonic() >= self._last_sweep + self.full_sweep_every

    def tick(self) -> None:
        if time.monotonic() >= self._last_sweep + self.full_sweep_every:
            self.sweep()
        else:
            self.sweep_changes()

    def sweep(self) -> int:
        """A full pass over every owner being deleted and every dependent; returns how many
        objects it deleted."""
        self._last_sweep = time.monotonic()
        with self._lock:  # taken before the reads: what changes during them stays pending
            self._owners.clear()
            self._dependents.clear()
        owners: dict[str, tuple[str, str]] = {}
        for plural in OWNER_KINDS:
            for o in self.lister(plural).list():
                if _md(o).get("deletionTimestamp"):
                    owners[_md(o)["uid"]] = (plural, key_of(o))
        deps, by_owner = set(), {}
        for plural in DEPENDENT_KINDS:
            for o in self.lister(plural).list():
                for uid in owner_uids_index(o):
                    by_owner.setdefault(uid, []).append((plural, o))
                    deps.add((plural, key_of(o)))
        terminating = {_md(n)["name"] for n in self.lister("namespaces").list()
                       if _md(n).get("deletionTimestamp")}
        with self._lock:
            self._terminating |= terminating
        return self._collect(owners, deps, lambda uid: by_owner.get(uid, []))

    def sweep_changes(self) -> int:
        """A pass over what changed since the last one."""
        with self._lock:
            owners, self._owners = self._owners, {}
            deps, self._dependents = self._dependents, set()

        def dependents_of(uid: str) -> list[tuple[str, dict]]:
            return [(p, o) for p in DEPENDENT_KINDS
                    for o in self.lister(p).by_index(OWNER_UIDS, uid)]
        return self._collect(owners, deps, dependents_of)

    def _collect(self, owners: dict[str, tuple[str, str]], deps: set[tuple[str, str]],
                 dependents_of) -> int:
        """Owners being deleted or gone: orphan, finish or look at their dependents; then
        delete each dependent none of whose owners is alive. Whatever fails stays pending
        for the next pass."""
        for uid, (plural, key) in owners.items():
            owner = self.lister(plural).get(key)
            if owner is not None and _md(owner).get("uid") != uid:
                owner = None  # gone, and another of that name made since
            mine = dependents_of(uid)
            if owner is None or not _alive(plural, owner):
                deps.update((p, key_of(o)) for p, o in mine)
            if owner is None or not _md(owner).get("deletionTimestamp"):
                continue
            refs = [(p, o, r) for p, o in mine for r in _md(o)["ownerReferences"]
                    if r.get("uid") == uid]
            try:
                if ORPHAN_FINALIZER in _finalizers(owner):
                    self._orphan(plural, owner, refs)
                elif FOREGROUND_FINALIZER in _finalizers(owner) and \
                        not any(r.get("blockOwnerDeletion") is True for _, _, r in refs):
                    self._finish(plural, owner, FOREGROUND_FINALIZER)
            except errors.ApiError:
                self._owner_pending(plural, owner)
        deleted = 0
        self.checked = len(deps)
        for plural, key in sorted(deps):
            try:
                deleted += self._maybe_delete(plural, key, dependents_of)
            except errors.ApiError as e:
                log.info("garbage collector: %s %s: %s", plural, key, e)
                with self._lock:
                    self._dependents.add((plural, key))
        with self._lock:
            terminating = sorted(self._terminating)
        for name in terminating:
            ns = self.lister("namespaces").get(name)
            if ns is None or not _md(ns).get("deletionTimestamp"):
                self._namespace_gone({"metadata": {"name": name}})
            else:
                deleted += self._empty_namespace(ns)
        return deleted

    def _maybe_delete(self, plural: str, key: str, dependents_of) -> int:
        """Delete the dependent under `key` if none of its owners is alive (1 if so). The
        unreadable ones, written around admission, are never deleted on a guess."""
        o = self.lister(plural).get(key)
        if o is None or _md(o).get("deletionTimestamp"):
            return 0
        refs = _md(o).get("ownerReferences") or []
        if not refs or not _readable(refs):
            return 0
        ns = _md(o).get("namespace")
        found = [self._cached_owner(ns, r) for r in refs]
        if any(p and _alive(p, own) for p, own in found) or self._an_owner_exists(o):
            return 0
        # a dependent of a foreground deletion that has dependents itself goes in the
        # foreground too (upstream's attemptToDeleteItem)
        foreground = any(own and FOREGROUND_FINALIZER in _finalizers(own) for _, own in found)
        kw = {"propagation_policy": FOREGROUND} \
            if foreground and dependents_of(_md(o)["uid"]) else {}
        try:
            self.client.delete(plural, _md(o)["name"], ns, **kw)
        except errors.NotFound:
            return 0
        return 1

    def _cached_owner(self, ns: str | None, ref: dict) -> tuple[str | None, dict | None]:
        """(plural, owner) as the cache has the owner `ref` names (same uid), else
        (None, None): a kind the collector does not watch is looked up in the API."""
        res = BY_KIND.get(ref.get("kind", ""))
        if res is None or res.plural not in OWNER_KINDS or not ref.get("name"):
            return None, None
        own = self.lister(res.plural).get_by_name(ref["name"], ns if res.namespaced else None)
        if own is None or _md(own).get("uid") != ref.get("uid"):
            return None, None
        return res.plural, own

    def _orphan(self, plural: str, owner: dict, deps: list[tuple[str, dict, dict]]) -> None:
        """Orphan propagation: drop the owner from its dependents' ownerReferences, then
        its orphan finalizer (the owner goes once none is left). A failed patch raises: the
        owner stays pending, with its finalizer."""
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
