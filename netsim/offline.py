"""An offline cluster: the real control plane over an in-memory store, run to a fixed point.

`netsim render`, the DNS zones of rules/dns/ and the ingress confs of rules/ingress/ need
the objects a fresh cluster would hold after `netsim apply -f FILES`: ClusterIPs and
NodePorts allocated, pods created, scheduled, given IPs, Ready, EndpointSlices written.
Rather than imitate that, this module runs the real code on one thread, without sockets:

- a `Store(":memory:")` with the API server's admission (defaulting, validation, the
  ClusterIP / NodePort allocators), reached through a `LocalClient`;
- Nodes as each node's kubelet registers them (`Kubelet.node_object`): the Node objects in
  the files, else `cluster up`'s topology (k8s-master-171 with the control-plane taint,
  k8s-slave-172, ...; node i gets the i-th /24 of the pod CIDR), plus a worker for every
  `nodeName` an EndpointSlice or Endpoints in the files names that is not one of them
  (next LAN address, next /24), so upstream's fixtures render with `--node test-node`;
- the Deployment, ReplicaSet, DaemonSet, StatefulSet, scheduler and Endpoints/EndpointSlice
  controllers' `reconcile`, called round after round until a round changes nothing;
- a kubelet stand-in that starts nothing: a pod bound to a node gets its IP from that
  node's `netsim.net.ipam.Ipam` (the kubelet's own host-local IPAM: .2 up, in binding
  order; the node IP for hostNetwork pods) and is reported Running and Ready.

Deterministic by construction: the store's clock starts at 2026-01-01T00:00:00Z and
ticks one second per created object (so "oldest first" orders are creation orders), uids
count up, and every create runs with Python's `random` seeded from the object's kind,
namespace and name (its generateName and a counter when it has no name). The allocators
and generated names therefore depend only on the object, not on when or next to what it is
created; the global `random` state is restored after each create.

Namespaces that objects use but the files do not create are created (a render of one file
needs no namespace.yaml). Kinds the API does not serve (ClusterRole, ...) are skipped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import tempfile
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from netsim.api import errors
from netsim.api.admission import Admission, ClusterSettings
from netsim.api.client import LocalClient
from netsim.api.resources import for_object
from netsim.api.store import Store
from netsim.api.timeutil import format_rfc3339
from netsim.controllers.daemonset import DaemonSetController
from netsim.controllers.deployment import DeploymentController
from netsim.controllers.endpoints import EndpointsController
from netsim.controllers.persistentvolume import PersistentVolumeController
from netsim.controllers.persistentvolume import install as install_storage
from netsim.controllers.replicaset import ReplicaSetController
from netsim.controllers.scheduler import Scheduler
from netsim.controllers.statefulset import StatefulSetController
from netsim.kubelet import status as pod_status
from netsim.kubelet.agent import Kubelet
from netsim.net.ipam import Ipam
from netsim.net.topology import (
    DEFAULT_LAN,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    ClusterConfig,
    NodeSpec,
)

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
MAX_ROUNDS = 50
# What a round of controllers may change; Events are left out (a pod that cannot be
# scheduled gets one more FailedScheduling count on every pass).
WATCHED = ("nodes", "pods", "services", "endpoints", "endpointslices", "deployments",
           "replicasets", "daemonsets", "statefulsets", "controllerrevisions", "ingresses")


class OfflineError(Exception):
    """The manifests cannot be brought to a steady state (the message says why)."""


def _md(obj: dict) -> dict:
    return obj.get("metadata") or {}


# ---- nodes ------------------------------------------------------------------------------
def _referenced_nodes(objs: Iterable[dict]) -> list[str]:
    """nodeNames of EndpointSlice endpoints and Endpoints addresses, in file order."""
    names: list[str] = []
    for o in objs:
        if o.get("kind") == "EndpointSlice":
            found = [ep.get("nodeName") for ep in o.get("endpoints") or []]
        elif o.get("kind") == "Endpoints":
            found = [a.get("nodeName") for sub in o.get("subsets") or []
                     for key in ("addresses", "notReadyAddresses") for a in sub.get(key) or []]
        else:
            continue
        names += [n for n in found if n and n not in names]
    return names


def _spec_of_node(obj: dict, i: int, cfg: ClusterConfig) -> NodeSpec:
    """A NodeSpec for a Node object from the files (its InternalIP and podCIDR if given)."""
    md, spec = _md(obj), obj.get("spec") or {}
    addrs = (obj.get("status") or {}).get("addresses") or []
    ip = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None)
    pod_cidr = spec.get("podCIDR") or _nth_subnet(cfg.pod_cidr, i)
    cp = "node-role.kubernetes.io/control-plane" in (md.get("labels") or {})
    return NodeSpec(md.get("name", ""), ip or str(ipaddress.ip_network(cfg.lan)[171 + i]),
                    pod_cidr, cp)


def _nth_subnet(pod_cidr: str, i: int) -> str:
    net = ipaddress.ip_network(pod_cidr, strict=False)
    return str(ipaddress.ip_network((int(net.network_address) + i * 256, 24)))


def topology(objs: list[dict], *, nodes: int = 3, pod_cidr: str = DEFAULT_POD_CIDR,
             service_cidr: str = DEFAULT_SERVICE_CIDR, lan: str = DEFAULT_LAN) -> ClusterConfig:
    """The cluster the manifests run on (see the module docstring for the rule)."""
    given = [o for o in objs if o.get("kind") == "Node"]
    if given:
        cfg = ClusterConfig.make(name="render", nodes=1, lan=lan, pod_cidr=pod_cidr,
                                 service_cidr=service_cidr)
        cfg.nodes = [_spec_of_node(o, i, cfg) for i, o in enumerate(given)]
    else:
        cfg = ClusterConfig.make(name="render", nodes=nodes, lan=lan, pod_cidr=pod_cidr,
                                 service_cidr=service_cidr)
    known = {n.name for n in cfg.nodes}
    for name in _referenced_nodes(objs):
        if name not in known:
            i = len(cfg.nodes)
            cfg.nodes.append(NodeSpec(name, str(ipaddress.ip_network(cfg.lan)[171 + i]),
                                      _nth_subnet(cfg.pod_cidr, i)))
            known.add(name)
    return cfg


def node_object(cfg: ClusterConfig, node: NodeSpec, given: dict | None = None) -> dict:
    """The Node as its kubelet registers it (labels, podCIDR, control-plane taint, Ready),
    without the host's capacity (so placement does not depend on this machine); a Node
    from the files keeps its own labels, annotations and spec."""
    me = types.SimpleNamespace(node=node, cfg=cfg, node_netns=cfg.node_netns(node.name),
                               _node_conditions=lambda old: Kubelet._node_conditions(None, old))
    obj = Kubelet.node_object(me)
    obj["metadata"]["annotations"].pop("netsim.io/netns", None)
    for k in ("capacity", "allocatable", "nodeInfo"):
        obj["status"].pop(k, None)
    if given:
        md = _md(given)
        obj["metadata"]["labels"] = {**obj["metadata"]["labels"], **(md.get("labels") or {})}
        obj["metadata"]["annotations"].update(md.get("annotations") or {})
        obj["spec"] = {**obj["spec"], **(given.get("spec") or {})}
        if (given.get("status") or {}).get("conditions"):
            obj["status"]["conditions"] = given["status"]["conditions"]
    return obj


# ---- determinism ----------------------------------------------------------------------------
class _Clock:
    """creationTimestamps one second apart from EPOCH; uids counting up."""

    def __init__(self) -> None:
        self.ticks = 0
        self.uids = 0

    def stamp(self) -> str:
        self.ticks += 1
        return format_rfc3339(EPOCH + timedelta(seconds=self.ticks))

    def uid(self) -> str:
        self.uids += 1
        return f"00000000-0000-4000-8000-{self.uids:012d}"


class _SeededClient(LocalClient):
    """Every create runs with `random` seeded from the object (see the module docstring)."""

    def __init__(self, store: Store):
        super().__init__(store)
        self._generated: dict[str, int] = {}

    def create(self, obj, dry_run=False):
        md = _md(obj)
        key = f"{obj.get('kind')}/{md.get('namespace') or ''}/{md.get('name') or ''}"
        if not md.get("name"):
            key += md.get("generateName") or ""
            self._generated[key] = n = self._generated.get(key, 0) + 1
            key += f"#{n}"
        state = random.getstate()
        random.seed(key)
        try:
            return super().create(obj, dry_run)
        finally:
            random.setstate(state)


# ---- the kubelet stand-in --------------------------------------------------------------------
class _Kubelets:
    """Per node: the kubelet's IPAM; a bound pod gets an IP and is reported Running/Ready."""

    def __init__(self, client: LocalClient, cfg: ClusterConfig, state_dir: str, now: str):
        self.client, self.cfg, self.now = client, cfg, now
        self.ipam = {n.name: Ipam(f"{state_dir}/ipam/{n.name}.json", n.pod_cidr)
                     for n in cfg.nodes}
        self.nodes = {n.name: n for n in cfg.nodes}

    def reconcile(self) -> None:
        pods = [p for p in self.client.list("pods")
                if (p.get("spec") or {}).get("nodeName") in self.nodes
                and not (p.get("status") or {}).get("podIP")
                and not _md(p).get("deletionTimestamp")]
        for pod in sorted(pods, key=lambda p: _md(p).get("creationTimestamp") or ""):
            node = self.nodes[pod["spec"]["nodeName"]]
            if pod["spec"].get("hostNetwork"):
                ip = node.ip
            else:
                ip = self.ipam[node.name].allocate(_md(pod)["uid"])
            old = (pod.get("status") or {}).get("conditions") or []
            conds = [pod_status.condition(t, True, old, self.now)
                     for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                               "ContainersReady", "PodScheduled")]
            pod["status"] = {**(pod.get("status") or {}), "phase": "Running",
                             "conditions": conds, "hostIP": node.ip,
                             "hostIPs": [{"ip": node.ip}], "podIP": ip, "podIPs": [{"ip": ip}],
                             "startTime": self.now}
            self.client.update_status(pod)


# ---- the cluster ------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What the offline cluster holds once settled: objects per resource, and its nodes."""

    cfg: ClusterConfig
    objects: dict[str, list[dict]] = field(default_factory=dict)

    def list(self, plural: str, namespace: str | None = None) -> list[dict]:
        return [o for o in self.objects.get(plural, [])
                if namespace is None or _md(o).get("namespace") == namespace]

    def node(self, name: str | None) -> NodeSpec:
        """The named node (KeyError when there is none), the first one for None."""
        return self.cfg.nodes[0] if name is None else self.cfg.node(name)


class OfflineCluster:
    """apply() objects, settle() the controllers, snapshot() the result; close() at the end."""

    def __init__(self, cfg: ClusterConfig, node_objects: dict[str, dict] | None = None):
        self.cfg = cfg
        self._clock = _Clock()
        self._tmp = tempfile.TemporaryDirectory(prefix="netsim-offline-")
        settings = ClusterSettings.parse(cfg.service_cidr, cfg.node_port_range)
        self.store = Store(":memory:", admission=Admission(settings), clock=self._clock.stamp,
                           new_uid=self._clock.uid)
        self.store.bootstrap()
        self.client = _SeededClient(self.store)
        # controllers' own clock: a day after the store's epoch (every minReadySeconds past)
        later = (EPOCH + timedelta(days=1)).timestamp()
        scheduler = Scheduler(self.client)
        scheduler.min_pass_gap = 0.0
        self.controllers = [DeploymentController(self.client, clock=lambda: later),
                            ReplicaSetController(self.client, clock=lambda: later),
                            DaemonSetController(self.client, clock=lambda: later),
                            StatefulSetController(self.client, clock=lambda: later),
                            scheduler]
        # claims (a StatefulSet's volumeClaimTemplates) bound as on a kind cluster: the
        # default class, local-path folders in the offline cluster's scratch folder
        volumes = PersistentVolumeController(self.client)
        volumes.root = os.path.join(self._tmp.name, "local-path")
        self.controllers.append(volumes)
        install_storage(self.client, cfg)
        self.endpoints = EndpointsController(self.client)
        self.kubelets = _Kubelets(self.client, cfg, self._tmp.name,
                                  format_rfc3339(EPOCH + timedelta(days=1)))
        for n in cfg.nodes:
            self.client.create(node_object(cfg, n, (node_objects or {}).get(n.name)))

    def close(self) -> None:
        self.store.close()
        self._tmp.cleanup()

    def __enter__(self) -> OfflineCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def apply(self, objs: Iterable[dict]) -> None:
        """Create each object through admission, as `netsim create -f` would (Namespaces
        first; missing namespaces made; Nodes and unserved kinds skipped)."""
        objs = [o for o in objs if o.get("kind") != "Node" and _served(o)]
        for o in sorted(objs, key=lambda o: o.get("kind") != "Namespace"):
            ns = _md(o).get("namespace")
            if ns and for_object(o).namespaced:
                self._ensure_namespace(ns)
            try:
                self.client.create(o)
            except errors.AlreadyExists:
                if o.get("kind") != "Namespace":
                    raise

    def _ensure_namespace(self, ns: str) -> None:
        if self.client.get_or_none("namespaces", ns) is None:
            self.client.create({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": ns}})

    def settle(self) -> None:
        """Run every controller's reconcile over all its keys until a round changes nothing."""
        last = None
        for _ in range(MAX_ROUNDS):
            for ctrl in self.controllers:
                for key in list(ctrl.all_keys()):
                    with contextlib.suppress(errors.Conflict):
                        ctrl.reconcile(key)
            self.kubelets.reconcile()
            for key in list(self.endpoints.all_keys()):
                with contextlib.suppress(errors.Conflict):
                    self.endpoints.reconcile(key)
            now = self._fingerprint()
            if now == last:
                return
            last = now
        raise OfflineError(f"the controllers did not settle in {MAX_ROUNDS} rounds")

    def _fingerprint(self) -> list:
        return [self.store.list_raw(r)[0]
                for r in WATCHED + ("persistentvolumeclaims", "persistentvolumes")]

    def snapshot(self) -> Snapshot:
        snap = Snapshot(self.cfg)
        for res in WATCHED + ("namespaces", "configmaps", "secrets", "networkpolicies"):
            snap.objects[res] = json.loads("[" + ",".join(self.store.list_raw(res)[0]) + "]")
        return snap


def _served(obj: dict) -> bool:
    try:
        for_object(obj)
    except Exception:  # noqa: BLE001 - an unknown kind: nothing the dataplane reads
        return False
    return True


def build(objs: list[dict], *, nodes: int = 3, pod_cidr: str = DEFAULT_POD_CIDR,
          service_cidr: str = DEFAULT_SERVICE_CIDR,
          node_labels: dict[str, dict[str, str]] | None = None,
          then: list[dict] | None = None) -> Snapshot:
    """The settled cluster for these manifests (one call: apply, settle, snapshot).

    `node_labels` adds labels to nodes first (`netsim label node NODE k=v` before the
    apply); `then` is applied and settled after `objs` (what comes later keeps off the
    addresses `objs` got)."""
    cfg = topology(objs, nodes=nodes, pod_cidr=pod_cidr, service_cidr=service_cidr)
    given = {_md(o).get("name"): o for o in objs if o.get("kind") == "Node"}
    for name, labels in (node_labels or {}).items():
        if name not in {n.name for n in cfg.nodes}:
            raise KeyError(name)
        g = given.setdefault(name, {"metadata": {"name": name}})
        g.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    with OfflineCluster(cfg, given) as cluster:
        cluster.apply(objs)
        cluster.settle()
        if then:
            cluster.apply(then)
            cluster.settle()
        return cluster.snapshot()
