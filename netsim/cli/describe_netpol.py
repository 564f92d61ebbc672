"""`describe networkpolicy`: describeNetworkPolicy of kubectl's ``pkg/describe/describe.go``
(the spec as "Allowing ingress traffic" / "Allowing egress traffic" sections), on
netsim.cli.describe's writer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netsim.api.printing.format import meta_of, spec_of
from netsim.api.printing.printers import format_label_selector
from netsim.api.timeutil import parse_rfc3339
from netsim.cli.describe import _annotations_multiline, _labels_multiline, _PrefixWriter

INDENT = "    "


def _go_time(ts: str | None) -> str:
    """metav1.Time's %s (time.Time.String): `2026-01-01 00:00:05 +0000 UTC`."""
    if not ts:
        return "0001-01-01 00:00:00 +0000 UTC"
    t = parse_rfc3339(ts)
    return t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC") if t else ts


def _ports(w: _PrefixWriter, ports: list) -> None:
    if not ports:
        w.write(0, f"{INDENT}To Port: <any> (traffic allowed to all ports)\n")
        return
    for p in ports:
        proto = p.get("protocol") or "TCP"
        port = "<nil>" if p.get("port") is None else str(p["port"])
        if p.get("endPort") is None:
            w.write(0, f"{INDENT}To Port: {port}/{proto}\n")
        else:
            w.write(0, f"{INDENT}To Port Range: {port}-{p['endPort']}/{proto}\n")


def _peers(w: _PrefixWriter, peers: list, word: str, unrestricted: str) -> None:
    if not peers:
        w.write(0, f"{INDENT}{word}: <any> (traffic not restricted by {unrestricted})\n")
        return
    for peer in peers:
        w.write(0, f"{INDENT}{word}:\n")
        pod, ns, block = peer.get("podSelector"), peer.get("namespaceSelector"), peer.get("ipBlock")
        if pod is not None and ns is not None:
            w.write(1, f"{INDENT}NamespaceSelector: {format_label_selector(ns)}\n")
            w.write(1, f"{INDENT}PodSelector: {format_label_selector(pod)}\n")
        elif pod is not None:
            w.write(1, f"{INDENT}PodSelector: {format_label_selector(pod)}\n")
        elif ns is not None:
            w.write(1, f"{INDENT}NamespaceSelector: {format_label_selector(ns)}\n")
        elif block is not None:
            w.write(1, f"{INDENT}IPBlock:\n")
            w.write(2, f"{INDENT}CIDR: {block.get('cidr', '')}\n")
            w.write(2, f"{INDENT}Except: {', '.join(block.get('except') or [])}\n")


def _rules(w: _PrefixWriter, rules: list, direction: str) -> None:
    peer_key, word, unrestricted = (("from", "From", "source") if direction == "ingress"
                                    else ("to", "To", "destination"))
    if not rules:
        w.write(0, f"{INDENT}<none> (Selected pods are isolated for {direction} connectivity)\n")
        return
    for i, rule in enumerate(rules):
        _ports(w, rule.get("ports") or [])
        _peers(w, rule.get(peer_key) or [], word, unrestricted)
        if i != len(rules) - 1:
            w.write(0, f"{INDENT}----------\n")


def describe_networkpolicy(np: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec = meta_of(np), spec_of(np)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"Created on:\t{_go_time(meta.get('creationTimestamp'))}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, "Spec:\n")
    w.write(1, "PodSelector: ")
    sel = spec.get("podSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        w.write(2, "<none> (Allowing the specific traffic to all pods in this namespace)\n")
    else:
        w.write(2, f"{format_label_selector(sel)}\n")
    types = spec.get("policyTypes") or []
    for direction, name in (("ingress", "Ingress"), ("egress", "Egress")):
        if name in types:
            w.write(1, f"Allowing {direction} traffic:\n")
            _rules(w, spec.get(direction) or [], direction)
        else:
            w.write(1, f"Not affecting {direction} traffic\n")
    w.write(1, f"Policy Types: {', '.join(types)}\n")
    return w.text()
