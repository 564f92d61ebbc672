"""Admission refuses what Kubernetes refuses, in kubectl's words, and stores nothing.

Every case is an object the API used to store (a trailing newline passed `re.match(...$)`,
EndpointSlices were not validated, a wrongly typed field gave a 500) and that then broke
iptables-restore, nginx.conf or kube-proxy on every node.
"""

from __future__ import annotations

import copy

import pytest

from netsim.api import errors
from netsim.api import validation as v
from netsim.api.admission import admit
from tests.unit.apihelpers import container, pod, refused


def svc(name="web", **spec):
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def cm(data, name="cfg"):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": data}


def slice_(endpoints=None, ports=None, address_type="IPv4", name="web-abc"):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": address_type,
            "endpoints": endpoints if endpoints is not None else [
                {"addresses": ["10.244.1.5"], "conditions": {"ready": True}}],
            "ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                      "protocol": "TCP"}]}


def endpoints_(subsets):
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default"}, "subsets": subsets}


def deploy(selector, labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": selector, "template": {
                "metadata": {"labels": labels if labels is not None else {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "echo"}]}}}}


def ingress(rules=None, name="web"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"rules": rules or []}}


def rule(host="foo.com", path="/", service="web", port=None):
    return {"host": host, "http": {"paths": [{
        "path": path, "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": port or {"number": 80}}}}]}}


LABEL = v.LABEL_MSG
SUBDOMAIN = v.SUBDOMAIN_MSG
PORT_CHARS = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
RANGE = "must be between 1 and 65535, inclusive"


# ---- names: full-string matches ---------------------------------------------------------------
@pytest.mark.parametrize("obj, want", [
    (pod("web\n"), f'The Pod "web\\n" is invalid: metadata.name: Invalid value: "web\\n": '
                   f"{SUBDOMAIN}"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod\n"}},
     # the kubernetes.io/metadata.name label, defaulted from the name, fails as well
     f'The Namespace "prod\\n" is invalid: [metadata.name: Invalid value: "prod\\n": {LABEL}, '
     f'metadata.labels: Invalid value: "prod\\n": {v.LABEL_VALUE_MSG}]'),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
     'The Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": '
     "must not contain dots"),
    (svc("web\n"), f'The Service "web\\n" is invalid: metadata.name: Invalid value: "web\\n": '
                   f"{v.DNS1035_MSG}"),
    (cm({"a": "b"}, name="Cfg"),
     f'The ConfigMap "Cfg" is invalid: metadata.name: Invalid value: "Cfg": {SUBDOMAIN}'),
    (slice_(name="web\n"),
     f'The EndpointSlice "web\\n" is invalid: metadata.name: Invalid value: "web\\n": '
     f"{SUBDOMAIN}"),
    ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node_1"}},
     f'The Node "node_1" is invalid: metadata.name: Invalid value: "node_1": {SUBDOMAIN}'),
])
def test_names_are_matched_in_full(client, obj, want):
    assert refused(client, obj) == want


def test_generate_name_is_checked_with_room_for_the_suffix(client):
    p = pod()
    del p["metadata"]["name"]
    p["metadata"]["generateName"] = "Web-"
    msg = refused(client, p)
    assert f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN}' in msg
    p["metadata"]["generateName"] = "web-"
    assert client.create(p)["metadata"]["name"].startswith("web-")


# ---- labels, annotations, selectors -----------------------------------------------------------
@pytest.mark.parametrize("labels, want", [
    ({"a" * 64: "x"}, f'metadata.labels: Invalid value: "{"a" * 64}": '
                      "name part must be no more than 63 characters"),
    ({"app": "x" * 64}, f'metadata.labels: Invalid value: "{"x" * 64}": '
                        "must be no more than 63 characters"),
    ({"app": "web\n"}, f'metadata.labels: Invalid value: "web\\n": {v.LABEL_VALUE_MSG}'),
    ({"Bad_Prefix/app": "x"}, f'metadata.labels: Invalid value: "Bad_Prefix/app": '
                              f"prefix part {SUBDOMAIN}"),
    ({"/app": "x"}, 'metadata.labels: Invalid value: "/app": prefix part must be non-empty'),
    ({"a/b/c": "x"}, 'metadata.labels: Invalid value: "a/b/c": a qualified name must consist '
                     "of alphanumeric characters, '-', '_' or '.', and must start and end with "
                     "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                     "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
                     "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
])
def test_label_keys_and_values(client, labels, want):
    p = pod()
    p["metadata"]["labels"] = labels
    assert refused(client, p) == f'The Pod "web" is invalid: {want}'


def test_label_values_are_checked_on_update_too(client):
    client.create(pod())
    cur = client.get("pods", "web")
    cur["metadata"]["labels"] = {"app": "web\n"}
    with pytest.raises(errors.Invalid) as ei:
        client.update(cur)
    assert 'metadata.labels: Invalid value: "web\\n"' in ei.value.message
    assert "labels" not in client.get("pods", "web")["metadata"]


def test_annotation_keys_and_total_size(client):
    p = pod()
    p["metadata"]["annotations"] = {"bad key": "x"}
    assert refused(client, p) == (
        'The Pod "web" is invalid: metadata.annotations: Invalid value: "bad key": name part '
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
        "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    p["metadata"]["annotations"] = {"Example.com/Note": "x" * 1000}  # any case is fine
    client.create(copy.deepcopy(p))
    p["metadata"]["name"] = "big"
    p["metadata"]["annotations"] = {"note": "x" * (256 * 1024)}
    assert refused(client, p) == ('The Pod "big" is invalid: metadata.annotations: Too long: '
                                  "must have at most 262144 bytes")


@pytest.mark.parametrize("selector, want", [
    ({"matchLabels": {"app": "web\n"}},
     f'spec.selector.matchLabels: Invalid value: "web\\n": {v.LABEL_VALUE_MSG}'),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "Near", "values": ["a"]}]},
     'spec.selector.matchExpressions[0].operator: Invalid value: "Near": '
     "not a valid selector operator"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a b"]}]},
     f'spec.selector.matchExpressions[0].values[0]: Invalid value: "a b": {v.LABEL_VALUE_MSG}'),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier/x/y", "operator": "Exists"}]},
     'spec.selector.matchExpressions[0].key: Invalid value: "tier/x/y": a qualified name'),
])
def test_workload_selectors(client, selector, want):
    labels = dict(selector.get("matchLabels") or {"app": "web"})
    assert want in refused(client, deploy(selector, labels))


def test_template_labels_are_label_values(client):
    msg = refused(client, deploy({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y\n"}))
    assert f'spec.template.metadata.labels: Invalid value: "y\\n": {v.LABEL_VALUE_MSG}' in msg


def test_service_selector_values(client):
    assert refused(client, svc(selector={"app": "web\n"})) == (
        f'The Service "web" is invalid: spec.selector: Invalid value: "web\\n": '
        f"{v.LABEL_VALUE_MSG}")


# ---- pods: containers, ports, placement -------------------------------------------------------
@pytest.mark.parametrize("spec, want", [
    ({"containers": [container(name="C_1")]},
     f'spec.containers[0].name: Invalid value: "C_1": {LABEL}'),
    ({"containers": [container(name="a" * 100)]},
     f'spec.containers[0].name: Invalid value: "{"a" * 100}": must be no more than 63 characters'),
    ({"containers": [container(name="app\n")]},
     f'spec.containers[0].name: Invalid value: "app\\n": {LABEL}'),
    ({"initContainers": [container(name="Init")]},
     f'spec.initContainers[0].name: Invalid value: "Init": {LABEL}'),
    ({"initContainers": [container(name="app")]},
     'spec.initContainers[0].name: Duplicate value: "app"'),
    ({"initContainers": [container(name="init", image="")]},
     "spec.initContainers[0].image: Required value"),
    ({"initContainers": [container(name="init", ports=[{"containerPort": 70000}])]},
     f"spec.initContainers[0].ports[0].containerPort: Invalid value: 70000: {RANGE}"),
    ({"hostname": "Web"}, f'spec.hostname: Invalid value: "Web": {LABEL}'),
    ({"subdomain": "a.b"}, 'spec.subdomain: Invalid value: "a.b": must not contain dots'),
    ({"nodeName": "node_1"}, f'spec.nodeName: Invalid value: "node_1": {SUBDOMAIN}'),
    ({"nodeName": "node-1\n"}, f'spec.nodeName: Invalid value: "node-1\\n": {SUBDOMAIN}'),
    ({"nodeSelector": {"disk": "ssd\n"}},
     f'spec.nodeSelector: Invalid value: "ssd\\n": {v.LABEL_VALUE_MSG}'),
    ({"containers": [container(ports=[{"name": "http\n", "containerPort": 80}])]},
     f'spec.containers[0].ports[0].name: Invalid value: "http\\n": {PORT_CHARS}'),
    ({"containers": [container(ports=[{"name": "a" * 16, "containerPort": 80}])]},
     f'spec.containers[0].ports[0].name: Invalid value: "{"a" * 16}": '
     "must be no more than 15 characters"),
    ({"containers": [container(ports=[{"name": "8080", "containerPort": 80}])]},
     'spec.containers[0].ports[0].name: Invalid value: "8080": '
     "must contain at least one letter (a-z)"),
    ({"containers": [container(ports=[{"name": "a--b", "containerPort": 80}])]},
     'spec.containers[0].ports[0].name: Invalid value: "a--b": '
     "must not contain consecutive hyphens"),
    ({"containers": [container(ports=[{"name": "-ab", "containerPort": 80}])]},
     'spec.containers[0].ports[0].name: Invalid value: "-ab": '
     "must not begin or end with a hyphen"),
    ({"containers": [container(ports=[{"name": "web", "containerPort": 80},
                                      {"name": "web", "containerPort": 81}])]},
     'spec.containers[0].ports[1].name: Duplicate value: "web"'),
    ({"containers": [container(ports=[{"containerPort": 70000}])]},
     f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {RANGE}"),
    ({"containers": [container(ports=[{"containerPort": 80, "hostPort": 70000}])]},
     f"spec.containers[0].ports[0].hostPort: Invalid value: 70000: {RANGE}"),
])
def test_pod_spec(client, spec, want):
    assert want in refused(client, pod(**spec))


def test_deployment_template_containers_are_checked_alike(client):
    d = deploy({"matchLabels": {"app": "web"}})
    d["spec"]["template"]["spec"]["containers"][0]["name"] = "C_1"
    assert f'spec.template.spec.containers[0].name: Invalid value: "C_1": {LABEL}' in \
        refused(client, d)


# ---- wrongly typed fields: 400 in the decoder's words, never a 500 ------------------------------
@pytest.mark.parametrize("obj, want", [
    (pod(containers=[{"name": 5, "image": "echo"}]),
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go '
     "struct field Container.spec.containers.name of type string"),
    (pod(containers=[container(ports=[{"containerPort": "80"}])]),
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go '
     "struct field ContainerPort.spec.containers.ports.containerPort of type int32"),
    (pod(containers="app"),
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go '
     "struct field PodSpec.spec.containers of type []v1.Container"),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "labels": {"a": 1}},
      "spec": {"containers": [container()]}},
     'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go '
     "struct field ObjectMeta.metadata.labels of type string"),
    (svc(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort="abc"),
     'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string '
     "into Go struct field ServiceSpec.spec.healthCheckNodePort of type int32"),
    (svc(ports=[{"port": 80, "targetPort": 1.5}]),
     'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal number '
     "into Go struct field ServicePort.spec.ports.targetPort of type intstr.IntOrString"),
    (svc(ports=[{"port": 2 ** 40}]),
     'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal number '
     "1099511627776 into Go struct field ServicePort.spec.ports.port of type int32"),
    (slice_(ports=[{"name": "http", "port": "abc", "protocol": "TCP"}]),
     'EndpointSlice in version "v1" cannot be handled as a EndpointSlice: json: cannot '
     "unmarshal string into Go struct field EndpointPort.ports.port of type int32"),
    (slice_(endpoints=[{"addresses": ["10.244.1.5"], "conditions": {"ready": "yes"}}]),
     'EndpointSlice in version "v1" cannot be handled as a EndpointSlice: json: cannot '
     "unmarshal string into Go struct field EndpointConditions.endpoints.conditions.ready of "
     "type bool"),
    (slice_(endpoints=[{"addresses": "10.244.1.5"}]),
     'EndpointSlice in version "v1" cannot be handled as a EndpointSlice: json: cannot '
     "unmarshal string into Go struct field Endpoint.endpoints.addresses of type []string"),
    (endpoints_([{"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": "abc"}]}]),
     'Endpoints in version "v1" cannot be handled as a Endpoints: json: cannot unmarshal string '
     "into Go struct field EndpointPort.subsets.ports.port of type int32"),
    (cm({"a": 1}),
     'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number '
     "into Go struct field ConfigMap.data of type string"),
    (ingress([rule(port={"number": "80"})]),
     'Ingress in version "v1" cannot be handled as a Ingress: json: cannot unmarshal string '
     "into Go struct field ServiceBackendPort.spec.rules.http.paths.backend.service.port.number "
     "of type int32"),
    (deploy({"matchLabels": {"app": "web"}}) | {"spec": {"replicas": "3"}},
     'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
     "string into Go struct field DeploymentSpec.spec.replicas of type int32"),
])
def test_wrong_types_are_bad_requests(client, obj, want):
    assert refused(client, obj, code=400) == want


# ---- ConfigMap and Secret keys ------------------------------------------------------------------
@pytest.mark.parametrize("key, want", [
    ("bad/key", f'data[bad/key]: Invalid value: "bad/key": {v.CONFIG_KEY_MSG}'),
    ("key\n", f'data[key\n]: Invalid value: "key\\n": {v.CONFIG_KEY_MSG}'),
    (".", 'data[.]: Invalid value: ".": must not be \'.\''),
    ("..", 'data[..]: Invalid value: "..": must not be \'..\''),
    ("..x", 'data[..x]: Invalid value: "..x": must not start with \'..\''),
    ("k" * 254, f'data[{"k" * 254}]: Invalid value: "{"k" * 254}": '
                "must be no more than 253 characters"),
])
def test_config_keys(client, key, want):
    assert refused(client, cm({key: "v"})) == f'The ConfigMap "cfg" is invalid: {want}'
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "s", "namespace": "default"}, "stringData": {key: "v"}}
    assert refused(client, secret) == f'The Secret "s" is invalid: {want}'


# ---- Services -------------------------------------------------------------------------------------
@pytest.mark.parametrize("hc", [70000, -5])
def test_health_check_node_port_range(client, hc):
    assert refused(client, svc(type="LoadBalancer", externalTrafficPolicy="Local",
                               healthCheckNodePort=hc)) == (
        f'The Service "web" is invalid: spec.healthCheckNodePort: Invalid value: {hc}: {RANGE}')


def test_health_check_node_port_outside_the_node_port_range(client):
    msg = refused(client, svc(type="LoadBalancer", externalTrafficPolicy="Local",
                              healthCheckNodePort=40000), code=500)
    assert msg == ("Internal error occurred: failed to allocate requested HealthCheck NodePort "
                   "40000: provided port is not in the valid range. The range of valid ports is "
                   "30000-32767")
    s = client.create(svc(type="LoadBalancer", externalTrafficPolicy="Local",
                          healthCheckNodePort=31000))
    assert s["spec"]["healthCheckNodePort"] == 31000


@pytest.mark.parametrize("port, want", [
    ({"name": "http\n", "port": 80}, f'spec.ports[0].name: Invalid value: "http\\n": {LABEL}'),
    ({"port": 80, "targetPort": "http\n"},
     f'spec.ports[0].targetPort: Invalid value: "http\\n": {PORT_CHARS}'),
    ({"port": 80, "targetPort": "a-very-long-port-name"},
     'spec.ports[0].targetPort: Invalid value: "a-very-long-port-name": '
     "must be no more than 15 characters"),
    ({"port": 80, "targetPort": 70000}, f"spec.ports[0].targetPort: Invalid value: 70000: {RANGE}"),
    ({"port": 70000, "targetPort": 80}, f"spec.ports[0].port: Invalid value: 70000: {RANGE}"),
])
def test_service_ports(client, port, want):
    assert refused(client, svc(ports=[port])) == f'The Service "web" is invalid: {want}'


def test_external_ips_may_not_be_special(client):
    assert refused(client, svc(externalIPs=["127.0.0.1"])) == (
        'The Service "web" is invalid: spec.externalIPs[0]: Invalid value: "127.0.0.1": '
        "may not be in the loopback range (127.0.0.0/8, ::1/128)")


# ---- EndpointSlices and Endpoints -----------------------------------------------------------------
NGINX_BREAKOUT = "127.0.0.1 max_fails=0; } server { listen 9999; }"


@pytest.mark.parametrize("obj, want", [
    (slice_(endpoints=[{"addresses": [NGINX_BREAKOUT]}]),
     f'[endpoints[0].addresses[0]: Invalid value: "{NGINX_BREAKOUT}": '
     "must be a valid IPv4 address, "
     f'endpoints[0].addresses[0]: Invalid value: "{NGINX_BREAKOUT}": must be a valid IP address]'),
    (slice_(endpoints=[{"addresses": ["10.244.1.5\n"]}]),
     '[endpoints[0].addresses[0]: Invalid value: "10.244.1.5\\n": must be a valid IPv4 address, '
     'endpoints[0].addresses[0]: Invalid value: "10.244.1.5\\n": must be a valid IP address]'),
    (slice_(endpoints=[{"addresses": ["fd00::5"]}]),
     'endpoints[0].addresses[0]: Invalid value: "fd00::5": must be a valid IPv4 address'),
    (slice_(endpoints=[{"addresses": ["10.244.1.5"]}], address_type="IPv6"),
     'endpoints[0].addresses[0]: Invalid value: "10.244.1.5": must be a valid IPv6 address'),
    (slice_(endpoints=[{"addresses": ["127.0.0.1"]}]),
     'endpoints[0].addresses[0]: Invalid value: "127.0.0.1": '
     "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
    (slice_(endpoints=[{"addresses": ["169.254.169.254"]}]),
     'endpoints[0].addresses[0]: Invalid value: "169.254.169.254": '
     "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
    (slice_(endpoints=[{"addresses": []}]),
     "endpoints[0].addresses: Required value: must contain at least 1 address"),
    (slice_(endpoints=[{"addresses": ["web.example.com\n"]}], address_type="FQDN"),
     f'endpoints[0].addresses[0]: Invalid value: "web.example.com\\n": {SUBDOMAIN}'),
    (slice_(address_type="IPX"),
     'addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"'),
    (slice_(address_type=""), "addressType: Required value"),
    (slice_(endpoints=[{"addresses": ["10.244.1.5"], "nodeName": "Node_1"}]),
     f'endpoints[0].nodeName: Invalid value: "Node_1": {SUBDOMAIN}'),
    (slice_(endpoints=[{"addresses": ["10.244.1.5"], "hostname": "web.0"}]),
     'endpoints[0].hostname: Invalid value: "web.0": must not contain dots'),
    (slice_(ports=[{"name": "http\n", "port": 80, "protocol": "TCP"}]),
     f'ports[0].name: Invalid value: "http\\n": {LABEL}'),
    (slice_(ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                   {"name": "http", "port": 81, "protocol": "TCP"}]),
     'ports[1].name: Duplicate value: "http"'),
    (slice_(ports=[{"name": "http", "port": 80, "protocol": "ICMP"}]),
     'ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    (slice_(ports=[{"name": "http", "port": 70000, "protocol": "TCP"}]),
     f"ports[0].port: Invalid value: 70000: {RANGE}"),
])
def test_endpoint_slices(client, obj, want):
    assert refused(client, obj) == f'The EndpointSlice "web-abc" is invalid: {want}'


def test_a_good_slice_is_stored_with_defaults(client):
    s = client.create(slice_(ports=[{"name": "http", "port": 80}]))
    assert s["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]
    everything = slice_(ports=[{"name": "", "protocol": "UDP"}],
                        endpoints=[{"addresses": ["web.example.com"]}], address_type="FQDN",
                        name="fqdn")
    client.create(everything)


def test_address_type_is_immutable(client):
    client.create(slice_())
    cur = client.get("endpointslices", "web-abc")
    cur["addressType"] = "IPv6"
    cur["endpoints"] = [{"addresses": ["fd00::5"]}]
    with pytest.raises(errors.Invalid) as ei:
        client.update(cur)
    assert ei.value.message == ('The EndpointSlice "web-abc" is invalid: addressType: '
                                'Invalid value: "IPv6": field is immutable')


@pytest.mark.parametrize("subset, want", [
    ({"addresses": [{"ip": NGINX_BREAKOUT}], "ports": [{"port": 80}]},
     f'[subsets[0].addresses[0].ip: Invalid value: "{NGINX_BREAKOUT}": {v.IP_MSG}, '
     f'subsets[0].addresses[0].ip: Invalid value: "{NGINX_BREAKOUT}": must be a valid IP address]'),
    ({"addresses": [{"ip": "10.244.1.5", "nodeName": "n\n"}], "ports": [{"port": 80}]},
     f'subsets[0].addresses[0].nodeName: Invalid value: "n\\n": {SUBDOMAIN}'),
    ({"addresses": [{"ip": "10.244.1.5"}], "ports": [{"name": "http\n", "port": 80}]},
     f'subsets[0].ports[0].name: Invalid value: "http\\n": {LABEL}'),
    ({"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 0}]},
     f"subsets[0].ports[0].port: Invalid value: 0: {RANGE}"),
    ({"ports": [{"port": 80}]},
     "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"),
])
def test_endpoints(client, subset, want):
    assert refused(client, endpoints_([subset])) == f'The Endpoints "web" is invalid: {want}'


# ---- Ingress ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rules, want", [
    ([rule(host="foo.com\n")], f'spec.rules[0].host: Invalid value: "foo.com\\n": {SUBDOMAIN}'),
    ([rule(host="*.*.foo.com")],
     f'spec.rules[0].host: Invalid value: "*.*.foo.com": {v.WILDCARD_MSG}'),
    ([rule(host="10.0.0.1")],
     'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'),
    ([rule(path="/a//b")],
     "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"),
    ([rule(service="Web")],
     f'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Web": {v.DNS1035_MSG}'),
    ([rule(port={"name": "http\n"})],
     f'spec.rules[0].http.paths[0].backend.service.port.name: Invalid value: "http\\n": '
     f"{PORT_CHARS}"),
    ([rule(port={"number": 70000})],
     f"spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: {RANGE}"),
])
def test_ingress(client, rules, want):
    assert refused(client, ingress(rules)) == f'The Ingress "web" is invalid: {want}'


def test_wildcard_host_is_accepted(client):
    assert client.create(ingress([rule(host="*.foo.com")]))["spec"]["rules"][0]["host"] == \
        "*.foo.com"


# ---- one implementation -----------------------------------------------------------------------
def test_ingress_model_uses_the_api_validators():
    from netsim.api.kinds import networking
    from netsim.ingress import model
    assert model.ingress_field_errors is networking.ingress_field_errors
    assert model.dns1123_subdomain_errors("a\n") == [SUBDOMAIN]


def test_nothing_under_netsim_api_imports_another_room():
    import ast
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "netsim" / "api"
    bad = []
    for f in root.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{f.name}: {n}" for n in names
                    if n.startswith("netsim.") and not n.startswith("netsim.api")]
    assert bad == []


def test_daemonset_and_statefulset_templates_are_checked_like_pods(client):
    for kind in ("DaemonSet", "StatefulSet"):
        d = deploy({"matchLabels": {"app": "web"}})
        d["kind"] = kind
        d["spec"]["template"]["spec"]["containers"][0]["name"] = "C_1"
        assert refused(client, d) == (
            f'The {kind} "web" is invalid: spec.template.spec.containers[0].name: '
            f'Invalid value: "C_1": {LABEL}')
        d["spec"]["template"]["spec"]["containers"][0]["name"] = "app"
        stored = client.create(d)["spec"]["template"]["spec"]
        assert stored["restartPolicy"] == "Always" and stored["dnsPolicy"] == "ClusterFirst"


def test_problems_reports_what_admission_would_refuse_without_a_store():
    """For consumers meeting an object written around admission."""
    bad = slice_(endpoints=[{"addresses": [NGINX_BREAKOUT]}])
    assert admit.problems(bad)[0] == (f'endpoints[0].addresses[0]: Invalid value: '
                                      f'"{NGINX_BREAKOUT}": must be a valid IPv4 address')
    assert admit.problems(slice_(ports=[{"port": "abc"}])) == [
        "json: cannot unmarshal string into Go struct field EndpointPort.ports.port of type int32"]
    assert admit.problems(slice_()) == []
    good = svc(selector={"app": "web"})
    assert admit.problems(good) == [] and "clusterIP" not in good["spec"]  # untouched
