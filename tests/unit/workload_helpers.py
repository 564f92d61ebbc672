"""What the workload controller tests share: a real Store driven step by step, a fake clock,
and the fake kubelet's moves (finish a graceful deletion, bind, mark Running and Ready).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from netsim.api.admission import admit
from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339, rfc3339_seconds

T0 = 1_800_000_000.0


def created_plus(obj: dict, seconds: int) -> datetime:
    """`seconds` after `obj` was created: the `now` that prints its AGE as that."""
    return datetime.fromtimestamp(rfc3339_seconds(obj["metadata"]["creationTimestamp"]) + seconds,
                                  timezone.utc)


def pod_ready(pod: dict) -> bool:
    """The pod's Ready condition is True (what READY counts in `kubectl get po`)."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod["status"].get("conditions") or [])


def running_status(ok: bool, stamp: str) -> dict:
    """The status fields a kubelet writes for a Running pod, Ready or not."""
    return {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ok else "False",
                            "lastTransitionTime": stamp}]}


class FakeCluster:
    """A real Store (admission on) behind a LocalClient, with namespace `ns` created if
    asked and a clock `t` the test moves; subclasses add the controllers and `step()`."""

    settle_message = "controllers did not settle"

    def __init__(self, ns: str | None = None) -> None:
        self.store = Store(":memory:", admission=admit)
        self.store.bootstrap()
        self.client = LocalClient(self.store)
        if ns:
            self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.t = T0
        self.ready_images: set[str] | None = None   # None: every pod becomes ready

    def step(self) -> None:
        raise NotImplementedError

    def run(self, steps: int = 40) -> None:
        """Step until a step changes nothing in the store."""
        for _ in range(steps):
            before = self.store.resource_version
            self.step()
            if self.store.resource_version == before:
                return
        raise AssertionError(self.settle_message)

    def stamp(self) -> str:
        return format_rfc3339(self.t)

    def removed_if_terminating(self, pod: dict) -> bool:
        """The kubelet finishes a graceful deletion at once; True if `pod` was one."""
        md = pod["metadata"]
        if not md.get("deletionTimestamp"):
            return False
        self.client.delete("pods", md["name"], md["namespace"], grace_period_seconds=0)
        return True

    def kubelet_pods(self, ns: str, removed: Callable[[], None] = lambda: None) -> Iterator[dict]:
        """The pods of `ns` a kubelet keeps running; a terminating one is removed (then
        `removed()` is called) instead of yielded."""
        for pod in self.client.list("pods", ns):
            if self.removed_if_terminating(pod):
                removed()
            else:
                yield pod

    def bound(self, pod: dict, node: str = "k8s-slave-172") -> dict:
        """`pod` bound to `node` if the scheduler has not placed it."""
        if not pod["spec"].get("nodeName"):
            pod["spec"]["nodeName"] = node
            pod = self.client.update(pod)
        return pod

    def described(self, resource: str, obj: dict, now: datetime) -> list[str]:
        """`kubectl describe` of `obj` at `now`, with its namespace's pods and its own events."""
        from netsim.cli import describe
        ns = obj["metadata"]["namespace"]
        events = [e for e in self.client.list("events", ns)
                  if e["involvedObject"]["kind"] == obj["kind"]]
        return describe.describe(resource, obj, related={"pods": self.client.list("pods", ns),
                                                         "events": events}, now=now).splitlines()

    def should_be_ready(self, pod: dict) -> bool:
        image = pod["spec"]["containers"][0]["image"]
        return self.ready_images is None or image in self.ready_images
