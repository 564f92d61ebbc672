"""NetworkPolicy admission: kubectl's resource names, upstream's defaults and its messages."""

from __future__ import annotations

import copy

import pytest

from netsim.api import errors, resources


def policy(**spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "default"}, "spec": spec}


def refused(client, obj, code=422) -> str:
    with pytest.raises(errors.ApiError) as ei:
        client.create(copy.deepcopy(obj))
    assert ei.value.code == code, ei.value.message
    assert client.list("networkpolicies", None) == []
    return ei.value.message


def test_names_kubectl_accepts():
    for name in ("netpol", "networkpolicy", "networkpolicies", "NetworkPolicy",
                 "networkpolicies.networking.k8s.io"):
        r = resources.lookup(name)
        assert (r.plural, r.api_version, r.namespaced) == (
            "networkpolicies", "networking.k8s.io/v1", True)


def test_defaults_policy_types_and_protocol(client):
    got = client.create(policy(podSelector={}))
    assert got["spec"]["policyTypes"] == ["Ingress"]
    got = client.create({**policy(), "metadata": {"name": "e", "namespace": "default"},
                         "spec": {"egress": [{"ports": [{"port": 53}]}]}})
    assert got["spec"]["podSelector"] == {}
    assert got["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert got["spec"]["egress"][0]["ports"][0] == {"port": 53, "protocol": "TCP"}
    # given policyTypes are kept as written
    got = client.create({**policy(policyTypes=["Egress"]),
                         "metadata": {"name": "x", "namespace": "default"}})
    assert got["spec"]["policyTypes"] == ["Egress"]


def test_a_valid_policy_with_every_peer_form(client):
    client.create(policy(
        podSelector={"matchLabels": {"app": "db"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"role": "api"}}},
                           {"namespaceSelector": {"matchLabels": {"team": "a"}},
                            "podSelector": {}},
                           {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                  "ports": [{"port": 80}, {"port": "http", "protocol": "UDP"},
                            {"port": 8000, "endPort": 9000, "protocol": "SCTP"}]}],
        egress=[{}]))
    assert client.get("networkpolicies", "np", "default")["spec"]["policyTypes"] == [
        "Ingress", "Egress"]


@pytest.mark.parametrize("spec, want", [
    ({"policyTypes": ["Ingress", "Sideways"]},
     'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", '
     '"Egress"'),
    ({"policyTypes": ["Ingress", "Egress", "Ingress"]},
     'spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", '
     '"Ingress"}: may not specify more than two policyTypes'),
    ({"ingress": [{"ports": [{"protocol": "ICMP"}]}]},
     'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
     '"TCP", "UDP", "SCTP"'),
    ({"ingress": [{"ports": [{"port": 0}]}]},
     "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, "
     "inclusive"),
    ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
     "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal "
     "to `port`"),
    ({"egress": [{"ports": [{"port": "http", "endPort": 80}]}]},
     "spec.egress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` "
     "is non-numeric"),
    ({"egress": [{"ports": [{"endPort": 80}]}]},
     "spec.egress[0].ports[0].endPort: Invalid value: 80: may not be specified when `port` "
     "is not specified"),
    ({"ingress": [{"ports": [{"port": "Web_1"}]}]},
     'spec.ingress[0].ports[0].port: Invalid value: "Web_1": must contain only alpha-numeric '
     "characters (a-z, 0-9), and hyphens (-)"),
    ({"ingress": [{"from": [{}]}]},
     "spec.ingress[0].from[0]: Required value: must specify a peer"),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer"),
    ({"egress": [{"to": [{"ipBlock": {}}]}]},
     "spec.egress[0].to[0].ipBlock.cidr: Required value"),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0"}}]}]},
     'spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR '
     "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                         "except": ["10.0.0.0/8"]}}]}]},
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a '
     "strict subset of `cidr`"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                         "except": ["192.168.0.0/16"]}}]}]},
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a '
     "strict subset of `cidr`"),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     "spec.podSelector.matchExpressions[0].values: Required value: must be specified when "
     "`operator` is 'In' or 'NotIn'"),
    ({"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"a": "b c"}}}]}]},
     'spec.ingress[0].from[0].namespaceSelector.matchLabels: Invalid value: "b c"'),
])
def test_refused_as_upstream_words_it(client, spec, want):
    msg = refused(client, policy(**spec))
    assert msg.startswith('The NetworkPolicy "np" is invalid: ') and want in msg, msg


def test_a_wrongly_typed_port_is_the_decoders_400(client):
    msg = refused(client, policy(ingress=[{"ports": [{"port": 80, "endPort": "90"}]}]),
                  code=400)
    assert msg == ('NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: json: '
                   "cannot unmarshal string into Go struct field NetworkPolicyPort."
                   "spec.ingress.ports.endPort of type int32")


def test_kubectl_table():
    from datetime import datetime, timedelta, timezone

    from netsim.api.printing.printers import print_table
    now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    made = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pols = [{"metadata": {"name": "allow-from-client", "namespace": "default",
                          "creationTimestamp": made},
             "spec": {"podSelector": {"matchLabels": {"app": "web"}}}},
            {"metadata": {"name": "default-deny-ingress", "namespace": "default",
                          "creationTimestamp": made},
             "spec": {"podSelector": {}}}]
    assert print_table("networkpolicies", pols, now=now).splitlines() == [
        "NAME                   POD-SELECTOR   AGE",
        "allow-from-client      app=web        5m",
        "default-deny-ingress   <none>         5m",
    ]


def test_kubectl_describe():
    from datetime import datetime, timezone

    from netsim.cli.describe import describe
    pol = {"metadata": {"name": "allow", "namespace": "default",
                        "creationTimestamp": "2026-01-01T00:00:05Z"},
           "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}},
                                          {"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                           "podSelector": {}}],
                                 "ports": [{"port": "http", "protocol": "TCP"}]},
                                {"ports": [{"port": 8000, "endPort": 9000, "protocol": "UDP"}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                    "except": ["10.1.0.0/16", "10.2.0.0/16"]}}]}]}}
    assert describe("networkpolicies", pol, now=datetime(2026, 1, 2, tzinfo=timezone.utc)) == (
        "Name:         allow\n"
        "Namespace:    default\n"
        "Created on:   2026-01-01 00:00:05 +0000 UTC\n"
        "Labels:       <none>\n"
        "Annotations:  <none>\n"
        "Spec:\n"
        "  PodSelector:     app=web\n"
        "  Allowing ingress traffic:\n"
        "    To Port: http/TCP\n"
        "    From:\n"
        "      PodSelector: app=client\n"
        "    From:\n"
        "      NamespaceSelector: ns=y\n"
        "      PodSelector: <none>\n"
        "    ----------\n"
        "    To Port Range: 8000-9000/UDP\n"
        "    From: <any> (traffic not restricted by source)\n"
        "  Allowing egress traffic:\n"
        "    To Port: <any> (traffic allowed to all ports)\n"
        "    To:\n"
        "      IPBlock:\n"
        "        CIDR: 10.0.0.0/8\n"
        "        Except: 10.1.0.0/16, 10.2.0.0/16\n"
        "  Policy Types: Ingress, Egress\n")
    deny = {"metadata": {"name": "deny", "namespace": "default",
                         "creationTimestamp": "2026-01-01T00:00:05Z"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    out = describe("networkpolicies", deny, now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert out.endswith(
        "Spec:\n"
        "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)\n"
        "  Allowing ingress traffic:\n"
        "    <none> (Selected pods are isolated for ingress connectivity)\n"
        "  Not affecting egress traffic\n"
        "  Policy Types: Ingress\n")
