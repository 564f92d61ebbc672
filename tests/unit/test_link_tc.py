"""netsim.net.tc: the tc trees `netsim link impair|partition|clear` gives a node's LAN link
(pure renderer; the real packets are in tests/vm/link_scenario.py)."""

from __future__ import annotations

import pytest

from netsim.net import tc

PEERS = {"k8s-slave-173": tc.Peer("k8s-slave-173", "192.168.3.173", "10.244.2.0/24"),
         "k8s-master-171": tc.Peer("k8s-master-171", "192.168.3.171", "10.244.0.0/24")}
PRIO = "qdisc add dev eth0 root handle 1: prio bands {} priomap " + " ".join(["0"] * 16)


def test_delay_with_jitter_and_loss_on_all_traffic():
    rules = [tc.Rule(delay_ms=50, jitter_ms=5, loss_pct=2.5)]
    assert tc.render("eth0", rules, "node", PEERS) == [
        "qdisc del dev eth0 root",
        PRIO.format(2),
        "qdisc add dev eth0 parent 1:1 handle 11: netem delay 50ms 5ms loss 2.5%",
    ]


def test_rate_is_a_tbf_with_netem_under_it():
    rules = [tc.Rule(delay_ms=10, rate="10mbit")]
    assert tc.render("eth0", rules, "node", PEERS)[2:] == [
        "qdisc add dev eth0 parent 1:1 handle 10: tbf rate 10mbit burst 15k latency 50ms",
        "qdisc add dev eth0 parent 10:1 handle 11: netem delay 10ms",
    ]


def test_to_one_peer_matches_its_address_and_pod_cidr_as_destination_on_the_node():
    rules = [tc.Rule(peer="k8s-slave-173", delay_ms=100)]
    assert tc.render("eth0", rules, "node", PEERS)[1:] == [
        PRIO.format(2),
        "qdisc add dev eth0 parent 1:2 handle 21: netem delay 100ms",
        "filter add dev eth0 parent 1: protocol ip prio 2 u32 match ip dst 192.168.3.173/32 "
        "flowid 1:2",
        "filter add dev eth0 parent 1: protocol ip prio 2 u32 match ip dst 10.244.2.0/24 "
        "flowid 1:2",
    ]
    # the node's port on the LAN bridge: traffic towards the node, the peer is the source
    lan = tc.render("k8s-slave-172", rules, "lan", PEERS)
    assert "filter add dev k8s-slave-172 parent 1: protocol ip prio 2 u32 match ip src " \
           "192.168.3.173/32 flowid 1:2" in lan


def test_partition_drops_everything_to_and_from_the_peer_and_keeps_the_rest():
    rules = [tc.Rule(delay_ms=5), tc.Rule(peer="k8s-master-171", partition=True)]
    out = tc.render("eth0", rules, "node", PEERS)
    assert out[1:4] == [PRIO.format(2),
                        "qdisc add dev eth0 parent 1:1 handle 11: netem delay 5ms",
                        "qdisc add dev eth0 parent 1:2 handle 21: netem loss 100%"]
    assert sum("match ip dst" in ln and "flowid 1:2" in ln for ln in out) == 2


def test_several_peers_get_a_band_each():
    rules = [tc.Rule(peer="k8s-slave-173", loss_pct=10),
             tc.Rule(peer="k8s-master-171", partition=True)]
    out = tc.render("eth0", rules, "node", PEERS)
    assert out[1] == PRIO.format(3)
    # sorted by peer name: master in band 2, slave-173 in band 3
    assert "qdisc add dev eth0 parent 1:2 handle 21: netem loss 100%" in out
    assert "qdisc add dev eth0 parent 1:3 handle 31: netem loss 10%" in out


def test_clear_only_removes_the_root():
    assert tc.render("eth0", [], "node", PEERS) == ["qdisc del dev eth0 root"]


def test_merge_replaces_the_rule_of_the_same_peer():
    rules = tc.merge([tc.Rule(delay_ms=5), tc.Rule(peer="a", partition=True)],
                     tc.Rule(peer="a", delay_ms=1))
    assert rules == [tc.Rule(delay_ms=5), tc.Rule(peer="a", delay_ms=1)]
    assert tc.merge(rules, tc.Rule(loss_pct=1)) == [tc.Rule(peer="a", delay_ms=1),
                                                     tc.Rule(loss_pct=1)]


@pytest.mark.parametrize("rule,msg", [
    (tc.Rule(), "error: nothing to set: give --delay, --loss and/or --rate"),
    (tc.Rule(delay_ms=-1), "error: invalid --delay -1: must be >= 0 (ms)"),
    (tc.Rule(jitter_ms=3, loss_pct=1), "error: --jitter needs --delay"),
    (tc.Rule(loss_pct=120), "error: invalid --loss 120: must be 0-100 (percent)"),
    (tc.Rule(rate="fast"), "error: invalid --rate 'fast': use tc's units, e.g. 10mbit, "
                           "512kbit, 1gbit"),
    (tc.Rule(partition=True), "error: a partition needs --from NODE"),
])
def test_bad_input_is_refused_in_one_line(rule, msg):
    with pytest.raises(tc.LinkError) as e:
        tc.validate(rule)
    assert str(e.value) == msg


def test_describe_is_what_cluster_status_prints():
    assert tc.Rule(delay_ms=50, jitter_ms=5).describe() == "delay 50ms jitter 5ms (all traffic)"
    assert tc.Rule(peer="b", loss_pct=1, rate="1mbit").describe() == "loss 1% rate 1mbit to b"
    assert tc.Rule(peer="b", partition=True).describe() == "partitioned from b"
