"""Golden files of `netsim topology`: rules/topology/{model.json, topology.dot, topology.svg}.

    python -m netsim.inspect.topology_golden           # rewrite them
    python -m netsim.inspect.topology_golden --check   # compare only (tests/unit/test_topology.py)

The model is built from a fixed set of API objects written here (the seed's kind of
cluster: three nodes, a two-replica Deployment behind a NodePort Service, a pod not ready
yet, one not scheduled, the ingress controller on the host network, an Ingress with TLS,
two NetworkPolicies) and a fixed `netsim trace -o json` document, so the files show what
each renderer draws and change only when a renderer or the model builder does.
"""

from __future__ import annotations

import argparse
import os
import sys

from netsim.golden import write_or_check
from netsim.inspect.topology import build_model
from netsim.inspect.topology_render import render_dot, render_json, render_svg
from netsim.net.topology import ClusterConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "rules", "topology")
REGEN = "python -m netsim.inspect.topology_golden"


def _node(name: str, ip: str, cidr: str, ready: bool = True, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _pod(ns: str, name: str, node: str | None, ip: str | None, ready: bool, labels: dict,
         phase: str = "Running", host_network: bool = False, owner: str | None = None) -> dict:
    md: dict = {"name": name, "namespace": ns, "labels": labels}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                  "controller": True}]
    spec: dict = {"containers": [{"name": "c", "image": "netsim/echo"}]}
    if node:
        spec["nodeName"] = node
    if host_network:
        spec["hostNetwork"] = True
    status: dict = {"phase": phase,
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def _svc(ns: str, name: str, ip: str, ports: list[dict], selector: dict | None = None,
         type_: str = "ClusterIP") -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": type_, "clusterIP": ip, "selector": selector, "ports": ports}}


def _slice(ns: str, svc: str, port: int, eps: list[tuple[str, str | None, str, bool]]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{svc}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "ports": [{"name": "", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           "nodeName": node,
                           **({"targetRef": {"kind": "Pod", "namespace": ns, "name": pod}}
                              if pod else {})}
                          for ip, pod, node, ready in eps]}


def fixture() -> dict:
    """The model every golden file is rendered from."""
    cfg = ClusterConfig.make(name="demo", lan="192.168.3.0/24")
    m, w1, w2 = (n.name for n in cfg.nodes)
    nodes = [_node(m, "192.168.3.171", "10.244.0.0/24",
                   **{"node-role.kubernetes.io/control-plane": ""}),
             _node(w1, "192.168.3.172", "10.244.1.0/24", ingress="true"),
             _node(w2, "192.168.3.173", "10.244.2.0/24")]
    web = {"app": "web", "pod-template-hash": "5d8f7c9b6"}
    pods = [
        _pod("default", "web-5d8f7c9b6-abcde", w1, "10.244.1.2", True, web, owner="web-5d8f7c9b6"),
        _pod("default", "web-5d8f7c9b6-fghij", w2, "10.244.2.2", True, web, owner="web-5d8f7c9b6"),
        _pod("default", "web-5d8f7c9b6-klmno", w2, "10.244.2.3", False, web,
             owner="web-5d8f7c9b6"),
        _pod("default", "client", w1, "10.244.1.3", True, {"app": "client"}),
        _pod("default", "big", None, None, False, {"app": "big"}, phase="Pending"),
        _pod("ingress-nginx", "ingress-nginx-controller-7c6d9", w1, "192.168.3.172", True,
             {"app.kubernetes.io/name": "ingress-nginx"}, host_network=True),
    ]
    services = [
        _svc("default", "kubernetes", "10.96.0.1",
             [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]),
        _svc("default", "web", "10.104.15.20",
             [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080,
               "nodePort": 30080}], {"app": "web"}, "NodePort"),
    ]
    slices = [
        _slice("default", "kubernetes", 6443, [("192.168.3.171", None, m, True)]),
        _slice("default", "web", 8080, [("10.244.1.2", "web-5d8f7c9b6-abcde", w1, True),
                                        ("10.244.2.2", "web-5d8f7c9b6-fghij", w2, True),
                                        ("10.244.2.3", "web-5d8f7c9b6-klmno", w2, False)]),
    ]
    ingresses = [{
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["web.example.com"]}],
                 "rules": [{"host": "web.example.com", "http": {"paths": [
                     {"path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}]
    policies = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "default-deny-ingress", "namespace": "default"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "allow-from-client", "namespace": "default"},
         "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}},
    ]
    trace = {
        "from": "pod/default/client", "to": "svc/default/web", "verdict": "delivered",
        "delivered_to": {"pod": "default/web-5d8f7c9b6-fghij", "ip": "10.244.2.2", "port": 8080},
        "hops": [
            {"at": "pod/default/client", "interface": "eth0", "table": "", "chain": "",
             "rule": "", "action": "send tcp 10.244.1.3 -> 10.104.15.20:80"},
            {"at": f"node/{w1}", "interface": "cni0", "table": "nat", "chain": "KUBE-SERVICES",
             "rule": "-A KUBE-SERVICES -d 10.104.15.20/32 -p tcp -m tcp --dport 80 "
                     "-j KUBE-SVC-XYZ", "action": "jump KUBE-SVC-XYZ"},
            {"at": f"node/{w1}", "interface": "eth0", "table": "", "chain": "", "rule": "",
             "action": "route 10.244.2.0/24 via 192.168.3.173"},
            {"at": f"node/{w2}", "interface": "cni0", "table": "", "chain": "", "rule": "",
             "action": "bridge to the pod's veth"},
            {"at": "pod/default/web-5d8f7c9b6-fghij", "interface": "eth0", "table": "",
             "chain": "", "rule": "", "action": "delivered to 10.244.2.2:8080"},
        ]}
    return build_model(cfg, nodes, pods, services, slices, ingresses, policies, trace=trace)


def cases() -> list[tuple[str, str]]:
    model = fixture()
    return [("model.json", render_json(model)), ("topology.dot", render_dot(model)),
            ("topology.svg", render_svg(model))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=REGEN)
    ap.add_argument("--check", action="store_true", help="compare only")
    a = ap.parse_args(argv)
    ok = all([write_or_check(os.path.join(OUT, f), t, a.check, REGEN) for f, t in cases()])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
