"""The object store: SQLite for durability, an in-memory event log for watch.

One writer (the control-plane process) owns it; every change bumps one global
resourceVersion, as etcd's revision does, so watches can resume from any version still
held in the event log.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

from netsim.api import errors, propagation
from netsim.api import fieldselectors as fsel
from netsim.api.discovery import WITH_STATUS
from netsim.api.kinds.types import check_decodes, json_kind
from netsim.api.resources import BY_PLURAL, Resource, for_object
from netsim.api.selectors import parse as parse_selector
from netsim.api.timeutil import format_rfc3339, parse_rfc3339

# admit(store, operation, new_obj, old_obj) -> new_obj  (may raise errors.Invalid)
Admission = Callable[["Store", str, dict, "dict | None"], dict]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  rv INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (resource, namespace, name));
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


def now_rfc3339(offset_s: float = 0) -> str:
    t = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_deletion(pod: dict, grace: int | None) -> bool | None:
    """A pod's DELETE as upstream's pod strategy and rest.BeforeDelete decide it, marking
    `pod` (deletionTimestamp, deletionGracePeriodSeconds, generation): True when it stays
    to terminate on its node (a grace period left), False when it goes now unless
    finalizers keep it, None when it is already terminating and this asks no sooner."""
    md = pod["metadata"]
    if grace is None:
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    if grace < 0:
        grace = 1  # a negative grace period means 1 s
    if not (pod.get("spec") or {}).get("nodeName") or \
            (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        grace = 0  # not scheduled, or finished: nothing to wait for
    if md.get("deletionTimestamp"):
        current = md.get("deletionGracePeriodSeconds")
        if not current:
            md["deletionGracePeriodSeconds"] = 0
            return False
        if grace >= current:
            return None
        # only shortened: counted from when the deletion was asked for
        asked = parse_rfc3339(md["deletionTimestamp"]) - timedelta(seconds=current)
        md["deletionTimestamp"] = format_rfc3339(asked + timedelta(seconds=grace))
        md["deletionGracePeriodSeconds"] = grace
        return grace > 0
    _mark_deleting(md, grace)
    return grace > 0


def _mark_deleting(md: dict, grace: int) -> None:
    """The marks of a deletion that waits (a grace period, finalizers): deletionTimestamp
    (`grace` s from now, kept when already set), deletionGracePeriodSeconds, and the
    generation bump of its first deletion (rest.BeforeDelete, markAsDeleting)."""
    if not md.get("deletionTimestamp"):
        md["deletionTimestamp"] = now_rfc3339(grace)
        if md.get("generation"):
            md["generation"] += 1
    md["deletionGracePeriodSeconds"] = grace


def _copy(obj: dict) -> dict:
    """A private deep copy of a JSON object (a JSON round trip: ~5x cheaper than deepcopy)."""
    return json.loads(json.dumps(obj, separators=(",", ":")))


def _decoded(obj, decode: bool = True, owned: bool = False) -> tuple[dict, Resource]:
    """A private copy of a write's body and its Resource, after the decoder's checks: the
    apiserver decodes a body into its Go type before anything reads a field, so a
    `metadata` that is no object or a `generateName` that is no string is a 400 in the
    decoder's words, not an exception in the store. A Store without admission stands for
    writes around the apiserver (what an older version may have stored; tests inject bad
    objects that way), so it skips the decoder as it skips admission. `owned`: the caller
    hands the object over (the HTTP API's body, parsed for this request alone), so it is
    not copied again."""
    if not isinstance(obj, dict):
        raise errors.BadRequest(
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{json_kind(obj)} into Go value of type struct {{ APIVersion string "
            '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }')
    if not owned:
        obj = _copy(obj)
    res = for_object(obj)
    if decode:
        check_decodes(obj, str(obj.get("apiVersion") or res.version).rsplit("/", 1)[-1])
    return obj, res


def _labels(obj: dict) -> dict:
    """An object's labels as a selector reads them (a store without admission may hold
    labels that are no map: to a selector, none)."""
    labels = (obj.get("metadata") or {}).get("labels")
    return dict(labels) if isinstance(labels, dict) else {}


_UNREAD = object()  # create(): the namespace not read yet

# Kinds whose create ignores a posted status (upstream's PrepareForCreate empties it; pods,
# namespaces and nodes keep or rebuild theirs, and a controller writes it through /status).
STATUS_RESET_ON_CREATE = {"deployments", "replicasets", "daemonsets", "statefulsets", "jobs",
                          "cronjobs", "ingresses"}


def _spec_part(obj: dict) -> dict:
    """What counts for `generation`: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Store:
    """Kubernetes-shaped CRUD + watch over SQLite. Thread-safe."""

    # A watch that yielded nothing for this long yields a BOOKMARK (kube-apiserver sends
    # them about once a minute; a second lets a stopped informer end within a second).
    BOOKMARK_AFTER = 1.0

    def __init__(self, path: str = ":memory:", admission: Admission | None = None,
                 history: int = 20000, history_bytes: int = 256 * 1024 * 1024,
                 event_ttl: float = 3600.0, clock: Callable[[], str] = now_rfc3339,
                 new_uid: Callable[[], str] = lambda: str(uuid.uuid4())):
        # clock / new_uid stamp creationTimestamp and uid; the offline cluster
        # (netsim/offline.py) passes fixed ones so its output is deterministic.
        self.clock, self.new_uid = clock, new_uid
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._written = threading.local()  # (object, text) of each thread's last write
        # Each watch has its own condition, and a write wakes only the watches its object
        # can reach (resource, namespace, selectors: the apiserver's watch cache dispatches
        # each event to the watchers it matches). Waking every watcher of a resource on
        # every write (each node's kubelet for every pod of every node) was most of a
        # write's cost.
        self._watchers: dict[str, set[_Watcher]] = {}
        # The watch log is capped by count and by the bytes of its texts (20000 large
        # objects would otherwise be gigabytes); a watcher older than its start gets 410.
        # Each entry: (rv, type, plural, namespace, labels, text, fields, prev) where
        # fields are the object's selectable fields and prev, for a change that altered
        # labels or fields, is (labels, fields, text) of the object before it: a watch with
        # a selector sends ADDED / DELETED when an object starts / stops matching.
        self._events: deque[tuple] = deque()
        # The same entries by resource: a watch reads only its own resource's changes (it
        # read the whole log since its last wake before: with 30 watches and a pod burst,
        # every watch walked every other resource's events too).
        self._events_by: dict[str, deque[tuple]] = {}
        self._history, self._history_bytes, self._event_bytes = history, history_bytes, 0
        # Events expire event_ttl seconds after their last write (kube-apiserver --event-ttl).
        self.event_ttl = event_ttl
        self._next_event_sweep = 0.0
        self.admission = admission
        row = self._db.execute("SELECT v FROM meta WHERE k='rv'").fetchone()
        newest = self._db.execute("SELECT MAX(rv) FROM objects").fetchone()[0]
        self._rv = max(int(row[0]) if row else 0, newest or 0)
        self._oldest_rv = self._rv
        self.closed = False

    # ---- internals -------------------------------------------------------------------
    def _next_rv(self, persist: bool = False) -> int:
        """The next resourceVersion. Only a delete (`persist`) records it in meta: every
        other write stores it in its object's row, and opening the store takes the larger
        of the two (a second SQLite commit per write: a status update's request went 422 ->
        369 us of server CPU without it)."""
        self._rv += 1
        if persist:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(self._rv),))
        return self._rv

    def _emit(self, etype: str, res: Resource, obj: dict, text: str | None = None,
              old: dict | tuple | None = None) -> None:
        """Log a change for watchers. The object is kept as JSON text: each watcher decodes
        its own copy (cheaper than deepcopy) and the HTTP API sends the text as it is.
        `old` (a MODIFIED's previous object, or its (labels, fields) taken before it was
        changed in place) lets selector watches see an object stop or start matching."""
        rv = int(obj["metadata"]["resourceVersion"])
        if text is None:
            text = json.dumps(obj, separators=(",", ":"))
        labels = _labels(obj)
        fields = fsel.extract(res.plural, obj)
        prev = None
        if old is not None:
            if isinstance(old, dict):
                old_labels, old_fields = _labels(old), fsel.extract(res.plural, old)
                old_text = None
            else:
                old_labels, old_fields, old_text = old
            if old_labels != labels or old_fields != fields:
                if old_text is None and isinstance(old, dict):
                    old_text = json.dumps(old, separators=(",", ":"))
                prev = (old_labels, old_fields, old_text)
        entry = (rv, etype, res.plural, obj["metadata"].get("namespace", ""), labels, text,
                 fields, prev)
        self._events.append(entry)
        self._events_by.setdefault(res.plural, deque()).append(entry)
        self._event_bytes += len(text) + (len(prev[2] or "") if prev else 0)
        while len(self._events) > self._history or (
                self._event_bytes > self._history_bytes and len(self._events) > 1):
            old = self._events.popleft()
            self._events_by[old[2]].popleft()  # its resource's oldest, in the same order
            self._event_bytes -= len(old[5]) + (len(old[7][2] or "") if old[7] else 0)
            self._oldest_rv = old[0]
        ns = obj["metadata"].get("namespace", "")
        for w in self._watchers.get(res.plural, ()):
            if w.wants(ns, labels, fields, prev):
                w.push(entry, self._history)

    def _row(self, res: Resource, ns: str, name: str) -> dict | None:
        row = self._db.execute(
            "SELECT data FROM objects WHERE resource=? AND namespace=? AND name=?",
            (res.plural, ns, name)).fetchone()
        return json.loads(row[0]) if row else None

    def _write(self, res: Resource, obj: dict) -> str:
        md = obj["metadata"]
        text = json.dumps(obj, separators=(",", ":"))
        self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                         (res.plural, md.get("namespace", ""), md["name"],
                          int(md["resourceVersion"]), text))
        self._written.last = (obj, text)
        return text

    def text_of(self, obj: dict) -> str | None:
        """The JSON text this thread's last write stored, when `obj` is the object that
        write returned (and so holds): the API answers a write with it instead of encoding
        the object a second time. None otherwise. (The reference kept to the object keeps
        its identity from being reused.)"""
        last = getattr(self._written, "last", None)
        return last[1] if last is not None and last[0] is obj else None

    @staticmethod
    def _ns(res: Resource, namespace: str | None) -> str:
        return (namespace or "default") if res.namespaced else ""

    # ---- reads -----------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict:
        res = BY_PLURAL[resource]
        with self._lock:
            obj = self._row(res, self._ns(res, namespace), name)
        if obj is None:
            raise errors.not_found(res.plural, name, res.group)
        return obj

    def list(self, resource: str, namespace: str | None = None,
             label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict], int]:
        items, rv = self.list_raw(resource, namespace, label_selector, field_selector)
        return [json.loads(i) for i in items], rv

    def get_raw(self, resource: str, name: str, namespace: str | None = None) -> str:
        """get() as the stored JSON text (the HTTP API sends it without decoding)."""
        res = BY_PLURAL[resource]
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM objects WHERE resource=? AND namespace=? AND name=?",
                (res.plural, self._ns(res, namespace), name)).fetchone()
        if row is None:
            raise errors.not_found(res.plural, name, res.group)
        return row[0]

    def list_raw(self, resource: str, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 limit: int | None = None, after: tuple[str, str] | None = None
                 ) -> tuple[list[str], int]:
        """list() as JSON texts, no object decoded: a label selector reads the labels, a
        field selector its fields, with json_extract; metadata.name= and
        metadata.namespace= narrow the query itself (kubectl wait / rollout status /
        delete --wait list one object by name).

        `limit` and `after` (the (namespace, name) the previous page ended at) page
        through the list in its order; see list_page."""
        return self.list_page(resource, namespace, label_selector, field_selector, limit,
                              after)[:2]

    def list_page(self, resource: str, namespace: str | None = None,
                  label_selector: str | None = None, field_selector: str | None = None,
                  limit: int | None = None, after: tuple[str, str] | None = None
                  ) -> tuple[list[str], int, tuple[str, str] | None, int]:
        """(texts, resourceVersion, where the next page starts or None, how many items
        are left after this page)."""
        res = BY_PLURAL[resource]
        match = parse_selector(label_selector) if label_selector else None
        reqs = fsel.requirements(field_selector, res.plural)
        where, args = ["resource=?"], [res.plural]
        if res.namespaced and namespace:
            where.append("namespace=?")
            args.append(namespace)
        cols = ["data", "namespace", "name",
                "json_extract(data, '$.metadata.labels')" if match else "NULL"]
        need: dict[str, int] = {}
        fields = fsel.fields_for(res.plural)
        for r in reqs:
            if r.op == "=" and r.key == "metadata.name":
                where.append("name=?")
                args.append(r.value)
            elif r.op == "=" and r.key == "metadata.namespace":
                where.append("namespace=?")
                args.append(r.value)
            if r.key not in ("metadata.name", "metadata.namespace") and r.key not in need:
                need[r.key] = len(cols)
                paths = fields[r.key].paths
                cols.extend(f"json_extract(data, '{fsel.sql_path(p)}')" for p in paths)
        if after is not None:
            where.append("(namespace > ? OR (namespace = ? AND name > ?))")
            args.extend((after[0], after[0], after[1]))
        sql = (f"SELECT {', '.join(cols)} FROM objects WHERE {' AND '.join(where)} "
               "ORDER BY namespace, name")
        filtered = match is not None or bool(reqs)
        with self._lock:
            if limit and not filtered:
                # a page, and how many are left after it, counted by SQLite
                rows = self._db.execute(sql + " LIMIT ?", (*args, limit)).fetchall()
                if len(rows) == limit:
                    last = rows[-1]
                    count = self._db.execute(
                        f"SELECT count(*) FROM objects WHERE {' AND '.join(where)} AND "
                        "(namespace > ? OR (namespace = ? AND name > ?))",
                        (*args, last[1], last[1], last[2])).fetchone()[0]
                    if count:
                        return [r[0] for r in rows], self._rv, (last[1], last[2]), count
                return [r[0] for r in rows], self._rv, None, 0
            rows = self._db.execute(sql, args).fetchall()
            rv = self._rv
        fmatch = None
        if reqs:
            fmatch = fsel.matcher(reqs)
            specs = [(k, fields[k], i) for k, i in need.items()]
        out: list[str] = []
        nxt, left = None, 0
        for row in rows:
            if match is not None and not match(json.loads(row[3]) if row[3] else {}):
                continue
            if fmatch is not None:
                got = {"metadata.namespace": row[1], "metadata.name": row[2]}
                for key, f, i in specs:
                    v = None
                    for j in range(len(f.paths)):
                        v = row[i + j]
                        if v is not None:
                            break
                    got[key] = f.render(v)
                if not fmatch(got):
                    continue
            if limit and len(out) >= limit:
                left += 1
                continue
            out.append(row[0])
            if limit and len(out) == limit:
                nxt = (row[1], row[2])
        if not left:
            nxt = None
        return out, rv, nxt, left

    # ---- writes ----------------------------------------------------------------------
    def expire_events(self, now: float | None = None) -> int:
        """Delete the Events last written more than event_ttl ago (watchers see DELETED,
        as an etcd lease expiring does). Returns how many went."""
        now = time.time() if now is None else now
        cutoff = datetime.fromtimestamp(now - self.event_ttl, timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        res = BY_PLURAL["events"]
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM objects WHERE resource='events' AND coalesce("
                "json_extract(data, '$.lastTimestamp'), json_extract(data, '$.eventTime'), "
                "json_extract(data, '$.metadata.creationTimestamp'), '') < ?",
                (cutoff,)).fetchall()
            for (data,) in rows:
                self._remove(res, json.loads(data))
        return len(rows)

    def _maybe_expire_events(self) -> None:
        """At most once a minute, on an Event write: a flood of Events cannot outgrow
        the TTL, and an idle store does no work."""
        now = time.monotonic()
        if now >= self._next_event_sweep:
            self._next_event_sweep = now + min(60.0, max(1.0, self.event_ttl / 10))
            self.expire_events()

    def create(self, obj: dict, dry_run: bool = False, *, owned: bool = False) -> dict:
        """POST. `owned`: `obj` is handed over (not copied first; it becomes the result)."""
        obj, res = _decoded(obj, self.admission is not None, owned)
        if res.plural == "events" and not dry_run:
            self._maybe_expire_events()
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            md["namespace"] = md.get("namespace") or "default"
        else:
            md.pop("namespace", None)
        with self._lock:
            # A dry run skips this: kubectl checks namespaces made earlier in the same apply.
            nsobj = _UNREAD
            if res.namespaced and not dry_run:
                nsobj = self._row(BY_PLURAL["namespaces"], "", md["namespace"])
                if nsobj is None:
                    raise errors.NotFound(f'namespaces "{md["namespace"]}" not found')
            if not md.get("name") and md.get("generateName"):
                md["name"] = self._generate_name(res, md)
            if not md.get("name"):
                raise errors.invalid(res.kind, "", ["metadata.name: Required value: name or generateName is required"])
            ns = md.get("namespace", "")
            if ns and res.plural != "namespaces":
                if nsobj is _UNREAD:  # else read just above (the same namespace, same lock)
                    nsobj = self._row(BY_PLURAL["namespaces"], "", ns)
                if nsobj and (nsobj.get("metadata") or {}).get("deletionTimestamp"):
                    raise errors.ApiError(
                        f'{res.plural} "{md["name"]}" is forbidden: unable to create new content in namespace {ns} because it is being terminated',
                        code=403, reason="Forbidden")
            if self._row(res, ns, md["name"]) is not None:
                raise errors.already_exists(res.plural, md["name"], res.group)
            # The uid comes before admission: the Job strategy's PrepareForCreate builds the
            # generated selector from it.
            md["uid"] = self.new_uid()
            if self.admission:
                if res.plural in STATUS_RESET_ON_CREATE:  # the strategies' PrepareForCreate
                    obj.pop("status", None)
                obj = self.admission(self, "CREATE", obj, None)
                md = obj["metadata"]
                md["uid"] = md.get("uid") or self.new_uid()
            obj["apiVersion"] = res.api_version
            if dry_run:
                return obj
            md["creationTimestamp"] = self.clock()
            md.pop("deletionTimestamp", None)
            if "spec" in obj:
                md["generation"] = 1
            md["resourceVersion"] = str(self._next_rv())
            self._emit("ADDED", res, obj, self._write(res, obj))
            return obj  # a private copy: the store keeps only the JSON text

    def _generate_name(self, res: Resource, md: dict) -> str:
        import random
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        for _ in range(100):
            name = md["generateName"] + "".join(random.choice(alphabet) for _ in range(5))
            if self._row(res, md.get("namespace", ""), name) is None:
                return name
        raise errors.ApiError("could not generate a unique name")

    def update(self, obj: dict, subresource: str | None = None, dry_run: bool = False, *,
               owned: bool = False) -> dict:
        """PUT: replace the object (or only its status with subresource='status').
        `owned`: `obj` is handed over (not copied first)."""
        obj, res = _decoded(obj, self.admission is not None, owned)
        md = obj.setdefault("metadata", {})
        ns = self._ns(res, md.get("namespace"))
        with self._lock:
            old = self._row(res, ns, md.get("name", ""))
            if old is None:
                raise errors.not_found(res.plural, md.get("name", ""), res.group)
            want_rv = md.get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on {res.qualified} "{md["name"]}": the object '
                    "has been modified; please apply your changes to the latest version and try again")
            if subresource == "status":
                # `old` is a fresh parse of the row: a shallow copy is enough, only the
                # top level and metadata.resourceVersion change below.
                new = dict(old)
                new["metadata"] = dict(old["metadata"])
                new["status"] = obj.get("status", {})
            else:
                new = obj
                if "status" in old:
                    new["status"] = old["status"]
                elif res.plural in WITH_STATUS:  # status is written through /status only
                    new.pop("status", None)
                # Server-owned metadata cannot be changed by a client.
                for k in ("uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"):
                    if k in old["metadata"]:
                        new["metadata"][k] = old["metadata"][k]
                    else:
                        new["metadata"].pop(k, None)
                if res.namespaced:
                    new["metadata"]["namespace"] = ns
                if self.admission:
                    new = self.admission(self, "UPDATE", new, old)
                new["apiVersion"] = res.api_version
                if _spec_part(new) != _spec_part(old) and "spec" in new:
                    new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            if new == old or dry_run:
                return new  # private: built from a copy of `obj` or a fresh parse
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            # An object whose last finalizer went away while it was being deleted is gone
            # (upstream's shouldDeleteDuringUpdate: a pod only once its grace period is 0,
            # one still terminating on its node waits for the kubelet's final delete).
            nmd = new["metadata"]
            if nmd.get("deletionTimestamp") and not nmd.get("finalizers") and (
                    res.plural != "pods" or old["metadata"].get("deletionGracePeriodSeconds") == 0):
                return self._remove(res, new)
            self._emit("MODIFIED", res, new, self._write(res, new), old)
            return new

    def guaranteed_update(self, resource: str, name: str, namespace: str | None,
                          mutate: Callable[[dict], None], dry_run: bool = False) -> dict:
        """A storage-level read-modify-write, as etcd's GuaranteedUpdate serves the
        registry's own subresources (pods/binding): `mutate` changes a fresh copy of the
        stored object in place, or raises to refuse. No admission, no validation and no
        generation bump: upstream's BindingREST writes storage directly, past the pod's
        update strategy (its bind is one small write, not a whole-pod PUT)."""
        res = BY_PLURAL[resource]
        ns = self._ns(res, namespace)
        with self._lock:
            old = self._row(res, ns, name)
            if old is None:
                raise errors.not_found(res.plural, name, res.group)
            new = _copy(old)
            mutate(new)
            if new == old or dry_run:
                return new
            new["metadata"]["resourceVersion"] = str(self._next_rv())
            self._emit("MODIFIED", res, new, self._write(res, new), old)
            return new

    def patch(self, resource: str, name: str, namespace: str | None,
              patch: dict | Callable[[dict], dict], subresource: str | None = None,
              dry_run: bool = False) -> dict:
        """JSON merge patch (RFC 7386), or any patch given as a function from the current
        object (a fresh copy it may change) to the new one; retried against concurrent
        writers."""
        apply = patch if callable(patch) else (lambda cur: merge_patch(cur, patch))
        for _ in range(20):
            cur = self.get(resource, name, namespace)
            kind, api = cur.get("kind"), cur.get("apiVersion")
            new = apply(cur)  # `cur` is a fresh parse
            new["kind"], new["apiVersion"] = kind, api  # a patch cannot turn it into another kind
            if self.admission is not None:  # before metadata is touched
                check_decodes(new, str(api).rsplit("/", 1)[-1])
            if not isinstance(new.get("metadata"), dict):
                raise errors.BadRequest("metadata: Invalid value: must be an object")
            new["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
            try:
                return self.update(new, subresource=subresource, dry_run=dry_run)
            except errors.Conflict:
                continue
        raise errors.Conflict(f'{resource} "{name}": too many conflicts')

    def _remove(self, res: Resource, obj: dict) -> dict:
        md = obj["metadata"]
        self._db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                         (res.plural, md.get("namespace", ""), md["name"]))
        md["resourceVersion"] = str(self._next_rv(persist=True))
        self._emit("DELETED", res, obj)
        return obj

    def delete(self, resource: str, name: str, namespace: str | None = None,
               grace_period_seconds: int | None = None,
               propagation_policy: str | None = None) -> dict:
        """Delete now, or mark for graceful deletion (pods on a node, finalizers). The
        propagation policy (netsim.api.propagation) may add the garbage collector's orphan
        or foregroundDeletion finalizer, which keeps the object until its dependents are
        orphaned or gone."""
        res = BY_PLURAL[resource]
        ns = self._ns(res, namespace)
        with self._lock:
            obj = self._row(res, ns, name)
            if obj is None:
                raise errors.not_found(res.plural, name, res.group)
            md = obj["metadata"]
            gc = propagation.finalizers(res.plural, md.get("finalizers"), propagation_policy)
            if gc is not None:
                if gc:
                    md["finalizers"] = gc
                else:
                    md.pop("finalizers", None)
            graceful = False
            before = None
            was_deleting = bool(md.get("deletionTimestamp"))
            if res.plural == "pods":
                keep = _pod_deletion(obj, grace_period_seconds)
                if keep is None:  # already terminating, not sooner than asked: as it is
                    return obj
                graceful = keep or bool(md.get("finalizers"))
            elif res.plural == "namespaces":
                if md.get("deletionTimestamp"):
                    return obj
                before = _copy(obj)  # its status.phase changes below (a selectable field)
                md["deletionTimestamp"] = now_rfc3339()
                obj.setdefault("status", {})["phase"] = "Terminating"
                md.setdefault("finalizers", ["kubernetes"])
                graceful = True
            elif md.get("finalizers"):
                _mark_deleting(md, 0)
                graceful = True
            if graceful:
                if was_deleting and before is None and obj == self._row(res, ns, name):
                    return obj  # deleted again while its finalizers wait: nothing changes
                md["resourceVersion"] = str(self._next_rv())
                self._emit("MODIFIED", res, obj, self._write(res, obj), before)
                return obj
            return self._remove(res, obj)

    # ---- watch -----------------------------------------------------------------------
    def watch(self, resource: str, namespace: str | None = None,
              resource_version: int | None = None, timeout: float = 300.0,
              label_selector: str | None = None, raw: bool = False,
              field_selector: str | None = None,
              initial_events: bool = False) -> Iterator[tuple[str, dict]]:
        """Yield (type, obj) for changes after resource_version; ends after `timeout` s.

        With raw=True the object comes as its JSON text (the HTTP API sends it unparsed).
        Raises Gone when that version has left the event log (the caller re-lists).
        Yields a BOOKMARK (kind, apiVersion and the resourceVersion this watch has seen
        the store up to, as kube-apiserver's) whenever this watch has yielded nothing
        for BOOKMARK_AFTER seconds, however busy other resources are: a quiet watcher can
        advance its resourceVersion (and so resume rather than get 410), and an idle
        stream notices a closed peer or a stop request.

        With selectors, as the apiserver's watch cache: an object that starts matching
        comes as ADDED, one that stops matching as DELETED (its last matching state, at
        the change's resourceVersion).

        initial_events (sendInitialEvents=true, or a watch from no version): first an
        ADDED for every object there is now, then (initial_events="bookmark") a BOOKMARK
        annotated k8s.io/initial-events-end, then the changes after that state.
        """
        res = BY_PLURAL[resource]
        match = parse_selector(label_selector) if label_selector else None
        freqs = fsel.requirements(field_selector, res.plural)
        fmatch = fsel.matcher(freqs) if freqs else None
        if initial_events:
            with self._lock:
                items, rv = self.list_raw(resource, namespace, label_selector, field_selector)
            for text in items:
                yield "ADDED", (text if raw else json.loads(text))
            if initial_events == "bookmark":
                mark = {"kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(rv), "annotations": {
                            "k8s.io/initial-events-end": "true"}}}
                yield "BOOKMARK", (json.dumps(mark, separators=(",", ":")) if raw else mark)
        else:
            rv = self._rv if resource_version is None else int(resource_version)
        if not timeout >= 0:  # nan: end at once rather than spin
            timeout = 0.0
        deadline = last_sent = time.monotonic()
        deadline += timeout

        def passes(labels: dict, fields: dict) -> bool:
            return (match is None or match(labels)) and (fmatch is None or fmatch(fields))

        me = _Watcher(threading.Condition(self._lock),
                      namespace if namespace and res.namespaced else None,
                      passes if match is not None or fmatch is not None else None, raw)
        with self._lock:
            if rv < self._oldest_rv:
                raise errors.Gone(f"too old resource version: {rv} ({self._oldest_rv})")
            backlog = []  # the changes after rv it can see, that came before it registered
            for ev in reversed(self._events_by.get(res.plural, ())):
                if ev[0] <= rv:
                    break
                if me.wants(ev[3], ev[4], ev[6], ev[7]):
                    backlog.append(ev)
            me.pending.extend(reversed(backlog))
            self._watchers.setdefault(res.plural, set()).add(me)
        try:
            yield from self._watch_loop(res, rv, me, deadline, last_sent, match,
                                        fmatch, passes)
        finally:
            with self._lock:
                self._watchers.get(res.plural, set()).discard(me)

    def _watch_loop(self, res: Resource, rv: int, me: _Watcher,
                    deadline: float, last_sent: float, match, fmatch, passes
                    ) -> Iterator[tuple[str, dict | str]]:
        raw = me.raw
        cond = me.cond
        while not self.closed:
            with self._lock:
                if not me.pending and not me.overflowed:
                    now = time.monotonic()
                    cond.wait(timeout=max(0.0, min(last_sent + self.BOOKMARK_AFTER,
                                                   deadline) - now))
                if me.overflowed:  # it fell a whole event log behind: relist, as after 410
                    raise errors.Gone(f"too old resource version: {rv} ({self._oldest_rv})")
                batch, me.pending = me.pending, deque()
                seen = self._rv  # it has every change it can see up to here
            for erv, etype, _, _, labels, text, fields, prev in batch:  # its namespace's only
                rv = erv
                if match is not None or fmatch is not None:
                    now_ok = passes(labels, fields)
                    if etype == "DELETED":
                        now_ok, was_ok = False, now_ok
                    elif etype == "ADDED" or prev is None:
                        was_ok = now_ok if etype != "ADDED" else False
                    else:
                        was_ok = passes(prev[0], prev[1])
                    if not now_ok and not was_ok:
                        continue
                    if now_ok and not was_ok:
                        etype = "ADDED"
                    elif was_ok and not now_ok and etype != "DELETED":
                        # its last state that matched, at this change's version
                        etype = "DELETED"
                        if prev[2] is not None:
                            gone = json.loads(prev[2])
                            gone["metadata"]["resourceVersion"] = str(erv)
                            text = json.dumps(gone, separators=(",", ":"))
                yield etype, (text if raw else json.loads(text))
                last_sent = time.monotonic()
            rv = max(rv, seen)
            if time.monotonic() - last_sent >= self.BOOKMARK_AFTER:
                mark = {"kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(rv)}}
                yield "BOOKMARK", (json.dumps(mark, separators=(",", ":")) if raw else mark)
                last_sent = time.monotonic()
            if time.monotonic() >= deadline:
                return

    def bootstrap(self) -> None:
        """The namespaces every cluster starts with."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            try:
                self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
                             "spec": {"finalizers": ["kubernetes"]},
                             "status": {"phase": "Active"}})
            except errors.AlreadyExists:
                pass

    def close(self) -> None:
        self.closed = True
        with self._lock:
            for watchers in self._watchers.values():
                for w in watchers:
                    w.cond.notify()
            # Under the lock: closing SQLite while another thread runs a statement on the
            # same connection can crash the process (it did at shutdown, under load).
            self._db.close()


class _Watcher:
    """One watch: its condition, what it can see, and the changes it can see that it has
    not taken yet. A write hands each watch only what it can see (the apiserver's cacher
    sends each watcher its own events): when every watch scanned the resource's whole log,
    the kubelets' 50 pod watches (one node each) each read every pod's change, O(nodes) per
    change."""

    __slots__ = ("cond", "namespace", "passes", "raw", "pending", "overflowed")

    def __init__(self, cond: threading.Condition, namespace: str | None, passes,
                 raw: bool = False):
        self.cond, self.namespace, self.passes, self.raw = cond, namespace, passes, raw
        self.pending: deque = deque()
        self.overflowed = False

    def push(self, entry: tuple, limit: int) -> None:
        """Hand it a change (under the store's lock). One that has not taken `limit`
        changes is ended with 410 Gone instead of holding them all (upstream's cacher
        ends a watcher too slow to take its events)."""
        if len(self.pending) >= limit:
            self.pending.clear()
            self.overflowed = True
        elif not self.overflowed:
            self.pending.append(entry)
        self.cond.notify()

    def wants(self, ns: str, labels: dict, fields: dict, prev: tuple | None) -> bool:
        """Whether an event on an object (now with `labels`/`fields`, before with `prev`'s)
        can reach this watch: ADDED, MODIFIED or DELETED as it started, stayed or stopped
        matching. Conservative: the watch loop decides what it sends."""
        if self.namespace is not None and ns != self.namespace:
            return False
        if self.passes is None:
            return True
        return self.passes(labels, fields) or (prev is not None and self.passes(prev[0], prev[1]))


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge_patch(target.get(k), v)
    return target
