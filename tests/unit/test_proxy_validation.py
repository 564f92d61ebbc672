"""kube-proxy re-checks what the store holds with admission's own checks (api.validation):
a bad object is refused in the words the apiserver would have refused it with, and the
fast dotted-quad path agrees with parse_ip."""

from __future__ import annotations

import copy

import pytest

from netsim.api import errors
from netsim.api import validation as v
from netsim.proxy import model


@pytest.mark.parametrize("text", [
    "1.2.3.4", "0.0.0.0", "255.255.255.255", "10.250.0.2", "256.1.1.1", "1.2.3", "1.2.3.4.5",
    "01.2.3.4", "1.2.3.04", " 1.2.3.4", "1.2.3.4\n", "1.2.3.4 ", "1.2.3.-1", "1.2.3.4/32",
    "١.2.3.4", "::1", "fe80::1%eth0", "2001:db8::1", "", "a.b.c.d", "1..2.3",
])
def test_dotted_quad_fast_path_agrees_with_parse_ip(text):
    ip = v.parse_ip(text)
    assert v.is_ipv4_text(text) == (ip is not None and ip.version == 4)
    assert model.parse_ip(text) == (str(ip) if ip is not None else None)
    assert model.parse_ip(text, 4) == (str(ip) if ip is not None and ip.version == 4 else None)
    assert model.parse_ip(text, 6) == (str(ip) if ip is not None and ip.version == 6 else None)


def test_named_refuses_what_is_no_string_and_checks_what_is():
    assert v.named(v.is_dns1123_label, 5, "spec.ports[0].name") == [
        "spec.ports[0].name: Invalid value: 5: must be a string"]
    assert v.named(v.is_dns1123_label, "http\n", "p") == [f'p: Invalid value: "http\\n": {v.LABEL_MSG}']
    assert v.named(v.is_dns1123_label, "http", "p") == []


def _admission_causes(client, obj: dict) -> list[str]:
    with pytest.raises(errors.ApiError) as e:
        client.create(copy.deepcopy(obj))
    return [(f"{c['field']}: " if c.get("field") else "") + c["message"]
            for c in (e.value.details or {}).get("causes") or []]


SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
       "spec": {"selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}
SLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "web-abcde", "namespace": "default",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}}]}


def _svc(**port) -> dict:
    s = copy.deepcopy(SVC)
    s["spec"]["ports"][0].update(port)
    return s


def _slice(port=None, address=None) -> dict:
    s = copy.deepcopy(SLICE)
    s["ports"][0].update(port or {})
    if address is not None:
        s["endpoints"][0]["addresses"] = [address]
    return s


@pytest.mark.parametrize("bad", [
    _svc(name="http\n"), _svc(name="Http"), _svc(port=70000), _svc(targetPort="http_x"),
    _svc(targetPort=-1), _svc(protocol="tcp"),
    {**SVC, "metadata": {"name": "1web", "namespace": "default"}},
    {**SVC, "metadata": {"name": "web", "namespace": "default", "labels": {"a": "b\n"}}},
    {**SVC, "spec": {**SVC["spec"], "externalIPs": ["10.0.0.9\n"]}},
    {**SVC, "spec": {**SVC["spec"], "sessionAffinity": "Sticky"}},
], ids=lambda o: repr(o)[:60])
def test_a_bad_service_is_refused_in_admissions_words(client, bad):
    causes = model.service_errors(bad)
    assert causes and set(causes) <= set(_admission_causes(client, bad)), causes


@pytest.mark.parametrize("bad", [
    _slice(port={"name": "http\n"}), _slice(port={"port": 70000}),
    _slice(port={"protocol": "udp"}), _slice(address="127.0.0.1 max_fails=0; } server {"),
    _slice(address="10.244.1.5\n"),
    {**SLICE, "metadata": {**SLICE["metadata"], "name": "Web_slice"}},
], ids=lambda o: repr(o)[:60])
def test_a_bad_slice_is_refused_in_admissions_words(client, bad):
    causes = model.endpoint_slice_errors(bad)
    assert causes and set(causes) <= set(_admission_causes(client, bad)), causes


def test_good_objects_pass_both(client):
    assert model.service_errors(SVC) == [] and model.endpoint_slice_errors(SLICE) == []
    assert model.service_errors(_svc(targetPort=0)) == []  # defaulted to the port
    client.create(copy.deepcopy(SVC))
    client.create(copy.deepcopy(SLICE))
