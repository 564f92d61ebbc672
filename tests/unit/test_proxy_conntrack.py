"""netsim.proxy.conntrack: which UDP conntrack entries are stale, after upstream's
pkg/proxy/conntrack/cleanup_test.go (TestCleanStaleEntries, TestServiceWithoutEndpoints,
TestFilterForIPPortNAT / TestFilterForPortNAT), and how `conntrack -L` lines are read."""

from __future__ import annotations

from netsim.proxy.conntrack import Entry, Filter, parse_entries, stale_filters, wants_cleanup
from tests.proxy_fixtures import ep, eps, lb_status, port, snap, svc

CLUSTER_IP = "172.30.1.1"
EXTERNAL_IP = "192.168.99.100"
LB_IP = "1.2.3.4"
SERVING = "10.240.0.4"
NON_SERVING = "10.240.1.5"
DELETED = "10.240.2.6"
OLD_EP_PORT, EP_PORT, SVC_PORT, NODE_PORT, NON_SVC_PORT = 8080, 9090, 8000, 32000, 3000


def cleanup_objects(label: str = "cleanup-test"):
    """upstream's test Service: TCP, UDP (NodePort) and SCTP on one port, an external IP,
    an LB IP; its slice: one serving endpoint and one not serving."""
    service = svc("test", "cleanup-test", type="LoadBalancer", clusterIP=CLUSTER_IP,
                  externalIPs=[EXTERNAL_IP], status=lb_status(LB_IP), ports=[
                      port("test-tcp", SVC_PORT, "TCP", nodePort=NODE_PORT + 1),
                      port("test-udp", SVC_PORT, "UDP", nodePort=NODE_PORT),
                      port("test-sctp", SVC_PORT, "SCTP", nodePort=NODE_PORT)])
    ports = [port("test-tcp", EP_PORT, "TCP"), port("test-udp", EP_PORT, "UDP"),
             port("test-sctp", EP_PORT, "SCTP")]
    sl = eps("test", label, [ep(SERVING, serving=True), ep(NON_SERVING, serving=False,
                                                           ready=False)], ports)
    return [service], [sl]


def entry(orig_dst: str, orig_dport: int, reply_src: str, reply_sport: int,
          proto: str = "udp") -> Entry:
    return Entry(proto, "10.0.0.2", orig_dst, 40000, orig_dport, reply_src, reply_sport)


def apply_filters(entries: list[Entry], filters: list[Filter]) -> list[Entry]:
    """What `conntrack -D` with each filter leaves in the table."""
    def matches(e: Entry, f: Filter) -> bool:
        return (e.proto == f.proto and (f.orig_dst is None or e.orig_dst == f.orig_dst)
                and e.orig_dport == f.orig_dport and e.reply_src == f.reply_src
                and e.reply_sport == f.reply_sport)
    return [e for e in entries if not any(matches(e, f) for f in filters)]


def test_clean_stale_entries():
    s = snap(*cleanup_objects())
    before: list[Entry] = []
    after: list[Entry] = []
    # an endpoint that changed its port, not its IP: stale
    for dst in (CLUSTER_IP, LB_IP, EXTERNAL_IP):
        before.append(entry(dst, SVC_PORT, SERVING, OLD_EP_PORT))
    # 3 endpoints x 3 protocols x (3 frontends x (service port, another port) + the NodePort)
    for target in (SERVING, NON_SERVING, DELETED):
        for proto in ("tcp", "udp", "sctp"):
            for dst in (CLUSTER_IP, LB_IP, EXTERNAL_IP):
                for p in (SVC_PORT, NON_SVC_PORT):
                    e = entry(dst, p, target, EP_PORT, proto)
                    before.append(e)
                    if not (proto == "udp" and p == SVC_PORT and target != SERVING):
                        after.append(e)
            e = entry("192.168.0.2", NODE_PORT, target, EP_PORT, proto)
            before.append(e)
            if not (proto == "udp" and target != SERVING):
                after.append(e)
    # not DNATed (made while the Service had no endpoint): reply source = the service IP
    for ip in (CLUSTER_IP, LB_IP, EXTERNAL_IP):
        for p in (SVC_PORT, NON_SVC_PORT):
            e = Entry("udp", "10.0.0.2", ip, 40000, p, ip, p)
            before.append(e)
            if p != SVC_PORT:
                after.append(e)
    filters = stale_filters(s, before)
    assert sorted(apply_filters(before, filters), key=repr) == sorted(after, key=repr)
    assert len(before) - len(after) == 3 + 3 * 2 + 2 + 3  # port change, dead/non-serving, NP, no NAT
    # one filter per distinct target, the NodePort ones on any address
    assert Filter(None, NODE_PORT, DELETED, EP_PORT) in filters
    assert Filter(CLUSTER_IP, SVC_PORT, DELETED, EP_PORT) in filters
    assert len(filters) == len(set(filters))


def test_service_without_endpoints_is_left_alone():
    # the slice belongs to another service: this one has no endpoints at all
    s = snap(*cleanup_objects(label="non-existing-service"))
    entries = [entry(EXTERNAL_IP, SVC_PORT, SERVING, EP_PORT),
               entry(EXTERNAL_IP, SVC_PORT, DELETED, EP_PORT)]
    assert stale_filters(s, entries) == []
    assert not wants_cleanup(s)


def test_terminating_but_serving_endpoints_keep_their_flows():
    """Serving is what counts, not ready: a terminating pod still answering keeps the flows
    it has (like TCP connections); new flows go to ready pods by the rules."""
    services = [svc("kube-system", "kube-dns", clusterIP="10.96.0.10",
                    ports=[port("dns", 53, "UDP")])]
    slices = [eps("kube-system", "kube-dns", [
        ep("10.244.1.2", ready=False, serving=True, terminating=True),
        ep("10.244.2.2", ready=False, serving=False, terminating=True),
        ep("10.244.2.3")], [port("dns", 53, "UDP")])]
    s = snap(services, slices)
    entries = [entry("10.96.0.10", 53, ip, 53) for ip in
               ("10.244.1.2", "10.244.2.2", "10.244.2.3", "10.244.2.9")]
    assert stale_filters(s, entries) == [
        Filter("10.96.0.10", 53, "10.244.2.2", 53), Filter("10.96.0.10", 53, "10.244.2.9", 53)]


def test_filter_argv():
    assert Filter("10.96.0.10", 80, "10.244.0.3", 3000).argv() == [
        "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "80",
        "--reply-src", "10.244.0.3", "--reply-port-src", "3000"]
    assert Filter(None, 8000, "10.244.0.3", 5000).argv() == [
        "-p", "udp", "--orig-port-dst", "8000", "--reply-src", "10.244.0.3",
        "--reply-port-src", "5000"]


def test_parse_conntrack_list_output():
    text = (
        "udp      17 29 src=10.244.1.2 dst=10.96.0.10 sport=54761 dport=53 src=10.244.2.3 "
        "dst=10.244.1.2 sport=53 dport=54761 mark=0 use=1\n"
        "udp      17 25 src=10.244.1.2 dst=10.96.0.10 sport=5000 dport=53 [UNREPLIED] "
        "src=10.244.2.4 dst=10.244.1.2 sport=53 dport=5000 mark=0 use=1\n"
        "tcp      6 108 TIME_WAIT src=10.244.1.1 dst=10.244.1.9 sport=49414 dport=8080 "
        "src=10.244.1.9 dst=10.244.1.1 sport=8080 dport=49414 [ASSURED] mark=0 use=1\n"
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
        "garbage\n")
    assert parse_entries(text) == [
        Entry("udp", "10.244.1.2", "10.96.0.10", 54761, 53, "10.244.2.3", 53),
        Entry("udp", "10.244.1.2", "10.96.0.10", 5000, 53, "10.244.2.4", 53),
        Entry("tcp", "10.244.1.1", "10.244.1.9", 49414, 8080, "10.244.1.9", 8080),
    ]


def test_the_agent_lists_conntrack_again_only_when_a_udp_service_s_endpoints_changed(
        monkeypatch):
    """StaleEntryCleaner: a sync that changed no UDP serving endpoint starts no `conntrack`
    (a process start costs ~1 s under emulation); one that did cleans as before; a failed
    listing is retried by the next sync."""
    from netsim.proxy import conntrack

    calls: list[list[str]] = []
    rc = [0]

    def fake_run(args, netns):
        calls.append(args)
        out = f"udp 17 29 src=10.0.0.2 dst={CLUSTER_IP} sport=40000 dport={SVC_PORT} " \
              f"src={DELETED} dst=10.0.0.2 sport={EP_PORT} dport=40000 mark=0 use=1\n"
        return conntrack.subprocess.CompletedProcess(args, rc[0], out, "")
    monkeypatch.setattr(conntrack, "_run", fake_run)
    monkeypatch.setattr(conntrack.shutil, "which", lambda tool: "/usr/sbin/" + tool)
    c = conntrack.StaleEntryCleaner()
    s = snap(*cleanup_objects())
    assert c.clean(s) == [Filter(CLUSTER_IP, SVC_PORT, DELETED, EP_PORT)]
    assert [a[0] for a in calls] == ["-L", "-D"]
    calls.clear()
    assert c.clean(snap(*cleanup_objects())) == [] and calls == []  # nothing changed
    services, slices = cleanup_objects()
    slices[0]["endpoints"].append(ep("10.240.3.7", serving=True))
    rc[0] = 1  # listing fails: tried again next time
    assert c.clean(snap(services, slices)) == [] and len(calls) == 1
    rc[0] = 0
    c.clean(snap(services, slices))
    assert [a[0] for a in calls] == ["-L", "-L", "-D"]
