"""The real-cluster cases of tests/netpol_cases.py, offline: every step's actions applied to
the objects (policies created, updated, deleted; pods and namespaces relabelled), every
node's rules rendered by BOTH renderers and walked by the packet-flow interpreter, the whole
9 x 8 x 4 matrix compared with the same expectation the e2e test probes with real packets.

The model is tests/unit/test_netpol_render.py's (two nodes, the pods spread over them, so
a connection meets the source node's egress rules and the destination node's ingress
rules, as on a cluster)."""

from __future__ import annotations

import copy

import pytest

from tests.netpol_cases import CASES
from tests.unit.test_netpol_render import (
    BACKENDS,
    MODEL_PODS,
    NAMESPACE_OBJS,
    NODES,
    PODS,
    PORTS,
    Cluster,
    admitted,
    key,
)


class _Model:
    ips = {key(p): p["status"]["podIP"] for p in MODEL_PODS}


def _apply(actions, policies: dict, pods: list[dict], namespaces: list[dict]) -> None:
    for action in actions:
        kind = action[0]
        if kind in ("create", "update"):
            obj = action[1]
            policies[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        elif kind == "delete":
            policies.pop(tuple(action[1].split("/")))
        elif kind == "label-pod":
            pod = next(p for p in pods if key(p) == action[1])
            pod["metadata"]["labels"] = dict(action[2])
        elif kind == "label-ns":
            ns = next(n for n in namespaces if n["metadata"]["name"] == action[1])
            ns["metadata"]["labels"] = {**action[2], "kubernetes.io/metadata.name": action[1]}
        else:
            raise AssertionError(f"unknown action {kind}")


def _matrix(stored: list[dict], pods: list[dict], namespaces: list[dict], backend: str,
            allow) -> list[str]:
    cluster = Cluster(stored, backend, pods, namespaces)
    model = [p for p in pods if key(p) in _Model.ips]
    wrong = []
    for s in model:
        for d in model:
            if s is d:
                continue
            for port, proto in PORTS:
                got = cluster.passes(s, d, port, proto)
                if got != bool(allow(key(s), key(d), port, proto)):
                    wrong.append(f"{key(s)} -> {key(d)} {proto}/{port}: "
                                 f"{'allowed' if got else 'blocked'}")
    return wrong


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_case_matrix_offline(case, backend):
    pods = copy.deepcopy(PODS)
    namespaces = copy.deepcopy(NAMESPACE_OBJS)
    policies: dict = {}
    for i, (actions, allow) in enumerate(CASES[case](_Model)):
        _apply(actions, policies, pods, namespaces)
        stored = admitted(*policies.values()) if policies else []
        wrong = _matrix(stored, pods, namespaces, backend, allow)
        assert not wrong, f"{case} step {i + 1} ({backend}):\n" + "\n".join(wrong[:30])


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_traffic_as_upstream_cnis_treat_it(backend):
    """A node's own packets to its pods are never judged (kubelet probes); another node's
    address is an ordinary source (only an ipBlock allows it); a pod's packets to a node
    meet its egress policy."""
    from tests.netpol_cases import netpol
    deny = admitted(netpol("deny", policyTypes=["Ingress"]))
    for pols, remote_ok in ((deny, False),
                            (admitted(netpol("deny", policyTypes=["Ingress"]),
                                      netpol("lan", ingress=[{"from": [
                                          {"ipBlock": {"cidr": "192.168.9.0/24"}}]}])), True)):
        cluster = Cluster(pols, backend)
        for p in MODEL_PODS:
            if p["metadata"]["namespace"] != "x":
                continue
            node = p["spec"]["nodeName"]
            other = next(n for n in NODES if n != node)
            rules = cluster.rules[node]
            own = rules.trace(NODES[node], p["status"]["podIP"], 80, local_ips=[NODES[node]])
            remote = rules.trace(NODES[other], p["status"]["podIP"], 80,
                                 local_ips=[NODES[node]])
            assert own.verdict == "ACCEPT", (backend, key(p))
            assert (remote.verdict == "ACCEPT") == remote_ok, (backend, key(p), pols)
    cluster = Cluster(admitted(netpol("deny-egress", policyTypes=["Egress"])), backend)
    for p in MODEL_PODS:
        node = p["spec"]["nodeName"]
        t = cluster.rules[node].trace(p["status"]["podIP"], NODES[node], 6443,
                                      local_ips=[NODES[node]])
        assert (t.verdict == "ACCEPT") == (p["metadata"]["namespace"] != "x"), (backend, key(p))
