"""The ingress-nginx add-on `cluster up` installs: namespace, IngressClass, controller.

The controller Deployment runs with hostNetwork on nodes labelled `ingress=true` (the
seed's flow: its pod stays Pending until `netsim label node k8s-slave-172 ingress=true`),
tolerates the control-plane taint, and declares 80/443 as container ports so the scheduler
never puts two of them on one node. Nothing else netsim runs listens on a node's 80/443
(the kubelet and kube-proxy only open NodePorts, 30000-32767).
"""

from __future__ import annotations

import contextlib
import logging

from netsim.api import errors
from netsim.ingress.controller import ingress_class_object

log = logging.getLogger("netsim.addons.ingress")

NAMESPACE = "ingress-nginx"
NAME = "ingress-nginx-controller"
IMAGE = "registry.k8s.io/ingress-nginx/controller:v1.10.1"
LABELS = {"app.kubernetes.io/name": "ingress-nginx",
          "app.kubernetes.io/instance": "ingress-nginx",
          "app.kubernetes.io/component": "controller"}


def namespace_object() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE,
                         "labels": {"app.kubernetes.io/name": "ingress-nginx",
                                    "app.kubernetes.io/instance": "ingress-nginx"}}}


def deployment_object(replicas: int = 1, image: str = IMAGE) -> dict:
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {"type": "RollingUpdate",
                         # hostNetwork pods hold the node's 80/443: the old one must go first
                         "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "nodeSelector": {"ingress": "true", "kubernetes.io/os": "linux"},
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"},
                        {"key": "node-role.kubernetes.io/master", "operator": "Exists",
                         "effect": "NoSchedule"},
                    ],
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "controller",
                        "image": image,
                        "args": ["/nginx-ingress-controller",
                                 "--election-id=ingress-nginx-leader",
                                 "--controller-class=k8s.io/ingress-nginx",
                                 "--ingress-class=nginx",
                                 "--watch-ingress-without-class=true"],
                        "env": env,
                        "ports": [
                            {"name": "http", "containerPort": 80, "protocol": "TCP"},
                            {"name": "https", "containerPort": 443, "protocol": "TCP"},
                        ],
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"},
                            "initialDelaySeconds": 0, "periodSeconds": 1,
                            "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": 10254, "scheme": "HTTP"},
                            "initialDelaySeconds": 10, "periodSeconds": 10,
                            "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 5},
                    }],
                },
            },
        },
    }


def objects() -> list[dict]:
    return [namespace_object(), ingress_class_object("nginx"), deployment_object()]


def install(client, cfg) -> None:
    """Create what is missing; an existing object (a restarted control plane) is kept."""
    for obj in objects():
        with contextlib.suppress(errors.AlreadyExists):
            try:
                client.create(obj)
            except errors.ApiError as exc:
                if isinstance(exc, errors.AlreadyExists):
                    raise
                log.warning("ingress add-on: %s %s: %s", obj["kind"],
                            obj["metadata"]["name"], exc.message)
