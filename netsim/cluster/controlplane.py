"""The control-plane process: API server + controllers + scheduler, in the root netns.

`python -m netsim.cluster.controlplane --cluster NAME`
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

from netsim.api import errors
from netsim.api.admission import Admission, ClusterSettings
from netsim.api.client import LocalClient, socket_path
from netsim.api.server import serve, serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import addons, pki
from netsim.controllers.cronjob import CronJobController
from netsim.controllers.daemonset import DaemonSetController
from netsim.controllers.deployment import DeploymentController
from netsim.controllers.endpoints import EndpointsController
from netsim.controllers.gc import GarbageCollector
from netsim.controllers.job import JobController
from netsim.controllers.nodelifecycle import NodeLifecycleController
from netsim.controllers.replicaset import ReplicaSetController
from netsim.controllers.scheduler import Scheduler
from netsim.controllers.statefulset import StatefulSetController
from netsim.machinery import InformerFactory
from netsim.net.ledger import state_dir
from netsim.net.topology import ClusterConfig

log = logging.getLogger("netsim.controlplane")

# Every controller the control plane runs, in start order. Plain imports: a broken
# controller stops the control plane at startup with its traceback in controlplane.log
# (and `cluster up` says the API server did not come up), never a cluster without it.
CONTROLLERS = [
    Scheduler,
    GarbageCollector,
    ReplicaSetController,
    DeploymentController,
    DaemonSetController,
    StatefulSetController,
    JobController,
    CronJobController,
    EndpointsController,
    NodeLifecycleController,
]


def bootstrap_objects(client: LocalClient, cfg: ClusterConfig) -> None:
    """What kubeadm creates: the `kubernetes` Service, add-ons come from netsim.addons."""
    with contextlib.suppress(errors.AlreadyExists):
        client.create({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "kubernetes", "namespace": "default",
                                    "labels": {"component": "apiserver", "provider": "kubernetes"}},
                       "spec": {"clusterIP": cfg.kubernetes_ip, "type": "ClusterIP",
                                "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                           "targetPort": 6443}]}})
    addons.install(client, cfg)


def start_controllers(client: LocalClient, informers: InformerFactory) -> list:
    """Every controller on the one factory given: one list and one watch per resource for
    the whole control plane, however many controllers read it (kube-controller-manager's
    SharedInformerFactory). The caller owns the factory and stops it after the controllers."""
    informers.retain()  # ours: a controller that stops early does not stop the others' watches
    running = []
    for klass in CONTROLLERS:
        ctrl = klass(client, informers=informers)
        ctrl.start()
        running.append(ctrl)
    informers.start()
    return running


def stop_controllers(controllers: list, informers: InformerFactory) -> None:
    """Stop the controllers, then the factory's informers: their threads end at their
    watch's next event or bookmark, or when the store closes (informers.join waits)."""
    for c in controllers:
        c.stop()
    informers.release()
    informers.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netsim-controlplane")
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--https-port", type=int, default=0,
                    help="serve the API over HTTPS (client certificates) on 127.0.0.1:PORT")
    ap.add_argument("--lan-address", default=None,
                    help="also on this HOST:PORT (the host's LAN address)")
    args = ap.parse_args(argv)
    # The store holds Secrets: it, its WAL and everything else this daemon writes are
    # root's only (etcd keeps its data dir 0700); the API socket is made 0600 by serve().
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from netsim import profiling
    profiling.maybe_start("controlplane")
    cfg = ClusterConfig.load(args.cluster)
    if cfg is None:
        print(f"cluster {args.cluster} has no configuration", file=sys.stderr)
        return 1
    admission = Admission(ClusterSettings.parse(cfg.service_cidr, cfg.node_port_range))
    store = Store(os.path.join(state_dir(cfg.name), "store.db"), admission=admission)
    store.bootstrap()
    client = LocalClient(store)
    servers = []
    if args.https_port:
        # Bound before the unix socket: `cluster up` takes that one as the API being up.
        p = pki.paths(state_dir(cfg.name))
        ctx = tls_context(p.server_crt, p.server_key, p.ca_crt)
        servers.append(serve_tls(store, "127.0.0.1", args.https_port, ctx))
        if args.lan_address:
            host, _, port = args.lan_address.rpartition(":")
            servers.append(serve_tls(store, host, int(port), ctx))
    servers.append(serve(store, socket_path(cfg.name)))
    # A short poll: shutdown() waits for it, and `cluster down` waits for the shutdown.
    for i, srv in enumerate(servers):
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name=f"api-{i}").start()
    bootstrap_objects(client, cfg)
    informers = InformerFactory(client)
    controllers = start_controllers(client, informers)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    log.info("control plane of %s up with %d controllers", cfg.name, len(controllers))
    done.wait()
    stop_controllers(controllers, informers)
    for srv in servers:
        srv.shutdown()
    store.close()  # wakes the informers' watches: no waiting for a bookmark
    if not informers.join(1.0):
        log.warning("informers still running at shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
