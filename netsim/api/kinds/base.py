"""What every kind module plugs into: the hook registry, the cluster settings, ObjectMeta.

Kind modules (`core`, `apps`, `service`, `networking`, `discovery`) each expose
`register(registry, settings)`; `netsim.api.admission.Admission` calls them explicitly,
so importing a kind module registers nothing by side effect and the settings a hook
needs (service CIDR, NodePort range) arrive as an argument, not through a global.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from netsim.api import validation as v

# defaulter(obj, old) -> None (mutates); validator(obj, old) -> causes; allocator(store, obj, old)
Defaulter = Callable[[dict, "dict | None"], None]
Validator = Callable[[dict, "dict | None"], list]
Allocator = Callable[[object, dict, "dict | None"], None]
NameFn = Callable[[str, bool], list]

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)


@dataclass(frozen=True)
class ClusterSettings:
    """The apiserver flags admission depends on (--service-cluster-ip-range,
    --service-node-port-range)."""

    service_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network = \
        ipaddress.ip_network(DEFAULT_SERVICE_CIDR)
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE

    @classmethod
    def parse(cls, service_cidr: str | None = None,
              node_port_range: str | tuple[int, int] | None = None) -> ClusterSettings:
        """From `cluster up`'s flags (`10.96.0.0/12`, `30000-32767`); None keeps the default."""
        cidr = ipaddress.ip_network(service_cidr or DEFAULT_SERVICE_CIDR, strict=False)
        if node_port_range is None:
            ports = DEFAULT_NODE_PORT_RANGE
        elif isinstance(node_port_range, str):
            lo, _, hi = node_port_range.partition("-")
            ports = (int(lo), int(hi or lo))
        else:
            ports = (int(node_port_range[0]), int(node_port_range[1]))
        return cls(cidr, ports)


@dataclass
class Registry:
    """Per-kind admission hooks, in registration order."""

    defaulters: dict[str, list[Defaulter]] = field(default_factory=dict)
    validators: dict[str, list[Validator]] = field(default_factory=dict)
    allocators: dict[str, list[Allocator]] = field(default_factory=dict)
    name_fns: dict[str, NameFn] = field(default_factory=dict)

    def add(self, kind: str, *, defaulter: Defaulter | None = None,
            validator: Validator | None = None, allocator: Allocator | None = None,
            name: NameFn | None = None) -> None:
        if defaulter:
            self.defaulters.setdefault(kind, []).append(defaulter)
        if validator:
            self.validators.setdefault(kind, []).append(validator)
        if allocator:
            self.allocators.setdefault(kind, []).append(allocator)
        if name:
            self.name_fns[kind] = name


def validate_object_meta(obj: dict, old: dict | None, name_fn: NameFn,
                         namespaced: bool) -> list[str]:
    """ValidateObjectMeta (create) / ValidateObjectMetaUpdate (update)."""
    md = obj.get("metadata") or {}
    causes: list[str] = []
    if old is None:
        gen = md.get("generateName") or ""
        if gen:
            causes += [v.invalid("metadata.generateName", gen, m) for m in name_fn(gen, True)]
        name = md.get("name") or ""
        if not name:
            causes.append(v.required("metadata.name", "name or generateName is required"))
        else:
            causes += [v.invalid("metadata.name", name, m) for m in name_fn(name, False)]
        ns = md.get("namespace") or ""
        if namespaced and ns:
            causes += [v.invalid("metadata.namespace", ns, m) for m in v.is_dns1123_label(ns)]
    causes += v.labels(md.get("labels"), "metadata.labels")
    causes += v.annotations(md.get("annotations"), "metadata.annotations")
    finalizers = md.get("finalizers") or []
    for f in finalizers:
        causes += v.qualified_name(f, "metadata.finalizers")
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append("metadata.finalizers: Invalid value: []string{"
                      + ", ".join(v.go_quote(f) for f in finalizers)
                      + "}: finalizer orphan and foregroundDeletion cannot be both set")
    for i, f in enumerate(finalizers):
        causes += v.kube_finalizer_name(f, f"metadata.finalizers[{i}]")
    return causes
