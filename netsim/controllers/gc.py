"""Garbage collection (ownerReferences, background propagation) and namespace deletion."""

from __future__ import annotations

import contextlib

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.resources import BY_PLURAL, RESOURCES
from netsim.controllers.periodic import PeriodicController

DEPENDENT_KINDS = ("pods", "replicasets", "endpointslices", "controllerrevisions", "jobs")
OWNER_KINDS = ("deployments", "replicasets", "services", "daemonsets", "statefulsets", "jobs",
               "cronjobs", "nodes")


class GarbageCollector(PeriodicController):
    """Deletes objects whose owners are all gone; empties and removes terminating namespaces."""

    name = "garbage-collector"

    def __init__(self, client: Client, period: float = 1.0):
        super().__init__(client, period)

    def sweep(self) -> int:
        """One pass; returns how many objects it deleted."""
        uids = set()
        for plural in OWNER_KINDS:
            for o in self.client.list(plural):
                if not o["metadata"].get("deletionTimestamp") or plural == "nodes":
                    uids.add(o["metadata"]["uid"])
        deleted = 0
        for plural in DEPENDENT_KINDS:
            for o in self.client.list(plural):
                refs = o["metadata"].get("ownerReferences") or []
                if refs and not any(r.get("uid") in uids for r in refs) \
                        and not o["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(errors.NotFound):
                        self.client.delete(plural, o["metadata"]["name"],
                                           o["metadata"].get("namespace"))
                        deleted += 1
        for ns in self.client.list("namespaces"):
            if ns["metadata"].get("deletionTimestamp"):
                deleted += self._empty_namespace(ns)
        return deleted

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
            ns["metadata"]["finalizers"] = []
            with contextlib.suppress(errors.ApiError):
                self.client.update(ns)
        return left


__all__ = ["GarbageCollector", "BY_PLURAL"]
