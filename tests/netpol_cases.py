"""Upstream's NetworkPolicy cases (test/e2e/network/netpol/network_policy.go) as data, for
the real-cluster matrix (tests/e2e/test_netpol_matrix.py) and the offline one through the
packet-flow interpreter (tests/unit/test_netpol_cases.py): the same steps, the same
expectations, judged by real packets in one and by the rendered rules in the other.

The model: namespaces x, y, z labelled `ns: <name>` (and kubernetes.io/metadata.name),
pods a, b, c in each labelled `pod: <name>`, each serving TCP and UDP on 80 and 81 (ports
named serve-80-tcp, ...). A case is a function of the model (`m.ips`: "x/a" -> pod IP)
returning its steps; a step is ([actions], expectation), the expectation a function
(source, destination, port, proto) -> allowed, for every pair of distinct model pods.
Actions: ("create"|"update", policy) | ("delete", "ns/name") |
("label-pod"|"label-ns", "ns/pod" or "ns", the object's whole new label set).
"""

from __future__ import annotations

from collections.abc import Callable

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = [(80, "tcp"), (81, "tcp"), (80, "udp"), (81, "udp")]


def netpol(name: str, ns: str = "x", **spec) -> dict:
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def nsof(k: str) -> str:
    return k.split("/")[0]


def podof(k: str) -> str:
    return k.split("/")[1]


def ns_sel(**labels) -> dict:
    return {"namespaceSelector": {"matchLabels": labels}}


def pod_sel(**labels) -> dict:
    return {"podSelector": {"matchLabels": labels}}


A = Callable[[str, str, int, str], bool]
ALL: A = lambda s, d, port, proto: True  # noqa: E731


def only_to(target: str, allow_in: A) -> A:
    """Everything, except that `target` ("x/a" or "x") accepts only what `allow_in` says."""
    def f(s, d, port, proto):
        hit = d == target or nsof(d) == target
        return allow_in(s, d, port, proto) if hit else True
    return f


def only_from(source: str, allow_out: A) -> A:
    def f(s, d, port, proto):
        hit = s == source or nsof(s) == source
        return allow_out(s, d, port, proto) if hit else True
    return f


# Each case: a list of steps; a step is ([actions], expectation). An action is
# ("create"|"update", policy) | ("delete", "ns/name") | ("label-pod"|"label-ns", key, labels)
# (labels: the object's whole new label set). `ips` cases get the model first.
CASES: dict[str, Callable] = {
    "default-deny-ingress": lambda m: [
        ([("create", netpol("deny-ingress", policyTypes=["Ingress"]))],
         lambda s, d, port, proto: nsof(d) != "x")],
    "default-deny-all": lambda m: [
        ([("create", netpol("deny-all", policyTypes=["Ingress", "Egress"]))],
         lambda s, d, port, proto: nsof(d) != "x" and nsof(s) != "x")],
    "pod-selector-in-own-namespace": lambda m: [
        ([("create", netpol("x-a-allows-x-b", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"from": [pod_sel(pod="b")]}]))],
         only_to("x/a", lambda s, d, port, proto: s == "x/b"))],
    "allow-ingress-to-one-target-beside-deny": lambda m: [
        ([("create", netpol("deny-all", policyTypes=["Ingress"])),
          ("create", netpol("allow-all-to-a", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}]))],
         lambda s, d, port, proto: nsof(d) != "x" or podof(d) == "a")],
    "namespace-selector-default-label": lambda m: [
        ([("create", netpol("from-y", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [ns_sel(**{"kubernetes.io/metadata.name": "y"})]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) == "y"))],
    "pod-and-namespace-selector-in-one-peer-is-an-and": lambda m: [
        ([("create", netpol("ns-and-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [{"namespaceSelector": {"matchExpressions": [
                {"key": "ns", "operator": "NotIn", "values": ["x"]}]},
                "podSelector": {"matchExpressions": [
                    {"key": "pod", "operator": "In", "values": ["b", "c"]}]}}]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) != "x" and podof(s) in ("b", "c")))],
    "pod-or-namespace-selector-as-two-peers-is-an-or": lambda m: [
        ([("create", netpol("ns-or-pod", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [{"namespaceSelector": {"matchExpressions": [
                {"key": "ns", "operator": "NotIn", "values": ["x"]}]}},
                pod_sel(pod="b")]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) != "x" or s == "x/b"))],
    "ports-81-tcp-from-y": lambda m: [
        ([("create", netpol("y-on-81", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [ns_sel(ns="y")], "ports": [{"port": 81, "protocol": "TCP"}]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) == "y" and (port, proto) == (81, "tcp")))],
    "protocol-only-tcp": lambda m: [
        ([("create", netpol("tcp-only", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"ports": [{"protocol": "TCP"}]}]))],
         only_to("x/a", lambda s, d, port, proto: proto == "tcp"))],
    "end-port-range-udp": lambda m: [
        ([("create", netpol("range", ingress=[{"ports": [
            {"port": 81, "endPort": 90, "protocol": "UDP"}]}]))],
         only_to("x", lambda s, d, port, proto: (port, proto) == (81, "udp")))],
    "named-port-ingress-from-namespace": lambda m: [
        ([("create", netpol("named", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [ns_sel(ns="y")], "ports": [{"port": "serve-80-tcp"}]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) == "y" and (port, proto) == (80, "tcp")))],
    "named-port-udp-81": lambda m: [
        ([("create", netpol("named", ingress=[{"ports": [
            {"port": "serve-81-udp", "protocol": "UDP"}]}]))],
         only_to("x", lambda s, d, port, proto: (port, proto) == (81, "udp")))],
    "named-port-egress": lambda m: [
        ([("create", netpol("egress-named", policyTypes=["Egress"], egress=[
            {"ports": [{"port": "serve-80-tcp"}]}]))],
         only_from("x", lambda s, d, port, proto: (port, proto) == (80, "tcp")))],
    "stacked-policies-and-one-more-unblocks-80": lambda m: [
        ([("create", netpol("y-on-81", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
            {"from": [ns_sel(ns="y")], "ports": [{"port": 81}]}]))],
         only_to("x/a", lambda s, d, port, proto: nsof(s) == "y" and (port, proto) == (81, "tcp"))),
         ([("create", netpol("y-on-80", podSelector={"matchLabels": {"pod": "a"}}, ingress=[
             {"from": [ns_sel(ns="y")], "ports": [{"port": 80}]}]))],
          only_to("x/a", lambda s, d, port, proto: nsof(s) == "y" and proto == "tcp"))],
    "allow-all-ingress-takes-precedence": lambda m: [
        ([("create", netpol("port-80", ingress=[{"ports": [{"port": 80}]}]))],
         only_to("x", lambda s, d, port, proto: (port, proto) == (80, "tcp"))),
        ([("create", netpol("allow-all", ingress=[{}]))], ALL)],
    "allow-all-egress-takes-precedence": lambda m: [
        ([("create", netpol("egress-80", policyTypes=["Egress"], egress=[{"ports": [{"port": 80}]}]))],
         only_from("x", lambda s, d, port, proto: (port, proto) == (80, "tcp"))),
        ([("create", netpol("egress-all", policyTypes=["Egress"], egress=[{}]))], ALL)],
    "updated-policy-allow-all-to-deny-all": lambda m: [
        ([("create", netpol("mutate", ingress=[{}]))], ALL),
        ([("update", netpol("mutate", ingress=[]))], lambda s, d, port, proto: nsof(d) != "x")],
    "updated-namespace-labels": lambda m: [
        ([("create", netpol("from-ns2", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"from": [ns_sel(ns2="updated")]}]))],
         only_to("x/a", lambda s, d, port, proto: False)),
        ([("label-ns", "y", {"ns": "y", "ns2": "updated"})],
         only_to("x/a", lambda s, d, port, proto: nsof(s) == "y"))],
    "updated-pod-labels-allow-then-isolate": lambda m: [
        ([("create", netpol("from-b-updated", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"from": [pod_sel(pod="b", pod2="updated")]}])),
          ("create", netpol("isolate-target", podSelector={"matchLabels": {"target": "isolated"}},
                            policyTypes=["Ingress"]))],
         only_to("x/a", lambda s, d, port, proto: False)),
        ([("label-pod", "x/b", {"pod": "b", "pod2": "updated"}),
          ("label-pod", "x/c", {"pod": "c", "target": "isolated"})],
         lambda s, d, port, proto: (s == "x/b" if d == "x/a" else d != "x/c"))],
    "deny-ingress-from-other-namespaces": lambda m: [
        ([("create", netpol("same-ns", ingress=[{"from": [{"podSelector": {}}]}]))],
         only_to("x", lambda s, d, port, proto: nsof(s) == "x"))],
    "deny-egress-pod-a-and-whole-namespace-x": lambda m: [
        ([("create", netpol("deny-a", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"]))],
         only_from("x/a", lambda s, d, port, proto: False)),
        ([("create", netpol("deny-x", policyTypes=["Egress"]))],
         only_from("x", lambda s, d, port, proto: False))],
    "ingress-and-egress-together": lambda m: [
        ([("create", netpol("both", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress", "Ingress"],
                            ingress=[{"from": [pod_sel(pod="b")]}],
                            egress=[{"ports": [{"port": 80}]}]))],
         lambda s, d, port, proto: (s == "x/b" if d == "x/a" else
                                    (port, proto) == (80, "tcp") if s == "x/a" else True))],
    "egress-denied-on-the-client-though-the-server-allows": lambda m: [
        ([("create", netpol("to-y-a", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"],
                            egress=[{"to": [{**ns_sel(ns="y"), **pod_sel(pod="a")}]}])),
          ("create", netpol("from-x-a", ns="y", podSelector={"matchExpressions": [
              {"key": "pod", "operator": "In", "values": ["a", "b"]}]},
              ingress=[{"from": [{**ns_sel(ns="x"), **pod_sel(pod="a")}]}]))],
         # x/a may send only to y/a; y/a and y/b accept only x/a
         lambda s, d, port, proto: (d == "y/a" if s == "x/a" else d not in ("y/a", "y/b")))],
    "egress-namespace-not-in-y": lambda m: [
        ([("create", netpol("not-y", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"], egress=[{"to": [{"namespaceSelector": {
                                "matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                      "operator": "NotIn", "values": ["y"]}]}}]}]))],
         only_from("x/a", lambda s, d, port, proto: nsof(d) != "y"))],
    "egress-cidr-then-except-then-both": lambda m: [
        ([("create", netpol("cidr", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"],
                            egress=[{"to": [{"ipBlock": {"cidr": f"{m.ips['y/b']}/32"}}]}]))],
         only_from("x/a", lambda s, d, port, proto: d == "y/b")),
        ([("update", netpol("cidr", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"], egress=[{"to": [{"ipBlock": {
                                "cidr": "10.244.0.0/16", "except": [f"{m.ips['x/b']}/32"]}}]}]))],
         only_from("x/a", lambda s, d, port, proto: d != "x/b")),
        ([("create", netpol("cidr-b", podSelector={"matchLabels": {"pod": "a"}},
                            policyTypes=["Egress"],
                            egress=[{"to": [{"ipBlock": {"cidr": f"{m.ips['x/b']}/32"}}]}]))],
         ALL)],
    "sctp-only-policies-isolate-tcp-and-udp": lambda m: [
        ([("create", netpol("deny-ingress", policyTypes=["Ingress"])),
          ("create", netpol("sctp-81", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"ports": [{"port": 81, "protocol": "SCTP"}]}]))],
         lambda s, d, port, proto: nsof(d) != "x")],
    "udp-only-policy-does-not-allow-tcp": lambda m: [
        ([("create", netpol("udp-81", podSelector={"matchLabels": {"pod": "a"}},
                            ingress=[{"ports": [{"port": 81, "protocol": "UDP"}]}]))],
         only_to("x/a", lambda s, d, port, proto: (port, proto) == (81, "udp")))],
    "policy-deleted-mid-test": lambda m: [
        ([("create", netpol("deny-all", policyTypes=["Ingress", "Egress"]))],
         lambda s, d, port, proto: nsof(d) != "x" and nsof(s) != "x"),
        ([("delete", "x/deny-all")], ALL)],
}
