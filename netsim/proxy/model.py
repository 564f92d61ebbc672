"""The proxy snapshot: Services + EndpointSlices reduced to what a dataplane renderer needs.

Mirrors upstream kube-proxy's `pkg/proxy` service/endpoint trackers
(`servicechangetracker.go`, `endpointslicecache.go`, `topology.go`) for one node and one
IP family (IPv4): one `ServicePort` record per Service port, each carrying its endpoints.

Ordering (upstream iterates Go maps, so its order is random; its tests sort):
- service ports are sorted by (svcPortName string, protocol) — the order every renderer
  writes them in, so output is deterministic and diffable;
- endpoints of a service port are sorted by their "ip:port" string, exactly as upstream's
  `endpointsMapFromEndpointInfo` does (`sort.Sort(byEndpoint(...))`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netsim.api import validation as v
from netsim.api.kinds.discovery import ADDRESS_TYPES, PROTOCOLS
from netsim.api.kinds.service import MAX_AFFINITY_SECONDS
from netsim.api.kinds.service import TYPES as SERVICE_TYPES
from netsim.api.validation import go_quote

log = logging.getLogger("netsim.proxy")

DEFAULT_STICKY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"


@dataclass(frozen=True)
class Endpoint:
    """One backend of one service port (upstream BaseEndpointInfo)."""

    ip: str
    port: int
    node_name: str | None = None
    is_local: bool = False
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone: str | None = None

    @functools.cached_property
    def endpoint(self) -> str:
        """`ip:port` (net.JoinHostPort), the string upstream hashes, sorts and DNATs to
        (kept: a render reads it about six times an endpoint, every sync)."""
        if ":" in self.ip:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service with its endpoints (upstream servicePortInfo)."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    port: int
    cluster_ip: str
    service_type: str = "ClusterIP"
    node_port: int = 0
    target_port: int | str | None = None
    external_ips: tuple[str, ...] = ()
    load_balancer_vips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    session_affinity_client_ip: bool = False
    sticky_max_age_seconds: int = DEFAULT_STICKY_SECONDS
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0
    endpoints: tuple[Endpoint, ...] = ()
    # svcPortName.String(): "ns/name:port" or "ns/name" for an unnamed port (see from_objects)
    name_string: str = ""

    @property
    def service_name(self) -> str:
        """`ns/name`, the key partial syncs track changes by."""
        return f"{self.namespace}/{self.name}"

    @property
    def proto(self) -> str:
        """Lower-case protocol, as used in chain hashes and `-m tcp -p tcp`."""
        return self.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.load_balancer_vips or self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        # upstream: internal policy Cluster, or externally accessible at all (even with
        # externalTrafficPolicy Local the EXT chain short-circuits pod and node traffic to
        # the Cluster chain, which must then exist)
        return (not self.internal_policy_local) or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.externally_accessible and self.external_policy_local
        )


@dataclass(frozen=True)
class CategorizedEndpoints:
    """Result of upstream `proxy.CategorizeEndpoints` (topology hints not modelled)."""

    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    all_reachable: tuple[Endpoint, ...]
    has_any: bool


def categorize_endpoints(sp: ServicePort) -> CategorizedEndpoints:
    """Split endpoints into the Cluster-policy set, the Local-policy set and the union.

    Ready endpoints first; if a policy has none, upstream falls back to endpoints that are
    serving *and* terminating (KEP-1669), so draining pods keep serving instead of REJECT.
    """
    eps = sp.endpoints
    cluster: list[Endpoint] = []
    local: list[Endpoint] = []
    has_any = False
    if sp.uses_cluster_endpoints:
        cluster = [e for e in eps if e.ready]
        if not cluster:
            cluster = [e for e in eps if e.serving and e.terminating]
        has_any = bool(cluster)
    if not sp.uses_local_endpoints:
        return CategorizedEndpoints(tuple(cluster), (), tuple(cluster), has_any)

    has_local_ready = has_local_st = False
    for e in eps:
        if e.ready:
            has_any = True
            has_local_ready = has_local_ready or e.is_local
        elif e.serving and e.terminating:
            has_any = True
            has_local_st = has_local_st or e.is_local
    use_serving_terminating = False
    if has_local_ready:
        local = [e for e in eps if e.is_local and e.ready]
    elif has_local_st:
        use_serving_terminating = True
        local = [e for e in eps if e.is_local and e.serving and e.terminating]

    if not sp.uses_cluster_endpoints:
        return CategorizedEndpoints((), tuple(local), tuple(local), has_any)
    if not use_serving_terminating:
        # cluster holds every ready endpoint, a superset of local
        return CategorizedEndpoints(tuple(cluster), tuple(local), tuple(cluster), has_any)
    merged = {e.endpoint: e for e in cluster}
    merged.update({e.endpoint: e for e in local})
    # upstream builds this from a map (random order); we sort like the endpoints map
    reachable = tuple(sorted(merged.values(), key=lambda e: e.endpoint))
    return CategorizedEndpoints(tuple(cluster), tuple(local), reachable, has_any)


def service_port_name_string(namespace: str, name: str, port_name: str,
                             *, legacy_unnamed_port_colon: bool = False) -> str:
    """svcPortName.String(). Current upstream (`fmtPortName`) drops the colon for an unnamed
    port ("ns/svc"); kube-proxy before that change printed "ns/svc:" — the seed's transcript
    was made by such an old kube-proxy, hence the opt-in legacy flag."""
    if port_name or legacy_unnamed_port_colon:
        return f"{namespace}/{name}:{port_name}"
    return f"{namespace}/{name}"


def _ipv4_cidr(value: str) -> str | None:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    return str(net) if net.version == 4 else None


# --- validation: what kube-proxy accepts into a snapshot --------------------------------------
#
# The apiserver validates Services and EndpointSlices before storing them; kube-proxy then
# trusts them. Objects can still reach a consumer unvalidated (stored by an older version,
# written straight into the store), and one such object must not break the rules of every
# other Service on every node. So each object is checked again here with admission's own
# checks (netsim.api.validation, as the DNS server does) for the fields the dataplane uses;
# a bad one is left out of the snapshot and reported in `ProxySnapshot.rejected`. Nothing
# here has been decoded, so a value may be of any JSON type: those checks only see values
# of the type they expect.

TRAFFIC_POLICIES = ("Cluster", "Local")
MSG_CIDR = "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 "


def is_port_number(value: Any) -> bool:
    """An int (not a bool, not "80") in 1..65535."""
    return not v.is_valid_port_num(value)


def parse_ip(value: Any, version: int | None = None) -> str | None:
    """The canonical text of an address admission accepts (api.validation.parse_ip: no
    blanks, no IPv6 zone), or None; of `version` only when given. A plain dotted quad is
    recognised without building an address (every endpoint, every sync)."""
    if v.is_ipv4_text(value):
        return value if version in (None, 4) else None
    ip = v.parse_ip(value)
    if ip is None or (version is not None and ip.version != version):
        return None
    return str(ip)


def _ip(value: Any, fld: str) -> list[str]:
    """api.validation.ip_address, a plain dotted quad recognised first (see parse_ip)."""
    return [] if v.is_ipv4_text(value) else v.ip_address(value, fld)


def _object(value: Any, fld: str) -> list[str]:
    return [] if value is None or isinstance(value, dict) else [
        v.invalid(fld, value, "must be an object")]


def _list(value: Any) -> list | None:
    """A JSON array (absent -> empty); None when it is something else."""
    if value is None:
        return []
    return value if isinstance(value, list) else None


def _items(obj: dict, key: str, fld: str, what: str) -> tuple[list, list[str]]:
    """obj[key] as a list (absent or not a list: empty), and the error when it is not one."""
    items = _list(obj.get(key))
    if items is None:
        return [], [v.invalid(fld, obj.get(key), f"must be a list of {what}")]
    return items, []


def _one_of(value: Any, fld: str, supported: tuple[str, ...]) -> list[str]:
    """An optional enum field (absent: the default)."""
    return [] if value is None or value in supported else [
        v.unsupported(fld, value, supported)]


def _node_port(value: Any, fld: str) -> list[str]:
    """An optional port (0 or absent: none)."""
    return [] if value is None or (value == 0 and not isinstance(value, bool)) else \
        v.port_num(value, fld)


def _metadata_errors(obj: Any, name_check) -> list[str]:
    if not isinstance(obj, dict):
        return [v.invalid("<object>", obj, "must be an object")]
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return [v.invalid("metadata", md, "must be an object")]
    errs = v.named(name_check, md.get("name"), "metadata.name")
    if md.get("namespace") is not None:
        errs += v.named(v.is_dns1123_label, md["namespace"], "metadata.namespace")
    labels = md.get("labels")
    if labels is not None and not isinstance(labels, dict):
        errs.append(v.invalid("metadata.labels", labels, "must be an object"))
    elif labels:
        errs += [v.invalid("metadata.labels", x, "must be a string")
                 for x in labels.values() if not isinstance(x, str)] or \
            v.labels(labels, "metadata.labels")
    return errs


def _service_port_errors(p: Any, fld: str, several: bool, names: set[str]) -> list[str]:
    if not isinstance(p, dict):
        return [v.invalid(fld, p, "must be an object")]
    errs = []
    name = p.get("name")
    if name in (None, ""):
        if several:
            errs.append(v.required(f"{fld}.name"))
    else:
        errs += v.named(v.is_dns1123_label, name, f"{fld}.name")
        if isinstance(name, str):
            if name in names:
                errs.append(v.duplicate(f"{fld}.name", name))
            names.add(name)
    errs += v.port_num(p.get("port"), f"{fld}.port")
    errs += _one_of(p.get("protocol"), f"{fld}.protocol", PROTOCOLS)
    errs += _node_port(p.get("nodePort"), f"{fld}.nodePort")
    tp = p.get("targetPort")
    if tp is not None and (tp != 0 or isinstance(tp, bool)):  # 0: defaulted to the port
        errs += v.port_num_or_name(tp, f"{fld}.targetPort")
    return errs


def _affinity_errors(spec: dict) -> list[str]:
    errs = _one_of(spec.get("sessionAffinity"), "spec.sessionAffinity", ("ClientIP", "None"))
    cfg = spec.get("sessionAffinityConfig")
    client_ip = cfg.get("clientIP") if isinstance(cfg, dict) else None
    errs += _object(cfg, "spec.sessionAffinityConfig") or _object(
        client_ip, "spec.sessionAffinityConfig.clientIP")
    t = client_ip.get("timeoutSeconds") if isinstance(client_ip, dict) else None
    if t is not None and not (isinstance(t, int) and not isinstance(t, bool)
                              and 0 < t <= MAX_AFFINITY_SECONDS):
        errs.append(v.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                              f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"))
    return errs


def _ips(values: Any, fld: str) -> list[str]:
    """A list of IP addresses (absent: none)."""
    ips = _list(values)
    if ips is None:
        return [v.invalid(fld, values, "must be a list of IP addresses")]
    return [e for i, ip in enumerate(ips) for e in _ip(ip, f"{fld}[{i}]")]


def _cidr_ok(value: Any) -> bool:
    if not isinstance(value, str) or "%" in value:
        return False
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return True


def service_errors(svc: Any) -> list[str]:
    """The apiserver's field errors for the parts of a v1 Service the proxies use."""
    errs = _metadata_errors(svc, v.is_dns1035_label)
    if not isinstance(svc, dict) or not isinstance(svc.get("metadata"), dict):
        return errs
    spec = svc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return errs + [v.invalid("spec", spec, "must be an object")]
    errs += _one_of(spec.get("type"), "spec.type", SERVICE_TYPES)
    if spec.get("clusterIP") not in (None, "", "None"):
        errs += _ip(spec["clusterIP"], "spec.clusterIPs[0]")
    ports, bad = _items(spec, "ports", "spec.ports", "ports")
    errs += bad
    names: set[str] = set()
    for i, p in enumerate(ports):
        errs += _service_port_errors(p, f"spec.ports[{i}]", len(ports) > 1, names)
    errs += _ips(spec.get("externalIPs"), "spec.externalIPs")
    errs += _affinity_errors(spec)
    for fld in ("externalTrafficPolicy", "internalTrafficPolicy"):
        errs += _one_of(spec.get(fld), f"spec.{fld}", TRAFFIC_POLICIES)
    errs += _node_port(spec.get("healthCheckNodePort"), "spec.healthCheckNodePort")
    ranges = _list(spec.get("loadBalancerSourceRanges"))
    for i, r in enumerate(ranges if ranges is not None else [spec.get("loadBalancerSourceRanges")]):
        if not _cidr_ok(r):
            errs.append(v.invalid(f"spec.loadBalancerSourceRanges[{i}]", r, MSG_CIDR))
    status = svc.get("status")
    lb = status.get("loadBalancer") if isinstance(status, dict) else None
    ingress = lb.get("ingress") if isinstance(lb, dict) else None
    for i, ing in enumerate(ingress if isinstance(ingress, list) else []):
        ip = ing.get("ip") if isinstance(ing, dict) else ing
        if ip not in (None, ""):
            errs += _ip(ip, f"status.loadBalancer.ingress[{i}].ip")
    return errs


def _slice_endpoint_errors(ep: Any, fld: str, version: int | None) -> list[str]:
    if not isinstance(ep, dict):
        return [v.invalid(fld, ep, "must be an object")]
    errs = []
    addrs = _list(ep.get("addresses"))
    if addrs is None:
        errs.append(v.invalid(f"{fld}.addresses", ep.get("addresses"), "must be a list"))
    elif not addrs:
        errs.append(v.required(f"{fld}.addresses", "must contain at least 1 address"))
    for j, a in enumerate(addrs or []):
        if version is None:
            errs += v.named(v.is_dns1123_subdomain, a, f"{fld}.addresses[{j}]")
        elif parse_ip(a, version) is None:
            errs.append(v.invalid(f"{fld}.addresses[{j}]", a,
                                  f"must be a valid IPv{version} address"))
    cond = ep.get("conditions")
    errs += _object(cond, f"{fld}.conditions")
    for c in ("ready", "serving", "terminating") if isinstance(cond, dict) else ():
        if cond.get(c) is not None and not isinstance(cond[c], bool):
            errs.append(v.invalid(f"{fld}.conditions.{c}", cond[c], "must be a boolean"))
    # nodeName and zone are only compared, never written into rules: any string will do
    for f in ("nodeName", "zone"):
        if ep.get(f) is not None and not isinstance(ep[f], str):
            errs.append(v.invalid(f"{fld}.{f}", ep[f], "must be a string"))
    return errs


def endpoint_slice_errors(es: Any) -> list[str]:
    """The apiserver's field errors for the parts of an EndpointSlice the proxies use."""
    errs = _metadata_errors(es, v.is_dns1123_subdomain)
    if not isinstance(es, dict) or not isinstance(es.get("metadata"), dict):
        return errs
    atype = es.get("addressType")
    errs += _one_of(atype, "addressType", ADDRESS_TYPES)
    ports, bad = _items(es, "ports", "ports", "ports")
    errs += bad
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            errs.append(v.invalid(f"ports[{i}]", p, "must be an object"))
            continue
        if p.get("name") not in (None, ""):
            errs += v.named(v.is_dns1123_label, p["name"], f"ports[{i}].name")
        if p.get("port") is not None:  # absent: every port
            errs += v.port_num(p["port"], f"ports[{i}].port")
        errs += _one_of(p.get("protocol"), f"ports[{i}].protocol", PROTOCOLS)
    eps, bad = _items(es, "endpoints", "endpoints", "endpoints")
    errs += bad
    version = {"IPv4": 4, "IPv6": 6}.get(atype or "IPv4")
    for i, ep in enumerate(eps):
        errs += _slice_endpoint_errors(ep, f"endpoints[{i}]", version)
    return errs


def invalid_message(kind: str, obj: Any, causes: list[str]) -> str:
    """kubectl's aggregate form: `The Service "web" is invalid: <cause>` ([a, b] for several)."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    name = md.get("name") if isinstance(md, dict) else None
    shown = go_quote(name if isinstance(name, str) else "")
    if len(causes) == 1:
        return f"The {kind} {shown} is invalid: {causes[0]}"
    return f"The {kind} {shown} is invalid: [{', '.join(causes)}]"


@dataclass(frozen=True)
class Rejected:
    """An object left out of the snapshot, and why (an apiserver-style message)."""

    resource: str  # "services" | "endpointslices"
    namespace: str
    name: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _rejected(resource: str, kind: str, obj: Any, causes: list[str]) -> Rejected:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    md = md if isinstance(md, dict) else {}
    ns, name = md.get("namespace") or "default", md.get("name") or ""
    return Rejected(resource, ns if isinstance(ns, str) else go_quote(ns),
                    name if isinstance(name, str) else go_quote(name),
                    invalid_message(kind, obj, causes))


def safe_comment(text: str, limit: int) -> str:
    """Comment text that cannot end a quoted string or a line in iptables-restore / nft input:
    printable ASCII without `"` and `\\` (others become `?`), at most `limit` bytes. Names are
    validated before they get here; this is the second fence."""
    text = str(text)
    if not _SAFE_COMMENT.fullmatch(text):  # the usual case needs no per-character pass
        text = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)
    return text[:limit]


_SAFE_COMMENT = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII but `"` and `\`


def _externally_accessible_service(spec: dict) -> bool:
    """apiservice.ExternallyAccessible: NodePort/LoadBalancer, or ClusterIP with externalIPs."""
    typ = spec.get("type") or "ClusterIP"
    return typ in ("NodePort", "LoadBalancer") or (
        typ == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def _meta(obj: dict) -> tuple[str, str, dict]:
    md = obj.get("metadata") or {}
    return md.get("namespace") or "default", md.get("name") or "", md.get("labels") or {}


@dataclass(frozen=True)
class ProxySnapshot:
    """Everything one node's kube-proxy needs for one sync, immutable and sorted."""

    node_name: str
    node_ips: tuple[str, ...]
    cluster_cidr: str
    service_ports: tuple[ServicePort, ...] = field(default_factory=tuple)
    # objects left out because they are invalid (see service_errors / endpoint_slice_errors)
    rejected: tuple[Rejected, ...] = field(default_factory=tuple)

    @property
    def node_ip(self) -> str | None:
        """The primary node IP (upstream `proxier.nodeIP`, used for LB source ranges)."""
        return self.node_ips[0] if self.node_ips else None

    def service_names(self) -> set[str]:
        return {sp.service_name for sp in self.service_ports}

    @classmethod
    def from_objects(
        cls,
        services: Iterable[dict],
        endpoint_slices: Iterable[dict],
        *,
        node_name: str,
        node_ips: list[str],
        cluster_cidr: str,
        legacy_unnamed_port_colon: bool = False,
        cache: SnapshotCache | None = None,
    ) -> ProxySnapshot:
        """Build the snapshot from Kubernetes JSON (v1 Service, discovery.k8s.io/v1 EndpointSlice).

        Skipped like upstream: headless (`clusterIP: None`), empty clusterIP, ExternalName,
        services/slices labelled service-proxy-name, headless-labelled slices, non-IPv4 slices.
        Skipped and listed in `rejected`: objects the apiserver's validation would refuse
        (written around admission, or by an older version), so they cannot break the rules
        of every other Service.

        `cache`: the previous build's per-Service results, reused for every Service whose
        own and whose slices' resourceVersions are unchanged (validating and reading 10,000
        Services and their slices took ~3 s of CPU, every sync).
        """
        if cache is not None:
            ports, rejected = cache.build(services, endpoint_slices, node_name,
                                          legacy_unnamed_port_colon)
        else:
            rejected = []
            # (ns, name, portName, PROTOCOL) -> {endpoint string: Endpoint}
            eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
            for es in endpoint_slices:
                if _slice_for_proxy(es):
                    _take_slice(es, node_name, eps_by_port, rejected)
            ports = []
            for svc in services:
                if _service_for_proxy(svc):
                    _take_service(svc, eps_by_port, legacy_unnamed_port_colon, ports, rejected)
        ports.sort(key=lambda sp: (sp.name_string, sp.proto))
        return cls(
            node_name=node_name,
            node_ips=tuple(node_ips),
            cluster_cidr=cluster_cidr,
            service_ports=tuple(ports),
            rejected=tuple(sorted(rejected, key=lambda r: (r.resource, r.key))),
        )


def _take_slice(es: Any, node_name: str,
                eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]],
                rejected: list[Rejected]) -> None:
    """A slice kube-proxy looks at: its endpoints into `eps_by_port`, or a rejection."""
    _merge_slice(*_read_slice(es, node_name), eps_by_port, rejected)


_Found = list[tuple[tuple[str, str, str, str], Endpoint]]


def _read_slice(es: Any, node_name: str) -> tuple[_Found, Rejected | None]:
    """What a slice gives kube-proxy: its endpoints by service port, or its rejection
    (all or nothing). Depends on the slice and the node only: SnapshotCache keeps it per
    slice version."""
    causes = endpoint_slice_errors(es)
    if not causes:
        try:
            return _slice_endpoints(es, node_name), None
        except Exception as e:  # noqa: BLE001 - validation missed something: skip it
            causes = [f"could not be read: {e!r}"]
    return [], _rejected("endpointslices", "EndpointSlice", es, causes)


def _merge_slice(found: _Found, rejection: Rejected | None,
                 eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]],
                 rejected: list[Rejected]) -> None:
    """One slice's _read_slice result into the buckets (or its rejection into `rejected`)."""
    if rejection is not None:
        rejected.append(rejection)
    for key, e in found:
        bucket = eps_by_port.setdefault(key, {})
        # dedupe by ip:port; a local copy wins (as upstream)
        if e.endpoint not in bucket or e.is_local:
            bucket[e.endpoint] = e


def _take_service(svc: Any, eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]],
                  legacy_unnamed_port_colon: bool, ports: list[ServicePort],
                  rejected: list[Rejected]) -> None:
    """A Service kube-proxy programs: its ports into `ports`, or a rejection."""
    causes = service_errors(svc)
    if not causes:
        try:
            ports.extend(_service_ports(svc, eps_by_port, legacy_unnamed_port_colon))
            return
        except Exception as e:  # noqa: BLE001 - validation missed something: skip it
            causes = [f"could not be read: {e!r}"]
    rejected.append(_rejected("services", "Service", svc, causes))


def _object_key(obj: Any, owner_label: bool = False) -> tuple[str, str] | None:
    """(namespace, name) of an object, or of a slice's Service (`owner_label`), as
    _slice_endpoints / _service_ports read them; None when unreadable."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(md, dict):
        return None
    ns = md.get("namespace") or "default"
    if owner_label:
        labels = md.get("labels")
        name = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
    else:
        name = md.get("name") or ""
    return (ns, name) if isinstance(ns, str) and isinstance(name, str) else None


def _version(obj: Any) -> object:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    return md.get("resourceVersion") if isinstance(md, dict) else None


class SnapshotCache:
    """What ProxySnapshot.from_objects made of each Service and its slices last time.

    Per Service (namespace/name): the resourceVersions of the Service and of its slices (in
    the order given), with the ServicePorts and rejections built from them. A Service whose
    versions are unchanged is not validated or read again; objects without a
    resourceVersion (hand-made ones) are always. Slices are grouped by their
    kubernetes.io/service-name label, which is all that ties them to a Service, so the
    result is the same as building from scratch.

    Per slice, too: what it gave (its endpoints or its rejection) at its resourceVersion.
    A Service whose one slice changed reads that slice only: a Service of 5,000 endpoints
    in 50 slices took 26 ms of every sync on every node to validate and read them all."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], tuple[tuple, list, list]] = {}
        self._by_slice: dict[tuple[str, str], tuple[tuple, _Found, Rejected | None]] = {}
        self.reused = 0  # Services taken from the cache by the last build
        self.slices_read = 0  # slices validated and read by the last build

    def _slice(self, es: Any, node_name: str, fresh: dict,
               eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]],
               rejected: list[Rejected]) -> None:
        """_take_slice, from the cache when this slice version was read before."""
        key, version = _object_key(es), _version(es)
        cacheable = key is not None and version is not None and key not in fresh
        hit = self._by_slice.get(key) if cacheable else None  # type: ignore[arg-type]
        if hit is not None and hit[0] == (version, node_name):
            found, rejection = hit[1], hit[2]
        else:
            found, rejection = _read_slice(es, node_name)
            self.slices_read += 1
        if cacheable:
            fresh[key] = ((version, node_name), found, rejection)
        _merge_slice(found, rejection, eps_by_port, rejected)

    def build(self, services: Iterable[dict], endpoint_slices: Iterable[dict], node_name: str,
              legacy: bool) -> tuple[list[ServicePort], list[Rejected]]:
        groups: dict[tuple[str, str], list[dict]] = {}
        loose: list[dict] = []  # slices no readable Service name ties to a group
        for es in endpoint_slices:
            if not _slice_for_proxy(es):
                continue
            owner = _object_key(es, owner_label=True)
            if owner is None:
                loose.append(es)
            else:
                groups.setdefault(owner, []).append(es)
        ports: list[ServicePort] = []
        rejected: list[Rejected] = []
        used: set[tuple[str, str]] = set()
        fresh: dict[tuple[str, str], tuple[tuple, list, list]] = {}
        fresh_slices: dict[tuple[str, str], tuple[tuple, _Found, Rejected | None]] = {}
        self.reused = self.slices_read = 0
        for svc in services:
            if not _service_for_proxy(svc):
                continue
            key = _object_key(svc)
            slices = groups.get(key, []) if key is not None else []
            if key is not None:
                used.add(key)
            svc_version = _version(svc)
            slice_versions = tuple((_object_key(es), _version(es)) for es in slices)
            versions = (node_name, legacy, svc_version, slice_versions)
            cacheable = key is not None and key not in fresh and svc_version is not None \
                and all(ver is not None for _, ver in slice_versions)
            hit = self._by_service.get(key) if cacheable else None  # type: ignore[arg-type]
            if hit is not None and hit[0] == versions:
                p, r = hit[1], hit[2]
                self.reused += 1
                for skey, ver in slice_versions:  # still current: kept for the next build
                    if skey is not None and ver is not None and skey in self._by_slice:
                        fresh_slices.setdefault(skey, self._by_slice[skey])
            else:
                p, r = [], []
                eps: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
                for es in slices:
                    self._slice(es, node_name, fresh_slices, eps, r)
                _take_service(svc, eps, legacy, p, r)
            if cacheable:
                fresh[key] = (versions, p, r)  # type: ignore[index]
            ports.extend(p)
            rejected.extend(r)
        # slices of no Service kube-proxy programs: only whether they are valid matters
        scratch: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
        for owner, slices in groups.items():
            if owner not in used:
                for es in slices:
                    self._slice(es, node_name, fresh_slices, scratch, rejected)
        for es in loose:
            _take_slice(es, node_name, scratch, rejected)
        self._by_service, self._by_slice = fresh, fresh_slices
        return ports, rejected


def _labels_of(obj: Any) -> dict | None:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    labels = md.get("labels") if isinstance(md, dict) else None
    return labels if isinstance(labels, dict) else ({} if labels is None else None)


def _slice_for_proxy(es: Any) -> bool:
    """Whether kube-proxy looks at this slice at all (an unreadable one: yes, to report it)."""
    labels = _labels_of(es)
    if labels is None or not isinstance(es, dict):
        return True
    if not labels.get(SERVICE_NAME_LABEL) or SERVICE_PROXY_NAME_LABEL in labels \
            or HEADLESS_LABEL in labels:
        return False
    return es.get("addressType") not in ("IPv6", "FQDN")  # an unknown type is reported


def _service_for_proxy(svc: Any) -> bool:
    """Whether kube-proxy programs this Service at all (headless, ExternalName and other
    proxies' Services are not its business, valid or not)."""
    labels = _labels_of(svc)
    if labels is None or not isinstance(svc, dict):
        return True
    if SERVICE_PROXY_NAME_LABEL in labels:
        return False
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        return True
    cip = spec.get("clusterIP")
    if spec.get("type") == "ExternalName" or cip in ("", "None", None):
        return False
    # dual-stack's other family: this proxy is single-stack IPv4
    return not (isinstance(cip, str) and parse_ip(cip, 6) is not None)


def _slice_endpoints(es: dict, node_name: str) -> _Found:
    """A validated slice's endpoints, each with its service port's bucket key."""
    ns, _, labels = _meta(es)
    svc = labels[SERVICE_NAME_LABEL]
    found: list[tuple[tuple[str, str, str, str], Endpoint]] = []
    for p in es.get("ports") or []:
        # upstream ignores ports with a nil name; the endpointslice controller always
        # writes "" for an unnamed port, so a missing name is read as "" here.
        pname = p.get("name") or ""
        pnum = p.get("port")
        if not pnum:
            continue
        proto = p.get("protocol") or "TCP"
        for ep in es.get("endpoints") or []:
            addrs = ep.get("addresses") or []
            ip = parse_ip(addrs[0], 4) if addrs else None
            if ip is None:
                continue
            cond = ep.get("conditions") or {}
            node = ep.get("nodeName")
            is_local = node is not None and node == node_name
            e = Endpoint(
                ip=ip,
                port=pnum,
                node_name=node,
                is_local=is_local,
                ready=cond.get("ready") is None or bool(cond.get("ready")),
                serving=cond.get("serving") is None or bool(cond.get("serving")),
                terminating=bool(cond.get("terminating")),
                zone=ep.get("zone"),
            )
            found.append(((ns, svc, pname, proto), e))
    return found


def _service_ports(svc: dict, eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]],
                   legacy_unnamed_port_colon: bool) -> list[ServicePort]:
    """A validated Service's ports with their endpoints."""
    ns, name, _ = _meta(svc)
    spec = svc.get("spec") or {}
    typ = spec.get("type") or "ClusterIP"
    cluster_ip = parse_ip(spec.get("clusterIP"), 4)
    if cluster_ip is None:
        return []
    affinity = spec.get("sessionAffinity") == "ClientIP"
    sticky = DEFAULT_STICKY_SECONDS
    if affinity:
        cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        if cfg.get("timeoutSeconds"):
            sticky = int(cfg["timeoutSeconds"])
    ext_local = (
        _externally_accessible_service(spec)
        and spec.get("externalTrafficPolicy") == "Local"
    )
    int_local = spec.get("internalTrafficPolicy") == "Local"
    external_ips = tuple(ip for ip in (parse_ip(x, 4) for x in spec.get("externalIPs") or []) if ip)
    lb_vips: tuple[str, ...] = ()
    lb_ranges: tuple[str, ...] = ()
    hc_port = 0
    if typ == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_vips = tuple(
            ip for ip in (
                parse_ip(i.get("ip"), 4) for i in ingress
                if (i.get("ipMode") or "VIP") == "VIP"
            ) if ip
        )
        lb_ranges = tuple(
            c for c in (_ipv4_cidr(r) for r in spec.get("loadBalancerSourceRanges") or []) if c
        )
        if spec.get("externalTrafficPolicy") == "Local":
            hc_port = spec.get("healthCheckNodePort") or 0
    out = []
    for p in spec.get("ports") or []:
        pname = p.get("name") or ""
        proto = p.get("protocol") or "TCP"
        eps = eps_by_port.get((ns, name, pname, proto), {})
        out.append(ServicePort(
            namespace=ns,
            name=name,
            port_name=pname,
            protocol=proto,
            port=p["port"],
            cluster_ip=cluster_ip,
            service_type=typ,
            node_port=p.get("nodePort") or 0,
            target_port=p.get("targetPort"),
            external_ips=external_ips,
            load_balancer_vips=lb_vips,
            load_balancer_source_ranges=lb_ranges,
            session_affinity_client_ip=affinity,
            sticky_max_age_seconds=sticky,
            external_policy_local=ext_local,
            internal_policy_local=int_local,
            health_check_node_port=hc_port,
            endpoints=tuple(sorted(eps.values(), key=lambda e: e.endpoint)),
            name_string=service_port_name_string(
                ns, name, pname, legacy_unnamed_port_colon=legacy_unnamed_port_colon),
        ))
    return out
