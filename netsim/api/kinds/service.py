"""Services: defaults, validation and ClusterIP / NodePort allocation as the API server does them.

Follows kubernetes `pkg/apis/core/v1/defaults.go` (SetDefaults_Service),
`pkg/registry/core/service/strategy.go` (NormalizeClusterIPs, patchAllocatedValues,
dropTypeDependentFields), `pkg/registry/core/service/storage/alloc.go` (initIPFamilyFields,
allocation) and `pkg/apis/core/validation/validation.go` (ValidateService[Update]); error
texts are upstream's, byte for byte, including Go's `%#v` rendering of values.

Allocation keeps no bitmap: the allocator runs inside the store lock, so "in use" is simply
what the stored Services hold. Deleting a Service or changing its type releases its IP and
node ports by construction.
"""

from __future__ import annotations

import ipaddress
import json
import random

from netsim.api import errors
from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry


# ---- cluster configuration (the apiserver's flags, given to register()) -------------------
def reserved_ips(settings: ClusterSettings) -> set[str]:
    """Addresses never handed out at random: .1 (`kubernetes`) and .10 (`kube-dns`)."""
    base = int(settings.service_cidr.network_address)
    return {str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 10))}


def node_port_range_str(settings: ClusterSettings) -> str:
    return f"{settings.node_port_range[0]}-{settings.node_port_range[1]}"


# ---- Go value rendering (field.Error's `%#v` / `%q` forms) -------------------------------
def _q(s) -> str:
    return json.dumps(s, ensure_ascii=False)


def go_strings(v) -> str:
    """`[]string{"10.96.0.10"}` as Go's %#v prints a []string (nil -> `[]string(nil)`)."""
    if v is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_q(str(x)) for x in v) + "}"


def _go_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return _q(v)


def _invalid(path: str, value, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _unsupported(path: str, value, supported: list[str]) -> str:
    return (f"{path}: Unsupported value: {_q(value)}: supported values: "
            + ", ".join(_q(s) for s in supported))


def _go_service_port_key(protocol, port) -> str:
    """The struct key upstream reports for a duplicate (protocol, port) pair."""
    return ('core.ServicePort{Name:"", Protocol:' + _q(protocol or "") + ", AppProtocol:(*string)(nil), "
            f"Port:{port if isinstance(port, int) else 0}, "
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


# ---- helpers ------------------------------------------------------------------------------
NEEDS_NODE_PORT = ("NodePort", "LoadBalancer")
PROTOCOLS = ["SCTP", "TCP", "UDP"]
TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
MAX_AFFINITY_SECONDS = 86400
DEFAULT_AFFINITY_SECONDS = 10800


def _needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_port(spec: dict) -> bool:
    return spec.get("type") in NEEDS_NODE_PORT


def externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in NEEDS_NODE_PORT or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_headless(spec: dict) -> bool:
    ips = spec.get("clusterIPs")
    return isinstance(ips, list) and len(ips) == 1 and ips[0] == "None"


def _node_ports(spec: dict) -> list[int]:
    return [p["nodePort"] for p in spec.get("ports") or []
            if isinstance(p, dict) and p.get("nodePort")]


def _is_zero_target(tp) -> bool:
    return tp is None or tp == 0 or tp == ""


def _valid_port_num(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 < n < 65536


def _ip_errors(path: str, ip) -> list[str]:
    return v.ip_address(ip, path)


def _family(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def _cluster_family(settings: ClusterSettings) -> str:
    return "IPv6" if settings.service_cidr.version == 6 else "IPv4"


# ---- defaulting (v1 defaults + the registry strategy's PrepareFor*) ---------------------
def _default_service(obj: dict, old: dict | None, settings: ClusterSettings) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    # SetDefaults_Service
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("clientIP"), dict) \
                or cfg["clientIP"].get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        if _is_zero_target(p.get("targetPort")):
            p["targetPort"] = p.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True

    oldspec = (old or {}).get("spec") or {}
    if old is not None:
        _patch_allocated_values(spec, oldspec)
    _normalize_cluster_ips(spec, oldspec if old is not None else None)
    if old is not None:
        _drop_type_dependent_fields(spec, oldspec)
    _init_ip_family_fields(spec, oldspec if old is not None else None, settings)


def _patch_allocated_values(spec: dict, oldspec: dict) -> None:
    """A PUT that omits allocated values keeps them (clusterIP, nodePorts)."""
    if _needs_cluster_ip(oldspec) and _needs_cluster_ip(spec):
        if not spec.get("clusterIP") and oldspec.get("clusterIP"):
            spec["clusterIP"] = oldspec["clusterIP"]
        if not spec.get("clusterIPs") and oldspec.get("clusterIPs"):
            spec["clusterIPs"] = list(oldspec["clusterIPs"])
    if _needs_node_port(oldspec) and _needs_node_port(spec):
        new_used = set(_node_ports(spec))
        by_key = {(p.get("port"), p.get("protocol") or "TCP"): p["nodePort"]
                  for p in oldspec.get("ports") or [] if p.get("nodePort")}
        by_name = {p.get("name") or "": p["nodePort"]
                   for p in oldspec.get("ports") or [] if p.get("nodePort")}
        # Matched by (port, protocol) first (what `apply` users expect when a port is
        # renamed), then by name (upstream's rule for a PUT); never reuse one twice.
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and not p.get("nodePort"):
                np = by_key.get((p.get("port"), p.get("protocol") or "TCP")) \
                    or by_name.get(p.get("name") or "")
                if np and np not in new_used:
                    p["nodePort"] = np
                    new_used.add(np)
        if needs_health_check(oldspec) and needs_health_check(spec) \
                and not spec.get("healthCheckNodePort") and oldspec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = oldspec["healthCheckNodePort"]


def _normalize_cluster_ips(spec: dict, oldspec: dict | None) -> None:
    """Keep clusterIP and clusterIPs in step for clients that set only the singular."""
    cip = spec.get("clusterIP") or ""
    if oldspec is None:
        if cip and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [cip]
        return
    if oldspec.get("clusterIPs") and not spec.get("clusterIPs") \
            and (oldspec.get("clusterIP") or "") == cip:
        spec["clusterIPs"] = list(oldspec["clusterIPs"])
    if (oldspec.get("clusterIP") or "") != cip:
        same = (oldspec.get("clusterIPs") or []) == (spec.get("clusterIPs") or [])
        if oldspec.get("clusterIP") and not cip:
            if same:
                spec.pop("clusterIPs", None)
        elif same:
            spec["clusterIPs"] = [cip]


def _drop_type_dependent_fields(spec: dict, oldspec: dict) -> None:
    """Switching type wipes what the old type had allocated, unless the user changed it."""
    if _needs_cluster_ip(oldspec) and not _needs_cluster_ip(spec):
        if (oldspec.get("clusterIPs") or []) == (spec.get("clusterIPs") or []) \
                and (oldspec.get("clusterIP") or "") == (spec.get("clusterIP") or ""):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if oldspec.get("ipFamilies") == spec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if oldspec.get("ipFamilyPolicy") == spec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _needs_node_port(oldspec) and not _needs_node_port(spec) \
            and _node_ports(oldspec) == _node_ports(spec):
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)
    if needs_health_check(oldspec) and not needs_health_check(spec) \
            and oldspec.get("healthCheckNodePort") == spec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if oldspec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer" \
            and spec.get("allocateLoadBalancerNodePorts") == oldspec.get("allocateLoadBalancerNodePorts"):
        spec.pop("allocateLoadBalancerNodePorts", None)
    if externally_accessible(oldspec) and not externally_accessible(spec) \
            and oldspec.get("externalTrafficPolicy") == spec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


def _init_ip_family_fields(spec: dict, oldspec: dict | None, settings: ClusterSettings) -> None:
    """ipFamilyPolicy / ipFamilies as alloc.go initIPFamilyFields fills them (single-stack)."""
    if spec.get("type") == "ExternalName":
        return
    if spec.get("ipFamilyPolicy") is None:
        if oldspec and oldspec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = oldspec["ipFamilyPolicy"]
        elif spec.get("clusterIP") == "None" and not spec.get("selector"):
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    fams = spec.get("ipFamilies")
    if fams is not None and not isinstance(fams, list):
        return
    fams = list(fams or [])
    for i, ip in enumerate(spec.get("clusterIPs") or []):
        if ip == "None":
            break
        fam = _family(str(ip))
        if fam and i >= len(fams):
            fams.append(fam)
    if spec.get("clusterIP") == "None" and not spec.get("selector"):
        # Headless and selectorless: any family goes, even on a single-stack cluster.
        if not fams:
            fams = [_cluster_family(settings)]
        if len(fams) < 2 and spec.get("ipFamilyPolicy") != "SingleStack":
            fams.append("IPv6" if fams[0] == "IPv4" else "IPv4")
    elif not fams:
        fams = [_cluster_family(settings)]
    spec["ipFamilies"] = fams


# ---- validation -----------------------------------------------------------------------------
def _family_errors(spec: dict, settings: ClusterSettings) -> list[str]:
    """The checks initIPFamilyFields makes before allocation (single-stack cluster)."""
    if spec.get("type") == "ExternalName":
        return []
    causes = []
    for i, ip in enumerate(spec.get("clusterIPs") or []):
        if ip == "None":
            break
        fam = _family(str(ip))
        if fam and fam != _cluster_family(settings):
            causes.append(f"spec.clusterIPs[{i}]: Invalid value: {go_strings(spec.get('clusterIPs'))}: "
                          f"{fam} is not configured on this cluster")
    if causes:
        return causes
    if spec.get("clusterIP") == "None" and not spec.get("selector"):
        return causes
    if spec.get("ipFamilyPolicy") == "RequireDualStack":
        causes.append(_invalid("spec.ipFamilyPolicy", "RequireDualStack",
                               "this cluster is not configured for dual-stack services"))
    for i, fam in enumerate(spec.get("ipFamilies") or []):
        if fam in ("IPv4", "IPv6") and fam != _cluster_family(settings):
            causes.append(_invalid(f"spec.ipFamilies[{i}]", fam, "not configured on this cluster"))
    return causes


def _validate_cluster_ips_related(spec: dict) -> list[str]:
    """ValidateServiceClusterIPsRelatedFields."""
    if spec.get("type") == "ExternalName":
        return []
    causes = []
    cip = spec.get("clusterIP") or ""
    ips = spec.get("clusterIPs")
    ips_list = ips if isinstance(ips, list) else []
    if cip:
        if not ips_list:
            causes.append("spec.clusterIPs: Required value")
        elif ips_list[0] != cip:
            causes.append(f"spec.clusterIPs: Invalid value: {go_strings(ips)}: first value must match `clusterIP`")
    elif ips_list:
        causes.append(f"spec.clusterIPs: Invalid value: {go_strings(ips)}: must be empty when `clusterIP` is not specified")
    seen = set()
    for i, fam in enumerate(spec.get("ipFamilies") or []):
        if fam not in ("IPv4", "IPv6"):
            causes.append(_unsupported(f"spec.ipFamilies[{i}]", fam, ["IPv4", "IPv6"]))
        if fam in seen:
            causes.append(f"spec.ipFamilies[{i}]: Duplicate value: {_q(fam)}")
        seen.add(fam)
    pol = spec.get("ipFamilyPolicy")
    if pol is not None and pol not in ("SingleStack", "PreferDualStack", "RequireDualStack"):
        causes.append(_unsupported("spec.ipFamilyPolicy", pol,
                                   ["PreferDualStack", "RequireDualStack", "SingleStack"]))
    bad = False
    for i, ip in enumerate(ips_list):
        if i == 0 and ip == "None":
            if len(ips_list) > 1:
                bad = True
                causes.append(f"spec.clusterIPs: Invalid value: {go_strings(ips)}: 'None' must be the first and only value")
            continue
        errs = _ip_errors(f"spec.clusterIPs[{i}]", ip)
        bad = bad or bool(errs)
        causes.extend(errs)
    if len(ips_list) > 2:
        causes.append(f"spec.clusterIPs: Invalid value: {go_strings(ips)}: may only hold up to 2 values")
    if bad:
        return causes
    if len(ips_list) > 1 and len({_family(str(ip)) for ip in ips_list}) != len(ips_list):
        causes.append(f"spec.clusterIPs: Invalid value: {go_strings(ips)}: may specify no more than one IP for each IP family")
    if not is_headless(spec):
        fams = spec.get("ipFamilies") or []
        for i, ip in enumerate(ips_list[:len(fams)]):
            if fams[i] == "IPv4" and _family(str(ip)) == "IPv6":
                causes.append(_invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if fams[i] == "IPv6" and _family(str(ip)) != "IPv6":
                causes.append(_invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return causes


def _validate_port(p: dict, i: int, require_name: bool, names: set) -> list[str]:
    path = f"spec.ports[{i}]"
    causes = []
    name = p.get("name") or ""
    if require_name and not name:
        causes.append(f"{path}.name: Required value")
    elif name:
        causes.extend(v.dns1123_label(name, f"{path}.name"))
        if name in names:
            causes.append(f"{path}.name: Duplicate value: {_q(name)}")
        else:
            names.add(name)
    port = p.get("port", 0)
    if not _valid_port_num(port):
        causes.append(_invalid(f"{path}.port", port, "must be between 1 and 65535, inclusive"))
    proto = p.get("protocol")
    if not proto:
        causes.append(f"{path}.protocol: Required value")
    elif proto not in PROTOCOLS:
        causes.append(_unsupported(f"{path}.protocol", proto, PROTOCOLS))
    causes.extend(v.port_num_or_name(p.get("targetPort"), f"{path}.targetPort"))
    return causes


def validate_service_spec(spec: dict) -> list[str]:
    """ValidateService (spec part), in upstream's order."""
    causes: list[str] = []
    typ = spec.get("type")
    ports = spec.get("ports") or []
    headless = is_headless(spec)
    if not ports and not headless and typ != "ExternalName":
        causes.append("spec.ports: Required value")
    if typ in NEEDS_NODE_PORT and headless:
        causes.append(_invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {typ} services"))
    elif typ == "ExternalName":
        if spec.get("clusterIPs"):
            causes.append("spec.clusterIPs: Forbidden: may not be set for ExternalName services")
        if spec.get("ipFamilies"):
            causes.append("spec.ipFamilies: Forbidden: may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            causes.append("spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services")
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            causes.extend(v.dns1123_subdomain(cname, "spec.externalName"))
        else:
            causes.append("spec.externalName: Required value")
    names: set[str] = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            causes.append(f"spec.ports[{i}]: Invalid value: must be an object")
            continue
        causes.extend(_validate_port(p, i, len(ports) > 1, names))
    if spec.get("selector") is not None:
        causes.extend(v.labels(spec["selector"], "spec.selector"))
    aff = spec.get("sessionAffinity")
    if not aff:
        causes.append("spec.sessionAffinity: Required value")
    elif aff not in ("ClientIP", "None"):
        causes.append(_unsupported("spec.sessionAffinity", aff, ["ClientIP", "None"]))
    if aff == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        if not isinstance(cfg, dict):
            causes.append("spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP")
        elif not isinstance(cfg.get("clientIP"), dict):
            causes.append("spec.sessionAffinityConfig.clientIP: Required value: when session affinity type is ClientIP")
        else:
            t = cfg["clientIP"].get("timeoutSeconds")
            if t is None:
                causes.append("spec.sessionAffinityConfig.clientIP.timeoutSeconds: Required value: "
                              "when session affinity type is ClientIP")
            elif not isinstance(t, int) or t <= 0 or t > MAX_AFFINITY_SECONDS:
                causes.append(_invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                                       f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}"))
    elif aff == "None" and spec.get("sessionAffinityConfig") is not None:
        causes.append("spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None")
    causes.extend(_validate_cluster_ips_related(spec))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        causes.extend(_ip_errors(f"spec.externalIPs[{i}]", ip)
                      or v.non_special_ip(ip, f"spec.externalIPs[{i}]"))
    if not typ:
        causes.append("spec.type: Required value")
    elif typ not in TYPES:
        causes.append(_unsupported("spec.type", typ, TYPES))
    if typ == "ClusterIP":
        for i, p in enumerate(ports):
            if isinstance(p, dict) and p.get("nodePort"):
                causes.append(f"spec.ports[{i}].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'")
    seen_np: set = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict) or not p.get("nodePort"):
            continue
        key = (p.get("protocol"), p["nodePort"])
        if key in seen_np:
            causes.append(f"spec.ports[{i}].nodePort: Duplicate value: {_go_value(p['nodePort'])}")
        seen_np.add(key)
    seen_p: set = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        key = (p.get("protocol"), p.get("port"))
        if key in seen_p:
            causes.append(f"spec.ports[{i}]: Duplicate value: {_go_service_port_key(*key)}")
        seen_p.add(key)
    if spec.get("loadBalancerSourceRanges") and typ != "LoadBalancer":
        causes.append("spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'")
    if spec.get("allocateLoadBalancerNodePorts") is not None and typ != "LoadBalancer":
        causes.append("spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'")
    etp = spec.get("externalTrafficPolicy")
    if not externally_accessible(spec):
        if etp:
            causes.append(_invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    elif not etp:
        causes.append("spec.externalTrafficPolicy: Required value")
    elif etp not in ("Cluster", "Local"):
        causes.append(_unsupported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    hc = spec.get("healthCheckNodePort")
    if not needs_health_check(spec):
        if hc:
            causes.append(_invalid("spec.healthCheckNodePort", hc,
                                   "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    elif hc:  # 0 / absent: the allocator picks one
        causes.extend(v.port_num(hc, "spec.healthCheckNodePort"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and typ in ("NodePort", "LoadBalancer", "ClusterIP"):
        causes.append("spec.internalTrafficPolicy: Required value")
    elif itp is not None and itp not in ("Cluster", "Local"):
        causes.append(_unsupported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    return causes


def _validate_upgrade_downgrade(spec: dict, oldspec: dict) -> list[str]:
    """validateUpgradeDowngradeClusterIPs: the primary clusterIP never changes."""
    if spec.get("type") == "ExternalName" or oldspec.get("type") == "ExternalName":
        return []
    if is_headless(spec) and is_headless(oldspec):
        return []
    old_ips = oldspec.get("clusterIPs") or []
    ips = spec.get("clusterIPs")
    new_ips = ips or []
    causes = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                causes.append(f"spec.clusterIPs[{i}]: Invalid value: {go_strings(ips)}: may not change once set")
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            causes.append(f"spec.clusterIPs[0]: Invalid value: {go_strings(ips)}: primary clusterIP can not be unset")
        elif new_ips[0] != old_ips[0]:
            causes.append(f"spec.clusterIPs[0]: Invalid value: {go_strings(ips)}: may not change once set")
    elif old_ips and new_ips[0] != old_ips[0]:
        causes.append(f"spec.clusterIPs[0]: Invalid value: {go_strings(ips)}: may not change once set")
    return causes


def _validate_service(obj: dict, old: dict | None, settings: ClusterSettings) -> list[str]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return ["spec: Required value"]
    fam = _family_errors(spec, settings)
    if fam:
        return fam
    causes = []
    if old is not None:
        causes.extend(_validate_upgrade_downgrade(spec, (old.get("spec") or {})))
    causes.extend(validate_service_spec(spec))
    return causes


# ---- allocation -------------------------------------------------------------------------------
def _internal(msg: str) -> errors.ApiError:
    return errors.ApiError(f"Internal error occurred: {msg}", code=500, reason="InternalError")


def _others(store, obj: dict) -> list[dict]:
    md = obj.get("metadata") or {}
    me = (md.get("namespace") or "default", md.get("name"))
    svcs, _ = store.list("services")
    return [s for s in svcs
            if ((s["metadata"].get("namespace") or "default"), s["metadata"]["name"]) != me]


def _static_size(total: int, lo: int, hi: int, cap: int) -> int:
    """Size of the low band kept for static picks (ServiceIPStaticSubrange & friends)."""
    return min(max(lo, total // hi), cap)


def _pick(total: int, static: int, taken, value_of) -> int | None:
    """Random offset, preferring the upper (dynamic) band, as upstream's allocators do."""
    bands = [(static, total), (0, static)] if static < total else [(0, total)]
    for a, b in bands:
        if b <= a:
            continue
        for _ in range(32):
            off = random.randrange(a, b)
            if not taken(value_of(off)):
                return off
        start = random.randrange(a, b)
        for k in range(b - a):
            off = a + (start - a + k) % (b - a)
            if not taken(value_of(off)):
                return off
    return None


def allocate_cluster_ip(used: set[str], settings: ClusterSettings) -> str:
    net = settings.service_cidr
    base = int(net.network_address)
    # Usable addresses exclude the network (and, for IPv4, broadcast) address.
    total = net.num_addresses - (2 if net.version == 4 else 1)
    total = max(total, 0)
    reserved = reserved_ips(settings)
    static = _static_size(total, 16, 16, 256)

    def value_of(off: int) -> str:
        return str(ipaddress.ip_address(base + 1 + off))

    off = _pick(total, static, lambda ip: ip in used or ip in reserved, value_of)
    if off is None:
        raise _internal("failed to allocate a serviceIP: range is full")
    return value_of(off)


def _ip_in_range(ip: str, settings: ClusterSettings) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    net = settings.service_cidr
    if a.version != net.version or a not in net or a == net.network_address:
        return False
    return not (net.version == 4 and a == net.broadcast_address)


def allocate_node_port(used: set[int], settings: ClusterSettings) -> int:
    lo, hi = settings.node_port_range
    total = hi - lo + 1
    static = _static_size(total, 16, 32, 128)
    off = _pick(total, static, lambda p: p in used, lambda o: lo + o)
    if off is None:
        raise _internal("failed to allocate a nodePort: range is full")
    return lo + off


def _allocate_service(store, obj: dict, old: dict | None, settings: ClusterSettings) -> None:
    spec = obj["spec"]
    oldspec = (old or {}).get("spec") or {}
    name = obj["metadata"].get("name", "")
    others = _others(store, obj)

    # ClusterIP
    if _needs_cluster_ip(spec) and not is_headless(spec):
        old_ips = set(oldspec.get("clusterIPs") or []) if _needs_cluster_ip(oldspec) else set()
        used = {ip for s in others for ip in ((s.get("spec") or {}).get("clusterIPs") or [])}
        cip = spec.get("clusterIP") or ""
        if not cip:
            cip = allocate_cluster_ip(used, settings)
            spec["clusterIP"] = cip
            spec["clusterIPs"] = [cip]
        elif cip not in old_ips:
            ips = spec.get("clusterIPs")
            if not _ip_in_range(cip, settings):
                raise errors.invalid("Service", name, [
                    f"spec.clusterIPs: Invalid value: {go_strings(ips)}: failed to allocate IP {cip}: "
                    f"the provided IP ({cip}) is not in the valid range. "
                    f"The range of valid IPs is {settings.service_cidr}"])
            if cip in used:
                raise errors.invalid("Service", name, [
                    f"spec.clusterIPs: Invalid value: {go_strings(ips)}: failed to allocate IP {cip}: "
                    "provided IP is already allocated"])

    # NodePorts
    if not _needs_node_port(spec):
        return
    used_ports: set[int] = set()
    for s in others:
        ss = s.get("spec") or {}
        used_ports.update(_node_ports(ss))
        if ss.get("healthCheckNodePort"):
            used_ports.add(ss["healthCheckNodePort"])
    mine = set(_node_ports(oldspec)) if _needs_node_port(oldspec) else set()
    if needs_health_check(oldspec) and oldspec.get("healthCheckNodePort"):
        mine.add(oldspec["healthCheckNodePort"])
    lo, hi = settings.node_port_range
    allocate_new = spec.get("type") == "NodePort" or spec.get("allocateLoadBalancerNodePorts", True)

    def check(np: int, path: str) -> None:
        if np in mine:
            return
        if not lo <= np <= hi:
            raise errors.invalid("Service", name, [_invalid(
                path, np, "provided port is not in the valid range. "
                          f"The range of valid ports is {node_port_range_str(settings)}")])
        if np in used_ports:
            raise errors.invalid("Service", name, [_invalid(path, np, "provided port is already allocated")])

    ports = spec.get("ports") or []
    by_port: dict = {}
    taken_here: set[int] = set()
    for i, p in enumerate(ports):
        if p.get("nodePort"):
            check(p["nodePort"], f"spec.ports[{i}].nodePort")
            taken_here.add(p["nodePort"])
            by_port.setdefault(p.get("port"), p["nodePort"])
    for p in ports:
        if p.get("nodePort") or not allocate_new:
            continue
        # Ports sharing a number (53/UDP and 53/TCP) share one node port, as upstream.
        np = by_port.get(p.get("port"))
        if not np:
            np = allocate_node_port(used_ports | taken_here, settings)
            taken_here.add(np)
            by_port[p.get("port")] = np
        p["nodePort"] = np
    if needs_health_check(spec):
        hc = spec.get("healthCheckNodePort")
        if hc:
            if hc not in mine and not lo <= hc <= hi:
                raise _internal(f"failed to allocate requested HealthCheck NodePort {hc}: "
                                "provided port is not in the valid range. The range of valid "
                                f"ports is {node_port_range_str(settings)}")
            if hc not in mine and (hc in used_ports or hc in taken_here):
                raise _internal(f"failed to allocate requested HealthCheck NodePort {hc}: "
                                "provided port is already allocated")
        else:
            spec["healthCheckNodePort"] = allocate_node_port(used_ports | taken_here, settings)


def register(reg: Registry, settings: ClusterSettings) -> None:
    """Service hooks bound to this cluster's service CIDR and NodePort range."""
    reg.add("Service",
            defaulter=lambda obj, old: _default_service(obj, old, settings),
            validator=lambda obj, old: _validate_service(obj, old, settings),
            allocator=lambda store, obj, old: _allocate_service(store, obj, old, settings),
            name=v.name_is_dns1035_label)
