"""Cell helpers that `get`'s tables and `describe`'s blocks share.

kubectl's printers.go and describe.go call the same few helpers (``metav1.FormatLabelSelector``,
``net.JoinHostPort``, ``loadBalancerStatusStringer``, ``findNodeRoles``…); they live here once so
a cell reads the same in both.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NONE", "UNSET", "cluster_ip", "join_host_port", "lb_status_string", "meta_of",
           "node_roles", "spec_of", "status_of", "to_int"]

NONE = "<none>"
UNSET = "<unset>"


def meta_of(obj: Mapping) -> Mapping:
    return obj.get("metadata") or {}


def spec_of(obj: Mapping) -> Mapping:
    return obj.get("spec") or {}


def status_of(obj: Mapping) -> Mapping:
    return obj.get("status") or {}


def to_int(v) -> int:
    """An int field as Go reads it: missing or unreadable is 0."""
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def join_host_port(host: str, port) -> str:
    """``net.JoinHostPort``: IPv6 hosts in brackets."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def cluster_ip(svc_spec: Mapping) -> str:
    ips = svc_spec.get("clusterIPs") or []
    if ips:
        return ips[0]
    # Objects that predate dual-stack carry only spec.clusterIP.
    return svc_spec.get("clusterIP") or NONE


def lb_status_string(lb: Mapping | None) -> str:
    """``loadBalancerStatusStringer(…, wide=true)``: the set of ingress IPs/hostnames."""
    result: list[str] = []
    for ing in (lb or {}).get("ingress") or []:
        v = ing.get("ip") or ing.get("hostname")
        if v and v not in result:
            result.append(v)
    return ",".join(sorted(result))


def node_roles(node: Mapping) -> list[str]:
    """``findNodeRoles``: ``node-role.kubernetes.io/<role>`` keys and ``kubernetes.io/role``."""
    roles = set()
    for k, v in (meta_of(node).get("labels") or {}).items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)
