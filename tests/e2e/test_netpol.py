"""NetworkPolicy on a real cluster (issue 13; root): real connections between pods in their
own netns, through the node's iptables written by its policy agent.

A default-deny-ingress policy makes a connection to the web pod fail (REJECT: at once, not
after a timeout); an allow rule for the pods labelled app=client lets the client through
within a second while the stranger stays out (until it is labelled app=client itself);
deleting the policies opens everything
again; an egress policy that allows only DNS keeps a pod from the web pod but not from
kube-dns. The pods are spread by the scheduler, so some of these connections cross nodes.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest

from netsim.inspect.capture import pod_netns
from netsim.net.rtnl import in_netns
from tests.conftest import requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "netpol-e2e"
PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too
EFFECT_SECONDS = 1.0  # "a policy change takes effect on every node within a second"


@pytest.fixture(scope="module")
def pods(cluster):
    cluster.netsim("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n"
                                             f"  name: {NS}\n")

    def pod(name: str, app: str, **container) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", **container}]}}

    objs = [pod("web", "web", image="netsim/echo",
                ports=[{"name": "http", "containerPort": 8080}]),
            pod("client", "client", image="busybox", args=["sleep", "3600"]),
            pod("stranger", "stranger", image="busybox", args=["sleep", "3600"])]
    for o in objs:
        cluster.netsim("apply", "-f", "-", input=json.dumps(o))
    for app in ("web", "client", "stranger"):
        cluster.wait_pods_ready(NS, f"app={app}", 1)
    web = cluster.client.get("pods", "web", NS)
    yield web["status"]["podIP"]
    cluster.netsim("delete", "namespace", NS, check=False, timeout=120)


def connects(cluster, pod: str, ip: str, port: int = 8080) -> bool:
    """A TCP connect from inside the pod's netns (what `netsim exec POD -- curl` does, without
    a CLI process per probe: the timings below are the policy agent's, not the CLI's)."""
    path = f"/run/netns/{pod_netns(cluster.cfg, cluster.client.get('pods', pod, NS))}"
    res: dict = {}

    def run() -> None:  # setns moves the calling thread only
        with in_netns(path):
            try:
                socket.create_connection((ip, port), timeout=1).close()
                res["ok"] = True
            except OSError:
                res["ok"] = False
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return res["ok"]


def apply(cluster, obj: dict) -> float:
    cluster.netsim("apply", "-f", "-", input=json.dumps(obj))
    return time.monotonic()


def policy(name: str, **spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def until(pred, what: str, started: float, within: float = EFFECT_SECONDS) -> float:
    """Wait for `pred`; how long after `started` it held (the test allows some slack for
    the probes themselves and a loaded machine, and asserts the bound on the measured
    time)."""
    wait_for(pred, timeout=10, interval=0.05, what=what)
    took = time.monotonic() - started
    print(f"{what}: {took * 1000:.0f} ms after the apply returned")
    assert took < within + 1.5, f"{what} took {took:.2f}s"
    return took


def test_default_deny_then_allow_from_client(cluster, pods):
    web = pods
    assert connects(cluster, "client", web) and connects(cluster, "stranger", web)
    t = apply(cluster, policy("default-deny-ingress", podSelector={}, policyTypes=["Ingress"]))
    until(lambda: not connects(cluster, "client", web), "default deny to block client", t)
    assert not connects(cluster, "stranger", web)
    t = apply(cluster, policy("allow-from-client", podSelector={"matchLabels": {"app": "web"}},
                              ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                                        "ports": [{"port": "http"}]}]))
    until(lambda: connects(cluster, "client", web), "allow-from-client to let client in", t)
    assert not connects(cluster, "stranger", web)
    out = cluster.netsim("get", "netpol", "-n", NS, "-o", "name")
    assert out.stdout.split() == ["networkpolicy.networking.k8s.io/allow-from-client",
                                  "networkpolicy.networking.k8s.io/default-deny-ingress"]
    # a label change re-renders: stranger labelled app=client is let in, and out again
    t = time.monotonic()
    cluster.netsim("label", "pod", "-n", NS, "stranger", "app=client", "--overwrite")
    until(lambda: connects(cluster, "stranger", web), "relabelled stranger let in", t)
    t = time.monotonic()
    cluster.netsim("label", "pod", "-n", NS, "stranger", "app=stranger", "--overwrite")
    until(lambda: not connects(cluster, "stranger", web), "stranger out again", t)
    out = cluster.netsim("describe", "netpol", "-n", NS, "allow-from-client").stdout
    assert "  PodSelector:     app=web\n" in out and "    To Port: http/TCP\n" in out, out
    table = cluster.netsim("get", "netpol", "-n", NS).stdout.splitlines()
    assert table[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert table[1].split()[:2] == ["allow-from-client", "app=web"]
    assert table[2].split()[:2] == ["default-deny-ingress", "<none>"]
    cluster.netsim("delete", "netpol", "-n", NS, "default-deny-ingress", "allow-from-client")
    t = time.monotonic()
    until(lambda: connects(cluster, "stranger", web), "deleting the policies to open web", t)


def test_egress_deny_but_dns(cluster, pods):
    web = pods
    dns = cluster.client.list("pods", "kube-system", "k8s-app=kube-dns")
    assert dns, "no kube-dns pods"
    dns_ip = dns[0]["status"]["podIP"]
    t = apply(cluster, policy(
        "egress-dns-only", podSelector={"matchLabels": {"app": "client"}},
        policyTypes=["Egress"],
        egress=[{"to": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]))
    try:
        until(lambda: not connects(cluster, "client", web), "egress deny to block client", t)
        assert connects(cluster, "client", dns_ip, 53)
        assert connects(cluster, "stranger", web)
    finally:
        cluster.netsim("delete", "netpol", "-n", NS, "egress-dns-only", check=False)
