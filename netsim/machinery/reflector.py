"""The reflector: list, then watch from the list's resourceVersion, into a sink.

As client-go's Reflector.ListAndWatch: a watch that ends is resumed from the last
resourceVersion seen; `410 Gone` (the version left the API server's event log) means
events were missed, so the reflector lists again and the sink reconciles what changed,
deletes included. Both transports report Gone the same way: LocalClient's watch raises
errors.Gone, HttpClient's turns the stream's ERROR event (a Status with code 410) into
errors.Gone; an ERROR event from any other client is turned into its error here.

Failures (API down, socket errors) are retried with one jittered exponential backoff,
reset as soon as a watch delivers again. stop() is honoured at once while waiting, and
between events while watching: both transports yield a BOOKMARK once a watch has been
quiet for about a second (the store sends them per watch, however busy other resources
are; HttpClient asks for them and turns a bare keep-alive line into one too), so a stop
takes about a second on a quiet resource. A bookmark's resourceVersion, when newer, is
where the next watch resumes, so a quiet resource in a busy store is not sent to relist.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from netsim.api import errors
from netsim.api.client import Client
from netsim.machinery.backoff import Backoff

log = logging.getLogger("netsim.machinery")


class Sink(Protocol):
    """What a reflector feeds (the informer)."""

    def replace(self, items: list[dict], resource_version: int) -> None: ...

    def apply(self, etype: str, obj: dict) -> None: ...

    def bookmark(self, resource_version: int) -> None: ...


def _rv(obj: dict) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def is_gone(e: BaseException) -> bool:
    return isinstance(e, errors.Gone) or (isinstance(e, errors.ApiError) and e.code == 410)


class Reflector:
    """Keeps a sink in step with one resource (optionally one namespace, label selector
    and field selector: the kubelet's pods are spec.nodeName=<its node>)."""

    # A watch ends after a jittered 60-120 s and is resumed (client-go: 5-10 min), so a
    # stream the server lost track of is noticed.
    watch_timeout = (60.0, 120.0)

    def __init__(self, client: Client, resource: str, sink: Sink, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None,
                 backoff: Backoff | None = None, name: str | None = None):
        self.client, self.resource, self.sink = client, resource, sink
        self.namespace, self.label_selector = namespace, label_selector
        self.field_selector = field_selector
        # only when set: clients that predate field selectors keep working
        self._fs = {"field_selector": field_selector} if field_selector else {}
        self.backoff = backoff or Backoff()
        self.name = name or f"reflector-{resource}"
        self.stopped = threading.Event()
        self.lists = 0          # how many times it listed (1 + relists)
        self.last_error: BaseException | None = None
        self.resource_version = 0

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        """List and watch until stop(); the thread target."""
        need_list = True
        while not self.stopped.is_set():
            if need_list:
                try:
                    items, rv = self.client.list_rv(self.resource, self.namespace,
                                                    self.label_selector, **self._fs)
                except Exception as e:
                    self._failed("list", e)
                    if self.backoff.wait(self.stopped):
                        return
                    continue
                self.lists += 1
                self.resource_version = rv
                self.sink.replace(items, rv)
                need_list = False
            try:
                delivered = self._watch()
            except Exception as e:
                delivered = getattr(e, "delivered", False)
                if is_gone(e):
                    log.debug("%s: %s; relisting", self.name, e)
                    need_list = True
                    if delivered:
                        continue  # a healthy stream that fell behind: relist at once
                else:
                    self._failed("watch", e)
                if self.backoff.wait(self.stopped):
                    return
                continue
            if not delivered and self.backoff.wait(self.stopped):
                return  # a watch that ends at once with nothing is a failure too

    def _failed(self, what: str, e: BaseException) -> None:
        self.last_error = e
        if not self.stopped.is_set():
            log.debug("%s: %s failed: %s", self.name, what, e)

    def _watch(self) -> bool:
        """One watch from the last resourceVersion; True if it delivered anything (and
        so the connection is healthy). Errors carry `.delivered` for the same."""
        delivered = False
        started = time.monotonic()
        timeout = random.uniform(*self.watch_timeout)
        try:
            for etype, obj in self.client.watch(self.resource, self.namespace,
                                                resource_version=self.resource_version,
                                                timeout=timeout,
                                                label_selector=self.label_selector,
                                                **self._fs):
                if self.stopped.is_set():
                    return True
                if not delivered:
                    delivered = True
                    self.backoff.reset()
                if etype == "ERROR":
                    raise errors.ApiError.from_status(obj or {})
                rv = _rv(obj)
                if etype == "BOOKMARK":
                    if rv > self.resource_version:
                        self.resource_version = rv
                        self.sink.bookmark(rv)
                    continue
                self.sink.apply(etype, obj)
                if rv > self.resource_version:
                    self.resource_version = rv
        except Exception as e:
            e.delivered = delivered  # type: ignore[attr-defined]
            raise
        # A stream that ran its course quietly (no bookmarks) was healthy too.
        return delivered or time.monotonic() - started >= 1.0
