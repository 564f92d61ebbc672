"""events.Sink (client-go's EventBroadcaster): a component whose client has one records an
event without waiting for the API; the events are written in order, a repeated one bumps
the count as before, and the object is read as it was when the event was recorded."""

from __future__ import annotations

import threading

from netsim.api import events
from netsim.api.client import LocalClient
from netsim.api.store import Store


def test_events_through_a_sink_are_written_in_order_and_counted():
    store = Store(":memory:")
    store.bootstrap()
    client = LocalClient(store)
    pod = client.create({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "web", "namespace": "default"},
                         "spec": {"containers": [{"name": "c", "image": "echo"}]}})
    gate = threading.Event()
    writes: list[str] = []

    class Slow(LocalClient):
        def create(self, obj, dry_run=False):
            gate.wait(5)  # the API is slow: record() must not wait for it
            writes.append(obj.get("reason"))
            return super().create(obj, dry_run)

    slow = Slow(store)
    slow.event_sink = events.Sink(slow)
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        events.record(slow, pod, "Normal", reason, f"{reason} web", "kubelet", "node-1")
    pod["metadata"]["name"] = "changed-after"  # read when recorded, not when written
    events.record(slow, {**pod, "metadata": {**pod["metadata"], "name": "web"}}, "Normal",
                  "Started", "Started web", "kubelet", "node-1")
    assert client.list("events", "default") == []  # nothing written yet, nobody waited
    gate.set()
    assert slow.event_sink.flush(5)
    assert writes[:4] == ["Scheduled", "Pulled", "Created", "Started"]
    got = sorted(client.list("events", "default"), key=events.order_key)
    assert [(e["reason"], e["involvedObject"]["name"], e.get("count")) for e in got] == [
        ("Scheduled", "web", 1), ("Pulled", "web", 1), ("Created", "web", 1), ("Started", "web", 2)]
    store.close()
