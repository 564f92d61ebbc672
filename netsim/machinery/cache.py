"""The informer's cache: objects by key (`ns/name`, or `name` when cluster-scoped) with
secondary indexes, as client-go's thread-safe Store/Indexer.

Objects in the cache are shared with every reader: treat them as read-only and copy
(clone()) before changing one to write it back.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Callable, Iterable

from netsim.api.client import Client

# index name -> function from an object to the index values it is filed under
IndexFunc = Callable[[dict], Iterable[str]]

NAMESPACE = "namespace"


def key_of(obj: dict) -> str:
    """client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` without a namespace."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name', '')}" if ns else md.get("name", "")


def status_only_change(old: dict, new: dict) -> bool:
    """Whether an update changed nothing but the object's status (and its resourceVersion
    and managedFields): a status write, which its owner's own handlers need not act on."""
    def rest(obj: dict) -> tuple:
        md = obj.get("metadata") or {}
        return ({k: v for k, v in md.items() if k not in ("resourceVersion", "managedFields")},
                {k: v for k, v in obj.items() if k not in ("metadata", "status")})
    return rest(old) == rest(new)


def split_key(key: str) -> tuple[str | None, str]:
    """`ns/name` -> (ns, name); `name` -> (None, name)."""
    if "/" in key:
        ns, name = key.split("/", 1)
        return ns, name
    return None, key


def clone(obj: dict | None) -> dict | None:
    """A private deep copy of a cached (JSON) object: a JSON round trip, several times
    cheaper than copy.deepcopy."""
    return None if obj is None else json.loads(json.dumps(obj, separators=(",", ":")))


def _key_order(key: str) -> tuple[str, str]:
    """The API's order of a key's object (namespace, name): a cluster-scoped `name` sorts
    as ("", name), as its object would."""
    ns, name = split_key(key)
    return ns or "", name


class DeletedFinalStateUnknown(dict):
    """An object found gone on a relist: its delete event was missed, so this is the last
    state the cache knew (client-go's tombstone). It is that object, plus `.key`."""

    def __init__(self, key: str, obj: dict):
        super().__init__(obj)
        self.key = key


# ---- index functions ------------------------------------------------------------------------
def namespace_index(obj: dict) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def node_name_index(obj: dict) -> list[str]:
    """Pods by spec.nodeName (unscheduled pods under "")."""
    return [(obj.get("spec") or {}).get("nodeName") or ""]


def controller_uid_index(obj: dict) -> list[str]:
    """Objects by the uid of their controller ownerReference."""
    for r in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if r.get("controller") and r.get("uid"):
            return [r["uid"]]
    return []


def label_index(label: str) -> IndexFunc:
    """Objects by the value of one label, e.g. EndpointSlices by kubernetes.io/service-name."""
    def fn(obj: dict) -> list[str]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return [labels[label]] if label in labels else []
    return fn


# ---- the cache ----------------------------------------------------------------------------
class Indexer:
    """Thread-safe objects by key, with named indexes (always one by namespace)."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None):
        self._lock = threading.RLock()
        self._items: dict[str, dict] = {}
        self.indexers: dict[str, IndexFunc] = {NAMESPACE: namespace_index}
        # index name -> value -> keys
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE: {}}
        # (index name, value), or None for every object -> its keys in the API's order,
        # built on the first list and kept in order as keys join and leave (bisect): a
        # controller lists the same namespace's pods on every sync, and sorting them each
        # time was most of a list's cost; sorting again after every join made a 5,000-pod
        # rollout's lists O(n log n) per pod.
        self._order: dict[tuple[str, str] | None, list[str]] = {}
        self.add_indexers(indexers or {})

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indexes (also after objects are in: the new ones are built at once). An index
        already there under the same name and function is left as it is."""
        with self._lock:
            for name, fn in indexers.items():
                if self.indexers.get(name) is fn:
                    continue
                if name in self.indexers:
                    raise ValueError(f"indexer {name!r} already exists")
                self.indexers[name] = fn
                self._indices[name] = {}
                for key, obj in self._items.items():
                    self._file(name, key, obj)

    # -- writes (the informer's) -----------------------------------------------------------
    def upsert(self, obj: dict) -> dict | None:
        """Store `obj` under its key; returns the object it replaced, if any."""
        key = key_of(obj)
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            if old is None:
                self._ordered_add(None, key)
                for name in self.indexers:
                    self._file(name, key, obj)
                return None
            for name, fn in self.indexers.items():
                before, after = fn(old), fn(obj)
                if before != after:  # filed elsewhere now
                    self._unfile(name, key, before)
                    self._file(name, key, obj, after)
            return old

    def delete(self, key: str) -> dict | None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._ordered_remove(None, key)
                self._unfile_all(key, old)
            return old

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def list(self, namespace: str | None = None) -> list[dict]:
        """Every object (of one namespace), in the API's order (namespace, name)."""
        if namespace:
            return self.by_index(NAMESPACE, namespace)
        with self._lock:
            return self._in_order(None, self._items)

    def by_index(self, index: str, value: str) -> list[dict]:
        """The objects filed under `value` in index `index`, in the API's order."""
        with self._lock:
            if index not in self._indices:
                raise KeyError(f"no index {index!r}")
            return self._in_order((index, value), self._indices[index].get(value, ()))

    def _in_order(self, which: tuple[str, str] | None, keys) -> list[dict]:
        """The objects of `keys` (held under `which` in _order) in the API's order."""
        items = self._items
        order = self._order.get(which)
        if order is None:
            order = sorted(keys, key=_key_order)
            if order:
                self._order[which] = order
        return [items[k] for k in order]

    def _ordered_add(self, which: tuple[str, str] | None, key: str) -> None:
        order = self._order.get(which)
        if order is not None:
            bisect.insort(order, key, key=_key_order)

    def _ordered_remove(self, which: tuple[str, str] | None, key: str) -> None:
        order = self._order.get(which)
        if order is None:
            return
        i = bisect.bisect_left(order, _key_order(key), key=_key_order)
        if i < len(order) and order[i] == key:
            del order[i]
        if not order:
            del self._order[which]

    def index_values(self, index: str) -> list[str]:
        with self._lock:
            return sorted(v for v, ks in self._indices[index].items() if ks)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    # -- internals -------------------------------------------------------------------------
    def _file(self, name: str, key: str, obj: dict, values: list[str] | None = None) -> None:
        idx = self._indices[name]
        for value in self.indexers[name](obj) if values is None else values:
            keys = idx.setdefault(value, set())
            if key not in keys:
                keys.add(key)
                self._ordered_add((name, value), key)

    def _unfile(self, name: str, key: str, values: list[str]) -> None:
        idx = self._indices[name]
        for value in values:
            keys = idx.get(value)
            if keys is not None and key in keys:
                keys.remove(key)
                self._ordered_remove((name, value), key)
                if not keys:
                    del idx[value]

    def _unfile_all(self, key: str, obj: dict) -> None:
        for name, fn in self.indexers.items():
            self._unfile(name, key, fn(obj))


class ApiLister:
    """The Indexer's read calls answered by the API itself, for code that runs without a
    started informer (unit tests and the offline renderer call reconcile() by hand)."""

    def __init__(self, client: Client, resource: str, indexers: dict[str, IndexFunc]):
        self.client, self.resource, self.indexers = client, resource, indexers

    def get(self, key: str) -> dict | None:
        ns, name = split_key(key)
        return self.client.get_or_none(self.resource, name, ns)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict | None:
        return self.client.get_or_none(self.resource, name, namespace)

    def list(self, namespace: str | None = None) -> list[dict]:
        return self.client.list(self.resource, namespace)

    def by_index(self, index: str, value: str) -> list[dict]:
        if index == NAMESPACE:
            return self.client.list(self.resource, value)
        fn = self.indexers[index]
        return [o for o in self.client.list(self.resource) if value in fn(o)]
