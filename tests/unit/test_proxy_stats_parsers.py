"""`netsim proxy stats` in nftables and IPVS modes, the pure half: ipvsadm's --stats and -Lnc
listings, conntrack entries per endpoint (recorded outputs, tests/unit/recorded/README.md),
the addresses a Service is reached on, and the table printed."""

from __future__ import annotations

from pathlib import Path

from netsim.cli import proxy_cmd
from netsim.inspect import proxystats as ps
from netsim.inspect.trace import parse_conntrack

REC = Path(__file__).parent / "recorded"


def test_ipvs_stats():
    vs = ps.parse_ipvs_stats((REC / "ipvsadm-Ln-stats-exact.txt").read_text())
    assert [(v.proto, v.addr, v.conns, v.inpkts, v.outpkts, v.inbytes, v.outbytes)
            for v in vs] == [("TCP", "10.96.0.20:80", 8, 38, 36, 2166, 2223),
                             ("UDP", "10.96.0.53:53", 0, 0, 0, 0, 0)]
    assert [(r.addr, r.conns, r.inpkts, r.outbytes) for r in vs[0].reals] == [
        ("10.244.1.5:8080", 4, 18, 987), ("10.244.1.6:8080", 4, 20, 1236)]
    assert [r.addr for r in vs[1].reals] == ["10.244.1.5:53"]


def test_ipvs_stats_without_exact_have_suffixes():
    text = ("IP Virtual Server version 1.2.1 (size=4096)\n"
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
            "  -> RemoteAddress:Port\n"
            "TCP  10.96.0.20:80                  123456  100000K  2000000K 150000M    3G\n"
            "  -> 10.244.1.5:8080                123456  100000K  2000000K 150000M    3G\n")
    v = ps.parse_ipvs_stats(text)[0]
    assert (v.conns, v.inpkts, v.outpkts, v.inbytes, v.outbytes) == (
        123456, 100_000_000, 2_000_000_000, 150_000_000_000, 3_000_000_000)
    assert v.reals[0].inbytes == 150_000_000_000
    assert ps.parse_ipvs_stats("") == []


def test_ipvs_connection_entries_and_the_probe_s():
    conns = ps.parse_ipvs_conns((REC / "ipvsadm-Lnc.txt").read_text())
    assert len(conns) == 8
    assert conns[4] == ps.IpvsConn("TCP", "14:56", "ESTABLISHED", "10.0.0.2:45678",
                                   "10.96.0.20:80", "10.244.1.5:8080")
    assert ps.ipvs_conn_for(conns, "tcp", "10.0.0.2", 45678).destination == "10.244.1.5:8080"
    assert ps.ipvs_conn_for(conns, "udp", "10.0.0.2", 45678) is None
    assert ps.ipvs_conn_for(conns, "tcp", "10.0.0.2", 1) is None


SVC = {"metadata": {"name": "web", "namespace": "h6"},
       "spec": {"type": "NodePort", "clusterIP": "10.102.212.25", "clusterIPs": ["10.102.212.25"],
                "externalIPs": ["192.168.86.50"],
                "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]}}


def test_service_addresses():
    addrs = ps.service_addresses(SVC, ["192.168.86.172", "192.168.86.173"])
    assert addrs == {80: {("tcp", "10.102.212.25", "80"), ("tcp", "192.168.86.50", "80"),
                          ("tcp", "192.168.86.172", "30080"), ("tcp", "192.168.86.173", "30080")}}


def test_conntrack_entries_per_endpoint():
    entries = parse_conntrack((REC / "conntrack-acct-k8s-slave-172.txt").read_text())
    for e in entries:
        e["proto"] = "tcp"
    assert entries[0]["orig"]["packets"] == "6" and entries[0]["reply"]["bytes"] == "365"
    got = ps.conntrack_by_endpoint(entries, ps.service_addresses(SVC, [])[80])
    assert set(got) == {"10.244.1.3:8080", "10.244.2.3:8080"}  # the probes are not counted
    a, b = got["10.244.1.3:8080"], got["10.244.2.3:8080"]
    assert (a.conns, a.packets, a.bytes, a.accounted) == (1, 10, 397 + 749, True)
    assert (b.conns, b.packets, b.bytes) == (2, 20, 2 * (397 + 749))
    # the endpoint node's own entry of a forwarded connection is not NATed: not counted
    fwd = parse_conntrack("tcp 6 118 TIME_WAIT src=10.244.1.2 dst=10.244.2.3 sport=55814 "
                          "dport=8080 src=10.244.2.3 dst=10.244.1.2 sport=8080 dport=55814 "
                          "[ASSURED] mark=0 use=1")
    assert ps.conntrack_by_endpoint(fwd, {("tcp", "10.244.2.3", "8080")}) == {}


class _Node:
    def __init__(self, name, ip):
        self.name, self.ip = name, ip


class _Cfg:
    pod_cidr = "10.244.0.0/16"

    def __init__(self, mode):
        self.proxy_mode = mode
        self.nodes = [_Node("n1", "192.168.86.172"), _Node("n2", "192.168.86.173")]

    def node_netns(self, n):
        return n


SLICE = {"metadata": {"name": "web-x", "namespace": "h6",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node,
                        "targetRef": {"kind": "Pod", "name": pod}}
                       for ip, node, pod in (("10.244.1.3", "n1", "web-a"),
                                             ("10.244.2.3", "n2", "web-b"))]}


def test_the_table_in_nftables_mode():
    data = proxy_cmd._NodeData(_Cfg("nftables"))
    entries = parse_conntrack((REC / "conntrack-acct-k8s-slave-172.txt").read_text())
    for e in entries:
        e["proto"] = "tcp"
    data._cache = {"n1": (entries, True), "n2": ([], True)}
    lines = proxy_cmd.service_table(None, data, SVC, [SLICE]).splitlines()
    assert lines[0].split() == ["PORT", "ENDPOINT", "POD", "POD", "NODE", "n1", "n2", "TOTAL",
                                "PACKETS", "BYTES", "SHARE"]
    assert lines[1].split() == ["<unset>/80/TCP", "10.244.1.3:8080", "web-a", "n1", "1", "0",
                                "1", "10", "1146", "33.3%"]
    assert lines[2].split()[4:] == ["2", "0", "2", "20", "2292", "66.7%"]
    assert lines[3].split() == ["TOTAL", "3", "0", "3", "30", "3438", "100.0%"]


def test_the_table_in_ipvs_mode():
    data = proxy_cmd._NodeData(_Cfg("ipvs"))
    text = (REC / "ipvsadm-Ln-stats-exact.txt").read_text().replace(
        "10.96.0.20:80", "10.102.212.25:80").replace("10.244.1.5:8080", "10.244.1.3:8080") \
        .replace("10.244.1.6:8080", "10.244.2.3:8080")
    node_port = ("TCP  192.168.86.173:30080  2 10 10 600 700\n"
                 "  -> 10.244.2.3:8080       2 10 10 600 700\n")
    data._cache = {"n1": ps.parse_ipvs_stats(text), "n2": ps.parse_ipvs_stats(node_port)}
    lines = proxy_cmd.service_table(None, data, SVC, [SLICE]).splitlines()
    assert lines[0].split()[-6:] == ["TOTAL", "INPKTS", "OUTPKTS", "INBYTES", "OUTBYTES", "SHARE"]
    assert lines[1].split()[4:] == ["4", "0", "4", "18", "16", "1022", "987", "40.0%"]
    assert lines[2].split()[4:] == ["4", "2", "6", "30", "30", "1744", "1936", "60.0%"]
