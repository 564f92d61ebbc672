"""Ingresses and IngressClasses: conversion of old API versions, defaults and validation.

The seed writes `extensions/v1beta1` Ingresses (removed in Kubernetes 1.22). The apiserver
stores every Ingress as networking.k8s.io/v1 whatever version it was written in;
`Store.create` runs admission before it stamps apiVersion v1, so the defaulter still sees
the old version and converts `serviceName`/`servicePort`/`spec.backend` here. Validation
reproduces k8s.io/kubernetes pkg/apis/networking/validation word for word, so `netsim
apply` prints what kubectl prints; the ingress controller re-checks with the same code
(netsim.ingress.model re-exports it). The DefaultIngressClass admission plug-in is an
allocator because it needs the store: a new Ingress that names no class gets the
IngressClass annotated `ingressclass.kubernetes.io/is-default-class: "true"`.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any

from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.resources import DEPRECATED

V1 = "networking.k8s.io/v1"

# apiVersion -> the warning an old Ingress version gets (netsim.api.resources.DEPRECATED)
DEPRECATED_VERSIONS = {api: f"Warning: {text}" for (api, kind), text in DEPRECATED.items()
                       if kind == "Ingress"}

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")

_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


# --------------------------------------------------------------------------- conversion


def _convert_backend(backend: Any) -> Any:
    """v1beta1 {serviceName, servicePort} -> v1 {service: {name, port: {number|name}}}."""
    if not isinstance(backend, dict):
        return backend
    out = {k: v for k, v in backend.items() if k not in ("serviceName", "servicePort")}
    if "serviceName" in backend or "servicePort" in backend:
        port = backend.get("servicePort")
        port_ref: dict[str, Any] = {}
        if isinstance(port, bool) or port is None:
            pass
        elif isinstance(port, int):
            port_ref["number"] = port
        elif isinstance(port, str) and port.isdigit():
            port_ref["number"] = int(port)
        elif isinstance(port, str) and port:
            port_ref["name"] = port
        out["service"] = {"name": backend.get("serviceName") or "", "port": port_ref}
    return out


def normalize_ingress(obj: dict) -> tuple[dict, list[str]]:
    """Return (v1 Ingress, warnings). v1 objects come back as an unchanged deep copy.

    Old paths get pathType ImplementationSpecific, as the apiserver defaulted them.
    """
    out = copy.deepcopy(obj)
    version = obj.get("apiVersion", "")
    warning = DEPRECATED_VERSIONS.get(version)
    if warning is None:
        return out, []
    out["apiVersion"] = V1
    spec = out.get("spec")
    if isinstance(spec, dict):
        if "backend" in spec:
            spec["defaultBackend"] = _convert_backend(spec.pop("backend"))
        for rule in spec.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            http = rule.get("http")
            if not isinstance(http, dict):
                continue
            for path in http.get("paths") or []:
                if not isinstance(path, dict):
                    continue
                path.setdefault("pathType", "ImplementationSpecific")
                if "backend" in path:
                    path["backend"] = _convert_backend(path["backend"])
    return out, [warning]


# --------------------------------------------------------------------------- validation


def _quote(value: Any) -> str:
    """Go's %v / %q rendering of an invalid value in a field error."""
    return v.go_value(value)


def _invalid(field: str, value: Any, detail: str) -> str:
    return f"{field}: Invalid value: {_quote(value)}: {detail}"


def _required(field: str, detail: str = "") -> str:
    return f"{field}: Required value: {detail}" if detail else f"{field}: Required value"


def _not_supported(field: str, value: Any, supported: tuple[str, ...]) -> str:
    values = ", ".join(_quote(v) for v in supported)
    return f"{field}: Unsupported value: {_quote(value)}: supported values: {values}"


def dns1123_subdomain_errors(value: str) -> list[str]:
    return v.is_dns1123_subdomain(value)


def wildcard_subdomain_errors(value: str) -> list[str]:
    return v.is_wildcard_dns1123_subdomain(value)


def _backend_errors(backend: Any, fld: str) -> list[str]:
    if not isinstance(backend, dict):
        backend = {}
    has_resource = backend.get("resource") is not None
    service = backend.get("service")
    has_service = service is not None
    if has_resource and has_service:
        return [_invalid(fld, "", "cannot set both resource and service backends")]
    if has_resource:
        res = backend["resource"] if isinstance(backend["resource"], dict) else {}
        errs = []
        if not res.get("kind"):
            errs.append(_required(f"{fld}.resource.kind"))
        if not res.get("name"):
            errs.append(_required(f"{fld}.resource.name"))
        return errs
    if not has_service:
        return [_invalid(fld, "", "resource or service backend is required")]
    if not isinstance(service, dict):
        service = {}
    errs = []
    name = service.get("name") or ""
    if not name:
        errs.append(_required(f"{fld}.service.name"))
    else:
        errs.extend(_invalid(f"{fld}.service.name", name, m) for m in v.is_dns1035_label(name))
    port = service.get("port") if isinstance(service.get("port"), dict) else {}
    pname = port.get("name") or ""
    pnum = port.get("number") or 0
    if pname and pnum:
        errs.append(_invalid(fld, "", "cannot set both port name & port number"))
    elif pname:
        for msg in v.is_valid_port_name(str(pname)):
            errs.append(_invalid(f"{fld}.service.port.name", pname, msg))
    elif pnum:
        if not isinstance(pnum, int) or not 1 <= pnum <= 65535:
            errs.append(
                _invalid(f"{fld}.service.port.number", pnum, "must be between 1 and 65535, inclusive")
            )
    else:
        errs.append(_required(fld, "port name or number is required"))
    return errs


def _path_errors(path: Any, fld: str) -> list[str]:
    if not isinstance(path, dict):
        path = {}
    path_type = path.get("pathType")
    if path_type is None:
        return [_required(f"{fld}.pathType", "pathType must be specified")]
    value = path.get("path") or ""
    errs: list[str] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(_invalid(f"{fld}.path", value, "must be an absolute path"))
        if value:
            for seq in _INVALID_PATH_SEQUENCES:
                if seq in value:
                    errs.append(_invalid(f"{fld}.path", value, f"must not contain '{seq}'"))
            for suffix in _INVALID_PATH_SUFFIXES:
                if value.endswith(suffix):
                    errs.append(_invalid(f"{fld}.path", value, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(_invalid(f"{fld}.path", value, "must be an absolute path"))
    else:
        errs.append(_not_supported(f"{fld}.pathType", path_type, PATH_TYPES))
    errs.extend(_backend_errors(path.get("backend"), f"{fld}.backend"))
    return errs


def _host_errors(host: str, fld: str) -> list[str]:
    errs = []
    try:
        ipaddress.ip_address(host)
        errs.append(_invalid(fld, host, "must be a DNS name, not an IP address"))
    except ValueError:
        pass
    check = wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
    errs.extend(_invalid(fld, host, msg) for msg in check(host))
    return errs


def ingress_field_errors(obj: dict) -> list[str]:
    """The apiserver's field errors (`<field>: <type>: <detail>`) for a v1 Ingress.

    Older versions are converted first, as the apiserver would.
    """
    obj, _ = normalize_ingress(obj)
    errs: list[str] = []
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or ""
    if not name and not meta.get("generateName"):
        errs.append(_required("metadata.name", "name or generateName is required"))
    elif name:
        errs.extend(_invalid("metadata.name", name, m) for m in dns1123_subdomain_errors(name))
    namespace = meta.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str):
            errs.append(_invalid("metadata.namespace", namespace, v.LABEL_MSG))
        else:
            errs.extend(_invalid("metadata.namespace", namespace, m)
                        for m in v.is_dns1123_label(namespace))
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    rules = spec.get("rules") or []
    default = spec.get("defaultBackend")
    if not rules and default is None:
        # Go prints the nil slice with %#v
        errs.append(
            "spec: Invalid value: []networking.IngressRule(nil): "
            "either `defaultBackend` or `rules` must be specified"
        )
    if default is not None:
        errs.extend(_backend_errors(default, "spec.defaultBackend"))
    for i, rule in enumerate(rules):
        rule = rule if isinstance(rule, dict) else {}
        host = rule.get("host") or ""
        if host:
            errs.extend(_host_errors(host, f"spec.rules[{i}].host"))
        http = rule.get("http")
        if isinstance(http, dict):
            paths = http.get("paths") or []
            if not paths:
                errs.append(_required(f"spec.rules[{i}].http.paths"))
            for j, path in enumerate(paths):
                errs.extend(_path_errors(path, f"spec.rules[{i}].http.paths[{j}]"))
    for i, tls in enumerate(spec.get("tls") or []):
        tls = tls if isinstance(tls, dict) else {}
        for j, host in enumerate(tls.get("hosts") or []):
            check = wildcard_subdomain_errors if "*" in host else dns1123_subdomain_errors
            errs.extend(_invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in check(host))
        secret = tls.get("secretName") or ""
        if secret:
            errs.extend(
                _invalid(f"spec.tls[{i}].secretName", secret, m)
                for m in dns1123_subdomain_errors(secret)
            )
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errs.extend(
            _invalid("spec.ingressClassName", class_name, m)
            for m in dns1123_subdomain_errors(str(class_name))
        )
    annotation = (meta.get("annotations") or {}).get("kubernetes.io/ingress.class")
    if annotation is not None and class_name is not None:
        errs.append(
            _invalid(
                "annotations.kubernetes.io/ingress.class",
                annotation,
                "can not be set when the class field is also set",
            )
        )
    return errs


def invalid_message(name: str, causes: list[str]) -> str:
    """kubectl's aggregate form: one cause bare, several in brackets."""
    if len(causes) == 1:
        return f'The Ingress "{name}" is invalid: {causes[0]}'
    return f'The Ingress "{name}" is invalid: [{", ".join(causes)}]'


def validate_ingress(obj: dict) -> list[str]:
    """Every validation error, each as a full apiserver message
    (`The Ingress "x" is invalid: <field>: <type>: <detail>`); empty when valid."""
    name = ((obj.get("metadata") or {}).get("name")) or ""
    return [invalid_message(name, [cause]) for cause in ingress_field_errors(obj)]


# --------------------------------------------------------------------------- admission

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_CONTROLLER_RE = re.compile(v.DNS1123_SUBDOMAIN_FMT + r"/[-A-Za-z0-9_.~/]+")


def _default_ingress(obj: dict, old: dict | None) -> None:
    """Convert extensions/v1beta1 and networking.k8s.io/v1beta1 to v1 in place."""
    converted, _ = normalize_ingress(obj)
    if converted != obj:
        obj.clear()
        obj.update(converted)


def _validate_ingress(obj: dict, old: dict | None) -> list[str]:
    # metadata is checked by validate_object_meta; do not report it twice
    return [c for c in ingress_field_errors(obj)
            if not c.startswith(("metadata.name:", "metadata.namespace:"))]


def is_default_class(ic: dict) -> bool:
    anns = (ic.get("metadata") or {}).get("annotations") or {}
    return str(anns.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"


def _default_class(store, obj: dict, old: dict | None) -> None:
    """DefaultIngressClass admission: only on create, only when no class is named."""
    if old is not None:
        return
    spec = obj.setdefault("spec", {})
    anns = (obj.get("metadata") or {}).get("annotations") or {}
    if spec.get("ingressClassName") is not None or CLASS_ANNOTATION in anns:
        return
    classes, _ = store.list("ingressclasses")
    defaults = [c for c in classes if is_default_class(c)]
    if defaults:
        # several defaults: the newest wins, as the apiserver does since v1.30
        newest = max(defaults, key=lambda c: (c["metadata"].get("creationTimestamp") or "",
                                              c["metadata"]["name"]))
        spec["ingressClassName"] = newest["metadata"]["name"]


def _validate_ingress_class(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") or {}
    causes = []
    ctrl = spec.get("controller") or ""
    if not ctrl:
        causes.append("spec.controller: Required value")
    else:
        if len(ctrl) > 250:
            causes.append('spec.controller: Too long: may not be longer than 250')
        if not _CONTROLLER_RE.fullmatch(ctrl):
            causes.append(v.invalid("spec.controller", ctrl, 'must be a domain-prefixed path '
                                    '(such as "acme.io/foo")'))
    if old is not None:
        old_ctrl = (old.get("spec") or {}).get("controller")
        if old_ctrl != spec.get("controller"):
            causes.append(v.invalid("spec.controller", ctrl, "field is immutable"))
    params = spec.get("parameters")
    if isinstance(params, dict):
        if not params.get("kind"):
            causes.append("spec.parameters.kind: Required value")
        if not params.get("name"):
            causes.append("spec.parameters.name: Required value")
        scope = params.get("scope")
        if scope is not None and scope not in ("Cluster", "Namespace"):
            causes.append(v.unsupported("spec.parameters.scope", scope, ("Cluster", "Namespace")))
        ns = params.get("namespace")
        if scope == "Namespace" and not ns:
            causes.append('spec.parameters.namespace: Required value: `parameters.scope` is '
                          'set to "Namespace"')
        elif ns and scope != "Namespace":
            causes.append('spec.parameters.namespace: Forbidden: `parameters.scope` is set to '
                          '"Cluster"')
        elif ns:
            causes.extend(v.dns1123_subdomain(ns, "spec.parameters.namespace"))
    return causes


def _default_ingress_class(obj: dict, old: dict | None) -> None:
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        params.setdefault("scope", "Cluster")


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Ingress", defaulter=_default_ingress, validator=_validate_ingress,
            allocator=_default_class)
    reg.add("IngressClass", defaulter=_default_ingress_class, validator=_validate_ingress_class)
