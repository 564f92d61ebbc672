"""node add's allocation, --max-pods limits and the scheduler's `Too many pods` (pure)."""

from __future__ import annotations

import pytest

from netsim.cluster.nodes import name_error, next_node
from netsim.controllers.scheduler import filter_nodes
from netsim.kubelet.status import node_capacity
from netsim.net.topology import ClusterConfig, check_max_pods


def test_next_node_is_named_and_numbered_as_cluster_up_does():
    cfg = ClusterConfig.make(name="t", nodes=3, lan="192.168.83.0/24")
    n = next_node(cfg)
    assert (n.name, n.ip, n.pod_cidr, n.control_plane) == \
        ("k8s-slave-174", "192.168.83.174", "10.244.3.0/24", False)
    cfg.nodes.pop(1)  # k8s-slave-172 removed: its address and /24 are free again
    n = next_node(cfg, "extra")
    assert (n.name, n.ip, n.pod_cidr) == ("extra", "192.168.83.172", "10.244.1.0/24")


def test_next_node_says_when_the_lan_is_full():
    cfg = ClusterConfig.make(name="t", nodes=84, lan="192.168.83.0/24")
    with pytest.raises(ValueError, match="no free address"):
        next_node(cfg)


def test_node_names_are_checked_in_the_apiservers_words():
    assert name_error("k8s-slave-9") is None
    assert name_error("Bad_Name").startswith('The Node "Bad_Name" is invalid: metadata.name')
    assert "reserved" in name_error("lan")


def test_max_pods_is_capped_by_the_pod_24():
    assert check_max_pods(253) == 253
    with pytest.raises(ValueError, match="253 addresses"):
        check_max_pods(254)
    assert ClusterConfig.make(name="t", max_pods=5).max_pods == 5
    assert node_capacity(2, 1024, 5)["pods"] == "5"


def _node(name: str, pods: str) -> dict:
    return {"metadata": {"name": name, "labels": {}}, "spec": {},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": pods},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _pod(name: str, node: str | None = None, phase: str = "Running") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "c"}]},
            "status": {"phase": phase}}


def test_a_full_node_is_too_many_pods_and_finished_pods_do_not_count():
    nodes = [_node(f"n{i}", "2") for i in range(3)]
    bound = [_pod(f"p{i}{j}", f"n{i}") for i in range(3) for j in range(2)]
    feasible, why = filter_nodes(_pod("new"), nodes, bound)
    assert feasible == []
    assert why == ("0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are "
                   "available: 3 No preemption victims found for incoming pod..")  # sic, as upstream
    bound[0]["status"]["phase"] = "Succeeded"
    feasible, _ = filter_nodes(_pod("new"), nodes, bound)
    assert [n["metadata"]["name"] for n in feasible] == ["n0"]
