"""Cluster DNS records: Kubernetes objects in, an in-memory zone out (pure, no I/O).

`Zone.build` turns Services, EndpointSlices and Pods (Kubernetes JSON) into a dict of
lower-case owner name -> {qtype: [RR]} so that `Zone.answer` is one dict lookup per query.
Behaviour follows the kubernetes/dns specification (schema 1.1.0) and CoreDNS
`plugin/kubernetes`: NXDOMAIN vs NODATA with the zone SOA in authority, SRV weights
`100 // n`, glue addresses in the additional section, `pods insecure` pod records.

Objects that admission would have refused (written straight into the store, or by an older
version) may still arrive: one that cannot become valid records (a name that is no DNS
label, an address that is no IP, a port that is no number) is left out of the zone whole
and listed in `Zone.skipped` with the reason, so the server keeps answering for everything
else and the caller can tell the user (ZoneSource logs it and sends a Warning event).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from dnslib import (
    AAAA,
    CNAME,
    NS,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSRecord,
)

from netsim.api import validation as v

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SCHEMA_VERSION = "1.1.0"
DNS_VERSION_TTL = 28800  # CoreDNS answers dns-version with this TTL
SOA_TTL = 5  # the reference SOA: `cluster.local. 5 IN SOA ... 7200 1800 86400 5`
REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
CLASS_IN = 1
CLASS_ANY = 255

_A, _AAAA, _CNAME, _PTR, _SRV, _TXT, _SOA, _NS = (
    QTYPE.A, QTYPE.AAAA, QTYPE.CNAME, QTYPE.PTR, QTYPE.SRV, QTYPE.TXT, QTYPE.SOA, QTYPE.NS)
_ANY = QTYPE.ANY


def dashed(ip: str) -> str:
    """`10.244.1.5` -> `10-244-1-5`, `5678:abcd::1` -> `5678-abcd--1` (CoreDNS endpoint names)."""
    return ip.replace(".", "-").replace(":", "-")


def reverse_name(ip: str) -> str:
    """The PTR owner name of an address, lower case with the trailing dot."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _rv(obj: dict) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _ready(endpoint: dict) -> bool:
    # EndpointSlice semantics: a missing `ready` condition means "unknown", read as ready.
    return (endpoint.get("conditions") or {}).get("ready") is not False


# --------------------------------------------------------------- what can become records
# The checks are admission's own (netsim.api.validation), so a skipped object is reported in
# the words the apiserver would have refused it with.
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _external_name(value, path: str) -> list[str]:
    """Admission's check (a DNS-1123 subdomain once a trailing dot is cut), and every label
    within 63 octets, which admission does not check but a DNS message needs (the label
    named as IsFullyQualifiedDomainName names it)."""
    if value in (None, ""):
        return [v.required(path)]
    if not isinstance(value, str):
        return v.named(v.is_dns1123_subdomain, value, path)
    name = value.removesuffix(".")
    return [v.invalid(path, value, m) for m in v.is_dns1123_subdomain(name)] or [
        v.invalid(path, label, m) for label in name.split(".") if len(label) > 63
        for m in v.is_dns1123_label(label)]


def _ports_errors(ports, field_: str, optional_port: bool) -> list[str]:
    if ports is None:
        return []
    if not isinstance(ports, list):
        return [f"{field_}: Invalid value: must be a list"]
    errs = []
    for i, port in enumerate(ports):
        where = f"{field_}[{i}]"
        if not isinstance(port, dict):
            errs.append(f"{where}: Invalid value: must be an object")
            continue
        if not (port.get("port") is None and optional_port):
            errs.extend(v.port_num(port.get("port"), f"{where}.port"))
        if port.get("name") not in (None, ""):
            errs.extend(v.named(v.is_dns1123_label, port["name"], f"{where}.name"))
        if port.get("protocol") not in (None, *_PROTOCOLS):
            errs.append(v.unsupported(f"{where}.protocol", port["protocol"], _PROTOCOLS))
    return errs


def _meta_errors(obj: dict, service_name: bool = False) -> list[str]:
    """The namespace (part of every name); a Service's own name also becomes a label."""
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return ["metadata: Invalid value: must be an object"]
    errs = []
    if service_name and md.get("name") is not None:  # nameless: ignored, not reported
        errs.extend(v.named(v.is_dns1035_label, md["name"], "metadata.name"))
    if md.get("namespace") not in (None, ""):
        errs.extend(v.named(v.is_dns1123_label, md["namespace"], "metadata.namespace"))
    return errs


def service_errors(svc: dict) -> list[str]:
    """Why `svc` cannot become records (Kubernetes' field paths), empty when it can."""
    errs = _meta_errors(svc, service_name=True)
    spec = svc.get("spec")
    if spec is None:
        return errs
    if not isinstance(spec, dict):
        return [*errs, "spec: Invalid value: must be an object"]
    if spec.get("type") == "ExternalName":
        return errs + _external_name(spec.get("externalName"), "spec.externalName")
    ips = spec.get("clusterIPs")
    if ips is not None and not isinstance(ips, list):
        errs.append("spec.clusterIPs: Invalid value: must be a list")
        ips = None
    for where, ip in [("spec.clusterIP", spec.get("clusterIP")),
                      *((f"spec.clusterIPs[{i}]", ip) for i, ip in enumerate(ips or []))]:
        if ip not in (None, "", "None"):
            errs.extend(v.ip_address(ip, where))
    return errs + _ports_errors(spec.get("ports"), "spec.ports", optional_port=False)


def endpoint_slice_errors(es: dict) -> list[str]:
    """Why an EndpointSlice cannot become records, empty when it can."""
    errs = _meta_errors(es)
    md = es.get("metadata")
    labels = md.get("labels") if isinstance(md, dict) else None
    if labels is not None and not (isinstance(labels, dict) and isinstance(
            labels.get(SERVICE_NAME_LABEL, ""), str)):
        errs.append(f"metadata.labels: Invalid value: {SERVICE_NAME_LABEL} must be a string")
    endpoints = es.get("endpoints")
    if endpoints is not None and not isinstance(endpoints, list):
        return [*errs, "endpoints: Invalid value: must be a list"]
    for i, ep in enumerate(endpoints or []):
        if not isinstance(ep, dict):
            errs.append(f"endpoints[{i}]: Invalid value: must be an object")
            continue
        addresses = ep.get("addresses")
        if not isinstance(addresses, list):
            errs.append(f"endpoints[{i}].addresses: Required value")
            continue
        for j, ip in enumerate(addresses):
            errs.extend(v.ip_address(ip, f"endpoints[{i}].addresses[{j}]"))
        if ep.get("hostname") not in (None, ""):
            errs.extend(v.named(v.is_dns1123_label, ep["hostname"], f"endpoints[{i}].hostname"))
        if not isinstance(ep.get("conditions") or {}, dict):
            errs.append(f"endpoints[{i}].conditions: Invalid value: must be an object")
    return errs + _ports_errors(es.get("ports"), "ports", optional_port=True)


def pod_errors(pod: dict) -> list[str]:
    """Why a Pod cannot get its records (address, hostname.subdomain), empty when it can."""
    errs = _meta_errors(pod)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not isinstance(spec, dict) or not isinstance(status, dict):
        return [*errs, "spec/status: Invalid value: must be objects"]
    for field_ in ("hostname", "subdomain"):
        if spec.get(field_) not in (None, ""):
            errs.extend(v.named(v.is_dns1123_label, spec[field_], f"spec.{field_}"))
    ips = status.get("podIPs")
    if ips is not None and not (isinstance(ips, list) and all(isinstance(p, dict)
                                                              for p in ips)):
        return [*errs, "status.podIPs: Invalid value: must be a list of objects"]
    for where, ip in [("status.podIP", status.get("podIP")),
                      *((f"status.podIPs[{i}].ip", p.get("ip")) for i, p in enumerate(ips or []))]:
        if ip not in (None, ""):
            errs.extend(v.ip_address(ip, where))
    return errs


def namespace_errors(ns: dict) -> list[str]:
    """Why a Namespace cannot be part of names (its name is no DNS-1123 label)."""
    md = ns.get("metadata")
    if not isinstance(md, dict):
        return ["metadata: Invalid value: must be an object"]
    return v.named(v.is_dns1123_label, md.get("name"), "metadata.name")


def _usable(objs: list[dict], check, skipped: list[tuple[dict, str]]) -> list[dict]:
    """The objects `check` finds nothing wrong with; the others go to `skipped`."""
    out = []
    for obj in objs:
        if not isinstance(obj, dict):
            continue
        errs = check(obj)
        if errs:
            skipped.append((obj, "; ".join(errs)))
        else:
            out.append(obj)
    return out


def pod_view(pod: dict) -> tuple | None:
    """What of a pod the zone needs rebuilt when it changes; None when nothing.

    Zone.build reads a pod's addresses and, for a hostname.subdomain record, its readiness.
    An IPv4 pod's own `a-b-c-d.<ns>.pod` record is the same A that `pods insecure` answers
    for any such name in a known namespace (Zone._insecure_pod), so only a pod with a
    hostname and subdomain, or with an address of another family, needs a rebuild: the
    others' changes (created, scheduled, given an address, started, probed) none. CoreDNS,
    under `pods insecure`, does not watch pods at all. Anything malformed reads as its own
    value, so that it is always looked at."""
    try:
        md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, \
            pod.get("status") or {}
        ips = tuple(p.get("ip") for p in status.get("podIPs") or ()) or (status.get("podIP"),)
        if not any(ips) or spec.get("hostNetwork"):
            return None
        host, sub = spec.get("hostname"), spec.get("subdomain")
        if not (host and sub) and all(_insecure_answers(ip) for ip in ips if ip):
            return None
        ready = _pod_ready(pod) if host and sub else None
        return (md.get("namespace"), md.get("name"), ips, host, sub, ready)
    except (AttributeError, TypeError):
        return ("malformed", object())  # equal to nothing, itself included


def _insecure_answers(ip) -> bool:
    """Whether `pods insecure` answers this address's pod name without a record of it."""
    a = v.parse_ip(ip) if isinstance(ip, str) else None
    return a is not None and a.version == 4 and str(a) == ip


def _pod_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") or pod.get("metadata", {}).get(
            "deletionTimestamp"):
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return status.get("phase") == "Running"


@dataclass
class _Builder:
    """Collects record data as plain tuples; `finish` turns them into dnslib RRs."""

    origin: str
    ttl: int
    nodes: dict[str, dict[int, list]] = field(default_factory=dict)
    srv: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def node(self, name: str) -> dict[int, list]:
        """Create `name` and every ancestor down to the zone apex (empty non-terminals)."""
        node = self.nodes.get(name)
        if node is not None:
            return node
        node = self.nodes[name] = {}
        if name != self.origin and name.endswith("." + self.origin):
            self.node(name.split(".", 1)[1])
        return node

    def add(self, name: str, qtype: int, value) -> None:
        values = self.node(name).setdefault(qtype, [])
        if value not in values:
            values.append(value)

    def address(self, name: str, ip: str) -> None:
        a = v.parse_ip(ip)
        if a is not None:
            self.add(name, _A if a.version == 4 else _AAAA, str(a))

    def add_srv(self, name: str, port: int, target: str) -> None:
        self.node(name)
        values = self.srv.setdefault(name, [])
        if (port, target) not in values:
            values.append((port, target))


class Zone:
    """An immutable snapshot of the cluster zone; swap the whole object on change."""

    def __init__(self, domain: str, ttl: int, serial: int,
                 nodes: dict[str, dict[int, list[RR]]],
                 extra: dict[tuple[str, int], list[RR]],
                 namespaces: frozenset[str], reverse: dict[str, dict[int, list[RR]]]):
        self.domain = domain.strip(".").lower()
        self.origin = self.domain + "."
        self.ttl = ttl
        self.serial = serial
        self.generation = 0  # set by whoever swaps zones in (ZoneSource)
        self.skipped: list[tuple[dict, str]] = []  # (object, why) left out by build()
        self.nodes = nodes
        self.extra = extra
        self.namespaces = namespaces
        self.reverse = reverse
        self._pod_suffix = ".pod." + self.origin
        # CoreDNS: `ns.dns.<zone>` / `hostmaster.<zone>`, refresh 7200 retry 1800 expire 86400.
        self._soa = {zone: RR(zone, _SOA, CLASS_IN, SOA_TTL, SOA(
            "ns.dns." + zone, "hostmaster." + zone, (serial, 7200, 1800, 86400, SOA_TTL)))
            for zone in (self.origin, *REVERSE_ZONES)}

    # ---------------------------------------------------------------- building
    @classmethod
    def build(cls, services: list[dict], endpoint_slices: list[dict], pods: list[dict], *,
              domain: str = "cluster.local", ttl: int = 30, serial: int | None = None,
              namespaces: Iterable[dict] = ()) -> Zone:
        """Render the zone from Kubernetes JSON. `serial` defaults to the newest resourceVersion.

        `namespaces` are the cluster's Namespace objects (CoreDNS follows them too): one
        that exists is known even with nothing in it (`<ns>.svc` is NODATA, `pods insecure`
        names in it resolve). A namespace any object lives in is known either way."""
        origin = domain.strip(".").lower() + "."
        skipped: list[tuple[dict, str]] = []
        services = _usable(services, service_errors, skipped)
        endpoint_slices = _usable(endpoint_slices, endpoint_slice_errors, skipped)
        pods = _usable(pods, pod_errors, skipped)
        namespace_objs = _usable(list(namespaces), namespace_errors, skipped)
        b = _Builder(origin, ttl)
        rev = _Builder("", ttl)
        namespaces_known = {o["metadata"]["name"] for o in namespace_objs}
        b.node(origin)
        b.add("dns-version." + origin, _TXT, SCHEMA_VERSION)
        b.node("svc." + origin)
        b.node("pod." + origin)

        slices_by_svc: dict[tuple[str, str], list[dict]] = {}
        for es in endpoint_slices:
            md = es.get("metadata") or {}
            svc_name = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
            ns = md.get("namespace") or "default"
            namespaces_known.add(ns)
            if svc_name:
                slices_by_svc.setdefault((ns, svc_name), []).append(es)

        headless: set[tuple[str, str]] = set()
        for svc in services:
            md = svc.get("metadata") or {}
            spec = svc.get("spec") or {}
            ns, name = (md.get("namespace") or "default"), md.get("name")
            if not name:
                continue
            namespaces_known.add(ns)
            svc_fqdn = f"{name}.{ns}.svc.{origin}".lower()
            if spec.get("type") == "ExternalName":
                target = spec.get("externalName")
                if target:
                    b.add(svc_fqdn, _CNAME, _fqdn(target))
                continue
            ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
                   if ip and ip != "None" and v.parse_ip(ip)]
            if ips:
                for ip in ips:
                    b.address(svc_fqdn, ip)
                    rev.add(reverse_name(ip), _PTR, svc_fqdn)
                for port in spec.get("ports") or []:
                    number = port.get("port")
                    if not number:
                        continue
                    proto = "_" + (port.get("protocol") or "TCP").lower()
                    if port.get("name"):
                        b.add_srv(f"_{port['name']}.{proto}.{svc_fqdn}".lower(), number, svc_fqdn)
                    b.add_srv(svc_fqdn, number, svc_fqdn)
            elif spec.get("clusterIP") in (None, "", "None"):
                headless.add((ns, name))
                cls._headless(b, rev, svc_fqdn, slices_by_svc.get((ns, name), []))

        for pod in pods:
            md = pod.get("metadata") or {}
            spec = pod.get("spec") or {}
            status = pod.get("status") or {}
            ns = md.get("namespace") or "default"
            namespaces_known.add(ns)
            ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
            ips = [ip for ip in ips if ip and v.parse_ip(ip)]
            if not ips or spec.get("hostNetwork"):
                continue
            for ip in ips:
                b.address(f"{dashed(ip)}.{ns}.pod.{origin}", ip)
            hostname, subdomain = spec.get("hostname"), spec.get("subdomain")
            if hostname and subdomain and (ns, subdomain) in headless and _pod_ready(pod):
                for ip in ips:
                    b.address(f"{hostname}.{subdomain}.{ns}.svc.{origin}".lower(), ip)

        for ns in namespaces_known:
            b.node(f"{ns}.svc.{origin}".lower())
            b.node(f"{ns}.pod.{origin}".lower())

        # The apex: NS ns.dns.<zone> with kube-dns' address as glue (CoreDNS answers its own).
        dns_svc = b.nodes.get(f"kube-dns.kube-system.svc.{origin}", {})
        for qtype in (_A, _AAAA):
            for ip in dns_svc.get(qtype, []):
                b.add("ns.dns." + origin, qtype, ip)
        b.add(origin, _NS, "ns.dns." + origin)

        if serial is None:
            serial = max((_rv(o) for o in (*services, *endpoint_slices, *pods,
                                           *namespace_objs)), default=0)
        nodes, extra = cls._finish(b, origin, ttl)
        rnodes, _ = cls._finish(rev, origin, ttl)
        zone = cls(domain, ttl, serial, nodes, extra, frozenset(namespaces_known), rnodes)
        zone.skipped = skipped
        return zone

    @staticmethod
    def _headless(b: _Builder, rev: _Builder, svc_fqdn: str, slices: list[dict]) -> None:
        """One A per ready endpoint, a name per endpoint, SRV per endpoint x named port."""
        for es in slices:
            ports = [p for p in es.get("ports") or [] if p.get("port")]
            for ep in es.get("endpoints") or []:
                if not _ready(ep):
                    continue
                for ip in ep.get("addresses") or []:
                    if not v.parse_ip(ip):
                        continue
                    ep_fqdn = f"{ep.get('hostname') or dashed(ip)}.{svc_fqdn}".lower()
                    b.address(svc_fqdn, ip)
                    b.address(ep_fqdn, ip)
                    rev.add(reverse_name(ip), _PTR, ep_fqdn)
                    for port in ports:
                        proto = "_" + (port.get("protocol") or "TCP").lower()
                        if port.get("name"):
                            b.add_srv(f"_{port['name']}.{proto}.{svc_fqdn}".lower(),
                                      port["port"], ep_fqdn)
                        b.add_srv(svc_fqdn, port["port"], ep_fqdn)

    @staticmethod
    def _finish(b: _Builder, origin: str, ttl: int
                ) -> tuple[dict[str, dict[int, list[RR]]], dict[tuple[str, int], list[RR]]]:
        makers = {_A: A, _AAAA: AAAA, _CNAME: CNAME, _PTR: PTR, _NS: NS, _TXT: TXT}
        nodes: dict[str, dict[int, list[RR]]] = {}
        for name, types in b.nodes.items():
            nodes[name] = {}
            for qtype, values in types.items():
                rr_ttl = DNS_VERSION_TTL if qtype == _TXT else ttl
                nodes[name][qtype] = [RR(name, qtype, CLASS_IN, rr_ttl, makers[qtype](v))
                                      for v in values]
        extra: dict[tuple[str, int], list[RR]] = {}
        for name, values in b.srv.items():
            weight = 100 // len(values)
            nodes[name][_SRV] = [RR(name, _SRV, CLASS_IN, ttl, SRV(0, weight, port, target))
                                 for port, target in values]
            glue: list[RR] = []
            for target in dict.fromkeys(t for _, t in values):
                target_node = nodes.get(target) or {}
                glue += target_node.get(_A, []) + target_node.get(_AAAA, [])
            extra[(name, _SRV)] = glue
        ns_node = nodes.get(origin, {})
        if _NS in ns_node:
            target = nodes.get("ns.dns." + origin) or {}
            extra[(origin, _NS)] = target.get(_A, []) + target.get(_AAAA, [])
        return nodes, extra

    # --------------------------------------------------------------- answering
    def in_zone(self, name: str) -> bool:
        """True for names this zone is authoritative for (lower case, trailing dot)."""
        return name == self.origin or name.endswith("." + self.origin)

    def answer(self, request: DNSRecord) -> DNSRecord | None:
        """The reply to `request`, or None when the name is not ours (forward or REFUSE)."""
        reply = self._answer(request)
        if reply is not None:
            reply.set_header_qa()  # section counts: records are appended to the lists directly
        return reply

    def _answer(self, request: DNSRecord) -> DNSRecord | None:
        q = request.q
        if q.qclass not in (CLASS_IN, CLASS_ANY):
            return None
        qname = str(q.qname)
        lname = qname.lower()
        if not lname.endswith("."):
            lname += "."
        qtype = q.qtype
        if self.in_zone(lname):
            zone = self.origin
            node = self.nodes.get(lname)
            if node is None and lname.endswith(self._pod_suffix):
                node = self._insecure_pod(lname)
        else:
            # Reverse names: authoritative only for addresses we know (kubeadm's Corefile has
            # `fallthrough in-addr.arpa ip6.arpa`, so unknown ones go to the forwarder).
            node = self.reverse.get(lname)
            if node is None:
                return None
            zone = "in-addr.arpa." if lname.endswith("in-addr.arpa.") else "ip6.arpa."
        reply = request.reply()
        if node is None:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa[zone])
            return reply
        if lname == zone and qtype in (_SOA, _ANY):
            self._add(reply, qname, lname, [self._soa[zone]])
            if qtype == _SOA:
                return reply
        cname = node.get(_CNAME)
        if cname and qtype != _CNAME:
            self._add(reply, qname, lname, cname)
            # Chase a target inside the zone (CoreDNS "external to internal service").
            target = str(cname[0].rdata.label).lower()
            target_rrs = (self.nodes.get(target) or {}).get(qtype) if self.in_zone(target) else None
            if target_rrs:
                reply.rr.extend(target_rrs)
            return reply
        rrs = [rr for rrs in node.values() for rr in rrs] if qtype == _ANY else node.get(qtype)
        if not rrs:
            if not reply.rr:
                reply.add_auth(self._soa[zone])
            return reply
        self._add(reply, qname, lname, rrs)
        for rr in self.extra.get((lname, qtype), ()):
            reply.add_ar(rr)
        return reply

    @staticmethod
    def _add(reply: DNSRecord, qname: str, lname: str, rrs: Iterable[RR]) -> None:
        if qname == lname:
            reply.rr.extend(rrs)
        else:  # echo the question's spelling (case, missing trailing dot) in owner names
            reply.rr.extend(RR(qname, rr.rtype, rr.rclass, rr.ttl, rr.rdata) for rr in rrs)

    def _insecure_pod(self, lname: str) -> dict[int, list[RR]] | None:
        """`pods insecure`: any well-formed `a-b-c-d.<ns>.pod.<zone>` in a known namespace."""
        label, _, rest = lname.partition(".")
        ns = rest[: -len(self._pod_suffix)]
        if not ns or "." in ns or ns not in self.namespaces:
            return None
        parts = label.split("-")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
            return None
        ip = ".".join(str(int(p)) for p in parts)
        if v.parse_ip(ip) is None:
            return None
        return {_A: [RR(lname, _A, CLASS_IN, self.ttl, A(ip))]}

    # ----------------------------------------------------------------- helpers
    def names(self) -> list[str]:
        """Every owner name (forward and reverse), sorted: for golden files and debugging."""
        return sorted([*self.nodes, *self.reverse])

    def render(self) -> str:
        """The zone as master-file text (stable order), for `rules/` golden files."""
        lines = [str(self._soa[self.origin])]
        for table in (self.nodes, self.reverse):
            for name in sorted(table):
                for qtype in sorted(table[name]):
                    lines.extend(str(rr) for rr in table[name][qtype])
        return "\n".join(lines) + "\n"
