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

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

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

    @property
    def endpoint(self) -> str:
        """`ip:port` (net.JoinHostPort), the string upstream hashes, sorts and DNATs to."""
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


def _ipv4(value: str | None) -> str | None:
    if not value:
        return None
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return str(addr) if addr.version == 4 else None


def _ipv4_cidr(value: str) -> str | None:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    return str(net) if net.version == 4 else None


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
    ) -> ProxySnapshot:
        """Build the snapshot from Kubernetes JSON (v1 Service, discovery.k8s.io/v1 EndpointSlice).

        Skipped like upstream: headless (`clusterIP: None`), empty clusterIP, ExternalName,
        services/slices labelled service-proxy-name, headless-labelled slices, non-IPv4 slices.
        """
        # (ns, name, portName, PROTOCOL) -> {endpoint string: Endpoint}
        eps_by_port: dict[tuple[str, str, str, str], dict[str, Endpoint]] = {}
        for es in endpoint_slices:
            ns, _, labels = _meta(es)
            svc = labels.get(SERVICE_NAME_LABEL)
            if not svc or SERVICE_PROXY_NAME_LABEL in labels or HEADLESS_LABEL in labels:
                continue
            if (es.get("addressType") or "IPv4") != "IPv4":
                continue
            for p in es.get("ports") or []:
                # upstream ignores ports with a nil name; the endpointslice controller always
                # writes "" for an unnamed port, so a missing name is read as "" here.
                pname = p.get("name") or ""
                pnum = p.get("port")
                if not pnum:
                    continue
                proto = (p.get("protocol") or "TCP").upper()
                bucket = eps_by_port.setdefault((ns, svc, pname, proto), {})
                for ep in es.get("endpoints") or []:
                    addrs = ep.get("addresses") or []
                    ip = _ipv4(addrs[0]) if addrs else None
                    if ip is None:
                        continue
                    cond = ep.get("conditions") or {}
                    node = ep.get("nodeName")
                    is_local = node is not None and node == node_name
                    e = Endpoint(
                        ip=ip,
                        port=int(pnum),
                        node_name=node,
                        is_local=is_local,
                        ready=cond.get("ready") is None or bool(cond.get("ready")),
                        serving=cond.get("serving") is None or bool(cond.get("serving")),
                        terminating=bool(cond.get("terminating")),
                        zone=ep.get("zone"),
                    )
                    # dedupe by ip:port; a local copy wins (as upstream)
                    if e.endpoint not in bucket or is_local:
                        bucket[e.endpoint] = e

        ports: list[ServicePort] = []
        for svc in services:
            ns, name, labels = _meta(svc)
            if SERVICE_PROXY_NAME_LABEL in labels:
                continue
            spec = svc.get("spec") or {}
            typ = spec.get("type") or "ClusterIP"
            cip_raw = spec.get("clusterIP") or ""
            if typ == "ExternalName" or cip_raw in ("", "None"):
                continue
            cluster_ip = _ipv4(cip_raw)
            if cluster_ip is None:
                continue
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
            external_ips = tuple(ip for ip in (_ipv4(x) for x in spec.get("externalIPs") or []) if ip)
            lb_vips: tuple[str, ...] = ()
            lb_ranges: tuple[str, ...] = ()
            hc_port = 0
            if typ == "LoadBalancer":
                ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                lb_vips = tuple(
                    ip for ip in (
                        _ipv4(i.get("ip")) for i in ingress
                        if (i.get("ipMode") or "VIP") == "VIP"
                    ) if ip
                )
                lb_ranges = tuple(
                    c for c in (_ipv4_cidr(r) for r in spec.get("loadBalancerSourceRanges") or []) if c
                )
                if spec.get("externalTrafficPolicy") == "Local":
                    hc_port = int(spec.get("healthCheckNodePort") or 0)
            for p in spec.get("ports") or []:
                pname = p.get("name") or ""
                proto = (p.get("protocol") or "TCP").upper()
                eps = eps_by_port.get((ns, name, pname, proto), {})
                ports.append(ServicePort(
                    namespace=ns,
                    name=name,
                    port_name=pname,
                    protocol=proto,
                    port=int(p.get("port") or 0),
                    cluster_ip=cluster_ip,
                    service_type=typ,
                    node_port=int(p.get("nodePort") or 0),
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
        ports.sort(key=lambda sp: (sp.name_string, sp.proto))
        return cls(
            node_name=node_name,
            node_ips=tuple(node_ips),
            cluster_cidr=cluster_cidr,
            service_ports=tuple(ports),
        )
