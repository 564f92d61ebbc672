"""Recording Events the way Kubernetes components do: repeated events are counted, not duplicated."""

from __future__ import annotations

import hashlib

from netsim.api import errors
from netsim.api.client import Client
from netsim.api.timeutil import now_rfc3339, now_rfc3339_micro

MAX_MESSAGE = 1024


def record(client: Client, obj: dict, etype: str, reason: str, message: str,
           component: str, host: str | None = None) -> None:
    """Create or bump the Event for (object, reason, message, source). Never raises."""
    if len(message) > MAX_MESSAGE:
        # as client-go's event recorders do (events.k8s.io's note is at most 1 kB): a
        # component quoting a long error cannot make every Event of its loop that large
        message = message[:MAX_MESSAGE - 3] + "..."
    md = obj.get("metadata", {})
    ns = md.get("namespace") or "default"
    digest = hashlib.sha256(f"{md.get('uid')}|{reason}|{message}|{component}".encode()).hexdigest()
    name = f"{md.get('name')}.{digest[:16]}"
    now = now_rfc3339()
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
                "eventTime": now_rfc3339_micro(),
                "reportingComponent": component, "reportingInstance": host or "",
            })
            return
        except errors.AlreadyExists:
            pass
        for _ in range(3):
            ev = client.get("events", name, ns)
            ev["count"] = ev.get("count", 1) + 1
            ev["lastTimestamp"] = now
            ev["series"] = {"count": ev["count"], "lastObservedTime": now_rfc3339_micro()}
            try:
                client.update(ev)
                return
            except errors.Conflict:
                continue
    except errors.ApiError:
        pass


def for_object(client: Client, obj: dict) -> list[dict]:
    """Events about one object, oldest first (describe's Events table)."""
    md = obj.get("metadata", {})
    out = [e for e in client.list("events", md.get("namespace") or "default")
           if e.get("involvedObject", {}).get("uid") == md.get("uid")
           or (e.get("involvedObject", {}).get("name") == md.get("name")
               and e.get("involvedObject", {}).get("kind") == obj.get("kind"))]
    return sorted(out, key=order_key)


def order_key(e: dict) -> tuple:
    """Seconds-resolution lastTimestamp, then the microsecond time of the last occurrence."""
    return (e.get("lastTimestamp") or "",
            (e.get("series") or {}).get("lastObservedTime") or e.get("eventTime") or "")
