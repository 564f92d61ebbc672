"""`netsim expose` / `create service`: the Service kubectl builds, and its refusals in its words."""

from __future__ import annotations

import pytest

from netsim.cli.expose import ExposeError, create_service, expose_service
from netsim.cli.pflags import Parsed


def _p(**flags: str) -> Parsed:
    return Parsed(flags={k.replace("_", "-"): [v] for k, v in flags.items()})


def _deploy(ports=((8080, "TCP"),), labels=None, selector=None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"selector": selector or {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [
                         {"name": "c", "ports": [{"containerPort": n, "protocol": pr}
                                                 for n, pr in ports]}]}}}}


def test_deployment_with_one_port_and_port_flags():
    svc = expose_service(_deploy(), _p(port="80", target_port="8080"))
    assert svc["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert svc["spec"] == {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                           "selector": {"app": "web"}}


def test_port_from_the_container_and_target_port_defaults_to_it():
    svc = expose_service(_deploy(), _p(name="web2", type="NodePort"))
    assert svc["metadata"]["name"] == "web2"
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]


def test_several_ports_are_named_port_n_and_a_port_with_two_protocols_splits():
    svc = expose_service(_deploy(ports=((53, "UDP"), (53, "TCP"), (9153, "TCP"))), _p())
    assert svc["spec"]["ports"] == [
        {"name": "port-1-udp", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "port-1-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
        {"name": "port-2", "port": 9153, "protocol": "TCP", "targetPort": 9153}]


def test_named_target_port_labels_affinity_and_headless():
    svc = expose_service(_deploy(), _p(target_port="http", labels="a=b,c=d",
                                       session_affinity="ClientIP", cluster_ip="None"))
    assert svc["metadata"]["labels"] == {"a": "b", "c": "d"}
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["clusterIP"] == "None"


def test_pod_service_and_refusals():
    pod = {"kind": "Pod", "metadata": {"name": "p", "labels": {"run": "p"}},
           "spec": {"containers": [{"name": "c"}]}}
    with pytest.raises(ExposeError, match="^couldn't find port via --port flag or introspection$"):
        expose_service(pod, _p())
    assert expose_service(pod, _p(port="81"))["spec"]["selector"] == {"run": "p"}
    with pytest.raises(ExposeError, match="^the pod has no labels and cannot be exposed$"):
        expose_service({"kind": "Pod", "metadata": {"name": "p"}, "spec": {}}, _p(port="1"))
    with pytest.raises(ExposeError, match="^the service has no pod selector set$"):
        expose_service({"kind": "Service", "metadata": {"name": "s"}, "spec": {}}, _p(port="1"))
    exprs = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}
    with pytest.raises(ExposeError, match=r'^couldn\'t convert expressions - "\[\{Key:app '
                                          r'Operator:In Values:\[a b\]\}\]" to map-based'):
        expose_service(_deploy(selector=exprs), _p(port="1"))
    with pytest.raises(ExposeError, match="^unknown session affinity: Sticky$"):
        expose_service(_deploy(), _p(session_affinity="Sticky"))


def test_create_service_kinds_as_kubectl():
    svc = create_service("clusterip", "echo", ["80:8080", "443:https"])
    assert svc["metadata"] == {"name": "echo", "labels": {"app": "echo"}}
    assert svc["spec"] == {"type": "ClusterIP", "selector": {"app": "echo"}, "ports": [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "443-https", "port": 443, "protocol": "TCP", "targetPort": "https"}]}
    np = create_service("nodeport", "echo", ["80"], node_port=30080)
    assert np["spec"]["ports"] == [{"name": "80", "port": 80, "protocol": "TCP", "targetPort": 80,
                                    "nodePort": 30080}]
    assert create_service("clusterip", "h", [], cluster_ip="None")["spec"]["clusterIP"] == "None"
    ext = create_service("externalname", "db", [], external_name="db.example.com")
    assert ext["spec"]["externalName"] == "db.example.com" and "ports" not in ext["spec"]


@pytest.mark.parametrize("kind, tcp, kw, msg", [
    ("clusterip", [], {}, "at least one tcp port specifier must be provided"),
    ("nodeport", ["80"], {"cluster_ip": "None"},
     "ClusterIP=None can only be used with ClusterIP service type"),
    ("externalname", [], {"external_name": "Bad_Name"}, "invalid service external name Bad_Name"),
    ("clusterip", ["80:Bad_Name"], {}, "must contain only alpha-numeric characters"),
])
def test_create_service_refusals(kind, tcp, kw, msg):
    with pytest.raises(ExposeError, match=msg):
        create_service(kind, "x", tcp, **kw)
