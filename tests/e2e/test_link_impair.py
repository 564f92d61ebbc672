"""`netsim link impair|partition|clear` as a user runs them on a cluster of this machine.

Where the kernel has no sch_netem/sch_prio (this sandbox's) the verb refuses in one line and
changes nothing; where it has them (the qemu VM: tests/vm/link_scenario in
ipvs_cluster_scenario.py measures the RTTs and the partition) it sets and clears the link,
and `cluster status` says what is set."""

from __future__ import annotations

from netsim.net import tc

NODE = "k8s-slave-172"


def _status(cluster) -> str:
    return cluster.netsim("cluster", "status", "--name", cluster.name, check=False).stdout


def test_impair_sets_or_refuses_in_one_line_and_clear_removes_it(cluster):
    why = tc.unsupported_reason(cluster.node_netns(NODE))
    p = cluster.netsim("link", "impair", NODE, "--delay", "50", "--loss", "1", check=False)
    if why:
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 1 and len(lines) == 1, p.stderr
        assert lines[0].startswith("error: this kernel cannot impair links ("), lines[0]
        assert "sch_netem" in lines[0]
        assert "Links" not in _status(cluster)
        qd = cluster.in_netns(cluster.node_netns(NODE), "tc", "qdisc", "show", "dev", "eth0")
        assert "netem" not in qd.stdout and "prio" not in qd.stdout
        return
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"node/{NODE} link delay 50ms loss 1% (all traffic)"
    assert "delay 50ms loss 1% (all traffic)" in _status(cluster)
    qd = cluster.in_netns(cluster.node_netns(NODE), "tc", "qdisc", "show", "dev", "eth0").stdout
    assert "netem" in qd and "delay 50ms" in qd
    p = cluster.netsim("link", "clear", NODE)
    assert p.stdout.strip() == f"node/{NODE} link cleared"
    assert "Links" not in _status(cluster)
    qd = cluster.in_netns(cluster.node_netns(NODE), "tc", "qdisc", "show", "dev", "eth0").stdout
    assert "netem" not in qd


def test_bad_input_is_refused_in_one_line_before_the_kernel_is_asked(cluster):
    cases = [
        (["impair", NODE, "--loss", "120"], "error: invalid --loss 120: must be 0-100 (percent)"),
        (["impair", NODE], "error: nothing to set: give --delay, --loss and/or --rate"),
        (["impair", "nosuchnode", "--delay", "5"],
         'Error from server (NotFound): nodes "nosuchnode" not found'),
        (["impair", NODE, "--to", NODE, "--delay", "5"],
         f"error: {NODE} can't be impaired towards itself"),
    ]
    for args, msg in cases:
        p = cluster.netsim("link", *args, check=False)
        assert p.returncode == 1 and p.stderr.strip() == msg, (args, p.stderr)
    p = cluster.netsim("link", "partition", NODE, check=False)
    assert p.returncode == 1 and p.stderr.startswith("error: link partition takes NODE --from NODE")
    assert "Links" not in _status(cluster)
