"""netsim.machinery: informers, caches and work queues, in the style of client-go.

The room between netsim.api and every component (controllers, kubelet, kube-proxy, DNS,
ingress). It imports only netsim.api and the standard library.

- reflector.Reflector: list, watch from the list's resourceVersion, resume a watch that
  ends, relist on 410 Gone (both transports), one jittered exponential backoff that is
  reset once a watch delivers, stop() honoured at once while waiting.
- cache.Indexer: the thread-safe cache, by key (`ns/name`, or `name` when cluster-scoped)
  and by index (always "namespace"; add e.g. node_name_index, controller_uid_index,
  label_index("kubernetes.io/service-name")). Cached objects are shared: read-only.
- informer.SharedInformer / InformerFactory: one informer (one watch) per resource per
  process (per namespace / label / field selector when asked: the kubelet's pods are
  `factory.informer("pods", field_selector="spec.nodeName=<node>")`), handlers on_add / on_update(old, new) / on_delete(obj) (a
  DeletedFinalStateUnknown, a dict with `.key`, when a relist found the object gone),
  has_synced(). TrackingClient + FreshLister: reads that see the reader's own writes.
- workqueue.WorkQueue: dedup, one key never with two workers, add_after,
  add_rate_limited / forget (per-key exponential backoff), shutdown.

How a consumer uses it (the controllers in netsim.controllers.base do exactly this)::

    from netsim.machinery import InformerFactory, WorkQueue, key_of, node_name_index

    factory = InformerFactory(client)                    # one per process
    pods = factory.informer("pods", {"node": node_name_index})
    queue = WorkQueue()
    enqueue = lambda obj: queue.add(key_of(obj))
    pods.add_handler(on_add=enqueue, on_update=lambda old, new: enqueue(new),
                     on_delete=enqueue)
    factory.start()
    factory.wait_for_sync(stop=stopped)                  # nothing is reconciled before

    while (key := queue.get(timeout=0.5)) is not None:  # a worker thread
        try:
            ns, name = split_key(key)
            pod = pods.indexer.get(key)                  # the cache, not the API
            mine = pods.indexer.by_index("node", my_node)
            ...                                          # clone(obj) before changing
            queue.forget(key)
        except Exception:
            queue.add_rate_limited(key)                  # per-key backoff
        finally:
            queue.done(key)

    queue.shutdown(); factory.stop(); factory.join(timeout=2)

A component that writes objects and then reads them back from the cache (a controller
creating pods, then counting them) wraps its client in TrackingClient and reads through
FreshLister(informer, tracking_client): each read first waits until the cache holds that
client's own last write of the resource.
"""

from netsim.machinery.backoff import Backoff, ItemBackoff
from netsim.machinery.cache import (
    NAMESPACE,
    ApiLister,
    DeletedFinalStateUnknown,
    Indexer,
    clone,
    controller_uid_index,
    key_of,
    label_index,
    namespace_index,
    node_name_index,
    split_key,
    status_only_change,
)
from netsim.machinery.informer import (
    FreshLister,
    Handler,
    InformerFactory,
    SharedInformer,
    StaleCache,
    TrackingClient,
)
from netsim.machinery.reflector import Reflector, is_gone
from netsim.machinery.workqueue import WorkQueue

__all__ = [
    "NAMESPACE", "ApiLister", "Backoff", "DeletedFinalStateUnknown", "FreshLister", "Handler",
    "Indexer", "InformerFactory", "ItemBackoff", "Reflector", "SharedInformer", "StaleCache",
    "TrackingClient", "WorkQueue", "clone", "controller_uid_index", "is_gone", "key_of", "label_index", "status_only_change",
    "namespace_index", "node_name_index", "split_key",
]
