"""Recording Events the way Kubernetes components do: repeated events are counted, not duplicated."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading

from netsim.api import errors
from netsim.api import fieldselectors as fsel
from netsim.api.client import Client
from netsim.api.timeutil import now_rfc3339, now_rfc3339_micro

MAX_MESSAGE = 1024


log = logging.getLogger("netsim.events")


class Sink:
    """client-go's EventBroadcaster for one component's client (`client.event_sink`):
    record() queues the event and returns, one thread writes them in order. A component's
    loop no longer waits for a round trip to the API per event: a kubelet records four for
    each pod it starts, on its one sync thread, and at 1,000 pods those writes were a fifth
    of that thread's time. As upstream's, a full queue (1,000) drops the event."""

    def __init__(self, client: Client, size: int = 1000):
        self.client = client
        self._queue: queue.Queue = queue.Queue(size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, args: tuple) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="event-sink")
                self._thread.start()
        try:
            self._queue.put_nowait(args)
        except queue.Full:
            log.warning("event queue full: dropped %s %s", args[3], args[4][:80])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event is written (tests, a stopping component)."""
        done = threading.Event()
        self.put(("flush", done))
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            args = self._queue.get()
            if args[0] == "flush":
                args[1].set()
                continue
            try:
                _write(self.client, *args)
            except Exception:  # noqa: BLE001 - one bad event must not end the sink
                log.exception("event not written")


def record(client: Client, obj: dict, etype: str, reason: str, message: str,
           component: str, host: str | None = None) -> None:
    """Create or bump the Event for (object, reason, message, source). Never raises.
    Through the client's event_sink (Sink) when it has one: queued, written in order."""
    sink = getattr(client, "event_sink", None)
    now = now_rfc3339(), now_rfc3339_micro()
    if sink is not None:  # what is read of the object, as it is now
        md = obj.get("metadata") or {}
        ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
               "metadata": {k: md.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        sink.put((ref, etype, reason, message, component, host, now))
        return
    _write(client, obj, etype, reason, message, component, host, now)


def _write(client: Client, obj: dict, etype: str, reason: str, message: str,
           component: str, host: str | None, at: tuple[str, str]) -> None:
    if len(message) > MAX_MESSAGE:
        # as client-go's event recorders do (events.k8s.io's note is at most 1 kB): a
        # component quoting a long error cannot make every Event of its loop that large
        message = message[:MAX_MESSAGE - 3] + "..."
    md = obj.get("metadata", {})
    ns = md.get("namespace") or "default"
    digest = hashlib.sha256(f"{md.get('uid')}|{reason}|{message}|{component}".encode()).hexdigest()
    name = f"{md.get('name')}.{digest[:16]}"
    now, micro = at
    source = {"component": component}
    if host:
        source["host"] = host
    try:
        try:
            # Create first: a new event is the common case and costs one call.
            client.create({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": obj.get("kind"), "namespace": md.get("namespace"),
                                   "name": md.get("name"), "uid": md.get("uid"),
                                   "apiVersion": obj.get("apiVersion"),
                                   "resourceVersion": md.get("resourceVersion")},
                "reason": reason, "message": message, "source": source, "type": etype,
                "count": 1, "firstTimestamp": now, "lastTimestamp": now,
                "eventTime": micro,
                "reportingComponent": component, "reportingInstance": host or "",
            })
            return
        except errors.AlreadyExists:
            pass
        for _ in range(3):
            ev = client.get("events", name, ns)
            ev["count"] = ev.get("count", 1) + 1
            ev["lastTimestamp"] = now
            ev["series"] = {"count": ev["count"], "lastObservedTime": micro}
            try:
                client.update(ev)
                return
            except errors.Conflict:
                continue
    except errors.ApiError:
        pass


def for_object(client: Client, obj: dict) -> list[dict]:
    """Events about one object, oldest first (describe's Events table), asked of the API
    with kubectl describe's field selector: involvedObject name, namespace, kind and uid
    (a Node's also by uid=name, as kubectl asks: kubelets name the node in its events'
    uid). A cluster-scoped object's events are looked for in every namespace."""
    md = obj.get("metadata", {})
    sel = {"involvedObject.name": md.get("name") or "",
           "involvedObject.namespace": md.get("namespace") or ""}
    if obj.get("kind"):
        sel["involvedObject.kind"] = obj["kind"]
    uids = [md["uid"]] if md.get("uid") else [None]
    if obj.get("kind") == "Node":
        uids.append(md.get("name") or "")
    out: dict[str, dict] = {}
    for uid in uids:
        s = dict(sel) if uid is None else {**sel, "involvedObject.uid": uid}
        for e in client.list("events", md.get("namespace") or None,
                             field_selector=fsel.to_string(s)):
            out[f"{e['metadata'].get('namespace')}/{e['metadata'].get('name')}"] = e
    return sorted(out.values(), key=order_key)


def order_key(e: dict) -> tuple:
    """Seconds-resolution lastTimestamp, then the microsecond time of the last occurrence."""
    return (e.get("lastTimestamp") or "",
            (e.get("series") or {}).get("lastObservedTime") or e.get("eventTime") or "")
