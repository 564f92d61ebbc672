"""The cluster DNS add-on, as kubeadm installs it: ConfigMap + Deployment `coredns`, Service `kube-dns`.

`install(client, cfg)` is called by `cluster up` (netsim/cluster/addons.py) from the control
plane. It only creates: objects that already exist are left alone (AlreadyExists is fine),
so a user's edits to the Corefile survive a control-plane restart.

The pods run `registry.k8s.io/coredns/coredns`, which the image catalog maps to
`python -m netsim.dns --configmap kube-system/coredns`: the server reads its Corefile from
that ConfigMap through the API and watches it (there are no volumes in netsim).
"""

from __future__ import annotations

import contextlib
import logging

from netsim.api import errors

log = logging.getLogger("netsim.dns.addon")

NAMESPACE = "kube-system"
IMAGE = "registry.k8s.io/coredns/coredns:v1.11.1"
LABELS = {"k8s-app": "kube-dns"}
HEALTH_PORT = 8080  # CoreDNS `health` plugin: liveness
READY_PORT = 8181  # CoreDNS `ready` plugin: readiness
METRICS_PORT = 9153  # CoreDNS `prometheus` plugin


def corefile(domain: str = "cluster.local", ttl: int = 30) -> str:
    """kubeadm's Corefile, minus the forwarder (there is no outside network to forward to)."""
    return f""".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl {ttl}
    }}
    prometheus :{METRICS_PORT}
    # kubeadm forwards every other name to the node's resolver:
    #   forward . /etc/resolv.conf {{
    #      max_concurrent 1000
    #   }}
    # A netsim cluster has no outside network, so there is no forwarder by default and
    # names outside {domain} are answered REFUSED at once (never a hang). To forward to
    # a resolver reachable from the pods, add a line such as `forward . 10.0.0.2`.
    cache 30
    loop
    reload
    loadbalance
}}
"""


def configmap(cfg) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": NAMESPACE},
            "data": {"Corefile": corefile(cfg.cluster_domain)}}


def deployment(cfg) -> dict:
    """kubeadm's coredns Deployment (manifests.go), with netsim's image mapping."""
    container = {
        "name": "coredns",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "170Mi"},
                      "requests": {"cpu": "100m", "memory": "70Mi"}},
        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                  {"containerPort": METRICS_PORT, "name": "metrics", "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": HEALTH_PORT, "scheme": "HTTP"},
                          "initialDelaySeconds": 60, "timeoutSeconds": 5, "periodSeconds": 10,
                          "successThreshold": 1, "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": READY_PORT, "scheme": "HTTP"},
                           "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                           "failureThreshold": 3},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane",
                         "effect": "NoSchedule"},
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [container],
                    # CoreDNS itself resolves through the node, not through itself.
                    "dnsPolicy": "Default",
                },
            },
        },
    }


def service(cfg) -> dict:
    """Service `kube-dns` as `describe svc kube-dns` shows it in the seed."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": "kube-dns", "namespace": NAMESPACE,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                       "kubernetes.io/name": "KubeDNS"},
            "annotations": {"prometheus.io/port": str(METRICS_PORT),
                            "prometheus.io/scrape": "true"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cfg.dns_ip,
            "selector": dict(LABELS),
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                      {"name": "metrics", "port": METRICS_PORT, "protocol": "TCP",
                       "targetPort": METRICS_PORT}],
        },
    }


def objects(cfg) -> list[dict]:
    """In creation order: the config first so the pods find it at start."""
    return [configmap(cfg), service(cfg), deployment(cfg)]


def install(client, cfg) -> None:
    """Create the add-on's objects; existing ones (a restart, a user's edit) are kept."""
    for obj in objects(cfg):
        with contextlib.suppress(errors.AlreadyExists):
            client.create(obj)
            log.info("dns add-on: %s %s/%s created", obj["kind"], NAMESPACE,
                     obj["metadata"]["name"])
