"""Node lifecycle as a user drives it (issue #12): drain and cordon with a
PodDisruptionBudget (netsim and the real kubectl), set env and create secret
docker-registry, node add/remove on a running cluster, taint-based eviction after
tolerationSeconds when a node stops, kubelet maxPods and FailedScheduling.

The module runs the session's cluster again with NETSIM_NODE_MONITOR_GRACE=15 (the
node-monitor grace period: a stopped node turns NotReady after 15 s instead of 40 s; the
kubelet posts its status every 10 s). NETSIM_DEFAULT_TOLERATION_SECONDS is left alone: the
pods with the default 300 s must stay. The maxPods case runs it with --max-pods 3. The
cluster is brought back as the session made it at the end.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_root, wait_for
from tests.e2e.kubectl_helpers import kubectl, requires_kubectl

pytestmark = requires_root
GRACE = "15"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


def _reup(cluster, *flags: str, env: dict | None = None) -> None:
    for args in (("cluster", "down", "--name", cluster.name),
                 ("cluster", "up", "--name", cluster.name, "--lan", cluster.lan, *flags)):
        p = subprocess.run([sys.executable, "-m", "netsim.cli.main", *args],
                           capture_output=True, text=True, timeout=180,
                           env={**os.environ, **(env or {})})
        assert p.returncode == 0 or args[1] == "down", p.stdout + p.stderr


@pytest.fixture(scope="module")
def lc(cluster):
    _reup(cluster, env={"NETSIM_NODE_MONITOR_GRACE": GRACE})
    yield cluster
    _reup(cluster)


def _apply(cluster, doc: dict | list) -> None:
    docs = doc if isinstance(doc, list) else [doc]
    cluster.netsim("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))


def _deployment(name: str, replicas: int, tolerations: list | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "echo"}]}
    if tolerations:
        spec["tolerations"] = tolerations
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def _pods(cluster, selector: str) -> list[dict]:
    return cluster.client.list("pods", "default", selector)


def _live(cluster, selector: str) -> list[dict]:
    return [p for p in _pods(cluster, selector) if not p["metadata"].get("deletionTimestamp")]


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _taints(cluster, node: str) -> set[tuple[str, str]]:
    n = cluster.client.get("nodes", node)
    return {(t["key"], t["effect"]) for t in (n.get("spec") or {}).get("taints") or []}


def _workers(cluster) -> list[str]:
    return [n.name for n in cluster.cfg.nodes if not n.control_plane]


def _delete(cluster, *what: str) -> None:
    cluster.netsim("delete", *what, "--ignore-not-found", "--wait=false", check=False)


# ---- drain, cordon, PodDisruptionBudget --------------------------------------------------

def test_drain_honours_the_budget_and_cordon_taints(lc):
    _apply(lc, [_deployment("web", 4), {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb", "namespace": "default"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}}])
    lc.wait_pods_ready("default", "app=web", 4)
    wait_for(lambda: lc.client.get("poddisruptionbudgets", "web-pdb", "default")
             ["status"].get("disruptionsAllowed") == 1, 20, what="the budget's status")
    assert lc.netsim("get", "pdb").stdout.splitlines()[1].split()[:4] == \
        ["web-pdb", "3", "N/A", "1"]
    # the worker with the most web pods
    by_node: dict[str, list[str]] = {}
    for p in _live(lc, "app=web"):
        by_node.setdefault(p["spec"]["nodeName"], []).append(p["metadata"]["name"])
    node = max(by_node, key=lambda n: len(by_node[n]))
    on_node = by_node[node]
    t0 = time.monotonic()
    r = lc.netsim("drain", node, "--ignore-daemonsets", "--timeout=120s", timeout=180)
    lines = r.stdout.splitlines()
    assert lines[0] == f"node/{node} cordoned" and lines[-1] == f"node/{node} drained"
    for name in on_node:
        assert f"evicting pod default/{name}" in lines and f"pod/{name} evicted" in lines
    if len(on_node) > 1:  # one at a time: the budget refused the others until a new one was up
        assert ("(will retry after 5s): Cannot evict pod as it would violate the pod's "
                "disruption budget.") in r.stderr
    print(f"drain of {len(on_node)} web pods under minAvailable 3: {time.monotonic() - t0:.1f}s")
    assert not [p for p in _live(lc, "app=web") if p["spec"]["nodeName"] == node]
    lc.wait_pods_ready("default", "app=web", 4)
    wait_for(lambda: (UNSCHEDULABLE, "NoSchedule") in _taints(lc, node), 10,
             what="the unschedulable taint")
    assert "Ready,SchedulingDisabled" in lc.netsim("get", "node", node).stdout
    assert lc.netsim("uncordon", node).stdout == f"node/{node} uncordoned\n"
    wait_for(lambda: (UNSCHEDULABLE, "NoSchedule") not in _taints(lc, node), 10,
             what="the unschedulable taint to go")

    # a pod no controller owns stops the drain, nothing is evicted
    _apply(lc, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "default"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "echo"}]}})
    r = lc.netsim("drain", node, "--ignore-daemonsets", check=False)
    assert r.returncode == 1
    assert r.stdout == f"node/{node} cordoned\n"
    assert ("cannot delete Pods that declare no controller (use --force to override): "
            "default/bare") in r.stderr
    assert f"There are pending nodes to be drained:\n {node}\n" in r.stderr
    assert lc.client.get("pods", "bare", "default")
    lc.netsim("uncordon", node)
    _delete(lc, "pod", "bare", "--grace-period=0", "--force")


@requires_kubectl
def test_real_kubectl_drains_netsim_nodes(lc):
    lc.wait_pods_ready("default", "app=web", 4)
    node = next(p["spec"]["nodeName"] for p in _live(lc, "app=web"))
    names = [p["metadata"]["name"] for p in _live(lc, "app=web") if p["spec"]["nodeName"] == node]
    r = kubectl(lc, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                "--timeout=120s", timeout=180)
    out = r.stdout.splitlines()
    assert out[0] == f"node/{node} cordoned" and out[-1] == f"node/{node} drained"
    for name in names:
        assert f"pod/{name} evicted" in out
    lc.wait_pods_ready("default", "app=web", 4)
    assert kubectl(lc, "uncordon", node).stdout == f"node/{node} uncordoned\n"
    _delete(lc, "pdb", "web-pdb")
    _delete(lc, "deploy", "web")


# ---- set env, create secret docker-registry ---------------------------------------------

def test_set_env_rolls_the_deployment_out(lc):
    _apply(lc, _deployment("envy", 1))
    lc.wait_pods_ready("default", "app=envy", 1)
    lc.netsim("create", "configmap", "envy-cfg", "--from-literal=log.level=debug")
    r = lc.netsim("set", "env", "deploy/envy", "GREETING=hello", "--from=configmap/envy-cfg",
                  "--prefix=APP_")
    assert r.stdout == "deployment.apps/envy env updated\n"
    assert r.stderr == "Warning: key log.level transferred to LOG_LEVEL\n"
    lc.netsim("rollout", "status", "deploy/envy", "--timeout=60s", timeout=90)
    pod = wait_for(lambda: [p for p in _live(lc, "app=envy") if _ready(p)
                            and p["spec"]["containers"][0].get("env")], 30,
                   what="a pod of the new template")[0]
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "APP_GREETING", "value": "hello"},
        {"name": "APP_LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "envy-cfg",
                                                                     "key": "log.level"}}}]
    assert lc.netsim("set", "env", "deploy/envy", "--list", "--resolve").stdout == (
        "# Deployment envy, container c\nAPP_GREETING=hello\nAPP_LOG_LEVEL=debug\n")
    rs = [r for r in lc.client.list("replicasets", "default", "app=envy")]
    assert len(rs) == 2  # the rollout's new ReplicaSet
    r = lc.netsim("set", "env", "deploy/envy", "APP_GREETING=bye", "--overwrite=false",
                  check=False)
    assert r.returncode == 1 and r.stderr == (
        "error: deployments/envy 'APP_GREETING' already has a value (hello), and --overwrite "
        "is false\n")
    _delete(lc, "deploy", "envy")
    _delete(lc, "configmap", "envy-cfg")


@requires_kubectl
def test_docker_registry_secret_is_kubectls(lc):
    args = ["secret", "docker-registry", "--docker-server=reg.example:5000",
            "--docker-username=u", "--docker-password=p<&>", "--docker-email=e@x.org"]
    r = lc.netsim("create", args[0], args[1], "regcred", *args[2:])
    assert r.stdout == "secret/regcred created\n"
    kubectl(lc, "create", args[0], args[1], "regcred-k", *args[2:])
    mine = lc.client.get("secrets", "regcred", "default")
    theirs = lc.client.get("secrets", "regcred-k", "default")
    assert mine["type"] == theirs["type"] == "kubernetes.io/dockerconfigjson"
    assert mine["data"] == theirs["data"]
    cfg = json.loads(base64.b64decode(mine["data"][".dockerconfigjson"]))
    assert cfg["auths"]["reg.example:5000"]["auth"] == base64.b64encode(b"u:p<&>").decode()
    _delete(lc, "secret", "regcred")
    _delete(lc, "secret", "regcred-k")


# ---- node add / remove ---------------------------------------------------------------------

def _curl_pod(cluster, pod: str, ip: str) -> str:
    r = cluster.pod_exec(pod, "curl", "-s", "-m", "5", f"http://{ip}:8080/")
    return json.loads(r.stdout)["pod"] if r.returncode == 0 and r.stdout.strip() else ""


def test_node_add_brings_a_daemonset_pod_and_remove_leaves_nothing(lc):
    from netsim.net import netlink as nl
    from netsim.net.topology import lan_port_name
    _apply(lc, {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})
    lc.wait_pods_ready("default", "app=agent", len(_workers(lc)))
    t0 = time.monotonic()
    r = lc.netsim("node", "add", timeout=120)
    new = r.stdout.splitlines()[-1].removeprefix("node/").removesuffix(" created")
    assert r.stdout.splitlines()[-1] == f"node/{new} created"
    spec = next(n for n in lc.cfg.nodes if n.name == new)
    pods = lc.wait_pods_ready("default", "app=agent", len(_workers(lc)), timeout=60)
    print(f"node add -> its DaemonSet pod Ready: {time.monotonic() - t0:.1f}s")
    mine = next(p for p in pods if p["spec"]["nodeName"] == new)
    other = next(p for p in pods if p["spec"]["nodeName"] != new)
    assert ipaddress.ip_address(mine["status"]["podIP"]) in ipaddress.ip_network(spec.pod_cidr)
    # pods answer across nodes, both ways
    assert _curl_pod(lc, mine["metadata"]["name"], other["status"]["podIP"]) == \
        other["metadata"]["name"]
    assert _curl_pod(lc, other["metadata"]["name"], mine["status"]["podIP"]) == \
        mine["metadata"]["name"]
    assert "Ready" in lc.netsim("get", "node", new).stdout

    r = lc.netsim("node", "remove", new, timeout=120)
    assert f"node/{new} cordoned" in r.stdout and f"node/{new} drained" in r.stdout
    assert f'node "{new}" deleted' in r.stdout
    assert r.stderr == f"Warning: ignoring DaemonSet-managed Pods: default/{mine['metadata']['name']}\n"
    # nothing of it is left: Node, pods, netns, LAN port, routes, records
    assert lc.client.get_or_none("nodes", new) is None
    wait_for(lambda: not lc.client.list("pods", None, field_selector=f"spec.nodeName={new}"),
             30, what="its pods to go")
    assert not nl.netns_exists(lc.node_netns(new))
    assert lan_port_name(new) not in lc.in_netns(lc.cfg.lan_netns, "ip", "-br", "link").stdout
    for n in lc.cfg.nodes:
        assert spec.pod_cidr not in lc.in_netns(lc.node_netns(n.name), "ip", "route").stdout
    assert new not in [n.name for n in lc.cfg.nodes]
    assert not os.path.exists(f"/var/lib/netsim/{lc.name}/nodes/{new}")
    assert not os.path.exists(f"/var/lib/netsim/{lc.name}/ipam/{new}.json")
    lc.wait_pods_ready("default", "app=agent", len(_workers(lc)))
    _delete(lc, "ds", "agent")


def test_remove_of_a_stopped_node_takes_its_pods_away_at_once(lc):
    """`node stop X` then `node remove X`: no kubelet is left to finish a graceful delete,
    so the drain evicts with grace period 0 and, once the Node is deleted, the DaemonSet's
    pod goes as the pod GC controller takes an orphan (Failed, DisruptionTarget
    DeletionByPodGC, force-deleted), without the 40 s quarantine: when the command returns
    nothing is bound to the node, and the Deployment's pod runs again elsewhere."""
    _apply(lc, {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "gc-agent", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "gc-agent"}},
                         "template": {"metadata": {"labels": {"app": "gc-agent"}},
                                      "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})
    new = lc.netsim("node", "add", timeout=120).stdout.splitlines()[-1].removeprefix(
        "node/").removesuffix(" created")
    others = [w for w in _workers(lc) if w != new]
    for w in others:
        lc.netsim("cordon", w)
    try:
        _apply(lc, _deployment("onnew", 1))
        (web,) = lc.wait_pods_ready("default", "app=onnew", 1, timeout=60)
    finally:
        for w in others:
            lc.netsim("uncordon", w)
    assert web["spec"]["nodeName"] == new
    ds = next(p for p in lc.wait_pods_ready("default", "app=gc-agent", len(_workers(lc)),
                                            timeout=60) if p["spec"]["nodeName"] == new)
    lc.netsim("node", "stop", new)
    t0 = time.monotonic()
    r = lc.netsim("node", "remove", new, timeout=120)
    print(f"node remove of a stopped node: {time.monotonic() - t0:.1f}s")
    name = web["metadata"]["name"]
    assert f"evicting pod default/{name}" in r.stdout and f"pod/{name} evicted" in r.stdout
    assert f'node "{new}" deleted' in r.stdout
    assert f'pod "{ds["metadata"]["name"]}" force deleted from default namespace' in r.stdout
    # at once: no pod of it left, not even Terminating
    assert lc.client.list("pods", None, field_selector=f"spec.nodeName={new}") == []
    assert lc.client.get_or_none("nodes", new) is None
    assert new not in lc.netsim("get", "pods", "-o", "wide").stdout
    (again,) = lc.wait_pods_ready("default", "app=onnew", 1, timeout=60)
    assert again["spec"]["nodeName"] in others
    assert sorted(p["spec"]["nodeName"] for p in lc.wait_pods_ready(
        "default", "app=gc-agent", len(others), timeout=60)) == sorted(others)
    _delete(lc, "deploy", "onnew")
    _delete(lc, "ds", "gc-agent")


# ---- taint-based eviction --------------------------------------------------------------------

def _event(cluster, reason: str, pod: str) -> dict | None:
    return next((e for e in cluster.client.list("events", "default")
                 if e.get("reason") == reason and e["involvedObject"]["name"] == pod), None)


def test_stopped_node_evicts_after_toleration_seconds(lc):
    from netsim.api.timeutil import rfc3339_seconds
    stay, go = _workers(lc)[:2]
    lc.netsim("cordon", go)  # both Deployments' pods on `stay` first
    tol = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
           for k in (UNREACHABLE, "node.kubernetes.io/not-ready")]
    _apply(lc, [_deployment("quick", 2, tol), _deployment("slow", 2)])
    quick = lc.wait_pods_ready("default", "app=quick", 2)
    slow = lc.wait_pods_ready("default", "app=slow", 2)
    assert {p["spec"]["nodeName"] for p in quick + slow} == {stay}
    assert slow[0]["spec"]["tolerations"][-1] == {
        "key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    lc.netsim("uncordon", go)
    lc.netsim("node", "stop", stay)
    try:
        wait_for(lambda: (UNREACHABLE, "NoExecute") in _taints(lc, stay), 60,
                 what="the unreachable taint")
        node = lc.client.get("nodes", stay)
        added = rfc3339_seconds(next(t["timeAdded"] for t in node["spec"]["taints"]
                                     if t["key"] == UNREACHABLE and t["effect"] == "NoExecute"))
        assert "NotReady" in lc.netsim("get", "node", stay).stdout
        names = [p["metadata"]["name"] for p in quick]
        events = wait_for(lambda: [e for e in (_event(lc, "TaintManagerEviction", n)
                                               for n in names) if e] if all(
            _event(lc, "TaintManagerEviction", n) for n in names) else None, 30,
            what="TaintManagerEviction events")
        for e, n in zip(events, names, strict=True):
            assert e["message"] == f"Marking for deletion Pod default/{n}"
            assert e["source"]["component"] == "taint-eviction-controller"
            waited = rfc3339_seconds(e["firstTimestamp"]) - added
            print(f"{n}: evicted {waited:.1f}s after the NoExecute taint (tolerationSeconds 5)")
            assert 4.0 <= waited <= 10.0, waited
            assert lc.client.get("pods", n, "default")["metadata"].get("deletionTimestamp")
        # their ReplicaSet made them again on the node that runs
        again = wait_for(lambda: [p for p in _live(lc, "app=quick") if _ready(p)
                                  and p["spec"]["nodeName"] == go] if len(
            [p for p in _live(lc, "app=quick") if _ready(p)]) == 2 else None, 60,
            what="2 new quick pods on the other node")
        assert {p["metadata"]["name"] for p in again}.isdisjoint(names)
        time.sleep(5)  # the default's pods: 300 s, still there well after the 5 s ones left
        assert all(not p["metadata"].get("deletionTimestamp") for p in _pods(lc, "app=slow"))
        assert len(_pods(lc, "app=slow")) == 2
    finally:
        lc.netsim("node", "start", stay)
    wait_for(lambda: not _taints(lc, stay) & {(UNREACHABLE, "NoExecute"),
                                              (UNREACHABLE, "NoSchedule")}, 60,
             what="the taints to go when the node is back")
    wait_for(lambda: not [p for p in _pods(lc, "app=quick") if p["spec"]["nodeName"] == stay],
             60, what="the evicted pods to finish on the node that came back")
    _delete(lc, "deploy", "quick")
    _delete(lc, "deploy", "slow")


# ---- maxPods -----------------------------------------------------------------------------------

def test_max_pods_leaves_pods_pending_in_the_schedulers_words(lc):
    _reup(lc, "--max-pods", "3", env={"NETSIM_NODE_MONITOR_GRACE": GRACE})
    for n in lc.client.list("nodes"):
        assert n["status"]["capacity"]["pods"] == "3" == n["status"]["allocatable"]["pods"]
    _apply(lc, _deployment("big", 10))
    workers = _workers(lc)

    def full():  # every worker holds 3 pods (coredns may hold some of them), the rest wait
        bound = [p for p in lc.client.list("pods", None) if p["spec"].get("nodeName")]
        per = {w: [p for p in bound if p["spec"]["nodeName"] == w] for w in workers}
        big = [p for p in _pods(lc, "app=big") if p["spec"].get("nodeName")]
        ok = all(len(v) == 3 and all(_ready(p) for p in v) for v in per.values())
        return big if ok and all(p["spec"]["nodeName"] in workers for p in big) else None
    running = wait_for(full, 60, what="3 running pods on each worker")
    pending = [p for p in _pods(lc, "app=big") if not p["spec"].get("nodeName")]
    assert len(pending) == 10 - len(running) >= 4
    want = ("0/3 nodes are available: 1 node(s) had untolerated taint "
            "{node-role.kubernetes.io/control-plane: }, 2 Too many pods. preemption: 0/3 nodes "
            "are available: 1 Preemption is not helpful for scheduling, 2 No preemption "
            "victims found for incoming pod..")
    ev = wait_for(lambda: _event(lc, "FailedScheduling", pending[0]["metadata"]["name"]), 30,
                  what="FailedScheduling")
    assert ev["message"] == want
    assert want in lc.netsim("describe", "pod", pending[0]["metadata"]["name"]).stdout
    _delete(lc, "deploy", "big")
