"""NetworkPolicies (networking.k8s.io/v1): defaults and validation as the apiserver's.

Defaulting is pkg/apis/networking/v1 SetDefaults_NetworkPolicy(Port): a port without a
protocol is TCP; a policy without policyTypes gets `Ingress`, plus `Egress` when it has
egress rules (a policy listing only egress rules and no policyTypes therefore also
isolates its pods for ingress, as upstream). `podSelector` is no pointer in Go, so an
absent one is stored as `{}` (every pod of the namespace).

Validation is pkg/apis/networking/validation ValidateNetworkPolicySpec word for word
(the label selectors, the ports, the peers, the ipBlocks, the policyTypes), so `netsim
apply` prints what kubectl prints. The node dataplane (netsim/netpol) reads only what
this admits.
"""

from __future__ import annotations

import ipaddress

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def port_errors(port: dict, path: str) -> list[str]:
    """ValidateNetworkPolicyPort: protocol, port (number or IANA name), endPort."""
    errs: list[str] = []
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs.append(v.unsupported(f"{path}.protocol", proto, PROTOCOLS))
    num, end = port.get("port"), port.get("endPort")
    if num is not None:
        if _is_int(num):
            errs += v.port_num(num, f"{path}.port")
            if end is not None:
                if _is_int(end) and end < num:
                    errs.append(v.invalid(f"{path}.endPort", end,
                                          "must be greater than or equal to `port`"))
                errs += v.port_num(end, f"{path}.endPort")
        else:
            if end is not None:
                errs.append(v.invalid(f"{path}.endPort", end,
                                      "may not be specified when `port` is non-numeric"))
            errs += v.port_name(str(num), f"{path}.port")
    elif end is not None:
        errs.append(v.invalid(f"{path}.endPort", end,
                              "may not be specified when `port` is not specified"))
    return errs


def ip_block_errors(block: dict, path: str) -> list[str]:
    """ValidateIPBlock: cidr required and valid; each except a valid strict subset of it."""
    cidr = block.get("cidr") or ""
    if not cidr:
        return [v.required(f"{path}.cidr")]
    errs = v.cidr(cidr, f"{path}.cidr")
    if errs:
        return errs
    outer = ipaddress.ip_network(cidr, strict=False)
    for i, exc in enumerate(block.get("except") or []):
        epath = f"{path}.except[{i}]"
        bad = v.cidr(exc, epath)
        if bad:
            errs += bad
            continue
        inner = ipaddress.ip_network(exc, strict=False)
        # Go: !cidr.Contains(except.IP) || cidrMaskLen >= exceptMaskLen
        if (inner.version != outer.version or inner.network_address not in outer
                or outer.prefixlen >= inner.prefixlen):
            errs.append(v.invalid(epath, exc, "must be a strict subset of `cidr`"))
    return errs


def peer_errors(peer: dict, path: str) -> list[str]:
    """ValidateNetworkPolicyPeer: at least one of podSelector/namespaceSelector/ipBlock,
    and an ipBlock alone."""
    errs: list[str] = []
    count = 0
    if peer.get("podSelector") is not None:
        count += 1
        errs += v.label_selector(peer["podSelector"], f"{path}.podSelector")
    if peer.get("namespaceSelector") is not None:
        count += 1
        errs += v.label_selector(peer["namespaceSelector"], f"{path}.namespaceSelector")
    if peer.get("ipBlock") is not None:
        count += 1
        block = peer["ipBlock"] if isinstance(peer["ipBlock"], dict) else {}
        errs += ip_block_errors(block, f"{path}.ipBlock")
    if count == 0:
        errs.append(v.required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(v.forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def spec_errors(spec: dict) -> list[str]:
    """ValidateNetworkPolicySpec, in its order."""
    errs = v.label_selector(spec.get("podSelector") or {}, "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rule = rule if isinstance(rule, dict) else {}
            rpath = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                errs += port_errors(port if isinstance(port, dict) else {},
                                    f"{rpath}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers_key) or []):
                errs += peer_errors(peer if isinstance(peer, dict) else {},
                                    f"{rpath}.{peers_key}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        shown = ", ".join(v.go_quote(str(t)) for t in types)
        errs.append(f"spec.policyTypes: Invalid value: []networking.PolicyType{{{shown}}}: "
                    "may not specify more than two policyTypes")
        return errs
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs.append(v.unsupported(f"spec.policyTypes[{i}]", t, POLICY_TYPES))
    return errs


def _default(obj: dict, old: dict | None) -> None:
    """SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    if spec.get("podSelector") is None:
        spec["podSelector"] = {}
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict) and port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _validate(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    return spec_errors(spec)


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("NetworkPolicy", defaulter=_default, validator=_validate)
