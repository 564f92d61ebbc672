"""`netsim render`: offline rules for manifests, golden files in rules/ (no root)."""

from __future__ import annotations

import os

import pytest

from netsim.proxy import render_cli
from netsim.proxy.iptables import endpoint_chain_name, service_port_chain_name

SERVICES = os.path.join(render_cli.EXAMPLES, "services")


@pytest.mark.parametrize("case", render_cli.golden_cases(), ids=lambda c: c[0])
def test_golden_rules_match_examples(case):
    fname, paths, kw = case
    path = os.path.join(render_cli.RULES, fname)
    assert os.path.exists(path), "run: python -m netsim.proxy.render_cli --regen"
    assert render_cli.render_paths(paths, **kw) == open(path).read(), (
        f"rules/{fname} is stale: python -m netsim.proxy.render_cli --regen")


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
    render_cli.run(["-f", SERVICES, "--service-cidr", "10.100.0.0/16"])
    a = capsys.readouterr().out
    render_cli.run(["-f", SERVICES, "--service-cidr", "10.100.0.0/16"])
    b = capsys.readouterr().out
    assert a == b
    assert "-d 10.100." in a and "-d 10.96." not in a.replace("-d 10.96.100.100", "")


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
