"""Rollout arithmetic against upstream's worked examples (deployment_util_test.go, the seed)."""

from __future__ import annotations

import re

import pytest

from netsim.controllers import rollout as ro


def deploy(replicas=3, surge="25%", unavailable="25%", strategy="RollingUpdate", status_replicas=0):
    st = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "ublog", "uid": "d-uid", "generation": 1},
            "spec": {"replicas": replicas, "strategy": st},
            "status": {"replicas": status_replicas}}


def rs(name, spec, avail=None, created="2026-01-01T00:00:00Z", max_replicas=None,
       desired=None, rev=None):
    ann = {}
    if max_replicas is not None:
        ann[ro.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        ann[ro.DESIRED_REPLICAS] = str(desired)
    if rev is not None:
        ann[ro.REVISION] = str(rev)
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann,
                         "ownerReferences": [{"uid": "d-uid", "controller": True}]},
            "spec": {"replicas": spec, "template": {"metadata": {"labels": {"app": name}}}},
            "status": {"replicas": spec, "availableReplicas": spec if avail is None else avail}}


# ---- rounding ------------------------------------------------------------------------------
@pytest.mark.parametrize("surge,unavail,desired,want", [
    ("25%", "25%", 3, (1, 0)),      # the seed: 0.75 -> surge 1 (up), unavailable 0 (down)
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 10, (3, 2)),     # 2.5 -> 3 up, 2 down
    ("0%", "0%", 10, (0, 1)),       # both 0 -> unavailable 1
    (0, 0, 5, (0, 1)),
    (3, 2, 10, (3, 2)),
    ("50%", 0, 3, (2, 0)),
    ("100%", "100%", 1, (1, 1)),
    ("34%", "34%", 3, (2, 1)),      # 1.02 -> 2 up, 1 down
])
def test_fenceposts(surge, unavail, desired, want):
    assert ro.resolve_fenceposts(surge, unavail, desired) == want


def test_max_unavailable_caps_at_replicas_and_zero_for_recreate():
    assert ro.max_unavailable(deploy(replicas=2, unavailable=5, surge=0)) == 2
    assert ro.max_unavailable(deploy(replicas=0)) == 0
    assert ro.max_unavailable(deploy(strategy="Recreate")) == 0
    assert ro.max_surge(deploy(strategy="Recreate")) == 0


def test_bad_percent_raises():
    with pytest.raises(ValueError):
        ro.int_or_percent("20Percent", 10, True)


# ---- the new RS's size -------------------------------------------------------------------------
def test_new_rs_first_step_is_the_surge():
    d = deploy(replicas=3)
    new = rs("new", 0)
    assert ro.new_rs_new_replicas(d, [rs("old", 3), new], new) == 1
    # already at replicas + surge: wait
    new = rs("new", 1)
    assert ro.new_rs_new_replicas(d, [rs("old", 3), new], new) == 1
    # room for one more after the old RS shrank
    assert ro.new_rs_new_replicas(d, [rs("old", 2), new], new) == 2


def test_new_rs_never_exceeds_replicas_and_recreate_is_all_at_once():
    d = deploy(replicas=10, surge=3, unavailable=2)
    new = rs("new", 8)
    assert ro.new_rs_new_replicas(d, [rs("old", 0), new], new) == 10
    d = deploy(replicas=4, strategy="Recreate")
    assert ro.new_rs_new_replicas(d, [rs("new", 0)], rs("new", 0)) == 4


# ---- the old RSs' scale-down budget --------------------------------------------------------------
def test_scale_down_waits_for_new_pods_to_be_available():
    d = deploy(replicas=3)
    new = rs("new", 1, avail=0)
    old = rs("old", 3)
    assert ro.plan_scale_down(d, [old, new], [old], new) == []
    new = rs("new", 1, avail=1)
    assert ro.plan_scale_down(d, [old, new], [old], new) == [("old", 2)]


def test_scale_down_removes_unhealthy_old_pods_first_oldest_rs_first():
    d = deploy(replicas=10, surge=3, unavailable=2)
    older = rs("older", 4, avail=2, created="2026-01-01T00:00:00Z")
    old = rs("old", 6, avail=6, created="2026-01-02T00:00:00Z")
    new = rs("new", 3, avail=0, created="2026-01-03T00:00:00Z")
    # allPods 13 - minAvailable 8 - newUnavailable 3 = 2: both unhealthy pods of "older" go;
    # availability 8 is not above 8, so nothing healthy follows.
    assert ro.plan_scale_down(d, [older, old, new], [older, old], new) == [("older", 2)]


def test_upstream_case_2_roll_over():
    """deployment rolling.go case 2: 13 pods, new RS at 0 -> old RSs can drop by 5."""
    d = deploy(replicas=10, surge=3, unavailable=2)
    a = rs("a", 8, avail=8, created="2026-01-01T00:00:00Z")
    b = rs("b", 5, avail=0, created="2026-01-02T00:00:00Z")
    new = rs("new", 0, created="2026-01-03T00:00:00Z")
    steps = ro.plan_scale_down(d, [a, b, new], [a, b], new)
    # b's 5 unavailable pods first, then nothing healthy (8 available == minAvailable 8)
    assert steps == [("b", 0)]


def test_seed_sequence_by_hand():
    """3 replicas, 25%/25%: +1 new, -1 old, ... never above 4, never below 3 available."""
    d = deploy(replicas=3)
    old, new = 3, 0
    seq = []
    for _ in range(10):
        n_rs, o_rs = rs("new", new, avail=new), rs("old", old, avail=old)
        target = ro.new_rs_new_replicas(d, [o_rs, n_rs], n_rs)
        if target != new:
            seq.append(f"new {target}")
            new = target
            continue
        steps = ro.plan_scale_down(d, [o_rs, n_rs], [o_rs], n_rs)
        if not steps:
            break
        old = steps[-1][1]
        seq.append(f"old {old}")
        assert old + new >= 3
    assert seq == ["new 1", "old 2", "new 2", "old 1", "new 3", "old 0"]


# ---- proportional scaling --------------------------------------------------------------------------
def test_proportional_scale_up_mid_rollout():
    d = deploy(replicas=20, surge=3, unavailable=2)
    old = rs("old", 8, max_replicas=13, created="2026-01-01T00:00:00Z")
    new = rs("new", 5, max_replicas=13, created="2026-01-02T00:00:00Z")
    sizes, op = ro.plan_proportional(d, new, [old])
    assert op == "up" and sizes == {"old": 14, "new": 9}


def test_proportional_scale_down_leftover_to_largest():
    d = deploy(replicas=5, surge=1, unavailable=0)
    old = rs("old", 7, max_replicas=11, created="2026-01-01T00:00:00Z")
    new = rs("new", 4, max_replicas=11, created="2026-01-02T00:00:00Z")
    sizes, op = ro.plan_proportional(d, new, [old])
    # allowed 6, remove 5: old 7*6/11=3.8 -> 4 (-3), new 4*6/11=2.2 -> 2 (-2)
    assert op == "down" and sizes == {"old": 4, "new": 2}
    assert sum(sizes.values()) == 6


def test_single_active_rs_takes_the_whole_scale():
    d = deploy(replicas=7)
    new = rs("new", 3)
    assert ro.plan_proportional(d, new, [rs("old", 0)]) == ({"new": 7}, "up")


def test_go_rounding_is_half_away_from_zero():
    assert ro._round(2.5) == 3 and ro._round(3.5) == 4 and ro._round(-2.5) == -3


# ---- hashes --------------------------------------------------------------------------------------------
def test_hash_format_and_stability():
    tmpl = {"metadata": {"labels": {"app": "myblog"}, "creationTimestamp": None},
            "spec": {"containers": [{"name": "myblog", "image": "myblog:v1"}]}}
    h = ro.compute_hash(tmpl)
    assert re.fullmatch(r"[4-9bcdf]{1,10}", h)
    assert ro.compute_hash(tmpl) == h
    with_label = {**tmpl, "metadata": {"labels": {"app": "myblog", ro.HASH_LABEL: h}}}
    assert ro.compute_hash(with_label) == h
    other = {**tmpl, "spec": {"containers": [{"name": "myblog", "image": "myblog:v2"}]}}
    assert ro.compute_hash(other) != h
    assert ro.compute_hash(tmpl, 1) != h


def test_safe_encode_maps_digits_like_apimachinery():
    # '0'..'9' are bytes 48..57 -> alphabet[21..26] then [0..3]
    assert ro.safe_encode("0123456789") == "456789bcdf"
    assert ro.fnv32a(b"") == 0x811C9DC5
    assert ro.fnv32a(b"a") == 0xE40C292C


# ---- history and rollback --------------------------------------------------------------------------------
def test_rollback_picks_previous_revision_and_restores_annotations():
    d = {"metadata": {"name": "ublog", "uid": "d-uid",
                      "annotations": {ro.REVISION: "2", ro.CHANGE_CAUSE: "set image"}},
         "spec": {"template": {"metadata": {"labels": {"app": "v2"}}}}}
    r1 = rs("ublog-a", 0, rev=1)
    r1["metadata"]["annotations"][ro.CHANGE_CAUSE] = "create"
    r1["spec"]["template"]["metadata"]["labels"] = {"app": "v1", ro.HASH_LABEL: "abc"}
    r2 = rs("ublog-b", 3, rev=2)
    r2["spec"]["template"]["metadata"]["labels"] = {"app": "v2", ro.HASH_LABEL: "def"}
    new, msg = ro.rollback_deployment(d, [r1, r2])
    assert msg == "rolled back"
    assert new["spec"]["template"]["metadata"]["labels"] == {"app": "v1"}
    assert new["metadata"]["annotations"] == {ro.REVISION: "2", ro.CHANGE_CAUSE: "create"}
    assert ro.rollback_deployment(d, [r1, r2], 2) == \
        (None, "skipped rollback (current template already matches revision 2)")
    assert ro.rollback_template(d, [r2], 0) == \
        (None, 'no rollout history found for deployment "ublog"')


def test_rollout_status_messages():
    d = {"metadata": {"name": "ublog", "generation": 2}, "spec": {"replicas": 3},
         "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                    "availableReplicas": 3}}
    assert ro.rollout_status(d) == ('Waiting for deployment "ublog" rollout to finish: 1 out '
                                    "of 3 new replicas have been updated...\n", False)
    d["status"].update(updatedReplicas=3)
    assert ro.rollout_status(d)[0] == ('Waiting for deployment "ublog" rollout to finish: 1 '
                                       "old replicas are pending termination...\n")
    d["status"].update(replicas=3, availableReplicas=2)
    assert ro.rollout_status(d)[0] == ('Waiting for deployment "ublog" rollout to finish: 2 of '
                                       "3 updated replicas are available...\n")
    d["status"].update(availableReplicas=3)
    assert ro.rollout_status(d) == ('deployment "ublog" successfully rolled out\n', True)
