"""The API from inside the cluster and with ServiceAccount credentials, as a user meets it:
`kubectl create token` gives a JWT that authenticates (`kubectl --token`), a wrong one or
none is `Unauthorized`; the `kubernetes` Service has the API as its endpoint; a pod reaches
https://kubernetes.default.svc with the ServiceAccount files the kubelet mounts (curl with
ca.crt and the token), and a Python-client program run as a pod with
`config.load_incluster_config()` lists the pods, in iptables and in nftables mode.

Pods share the host's filesystem: they run the test run's own interpreter (the venv has the
`kubernetes` client), never a bare `python3`."""

from __future__ import annotations

import base64
import json
import os
import shlex
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from netsim.cluster import pki
from netsim.cluster.lifecycle import api_endpoint
from netsim.net.ledger import state_dir
from netsim.proxy.apply import backend_prefix
from tests.conftest import wait_for
from tests.e2e.kubectl_helpers import KUBECTL, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
LIST_PODS = ("from kubernetes import client, config\n"
             "config.load_incluster_config()\n"
             "for p in client.CoreV1Api().list_namespaced_pod('default').items:\n"
             "    print('pod', p.metadata.name)\n")
CURL = (# a cluster just up: wait (30 s at most) for its DNS to answer the name first
        "for i in $(seq 60); do getent hosts kubernetes.default.svc >/dev/null && break; "
        "sleep 0.5; done; "
        f"curl -sS --cacert {SA_DIR}/ca.crt -H \"Authorization: Bearer $(cat {SA_DIR}/token)\" "
        "https://kubernetes.default.svc/version && echo && "
        # the ClusterIP itself (a name the serving certificate holds too)
        f"curl -sS --cacert {SA_DIR}/ca.crt -H \"Authorization: Bearer $(cat {SA_DIR}/token)\" "
        "https://10.96.0.1:443/livez && echo && "
        f"echo namespace=$(cat {SA_DIR}/namespace)")


def _server(cluster) -> str:
    return f"https://127.0.0.1:{api_endpoint(cluster.name)['port']}"


def _token_kubectl(cluster, token: str | None, *args: str) -> subprocess.CompletedProcess:
    """kubectl with the server, the CA and this token only (an empty kubeconfig: no client
    certificate, which would authenticate before the token is looked at)."""
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    os.makedirs(home, exist_ok=True)
    empty = os.path.join(home, "empty.kubeconfig")
    with open(empty, "w") as f:
        f.write("apiVersion: v1\nkind: Config\n")
    cmd = [KUBECTL, "--kubeconfig", empty, "--server", _server(cluster),
           "--certificate-authority", pki.paths(state_dir(cluster.name)).ca_crt]
    if token is not None:
        cmd += ["--token", token]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "HOME": home})


def test_create_token_gives_a_jwt_that_authenticates(cluster):
    token = kubectl(cluster, "create", "token", "default").stdout.strip()
    head = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert head["alg"] == "ES256" and head["kid"]
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["exp"] - claims["iat"] == 3600
    p = _token_kubectl(cluster, token, "get", "po", "-A")
    assert p.returncode == 0, p.stderr
    assert "coredns-" in p.stdout
    who = _token_kubectl(cluster, token, "auth", "whoami").stdout.splitlines()
    assert who[1].split() == ["Username", "system:serviceaccount:default:default"]
    assert who[3].split(None, 1) == [
        "Groups", "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"]
    assert kubectl(cluster, "auth", "whoami").stdout.splitlines()[1].split() == \
        ["Username", "kubernetes-admin"]
    p = _token_kubectl(cluster, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
                       "get", "po")
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == \
        "error: You must be logged in to the server (Unauthorized)"


def test_no_credentials_is_401(cluster):
    ctx = ssl.create_default_context(cafile=pki.paths(state_dir(cluster.name)).ca_crt)
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(f"{_server(cluster)}/api/v1/namespaces/default/pods",
                               context=ctx, timeout=10)
    assert ei.value.code == 401
    assert json.loads(ei.value.read()) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_a_missing_service_account_refuses_the_pod(cluster):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nosa"},
           "spec": {"serviceAccountName": "foo",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    p = subprocess.run([KUBECTL, "--context", f"netsim-{cluster.name}", "create", "-f", "-"],
                       input=json.dumps(pod), capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": home})
    assert p.returncode == 1
    assert p.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "nosa" is '
        "forbidden: error looking up service account default/foo: serviceaccount \"foo\" "
        "not found")


def test_kubernetes_service_endpoint_is_the_api(cluster):
    cp = next(n for n in cluster.cfg.nodes if n.control_plane)
    ep = yaml.safe_load(kubectl(cluster, "get", "ep", "kubernetes", "-o", "yaml").stdout)
    assert ep["subsets"] == [{"addresses": [{"ip": cp.ip}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    es = yaml.safe_load(kubectl(cluster, "get", "endpointslices", "kubernetes",
                                "-o", "yaml").stdout)
    assert es["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert [e["addresses"] for e in es["endpoints"]] == [[cp.ip]]
    assert es["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


# ---- from pods, per kube-proxy mode -------------------------------------------------------
@pytest.fixture(scope="module", params=["iptables", "nftables"])
def mode(request, cluster):
    """The session's cluster in iptables mode, then the same cluster in nftables mode."""
    if request.param == "nftables":
        cluster.recreate("nftables")
    yield request.param
    if request.param == "nftables":
        cluster.recreate("iptables")


def _pod(name: str, node: str, command: list[str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "incluster"}},
            "spec": {"nodeName": node, "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "python:3.12",
                                     "command": command}]}}


def _run_pods(cluster, pods: list[dict], timeout: float = 90) -> dict[str, str]:
    """Create the pods, wait until each has finished, return their logs by name."""
    c = cluster.client
    for p in pods:
        cluster.netsim("delete", "pod", p["metadata"]["name"], "--ignore-not-found",
                       "--grace-period=0", timeout=60)
        c.create(p)
    names = [p["metadata"]["name"] for p in pods]

    def done():
        phases = {n: (c.get("pods", n, "default").get("status") or {}).get("phase")
                  for n in names}
        return all(ph in ("Succeeded", "Failed") for ph in phases.values()) and phases
    try:
        try:
            wait_for(done, timeout, what=f"pods {names} to finish")
        finally:
            logs = {n: cluster.netsim("logs", n, check=False).stdout for n in names}
        return logs
    finally:
        for n in names:
            cluster.netsim("delete", "pod", n, "--grace-period=0", check=False, timeout=60)


def test_pods_reach_the_api_with_their_service_account(cluster, mode):
    cfg = cluster.cfg
    cp = next(n for n in cfg.nodes if n.control_plane)
    worker = next(n for n in cfg.nodes if not n.control_plane)
    pods = [_pod(f"curl-{n.name[-3:]}", n.name, ["sh", "-c", CURL]) for n in (cp, worker)]
    pods.append(_pod("lister", worker.name, [PYTHON, "-c", LIST_PODS]))
    logs = _run_pods(cluster, pods)
    for n in (cp, worker):
        out = logs[f"curl-{n.name[-3:]}"]
        version = json.loads(out.splitlines()[0])
        assert version["gitVersion"] == "v1.37.0", (mode, out)
        assert out.splitlines()[1:] == ["ok", "namespace=default"], (mode, out)
    listed = [line.split()[1] for line in logs["lister"].splitlines() if line.startswith("pod ")]
    assert {"lister", f"curl-{cp.name[-3:]}"} <= set(listed), (mode, logs["lister"])


def test_kube_proxy_rewrites_rules_someone_deleted(cluster, mode):
    """`nft delete table ip kube-proxy` (nftables) or a flush of the canary chain and the
    nat table (iptables) on a node: kube-proxy notices (its canary check) and rewrites
    everything, so the kubernetes Service answers from that node again."""
    worker = next(n for n in cluster.cfg.nodes if not n.control_plane)
    ns = cluster.node_netns(worker.name)
    if mode == "nftables":
        wipe = [["nft", "delete", "table", "ip", "kube-proxy"]]
        look, wiped = "nft list tables", lambda out: "table ip kube-proxy" not in out
        def back():
            return "table ip kube-proxy" in cluster.in_netns(ns, "nft", "list", "tables").stdout
    else:
        ipt = backend_prefix()  # the backend kube-proxy writes with
        wipe = [[ipt, "-t", "nat", "-F"], [ipt, "-t", "mangle", "-F"],
                [ipt, "-t", "mangle", "-X", "KUBE-PROXY-CANARY"]]
        look = f"{ipt}-save -t nat | grep -c '^-A KUBE-SERVICES' || true"  # grep exits 1 on a count of 0
        wiped = lambda out: out.strip() == "0"  # noqa: E731
        def back():  # the canary too: only the full resync makes it again
            return "-A KUBE-SERVICES" in cluster.in_netns(ns, f"{ipt}-save", "-t", "nat").stdout \
                and "KUBE-PROXY-CANARY" in cluster.in_netns(ns, f"{ipt}-save", "-t", "mangle").stdout
    wait_for(back, 30, what=f"kube-proxy's {mode} rules on {worker.name}")  # a fresh cluster
    # The wipe and the look that it took, in one shell: on a cluster just up, endpoints
    # still change (CoreDNS getting Ready), and a partial sync in between writes
    # KUBE-SERVICES again (not the canaries, nor the flushed service chains: only the
    # full resync the lost canary brings mends those, which the curl below needs).
    after = cluster.in_netns(ns, "sh", "-c", " && ".join(shlex.join(a) for a in wipe)
                             + f" && {look}", check=True).stdout
    assert wiped(after), after
    wait_for(back, 30, what=f"kube-proxy on {worker.name} to rewrite its {mode} rules")
    logs = _run_pods(cluster, [_pod("curl-again", worker.name, ["sh", "-c", CURL])])
    assert logs["curl-again"].splitlines()[1:] == ["ok", "namespace=default"], logs


def test_a_long_lived_token_from_a_secret(cluster):
    """The docs' "manually create a long-lived API token for a ServiceAccount"."""
    docs = ("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: build-robot}\n---\n"
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: build-robot-secret\n"
            "  annotations: {kubernetes.io/service-account.name: build-robot}\n"
            "type: kubernetes.io/service-account-token\n")
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    p = subprocess.run([KUBECTL, "--context", f"netsim-{cluster.name}", "apply", "-f", "-"],
                       input=docs, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": home})
    assert p.returncode == 0, p.stderr
    try:
        token = wait_for(lambda: kubectl(cluster, "get", "secret", "build-robot-secret", "-o",
                                         "jsonpath={.data.token}").stdout, 20,
                         what="the tokens controller to fill build-robot-secret")
        who = _token_kubectl(cluster, base64.b64decode(token).decode(), "auth", "whoami")
        assert who.stdout.splitlines()[1].split() == \
            ["Username", "system:serviceaccount:default:build-robot"], who.stderr
    finally:
        kubectl(cluster, "delete", "secret", "build-robot-secret", check=False)
        kubectl(cluster, "delete", "sa", "build-robot", check=False)
