"""The Deployment controller: rolls ReplicaSets the way kube-controller-manager does.

One sync per key, in upstream's order: claim ReplicaSets, note pause/resume, then either a
scaling event (proportional scaling, also while paused) or a rollout step — RollingUpdate
(scale the new RS up if the surge allows, else the old ones down if availability allows,
clean up history once complete) or Recreate (old to 0, wait until their pods are gone, then
new to full size). Sizing lives in netsim.controllers.rollout (pure, unit-tested).
"""

from __future__ import annotations

import copy

from netsim.api import errors, events
from netsim.api.timeutil import format_rfc3339
from netsim.controllers import rollout as ro
from netsim.controllers.base import split_key
from netsim.controllers.replicaset import (
    OwnerController,
    claim,
    controller_ref,
    owner_ref,
    parse_time,
)
from netsim.machinery import clone

COMPONENT = "deployment-controller"
_STATUS_INTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                "unavailableReplicas")


def _annotations(obj: dict) -> dict:
    return obj.setdefault("metadata", {}).setdefault("annotations", {}) or {}


def normalize_status(status: dict) -> dict:
    """Zero counts are omitted (omitempty), as the API returns them."""
    out = {k: v for k, v in status.items() if not (k in _STATUS_INTS and not v)}
    if not out.get("conditions"):
        out.pop("conditions", None)
    return out


def set_new_rs_annotations(deploy: dict, rs: dict, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy the Deployment's annotations, bump the revision
    (remembering the old one in revision-history on rollback), set desired/max replicas."""
    changed = False
    ann = rs.setdefault("metadata", {}).get("annotations")
    if ann is None:
        ann = rs["metadata"]["annotations"] = {}
    for k, v in ((deploy.get("metadata") or {}).get("annotations") or {}).items():
        if k in ro.SKIP_ANNOTATIONS or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    old = ann.get(ro.REVISION)
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return changed
    if old_int < new_revision:
        ann[ro.REVISION] = str(new_revision)
        changed = True
        if old:
            hist = ann.get(ro.REVISION_HISTORY, "")
            parts = [p for p in hist.split(",") if p] + [old]
            while len(",".join(parts)) > ro.MAX_REV_HISTORY_CHARS and len(parts) > 1:
                parts.pop(0)
            ann[ro.REVISION_HISTORY] = ",".join(parts)
    if not exists and set_replicas_annotations(rs, ro.replicas(deploy),
                                               ro.replicas(deploy) + ro.max_surge(deploy)):
        changed = True
    return changed


def set_replicas_annotations(rs: dict, desired: int, max_replicas: int) -> bool:
    ann = rs.setdefault("metadata", {}).get("annotations")
    if ann is None:
        ann = rs["metadata"]["annotations"] = {}
    changed = False
    for k, v in ((ro.DESIRED_REPLICAS, str(desired)), (ro.MAX_REPLICAS, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


class DeploymentController(OwnerController):
    """Reconciles one Deployment per key `namespace/name`."""

    name = COMPONENT
    kind = "Deployment"
    watches = ("deployments", "replicasets", "pods")

    # -- keys -----------------------------------------------------------------------------
    def keys_for(self, resource: str, obj: dict) -> list[str]:
        if resource != "pods":
            return super().keys_for(resource, obj)
        # A pod's Deployment is its ReplicaSet's. Only a Recreate rollout reads pods (it
        # waits until the old ones are gone), as upstream's deletePod; the rest of a sync
        # reads the ReplicaSets, whose status changes queue it anyway. A RollingUpdate
        # Deployment synced on every pod change did ~2 syncs per pod for nothing.
        ns = (obj.get("metadata") or {}).get("namespace") or "default"
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.cache("replicasets").get_by_name(ref["name"], ns)
        if rs is None:
            return []
        keys = []
        for key in self.owner_keys(rs):
            d = self.cache("deployments").get_by_name(split_key(key)[1], ns)
            strategy = ((d or {}).get("spec") or {}).get("strategy")
            if d is None or (isinstance(strategy, dict) and strategy.get("type") == "Recreate"):
                keys.append(key)
        return keys

    # -- helpers --------------------------------------------------------------------------
    def now(self) -> str:
        return format_rfc3339(self.clock())

    def _event(self, d: dict, message: str, etype: str = "Normal",
               reason: str = "ScalingReplicaSet") -> None:
        events.record(self.client, d, etype, reason, message, COMPONENT)

    def _write_status(self, d: dict, status: dict) -> None:
        status = normalize_status(status)
        if status == (d.get("status") or {}):
            return
        md = d["metadata"]
        self.client.update_status({"apiVersion": "apps/v1", "kind": "Deployment",
                                   "metadata": {"name": md["name"],
                                                "namespace": md.get("namespace")},
                                   "status": status})
        d["status"] = status

    def _set_revision(self, d: dict, rev: str) -> None:
        """SetDeploymentRevision, written straight away (the annotation lives in metadata)."""
        if _annotations(d).get(ro.REVISION) == rev:
            return
        md = d["metadata"]
        out = self.client.patch("deployments", md["name"], md.get("namespace"),
                                {"metadata": {"annotations": {ro.REVISION: rev}}})
        _annotations(d)[ro.REVISION] = rev
        md["resourceVersion"] = out["metadata"]["resourceVersion"]

    def claim_replicasets(self, d: dict) -> list[dict]:
        """ReplicaSetControllerRefManager.ClaimReplicaSets (private copies: a sync
        changes them as it goes)."""
        ns = d["metadata"].get("namespace") or "default"
        return [clone(rs) for rs in claim(self.client, d, "replicasets",
                                          self.lister("replicasets").list(ns))]

    # -- new / old ReplicaSets --------------------------------------------------------------
    def get_all_rss(self, d: dict, rs_list: list[dict],
                    create: bool) -> tuple[dict | None, list[dict]]:
        """getAllReplicaSetsAndSyncRevision: (new RS or None, old RSs)."""
        tmpl = (d.get("spec") or {}).get("template") or {}
        new_rs = None
        for rs in sorted(rs_list, key=ro.creation_key):
            if ro.equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, tmpl):
                new_rs = rs
                break
        old_rss = [rs for rs in rs_list if rs is not new_rs]
        new_revision = ro.max_revision(old_rss) + 1
        status = copy.deepcopy(d.get("status") or {})
        if new_rs is not None:
            rs = copy.deepcopy(new_rs)
            changed = set_new_rs_annotations(d, rs, new_revision, exists=True)
            mrs = (d.get("spec") or {}).get("minReadySeconds", 0) or 0
            if changed or ((rs.get("spec") or {}).get("minReadySeconds", 0) or 0) != mrs:
                rs["spec"]["minReadySeconds"] = mrs
                rs = self.client.update(rs)
                # Later passes of this sync read the same list: keep it current.
                rs_list[:] = [rs if r is new_rs else r for r in rs_list]
            self._set_revision(d, (rs["metadata"].get("annotations") or {}).get(
                ro.REVISION, str(new_revision)))
            if self._has_deadline(d) and ro.get_condition(status, "Progressing") is None:
                ro.set_condition(status, ro.new_condition(
                    "Progressing", "True", ro.REASON_FOUND_NEW_RS,
                    f'Found new replica set "{rs["metadata"]["name"]}"', self.now()))
                self._write_status(d, status)
            return rs, old_rss
        if not create:
            return None, old_rss
        md = d["metadata"]
        h = ro.compute_hash(tmpl, status.get("collisionCount"))
        new_tmpl = copy.deepcopy(tmpl)
        new_tmpl.setdefault("metadata", {})
        new_tmpl["metadata"]["labels"] = {**(new_tmpl["metadata"].get("labels") or {}),
                                          ro.HASH_LABEL: h}
        sel = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        sel["matchLabels"] = {**(sel.get("matchLabels") or {}), ro.HASH_LABEL: h}
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{md['name']}-{h}", "namespace": md.get("namespace"),
                           "labels": dict(new_tmpl["metadata"]["labels"]),
                           "ownerReferences": [owner_ref(d)]},
              "spec": {"replicas": 0,
                       "minReadySeconds": (d.get("spec") or {}).get("minReadySeconds", 0) or 0,
                       "selector": sel, "template": new_tmpl}}
        count = ro.new_rs_new_replicas(d, old_rss + [rs], rs)
        rs["spec"]["replicas"] = count
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        already = False
        try:
            created = self.client.create(rs)
        except errors.AlreadyExists:
            already = True
            created = self.client.get_or_none("replicasets", rs["metadata"]["name"],
                                              md.get("namespace"))
            if created is None or (controller_ref(created) or {}).get("uid") != md["uid"] \
                    or not ro.equal_ignore_hash(created["spec"]["template"], tmpl):
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                self._write_status(d, status)
                return None, old_rss
        except errors.ApiError as e:
            msg = f'Failed to create new replica set "{rs["metadata"]["name"]}": {e.message}'
            if self._has_deadline(d):
                ro.set_condition(status, ro.new_condition(
                    "Progressing", "False", "ReplicaSetCreateError", msg, self.now()))
                self._write_status(d, status)
            self._event(d, msg, "Warning", "ReplicaSetCreateError")
            return None, old_rss
        if not already and count > 0:
            self._event(d, f"Scaled up replica set {created['metadata']['name']} to {count}")
        self._set_revision(d, str(new_revision))
        if not already and self._has_deadline(d):
            ro.set_condition(status, ro.new_condition(
                "Progressing", "True", ro.REASON_NEW_RS,
                f'Created new replica set "{created["metadata"]["name"]}"', self.now()))
            self._write_status(d, status)
        return created, old_rss

    @staticmethod
    def _has_deadline(d: dict) -> bool:
        pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
        return pds is not None and pds != 2147483647

    def scale_rs(self, d: dict, rs: dict, new_scale: int, op: str | None = None) -> dict:
        """scaleReplicaSet(AndRecordEvent): resize and keep desired/max-replicas current."""
        old = ro.replicas(rs)
        if op is None:
            op = "up" if old < new_scale else "down"
        rs2 = copy.deepcopy(rs)
        ann_changed = set_replicas_annotations(
            rs2, ro.replicas(d), ro.replicas(d) + ro.max_surge(d))
        if old == new_scale and not ann_changed:
            return rs
        rs2["spec"]["replicas"] = new_scale
        rs2 = self.client.update(rs2)
        if old != new_scale:
            self._event(d, f"Scaled {op} replica set {rs2['metadata']['name']} to {new_scale} "
                           f"from {old}")
        return rs2

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        d = self.lister("deployments").get_by_name(name, ns)
        if d is None:
            return None
        d = clone(d)  # cached objects are shared: a sync changes this one
        sel = (d.get("spec") or {}).get("selector") or {}
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        rs_list = self.claim_replicasets(d)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = self.get_all_rss(d, rs_list, create=False)
            self.sync_status(d, old_rss + ([new_rs] if new_rs else []), new_rs)
            return None
        self.check_paused_conditions(d)
        if (d.get("spec") or {}).get("paused") or self.is_scaling_event(d, rs_list):
            self.sync(d, rs_list)
            return self._requeue(d)
        if ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            self.rollout_recreate(d, rs_list)
        else:
            self.rollout_rolling(d, rs_list)
        return self._requeue(d)

    def check_paused_conditions(self, d: dict) -> None:
        if not self._has_deadline(d):
            return
        status = copy.deepcopy(d.get("status") or {})
        cond = ro.get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == ro.REASON_TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == ro.REASON_PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_cond:
            ro.set_condition(status, ro.new_condition("Progressing", "Unknown", ro.REASON_PAUSED,
                                                      "Deployment is paused", self.now()))
        elif not paused and paused_cond:
            ro.set_condition(status, ro.new_condition("Progressing", "Unknown",
                                                      ro.REASON_RESUMED,
                                                      "Deployment is resumed", self.now()))
        else:
            return
        self._write_status(d, status)

    def is_scaling_event(self, d: dict, rs_list: list[dict]) -> bool:
        new_rs, old_rss = self.get_all_rss(d, rs_list, create=False)
        for rs in old_rss + ([new_rs] if new_rs else []):
            if ro.replicas(rs) <= 0:
                continue
            desired = ((rs.get("metadata") or {}).get("annotations") or {}).get(
                ro.DESIRED_REPLICAS)
            if desired is None:
                continue
            try:
                if int(desired) != ro.replicas(d):
                    return True
            except ValueError:
                continue
        return False

    def sync(self, d: dict, rs_list: list[dict]) -> None:
        """Scaling events and paused Deployments: resize proportionally, no rollout."""
        new_rs, old_rss = self.get_all_rss(d, rs_list, create=False)
        sizes, op = ro.plan_proportional(d, new_rs, old_rss)
        one = ro.find_active_or_latest(new_rs, old_rss)
        updated: dict[str, dict] = {}
        active = [rs for rs in old_rss + ([new_rs] if new_rs else []) if ro.replicas(rs) > 0]
        if one is not None:
            # Also refreshes desired/max-replicas, so the scaling event is over afterwards.
            updated[one["metadata"]["name"]] = self.scale_rs(d, one, ro.replicas(d))
        elif ro.is_saturated(d, new_rs):
            for rs in active:
                if rs is not new_rs:
                    updated[rs["metadata"]["name"]] = self.scale_rs(d, rs, 0)
        else:
            for rs in active:
                n = rs["metadata"]["name"]
                updated[n] = self.scale_rs(d, rs, sizes.get(n, ro.replicas(rs)), op or "up")
        if new_rs is not None:
            new_rs = updated.get(new_rs["metadata"]["name"], new_rs)
        old_rss = [updated.get(rs["metadata"]["name"], rs) for rs in old_rss]
        if (d.get("spec") or {}).get("paused"):
            self.cleanup(d, old_rss)
        self.sync_status(d, old_rss + ([new_rs] if new_rs else []), new_rs)

    def rollout_rolling(self, d: dict, rs_list: list[dict]) -> None:
        new_rs, old_rss = self.get_all_rss(d, rs_list, create=True)
        if new_rs is None:
            return
        all_rss = old_rss + [new_rs]
        # Scale up, if we can.
        want = ro.replicas(d)
        target = ro.replicas(new_rs)
        if target > want:
            target = want
        elif target < want:
            target = ro.new_rs_new_replicas(d, all_rss, new_rs)
        if target != ro.replicas(new_rs):
            new_rs = self.scale_rs(d, new_rs, target)
            self.sync_rollout_status(d, old_rss + [new_rs], new_rs)
            return
        # Scale down, if we can.
        steps = ro.plan_scale_down(d, all_rss, old_rss, new_rs)
        if steps:
            by_name = {rs["metadata"]["name"]: rs for rs in old_rss}
            for n, size in steps:
                by_name[n] = self.scale_rs(d, by_name[n], size)
            old_rss = [by_name[rs["metadata"]["name"]] for rs in old_rss]
            self.sync_rollout_status(d, old_rss + [new_rs], new_rs)
            return
        if ro.deployment_complete(d, d.get("status") or {}):
            old_rss = self.cleanup(d, old_rss)
        self.sync_rollout_status(d, old_rss + [new_rs], new_rs)

    def rollout_recreate(self, d: dict, rs_list: list[dict]) -> None:
        new_rs, old_rss = self.get_all_rss(d, rs_list, create=False)
        scaled = False
        by_name = {rs["metadata"]["name"]: rs for rs in old_rss}
        for rs in old_rss:
            if ro.replicas(rs) > 0:
                by_name[rs["metadata"]["name"]] = self.scale_rs(d, rs, 0)
                scaled = True
        old_rss = [by_name[rs["metadata"]["name"]] for rs in old_rss]
        all_rss = old_rss + ([new_rs] if new_rs else [])
        if scaled or self.old_pods_running(d, new_rs, old_rss):
            self.sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = self.get_all_rss(d, rs_list, create=True)
            if new_rs is None:
                return
        new_rs = self.scale_rs(d, new_rs, ro.replicas(d))
        if ro.deployment_complete(d, d.get("status") or {}):
            old_rss = self.cleanup(d, old_rss)
        self.sync_rollout_status(d, old_rss + [new_rs], new_rs)

    def old_pods_running(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> bool:
        """Recreate waits until no pod of an old RS is left in a non-terminal phase."""
        if sum(ro.status_of(rs, "replicas") for rs in old_rss) > 0:
            return True
        old_uids = {rs["metadata"]["uid"] for rs in old_rss}
        for pod in self.lister("pods").list(d["metadata"].get("namespace") or "default"):
            if (controller_ref(pod) or {}).get("uid") not in old_uids:
                continue
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
        return False

    def cleanup(self, d: dict, old_rss: list[dict]) -> list[dict]:
        """cleanupDeployment: keep revisionHistoryLimit old RSs, delete older empty ones."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return old_rss
        alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return old_rss
        gone = set()
        for rs in sorted(alive, key=lambda r: (ro.revision(r), ro.creation_key(r)))[:diff]:
            st = rs.get("status") or {}
            if st.get("replicas", 0) != 0 or ro.replicas(rs) != 0 \
                    or rs["metadata"].get("generation", 1) > st.get("observedGeneration", 0):
                continue
            try:
                self.client.delete("replicasets", rs["metadata"]["name"],
                                   rs["metadata"].get("namespace"))
            except errors.NotFound:
                pass
            gone.add(rs["metadata"]["name"])
        return [rs for rs in old_rss if rs["metadata"]["name"] not in gone]

    # -- status -----------------------------------------------------------------------------
    def sync_status(self, d: dict, all_rss: list[dict], new_rs: dict | None) -> None:
        self._write_status(d, ro.calculate_status(d, all_rss, new_rs, self.now()))

    def sync_rollout_status(self, d: dict, all_rss: list[dict], new_rs: dict | None) -> None:
        """syncRolloutStatus: counts plus the Progressing condition."""
        now = self.now()
        status = ro.calculate_status(d, all_rss, new_rs, now)
        if not self._has_deadline(d):
            ro.remove_condition(status, "Progressing")
        cur = ro.get_condition(d.get("status") or {}, "Progressing")
        complete_rollout = status.get("replicas") == status.get("updatedReplicas") and \
            cur is not None and cur.get("reason") == ro.REASON_NEW_RS_AVAILABLE
        if self._has_deadline(d) and not complete_rollout:
            rs_name = new_rs["metadata"]["name"] if new_rs else None
            dname = d["metadata"]["name"]
            if ro.deployment_complete(d, status):
                msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name \
                    else f'Deployment "{dname}" has successfully progressed.'
                ro.set_condition(status, ro.new_condition(
                    "Progressing", "True", ro.REASON_NEW_RS_AVAILABLE, msg, now))
            elif ro.deployment_progressing(d, status):
                msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name \
                    else f'Deployment "{dname}" is progressing.'
                cond = ro.new_condition("Progressing", "True", ro.REASON_RS_UPDATED, msg, now)
                if cur is not None:
                    if cur.get("status") == "True":
                        cond["lastTransitionTime"] = cur.get("lastTransitionTime", now)
                    ro.remove_condition(status, "Progressing")
                status.setdefault("conditions", []).append(cond)
            elif self._timed_out(d, status):
                msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name \
                    else f'Deployment "{dname}" has timed out progressing.'
                ro.set_condition(status, ro.new_condition(
                    "Progressing", "False", ro.REASON_TIMED_OUT, msg, now))
        failure = self._replica_failure(all_rss, new_rs)
        if failure is not None:
            ro.set_condition(status, failure)
        else:
            ro.remove_condition(status, "ReplicaFailure")
        self._write_status(d, status)

    def _timed_out(self, d: dict, status: dict) -> bool:
        cond = ro.get_condition(status, "Progressing")
        if cond is None or cond.get("reason") == ro.REASON_NEW_RS_AVAILABLE:
            return False
        if cond.get("reason") == ro.REASON_TIMED_OUT:
            return True
        since = parse_time(cond.get("lastUpdateTime"))
        pds = (d.get("spec") or {}).get("progressDeadlineSeconds") or 0
        return since is not None and since + pds < self.clock()

    @staticmethod
    def _replica_failure(all_rss: list[dict], new_rs: dict | None) -> dict | None:
        order = ([new_rs] if new_rs else []) + [rs for rs in all_rss if rs is not new_rs]
        for rs in order:
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
                    return {"type": "ReplicaFailure", "status": "True",
                            "lastUpdateTime": c.get("lastTransitionTime"),
                            "lastTransitionTime": c.get("lastTransitionTime"),
                            "reason": c.get("reason"), "message": c.get("message")}
        return None

    def _requeue(self, d: dict) -> float | None:
        """requeueStuckDeployment: look again when the progress deadline would pass."""
        st = d.get("status") or {}
        cond = ro.get_condition(st, "Progressing")
        if not self._has_deadline(d) or cond is None or ro.deployment_complete(d, st) \
                or cond.get("reason") in (ro.REASON_TIMED_OUT, ro.REASON_NEW_RS_AVAILABLE) \
                or cond.get("status") != "True":
            return None
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return None
        left = since + d["spec"]["progressDeadlineSeconds"] - self.clock()
        return max(1.0, left + 1.0)
