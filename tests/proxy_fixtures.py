"""One copy of the kube-proxy test fixtures: object builders in the shape of upstream's
makeTestService / makeTestEndpointSlice, upstream's fake-proxier facts (node, node IPs,
clients), upstream's test objects (TestOverall*, TestClusterIPGeneral, TestLoadBalancer,
TestNodePorts, TestExternalTrafficPolicy*, TestNoEndpointsReject) with their packet-flow
tables (runPacketFlowTests), run against the iptables and the nftables renders alike, and
the live-cluster helpers of the netns tests (echo Deployments, Services, curl from a netns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# --- upstream's fake proxier (pkg/proxy/{iptables,nftables}/proxier_test.go) --------------

TEST_NODE = "test-node"
TEST_NODE_IP = "192.168.0.2"
TEST_NODE_IP_ALT = "192.168.1.2"
TEST_EXTERNAL_IP = "192.168.99.11"
TEST_NODE_IPS = [TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP]
TEST_EXTERNAL_CLIENT = "203.0.113.2"
TEST_EXTERNAL_CLIENT_BLOCKED = "203.0.113.130"
POD_CIDR = "10.0.0.0/8"


# --- object builders ------------------------------------------------------------------------

def svc(ns: str, name: str, *, status: dict | None = None, **spec) -> dict:
    obj = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": ns, "name": name}, "spec": spec}
    if status:
        obj["status"] = status
    return obj


def port(name: str, p: int, proto: str = "TCP", **kw) -> dict:
    return {"name": name, "port": p, "protocol": proto, **kw}


def eps(ns: str, name: str, endpoints: list[dict], ports: list[dict] | None = None,
        n: int = 1) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": ns, "name": f"{name}-{n}",
                         "labels": {"kubernetes.io/service-name": name}},
            "endpoints": endpoints, "ports": ports or [port("p80", 80)]}


def ep(ip: str, node: str | None = None, **conditions) -> dict:
    out: dict = {"addresses": [ip]}
    if node is not None:
        out["nodeName"] = node
    if conditions:
        out["conditions"] = conditions
    return out


def lb_status(*ips: str) -> dict:
    return {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}


def snap(services, slices, **kw):
    """upstream NewFakeProxier's view: node test-node with its three IPs, pods in 10/8."""
    from netsim.proxy.model import ProxySnapshot
    return ProxySnapshot.from_objects(
        services, slices, node_name=kw.pop("node_name", TEST_NODE),
        node_ips=kw.pop("node_ips", TEST_NODE_IPS),
        cluster_cidr=kw.pop("cluster_cidr", POD_CIDR), **kw)


# --- upstream's test objects ----------------------------------------------------------------

def overall_objects():
    """TestOverallIPTablesRules / TestOverallNFTablesRules."""
    services = [
        svc("ns1", "svc1", clusterIP="172.30.0.41", ports=[port("p80", 80)]),
        svc("ns2", "svc2", type="LoadBalancer", externalTrafficPolicy="Local",
            clusterIP="172.30.0.42", ports=[port("p80", 80, nodePort=3001)],
            externalIPs=["192.168.99.22"], healthCheckNodePort=30000,
            status=lb_status("1.2.3.4")),
        svc("ns3", "svc3", type="NodePort", clusterIP="172.30.0.43",
            ports=[port("p80", 80, nodePort=3003)]),
        svc("ns4", "svc4", type="NodePort", clusterIP="172.30.0.44",
            externalIPs=["192.168.99.33"], ports=[port("p80", 80, targetPort=80)]),
        svc("ns5", "svc5", type="LoadBalancer", externalTrafficPolicy="Cluster",
            clusterIP="172.30.0.45", ports=[port("p80", 80, nodePort=3002)],
            healthCheckNodePort=30000, loadBalancerSourceRanges=[" 203.0.113.0/25"],
            sessionAffinity="ClientIP",
            sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}},
            status=lb_status("5.6.7.8")),
        svc("ns6", "svc6", type="ClusterIP", clusterIP="172.30.0.46",
            ports=[port("p80", 80, targetPort=80)]),
    ]
    slices = [
        eps("ns1", "svc1", [ep("10.180.0.1")]),
        eps("ns2", "svc2", [ep("10.180.0.2")]),
        eps("ns3", "svc3", [ep("10.180.0.3")]),
        eps("ns4", "svc4", [ep("10.180.0.4"), ep("10.180.0.5", TEST_NODE)]),
        eps("ns5", "svc5", [ep("10.180.0.3")]),
    ]
    return services, slices


def cluster_ip_general_objects():
    """TestClusterIPGeneral: several ports, UDP and SCTP, local + remote endpoints."""
    services = [
        svc("ns1", "svc1", clusterIP="172.30.0.41", ports=[port("http", 80)]),
        svc("ns2", "svc2", clusterIP="172.30.0.42", ports=[
            port("http", 80), port("https", 443, targetPort=8443), port("dns-udp", 53, "UDP"),
            port("dns-tcp", 53, targetPort=5353), port("dns-sctp", 53, "SCTP")]),
    ]
    slices = [
        eps("ns1", "svc1", [ep("10.180.0.1", TEST_NODE)], [port("http", 80)]),
        eps("ns2", "svc2", [ep("10.180.0.1", TEST_NODE), ep("10.180.2.1", "node2")], [
            port("http", 80), port("https", 8443), port("dns-udp", 53, "UDP"),
            port("dns-tcp", 5353), port("dns-sctp", 53, "SCTP")]),
    ]
    return services, slices


def no_endpoints_objects():
    """TestNoEndpointsReject: a LoadBalancer with an external IP and no endpoints."""
    return [svc("ns1", "svc1", type="LoadBalancer", clusterIP="172.30.0.41",
                externalIPs=[TEST_EXTERNAL_IP], ports=[port("p80", 80, nodePort=3001)],
                status=lb_status("1.2.3.4"))], []


def load_balancer_objects():
    """TestLoadBalancer: two LB IPs, source ranges that include the node's own subnet."""
    return ([svc("ns1", "svc1", type="LoadBalancer", clusterIP="172.30.0.41",
                 ports=[port("p80", 80, nodePort=3001)], status=lb_status("1.2.3.4", "5.6.7.8"),
                 loadBalancerSourceRanges=["192.168.0.0/24", " 203.0.113.0/25"])],
            [eps("ns1", "svc1", [ep("10.180.0.1")])])


def node_ports_objects():
    """TestNodePorts: a NodePort with a remote and a local endpoint."""
    return ([svc("ns1", "svc1", type="NodePort", clusterIP="172.30.0.41",
                 ports=[port("p80", 80, nodePort=3001)])],
            [eps("ns1", "svc1", [ep("10.180.0.1"), ep("10.180.2.1", TEST_NODE)])])


def external_policy_objects(policy: str):
    """TestExternalTrafficPolicyLocal / ...Cluster: LB + external IP + NodePort."""
    return ([svc("ns1", "svc1", type="LoadBalancer", externalTrafficPolicy=policy,
                 clusterIP="172.30.0.41", externalIPs=[TEST_EXTERNAL_IP],
                 ports=[port("p80", 80, nodePort=3001, targetPort=80)],
                 status=lb_status("1.2.3.4"),
                 **({"healthCheckNodePort": 30000} if policy == "Local" else {}))],
            [eps("ns1", "svc1", [ep("10.180.0.1"), ep("10.180.2.1", TEST_NODE)])])


# --- packet flows (upstream packetFlowTest) -------------------------------------------------

@dataclass(frozen=True)
class Flow:
    """A packet and where it must end up. `output` is upstream's tracePacket output (the
    endpoints, "DROP", "REJECT", "ACCEPT" or ""), `masq` whether it is masqueraded;
    `nft_output` / `nft_masq` override them for the nftables mode where upstream's two
    test files expect different things."""

    name: str
    src: str
    dst: str
    port: int
    output: str
    masq: bool = False
    proto: str = "tcp"
    nft_output: str | None = None
    nft_masq: bool | None = None

    def expected(self, mode: str) -> tuple[str, bool]:
        if mode != "nftables":
            return self.output, self.masq
        return (self.output if self.nft_output is None else self.nft_output,
                self.masq if self.nft_masq is None else self.nft_masq)


OVERALL_FLOWS = [  # upstream TestTracePacket, over the TestOverall* objects
    Flow("no match", "10.0.0.2", "10.0.0.3", 80, ""),
    Flow("single endpoint", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80"),
    Flow("multiple endpoints", "10.0.0.2", "172.30.0.44", 80, "10.180.0.4:80, 10.180.0.5:80"),
    Flow("LOCAL, KUBE-MARK-MASQ", TEST_NODE_IP, "192.168.99.22", 80, "10.180.0.2:80", masq=True),
    Flow("DROP", TEST_EXTERNAL_CLIENT, "192.168.99.22", 80, "DROP"),
    # nftables mode has no health check node port rule (netsim's renderer, as upstream's)
    Flow("ACCEPT (NodePortHealthCheck)", TEST_NODE_IP, TEST_NODE_IP, 30000, "ACCEPT",
         nft_output=""),
    Flow("REJECT", "10.0.0.2", "172.30.0.46", 80, "REJECT"),
    # more of the same objects: source ranges, affinity, hairpin, Local policy
    Flow("LB source range accepted", TEST_EXTERNAL_CLIENT, "5.6.7.8", 80, "10.180.0.3:80",
         masq=True),
    Flow("LB source range blocked", TEST_EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "DROP"),
    Flow("affinity service from a new client", "10.0.0.2", "172.30.0.45", 80, "10.180.0.3:80"),
    Flow("hairpin through a NodePort service", "10.180.0.3", "172.30.0.43", 80,
         "10.180.0.3:80", masq=True),
    Flow("NodePort, Cluster policy", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3003, "10.180.0.3:80",
         masq=True),
    Flow("NodePort, Local policy, no local endpoint", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001,
         "DROP"),
    Flow("pod to a Local-policy external IP uses every endpoint", "10.0.0.2", "192.168.99.22",
         80, "10.180.0.2:80"),
]

CLUSTER_IP_GENERAL_FLOWS = [
    Flow("simple clusterIP", "10.180.0.2", "172.30.0.41", 80, "10.180.0.1:80"),
    Flow("hairpin to cluster IP", "10.180.0.1", "172.30.0.41", 80, "10.180.0.1:80", masq=True),
    Flow("clusterIP with multiple endpoints", "10.180.0.2", "172.30.0.42", 80,
         "10.180.0.1:80, 10.180.2.1:80"),
    Flow("clusterIP with TargetPort", "10.180.0.2", "172.30.0.42", 443,
         "10.180.0.1:8443, 10.180.2.1:8443"),
    Flow("clusterIP with TCP, UDP, and SCTP on same port (TCP)", "10.180.0.2", "172.30.0.42",
         53, "10.180.0.1:5353, 10.180.2.1:5353"),
    Flow("clusterIP with TCP, UDP, and SCTP on same port (UDP)", "10.180.0.2", "172.30.0.42",
         53, "10.180.0.1:53, 10.180.2.1:53", proto="udp"),
    Flow("clusterIP with TCP, UDP, and SCTP on same port (SCTP)", "10.180.0.2", "172.30.0.42",
         53, "10.180.0.1:53, 10.180.2.1:53", proto="sctp"),
    Flow("TCP-only port does not match UDP traffic", "10.180.0.2", "172.30.0.42", 80, "",
         proto="udp", nft_output="REJECT"),
    Flow("svc1 does not accept svc2's ports", "10.180.0.2", "172.30.0.41", 443, "",
         nft_output="REJECT"),
    Flow("packet to unallocated cluster ip", "10.180.0.2", "172.30.0.50", 80, "",
         nft_output="DROP"),
]

NO_ENDPOINTS_FLOWS = [
    Flow("pod to cluster IP with no endpoints", "10.0.0.2", "172.30.0.41", 80, "REJECT"),
    Flow("external to external IP with no endpoints", TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_IP,
         80, "REJECT"),
    Flow("pod to NodePort with no endpoints", "10.0.0.2", TEST_NODE_IP, 3001, "REJECT"),
    Flow("external to NodePort with no endpoints", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001,
         "REJECT"),
    Flow("pod to LoadBalancer IP with no endpoints", "10.0.0.2", "1.2.3.4", 80, "REJECT"),
    Flow("external to LoadBalancer IP with no endpoints", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80,
         "REJECT"),
]

_EP = "10.180.0.1:80"
LOAD_BALANCER_FLOWS = [
    Flow("pod to cluster IP", "10.0.0.2", "172.30.0.41", 80, _EP),
    Flow("external to nodePort", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001, _EP, masq=True),
    Flow("nodePort bypasses LoadBalancerSourceRanges", TEST_EXTERNAL_CLIENT_BLOCKED,
         TEST_NODE_IP, 3001, _EP, masq=True),
    Flow("accepted external to LB1", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, _EP, masq=True),
    Flow("accepted external to LB2", TEST_EXTERNAL_CLIENT, "5.6.7.8", 80, _EP, masq=True),
    Flow("blocked external to LB1", TEST_EXTERNAL_CLIENT_BLOCKED, "1.2.3.4", 80, "DROP"),
    Flow("blocked external to LB2", TEST_EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "DROP"),
    Flow("pod to LB1 (blocked by LoadBalancerSourceRanges)", "10.0.0.2", "1.2.3.4", 80, "DROP"),
    Flow("pod to LB2 (blocked by LoadBalancerSourceRanges)", "10.0.0.2", "5.6.7.8", 80, "DROP"),
    Flow("node to LB1 (allowed by LoadBalancerSourceRanges)", TEST_NODE_IP, "1.2.3.4", 80, _EP,
         masq=True),
    Flow("node to LB2 (allowed by LoadBalancerSourceRanges)", TEST_NODE_IP, "5.6.7.8", 80, _EP,
         masq=True),
    Flow("same node to LB1, SNATted to LB1 (implicitly allowed)", "1.2.3.4", "1.2.3.4", 80, _EP,
         masq=True),
    Flow("same node to LB2, SNATted to LB2 (implicitly allowed)", "5.6.7.8", "5.6.7.8", 80, _EP,
         masq=True),
]

_BOTH = "10.180.0.1:80, 10.180.2.1:80"
NODE_PORTS_FLOWS = [  # iptables: localhost-nodeports on, every node IP; nftables: primary IP
    Flow("pod to cluster IP", "10.0.0.2", "172.30.0.41", 80, _BOTH),
    Flow("external to nodePort", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001, _BOTH, masq=True),
    Flow("node to nodePort", TEST_NODE_IP, TEST_NODE_IP, 3001, _BOTH, masq=True),
    Flow("localhost to nodePort gets masqueraded", "127.0.0.1", "127.0.0.1", 3001, _BOTH,
         masq=True, nft_output="", nft_masq=False),
    Flow("external to nodePort on secondary IP", TEST_EXTERNAL_CLIENT, TEST_NODE_IP_ALT, 3001,
         _BOTH, masq=True, nft_output="", nft_masq=False),
]

_LOCAL = "10.180.2.1:80"
EXTERNAL_POLICY_LOCAL_FLOWS = [
    Flow("pod to cluster IP hits both endpoints, unmasqueraded", "10.0.0.2", "172.30.0.41", 80,
         _BOTH),
    Flow("pod to external IP hits both endpoints, unmasqueraded", "10.0.0.2", TEST_EXTERNAL_IP,
         80, _BOTH),
    Flow("external to external IP hits only local endpoint, unmasqueraded",
         TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_IP, 80, _LOCAL),
    Flow("pod to LB IP hits only both endpoints, unmasqueraded", "10.0.0.2", "1.2.3.4", 80,
         _BOTH),
    Flow("external to LB IP hits only local endpoint, unmasqueraded", TEST_EXTERNAL_CLIENT,
         "1.2.3.4", 80, _LOCAL),
    Flow("pod to NodePort hits both endpoints, unmasqueraded", "10.0.0.2", TEST_NODE_IP, 3001,
         _BOTH),
    Flow("external to NodePort hits only local endpoint, unmasqueraded", TEST_EXTERNAL_CLIENT,
         TEST_NODE_IP, 3001, _LOCAL),
]

EXTERNAL_POLICY_CLUSTER_FLOWS = [
    Flow("pod to cluster IP hits both endpoints, unmasqueraded", "10.0.0.2", "172.30.0.41", 80,
         _BOTH),
    Flow("pod to external IP hits both endpoints, masqueraded", "10.0.0.2", TEST_EXTERNAL_IP,
         80, _BOTH, masq=True),
    Flow("external to external IP hits both endpoints, masqueraded", TEST_EXTERNAL_CLIENT,
         TEST_EXTERNAL_IP, 80, _BOTH, masq=True),
    Flow("pod to LB IP hits both endpoints, masqueraded", "10.0.0.2", "1.2.3.4", 80, _BOTH,
         masq=True),
    Flow("external to LB IP hits both endpoints, masqueraded", TEST_EXTERNAL_CLIENT, "1.2.3.4",
         80, _BOTH, masq=True),
    Flow("pod to NodePort hits both endpoints, masqueraded", "10.0.0.2", TEST_NODE_IP, 3001,
         _BOTH, masq=True),
    Flow("external to NodePort hits both endpoints, masqueraded", TEST_EXTERNAL_CLIENT,
         TEST_NODE_IP, 3001, _BOTH, masq=True),
]

# TestTerminatingEndpointsTrafficPolicyLocal / ...Cluster (KEP-1669): a LoadBalancer
# 172.30.1.1:80 (LB IP 1.2.3.4) whose slice holds ready, serving-terminating and
# terminating-not-serving endpoints; new connections go to ready endpoints only, to the
# serving-terminating ones when there is no ready one (per policy), never to the others.
_R = {"ready": True, "serving": True, "terminating": False}
_ST = {"ready": False, "serving": True, "terminating": True}
_T = {"ready": False, "serving": False, "terminating": True}


def terminating_objects(policy: str, endpoints: list[tuple[str, str, dict]]):
    """upstream's service of the two tests, with one slice of (ip, node, conditions)."""
    return ([svc("ns1", "svc1", type="LoadBalancer", externalTrafficPolicy=policy,
                 clusterIP="172.30.1.1", ports=[port("", 80, targetPort=80)],
                 healthCheckNodePort=30000, status=lb_status("1.2.3.4"))],
            [eps("ns1", "svc1", [ep(ip, node, **cond) for ip, node, cond in endpoints],
                 [port("", 80)])])


def _terminating_flows(to_cluster_ip: str, to_lb: str, lb_masq: bool) -> list[Flow]:
    name = "external to LB" + (", no locally-usable endpoints" if to_lb == "DROP" else "")
    return [Flow("pod to clusterIP", "10.0.0.2", "172.30.1.1", 80, to_cluster_ip),
            Flow(name, TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, to_lb,
                 masq=lb_masq and to_lb not in ("DROP", "REJECT"))]


TERMINATING_SCENARIOS = [
    ("terminating-local: ready endpoints exist", "Local", [
        ("10.0.1.1", TEST_NODE, _R), ("10.0.1.2", TEST_NODE, _R), ("10.0.1.3", TEST_NODE, _ST),
        ("10.0.1.4", TEST_NODE, _T), ("10.0.1.5", "node-1", _R)],
     _terminating_flows("10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80", "10.0.1.1:80, 10.0.1.2:80",
                        False)),
    ("terminating-local: only terminating endpoints exist", "Local", [
        ("10.0.1.2", TEST_NODE, _ST), ("10.0.1.3", TEST_NODE, _ST), ("10.0.1.4", TEST_NODE, _T),
        ("10.0.1.5", "node-1", _R)],
     _terminating_flows("10.0.1.5:80", "10.0.1.2:80, 10.0.1.3:80", False)),
    ("terminating-local: terminating endpoints on remote node", "Local", [
        ("10.0.1.5", "node-1", _ST)],
     _terminating_flows("10.0.1.5:80", "DROP", False)),
    ("terminating-local: no usable endpoints on any node", "Local", [
        ("10.0.1.5", TEST_NODE, _T), ("10.0.1.5", "node-1", _T)],
     _terminating_flows("REJECT", "REJECT", False)),
    ("terminating-cluster: ready endpoints exist", "Cluster", [
        ("10.0.1.1", TEST_NODE, _R), ("10.0.1.2", TEST_NODE, _R),
        ("10.0.1.3", "another-node", _ST), ("10.0.1.4", "another-node", _T),
        ("10.0.1.5", "another-node", _R)],
     _terminating_flows("10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80",
                        "10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80", True)),
    ("terminating-cluster: only terminating endpoints exist", "Cluster", [
        ("10.0.1.2", TEST_NODE, _ST), ("10.0.1.3", TEST_NODE, _ST),
        ("10.0.1.4", "another-node", _T), ("10.0.1.5", "another-node", _ST)],
     _terminating_flows("10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80",
                        "10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80", True)),
    ("terminating-cluster: terminating endpoints on remote node", "Cluster", [
        ("10.0.1.5", "node-1", _ST)],
     _terminating_flows("10.0.1.5:80", "10.0.1.5:80", True)),
    ("terminating-cluster: no usable endpoints on any node", "Cluster", [
        ("10.0.1.5", TEST_NODE, _T), ("10.0.1.5", "node-1", _T)],
     _terminating_flows("REJECT", "REJECT", True)),
]

# (scenario name, objects, flows): the same table for both modes
FLOW_SCENARIOS = [
    ("overall", overall_objects, OVERALL_FLOWS),
    ("cluster-ip-general", cluster_ip_general_objects, CLUSTER_IP_GENERAL_FLOWS),
    ("no-endpoints", no_endpoints_objects, NO_ENDPOINTS_FLOWS),
    ("load-balancer", load_balancer_objects, LOAD_BALANCER_FLOWS),
    ("node-ports", node_ports_objects, NODE_PORTS_FLOWS),
    ("external-policy-local", lambda: external_policy_objects("Local"),
     EXTERNAL_POLICY_LOCAL_FLOWS),
    ("external-policy-cluster", lambda: external_policy_objects("Cluster"),
     EXTERNAL_POLICY_CLUSTER_FLOWS),
    *((name, (lambda p=policy, e=endpoints: terminating_objects(p, e)), flows)
      for name, policy, endpoints, flows in TERMINATING_SCENARIOS),
]


def flow_cases():
    """pytest parameters: (scenario, objects, flow) for every flow of every scenario."""
    return [(name, objects, f) for name, objects, flows in FLOW_SCENARIOS for f in flows]


def flow_id(case) -> str:
    return f"{case[0]}: {case[2].name}" if isinstance(case, tuple) else str(case)


def check_flow(rules, flow: Flow, mode: str) -> None:
    """runPacketFlowTests for one flow: output and masquerading, with the path on failure."""
    t = rules.trace(flow.src, flow.dst, flow.port, flow.proto, local_ips=TEST_NODE_IPS)
    want = flow.expected(mode)
    assert (t.output, t.masquerade) == want, \
        f"{flow.name}: want {want[0]!r} masq={want[1]}\n{t.describe()}"


# --- live clusters (tests/netns) ------------------------------------------------------------

NS = "default"
MASTER, W1, W2 = "k8s-master-171", "k8s-slave-172", "k8s-slave-173"


def echo_deployment(name: str, labels: dict, replicas: int, port: int = 8080, env=None) -> dict:
    c = {"name": "echo", "image": "netsim/echo", "args": ["--port", str(port)],
         "ports": [{"name": "http", "containerPort": port}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 1}}
    if env:
        c["env"] = env
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [c]}}}}


def selector_service(name: str, selector: dict, *, typ="ClusterIP", node_port=None, local=False,
                     sticky=False, port=80, target=8080, ns=NS) -> dict:
    p = {"port": port, "targetPort": target, "protocol": "TCP"}
    if node_port:
        p["nodePort"] = node_port
    spec = {"type": typ, "selector": selector, "ports": [p]}
    if local:
        spec["externalTrafficPolicy"] = "Local"
    if sticky:
        spec["sessionAffinity"] = "ClientIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def curl(cluster, netns: str | None, url: str, max_time: int = 5):
    """(curl exit code, the echo answer as JSON or None); netns None: the host."""
    import subprocess
    cmd = ["curl", "-s", "-m", str(max_time), url]
    if netns is None:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max_time + 10)
    else:
        p = cluster.in_netns(netns, *cmd, timeout=max_time + 10)
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None)


def curl_many(cluster, netns: str, url: str, n: int) -> list[dict]:
    """n separate connections (one curl each) from one netns, answers as JSON."""
    script = f'for i in $(seq {n}); do curl -s -m 5 {url}; echo; echo "@@"; done'
    p = cluster.in_netns(netns, "sh", "-c", script, timeout=30 + n)
    return [json.loads(c) for c in p.stdout.split("@@") if c.strip()]


def pod_many(cluster, pod: str, url: str, n: int) -> list[dict]:
    """n connections from a pod; failed ones are left out (see the hairpin test)."""
    script = (f'for i in $(seq {n}); do curl -s --connect-timeout 1 -m 3 {url}; echo; '
              'echo "@@"; done')
    p = cluster.pod_exec(pod, "sh", "-c", script, timeout=30 + 4 * n)
    return [json.loads(c) for c in p.stdout.split("@@") if c.strip()]


def lan_ip(cluster, host: int) -> str:
    import ipaddress
    return str(ipaddress.ip_network(cluster.lan)[host])


def pod_on(echo: dict, node: str) -> dict:
    return next(p for p in echo["pods"].values() if p["spec"]["nodeName"] == node)


def echo_setup(cluster, prefix: str, node_ports: tuple[int, int]):
    """The echo fixture of both netns modules: Deployment `{prefix}-echo` (3 pods) and its
    Services (cip, np, local, sticky, none); yields facts, then deletes them all."""
    from tests.conftest import wait_for
    c = cluster.client
    labels = {"app": f"{prefix}-echo"}
    c.create(echo_deployment(f"{prefix}-echo", labels, 3))
    svcs = {
        "cip": selector_service(f"{prefix}-echo", labels),
        "np": selector_service(f"{prefix}-np", labels, typ="NodePort", node_port=node_ports[0]),
        "local": selector_service(f"{prefix}-local", labels, typ="NodePort",
                                  node_port=node_ports[1], local=True),
        "sticky": selector_service(f"{prefix}-sticky", labels, sticky=True),
        "none": selector_service(f"{prefix}-none", {"app": f"{prefix}-nobody"}),
    }
    made = {k: c.create(v) for k, v in svcs.items()}
    pods = cluster.wait_pods_ready(NS, f"app={prefix}-echo", 3, timeout=60)
    facts = {
        "cip": {k: v["spec"]["clusterIP"] for k, v in made.items()},
        "pods": {p["metadata"]["name"]: p for p in pods},
        "ips": {n.name: n.ip for n in cluster.cfg.nodes},
    }
    # rules are in place on every node once the cluster IP answers there
    for node in facts["ips"]:
        wait_for(lambda node=node: curl(cluster, cluster.node_netns(node),
                                        f"http://{facts['cip']['cip']}/", 2)[0] == 0,
                 30, what=f"ClusterIP answering on {node}")
    yield facts
    for s in svcs.values():
        c.delete("services", s["metadata"]["name"], NS)
    c.delete("deployments", f"{prefix}-echo", NS)


def check_live_flows(rules_of, cluster, echo: dict, node_ports: tuple[int, int]) -> None:
    """ruleflow over a live node's rules (`rules_of(node)`) says what the real packets of
    the netns tests saw: every endpoint, REJECT without endpoints, Local policy's local pod
    only (unmasqueraded) or DROP, masquerading for outside clients and hairpins."""
    ends = ", ".join(sorted(f"{p['status']['podIP']}:8080" for p in echo["pods"].values()))
    client, cip, ips = lan_ip(cluster, 50), echo["cip"], echo["ips"]
    hairpin = pod_on(echo, W1)["status"]["podIP"]
    on_w1 = ", ".join(sorted(f"{p['status']['podIP']}:8080" for p in echo["pods"].values()
                             if p["spec"]["nodeName"] == W1))
    np_cluster, np_local = node_ports
    for node, flows in (
        (MASTER, [(client, cip["cip"], 80, ends, True),
                  (client, ips[MASTER], np_local, "DROP", False),
                  (client, ips[MASTER], np_cluster, ends, True)]),
        (W1, [(hairpin, cip["cip"], 80, ends, True),
              (hairpin, cip["none"], 80, "REJECT", False),
              (client, ips[W1], np_local, on_w1, False)]),
    ):
        rules = rules_of(node)
        for src, dst, port, output, masq in flows:
            t = rules.trace(src, dst, port, local_ips=[ips[node]])
            assert (t.output, t.masquerade) == (output, masq), t.describe()
