"""Watch with sendInitialEvents (kubectl 1.37's wait, rollout status and delete --wait),
resourceVersionMatch and limit/continue, as the apiserver answers them.

What a user notices: `kubectl rollout status` and `kubectl wait` return at once for a
Deployment already done (the initial ADDED, then the bookmark annotated
k8s.io/initial-events-end), a forbidden mix is a 422 in apimachinery's words (kubectl
then falls back to list + watch), and `kubectl get` at more than 500 objects pages.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from netsim.api import listopts
from netsim.api.client import LocalClient, _UnixConnection
from tests.unit import test_api_hardening as hardening

api = hardening.api  # (store, socket path, server): an API server on a temp socket
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _cm(name: str, ns: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": {"k": name}}


def _get(path: str, url: str, accept: str = "application/json") -> tuple[int, dict]:
    c = _UnixConnection(path)
    try:
        c.request("GET", url, headers={"Accept": accept})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def _stream(path: str, url: str, n: int) -> tuple[int, list[dict]]:
    """The first n events of a watch (or its error body)."""
    c = _UnixConnection(path, timeout=10)
    try:
        c.request("GET", url)
        r = c.getresponse()
        if r.status != 200:
            return r.status, [json.loads(r.read())]
        out = []
        while len(out) < n:
            line = r.readline()
            if not line:
                break
            if line.strip():
                out.append(json.loads(line))
        return 200, out
    finally:
        c.close()


def _q(**kw) -> str:
    return urllib.parse.urlencode(kw)


def test_send_initial_events_then_the_end_bookmark_then_live_events(api):
    """kubectl 1.37 rollout status's request, recorded from the real client."""
    store, path, _ = api
    c = LocalClient(store)
    c.create(_cm("web"))
    c.create(_cm("other"))
    url = "/api/v1/namespaces/default/configmaps?" + _q(
        allowWatchBookmarks="true", fieldSelector="metadata.name=web",
        resourceVersionMatch="NotOlderThan", sendInitialEvents="true", timeoutSeconds="5",
        watch="true")
    status, evs = _stream(path, url, 2)
    assert status == 200
    assert [e["type"] for e in evs] == ["ADDED", "BOOKMARK"]
    assert evs[0]["object"]["metadata"]["name"] == "web"
    mark = evs[1]["object"]
    assert mark["kind"] == "ConfigMap" and mark["apiVersion"] == "v1"
    assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(mark["metadata"]["resourceVersion"]) == store.resource_version


def test_initial_events_then_changes_after_them(store):
    c = LocalClient(store)
    c.create(_cm("a"))
    got = []
    for etype, obj in store.watch("configmaps", "default", None, 3,
                                  initial_events="bookmark"):
        got.append((etype, (obj["metadata"].get("annotations") or {}).get(
            "k8s.io/initial-events-end") if etype == "BOOKMARK" else obj["metadata"]["name"]))
        if etype == "BOOKMARK":
            c.create(_cm("b"))
        if len(got) == 3:
            break
    assert got == [("ADDED", "a"), ("BOOKMARK", "true"), ("ADDED", "b")]


def test_watch_from_no_version_starts_with_the_state(api):
    """The legacy semantics the Python client's watch relies on: rv unset or 0 begins with
    an ADDED per object; a watch from a version only with what came after it."""
    store, path, _ = api
    c = LocalClient(store)
    c.create(_cm("a"))
    status, evs = _stream(path, "/api/v1/namespaces/default/configmaps?watch=1&"
                                "timeoutSeconds=2&resourceVersion=0", 1)
    assert status == 200 and evs[0]["type"] == "ADDED"
    rv = store.resource_version
    c.create(_cm("b"))
    status, evs = _stream(path, "/api/v1/namespaces/default/configmaps?watch=1&"
                                f"timeoutSeconds=2&resourceVersion={rv}", 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [("ADDED", "b")]


@pytest.mark.parametrize("query,message", [
    ({"watch": "true", "sendInitialEvents": "true"},
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
    ({"watch": "true", "resourceVersionMatch": "NotOlderThan"},
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
    ({"sendInitialEvents": "true"},
     'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
     "sendInitialEvents is forbidden for list"),
    ({"resourceVersionMatch": "Exact"},
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     "resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "0"},
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
     'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
])
def test_forbidden_combinations_are_422(api, query, message):
    _, path, _ = api
    status, out = _get(path, "/api/v1/namespaces/default/configmaps?" + _q(**query))
    assert status == 422 and out["reason"] == "Invalid"
    assert out["message"] == message


def test_resource_version_match_on_list(api):
    store, path, _ = api
    rv = store.resource_version
    status, out = _get(path, "/api/v1/configmaps?" + _q(resourceVersion=str(rv),
                                                        resourceVersionMatch="Exact"))
    assert status == 200 and out["metadata"]["resourceVersion"] == str(rv)
    status, out = _get(path, "/api/v1/configmaps?" + _q(resourceVersion="1",
                                                        resourceVersionMatch="NotOlderThan"))
    assert status == 200


@pytest.mark.parametrize("accept", ["application/json", TABLE])
def test_limit_and_continue_page_through_the_list(api, accept):
    store, path, _ = api
    c = LocalClient(store)
    for i in range(7):
        c.create(_cm(f"cm{i}", "default" if i % 2 else "kube-system"))
    seen, cont, pages = [], "", 0
    while True:
        q = {"limit": "3", **({"continue": cont} if cont else {})}
        status, out = _get(path, "/api/v1/configmaps?" + _q(**q), accept)
        assert status == 200
        items = out.get("rows") if accept == TABLE else out["items"]
        seen += [(i.get("object") or i)["metadata"]["name"] for i in items]
        pages += 1
        cont = out["metadata"].get("continue")
        if not cont:
            assert "remainingItemCount" not in out["metadata"]
            break
        assert out["metadata"]["remainingItemCount"] == 7 - len(seen)
    assert pages == 3 and sorted(seen) == sorted(f"cm{i}" for i in range(7))
    # the list's order: by namespace, then name
    assert seen == ["cm1", "cm3", "cm5", "cm0", "cm2", "cm4", "cm6"]


def test_bad_continue_token_is_400(api):
    _, path, _ = api
    status, out = _get(path, "/api/v1/configmaps?limit=1&continue=%21%21")
    assert status == 400 and out["message"].startswith("invalid continue token")


def test_continue_token_round_trip():
    tok = listopts.encode_continue(42, ("default", "web"))
    assert listopts.decode_continue(tok) == (42, ("default", "web"))


def test_cached_table_rows_are_the_printed_table_byte_for_byte():
    """Lists as Tables come from rows cached per object version: the same bytes as the
    Table printed from the decoded objects, second after second, odd names included."""
    from datetime import datetime, timedelta, timezone

    from netsim.api import tables
    now = datetime.now(timezone.utc)
    objs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": n, "namespace": "default",
                          "creationTimestamp": "2026-01-01T00:00:00Z"}, "data": {"a": "b"}}
            for n in ('x],"\u0001",[y', 'z],"\\u0001",[w', "plain")]
    texts = [json.dumps(o) for o in objs]
    for d in (0, 0, 1, 5, 9, 10, 11, 59, 60, 61, 3600, 3605):
        t = now + timedelta(seconds=d)
        assert tables.table_bytes("configmaps", texts, "5", t) == json.dumps(
            tables.table("configmaps", objs, "5", t), separators=(",", ":")).encode()
    assert json.loads(tables.table_bytes("configmaps", [], "5"))["rows"] == []
