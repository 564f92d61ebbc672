"""The pods/eviction subresource and PodDisruptionBudgets on the in-process API: what
kubectl drain and a PDB's user see (discovery, 201/429/404, the budget's status from the
disruption controller, validation, the table and describe)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from netsim.api import discovery
from netsim.api.client import LocalClient
from netsim.api.printing.printers import print_table
from netsim.cli.describe import describe
from netsim.controllers.disruption import DisruptionController
from tests.unit.kubectl_api import requires_kubectl, running_api

NS = "default"


def evict_url(name: str) -> str:
    return f"/api/v1/namespaces/{NS}/pods/{name}/eviction"


def eviction(name: str, **opts) -> dict:
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": NS}}
    if opts:
        body["deleteOptions"] = opts
    return body


def make_rs(store, name="web", replicas=3, labels=None) -> dict:
    labels = labels or {"app": name}
    return store.create({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})


def make_pod(store, name, labels, owner=None, ready=True, node="node1") -> dict:
    md = {"name": name, "namespace": NS, "labels": labels}
    if owner is not None:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner["kind"],
                                  "name": owner["metadata"]["name"],
                                  "uid": owner["metadata"]["uid"], "controller": True,
                                  "blockOwnerDeletion": True}]
    pod = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": md,
                        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                                 "containers": [{"name": "c", "image": "echo"}]}})
    pod["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}
    return store.update(pod, subresource="status")


def make_pdb(store, name="web-pdb", labels=None, **spec) -> dict:
    spec.setdefault("selector", {"matchLabels": labels or {"app": "web"}})
    return store.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                         "metadata": {"name": name, "namespace": NS}, "spec": spec})


def sync(store, name="web-pdb") -> dict:
    DisruptionController(LocalClient(store)).reconcile(f"{NS}/{name}")
    return store.get("poddisruptionbudgets", name, NS)


@pytest.fixture
def api():
    with running_api() as a:
        yield a


def test_discovery_lists_pods_eviction_in_policy_v1(api):
    code, doc = api.call("GET", "/api/v1")
    assert code == 200
    entry = next(r for r in doc["resources"] if r["name"] == "pods/eviction")
    assert (entry["group"], entry["version"], entry["kind"], entry["verbs"]) == \
        ("policy", "v1", "Eviction", ["create"])
    code, doc = api.call("GET", "/apis/policy/v1")
    assert code == 200
    pdb = next(r for r in doc["resources"] if r["name"] == "poddisruptionbudgets")
    assert pdb["shortNames"] == ["pdb"] and pdb["namespaced"]
    assert "poddisruptionbudgets" in discovery.WITH_STATUS


def test_eviction_without_a_budget_deletes_the_pod(api):
    make_pod(api.store, "lonely", {"app": "x"})
    code, out = api.call("POST", evict_url("lonely"), eviction("lonely"))
    assert (code, out) == (201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                 "status": "Success"})
    code, _ = api.call("GET", f"/api/v1/namespaces/{NS}/pods/lonely")
    assert code == 404


def test_eviction_of_a_missing_pod_is_404(api):
    code, out = api.call("POST", evict_url("nope"), eviction("nope"))
    assert code == 404
    assert out["message"] == 'pods "nope" not found'


def test_eviction_name_must_match_the_url(api):
    make_pod(api.store, "a", {"app": "x"})
    code, out = api.call("POST", evict_url("a"), eviction("b"))
    assert code == 400
    assert out["message"] == "name in URL does not match name in Eviction object"
    assert api.call("GET", f"/api/v1/namespaces/{NS}/pods/a")[0] == 200


def test_min_available_budget_refuses_with_429_and_a_disruption_budget_cause(api):
    for i in range(2):
        make_pod(api.store, f"web-{i}", {"app": "web"})
    make_pdb(api.store, minAvailable=2)
    pdb = sync(api.store)
    st = pdb["status"]
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"],
            st["disruptionsAllowed"]) == (2, 2, 2, 0)
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
    code, out = api.call("POST", evict_url("web-0"), eviction("web-0"))
    assert code == 429
    assert out["reason"] == "TooManyRequests"
    assert out["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert out["details"]["causes"] == [{
        "reason": "DisruptionBudget",
        "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]
    assert api.call("GET", f"/api/v1/namespaces/{NS}/pods/web-0")[0] == 200


def test_max_unavailable_counts_the_controllers_scale_and_allows_one(api):
    rs = make_rs(api.store, replicas=3)
    for i in range(3):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    make_pdb(api.store, maxUnavailable=1)
    st = sync(api.store)["status"]
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"],
            st["disruptionsAllowed"]) == (3, 2, 3, 1)
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")
    code, _ = api.call("POST", evict_url("web-0"), eviction("web-0"))
    assert code == 201
    st = api.store.get("poddisruptionbudgets", "web-pdb", NS)["status"]
    assert st["disruptionsAllowed"] == 0
    code, out = api.call("POST", evict_url("web-1"), eviction("web-1"))
    assert code == 429, out
    # the controller's next pass: 2 healthy of 2 desired, nothing more allowed
    st = sync(api.store)["status"]
    assert (st["currentHealthy"], st["disruptionsAllowed"]) == (2, 0)


def test_percent_min_available_rounds_up_over_the_deployments_scale(api):
    d = api.store.create({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})
    rs = make_rs(api.store, "web-abc", replicas=4, labels={"app": "web"})
    rs["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "web", "uid": d["metadata"]["uid"],
                                          "controller": True}]
    rs = api.store.update(rs)
    for i in range(4):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs, ready=i != 3)
    make_pdb(api.store, minAvailable="60%")
    st = sync(api.store)["status"]
    # ceil(0.6 * 4) = 3 desired, 3 ready: none allowed
    assert (st["expectedPods"], st["desiredHealthy"], st["currentHealthy"],
            st["disruptionsAllowed"]) == (4, 3, 3, 0)
    # the unready pod may go: the budget is met without it
    code, _ = api.call("POST", evict_url("web-3"), eviction("web-3"))
    assert code == 201


def test_a_daemonset_pod_under_max_unavailable_fails_safe(api):
    ds = api.store.create({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "echo"}]}}}})
    make_pod(api.store, "agent-x", {"app": "agent"}, owner=ds)
    make_pdb(api.store, "agent-pdb", labels={"app": "agent"}, maxUnavailable=1)
    st = sync(api.store, "agent-pdb")["status"]
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionAllowed")
    assert (st["disruptionsAllowed"], cond["reason"]) == (0, "SyncFailed")
    assert cond["message"] == 'found no controllers for pod "agent-x"'


def test_pending_pods_are_evicted_without_looking_at_budgets(api):
    api.store.create({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": "web-p", "namespace": NS, "labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": "echo"}]}})
    make_pdb(api.store, minAvailable=5)
    sync(api.store)
    assert api.call("POST", evict_url("web-p"), eviction("web-p"))[0] == 201


def test_dry_run_eviction_changes_nothing(api):
    rs = make_rs(api.store, replicas=2)
    for i in range(2):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    make_pdb(api.store, maxUnavailable=1)
    before = sync(api.store)
    code, _ = api.call("POST", evict_url("web-0") + "?dryRun=All", eviction("web-0"))
    assert code == 201
    assert api.call("GET", f"/api/v1/namespaces/{NS}/pods/web-0")[0] == 200
    assert api.store.get("poddisruptionbudgets", "web-pdb", NS)["status"] == before["status"]


@pytest.mark.parametrize("spec, message", [
    ({"minAvailable": 1, "maxUnavailable": 1}, "minAvailable and maxUnavailable cannot be both set"),
    ({"minAvailable": "120%"}, 'spec.minAvailable: Invalid value: "120%": must not be greater '
                               "than 100%"),
    ({"maxUnavailable": -1}, "spec.maxUnavailable: Invalid value: -1: must be greater than or "
                             "equal to 0"),
    ({"maxUnavailable": "x"}, "spec.maxUnavailable: Invalid value: \"x\": a valid percent string "
                              "must be a numeric string followed by an ending '%'"),
    ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"},
     'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: '
     '"AlwaysAllow", "IfHealthyBudget"'),
])
def test_pdb_validation_in_the_apiservers_words(api, spec, message):
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "bad", "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}
    code, out = api.call("POST", f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets", body)
    assert code == 422, out
    assert out["message"].startswith('PodDisruptionBudget.policy "bad" is invalid: ') or \
        out["message"].startswith('The PodDisruptionBudget "bad" is invalid: '), out["message"]
    assert message in out["message"]
    assert api.call("GET", f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/bad")[0] == 404


def test_get_pdb_table_and_describe(api):
    rs = make_rs(api.store, replicas=3)
    for i in range(3):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    make_pdb(api.store, maxUnavailable=1)
    make_pdb(api.store, "other", labels={"app": "none"}, minAvailable="50%")
    pdb = sync(api.store)
    other = sync(api.store, "other")
    now = datetime.now(timezone.utc)
    text = print_table("poddisruptionbudgets", [other, pdb], now=now)
    lines = text.splitlines()
    assert lines[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                "DISRUPTIONS", "AGE"]
    assert lines[1].split()[:4] == ["other", "50%", "N/A", "0"]
    assert lines[2].split()[:4] == ["web-pdb", "N/A", "1", "1"]
    out = describe("poddisruptionbudgets", pdb, related={"events": []}, now=now)
    assert out.splitlines() == [
        "Name:             web-pdb",
        "Namespace:        default",
        "Max unavailable:  1",
        "Selector:         app=web",
        "Status:",
        "    Allowed disruptions:  1",
        "    Current:              3",
        "    Desired:              2",
        "    Total:                3",
        "Events:                   <none>",
    ]


@requires_kubectl
def test_real_kubectl_reads_and_creates_pdbs(api):
    rs = make_rs(api.store, replicas=2)
    for i in range(2):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    r = api.kubectl("create", "pdb", "web-pdb", "--selector=app=web", "--max-unavailable=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "poddisruptionbudget.policy/web-pdb created\n"
    sync(api.store)
    r = api.kubectl("get", "pdb")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:3] == ["NAME", "MIN", "AVAILABLE"]
    assert r.stdout.splitlines()[1].split()[:4] == ["web-pdb", "N/A", "1", "1"]
    manifest = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "min"}, "spec": {"minAvailable": "50%",
                                                      "selector": {"matchLabels": {"app": "x"}}}}
    r = api.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "poddisruptionbudget.policy/min created\n"


def test_concurrent_evictions_spend_one_allowed_disruption_once(api):
    import threading
    rs = make_rs(api.store, replicas=4)
    for i in range(4):
        make_pod(api.store, f"web-{i}", {"app": "web"}, owner=rs)
    make_pdb(api.store, minAvailable=3)
    assert sync(api.store)["status"]["disruptionsAllowed"] == 1
    codes: list[int] = []

    def evict(name):
        codes.append(api.call("POST", evict_url(name), eviction(name))[0])
    threads = [threading.Thread(target=evict, args=(f"web-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 429, 429, 429]
    st = api.store.get("poddisruptionbudgets", "web-pdb", NS)["status"]
    assert st["disruptionsAllowed"] == 0 and len(st["disruptedPods"]) == 1


def test_protobuf_eviction_and_budget_bodies(api):
    from netsim.api import protobuf
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "pb", "namespace": NS},
           "spec": {"minAvailable": 0, "selector": {"matchLabels": {"app": "x"}}}}
    assert protobuf.decode(protobuf.encode(pdb)) == pdb  # a pointer set to 0 is kept
    code, out = api.call("POST", f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets",
                         protobuf.encode(pdb), protobuf.CONTENT_TYPE)
    assert code == 201, out
    assert out["spec"]["minAvailable"] == 0
    make_pod(api.store, "px", {"app": "y"})
    body = protobuf.encode({**eviction("px", gracePeriodSeconds=0)})
    code, out = api.call("POST", evict_url("px"), body, protobuf.CONTENT_TYPE)
    assert (code, out["status"]) == (201, "Success")
    assert api.call("GET", f"/api/v1/namespaces/{NS}/pods/px")[0] == 404
