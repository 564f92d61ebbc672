"""Service admission: defaults, validation and IP / NodePort allocation, in Kubernetes' words."""

from __future__ import annotations

import copy
import ipaddress
from unittest import mock

import pytest

from netsim.api import errors
from netsim.api.admission import Admission, ClusterSettings
from netsim.api.client import LocalClient
from netsim.api.kinds import service as svcmod
from netsim.api.store import Store


def client_for(service_cidr=None, node_port_range=None) -> LocalClient:
    """A cluster started with other --service-cidr / --service-node-port-range flags."""
    store = Store(":memory:", admission=Admission(
        ClusterSettings.parse(service_cidr, node_port_range)))
    store.bootstrap()
    return LocalClient(store)


def svc(name, ns="default", **spec):
    spec.setdefault("ports", [{"port": 80}])
    if spec["ports"] is None:
        del spec["ports"]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def rejected(client, obj, update=False) -> str:
    """Create/update must fail with Invalid and store nothing; returns the message."""
    before = client.list("services")
    with pytest.raises(errors.ApiError) as ei:
        (client.update if update else client.create)(obj)
    assert client.list("services") == before
    return ei.value.message


# ---- defaults ------------------------------------------------------------------------------
def test_cluster_ip_defaults(client):
    s = client.create(svc("web", selector={"app": "web"}))["spec"]
    assert s["type"] == "ClusterIP"
    assert s["sessionAffinity"] == "None"
    assert s["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert s["ipFamilies"] == ["IPv4"] and s["ipFamilyPolicy"] == "SingleStack"
    assert s["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in s
    assert s["clusterIPs"] == [s["clusterIP"]]
    assert ipaddress.ip_address(s["clusterIP"]) in ipaddress.ip_network("10.96.0.0/12")


def test_named_target_port_kept_and_client_ip_affinity_default(client):
    s = client.create(svc("web", sessionAffinity="ClientIP",
                          ports=[{"name": "http", "port": 80, "targetPort": "web"}]))["spec"]
    assert s["ports"][0]["targetPort"] == "web"
    assert s["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_nodeport_defaults_external_traffic_policy(client):
    s = client.create(svc("np", type="NodePort"))["spec"]
    assert s["externalTrafficPolicy"] == "Cluster"
    assert 30000 <= s["ports"][0]["nodePort"] <= 32767


# ---- ClusterIP allocation ------------------------------------------------------------------
def test_random_cluster_ips_are_unique_and_skip_reserved():
    client = client_for("10.96.0.0/28")   # 14 usable, minus .1 and .10 -> 12
    ips = {client.create(svc(f"s{i}"))["spec"]["clusterIP"] for i in range(12)}
    assert len(ips) == 12
    assert "10.96.0.1" not in ips and "10.96.0.10" not in ips
    msg = rejected(client, svc("full"))
    assert msg == "Internal error occurred: failed to allocate a serviceIP: range is full"


def test_random_pick_never_hands_out_reserved():
    # Even when the random draw lands on .1 (kubernetes) or .10 (kube-dns), they are skipped.
    settings = ClusterSettings.parse("10.96.0.0/28")
    for off, want in ((0, "10.96.0.2"), (9, "10.96.0.11")):
        with mock.patch.object(svcmod.random, "randrange", side_effect=lambda a, b, o=off: o):
            assert svcmod.allocate_cluster_ip(set(), settings) == want


def test_explicit_cluster_ip_and_conflict(client):
    dns = client.create(svc("kube-dns", ns="kube-system", clusterIP="10.96.0.10"))
    assert dns["spec"]["clusterIPs"] == ["10.96.0.10"]
    msg = rejected(client, svc("other", clusterIP="10.96.0.10"))
    assert msg == ('The Service "other" is invalid: spec.clusterIPs: Invalid value: '
                   '[]string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: '
                   'provided IP is already allocated')


def test_cluster_ip_out_of_range(client):
    msg = rejected(client, svc("x", clusterIP="1.1.1.1"))
    assert msg == ('The Service "x" is invalid: spec.clusterIPs: Invalid value: []string{"1.1.1.1"}: '
                   'failed to allocate IP 1.1.1.1: the provided IP (1.1.1.1) is not in the valid '
                   'range. The range of valid IPs is 10.96.0.0/12')


def test_cluster_ip_not_an_ip(client):
    msg = rejected(client, svc("x", clusterIP="abc"))
    assert msg == ('The Service "x" is invalid: spec.clusterIPs[0]: Invalid value: "abc": '
                   'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)')


def test_cluster_ip_released_on_delete(client):
    client.create(svc("a", clusterIP="10.96.5.5"))
    rejected(client, svc("b", clusterIP="10.96.5.5"))
    client.delete("services", "a")
    assert client.create(svc("b", clusterIP="10.96.5.5"))["spec"]["clusterIP"] == "10.96.5.5"


def test_cluster_ip_kept_on_update_and_immutable(client):
    cur = client.create(svc("web", selector={"app": "web"}))
    ip = cur["spec"]["clusterIP"]
    new = copy.deepcopy(cur)
    new["spec"].pop("clusterIP")
    new["spec"].pop("clusterIPs")
    new["spec"]["selector"] = {"app": "web2"}
    out = client.update(new)
    assert out["spec"]["clusterIP"] == ip and out["spec"]["clusterIPs"] == [ip]
    bad = copy.deepcopy(out)
    bad["spec"]["clusterIP"] = "10.96.1.2"
    bad["spec"].pop("clusterIPs")
    msg = rejected(client, bad, update=True)
    assert msg == ('The Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
                   '[]string{"10.96.1.2"}: may not change once set')
    assert client.get("services", "web")["spec"]["clusterIP"] == ip


def test_configure_other_cidr():
    client = client_for("10.100.0.0/16", "31000-31010")
    s = client.create(svc("x", type="NodePort"))["spec"]
    assert ipaddress.ip_address(s["clusterIP"]) in ipaddress.ip_network("10.100.0.0/16")
    assert 31000 <= s["ports"][0]["nodePort"] <= 31010
    msg = rejected(client, svc("y", type="NodePort", ports=[{"port": 80, "nodePort": 30000}]))
    assert msg.endswith("The range of valid ports is 31000-31010")


# ---- headless and ExternalName -------------------------------------------------------------
def test_headless(client):
    s = client.create(svc("db", clusterIP="None", selector={"app": "db"}))["spec"]
    assert s["clusterIP"] == "None" and s["clusterIPs"] == ["None"]
    assert s["ipFamilies"] == ["IPv4"] and s["ipFamilyPolicy"] == "SingleStack"
    # Headless services may have no ports; selectorless ones default to dual-stack families.
    s2 = client.create(svc("bare", clusterIP="None", ports=None))["spec"]
    assert s2["ipFamilyPolicy"] == "RequireDualStack" and s2["ipFamilies"] == ["IPv4", "IPv6"]


def test_headless_nodeport_rejected(client):
    msg = rejected(client, svc("x", type="NodePort", clusterIP="None"))
    assert msg == ('The Service "x" is invalid: spec.clusterIPs[0]: Invalid value: "None": '
                   "may not be set to 'None' for NodePort services")


def test_external_name(client):
    s = client.create(svc("ext", type="ExternalName", externalName="example.com", ports=None))["spec"]
    assert "clusterIP" not in s and "clusterIPs" not in s and "ipFamilies" not in s
    assert "internalTrafficPolicy" not in s
    assert rejected(client, svc("e2", type="ExternalName", ports=None)) == \
        'The Service "e2" is invalid: spec.externalName: Required value'
    assert rejected(client, svc("e3", type="ExternalName", externalName="a_b", ports=None)) == (
        'The Service "e3" is invalid: spec.externalName: Invalid value: "a_b": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
        "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def test_type_change_to_external_name_releases_ip(client):
    cur = client.create(svc("x", clusterIP="10.96.7.7"))
    cur["spec"].update(type="ExternalName", externalName="example.com")
    out = client.update(cur)["spec"]
    assert "clusterIP" not in out and "ipFamilies" not in out
    assert client.create(svc("y", clusterIP="10.96.7.7"))["spec"]["clusterIP"] == "10.96.7.7"
    # ...and back: a fresh IP is allocated.
    cur = client.get("services", "x")
    cur["spec"]["type"] = "ClusterIP"
    cur["spec"].pop("externalName")
    back = client.update(cur)["spec"]
    assert back["clusterIP"] not in ("", "10.96.7.7") and back["clusterIPs"] == [back["clusterIP"]]


# ---- NodePort allocation -------------------------------------------------------------------
def test_nodeport_explicit_conflict_and_range(client):
    client.create(svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 31231}]))
    assert rejected(client, svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 31231}])) == (
        'The Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 31231: '
        "provided port is already allocated")
    assert rejected(client, svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 85}])) == (
        'The Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 85: provided port is '
        "not in the valid range. The range of valid ports is 30000-32767")


def test_nodeport_random_avoids_used():
    client = client_for(node_port_range="30000-30004")
    got = {client.create(svc(f"n{i}", type="NodePort"))["spec"]["ports"][0]["nodePort"]
           for i in range(5)}
    assert got == {30000, 30001, 30002, 30003, 30004}
    assert rejected(client, svc("full", type="NodePort")) == \
        "Internal error occurred: failed to allocate a nodePort: range is full"


def test_same_port_number_shares_node_port(client):
    s = client.create(svc("dns", type="NodePort", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))["spec"]
    assert s["ports"][0]["nodePort"] == s["ports"][1]["nodePort"]


def _holds_node_port(client, name: str, node_port: int) -> None:
    """`name` owns node_port: it reads back so, and no other Service can take it."""
    assert client.get("services", name)["spec"]["ports"][0]["nodePort"] == node_port
    assert rejected(client, svc("other", type="NodePort",
                                ports=[{"port": 80, "nodePort": node_port}])).endswith(
        f"spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated")


def test_nodeport_released_on_delete(client):
    client.create(svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 32333}]))
    client.delete("services", "a")
    b = client.create(svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 32333}]))
    assert b["spec"]["ports"][0]["nodePort"] == 32333
    _holds_node_port(client, "b", 32333)


def test_nodeport_released_on_type_change(client):
    cur = client.create(svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 32333}]))
    cur["spec"]["type"] = "ClusterIP"
    out = client.update(cur)["spec"]
    assert "nodePort" not in out["ports"][0]
    assert "externalTrafficPolicy" not in out
    b = client.create(svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 32333}]))
    assert b["spec"]["ports"][0]["nodePort"] == 32333
    _holds_node_port(client, "b", 32333)


def test_nodeport_kept_on_update_by_port_and_protocol(client):
    cur = client.create(svc("a", type="NodePort", ports=[
        {"name": "http", "port": 80}, {"name": "https", "port": 443}]))
    nps = {p["port"]: p["nodePort"] for p in cur["spec"]["ports"]}
    # A PUT that omits nodePorts (a merge-patched apply replaces the list): 443 is renamed,
    # 80 stays, 8080 is new.
    cur["spec"]["ports"] = [{"name": "http", "port": 80}, {"name": "tls", "port": 443},
                            {"name": "alt", "port": 8080}]
    out = {p["port"]: p["nodePort"] for p in client.update(cur)["spec"]["ports"]}
    assert out[80] == nps[80] and out[443] == nps[443]
    assert out[8080] not in (nps[80], nps[443])


def test_explicit_nodeport_kept_when_unchanged_on_update(client):
    cur = client.create(svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 32333}]))
    cur["metadata"]["labels"] = {"x": "y"}
    assert client.update(cur)["spec"]["ports"][0]["nodePort"] == 32333


def test_nodeport_forbidden_on_cluster_ip(client):
    assert rejected(client, svc("a", ports=[{"port": 80, "nodePort": 30001}])) == (
        'The Service "a" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when '
        "`type` is 'ClusterIP'")


# ---- validation wording ----------------------------------------------------------------------
@pytest.mark.parametrize("spec,message", [
    ({"ports": None}, "spec.ports: Required value"),
    ({"ports": [{"port": 80}, {"port": 81}]},
     "[spec.ports[0].name: Required value, spec.ports[1].name: Required value]"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
     'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
     'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, '
     'StrVal:""}, NodePort:0}'),
    ({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]},
     'spec.ports[1].name: Duplicate value: "a"'),
    ({"ports": [{"port": 70000, "targetPort": 80}]},
     "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ({"ports": [{"port": 80, "protocol": "ICMP"}]},
     'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    ({"ports": [{"port": 80, "targetPort": "8080"}]},
     'spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)'),
    ({"ports": [{"name": "Http", "port": 80}]},
     'spec.ports[0].name: Invalid value: "Http": a lowercase RFC 1123 label must consist of lower '
     "case alphanumeric characters or '-', and must start and end with an alphanumeric character "
     "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
    ({"type": "Foo"},
     'spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", '
     '"LoadBalancer", "NodePort"'),
    ({"sessionAffinity": "Sticky"},
     'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 "
     "and less than 86400"),
    ({"externalTrafficPolicy": "Local"},
     'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
     "externally-accessible services"),
    ({"type": "NodePort", "externalTrafficPolicy": "Nearest"},
     'spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", "Local"'),
    ({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30001},
                                    {"name": "b", "port": 81, "nodePort": 30001}]},
     "spec.ports[1].nodePort: Duplicate value: 30001"),
])
def test_validation_messages(client, spec, message):
    assert rejected(client, svc("bad", **spec)) == f'The Service "bad" is invalid: {message}'


def test_name_must_be_dns1035(client):
    assert rejected(client, svc("1web")).startswith(
        'The Service "1web" is invalid: metadata.name: Invalid value: "1web": a DNS-1035 label')
