"""Run many independent, mostly-waiting kernel operations at once.

Removing a network namespace is an unmount, and every unmount waits for an RCU grace
period: one after the other, 300 pods' namespaces took 0.3-3 s of pure waiting; on 8-32
threads the waits overlap (measured 10-20x faster). The same holds for the thousands of
small files and folders a cluster's pods leave behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
WORKERS = 32


def each(fn: Callable[[T], object], items: Iterable[T], workers: int = WORKERS) -> None:
    """`fn(item)` for every item, up to `workers` at a time; returns when all are done.
    The first exception any call raised is raised after all finished (the others still
    ran: a teardown removes all it can)."""
    items = list(items)
    if len(items) <= 1:
        for it in items:
            fn(it)
        return
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="batch") as ex:
        futures = [ex.submit(fn, it) for it in items]
    for f in futures:
        f.result()
