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
import time

from netsim.api import errors, events, satoken
from netsim.api.admission import Admission, ClusterSettings
from netsim.api.client import LocalClient, socket_path
from netsim.api.kinds import DEFAULT_KINDS
from netsim.api.kinds import serviceaccount as serviceaccount_admission
from netsim.api.server import serve, serve_tls, tls_context
from netsim.api.store import Store
from netsim.api.streams import backend as streams_backend
from netsim.cluster import addons, pki
from netsim.controllers.cronjob import CronJobController
from netsim.controllers.daemonset import DaemonSetController
from netsim.controllers.deployment import DeploymentController
from netsim.controllers.disruption import DisruptionController
from netsim.controllers.endpoints import EndpointsController
from netsim.controllers.gc import GarbageCollector
from netsim.controllers.job import JobController
from netsim.controllers.nodelifecycle import NodeLifecycleController
from netsim.controllers.persistentvolume import PersistentVolumeController
from netsim.controllers.podgc import PodGCController
from netsim.controllers.replicaset import ReplicaSetController
from netsim.controllers.scheduler import Scheduler
from netsim.controllers.serviceaccount import ServiceAccountController
from netsim.controllers.statefulset import StatefulSetController
from netsim.kubelet.streams import NodeStreams
from netsim.machinery import InformerFactory
from netsim.net import rtnl
from netsim.net.ledger import state_dir
from netsim.net.netlink import NETNS_DIR
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
    PodGCController,
    DisruptionController,
    ServiceAccountController,
    PersistentVolumeController,
]
# Where pods reach the API: the control-plane node's address, as kind's `kubernetes`
# endpoint is its control-plane node at :6443.
IN_CLUSTER_PORT = 6443


def bootstrap_objects(client: LocalClient, cfg: ClusterConfig) -> None:
    """What kubeadm creates: the `kubernetes` Service; the add-ons (netsim.cluster.addons)
    unless the cluster was made with `--no-addons`."""
    with contextlib.suppress(errors.AlreadyExists):
        client.create({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "kubernetes", "namespace": "default",
                                    "labels": {"component": "apiserver", "provider": "kubernetes"}},
                       "spec": {"clusterIP": cfg.kubernetes_ip, "type": "ClusterIP",
                                "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                           "targetPort": 6443}]}})
    if cfg.addons:
        addons.install(client, cfg)


def start_controllers(client: LocalClient, informers: InformerFactory,
                      configure=None) -> list:
    """Every controller on the one factory given: one list and one watch per resource for
    the whole control plane, however many controllers read it (kube-controller-manager's
    SharedInformerFactory). The caller owns the factory and stops it after the controllers.
    `configure(ctrl)`, when given, sets a controller up before it starts (its flags)."""
    informers.retain()  # ours: a controller that stops early does not stop the others' watches
    running = []
    for klass in CONTROLLERS:
        ctrl = klass(client, informers=informers)
        if configure is not None:
            configure(ctrl)
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


def _configure(ctrl, root_ca: str | None, in_cluster: tuple[str, int] | None,
               cluster: str = "") -> None:
    """The controllers' share of the API's setup: the CA the root-ca-cert-publisher hands
    out, the `kubernetes` Service's endpoint (kube-apiserver's endpoint reconciler)."""
    if isinstance(ctrl, ServiceAccountController):
        ctrl.root_ca = root_ca
    if isinstance(ctrl, PersistentVolumeController):
        ctrl.cluster = cluster  # local-path folders under the cluster's state folder
    if isinstance(ctrl, EndpointsController) and in_cluster:
        ip, port = in_cluster
        ctrl.static_endpoints[("default", "kubernetes")] = [
            {"addresses": [{"ip": ip}],
             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]


def _serve_in_cluster(store: Store, cfg: ClusterConfig, ctx, servers: list,
                      timeout: float = 120.0) -> tuple[str, int] | None:
    """The HTTPS API on the control-plane node's LAN address, port 6443, bound inside that
    node's netns (the socket stays in the netns it was made in): pods reach it through the
    `kubernetes` Service, and the node routes the answers back to every pod CIDR (the root
    netns cannot: it holds the cluster's CIDRs unreachable). The netns appears while
    `cluster up` builds the nodes, after this process started: a thread waits for it.
    Returns (ip, port), or None for a cluster without nodes."""
    node = next((n for n in cfg.nodes if n.control_plane), cfg.nodes[0] if cfg.nodes else None)
    if node is None:
        return None
    path = os.path.join(NETNS_DIR, cfg.node_netns(node.name))

    def bind() -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                log.warning("no netns %s: pods cannot reach the API", path)
                return
            time.sleep(0.05)
        for _ in range(100):
            try:
                with rtnl.in_netns(path):
                    srv = serve_tls(store, node.ip, IN_CLUSTER_PORT, ctx)
                break
            except OSError as e:  # the netns exists before its bind mount is complete
                err = e
                time.sleep(0.05)
        else:
            log.warning("cannot serve the API in %s: %s", path, err)
            return
        servers.append(srv)
        log.info("API for pods on %s:%d (netns %s)", node.ip, IN_CLUSTER_PORT, path)
        srv.serve_forever()

    threading.Thread(target=bind, daemon=True, name="api-in-cluster").start()
    return node.ip, IN_CLUSTER_PORT


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
    from netsim import gcpolicy, profiling
    profiling.maybe_start("controlplane")
    cfg = ClusterConfig.load(args.cluster)
    if cfg is None:
        print(f"cluster {args.cluster} has no configuration", file=sys.stderr)
        return 1
    admission = Admission(ClusterSettings.parse(cfg.service_cidr, cfg.node_port_range),
                          kinds=(*DEFAULT_KINDS, serviceaccount_admission))
    store = Store(os.path.join(state_dir(cfg.name), "store.db"), admission=admission)
    store.bootstrap()
    client = LocalClient(store)
    client.event_sink = events.Sink(client)  # the controllers' events, off their threads
    # pods/log and pods/exec read the nodes' kubelet records on this machine
    streams_backend.install(NodeStreams(cfg.name))
    servers = []
    root_ca, in_cluster = None, None
    if args.https_port:
        # Bound before the unix socket: `cluster up` takes that one as the API being up.
        p = pki.paths(state_dir(cfg.name))
        satoken.configure(satoken.Issuer.from_files(p.sa_key, p.sa_pub))
        root_ca = pki.read(p.ca_crt).decode()
        ctx = tls_context(p.server_crt, p.server_key, p.ca_crt)
        servers.append(serve_tls(store, "127.0.0.1", args.https_port, ctx))
        if args.lan_address:
            host, _, port = args.lan_address.rpartition(":")
            servers.append(serve_tls(store, host, int(port), ctx))
        in_cluster = _serve_in_cluster(store, cfg, ctx, servers)
    servers.append(serve(store, socket_path(cfg.name)))
    # shutdown() wakes their loops at once (_Server.serve_forever), `cluster down` waits for it.
    for i, srv in enumerate(servers):
        threading.Thread(target=srv.serve_forever, daemon=True,
                         name=f"api-{i}").start()
    bootstrap_objects(client, cfg)
    informers = InformerFactory(client)
    controllers = start_controllers(client, informers,
                                    lambda c: _configure(c, root_ca, in_cluster, cfg.name))
    gcpolicy.for_daemon()
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
