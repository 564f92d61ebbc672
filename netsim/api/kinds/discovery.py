"""EndpointSlices and Endpoints: validation as pkg/apis/discovery/validation and
ValidateEndpoints do it.

These objects feed kube-proxy's rules and nginx's upstreams directly, so an address must
be an IP of the slice's type (never `127.0.0.1 max_fails=0; } server {`), a port an
int32, names DNS labels. One deliberate strictness over upstream: an EndpointSlice port
must be 1-65535 (upstream checks only Endpoints' ports; no dataplane can use port 0 or
70000, and an out-of-range port made every node's kube-proxy give up).
"""

from __future__ import annotations

import functools

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = v.PROTOCOLS
MAX_ENDPOINTS, MAX_ADDRESSES, MAX_PORTS, MAX_TOPOLOGY = 1000, 100, 20000, 16


@functools.lru_cache(maxsize=1 << 14)
def _clean_cached(check, *args) -> bool:
    return not check(*args, "")


def _clean(check, *args) -> bool:
    """Whether `check(*args, path)` finds nothing, remembered by value (every write of a
    Service's Endpoints or slices validates each of its addresses again: 1,000 of them
    were ~30 ms a write). The words, with their path, come from `check` itself."""
    try:
        return _clean_cached(check, *args)
    except TypeError:  # a value that cannot be a key (a list where a string belongs)
        return not check(*args, "")


def _slice_address(addr, addr_type, p: str) -> list[str]:
    causes: list[str] = []
    if addr_type in ("IPv4", "IPv6"):
        ip = v.parse_ip(addr)
        if ip is None or ip.version != (4 if addr_type == "IPv4" else 6):
            causes.append(v.invalid(p, addr, f"must be a valid {addr_type} address"))
        causes += v.non_special_ip(addr, p)
    elif addr_type == "FQDN":
        causes += v.fully_qualified_domain_name(addr, p)
    return causes


def _node_name(name, p: str) -> list[str]:
    return v.dns1123_subdomain(name, p)


def _slice_endpoints(endpoints: list, addr_type, path: str) -> list[str]:
    if len(endpoints) > MAX_ENDPOINTS:
        return [v.too_many(path, len(endpoints), MAX_ENDPOINTS)]
    causes: list[str] = []
    for i, ep in enumerate(endpoints):
        ip_path = f"{path}[{i}]"
        addrs = ep.get("addresses") or []
        ap = f"{ip_path}.addresses"
        if not addrs:
            causes.append(v.required(ap, "must contain at least 1 address"))
        elif len(addrs) > MAX_ADDRESSES:
            causes.append(v.too_many(ap, len(addrs), MAX_ADDRESSES))
        for j, addr in enumerate(addrs):
            if _clean(_slice_address, addr, addr_type):
                continue
            causes += _slice_address(addr, addr_type, f"{ap}[{j}]")
        if ep.get("nodeName") is not None and not _clean(_node_name, ep["nodeName"]):
            causes += _node_name(ep["nodeName"], f"{ip_path}.nodeName")
        topo = ep.get("deprecatedTopology")
        if topo and len(topo) > MAX_TOPOLOGY:
            causes.append(v.too_many(f"{ip_path}.deprecatedTopology", len(topo), MAX_TOPOLOGY))
        causes += v.labels(topo, f"{ip_path}.deprecatedTopology")
        if ep.get("hostname") is not None:
            causes += v.dns1123_label(ep["hostname"], f"{ip_path}.hostname")
    return causes


def _slice_ports(ports: list, path: str) -> list[str]:
    if len(ports) > MAX_PORTS:
        return [v.too_many(path, len(ports), MAX_PORTS)]
    causes: list[str] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            causes += v.dns1123_label(name, f"{p}.name")
        if name in names:
            causes.append(v.duplicate(f"{p}.name", name))
        else:
            names.add(name)
        proto = port.get("protocol")
        if proto is None:
            causes.append(v.required(f"{p}.protocol"))
        elif proto not in PROTOCOLS:
            causes.append(v.unsupported(f"{p}.protocol", proto, PROTOCOLS))
        if port.get("port") is not None:  # absent: every port (upstream's nil)
            causes += v.port_num(port["port"], f"{p}.port")
        if port.get("appProtocol") is not None:
            causes += v.qualified_name(port["appProtocol"], f"{p}.appProtocol")
    return causes


def validate_endpoint_slice(obj: dict, old: dict | None) -> list[str]:
    """ValidateEndpointSlice[Update]."""
    at = obj.get("addressType")
    if not at:
        causes = [v.required("addressType")]
    elif at not in ADDRESS_TYPES:
        causes = [v.unsupported("addressType", at, ADDRESS_TYPES)]
    else:
        causes = []
    causes += _slice_endpoints(obj.get("endpoints") or [], at, "endpoints")
    causes += _slice_ports(obj.get("ports") or [], "ports")
    if old is not None and old.get("addressType") != at:
        causes.append(v.invalid("addressType", at or "", "field is immutable"))
    return causes


def _endpoint_address(addr: dict, path: str) -> list[str]:
    ip, host, node = addr.get("ip") or "", addr.get("hostname"), addr.get("nodeName")
    if _clean(_address_fields, ip, host, node):
        return []
    return _address_fields(ip, host, node, path)


def _address_fields(ip, host, node, path: str) -> list[str]:
    causes = v.ip_address(ip, f"{path}.ip")
    if host:
        causes += v.dns1123_label(host, f"{path}.hostname")
    if node is not None:
        causes += v.dns1123_subdomain(node, f"{path}.nodeName")
    causes += v.non_special_ip(ip, f"{path}.ip")
    return causes


def validate_endpoints(obj: dict, old: dict | None) -> list[str]:
    """ValidateEndpoints: validateEndpointSubsets."""
    causes: list[str] = []
    for i, ss in enumerate(obj.get("subsets") or []):
        sp = f"subsets[{i}]"
        addrs, not_ready = ss.get("addresses") or [], ss.get("notReadyAddresses") or []
        if not addrs and not not_ready:
            causes.append(v.required(sp, "must specify `addresses` or `notReadyAddresses`"))
        for j, a in enumerate(addrs):
            causes += _endpoint_address(a, f"{sp}.addresses[{j}]")
        for j, a in enumerate(not_ready):
            causes += _endpoint_address(a, f"{sp}.notReadyAddresses[{j}]")
        ports = ss.get("ports") or []
        for j, port in enumerate(ports):
            p = f"{sp}.ports[{j}]"
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                causes.append(v.required(f"{p}.name"))
            elif name:
                causes += v.dns1123_label(name, f"{p}.name")
            causes += v.port_num(port.get("port", 0), f"{p}.port")
            causes += v.protocol(port.get("protocol"), f"{p}.protocol")
    return causes


def _default_endpoints(obj: dict, old: dict | None) -> None:
    """SetDefaults_EndpointPort: protocol TCP."""
    for ss in obj.get("subsets") or []:
        for port in ss.get("ports") or []:
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def _default_slice(obj: dict, old: dict | None) -> None:
    """SetDefaults_EndpointPort (discovery/v1): protocol TCP."""
    for port in obj.get("ports") or []:
        if isinstance(port, dict) and port.get("protocol") is None:
            port["protocol"] = "TCP"


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("EndpointSlice", defaulter=_default_slice, validator=validate_endpoint_slice)
    reg.add("Endpoints", defaulter=_default_endpoints, validator=validate_endpoints)
