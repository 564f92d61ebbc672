"""Recording Events the way Kubernetes components do: repeated events are counted, not duplicated."""

from __future__ import annotations

import hashlib

from netsim.api import errors
from netsim.api import fieldselectors as fsel
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
