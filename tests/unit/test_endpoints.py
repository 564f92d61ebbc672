"""Endpoints / EndpointSlice controller: reconcile called directly against an in-memory store."""

from __future__ import annotations

import pytest

from netsim.controllers.endpoints import MANAGED_BY, EndpointsController, plan_slices, pod_ready
from netsim.controllers.gc import GarbageCollector


@pytest.fixture
def ctl(client):
    return EndpointsController(client)


def make_svc(client, name="web", selector=None, ports=None, **spec):
    spec["selector"] = {"app": "web"} if selector is None else selector
    if spec["selector"] is False:
        del spec["selector"]
    spec["ports"] = ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080}]
    if not spec["ports"]:
        del spec["ports"]
    return client.create({"apiVersion": "v1", "kind": "Service",
                          "metadata": {"name": name, "namespace": "default"}, "spec": spec})


def make_pod(client, name, ip, ready=True, node="k8s-slave-172", labels=None, ports=None, **spec):
    client.create({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{
            "name": "c", "image": "echo", "ports": ports or [{"name": "web", "containerPort": 8080}]}],
            **spec}})
    if ip:
        set_status(client, name, ip, ready)
    return client.get("pods", name)


def set_status(client, name, ip, ready):
    pod = client.get("pods", name)
    pod["status"].update(phase="Running", podIP=ip, podIPs=[{"ip": ip}], conditions=[
        {"type": "Ready", "status": "True" if ready else "False"}])
    client.update_status(pod)


def endpoints(client, name="web"):
    return client.get("endpoints", name)


def slices(client, name="web"):
    return client.list("endpointslices", "default",
                       label_selector=f"kubernetes.io/service-name={name}")


def slice_conditions(client, name="web"):
    return {e["addresses"][0]: e["conditions"] for s in slices(client, name)
            for e in s.get("endpoints") or []}


def test_ready_pods_become_endpoints_and_slice(client, ctl):
    svc = make_svc(client)
    p1 = make_pod(client, "web-1", "10.244.1.5", node="k8s-slave-172")
    make_pod(client, "web-2", "10.244.2.7", node="k8s-slave-173")
    make_pod(client, "other", "10.244.2.8", labels={"app": "db"})
    make_pod(client, "no-ip", None)
    ctl.reconcile("default/web")

    ep = endpoints(client)
    assert ep["subsets"] == [{
        "addresses": [
            {"ip": "10.244.1.5", "nodeName": "k8s-slave-172", "targetRef": {
                "kind": "Pod", "namespace": "default", "name": "web-1", "uid": p1["metadata"]["uid"]}},
            {"ip": "10.244.2.7", "nodeName": "k8s-slave-173", "targetRef": {
                "kind": "Pod", "namespace": "default", "name": "web-2",
                "uid": client.get("pods", "web-2")["metadata"]["uid"]}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]

    (sl,) = slices(client)
    md = sl["metadata"]
    assert md["name"].startswith("web-") and len(md["name"]) == len("web-") + 5
    assert md["generateName"] == "web-"
    assert md["labels"] == {"kubernetes.io/service-name": "web",
                            "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
    assert md["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                      "uid": svc["metadata"]["uid"], "controller": True,
                                      "blockOwnerDeletion": True}]
    assert sl["addressType"] == "IPv4"
    assert sl["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert sl["endpoints"][0] == {
        "addresses": ["10.244.1.5"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1",
                      "uid": p1["metadata"]["uid"]},
        "nodeName": "k8s-slave-172"}
    assert len(sl["endpoints"]) == 2


def test_no_rewrite_when_nothing_changed(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    ctl.reconcile("default/web")
    rv_ep = endpoints(client)["metadata"]["resourceVersion"]
    rv_sl = [s["metadata"]["resourceVersion"] for s in slices(client)]
    ctl.reconcile("default/web")
    ctl.reconcile("default/web")
    assert endpoints(client)["metadata"]["resourceVersion"] == rv_ep
    assert [s["metadata"]["resourceVersion"] for s in slices(client)] == rv_sl


def test_readiness_flip_moves_address(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    make_pod(client, "web-2", "10.244.1.6")
    ctl.reconcile("default/web")
    set_status(client, "web-2", "10.244.1.6", ready=False)
    ctl.reconcile("default/web")
    (sub,) = endpoints(client)["subsets"]
    assert [a["ip"] for a in sub["addresses"]] == ["10.244.1.5"]
    assert [a["ip"] for a in sub["notReadyAddresses"]] == ["10.244.1.6"]
    cond = slice_conditions(client)
    assert cond["10.244.1.6"] == {"ready": False, "serving": False, "terminating": False}
    assert cond["10.244.1.5"]["ready"] is True
    set_status(client, "web-2", "10.244.1.6", ready=True)
    ctl.reconcile("default/web")
    (sub,) = endpoints(client)["subsets"]
    assert [a["ip"] for a in sub["addresses"]] == ["10.244.1.5", "10.244.1.6"]
    assert "notReadyAddresses" not in sub
    assert slice_conditions(client)["10.244.1.6"]["ready"] is True


def test_scale_down_drops_one(client, ctl):
    make_svc(client)
    for i in range(3):
        make_pod(client, f"web-{i}", f"10.244.1.{10 + i}")
    ctl.reconcile("default/web")
    assert len(endpoints(client)["subsets"][0]["addresses"]) == 3
    client.delete("pods", "web-2", grace_period_seconds=0)
    ctl.reconcile("default/web")
    assert [a["ip"] for a in endpoints(client)["subsets"][0]["addresses"]] == \
        ["10.244.1.10", "10.244.1.11"]
    assert sorted(slice_conditions(client)) == ["10.244.1.10", "10.244.1.11"]
    assert len(slices(client)) == 1


def test_terminating_pod_leaves(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    make_pod(client, "web-2", "10.244.1.6")
    ctl.reconcile("default/web")
    client.delete("pods", "web-2")           # on a node: graceful, gets a deletionTimestamp
    assert client.get("pods", "web-2")["metadata"].get("deletionTimestamp")
    ctl.reconcile("default/web")
    (sub,) = endpoints(client)["subsets"]
    assert [a["ip"] for a in sub["addresses"]] == ["10.244.1.5"]
    assert "notReadyAddresses" not in sub
    # The slice keeps it flagged terminating (not ready) so kube-proxy can drain it.
    assert slice_conditions(client)["10.244.1.6"] == {"ready": False, "serving": True,
                                                      "terminating": True}


def test_terminal_pods_leave(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    pod = client.get("pods", "web-1")
    pod["status"]["phase"] = "Failed"
    client.update_status(pod)
    ctl.reconcile("default/web")
    assert "subsets" not in endpoints(client)
    (sl,) = slices(client)
    assert sl["endpoints"] == [] and sl["ports"] == []


def test_named_target_port_per_pod(client, ctl):
    make_svc(client, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    make_pod(client, "v1", "10.244.1.5", ports=[{"name": "web", "containerPort": 8080}])
    make_pod(client, "v2", "10.244.1.6", ports=[{"name": "web", "containerPort": 9090}])
    make_pod(client, "none", "10.244.1.7", ports=[{"name": "admin", "containerPort": 9000}])
    make_pod(client, "udp", "10.244.1.8",
             ports=[{"name": "web", "containerPort": 7070, "protocol": "UDP"}])
    ctl.reconcile("default/web")
    subsets = endpoints(client)["subsets"]
    got = {(a["ip"], s["ports"][0]["port"]) for s in subsets for a in s["addresses"]}
    assert got == {("10.244.1.5", 8080), ("10.244.1.6", 9090)}
    by_port = {s["ports"][0]["port"] if s["ports"] else None: [e["addresses"][0] for e in s["endpoints"]]
               for s in slices(client)}
    assert by_port[8080] == ["10.244.1.5"] and by_port[9090] == ["10.244.1.6"]
    # Pods without the named port still get a slice entry, with no ports (as upstream).
    assert sorted(by_port[None]) == ["10.244.1.7", "10.244.1.8"]


def test_multiple_ports_and_udp(client, ctl):
    make_svc(client, ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    make_pod(client, "dns-1", "10.244.1.5")
    ctl.reconcile("default/web")
    assert endpoints(client)["subsets"][0]["ports"] == [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    assert slices(client)[0]["ports"] == [
        {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]


def test_headless_hostname_and_label(client, ctl):
    make_svc(client, name="db", selector={"app": "db"}, clusterIP="None", ports=[])
    make_pod(client, "db-0", "10.244.1.5", labels={"app": "db"}, hostname="db-0", subdomain="db")
    make_pod(client, "db-1", "10.244.1.6", labels={"app": "db"}, hostname="db-1", subdomain="other")
    ctl.reconcile("default/db")
    ep = endpoints(client, "db")
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    (sub,) = ep["subsets"]
    assert "ports" not in sub
    assert [(a["ip"], a.get("hostname")) for a in sub["addresses"]] == \
        [("10.244.1.5", "db-0"), ("10.244.1.6", None)]
    (sl,) = slices(client, "db")
    assert sl["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert sl["endpoints"][0]["hostname"] == "db-0" and "hostname" not in sl["endpoints"][1]


def test_no_pods_gives_empty_endpoints_and_placeholder_slice(client, ctl):
    make_svc(client)
    ctl.reconcile("default/web")
    assert "subsets" not in endpoints(client)
    (sl,) = slices(client)
    assert sl["endpoints"] == []


def test_selectorless_service_keeps_user_endpoints_and_mirrors_them(client, ctl):
    make_svc(client, name="ext-db", selector=False, ports=[{"name": "mysql", "port": 3306}])
    client.create({"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": "ext-db", "namespace": "default"},
                   "subsets": [{"addresses": [{"ip": "192.168.3.50"}],
                                "ports": [{"name": "mysql", "port": 3306}]}]})
    before = endpoints(client, "ext-db")
    ctl.reconcile("default/ext-db")
    assert endpoints(client, "ext-db") == before
    (sl,) = slices(client, "ext-db")
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
        "endpointslicemirroring-controller.k8s.io"
    assert sl["endpoints"] == [{"addresses": ["192.168.3.50"], "conditions": {"ready": True}}]
    assert sl["ports"] == [{"name": "mysql", "port": 3306, "protocol": "TCP"}]
    # Deleting the Service leaves the user's Endpoints, removes the mirror.
    client.delete("services", "ext-db")
    ctl.reconcile("default/ext-db")
    assert client.get_or_none("endpoints", "ext-db") is not None
    assert slices(client, "ext-db") == []


def test_service_deleted_removes_endpoints_and_slices(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    ctl.reconcile("default/web")
    client.delete("services", "web")
    ctl.reconcile("default/web")
    assert client.get_or_none("endpoints", "web") is None
    assert slices(client) == []


def test_gc_removes_orphaned_slices(client, ctl):
    make_svc(client)
    ctl.reconcile("default/web")
    client.delete("services", "web")
    GarbageCollector(client).sweep()
    assert slices(client) == []


def test_pod_label_change_requeues_service(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    ctl.reconcile("default/web")
    old = client.get("pods", "web-1")
    pod = dict(old, metadata={**old["metadata"], "labels": {"app": "moved"}})
    pod = client.update(pod)
    assert list(ctl.keys_for("pods", pod)) == []  # it no longer matches...
    ctl._enqueue("pods", old, pod)  # ...but the update queues the Service it left
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.reconcile("default/web")
    assert "subsets" not in endpoints(client)


def test_pod_update_that_changes_no_endpoint_queues_nothing(client, ctl):
    """Upstream's GetServicesToUpdateOnPodChange: a write an endpoint does not show
    (a container's state) queues no Service; readiness does, and only the pod's own."""
    make_svc(client)
    client.create({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "other", "namespace": "default"},
                   "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]}})
    make_pod(client, "web-1", "10.244.1.5")
    old = client.get("pods", "web-1")
    new = dict(old, status={**old["status"], "containerStatuses": [{"name": "c", "ready": False,
                                                                    "restartCount": 1}]})
    ctl._enqueue("pods", old, new)
    assert len(ctl.queue) == 0
    ready = dict(new, status={**new["status"], "conditions": [
        {"type": "Ready", "status": "False" if pod_ready(old) else "True"}]})
    ctl._enqueue("pods", new, ready)
    assert ctl.queue.get(timeout=0) == "default/web"
    assert len(ctl.queue) == 0


def test_static_endpoints_hook(client):
    client.create({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "kubernetes", "namespace": "default"},
                   "spec": {"clusterIP": "10.96.0.1",
                            "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}})
    subsets = [{"addresses": [{"ip": "192.168.3.171"}],
                "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    ctl = EndpointsController(client, static_endpoints={("default", "kubernetes"): subsets})
    assert "default/kubernetes" in ctl.all_keys()
    ctl.reconcile("default/kubernetes")
    assert endpoints(client, "kubernetes")["subsets"] == subsets
    sl = client.get("endpointslices", "kubernetes", "default")
    assert sl["endpoints"] == [{"addresses": ["192.168.3.171"], "conditions": {"ready": True}}]
    assert sl["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]


def _ep(i: int, ready: bool = True) -> dict:
    return {"addresses": [f"10.244.{1 + i % 3}.{2 + i // 3}"],
            "conditions": {"ready": ready, "serving": ready, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": "default", "name": f"web-{i}"}}


def _apply(existing: list[dict], desired, n=[0]) -> tuple[list[dict], int]:  # noqa: B006
    """plan_slices' writes applied to `existing` (a create gets a name): (slices, writes)."""
    writes, gone = plan_slices(existing, desired, lambda s: True)
    out = {s["metadata"]["name"]: s for s in existing}
    for s, ports, eps in writes:
        if s is None:
            n[0] += 1
            s = {"metadata": {"name": f"web-{n[0]}"}}
        out[s["metadata"]["name"]] = {**s, "ports": ports, "endpoints": eps}
    for s in gone:
        out.pop(s["metadata"]["name"])
    return list(out.values()), len(writes) + len(gone)


def test_slices_keep_their_endpoints_one_pod_change_writes_one_slice():
    """Upstream's reconciler: an endpoint stays in its slice, so adding, removing or
    changing one pod rewrites one slice (kube-proxy on every node then reads one slice),
    where re-sorting every endpoint by address shifted every slice after it."""
    ports = [{"name": "", "port": 8080, "protocol": "TCP"}]
    eps = sorted((_ep(i) for i in range(250)), key=lambda e: [int(x) for x in
                                                              e["addresses"][0].split(".")])
    slices, writes = _apply([], [(ports, eps[:100]), (ports, eps[100:200]), (ports, eps[200:])])
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100] and writes == 3
    # a new pod whose address sorts first: into the slice with room, nothing else moves
    new = {"addresses": ["10.244.0.2"], "conditions": {"ready": True, "serving": True,
                                                       "terminating": False},
           "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-new"}}
    slices2, writes = _apply(slices, [(ports, [new, *eps])])
    assert writes == 1
    assert sorted(len(s["endpoints"]) for s in slices2) == [51, 100, 100]
    # one pod not ready any more: its slice only, in the same slot
    flipped = [_ep(int(e["targetRef"]["name"][4:]), ready=e is not eps[150]) for e in eps]
    slices3, writes = _apply(slices2, [(ports, [new, *flipped])])
    assert writes == 1
    where = {e["targetRef"]["name"]: (s["metadata"]["name"], j)
             for s in slices3 for j, e in enumerate(s["endpoints"])}
    assert where == {e["targetRef"]["name"]: (s["metadata"]["name"], j)
                     for s in slices2 for j, e in enumerate(s["endpoints"])}
    # one pod gone: its slice only; every endpoint gone from a slice: that slice deleted
    slices4, writes = _apply(slices3, [(ports, [new, *flipped[1:]])])
    assert writes == 1 and sum(len(s["endpoints"]) for s in slices4) == 250
    keep = next(s["endpoints"] for s in slices4 if new in s["endpoints"])
    slices5, writes = _apply(slices4, [(ports, keep)])
    assert writes == 2 and len(slices5) == 1


def test_pod_changes_within_the_batch_period_are_synced_once_it_ends(client, ctl):
    """Upstream's endpoint(slice)-updates-batch-period: after a sync, pod changes wait
    until the period has passed since it began (here batch_cost_factor times what the
    last sync cost, at most batch_seconds); after a quiet spell, none waits."""
    import time
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    old = client.get("pods", "web-1")
    ready = dict(old, status={**old["status"], "conditions": [
        {"type": "Ready", "status": "False"}]})
    ctl._enqueue("pods", old, ready)  # never synced: at once
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.queue.done("default/web")
    ctl.batch.began["default/web"] = time.monotonic()  # a sync (of a started controller) began
    ctl.batch.cost["default/web"] = 1.0  # an expensive one: the whole batch_seconds
    ctl._enqueue("pods", ready, old)
    assert ctl.queue.get(timeout=0) is None  # held back...
    t = time.monotonic()
    assert ctl.queue.get(timeout=5) == "default/web"  # ...until the period is over
    assert time.monotonic() - t <= ctl.batch_seconds + 0.5
    ctl.queue.done("default/web")
    ctl.batch.began["default/web"] = time.monotonic()
    ctl.batch.cost["default/web"] = 0.001  # a Service of a few pods: 10 ms
    ctl._enqueue("pods", old, ready)
    t = time.monotonic()
    assert ctl.queue.get(timeout=5) == "default/web"
    assert time.monotonic() - t < 0.2


def test_a_sync_records_its_cost_for_the_next_batch_period(client, ctl):
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    ctl._running = True
    try:
        ctl.reconcile("default/web")
    finally:
        ctl._running = False
    assert 0 < ctl.batch.cost["default/web"] < 1.0
    client.delete("services", "web")
    ctl.reconcile("default/web")  # gone: nothing kept for it
    assert "default/web" not in ctl.batch.cost and "default/web" not in ctl.batch.began


def test_own_writes_coming_back_queue_nothing_other_writers_do(client, ctl):
    """upstream's endpointSliceTracker: the controller's own Endpoints/EndpointSlice
    writes do not queue their Service again; a change by anyone else does."""
    make_svc(client)
    make_pod(client, "web-1", "10.244.1.5")
    ctl.reconcile("default/web")
    ep, (sl,) = endpoints(client), slices(client)
    ctl._enqueue("endpoints", ep)
    ctl._enqueue("endpointslices", sl, sl)
    assert len(ctl.queue) == 0
    edited = client.update({**sl, "metadata": {**sl["metadata"], "labels": {
        **sl["metadata"]["labels"], "extra": "x"}}})
    ctl._enqueue("endpointslices", sl, edited)
    assert ctl.queue.get(timeout=0) == "default/web"
    ctl.reconcile("default/web")
    assert "extra" not in slices(client)[0]["metadata"]["labels"]  # put back


def test_remembered_entries_follow_pod_and_service_changes(client, ctl):
    """Each pod's entries are remembered per pod and Service version: what a sync writes
    is what a fresh controller writes, after pod, readiness and Service port changes."""
    make_svc(client)
    for i in range(3):
        make_pod(client, f"web-{i}", f"10.244.1.{5 + i}")
    ctl.reconcile("default/web")
    set_status(client, "web-1", "10.244.1.6", False)
    make_pod(client, "web-3", "10.244.1.9")
    client.delete("pods", "web-0", grace_period_seconds=0)
    ctl.reconcile("default/web")
    svc = client.get("services", "web")
    svc["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 9090}]
    client.update(svc)
    ctl.reconcile("default/web")
    got = (endpoints(client).get("subsets"), [s.get("endpoints") for s in slices(client)],
           [s.get("ports") for s in slices(client)])
    fresh = EndpointsController(client)
    for s in slices(client):
        client.delete("endpointslices", s["metadata"]["name"])
    client.delete("endpoints", "web")
    fresh.reconcile("default/web")
    assert got == (endpoints(client).get("subsets"), [s.get("endpoints") for s in slices(client)],
                   [s.get("ports") for s in slices(client)])
    assert got[0][0]["ports"][0]["port"] == 9090
    assert [a["ip"] for a in got[0][0]["notReadyAddresses"]] == ["10.244.1.6"]


def _addrs(n: int, first: int = 1) -> list[dict]:
    return [{"ip": f"10.244.1.{i}"} for i in range(first, first + n)]


def test_truncate_subsets_as_upstreams_truncate_endpoints():
    """Upstream's truncateEndpoints cases: at capacity nothing changes; too many ready ones
    are cut per subset in proportion (rounded up) and the not-ready ones dropped; otherwise
    only the not-ready ones are cut."""
    from netsim.controllers.endpoints import truncate_subsets

    subsets = [{"addresses": _addrs(2), "notReadyAddresses": _addrs(1, 50), "ports": [{"port": 1}]}]
    assert truncate_subsets(subsets, 3) == (subsets, False)
    two = [{"addresses": _addrs(6), "notReadyAddresses": _addrs(2, 50), "ports": [{"port": 1}]},
           {"addresses": _addrs(3, 100), "ports": [{"port": 2}]}]
    got, cut = truncate_subsets(two, 4)  # 9 ready > 4: 6/9*4 -> 3, then 3/9*4 -> 2, 1 left
    assert cut and got == [{"addresses": _addrs(3), "ports": [{"port": 1}]},
                           {"addresses": _addrs(1, 100), "ports": [{"port": 2}]}]
    assert two[0]["notReadyAddresses"] == _addrs(2, 50)  # what it was given is not changed
    got, cut = truncate_subsets(two, 10)  # 9 ready fit: 1 of the not-ready ones
    assert cut and got == [{"addresses": _addrs(6), "notReadyAddresses": _addrs(1, 50),
                            "ports": [{"port": 1}]}, two[1]]


def test_endpoints_over_capacity_are_truncated_and_annotated(client, ctl):
    """A Service with more pods than a v1 Endpoints holds: the Endpoints keeps the first
    (by IP) and says `over-capacity: truncated`; its slices keep every pod; back under
    capacity the annotation goes."""
    from netsim.controllers.endpoints import OVER_CAPACITY_ANNOTATION

    ctl.endpoints_capacity = 3
    make_svc(client)
    for i in range(1, 5):
        make_pod(client, f"web-{i}", f"10.244.1.{i}")
    ctl.reconcile("default/web")
    ep = endpoints(client)
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.244.1.1", "10.244.1.2",
                                                                "10.244.1.3"]
    assert ep["metadata"]["annotations"][OVER_CAPACITY_ANNOTATION] == "truncated"
    assert len(slice_conditions(client)) == 4
    rv = ep["metadata"]["resourceVersion"]
    ctl.reconcile("default/web")  # nothing changed: no write
    assert endpoints(client)["metadata"]["resourceVersion"] == rv
    client.delete("pods", "web-4", grace_period_seconds=0)
    ctl.reconcile("default/web")
    ep = endpoints(client)
    assert len(ep["subsets"][0]["addresses"]) == 3
    assert OVER_CAPACITY_ANNOTATION not in ep["metadata"]["annotations"]
