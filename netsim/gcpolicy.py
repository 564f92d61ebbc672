"""The cyclic garbage collector's settings for netsim's long-running daemons.

CPython's defaults (a young collection every 700 net allocations, a full one once a quarter
of the heap has been promoted since the last) suit short scripts. The control plane holds
every object of the cluster in its informers' caches and allocates a request's worth of
short-lived dicts per API call: at 700, objects that live for one request are promoted to the
old generations, and the full collections that follow scan the whole cluster each time. At
5,000 pods (bench_controlplane) the collector took 3.5 s of the 47 s of CPU a Deployment's
creation cost the control plane and 7.7 s of the 72 s of its rollout, 0.7 and 1.5 ms a pod
against 0.25 and 0.56 at 1,000 pods: it grew with the cluster. With a young generation of
10,000, such objects die young (0.55 s and 1.4 s); what a daemon loaded before it serves
(modules, classes, its configuration) is also frozen out of every later collection.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython: 700)


def for_daemon() -> None:
    """Call once a daemon has started up, before it serves: set the young generation's
    threshold and freeze what is alive now (the collector never scans it again; what of it
    dies later is still freed by its reference count, a cycle among it is not)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    gc.freeze()
