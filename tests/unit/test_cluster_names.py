"""Issue 9: a cluster name is a name, never a path; `cluster up` respects the host's routes.

Every CLI run here happens in a private mount namespace with fresh tmpfs over /var/lib and
/run: the canaries live there, and even a regression that deletes folders cannot reach the
machine's own (or another cluster's) state.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from netsim.cluster.lifecycle import cluster_conflict, describe_route, host_route_conflict
from netsim.net.topology import CLUSTER_NAME_MAX, ClusterConfig, cluster_name_error
from tests.conftest import requires_root

CLI = f"{shlex.quote(sys.executable)} -m netsim.cli.main"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", ["netsim", "nstest", "nstest-nft", "a", "0abc", "a1-b2",
                                  "x" * CLUSTER_NAME_MAX])
def test_valid_names(name):
    assert cluster_name_error(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/opt", "a/b", "Web", "-a", "a-",
                                  "a_b", "a.b", "web\n", "a b", "x" * (CLUSTER_NAME_MAX + 1)])
def test_invalid_names_are_refused_in_one_line(name):
    msg = cluster_name_error(name)
    assert msg and msg.startswith(f"invalid cluster name {json.dumps(name)}")
    assert "\n" not in msg
    with pytest.raises(ValueError):
        ClusterConfig.make(name=name)


def test_the_length_limit_keeps_the_host_veth_name_readable():
    name = "x" * CLUSTER_NAME_MAX
    assert ClusterConfig(name=name).host_ifname == "nsim-" + name
    assert len("nsim-" + name) == 15
    assert "must be no more than 10 characters" in cluster_name_error(name + "x")


def _private(script: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`script` (sh) with tmpfs over /var/lib and /run in a private mount namespace."""
    setup = ("mount --make-rprivate / && mount -t tmpfs nsim-test /var/lib && "
             "mount -t tmpfs nsim-test /run && ")
    return subprocess.run(["unshare", "--mount", "sh", "-c", setup + script], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO, **(env or {})})


def _refused(p: subprocess.CompletedProcess) -> None:
    """Exit 1 and one line on stderr that names the problem."""
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 0, p.stdout + p.stderr  # the script itself
    assert "rc=1" in p.stdout, p.stdout + p.stderr
    assert len(lines) == 1 and lines[0].startswith("error: invalid cluster name"), p.stderr


CANARIES = ("mkdir -p /var/lib/canary /var/lib/netsim/other /var/lib/opt && "
            "touch /var/lib/canary/keep /var/lib/netsim/other/ledger.jsonl /var/lib/opt/keep && ")
CHECK = ("; echo rc=$?; test -e /var/lib/canary/keep && test -e /var/lib/netsim/other/ledger.jsonl"
         " && test -e /var/lib/opt/keep && echo canaries-alive")


@requires_root
@pytest.mark.parametrize("args,env", [
    ("cluster down --name ../canary", {}),
    ("cluster down --name ../../var/lib/canary", {}),
    ("cluster down --name ''", {}),
    ("cluster down", {"NETSIM_CLUSTER": ""}),
    ("cluster status --name ..", {}),
    ("cluster up --name /var/lib/opt --lan 192.168.250.0/24", {}),
    ("cluster up --name=../canary --lan 192.168.250.0/24", {}),
    ("cluster down --name 'web\n'", {}),
    ("cluster down --name abcdefghijk", {}),
    ("--cluster ../canary get pods", {}),
    ("get pods", {"NETSIM_CLUSTER": ""}),
    ("delete pod x --cluster=..", {}),
    ("scale deploy web --replicas=1 --cluster=../canary", {}),
    ("node stop k8s-master-171", {"NETSIM_CLUSTER": "../canary"}),
])
def test_a_bad_cluster_name_is_refused_before_anything_is_touched(args, env):
    p = _private(CANARIES + f"{CLI} {args}" + CHECK, env=env)
    _refused(p)
    assert "canaries-alive" in p.stdout, p.stdout + p.stderr
    where = "NETSIM_CLUSTER" if env and "--" not in args else ("--name" if "--name" in args
                                                               else "--cluster")
    assert f"(from {where})" in p.stderr


@requires_root
def test_down_leaves_a_folder_without_a_ledger_alone():
    p = _private("mkdir -p /var/lib/netsim/mydata && echo precious > /var/lib/netsim/mydata/notes "
                 f"&& {CLI} cluster down --name mydata; echo rc=$?; cat /var/lib/netsim/mydata/notes")
    assert "rc=0" in p.stdout and "nothing to delete" in p.stdout, p.stdout + p.stderr
    assert "precious" in p.stdout


@requires_root
def test_up_refuses_a_folder_it_did_not_make():
    p = _private("mkdir -p /var/lib/netsim/mydata && echo precious > /var/lib/netsim/mydata/notes "
                 f"&& {CLI} cluster up --name mydata --lan 192.168.250.0/24; echo rc=$?; "
                 "cat /var/lib/netsim/mydata/notes; ls /var/lib/netsim/mydata")
    assert "rc=1" in p.stdout, p.stdout + p.stderr
    assert "holds no netsim ledger" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert p.stdout.split()[-2:] == ["precious", "notes"]  # the folder as it was


@requires_root
def test_down_removes_only_netsims_own_files():
    state = "/var/lib/netsim/mine"
    ledger = json.dumps({"kind": "dir", "path": state})
    p = _private(f"mkdir -p {state}/logs {state}/nodes/n1 && echo '{ledger}' > {state}/ledger.jsonl"
                 f" && echo '{{}}' > {state}/cluster.json && touch {state}/logs/controlplane.log "
                 f"{state}/store.db {state}/store.db-wal {state}/my-notes && "
                 f"{CLI} cluster down --name mine; echo rc=$?; ls -A {state}")
    assert "rc=0" in p.stdout, p.stdout + p.stderr
    assert p.stdout.strip().splitlines()[-1] == "my-notes"
    assert "did not make (my-notes)" in p.stdout


# ---- host routes ------------------------------------------------------------------------

def _routes(*specs: dict) -> list[dict]:
    return [{"flags": [], **s} for s in specs]


HOST = _routes({"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
               {"dst": "192.0.2.0/24", "dev": "eth0", "prefsrc": "192.0.2.2"},
               {"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "table": "local"},
               {"type": "local", "dst": "192.0.2.2", "dev": "eth0", "table": "local"})


def test_routes_of_the_host_that_do_not_overlap_do_not_count():
    assert host_route_conflict(ClusterConfig.make(name="a", lan="192.168.86.0/24"), HOST, []) is None


@pytest.mark.parametrize("route,flag,cidr", [
    ({"dst": "192.168.86.0/24", "dev": "wlan0"}, "--lan", "192.168.86.0/24"),
    ({"dst": "192.168.86.7", "dev": "tun0", "table": "51820"}, "--lan", "192.168.86.0/24"),
    ({"dst": "10.0.0.0/8", "gateway": "192.0.2.9", "dev": "eth0"}, "--pod-cidr", "10.244.0.0/16"),
    ({"dst": "172.17.0.0/16", "dev": "docker0"}, "--service-cidr", "172.16.0.0/12"),
    ({"type": "blackhole", "dst": "10.96.5.0/24"}, "--service-cidr", "10.96.0.0/12"),
])
def test_a_cidr_overlapping_a_host_route_is_refused_naming_the_route(route, flag, cidr):
    kw = {"lan": "192.168.86.0/24"}
    kw[{"--lan": "lan", "--pod-cidr": "pod_cidr", "--service-cidr": "service_cidr"}[flag]] = cidr
    cfg = ClusterConfig.make(name="a", **kw)
    msg = host_route_conflict(cfg, HOST + _routes(route), [])
    assert msg and f'host\'s route "{describe_route(route)}"' in msg and flag in msg
    assert cidr in msg and "\n" not in msg


def test_default_routes_do_not_count():
    vpn = _routes({"dst": "0.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun0"},
                  {"dst": "128.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun0"},
                  {"dst": "default", "dev": "wg0", "table": "51820"})
    assert host_route_conflict(ClusterConfig.make(name="a", lan="192.168.86.0/24"), HOST + vpn,
                               []) is None


def test_routes_other_clusters_recorded_do_not_count():
    """Two clusters with the same pod and service CIDRs and distinct LANs run side by side."""
    other = ClusterConfig.make(name="b", lan="192.168.85.0/24")
    recs = [{"kind": "link", "name": other.host_ifname},
            {"kind": "route", "dst": other.pod_cidr, "type": "unreachable", "metric": other.route_metric},
            {"kind": "route", "dst": other.service_cidr, "type": "unreachable",
             "metric": other.route_metric}]
    theirs = _routes({"dst": "192.168.85.0/24", "dev": "nsim-b", "prefsrc": "192.168.85.1"},
                     {"type": "local", "dst": "192.168.85.1", "dev": "nsim-b", "table": "local"},
                     {"type": "unreachable", "dst": other.pod_cidr, "metric": other.route_metric},
                     {"type": "unreachable", "dst": other.service_cidr, "metric": other.route_metric})
    cfg = ClusterConfig.make(name="a", lan="192.168.86.0/24")
    assert host_route_conflict(cfg, HOST + theirs, [recs]) is None
    # ... but only those: the same CIDR with another metric is someone else's route
    stranger = _routes({"type": "unreachable", "dst": other.pod_cidr, "metric": 7})
    assert "unreachable 10.244.0.0/16 metric 7" in host_route_conflict(cfg, HOST + stranger, [recs])


def test_clusters_share_pod_and_service_cidrs_but_not_lans():
    a = ClusterConfig.make(name="a", lan="192.168.85.0/24")
    assert cluster_conflict(ClusterConfig.make(name="b", lan="192.168.86.0/24"), [a]) is None
    assert cluster_conflict(ClusterConfig.make(name="b", lan="192.168.84.0/23"), [a]) == (
        'the LAN 192.168.84.0/23 overlaps cluster "a" (192.168.85.0/24): choose another with --lan')
    assert cluster_conflict(ClusterConfig.make(name="b", lan="10.96.3.0/24"), [a]) == (
        'the LAN 10.96.3.0/24 overlaps cluster "a"\'s service CIDR 10.96.0.0/12: '
        "choose another with --lan")
    assert cluster_conflict(ClusterConfig.make(name="b", lan="192.168.86.0/24",
                                               pod_cidr="192.168.84.0/22"), [a]) == (
        'the pod CIDR 192.168.84.0/22 overlaps the LAN of cluster "a" (192.168.85.0/24): '
        "choose another with --pod-cidr")


@requires_root
def test_up_refuses_a_lan_the_host_routes_elsewhere_before_building_anything():
    """In a private network namespace (and tmpfs state): the host has a route for the LAN."""
    p = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c",
         "mount --make-rprivate / && mount -t tmpfs nsim-test /var/lib && "
         "mount -t tmpfs nsim-test /run && ip link set lo up && "
         "ip route add blackhole 192.168.250.0/25 && "
         f"{CLI} cluster up --name routed --lan 192.168.250.0/24; echo rc=$?; "
         "ls -d /var/lib/netsim /run/netns /run/netsim 2>&1; echo links=$(ip -o link | wc -l); "
         "ip route"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert "rc=1" in p.stdout, p.stdout + p.stderr
    assert p.stderr.strip() == ('error: the LAN 192.168.250.0/24 overlaps the host\'s route '
                                '"blackhole 192.168.250.0/25": choose another with --lan')
    assert p.stdout.count("No such file") == 3  # no state, no netns, no socket folder
    assert "links=1" in p.stdout and "unreachable" not in p.stdout  # lo only, no routes added
