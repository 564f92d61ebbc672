"""Testing network code with netsim: an echo Service, seen from a client pod, from raw
packets and from a machine on the LAN.

Run as root, with netsim installed (the pytest plugin comes with it):

    sudo python -m pytest examples/pytest -v

The `netsim_cluster` fixture is a netsim.Cluster brought up once for the session (here
with 2 nodes, asked for by the marker) and taken down at the end, even when a test fails
or the run is interrupted; `--netsim-keep` leaves it up for a look around.
"""

import contextlib
import json

import pytest
from scapy.all import IP, TCP

pytestmark = pytest.mark.netsim(nodes=2)  # a control-plane node and one worker

MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        image: netsim/echo:v1          # netsim's HTTP echo: says who answered and to whom
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  type: NodePort
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: busybox                      # with a command, any host program runs in the pod
    command: [sleep, infinity]
"""


@pytest.fixture(scope="module")
def echo(netsim_cluster):
    """The echo Deployment, its Service and a client pod, ready."""
    netsim_cluster.apply(MANIFESTS)
    netsim_cluster.wait("deploy/echo", timeout=60)
    netsim_cluster.wait("svc/echo", timeout=60)  # every node's kube-proxy sends it on
    netsim_cluster.wait("pod/client", timeout=60)
    yield netsim_cluster
    netsim_cluster.delete(MANIFESTS)


def backends(cluster) -> dict:
    """The echo pods by IP."""
    return {p.ip: p for p in cluster.pods("app=echo")}


def test_client_pod_reaches_echo_through_its_service(echo):
    client = echo.pod("client")
    seen = set()
    for _ in range(20):
        out = client.exec(["curl", "-s", "-m", "5", "http://echo/"], check=True)  # cluster DNS
        reply = json.loads(out.stdout)
        assert reply["pod_ip"] in backends(echo)
        assert reply["client"].split(":")[0] == client.ip  # no SNAT inside the cluster
        seen.add(reply["pod"])
    assert len(seen) == 2, f"kube-proxy spread 20 requests over {seen} only"


def test_raw_syn_to_the_cluster_ip_is_answered_by_a_pod_after_dnat(echo):
    svc_ip = echo.get("svc", "echo")["spec"]["clusterIP"]
    client = echo.pod("client")
    pods = backends(echo)
    only_ours = f"host {client.ip} and tcp port 43210"  # not the kubelet's readiness probes
    with contextlib.ExitStack() as stack:  # tcpdump on each backend's eth0 meanwhile
        caps = {ip: stack.enter_context(p.capture(count=3, timeout=2, filter=only_ours))
                for ip, p in pods.items()}
        answers = client.send(IP(dst=svc_ip) / TCP(sport=43210, dport=80, flags="S"))

    # the client sees the Service answer: conntrack undid the DNAT on the way back
    assert len(answers) == 1
    synack = answers[0]
    assert (synack[IP].src, synack[TCP].sport, str(synack[TCP].flags)) == (svc_ip, 80, "SA")

    # one backend got the SYN at its own address and port, and answered from there
    [(pod_ip, cap)] = [(ip, c) for ip, c in caps.items() if c.packets]
    syn, reply = cap.packets[0], cap.packets[1]
    assert (syn[IP].src, syn[IP].dst, syn[TCP].dport, str(syn[TCP].flags)) == \
        (client.ip, pod_ip, 8080, "S")
    assert (reply[IP].src, reply[IP].dst, reply[TCP].sport, str(reply[TCP].flags)) == \
        (pod_ip, client.ip, 8080, "SA")
    assert reply[TCP].ack == syn[TCP].seq + 1 == synack[TCP].ack


def test_nodeport_from_a_machine_on_the_lan(echo):
    node_port = echo.get("svc", "echo")["spec"]["ports"][0]["nodePort"]
    laptop = echo.lan_host("laptop")  # a netns on the nodes' LAN, removed with the cluster
    for name in echo.node_names:  # every node answers, the control-plane one too
        node = echo.node(name)
        out = laptop.exec(["curl", "-s", "-m", "5", f"http://{node.ip}:{node_port}/"], check=True)
        assert json.loads(out.stdout)["pod_ip"] in backends(echo)


def test_trace_names_the_rules_and_the_endpoint(echo):
    trace = echo.trace("pod/client", "svc/echo")
    assert trace["verdict"] == "delivered"
    assert trace["delivered_to"]["ip"] in backends(echo)
    assert trace["delivered_to"]["port"] == 8080
