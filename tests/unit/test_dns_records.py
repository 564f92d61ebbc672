"""Zone records and answers, checked against the kubernetes/dns specification and CoreDNS' handler_test."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from netsim.api.validation import DNS1035_MSG, IP_MSG, LABEL_MSG, PORT_RANGE_MSG
from netsim.dns.records import Zone, dashed, pod_view, reverse_name

SOA_RE = "ns.dns.cluster.local. hostmaster.cluster.local. {serial} 7200 1800 86400 5"


def svc(name, ns="default", cluster_ip="10.96.0.20", ports=(("http", 80, "TCP"),), **spec):
    body = {"clusterIP": cluster_ip,
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports], **spec}
    if cluster_ip and cluster_ip != "None":
        body["clusterIPs"] = [cluster_ip]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "11"}, "spec": body}


def eps(service, ns="default", endpoints=(), ports=(("http", 80, "TCP"),), name=None):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [dict(e) for e in endpoints],
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}


def ep(ip, ready=True, hostname=None, pod=None):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    if pod:
        e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": "default"}
    return e


def pod(name, ip, ns="default", hostname=None, subdomain=None, ready=True):
    spec = {"containers": [{"name": "c", "image": "echo"}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec,
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def ask(zone: Zone, name: str, qtype: str = "A") -> DNSRecord:
    reply = zone.answer(DNSRecord.question(name, qtype))
    assert reply is not None, f"{name} {qtype} should be in the zone"
    # What a client sees: the reply survives the wire format.
    return DNSRecord.parse(reply.pack())


def rdatas(records, rtype=None) -> list[str]:
    return sorted(str(rr.rdata) for rr in records if rtype is None or QTYPE[rr.rtype] == rtype)


@pytest.fixture
def zone() -> Zone:
    services = [
        svc("kubernetes", cluster_ip="10.96.0.1", ports=(("https", 443, "TCP"),)),
        svc("kube-dns", ns="kube-system", cluster_ip="10.96.0.10",
            ports=(("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))),
        svc("myblog", ns="uit", cluster_ip="10.99.174.93", ports=(("http", 80, "TCP"),)),
        svc("empty", ns="uit", cluster_ip="10.99.0.7", ports=(("http", 80, "TCP"), (None, 81, "TCP"))),
        svc("mysql", ns="uit", cluster_ip="None", ports=(("mysql", 3306, "TCP"),)),
        svc("nobody", ns="uit", cluster_ip="None"),
        svc("ext", ns="uit", cluster_ip=None, ports=(), type="ExternalName",
            externalName="www.example.org"),
        svc("alias", ns="uit", cluster_ip=None, ports=(), type="ExternalName",
            externalName="myblog.uit.svc.cluster.local"),
    ]
    slices = [
        eps("myblog", ns="uit", endpoints=[ep("10.244.1.5"), ep("10.244.2.6")]),
        eps("mysql", ns="uit", ports=(("mysql", 3306, "TCP"),),
            endpoints=[ep("10.244.1.9", hostname="mysql-0"), ep("10.244.2.9"),
                       ep("10.244.2.10", ready=False)]),
        eps("nobody", ns="uit", endpoints=[ep("10.244.1.77", ready=False)]),
    ]
    pods = [pod("mysql-0", "10.244.1.9", ns="uit", hostname="mysql-0", subdomain="mysql"),
            pod("web-0", "10.244.2.11", ns="uit", hostname="web-0", subdomain="mysql"),
            pod("myblog-1", "10.244.1.5", ns="uit")]
    return Zone.build(services, slices, pods)


# --------------------------------------------------------------------- the reference bullets
def test_dns_version_txt(zone):
    r = ask(zone, "dns-version.cluster.local", "TXT")
    assert r.header.rcode == RCODE.NOERROR
    assert rdatas(r.rr) == ['"1.1.0"']


@pytest.mark.parametrize("name", ["kubernetes.default.svc.cluster.local",
                                  "kubernetes.default.svc.cluster.local."])
def test_kubernetes_service_a(zone, name):
    r = ask(zone, name)
    assert r.header.rcode == RCODE.NOERROR and r.header.aa
    assert rdatas(r.rr, "A") == ["10.96.0.1"]
    assert r.rr[0].ttl == 30


def test_clusterip_without_endpoints_still_has_a(zone):
    assert rdatas(ask(zone, "empty.uit.svc.cluster.local").rr) == ["10.99.0.7"]


def test_srv_named_port_with_glue(zone):
    r = ask(zone, "_http._tcp.myblog.uit.svc.cluster.local", "SRV")
    assert [str(rr.rdata) for rr in r.rr] == ["0 100 80 myblog.uit.svc.cluster.local."]
    assert [(str(rr.rname), str(rr.rdata)) for rr in r.ar] == [
        ("myblog.uit.svc.cluster.local.", "10.99.174.93")]


def test_srv_proto_is_case_insensitive_and_unknown_port_is_nxdomain(zone):
    r = ask(zone, "_dns._UDP.kube-dns.kube-system.svc.cluster.local", "SRV")
    assert rdatas(r.rr) == ["0 100 53 kube-dns.kube-system.svc.cluster.local."]
    assert ask(zone, "_dns._sctp.kube-dns.kube-system.svc.cluster.local",
               "SRV").header.rcode == RCODE.NXDOMAIN
    assert ask(zone, "_nope._tcp.myblog.uit.svc.cluster.local",
               "SRV").header.rcode == RCODE.NXDOMAIN


def test_srv_on_service_name_lists_every_port_with_coredns_weights(zone):
    r = ask(zone, "empty.uit.svc.cluster.local", "SRV")
    assert rdatas(r.rr) == ["0 50 80 empty.uit.svc.cluster.local.",
                            "0 50 81 empty.uit.svc.cluster.local."]
    assert rdatas(r.ar) == ["10.99.0.7"]  # glue once, not per SRV


def test_ptr_for_cluster_ip(zone):
    r = ask(zone, "1.0.96.10.in-addr.arpa", "PTR")
    assert rdatas(r.rr) == ["kubernetes.default.svc.cluster.local."]
    assert reverse_name("10.96.0.1") == "1.0.96.10.in-addr.arpa."


def test_ptr_for_headless_endpoints(zone):
    assert rdatas(ask(zone, "9.1.244.10.in-addr.arpa", "PTR").rr) == [
        "mysql-0.mysql.uit.svc.cluster.local."]
    assert rdatas(ask(zone, "9.2.244.10.in-addr.arpa", "PTR").rr) == [
        "10-244-2-9.mysql.uit.svc.cluster.local."]


def test_unknown_reverse_name_is_not_ours(zone):
    assert zone.answer(DNSRecord.question("99.0.96.10.in-addr.arpa", "PTR")) is None


def test_headless_a_set_is_ready_endpoints_only(zone):
    r = ask(zone, "mysql.uit.svc.cluster.local")
    assert rdatas(r.rr) == ["10.244.1.9", "10.244.2.9"]


def test_headless_endpoint_names(zone):
    assert rdatas(ask(zone, "mysql-0.mysql.uit.svc.cluster.local").rr) == ["10.244.1.9"]
    assert rdatas(ask(zone, "10-244-2-9.mysql.uit.svc.cluster.local").rr) == ["10.244.2.9"]
    # the unready endpoint has no name either
    assert ask(zone, "10-244-2-10.mysql.uit.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert dashed("10.244.2.9") == "10-244-2-9"


def test_headless_srv_per_endpoint_targets_endpoint_names(zone):
    r = ask(zone, "_mysql._tcp.mysql.uit.svc.cluster.local", "SRV")
    assert rdatas(r.rr) == ["0 50 3306 10-244-2-9.mysql.uit.svc.cluster.local.",
                            "0 50 3306 mysql-0.mysql.uit.svc.cluster.local."]
    assert sorted((str(rr.rname), str(rr.rdata)) for rr in r.ar) == [
        ("10-244-2-9.mysql.uit.svc.cluster.local.", "10.244.2.9"),
        ("mysql-0.mysql.uit.svc.cluster.local.", "10.244.1.9")]


def test_headless_without_ready_endpoints_is_nxdomain(zone):
    r = ask(zone, "nobody.uit.svc.cluster.local")
    assert r.header.rcode == RCODE.NXDOMAIN and not r.rr
    assert [QTYPE[rr.rtype] for rr in r.auth] == ["SOA"]


def test_headless_shrinks_when_an_endpoint_turns_unready():
    services = [svc("db", cluster_ip="None")]
    before = Zone.build(services, [eps("db", endpoints=[ep("10.244.1.2"), ep("10.244.1.3")])], [])
    after = Zone.build(services, [eps("db", endpoints=[ep("10.244.1.2"),
                                                       ep("10.244.1.3", ready=False)])], [])
    assert rdatas(ask(before, "db.default.svc.cluster.local").rr) == ["10.244.1.2", "10.244.1.3"]
    assert rdatas(ask(after, "db.default.svc.cluster.local").rr) == ["10.244.1.2"]
    assert ask(after, "10-244-1-3.db.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert zone_has_no_ptr(after, "3.1.244.10.in-addr.arpa")


def zone_has_no_ptr(zone: Zone, name: str) -> bool:
    return zone.answer(DNSRecord.question(name, "PTR")) is None


def test_ready_condition_missing_counts_as_ready():
    slice_ = eps("db", endpoints=[{"addresses": ["10.244.1.4"]}])
    z = Zone.build([svc("db", cluster_ip="None")], [slice_], [])
    assert rdatas(ask(z, "db.default.svc.cluster.local").rr) == ["10.244.1.4"]


def test_headless_spread_over_several_slices():
    slices = [eps("db", endpoints=[ep("10.244.1.2")], name="db-1"),
              eps("db", endpoints=[ep("10.244.2.2")], name="db-2"),
              eps("other", endpoints=[ep("10.244.3.3")])]
    z = Zone.build([svc("db", cluster_ip="None")], slices, [])
    assert rdatas(ask(z, "db.default.svc.cluster.local").rr) == ["10.244.1.2", "10.244.2.2"]


def test_externalname_cname(zone):
    r = ask(zone, "ext.uit.svc.cluster.local", "CNAME")
    assert rdatas(r.rr) == ["www.example.org."]
    r = ask(zone, "ext.uit.svc.cluster.local", "A")  # the resolver chases the CNAME
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in r.rr] == [("CNAME", "www.example.org.")]
    # subdomains of an ExternalName service do not exist (CoreDNS handler_test)
    assert ask(zone, "x.ext.uit.svc.cluster.local", "CNAME").header.rcode == RCODE.NXDOMAIN


def test_externalname_to_internal_service_chases_inside_the_zone(zone):
    r = ask(zone, "alias.uit.svc.cluster.local")
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in r.rr] == [
        ("CNAME", "myblog.uit.svc.cluster.local."), ("A", "10.99.174.93")]


def test_externalname_changes_and_type_change_to_clusterip():
    v1 = Zone.build([svc("db", cluster_ip=None, ports=(), type="ExternalName",
                         externalName="foo.example.com")], [], [])
    v2 = Zone.build([svc("db", cluster_ip=None, ports=(), type="ExternalName",
                         externalName="bar.example.com")], [], [])
    v3 = Zone.build([svc("db", cluster_ip="10.96.7.7", type="ClusterIP")], [], [])
    name = "db.default.svc.cluster.local"
    assert rdatas(ask(v1, name, "CNAME").rr) == ["foo.example.com."]
    assert rdatas(ask(v2, name, "CNAME").rr) == ["bar.example.com."]
    r = ask(v3, name, "A")
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in r.rr] == [("A", "10.96.7.7")]
    assert ask(v3, name, "CNAME").header.rcode == RCODE.NOERROR and not ask(v3, name, "CNAME").rr


def test_pod_records(zone):
    assert rdatas(ask(zone, "10-244-1-5.uit.pod.cluster.local").rr) == ["10.244.1.5"]
    # `pods insecure`: any dashed IPv4 in a namespace that exists
    assert rdatas(ask(zone, "10-244-9-9.uit.pod.cluster.local").rr) == ["10.244.9.9"]
    assert ask(zone, "10-244-9-9.nons.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(zone, "10-244-9-999.uit.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(zone, "10-244-1-5.uit.pod.cluster.local", "AAAA").header.rcode == RCODE.NOERROR


def test_hostname_subdomain_records(zone):
    assert rdatas(ask(zone, "mysql-0.mysql.uit.svc.cluster.local").rr) == ["10.244.1.9"]
    # web-0 is not an endpoint (no slice entry yet) but its hostname+subdomain resolves
    assert rdatas(ask(zone, "web-0.mysql.uit.svc.cluster.local").rr) == ["10.244.2.11"]
    unready = Zone.build([svc("mysql", cluster_ip="None")], [],
                         [pod("web-1", "10.244.2.12", hostname="web-1", subdomain="mysql",
                              ready=False)])
    assert ask(unready, "web-1.mysql.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_nodata_vs_nxdomain_with_soa(zone):
    nodata = ask(zone, "kubernetes.default.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr
    nx = ask(zone, "nope.default.svc.cluster.local", "A")
    assert nx.header.rcode == RCODE.NXDOMAIN and not nx.rr
    for r in (nodata, nx):
        assert len(r.auth) == 1
        soa = r.auth[0]
        assert str(soa.rname) == "cluster.local." and soa.ttl == 5
        assert str(soa.rdata) == SOA_RE.format(serial=11)


def test_non_existent_namespace_is_nxdomain(zone):
    assert ask(zone, "kubernetes.nons.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def namespace(name, rv="20"):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "resourceVersion": rv}}


def test_a_namespace_that_exists_is_known_with_nothing_in_it():
    """As CoreDNS (it follows Namespaces): `<ns>.svc` is NODATA and `pods insecure` names
    resolve in a namespace that exists; one that does not stays NXDOMAIN."""
    zone = Zone.build([svc("kubernetes", cluster_ip="10.96.0.1")], [], [],
                      namespaces=[namespace("default"), namespace("quiet")])
    for name in ("quiet.svc.cluster.local", "quiet.pod.cluster.local"):
        r = ask(zone, name)
        assert r.header.rcode == RCODE.NOERROR and not r.rr and QTYPE[r.auth[0].rtype] == "SOA"
    assert rdatas(ask(zone, "10-244-9-9.quiet.pod.cluster.local").rr) == ["10.244.9.9"]
    assert ask(zone, "web.quiet.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    for name in ("gone.svc.cluster.local", "10-244-9-9.gone.pod.cluster.local"):
        assert ask(zone, name).header.rcode == RCODE.NXDOMAIN
    assert zone.serial == 20  # the newest object, a Namespace included
    # Without Namespace objects a namespace is known by what lives in it (as before).
    assert ask(Zone.build([svc("kubernetes", cluster_ip="10.96.0.1")], [], []),
               "quiet.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_a_namespace_whose_name_is_no_label_is_skipped():
    bad = namespace("bad\nname")
    zone = Zone.build([], [], [], namespaces=[bad, namespace("ok")])
    # admission's words: the Namespace would have been refused with this cause
    assert zone.skipped == [(bad, f'metadata.name: Invalid value: "bad\\nname": {LABEL_MSG}')]
    assert "ok" in zone.namespaces and "bad\nname" not in zone.namespaces


@pytest.mark.parametrize("name", ["svc.cluster.local", "pod.cluster.local",
                                  "uit.svc.cluster.local", "cluster.local",
                                  "_tcp.myblog.uit.svc.cluster.local"])
def test_empty_non_terminals_are_nodata(zone, name):
    r = ask(zone, name, "A")
    assert r.header.rcode == RCODE.NOERROR and not r.rr
    assert [QTYPE[rr.rtype] for rr in r.auth] == ["SOA"]


def test_soa_and_ns_at_the_apex(zone):
    r = ask(zone, "cluster.local", "SOA")
    assert [QTYPE[rr.rtype] for rr in r.rr] == ["SOA"]
    r = ask(zone, "cluster.local", "NS")
    assert rdatas(r.rr) == ["ns.dns.cluster.local."]
    assert rdatas(r.ar) == ["10.96.0.10"]
    # SOA on a name below the apex is NODATA (CoreDNS handler_test)
    r = ask(zone, "kubernetes.default.svc.cluster.local", "SOA")
    assert not r.rr and [QTYPE[rr.rtype] for rr in r.auth] == ["SOA"]


def test_case_insensitive_and_echoes_the_question_case(zone):
    r = ask(zone, "KuBeRnEtEs.Default.SVC.cluster.LOCAL")
    assert [(str(rr.rname), str(rr.rdata)) for rr in r.rr] == [
        ("KuBeRnEtEs.Default.SVC.cluster.LOCAL.", "10.96.0.1")]
    assert str(r.q.qname) == "KuBeRnEtEs.Default.SVC.cluster.LOCAL."
    r = ask(zone, "_HTTP._TCP.myblog.UIT.svc.cluster.local", "SRV")
    assert str(r.rr[0].rname) == "_HTTP._TCP.myblog.UIT.svc.cluster.local."


@pytest.mark.parametrize("name", ["example.com", "kubernetes.default.svc.cluster.local.example",
                                  "local", "xcluster.local"])
def test_names_outside_the_zone_are_not_ours(zone, name):
    assert zone.answer(DNSRecord.question(name, "A")) is None


def test_chaos_class_is_not_ours(zone):
    q = DNSRecord.question("version.bind", "TXT", "CH")
    assert zone.answer(q) is None


def test_other_domain_and_ttl():
    z = Zone.build([svc("web")], [], [], domain="corp.internal", ttl=5, serial=42)
    r = ask(z, "web.default.svc.corp.internal")
    assert rdatas(r.rr) == ["10.96.0.20"] and r.rr[0].ttl == 5
    assert zone_has_no_ptr(z, "x.example") and z.answer(
        DNSRecord.question("web.default.svc.cluster.local")) is None
    nx = ask(z, "nope.default.svc.corp.internal")
    assert str(nx.auth[0].rdata).startswith("ns.dns.corp.internal. hostmaster.corp.internal. 42 ")


def test_render_is_stable(zone):
    text = zone.render()
    assert text == zone.render()
    assert "kubernetes.default.svc.cluster.local. 30      IN      A       10.96.0.1" in text
    assert Zone.build([], [], []).answer(DNSRecord.question("dns-version.cluster.local",
                                                            "TXT")) is not None


# ----------------------------------------------------------- objects that cannot be records
def every_answer_packs(zone: Zone) -> None:
    """What a client would hit: every name and type in the zone answers on the wire."""
    for name in zone.names():
        for qtype in ("A", "AAAA", "SRV", "PTR", "CNAME", "TXT", "ANY"):
            reply = zone.answer(DNSRecord.question(name, qtype))
            if reply is not None:
                DNSRecord.parse(reply.pack())


def test_unusable_objects_are_left_out_whole_and_listed_with_the_reason():
    bad_slice = eps("db", endpoints=[ep("10.244.1.3"), ep("not-an-ip")], name="db-bad")
    bad_slice_port = eps("db", endpoints=[ep("10.244.1.4")], ports=(("http", 70000, "TCP"),),
                         name="db-bad-port")
    bad_pod = pod("p", "10.244.1.8", hostname="Host_1", subdomain="db")
    dual = svc("dual", cluster_ip="10.96.0.10")
    dual["spec"]["clusterIPs"] = ["10.96.0.10", "fd00::zz"]
    services = [svc("web", cluster_ip="10.96.0.5"), svc("db", cluster_ip="None"),
                svc("web\n", cluster_ip="10.96.0.6"),
                svc("a" * 64, cluster_ip="10.96.0.7"),
                svc("ports", cluster_ip="10.96.0.8", ports=(("http", "abc", "TCP"),)),
                svc("proto", cluster_ip="10.96.0.9", ports=(("http", 80, "ICMP"),)),
                dual,
                svc("ext", cluster_ip=None, ports=(), type="ExternalName",
                    externalName="a" * 64 + ".example.com"),
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nospec"},
                 "spec": "oops"}]
    slices = [eps("db", endpoints=[ep("10.244.1.2")]), bad_slice, bad_slice_port]
    zone = Zone.build(services, slices, [bad_pod, pod("q", "10.244.1.2")])
    assert rdatas(ask(zone, "web.default.svc.cluster.local").rr) == ["10.96.0.5"]
    assert rdatas(ask(zone, "db.default.svc.cluster.local").rr) == ["10.244.1.2"]
    assert rdatas(ask(zone, "10-244-1-2.default.pod.cluster.local").rr) == ["10.244.1.2"]
    for name in ("ports", "proto", "dual", "ext"):
        assert ask(zone, f"{name}.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    every_answer_packs(zone)
    why = {(o.get("kind"), o["metadata"]["name"]): reason for o, reason in zone.skipped}
    # The causes admission would have refused them with (netsim.api.validation's words);
    # a label over 63 octets in an externalName is DNS's own limit, named as
    # IsFullyQualifiedDomainName names a long label.
    assert why == {
        ("Service", "web\n"): f'metadata.name: Invalid value: "web\\n": {DNS1035_MSG}',
        ("Service", "a" * 64): f'metadata.name: Invalid value: "{"a" * 64}": must be no more '
                               "than 63 characters",
        ("Service", "ports"): f'spec.ports[0].port: Invalid value: "abc": {PORT_RANGE_MSG}',
        ("Service", "proto"): 'spec.ports[0].protocol: Unsupported value: "ICMP": supported '
                              'values: "SCTP", "TCP", "UDP"',
        ("Service", "dual"): f'spec.clusterIPs[1]: Invalid value: "fd00::zz": {IP_MSG}',
        ("Service", "ext"): f'spec.externalName: Invalid value: "{"a" * 64}": must be no '
                            "more than 63 characters",
        ("Service", "nospec"): "spec: Invalid value: must be an object",
        ("EndpointSlice", "db-bad"): f'endpoints[1].addresses[0]: Invalid value: "not-an-ip": '
                                     f"{IP_MSG}",
        ("EndpointSlice", "db-bad-port"): f"ports[0].port: Invalid value: 70000: "
                                          f"{PORT_RANGE_MSG}",
        ("Pod", "p"): f'spec.hostname: Invalid value: "Host_1": {LABEL_MSG}',
    }


def test_valid_objects_leave_nothing_skipped(zone):
    assert zone.skipped == []
    every_answer_packs(zone)


def test_an_external_name_is_checked_as_admission_checks_it():
    """A trailing dot is allowed (admission cuts it before IsDNS1123Subdomain); none at all
    is admission's Required value; a name admission would refuse is refused in its words."""
    def ext(name, target):
        return svc(name, cluster_ip=None, ports=(), type="ExternalName", externalName=target)

    zone = Zone.build([ext("dot", "www.example.org."), ext("none", ""),
                       ext("upper", "WWW.example.org")], [], [])
    assert rdatas(ask(zone, "dot.default.svc.cluster.local", "CNAME").rr) == [
        "www.example.org."]
    why = {o["metadata"]["name"]: reason for o, reason in zone.skipped}
    assert why == {"none": "spec.externalName: Required value",
                   "upper": 'spec.externalName: Invalid value: "WWW.example.org": a lowercase '
                            "RFC 1123 subdomain must consist of lower case alphanumeric "
                            "characters, '-' or '.', and must start and end with an "
                            "alphanumeric character (e.g. 'example.com', regex used for "
                            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]"
                            "([-a-z0-9]*[a-z0-9])?)*')"}


def test_pod_view_changes_only_with_what_the_zone_reads_of_a_pod():
    """The DNS server rebuilds its zone for a pod's change only when pod_view differs. An
    IPv4 pod's own record is what `pods insecure` answers without it; a hostname.subdomain
    record (and its readiness) is not."""
    pending = pod("p", None)
    pending["status"] = {"phase": "Pending"}
    running, moved = pod("p", "10.244.1.5"), pod("p", "10.244.1.6")
    assert pod_view(pending) is None and pod_view(running) is None and pod_view(moved) is None
    for p in (running, moved):  # the answer is the same with the record or without it
        name = f"{dashed(p['status']['podIP'])}.default.pod.cluster.local"
        default = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}]
        with_it = Zone.build([], [], [p], namespaces=default)
        without = Zone.build([], [], [], namespaces=default)
        assert str(ask(with_it, name).rr[0]) == str(ask(without, name).rr[0])
    named = pod("p", "10.244.1.5", hostname="h", subdomain="s")
    named_unready = pod("p", "10.244.1.5", hostname="h", subdomain="s", ready=False)
    named_moved = pod("p", "10.244.1.6", hostname="h", subdomain="s")
    assert None not in {pod_view(named), pod_view(named_unready), pod_view(named_moved)}
    assert pod_view(named) != pod_view(named_unready) and pod_view(named) != pod_view(named_moved)
    assert pod_view(named) == pod_view(pod("p", "10.244.1.5", hostname="h", subdomain="s"))
    v6 = pod("p", "fd00::5")
    assert pod_view(v6) is not None and pod_view(v6) != pod_view(pod("p", "fd00::6"))
    host = pod("p", "10.0.0.3", hostname="h", subdomain="s")
    host["spec"]["hostNetwork"] = True
    assert pod_view(host) is None
    broken = pod("p", "10.244.1.5")
    broken["status"]["podIPs"] = "10.244.1.5"  # not a list: always looked at
    assert pod_view(broken) != pod_view(broken)
