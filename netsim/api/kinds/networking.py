"""Ingresses and IngressClasses: conversion of old API versions, defaults and validation.

The apiserver stores every Ingress as networking.k8s.io/v1 whatever version it was written
in; `Store.create` runs admission before it stamps apiVersion v1, so the defaulter still
sees `extensions/v1beta1` and converts `serviceName`/`servicePort`/`spec.backend` here.
Validation texts are the apiserver's (netsim.ingress.model). The DefaultIngressClass
admission plug-in is an allocator because it needs the store: a new Ingress that names no
class gets the IngressClass annotated `ingressclass.kubernetes.io/is-default-class: "true"`.
"""

from __future__ import annotations

import re

from netsim.api.admission import DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, register
from netsim.ingress.model import ingress_field_errors, normalize_ingress

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
_CONTROLLER_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/[-A-Za-z0-9_.~/]+$")


def _default_ingress(obj: dict, old: dict | None) -> None:
    """Convert extensions/v1beta1 and networking.k8s.io/v1beta1 to v1 in place."""
    converted, _ = normalize_ingress(obj)
    if converted != obj:
        obj.clear()
        obj.update(converted)


def _validate_ingress(obj: dict, old: dict | None) -> list[str]:
    # metadata.name is checked by validate_metadata on create; do not report it twice
    return [c for c in ingress_field_errors(obj) if not c.startswith("metadata.name:")]


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
        if not _CONTROLLER_RE.match(ctrl):
            causes.append(f'spec.controller: Invalid value: "{ctrl}": must be a domain-prefixed '
                          "path (such as \"acme.io/foo\")")
    if old is not None:
        old_ctrl = (old.get("spec") or {}).get("controller")
        if old_ctrl != spec.get("controller"):
            causes.append(f'spec.controller: Invalid value: "{ctrl}": field is immutable')
    params = spec.get("parameters")
    if isinstance(params, dict):
        if not params.get("kind"):
            causes.append("spec.parameters.kind: Required value")
        if not params.get("name"):
            causes.append("spec.parameters.name: Required value")
        scope = params.get("scope")
        if scope is not None and scope not in ("Cluster", "Namespace"):
            causes.append(f'spec.parameters.scope: Unsupported value: "{scope}": supported '
                          'values: "Cluster", "Namespace"')
        ns = params.get("namespace")
        if scope == "Namespace" and not ns:
            causes.append('spec.parameters.namespace: Required value: `parameters.scope` is '
                          'set to "Namespace"')
        elif ns and scope != "Namespace":
            causes.append('spec.parameters.namespace: Forbidden: `parameters.scope` is set to '
                          '"Cluster"')
        elif ns and not DNS1123_SUBDOMAIN.match(ns):
            causes.append(f'spec.parameters.namespace: Invalid value: "{ns}": {SUBDOMAIN_MSG}')
    return causes


def _default_ingress_class(obj: dict, old: dict | None) -> None:
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        params.setdefault("scope", "Cluster")


register("Ingress", defaulter=_default_ingress, validator=_validate_ingress,
         allocator=_default_class)
register("IngressClass", defaulter=_default_ingress_class, validator=_validate_ingress_class)
