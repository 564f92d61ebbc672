"""`netsim render`: offline rules for manifests through the real control plane, golden files
in rules/ (no root)."""

from __future__ import annotations

import os
import re

import pytest

from netsim.cli import render_cmd as render_cli
from netsim.proxy.iptables import endpoint_chain_name, service_port_chain_name

SERVICES = os.path.join(render_cli.EXAMPLES, "services")


@pytest.mark.parametrize("case", render_cli.golden_cases(), ids=lambda c: c[0])
def test_golden_rules_match_examples(case):
    fname, paths, kw = case
    path = os.path.join(render_cli.RULES, fname)
    assert os.path.exists(path), "run: netsim render --regen"
    assert render_cli.render_paths(paths, **kw) == open(path).read(), (
        f"rules/{fname} is stale: netsim render --regen")


def test_every_example_folder_has_golden_files():
    names = {c[0] for c in render_cli.golden_cases()}
    assert "iptables-services-k8s-master-171.rules" in names
    assert "iptables-services-k8s-slave-172.rules" in names


def test_render_prints_restore_text(capsys):
    assert render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*filter\n") and out.rstrip().endswith("COMMIT")
    # 3 replicas spread over the two workers: 3 endpoints, upstream's probability ladder
    assert "--probability 0.3333333333" in out and "--probability 0.5000000000" in out
    assert out.count("-j DNAT --to-destination") == 3


def test_chain_names_are_upstream_hashes(capsys):
    render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml")])
    out = capsys.readouterr().out
    svc = service_port_chain_name("default/echo:http", "tcp")
    assert f"-j {svc}" in out
    sep = endpoint_chain_name("default/echo:http", "tcp", "10.244.1.2:8080")
    assert f":{sep} - [0:0]" in out
    # the reference's check values
    assert service_port_chain_name("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"


def test_endpoint_slices_in_files_decide_locality(capsys):
    path = os.path.join(SERVICES, "external-db.yaml")
    render_cli.run(["-f", path, "--node", "k8s-slave-172"])
    out = capsys.readouterr().out
    assert "10.96.100.100" in out
    assert "--to-destination 10.244.1.50:3306" in out
    assert "--to-destination 10.244.2.50:3306" in out


def test_local_policy_depends_on_the_node(capsys):
    path = os.path.join(SERVICES, "echo.yaml")
    local = os.path.join(SERVICES, "echo-local.yaml")
    render_cli.run(["-f", path, "-f", local, "--node", "k8s-master-171"])
    master = capsys.readouterr().out
    render_cli.run(["-f", path, "-f", local, "--node", "k8s-slave-172"])
    worker = capsys.readouterr().out
    # the tainted master runs no echo pod: Local NodePort traffic is dropped there
    assert '"default/echo-local has no local endpoints"' in master
    assert "KUBE-SVL-" not in master
    assert "KUBE-SVL-" in worker and "has no local endpoints" not in worker


def test_allocation_is_deterministic_and_in_range(capsys):
    render_cli.run(["-f", SERVICES, "--service-cidr", "10.96.0.0/16"])
    a = capsys.readouterr().out
    render_cli.run(["-f", SERVICES, "--service-cidr", "10.96.0.0/16"])
    b = capsys.readouterr().out
    assert a == b
    ips = set(re.findall(r"-A KUBE-SERVICES .* -d (\S+) --dport", a))
    assert len(ips) == 9 and all(ip.startswith("10.96.") for ip in ips)
    # external-db's clusterIP 10.96.100.100 is outside 10.100.0.0/16: the API server says no
    assert render_cli.run(["-f", SERVICES, "--service-cidr", "10.100.0.0/16"]) == 1
    assert "The range of valid IPs is 10.100.0.0/16" in capsys.readouterr().err


def test_pod_cidr_flag(capsys):
    render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml"), "--pod-cidr", "10.50.0.0/16"])
    out = capsys.readouterr().out
    assert "! -s 10.50.0.0/16 -j KUBE-MARK-MASQ" in out
    assert "--to-destination 10.50.1.2:8080" in out


def test_no_endpoints_rejects(capsys):
    render_cli.run(["-f", os.path.join(SERVICES, "dns-udp.yaml")])
    out = capsys.readouterr().out
    assert '"default/nobody has no endpoints"' in out and "-j REJECT" in out


def test_errors_are_one_line(capsys):
    assert render_cli.run(["-f", "/nonexistent.yaml"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert render_cli.run(["-f", SERVICES, "--node", "nope"]) == 1
    assert 'node "nope" not found' in capsys.readouterr().err


def test_cli_verb_needs_no_root(capsys):
    from netsim.cli.main import run
    assert run(["render", "-f", os.path.join(SERVICES, "echo-nodeport.yaml")]) == 0
    assert "--dport 30080" in capsys.readouterr().out


def test_render_mode_nftables_prints_the_nft_transaction(capsys):
    assert render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml"), "--mode", "nftables"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('add table ip kube-proxy { comment "rules for kube-proxy" ; }\n')
    assert ("add rule ip kube-proxy services ip daddr . meta l4proto . th dport "
            "vmap @service-ips\n") in out
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport " \
           "vmap @service-nodeports" in out
    assert "numgen random mod 3 vmap {" in out
    assert out.count(" dnat to ") == 3
    assert "ip daddr { 10.96.0.0/12 } drop" in out  # unallocated ClusterIPs


def test_every_example_folder_has_nftables_golden_files():
    names = {c[0] for c in render_cli.golden_cases()}
    assert {"nftables-services-k8s-master-171.nft", "nftables-uit-k8s-slave-172.nft"} <= names


def test_render_mode_ipvs_prints_virtual_servers_ipsets_and_rules(capsys):
    assert render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml"), "--mode", "ipvs"]) == 0
    out = capsys.readouterr().out
    assert out.count("-a -t ") == 3 and " -m -w 1" in out  # one VS, three real servers
    assert "create KUBE-CLUSTER-IP hash:ip,port family inet" in out
    assert "-m set --match-set KUBE-CLUSTER-IP dst,dst" in out


# --- the real control plane behind the render --------------------------------------------

UIT = os.path.join(render_cli.EXAMPLES, "uit")


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "objs.yaml"
    path.write_text(text)
    return str(path)


UPSTREAM_FIXTURE = """
apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec:
  clusterIP: 172.30.0.41
  type: NodePort
  externalTrafficPolicy: Local
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 30080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc1-1
  namespace: ns1
  labels: {kubernetes.io/service-name: svc1}
addressType: IPv4
ports: [{name: p80, port: 80, protocol: TCP}]
endpoints:
- addresses: [10.180.0.1]
  conditions: {ready: true}
  nodeName: test-node
"""


def test_nodes_named_by_endpoint_slices_exist(tmp_path, capsys):
    """Upstream's fixtures name their node test-node: render knows it from the slice."""
    path = _write(tmp_path, UPSTREAM_FIXTURE)
    args = ["-f", path, "--service-cidr", "172.30.0.0/16"]
    assert render_cli.run([*args, "--node", "test-node"]) == 0
    local = capsys.readouterr().out
    assert "--to-destination 10.180.0.1:80" in local and "has no local endpoints" not in local
    assert render_cli.run([*args, "--node", "k8s-slave-172"]) == 0
    assert '"ns1/svc1:p80 has no local endpoints"' in capsys.readouterr().out


def test_node_objects_in_the_files_are_the_cluster(tmp_path, capsys):
    path = _write(tmp_path, """
apiVersion: v1
kind: Node
metadata: {name: worker-a}
spec: {podCIDR: 10.1.5.0/24}
status:
  addresses: [{type: InternalIP, address: 10.0.0.5}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: web, image: netsim/echo, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
""")
    assert render_cli.run(["-f", path, "--node", "worker-a"]) == 0
    out = capsys.readouterr().out
    assert "--to-destination 10.1.5.2:8080" in out  # the kubelet's IPAM: .2 of the node's /24
    assert render_cli.run(["-f", path, "--node", "k8s-master-171"]) == 1
    assert 'node "k8s-master-171" not found' in capsys.readouterr().err


def test_node_selector_and_host_network_as_the_scheduler_and_kubelet_do(capsys):
    # Without the label examples/uit/README.md asks for, mysql stays Pending ...
    assert render_cli.run(["-f", UIT, "--node", "k8s-slave-172"]) == 0
    out, err = capsys.readouterr()
    assert '"uit/svc-mysql has no endpoints"' in out
    # (the master fails on its taint first: TaintToleration runs before NodeAffinity)
    assert re.search(r"^Warning: pod uit/mysql-\S+ is Pending: 0/3 nodes are available: "
                     r"1 node\(s\) had untolerated taint \{node-role.kubernetes.io/control-plane: \}, "
                     r"2 node\(s\) didn't match Pod's node affinity/selector\.", err, re.M), err
    # ... with it, mysql runs on k8s-slave-172 with hostNetwork: the endpoint is the node IP.
    assert render_cli.run(["-f", UIT, "--node", "k8s-slave-172",
                           "--node-label", "k8s-slave-172:component=zz"]) == 0
    out, err = capsys.readouterr()
    assert "--to-destination 192.168.3.172:3306" in out and err == ""


def test_node_label_flag_through_the_netsim_command(capsys):
    from netsim.cli.main import run
    assert run(["render", "-f", UIT, "--node-label", "k8s-slave-172:component=zz"]) == 0
    assert "192.168.3.172:3306" in capsys.readouterr().out
    assert render_cli.run(["-f", UIT, "--node-label", "nope:a=b"]) == 1
    assert 'node "nope" not found' in capsys.readouterr().err


def test_admission_refuses_what_the_api_server_refuses(tmp_path, capsys):
    path = _write(tmp_path, """
apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  type: NodePort
  ports: [{port: 80, nodePort: 85}]
""")
    assert render_cli.run(["-f", path]) == 1
    assert capsys.readouterr().err == (
        'Error from server (Invalid): The Service "bad" is invalid: spec.ports[0].nodePort: '
        "Invalid value: 85: provided port is not in the valid range. The range of valid ports "
        "is 30000-32767\n")


def test_a_service_ip_does_not_depend_on_the_other_files(capsys, monkeypatch):
    """The allocator runs seeded from the Service's own name: echo alone or with its
    neighbours gets the same ClusterIP, and the process' random state is left alone: each
    seed of the render's thread comes after saving the state and is undone by restoring
    that state. (Comparing random.getstate() before and after also counted the draws of
    other tests' threads still running, as in one CI run.)"""
    import random
    import re
    import threading
    me = threading.get_ident()
    calls: list[tuple[str, object]] = []
    real_get, real_set, real_seed = random.getstate, random.setstate, random.seed

    def getstate():
        st = real_get()
        if threading.get_ident() == me:
            calls.append(("get", st))
        return st

    def setstate(st):
        if threading.get_ident() == me:
            calls.append(("set", st))
        real_set(st)

    def seed(*a, **kw):
        if threading.get_ident() == me:
            calls.append(("seed", None))
        real_seed(*a, **kw)
    monkeypatch.setattr(random, "getstate", getstate)
    monkeypatch.setattr(random, "setstate", setstate)
    monkeypatch.setattr(random, "seed", seed)
    render_cli.run(["-f", os.path.join(SERVICES, "echo.yaml")])
    alone = capsys.readouterr().out
    render_cli.run(["-f", SERVICES])
    together = capsys.readouterr().out
    monkeypatch.undo()
    assert calls and len(calls) % 3 == 0
    for i in range(0, len(calls), 3):  # save, seed, restore what was saved
        (g, saved), (s_, _), (r, restored) = calls[i:i + 3]
        assert (g, s_, r) == ("get", "seed", "set") and restored is saved
    ip = re.compile(r'"default/echo:http cluster IP" -m tcp -p tcp -d (\S+)')
    assert ip.search(alone).group(1) == ip.search(together).group(1)


def test_no_component_imports_the_cli():
    import pathlib
    root = pathlib.Path(render_cli.REPO) / "netsim"
    # netsim/library is a front end beside the CLI (netsim.Cluster says what kubectl says,
    # with the CLI's own words and pickers): it may use the CLI; nothing below them may.
    bad = [str(p.relative_to(root.parent)) for p in root.rglob("*.py")
           if p.relative_to(root).parts[0] not in ("cli", "library")
           and re.search(r"^\s*(from|import) netsim\.cli\b", p.read_text(), re.M)]
    assert bad == []
