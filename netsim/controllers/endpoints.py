"""Endpoints and EndpointSlices for Services, as kube-controller-manager writes them.

One reconcile per Service computes both objects from the pods its selector matches
(upstream `pkg/controller/endpoint` and `pkg/controller/endpointslice`):

- v1 Endpoints (same name as the Service): Ready pods in `addresses`, the others in
  `notReadyAddresses`; terminating pods (deletionTimestamp) and terminal pods are left out;
  a named targetPort is resolved per pod, and a pod lacking it is skipped for that port;
  at most 1,000 addresses, then annotated `endpoints.kubernetes.io/over-capacity:
  truncated` (the slices hold every endpoint).
- discovery.k8s.io/v1 EndpointSlices (`<svc>-xxxxx`): every non-terminal pod with an IP,
  terminating ones included with ready=false, serving=<pod Ready>, terminating=true, so
  kube-proxy can drain them as upstream does; one slice per distinct port list.

Selectorless Services keep whatever Endpoints the user wrote; those are mirrored into
slices managed by `endpointslicemirroring-controller.k8s.io`, as upstream's mirroring
controller does, so the proxy and DNS (which read slices) see them. Writes happen only when
content changes. `static_endpoints` lets the control plane publish fixed endpoints (the
`kubernetes` Service pointing at the API).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterable, Mapping

from netsim.api import errors, events
from netsim.api.client import Client
from netsim.api.timeutil import now_rfc3339
from netsim.api.validation import parse_ip
from netsim.controllers.base import BatchPeriod, Controller, split_key
from netsim.controllers.fields import obj_at
from netsim.machinery import InformerFactory, clone, label_index

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MIRROR_MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_CAPACITY = 1000  # addresses in one v1 Endpoints (upstream's maxCapacity)
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100

# (namespace, name) -> EndpointSubset list, e.g. {("default", "kubernetes"): [{"addresses":
# [{"ip": "192.168.3.171"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}
StaticEndpoints = Mapping[tuple[str, str], list]


log = logging.getLogger("netsim.controllers")


# ---- pure helpers -------------------------------------------------------------------------
def _is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _is_ip(value) -> bool:
    return parse_ip(value) is not None  # remembered: every pod, every reconcile


def _objects(value) -> bool:
    """None or a list of JSON objects."""
    return value is None or (isinstance(value, list) and all(isinstance(x, dict) for x in value))


def pod_problem(pod: dict) -> str | None:
    """Why a pod cannot be an endpoint: a field this controller reads has the wrong type, or
    its address is none. Admission refuses such pods; one written around it (or by an older
    version) is left out instead of failing the Service's endpoints for every other pod."""
    spec, status = pod.get("spec"), pod.get("status")
    if not isinstance(spec, (dict, type(None))):
        return "spec: must be an object"
    if not isinstance(status, (dict, type(None))):
        return "status: must be an object"
    spec, status = spec or {}, status or {}
    for fld in ("conditions", "podIPs"):
        if not _objects(status.get(fld)):
            return f"status.{fld}: must be a list of objects"
    for fld in ("containers", "initContainers"):
        if not _objects(spec.get(fld)):
            return f"spec.{fld}: must be a list of objects"
        for i, c in enumerate(spec.get(fld) or []):
            if not _objects(c.get("ports")):
                return f"spec.{fld}[{i}].ports: must be a list of objects"
    for fld in ("nodeName", "hostname", "subdomain"):
        if not isinstance(spec.get(fld), (str, type(None))):
            return f"spec.{fld}: must be a string"
    ip = _pod_ip(pod)
    if ip and not _is_ip(ip):
        return (f"status.podIP: Invalid value: {json.dumps(ip)}: must be a valid IP address, "
                "(e.g. 10.9.8.7 or 2001:db8::ffff)")
    return None


def pod_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _pod_ip(pod: dict) -> str:
    st = pod.get("status") or {}
    if st.get("podIP"):
        return st["podIP"]
    for p in st.get("podIPs") or []:
        if p.get("ip"):
            return p["ip"]
    return ""


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def selector_matches(selector: dict, labels: dict | None) -> bool:
    """A pod whose labels are no map (written around admission) has none."""
    labels = labels if isinstance(labels, dict) else {}
    return all(labels.get(k) == v for k, v in selector.items())


def find_port(pod: dict, svc_port: dict) -> int | None:
    """podutil.FindPort: a numeric targetPort as is, a named one from the pod's containers."""
    tp = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(tp, int):
        return tp if _is_port(tp) else None
    if isinstance(tp, str) and tp:
        proto = svc_port.get("protocol") or "TCP"
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        for c in containers:
            for p in c.get("ports") or []:
                if p.get("name") == tp and (p.get("protocol") or "TCP") == proto:
                    cp = p.get("containerPort")
                    return cp if _is_port(cp) else None
    return None


def _should_set_hostname(pod: dict, svc: dict) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == svc["metadata"]["name"] \
        and pod["metadata"].get("namespace") == svc["metadata"].get("namespace")


def _target_ref(pod: dict) -> dict:
    md = pod["metadata"]
    return {"kind": "Pod", "namespace": md.get("namespace"), "name": md["name"], "uid": md.get("uid")}


def _endpoint_port(svc_port: dict, port: int) -> dict:
    ep = {}
    if svc_port.get("name"):
        ep["name"] = svc_port["name"]
    ep["port"] = port
    ep["protocol"] = svc_port.get("protocol") or "TCP"
    if svc_port.get("appProtocol"):
        ep["appProtocol"] = svc_port["appProtocol"]
    return ep


@functools.lru_cache(maxsize=1 << 16)
def _ip_key(ip: str) -> tuple:
    """An address's sort key (remembered: every endpoint is sorted on every reconcile)."""
    try:
        return (0, tuple(int(x) for x in ip.split(".")))
    except ValueError:
        return (1, ip)


def subset_entry(svc: dict, pod: dict) -> tuple | None:
    """What one pod adds to the Service's Endpoints: (port key, ports, ready, address), or
    None for a pod left out (no IP, finished, terminating, none of the ports)."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    ip = _pod_ip(pod)
    if not ip or _terminal(pod):
        return None
    if pod["metadata"].get("deletionTimestamp") and not publish:
        return None
    addr = {"ip": ip}
    if _should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    if (pod.get("spec") or {}).get("nodeName"):
        addr["nodeName"] = pod["spec"]["nodeName"]
    addr["targetRef"] = _target_ref(pod)
    ready = publish or pod_ready(pod)
    ports = []
    for sp in svc_ports:
        num = find_port(pod, sp)
        if num is None:
            continue  # upstream logs and skips this port for this pod
        ports.append(_endpoint_port(sp, num))
    if svc_ports and not ports:
        return None
    if not svc_ports and spec.get("clusterIP") != "None":
        return None
    pkey = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
    return pkey, ports, ready, addr


def group_subsets(entries: Iterable[tuple | None]) -> list[dict]:
    """The Endpoints controller's subsets from subset_entry()s, repacked: one subset per
    distinct port set."""
    # port key -> {ports, ready addresses, not ready addresses}
    groups: dict[tuple, dict] = {}
    for entry in entries:
        if entry is None:
            continue
        pkey, ports, ready, addr = entry
        g = groups.setdefault(pkey, {"ports": ports, "ready": [], "notready": []})
        g["ready" if ready else "notready"].append(addr)
    subsets = []
    for g in groups.values():
        sub: dict = {}
        if g["ready"]:
            sub["addresses"] = sorted(g["ready"], key=lambda a: _ip_key(a["ip"]))
        if g["notready"]:
            sub["notReadyAddresses"] = sorted(g["notready"], key=lambda a: _ip_key(a["ip"]))
        if g["ports"]:
            sub["ports"] = g["ports"]
        subsets.append(sub)
    subsets.sort(key=lambda s: _ip_key(((s.get("addresses") or s.get("notReadyAddresses"))[0])["ip"]))
    return subsets


def truncate_subsets(subsets: list[dict], capacity: int = MAX_ENDPOINTS_CAPACITY
                     ) -> tuple[list[dict], bool]:
    """Upstream's truncateEndpoints: a v1 Endpoints holds at most `capacity` addresses
    (EndpointSlices hold them all). Ready addresses come first: when they alone are too
    many, each subset keeps its share of them, rounded up, and no not-ready ones;
    otherwise the not-ready ones are cut the same way. Returns (subsets, whether cut);
    the controller then annotates the object over-capacity=truncated."""
    ready = sum(len(s.get("addresses") or ()) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if ready + not_ready <= capacity:
        return subsets, False
    cut_ready = ready > capacity
    room = capacity if cut_ready else capacity - ready
    total = ready if cut_ready else not_ready
    left = room
    out = []
    for sub in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        have = sub.get(field) or []
        take = min(-(-len(have) * room // total), left)  # ceil(len/total * room)
        sub = dict(sub)
        if have:
            sub[field] = have[:take]
            if not sub[field]:
                del sub[field]
        if cut_ready:
            sub.pop("notReadyAddresses", None)
        left -= len(sub.get(field) or ())
        out.append(sub)
    return out, True


def endpoints_subsets(svc: dict, pods: Iterable[dict]) -> list[dict]:
    """The Endpoints controller's subsets, repacked: one subset per distinct port set."""
    return group_subsets(subset_entry(svc, pod) for pod in pods)


def slice_entry(svc: dict, pod: dict, zones: Mapping[str, str] | None = None
                ) -> tuple | None:
    """What one pod adds to the Service's EndpointSlices: (port key, ports, endpoint), or
    None for a pod left out (no IPv4 address, finished); terminating pods stay, flagged."""
    spec = svc.get("spec") or {}
    publish = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    ip = _pod_ip(pod)
    if not ip or _terminal(pod) or ":" in ip:
        return None
    serving = pod_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    ready = publish or serving
    if terminating and not publish:
        ready = False
    ep: dict = {"addresses": [ip],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if _should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    ep["targetRef"] = _target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
        if zones and zones.get(node):
            ep["zone"] = zones[node]
    ports = []
    for sp in svc_ports:
        num = find_port(pod, sp)
        if num is None:
            continue
        p = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        ports.append(p)
    key = tuple((p["name"], p["port"], p["protocol"]) for p in ports)
    return key, ports, ep


def group_slices(entries: Iterable[tuple | None]) -> list[tuple[list[dict], list[dict]]]:
    """(ports, endpoints) groups for EndpointSlices from slice_entry()s."""
    groups: dict[tuple, tuple[list, list]] = {}
    for entry in entries:
        if entry is not None:
            groups.setdefault(entry[0], (entry[1], []))[1].append(entry[2])
    out = []
    for ports, eps in groups.values():
        eps.sort(key=lambda e: _ip_key(e["addresses"][0]))
        for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE):
            out.append((ports, eps[i:i + MAX_ENDPOINTS_PER_SLICE]))
    return out


def slice_endpoints(svc: dict, pods: Iterable[dict], zones: Mapping[str, str] | None = None
                    ) -> list[tuple[list[dict], list[dict]]]:
    """(ports, endpoints) groups for EndpointSlices; terminating pods stay, flagged."""
    return group_slices(slice_entry(svc, pod, zones) for pod in pods)


def mirror_endpoints(subsets: list[dict]) -> list[tuple[list[dict], list[dict]]]:
    """Slices' (ports, endpoints) for user-written Endpoints (endpointslicemirroring)."""
    out = []
    for sub in subsets or []:
        ports = [{"name": p.get("name") or "", "port": p.get("port"),
                  "protocol": p.get("protocol") or "TCP",
                  **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
                 for p in sub.get("ports") or [] if _is_port(p.get("port"))]
        eps = []
        for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in sub.get(key) or []:
                if not _is_ip(a.get("ip")) or ":" in a["ip"]:  # what is no address stays out
                    continue
                ep: dict = {"addresses": [a["ip"]], "conditions": {"ready": ready}}
                if a.get("hostname"):
                    ep["hostname"] = a["hostname"]
                if a.get("targetRef"):
                    ep["targetRef"] = a["targetRef"]
                if a.get("nodeName"):
                    ep["nodeName"] = a["nodeName"]
                eps.append(ep)
        if eps:
            for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE):
                out.append((ports, eps[i:i + MAX_ENDPOINTS_PER_SLICE]))
    return out


def _endpoint_view(pod: dict) -> tuple | object:
    """What of a pod its endpoints show (upstream's podEndpointsChanged: labels, hostname
    and subdomain, deletion, readiness, IPs; here also the node and a finished phase); a
    pod whose fields cannot be read compares unequal to everything."""
    try:
        md, spec, st = (pod.get(k) or {} for k in ("metadata", "spec", "status"))
        return (md.get("labels"), md.get("deletionTimestamp"), spec.get("hostname"),
                spec.get("subdomain"), spec.get("nodeName"), st.get("podIP"), st.get("podIPs"),
                st.get("phase") in ("Succeeded", "Failed"), pod_ready(pod))
    except (AttributeError, TypeError):
        return object()


def _endpoint_key(ep: dict) -> tuple:
    """An endpoint's identity in its slices (upstream's endpointHash: the addresses, the
    hostname, the target's namespace and name); the rest of it may change in place."""
    ref = ep.get("targetRef") or {}
    return (tuple(ep.get("addresses") or ()), ep.get("hostname"), ref.get("namespace"),
            ref.get("name"))


def plan_slices(existing: list[dict], desired: list[tuple[list[dict], list[dict]]],
                unchanged_meta, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE
                ) -> tuple[list[tuple[dict | None, list[dict], list[dict]]], list[dict]]:
    """Upstream's reconcileByPortMapping: which slices to write and which to delete so the
    Service's slices hold `desired` ((ports, endpoints) groups), moving as few endpoints
    as possible. An endpoint stays in the slice that holds it (updated there when it
    changed, its slot kept); one that is gone leaves its slice (deleted when empty); new
    ones first fill the slices written anyway (fullest first), then the unchanged slice
    that fits them all (when they are fewer than a slice holds), then new slices.
    So one pod more or less rewrites one slice, not every slice after it in address order.

    Returns ([(slice or None for a new one, ports, endpoints)], [slices to delete]);
    `unchanged_meta(slice)` says whether a slice's labels and owner are already right."""
    want: dict[tuple, tuple[list[dict], dict[tuple, dict]]] = {}
    for ports, eps in desired:
        entry = want.setdefault(_ports_key(ports), (ports, {}))
        for ep in eps:
            entry[1].setdefault(_endpoint_key(ep), ep)
    by_ports: dict[tuple, list[dict]] = {}
    for s in existing:
        by_ports.setdefault(_ports_key(s.get("ports") or []), []).append(s)
    deletes = [s for key, slices in by_ports.items() if key not in want for s in slices]
    writes: list[tuple[dict | None, list[dict], list[dict]]] = []
    creates: list[tuple[list[dict], list[dict]]] = []
    for key, (ports, left) in want.items():
        update: list[tuple[dict, list[dict]]] = []
        unchanged: list[dict] = []
        for s in by_ports.get(key, []):
            have = s.get("endpoints") or []
            kept, changed = [], False
            for ep in have:
                got = left.pop(_endpoint_key(ep), None)
                if got is not None:
                    kept.append(got)
                    changed = changed or got != ep
            if changed or len(kept) != len(have):
                if kept:
                    update.append((s, kept))
                else:
                    deletes.append(s)
            elif not unchanged_meta(s):
                update.append((s, kept))
            else:
                unchanged.append(s)
        rest = list(left.values())
        i = 0
        for _, eps in sorted(update, key=lambda u: -len(u[1])):  # the fullest first
            take = max(0, min(max_per_slice - len(eps), len(rest) - i))
            eps.extend(rest[i:i + take])
            i += take
        while i < len(rest):
            n = len(rest) - i
            fill = None
            if n < max_per_slice:
                for s in unchanged:  # getSliceToFill: the fullest one that has room
                    size = len(s.get("endpoints") or [])
                    if size + n <= max_per_slice and (
                            fill is None or size > len(fill.get("endpoints") or [])):
                        fill = s
            if fill is not None:
                unchanged.remove(fill)
                update.append((fill, list(fill.get("endpoints") or []) + rest[i:]))
                i = len(rest)
                continue
            creates.append((ports, rest[i:i + max_per_slice]))
            i += max_per_slice
        writes.extend((s, ports, eps) for s, eps in update)
    # A slice to create takes the place of one to delete (upstream's finalize).
    while creates and deletes:
        ports, eps = creates.pop()
        writes.append((deletes.pop(0), ports, eps))
    writes.extend((None, ports, eps) for ports, eps in creates)
    return writes, deletes


def _ports_key(ports: list[dict]) -> tuple:
    return tuple((p.get("name", ""), p.get("port"), p.get("protocol")) for p in ports or [])


# ---- the controller ---------------------------------------------------------------------------
class EndpointsController(Controller):
    """Writes Endpoints and EndpointSlices for every Service (one key per Service)."""

    name = "endpoints-controller"
    watches = ("services", "pods", "endpoints", "endpointslices")
    reads = ("nodes",)
    indexers = {"endpointslices": {SERVICE_NAME_LABEL: label_index(SERVICE_NAME_LABEL)}}
    # Pod changes reach a Service's endpoints at most once per batch period, as with
    # upstream's --endpoint-updates-batch-period / --endpointslice-updates-batch-period:
    # each sync reads every pod of the Service and rewrites its Endpoints, so a rollout of
    # P pods synced on every pod change cost O(P^2). Upstream's default period is 0 (no
    # batching), and endpoint removal is on the zero-loss path (a terminating pod's preStop
    # must outlast it), so here the period follows what the Service's last sync cost:
    # batch_cost_factor times its CPU, at most batch_seconds (a few ms for a Service of a
    # few pods, ~0.25 s for one of 1,000, ~0.7 s for one of 5,000: the cap was 0.5 s, and
    # above it the syncs' share of a core grew with the Service, bench_controlplane's
    # O(n^2)). A change after a quiet spell is synced at once; Service changes never wait.
    batch_seconds = 2.0
    batch_cost_factor = 10.0
    # Addresses a v1 Endpoints keeps (a 5,000-pod Service's: 1,000 of them, each write of
    # the whole object was half of the sync); its EndpointSlices keep all.
    endpoints_capacity = MAX_ENDPOINTS_CAPACITY

    def __init__(self, client: Client, static_endpoints: StaticEndpoints | None = None,
                 informers: InformerFactory | None = None):
        super().__init__(client, informers)
        # The control plane may fill or replace this mapping at any time.
        self.static_endpoints: dict[tuple[str, str], list] = dict(static_endpoints or {})
        # (pod uid, Service key) -> problem already logged and reported as an event
        self._bad_pods: dict[tuple[str, str], str] = {}
        # pod uid -> (resourceVersion, pod_problem of that version)
        self._problems: dict[object, tuple[object, str | None]] = {}
        # Service key -> ((uid, resourceVersion, zones), {pod uid: (resourceVersion,
        # its entries)}): see _entries
        self._memo: dict[str, tuple[tuple, dict]] = {}
        # Service key -> its last sync's start and CPU: the batch period
        self.batch = BatchPeriod(self.batch_seconds, self.batch_cost_factor)
        # (resource, namespace, name) -> resourceVersion of this controller's last write of
        # that Endpoints/EndpointSlice: its own write coming back by watch queues nothing
        # (upstream's endpointSliceTracker), another writer's change does.
        self._mine: dict[tuple[str, str, str], str] = {}

    # -- keys ----------------------------------------------------------------------------
    def _enqueue(self, resource: str, *objs: dict) -> None:
        # A pod update that changes nothing an endpoint shows (the binding, a container's
        # state) queues nothing: upstream's GetServicesToUpdateOnPodChange.
        if resource == "pods":
            if len(objs) == 2 and _endpoint_view(objs[0]) == _endpoint_view(objs[1]):
                return
            self.batch.queue(self.queue, {k for o in objs for k in self.keys_for(resource, o)})
            return
        if resource in ("endpoints", "endpointslices"):
            md = objs[-1].get("metadata") or {}
            ident = (resource, md.get("namespace") or "default", md.get("name"))
            if md.get("resourceVersion") and self._mine.get(ident) == md["resourceVersion"]:
                return  # our own create, update or delete
        super()._enqueue(resource, *objs)

    def _wrote(self, resource: str, out) -> None:
        """Remember the version of an object this controller just wrote (see _mine)."""
        if isinstance(out, dict):
            md = out.get("metadata") or {}
            if md.get("resourceVersion"):
                if len(self._mine) > 100_000:
                    self._mine.clear()
                self._mine[(resource, md.get("namespace") or "default", md.get("name"))] = \
                    md["resourceVersion"]

    def keys_for(self, resource: str, obj: dict) -> Iterable[str]:
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or "default"
        if resource == "pods":
            # The Services whose selector matches the pod (GetPodServiceMemberships); an
            # update queues those of the old and of the new pod, so a pod that *left* a
            # Service's selector re-queues it too.
            labels = md.get("labels")
            return [f"{ns}/{s['metadata']['name']}" for s in self.cache("services").list(ns)
                    if isinstance((s.get("spec") or {}).get("selector"), dict)
                    and selector_matches(s["spec"]["selector"], labels)]
        if resource == "endpointslices":
            svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
            return [f"{ns}/{svc}"] if svc else []
        return [f"{ns}/{md['name']}"]

    def all_keys(self) -> Iterable[str]:
        keys = {f"{ns}/{name}" for ns, name in self.static_endpoints}
        for res in ("services", "endpoints", "endpointslices"):
            for obj in self.lister(res).list():
                keys.update(self.keys_for(res, obj))
        return sorted(keys)

    # -- reconcile -----------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        with self.batch.syncing(key, self._running):
            return self._reconcile(key)

    def _reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        ns = ns or "default"
        svc = self.lister("services").get_by_name(name, ns)
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            self.batch.forget(key)
            self._memo.pop(key, None)
            self._service_gone(ns, name)
            return None
        spec = svc.get("spec") or {}
        static = self.static_endpoints.get((ns, name))
        if static is not None:
            self._write_static(svc, static)
            return None
        if spec.get("selector") is None:
            self._mirror(svc)
            return None
        pods = self.lister("pods").list(ns)  # the API's order: by name
        entries = self._entries(key, svc, pods, self._zones(pods))
        self._write_endpoints(svc, group_subsets(e[0] for e in entries))
        if spec.get("type") == "ExternalName":
            self._sync_slices(svc, [], MANAGED_BY, placeholder=False)
        else:
            self._sync_slices(svc, group_slices(e[1] for e in entries), MANAGED_BY)
        return None

    def _entries(self, key: str, svc: dict, pods: list[dict], zones: dict[str, str]
                 ) -> list[tuple]:
        """(subset_entry, slice_entry) of each pod of the namespace the Service selects
        (and that can be an endpoint), remembered per pod version for this version of the
        Service and of the nodes' zones: a sync reads every pod, and most of them did not
        change since the last one (at 1,000 pods the entries were a fifth of the control
        plane's CPU, made again on every sync)."""
        svc_md = svc["metadata"]
        selector = svc["spec"]["selector"]
        ident = (svc_md.get("uid"), svc_md.get("resourceVersion"), zones)
        memo = self._memo.get(key)
        old = memo[1] if memo is not None and memo[0] == ident else {}
        fresh: dict = {}
        out = []
        for pod in pods:
            md = pod["metadata"]
            uid, rv = md.get("uid"), md.get("resourceVersion")
            hit = old.get(uid)
            if hit is not None and rv and hit[0] == rv:
                entry = hit[1]  # this version was selected (or not) and reported already
            elif selector_matches(selector, md.get("labels")) and not self._unusable(pod, key):
                entry = (subset_entry(svc, pod), slice_entry(svc, pod, zones))
            else:
                entry = None
            if uid and rv:
                fresh[uid] = (rv, entry)
            if entry is not None:
                out.append(entry)
        if ident[0] and ident[1]:
            self._memo[key] = (ident, fresh)
        return out

    def _unusable(self, pod: dict, svc_key: str) -> bool:
        """True (after one log line and one Warning event) for a pod that cannot be an
        endpoint; reported again only when its problem changes."""
        md = pod.get("metadata") or {}
        seen = self._problems.get(md.get("uid"))
        if seen is not None and md.get("resourceVersion") and seen[0] == md["resourceVersion"]:
            why = seen[1]  # this version was read already (every pod, every reconcile)
        else:
            why = pod_problem(pod)
            if len(self._problems) > 100_000:  # pods come and go: forget the old ones now and then
                self._problems.clear()
            self._problems[md.get("uid")] = (md.get("resourceVersion"), why)
        k = (str(md.get("uid")), svc_key)
        if why is None:
            self._bad_pods.pop(k, None)
            return False
        if self._bad_pods.get(k) != why:
            self._bad_pods[k] = why
            msg = f"left out of the endpoints of Service {svc_key}: {why}"
            log.warning("pod %s/%s %s", md.get("namespace"), md.get("name"), msg)
            with contextlib.suppress(Exception):
                events.record(self.client, {**pod, "kind": "Pod", "apiVersion": "v1"},
                              "Warning", "Rejected", msg, "endpoint-controller")
        return True

    def _zones(self, pods: list[dict]) -> dict[str, str]:
        if not any((p.get("spec") or {}).get("nodeName") for p in pods):
            return {}
        return {n["metadata"]["name"]: obj_at(n, "metadata", "labels").get(ZONE_LABEL, "")
                for n in self.lister("nodes").list()}

    def _service_gone(self, ns: str, name: str) -> None:
        ep = self.lister("endpoints").get_by_name(name, ns)
        # Only ours (they carry the trigger-time annotation); user-written ones stay.
        if ep and TRIGGER_ANNOTATION in ((ep["metadata"].get("annotations")) or {}):
            with contextlib.suppress(errors.NotFound):
                self._wrote("endpoints", self.client.delete("endpoints", name, ns))
        for s in self._slices(ns, name):
            if (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) in (MANAGED_BY, MIRROR_MANAGED_BY):
                with contextlib.suppress(errors.NotFound):
                    self._wrote("endpointslices",
                                self.client.delete("endpointslices", s["metadata"]["name"], ns))

    def _slices(self, ns: str, svc_name: str) -> list[dict]:
        """The Service's slices, from the cache (shared: _update_slice copies)."""
        return [s for s in self.lister("endpointslices").by_index(SERVICE_NAME_LABEL, svc_name)
                if s["metadata"].get("namespace") == ns]

    @staticmethod
    def _labels(svc: dict, extra: dict | None = None) -> dict:
        labels = dict(svc["metadata"].get("labels") or {})
        for k in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL):
            labels.pop(k, None)
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        labels.update(extra or {})
        return labels

    def _write_endpoints(self, svc: dict, subsets: list[dict], extra_labels: dict | None = None) -> None:
        ns, name = svc["metadata"].get("namespace") or "default", svc["metadata"]["name"]
        labels = self._labels(svc, extra_labels)
        subsets, over = truncate_subsets(subsets, self.endpoints_capacity)
        cur = self.lister("endpoints").get_by_name(name, ns)
        ann = dict((cur or {}).get("metadata", {}).get("annotations") or {})
        if cur is not None and (cur.get("subsets") or []) == subsets \
                and (cur["metadata"].get("labels") or {}) == labels \
                and TRIGGER_ANNOTATION in ann and (OVER_CAPACITY_ANNOTATION in ann) == over:
            return
        ann[TRIGGER_ANNOTATION] = now_rfc3339()
        if over:
            ann[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            ann.pop(OVER_CAPACITY_ANNOTATION, None)
        if cur is not None:
            # A new object over the cached one (shared: never changed): its old subsets,
            # replaced anyway, are not deep-copied first; the store copies what it is given.
            new = {**cur, "metadata": {**cur["metadata"], "labels": labels, "annotations": ann},
                   "subsets": subsets}  # in its place, as assigning it kept it
            if not subsets:
                del new["subsets"]
            self._wrote("endpoints", self.client.update(new))
            return
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": name, "namespace": ns, "labels": labels,
                            "annotations": ann}}
        if subsets:
            obj["subsets"] = subsets
        with contextlib.suppress(errors.AlreadyExists):  # raced: the next pass converges
            self._wrote("endpoints", self.client.create(obj))

    def _sync_slices(self, svc: dict, groups: list[tuple[list[dict], list[dict]]],
                     managed_by: str, placeholder: bool = True) -> None:
        """Make this controller's slices hold exactly `groups`, touching as few as possible."""
        ns, name = svc["metadata"].get("namespace") or "default", svc["metadata"]["name"]
        existing = [s for s in self._slices(ns, name)
                    if (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == managed_by]
        # The other controller's slices for this Service (e.g. a selector was added) go.
        other = MIRROR_MANAGED_BY if managed_by == MANAGED_BY else MANAGED_BY
        for s in self._slices(ns, name):
            if (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == other:
                with contextlib.suppress(errors.NotFound):
                    self._wrote("endpointslices",
                                self.client.delete("endpointslices", s["metadata"]["name"], ns))
        if not groups and placeholder:
            groups = [([], [])]
        labels = self._labels(svc, {SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: managed_by})
        owner = [{"apiVersion": "v1", "kind": "Service", "name": name,
                  "uid": svc["metadata"].get("uid"), "controller": True, "blockOwnerDeletion": True}]

        def same(s: dict, ports: list, eps: list) -> bool:
            return ((s.get("endpoints") or []) == eps and (s.get("ports") or []) == ports
                    and (s["metadata"].get("labels") or {}) == labels
                    and s["metadata"].get("ownerReferences") == owner
                    and s.get("addressType") == "IPv4")

        if any(eps for _, eps in groups):
            writes, gone = plan_slices(existing, groups,
                                       lambda s: same(s, s.get("ports") or [],
                                                      s.get("endpoints") or []))
            for s, ports, eps in writes:
                if s is not None:
                    self._update_slice(s, (ports, eps), labels, owner)
                    continue
                self._create_slice(name, ns, labels, owner, ports, eps)
            for s in gone:
                with contextlib.suppress(errors.NotFound):
                    self._wrote("endpointslices",
                                self.client.delete("endpointslices", s["metadata"]["name"], ns))
            return
        # No endpoints (the placeholder, or none at all): one empty slice at most.
        pending = list(groups)
        # 1. exact matches stay untouched; 2. same ports get updated in place.
        for want in list(pending):
            for s in existing:
                if same(s, *want):
                    existing.remove(s)
                    pending.remove(want)
                    break
        for want in list(pending):
            for s in existing:
                if _ports_key(s.get("ports") or []) == _ports_key(want[0]):
                    self._update_slice(s, want, labels, owner)
                    existing.remove(s)
                    pending.remove(want)
                    break
        for want in pending:
            if existing:
                self._update_slice(existing.pop(0), want, labels, owner)
                continue
            self._create_slice(name, ns, labels, owner, want[0], want[1])
        for s in existing:
            with contextlib.suppress(errors.NotFound):
                self._wrote("endpointslices",
                            self.client.delete("endpointslices", s["metadata"]["name"], ns))

    def _create_slice(self, name: str, ns: str, labels: dict, owner: list, ports: list,
                      eps: list) -> None:
        self._wrote("endpointslices", self.client.create({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{name}-", "namespace": ns, "labels": labels,
                         "annotations": {TRIGGER_ANNOTATION: now_rfc3339()},
                         "ownerReferences": owner},
            "addressType": "IPv4", "endpoints": eps, "ports": ports}))

    def _update_slice(self, s: dict, want: tuple[list, list], labels: dict, owner: list) -> None:
        # A new object over the cached one (shared: never changed), not a deep copy of its
        # endpoints, which are replaced anyway; the store copies what it is given.
        md = {**s["metadata"], "labels": labels, "ownerReferences": owner,
              "annotations": {**(s["metadata"].get("annotations") or {}),
                              TRIGGER_ANNOTATION: now_rfc3339()}}
        ports, eps = want
        self._wrote("endpointslices", self.client.update({
            **s, "metadata": md, "addressType": "IPv4", "ports": ports, "endpoints": eps}))

    def _mirror(self, svc: dict) -> None:
        """Selectorless Service: mirror the user's Endpoints into slices, never edit them."""
        ns, name = svc["metadata"].get("namespace") or "default", svc["metadata"]["name"]
        ep = self.lister("endpoints").get_by_name(name, ns)
        groups = []
        if ep is not None and (ep["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true":
            groups = mirror_endpoints(ep.get("subsets") or [])
        self._sync_slices(svc, groups, MIRROR_MANAGED_BY, placeholder=False)

    def _write_static(self, svc: dict, subsets: list) -> None:
        """Endpoints + a slice named like the Service, as kube-apiserver keeps `kubernetes`'s."""
        ns, name = svc["metadata"].get("namespace") or "default", svc["metadata"]["name"]
        self._write_endpoints(svc, list(subsets), {SKIP_MIRROR_LABEL: "true"})
        groups = mirror_endpoints(subsets)
        ports, eps = (groups[0] if groups else ([], []))
        labels = {SERVICE_NAME_LABEL: name}
        cur = clone(self.lister("endpointslices").get_by_name(name, ns))
        if cur is None:
            with contextlib.suppress(errors.AlreadyExists):
                self._wrote("endpointslices", self.client.create({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "addressType": "IPv4", "endpoints": eps, "ports": ports}))
        elif (cur.get("endpoints") or []) != eps or (cur.get("ports") or []) != ports \
                or (cur["metadata"].get("labels") or {}) != labels:
            cur["metadata"]["labels"] = labels
            cur["endpoints"], cur["ports"] = eps, ports
            self._wrote("endpointslices", self.client.update(cur))


__all__ = ["EndpointsController", "endpoints_subsets", "slice_endpoints", "mirror_endpoints",
           "subset_entry", "slice_entry", "group_subsets", "group_slices",
           "find_port", "pod_ready", "MANAGED_BY", "SERVICE_NAME_LABEL"]
