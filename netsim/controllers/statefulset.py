"""The StatefulSet controller: pods with stable names, in order, as kube-controller-manager's.

Pods are `<set>-<ordinal>` for ordinals start..start+replicas-1 (spec.ordinals.start, 0 by
default), with hostname = the pod's name and subdomain = spec.serviceName (so a headless
Service of that name gives `web-0.nginx.<ns>.svc.cluster.local`), and the labels
`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
`controller-revision-hash` (the revision's name). OrderedReady creates a pod only once every
lower one is Running and Ready and removes condemned pods from the highest ordinal, one at
a time; Parallel does both at once. A pod that is deleted or fails comes back with its name.
RollingUpdate replaces pods from the highest ordinal down to `partition`, one at a time,
waiting for each to be Ready; OnDelete only uses the new template for pods it recreates.
volumeClaimTemplates: each pod gets a persistentVolumeClaim volume
`<template>-<set>-<ordinal>`, and that claim is created before the pod (the template's
labels plus the selector's matchLabels; event `create Claim www-web-0 Pod web-0 in
StatefulSet web success`). persistentVolumeClaimRetentionPolicy: Retain (the default) leaves
claims without owners, so they outlive scale-down and the StatefulSet; whenDeleted: Delete
makes the set their owner, whenScaled: Delete a condemned pod (the garbage collector then
removes them).
"""

from __future__ import annotations

import contextlib
import copy
import re

from netsim.api import errors, events
from netsim.controllers import history
from netsim.controllers.base import split_key, write_apps_status
from netsim.controllers.fields import obj_at
from netsim.controllers.replicaset import (
    OwnerController,
    claim,
    is_available,
    is_ready,
    owner_ref,
    ready_since,
)
from netsim.machinery import clone

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(set_name: str, pod: dict) -> int | None:
    """getParentNameAndOrdinal: `<set>-<n>` -> n, None for any other name."""
    m = re.fullmatch(r"(.*)-([0-9]+)", pod["metadata"]["name"])
    if not m or m.group(1) != set_name:
        return None
    return int(m.group(2))


def is_terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


def is_failed(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def pod_revision(pod: dict) -> str:
    return obj_at(pod, "metadata", "labels").get(history.POD_HASH_LABEL, "")


def _start(sts: dict) -> int:
    return int(obj_at(sts, "spec", "ordinals").get("start") or 0)


def _replicas(sts: dict) -> int:
    r = obj_at(sts, "spec").get("replicas")
    return 1 if r is None else int(r)


def new_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """newStatefulSetPod + setPodRevision: identity, storage and revision label."""
    md = sts["metadata"]
    name = f"{md['name']}-{ordinal}"
    tmd = template.get("metadata") or {}
    labels = dict(tmd.get("labels") or {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[history.POD_HASH_LABEL] = revision
    meta = {"name": name, "namespace": md.get("namespace", "default"), "labels": labels,
            "ownerReferences": [owner_ref(sts)]}
    if tmd.get("annotations"):
        meta["annotations"] = dict(tmd["annotations"])
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    svc = obj_at(sts, "spec").get("serviceName")
    if svc:
        spec["subdomain"] = svc
    vols = [v for v in spec.get("volumes") or []]
    for claim_t in obj_at(sts, "spec").get("volumeClaimTemplates") or []:
        cname = (claim_t.get("metadata") or {}).get("name")
        if not cname:
            continue
        vols = [v for v in vols if v.get("name") != cname]
        vols.append({"name": cname, "persistentVolumeClaim": {
            "claimName": f"{cname}-{md['name']}-{ordinal}"}})
    if vols:
        spec["volumes"] = vols
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class StatefulSetController(OwnerController):
    """Reconciles one StatefulSet per key `namespace/name`."""

    name = COMPONENT
    kind = "StatefulSet"
    watches = ("statefulsets", "pods", "controllerrevisions")

    def _event(self, sts: dict, etype: str, reason: str, message: str) -> None:
        events.record(self.client, sts, etype, reason, message, COMPONENT)

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        sts = self.lister("statefulsets").get_by_name(name, ns)
        if sts is None:
            return None
        sts = clone(sts)
        sel = obj_at(sts, "spec", "selector")
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            return None
        # ClaimPods with isMemberOf as filter: a matching pod of another name is never adopted
        pods = claim(self.client, sts, "pods", [p for p in self.lister("pods").list(ns)
                                                if ordinal_of(name, p) is not None])
        update_rev, revs = history.sync_revision(
            self.client, sts, self.lister("controllerrevisions").list(ns))
        cur_name = (sts.get("status") or {}).get("currentRevision")
        current_rev = next((r for r in revs if r["metadata"]["name"] == cur_name), update_rev)
        if not sts["metadata"].get("deletionTimestamp"):
            self.update_pods(sts, pods, current_rev, update_rev)
            pods = [p for p in self._owned(sts, self.lister("pods").list(ns))
                    if ordinal_of(name, p) is not None]
        status = self.compute_status(sts, pods, current_rev, update_rev)
        live = {pod_revision(p) for p in pods}
        history.truncate(self.client, sts, revs, live,
                         {current_rev["metadata"]["name"], update_rev["metadata"]["name"]})
        if not write_apps_status(self.client, sts, "StatefulSet", status):
            return None
        return self._min_ready_wait(sts, pods)

    def _owned(self, sts: dict, pods: list[dict]) -> list[dict]:
        uid = sts["metadata"]["uid"]
        return [p for p in pods
                if any(r.get("uid") == uid and r.get("controller")
                       for r in (p.get("metadata") or {}).get("ownerReferences") or [])]

    def _min_ready_wait(self, sts: dict, pods: list[dict]) -> float | None:
        mrs = int(obj_at(sts, "spec").get("minReadySeconds") or 0)
        if not mrs:
            return None
        now = self.clock()
        waits = [s + mrs - now for p in pods if (s := ready_since(p)) is not None
                 and s + mrs > now]
        return max(0.1, min(waits)) if waits else None

    # -- pods -------------------------------------------------------------------------------
    def _healthy(self, sts: dict, pod: dict) -> bool:
        """isRunningAndAvailable (minReadySeconds) and not terminating."""
        mrs = int(obj_at(sts, "spec").get("minReadySeconds") or 0)
        return is_running_and_ready(pod) and not is_terminating(pod) and \
            is_available(pod, mrs, self.clock())

    def _claims(self, sts: dict, pod: dict) -> list[dict]:
        """getPersistentVolumeClaims: one claim per template, for this pod's ordinal."""
        setname = sts["metadata"]["name"]
        ordinal = ordinal_of(setname, pod)
        match = obj_at(sts, "spec", "selector").get("matchLabels") or {}
        policy = obj_at(sts, "spec", "persistentVolumeClaimRetentionPolicy")
        out = []
        for t in obj_at(sts, "spec").get("volumeClaimTemplates") or []:
            tmd = t.get("metadata") or {}
            if not tmd.get("name"):
                continue
            md = {"name": f"{tmd['name']}-{setname}-{ordinal}",
                  "namespace": sts["metadata"].get("namespace", "default"),
                  "labels": {**(tmd.get("labels") or {}), **match}}
            if tmd.get("annotations"):
                md["annotations"] = dict(tmd["annotations"])
            if policy.get("whenDeleted") == "Delete":
                md["ownerReferences"] = [owner_ref(sts)]
            out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
                        "spec": copy.deepcopy(t.get("spec") or {})})
        return out

    def _create_claims(self, sts: dict, pod: dict) -> bool:
        """createPersistentVolumeClaims: False (no pod yet) when one cannot be made."""
        setname, pname = sts["metadata"]["name"], pod["metadata"]["name"]
        for c in self._claims(sts, pod):
            cname, ns = c["metadata"]["name"], c["metadata"]["namespace"]
            have = self.client.get_or_none("persistentvolumeclaims", cname, ns)
            if have is not None:
                if have["metadata"].get("deletionTimestamp"):
                    self._event(sts, "Warning", "FailedCreate",
                                f"create Pod {pname} in StatefulSet {setname} failed error: "
                                f"pvc {cname} is being deleted")
                    return False
                continue
            try:
                self.client.create(c)
            except errors.AlreadyExists:
                continue
            except errors.ApiError as e:
                self._event(sts, "Warning", "FailedCreate",
                            f"create Claim {cname} for Pod {pname} in StatefulSet {setname} "
                            f"failed error: {e.message}")
                return False
            self._event(sts, "Normal", "SuccessfulCreate",
                        f"create Claim {cname} Pod {pname} in StatefulSet {setname} success")
        return True

    def _create(self, sts: dict, pod: dict) -> bool:
        pname = pod["metadata"]["name"]
        setname = sts["metadata"]["name"]
        if not self._create_claims(sts, pod):
            return False
        try:
            self.client.create(pod)
        except errors.AlreadyExists:
            return False
        except errors.ApiError as e:
            self._event(sts, "Warning", "FailedCreate",
                        f"create Pod {pname} in StatefulSet {setname} failed error: {e.message}")
            return False
        self._event(sts, "Normal", "SuccessfulCreate",
                    f"create Pod {pname} in StatefulSet {setname} successful")
        return True

    def _delete(self, sts: dict, pod: dict, condemned: bool = False) -> None:
        pname = pod["metadata"]["name"]
        setname = sts["metadata"]["name"]
        policy = obj_at(sts, "spec", "persistentVolumeClaimRetentionPolicy")
        if condemned and policy.get("whenScaled") == "Delete":
            self._claims_owned_by(pod, sts)
        try:
            self.client.delete("pods", pname, pod["metadata"].get("namespace"))
        except errors.NotFound:
            return
        self._event(sts, "Normal", "SuccessfulDelete",
                    f"delete Pod {pname} in StatefulSet {setname} successful")

    def update_pods(self, sts: dict, pods: list[dict], current_rev: dict,
                    update_rev: dict) -> None:
        """updateStatefulSet: replicas in order, then condemned from the top, then the
        rolling update; OrderedReady stops at the first pod it has to wait for."""
        setname = sts["metadata"]["name"]
        spec = obj_at(sts, "spec")
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        start, n = _start(sts), _replicas(sts)
        by_ord = {ordinal_of(setname, p): p for p in pods}
        slots = list(range(start, start + n))
        condemned = sorted(o for o in by_ord if o not in slots)
        strategy = obj_at(spec, "updateStrategy")
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int(obj_at(strategy, "rollingUpdate").get("partition") or 0)
        cur_status = int((sts.get("status") or {}).get("currentReplicas") or 0)
        current_tmpl = history.template_of(current_rev)
        update_tmpl = obj_at(sts, "spec", "template")
        # firstUnhealthyPod: the lowest ordinal not healthy, among replicas then condemned
        first_unhealthy = next((by_ord[o] for o in slots + condemned
                                if o in by_ord and not self._healthy(sts, by_ord[o])), None)

        for o in slots:
            pod = by_ord.get(o)
            if pod is not None and is_failed(pod) and not is_terminating(pod):
                self._delete(sts, pod)
                if monotonic:
                    return
                continue
            if pod is None:
                idx = o - start
                use_current = rolling and idx < partition if strategy.get("rollingUpdate") \
                    else rolling and idx < cur_status
                if use_current and current_rev is not update_rev:
                    new = new_pod(sts, current_tmpl, o, current_rev["metadata"]["name"])
                else:
                    new = new_pod(sts, update_tmpl, o, update_rev["metadata"]["name"])
                self._create(sts, new)
                if monotonic:
                    return
                continue
            if is_terminating(pod):
                if monotonic:
                    return
                continue
            if not self._healthy(sts, pod) and monotonic:
                return
            self._fix_identity(sts, pod)

        for o in reversed(condemned):
            pod = by_ord[o]
            if is_terminating(pod):
                if monotonic:
                    return
                continue
            if monotonic and not self._healthy(sts, pod) and pod is not first_unhealthy:
                return
            self._delete(sts, pod, condemned=True)
            if monotonic:
                return

        if not rolling:
            return
        want = update_rev["metadata"]["name"]
        for o in reversed(slots):
            if o - start < partition:
                break
            pod = by_ord.get(o)
            if pod is None:
                return
            if pod_revision(pod) != want and not is_terminating(pod):
                self._delete(sts, pod)
                return
            if not self._healthy(sts, pod):
                return

    def _claims_owned_by(self, pod: dict, sts: dict) -> None:
        """whenScaled: Delete: the condemned pod owns its claims, which go with it."""
        ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
               "uid": pod["metadata"].get("uid")}
        for c in self._claims(sts, pod):
            have = self.client.get_or_none("persistentvolumeclaims", c["metadata"]["name"],
                                           c["metadata"]["namespace"])
            if have is None:
                continue
            refs = have["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == ref["uid"] for r in refs):
                continue
            have["metadata"]["ownerReferences"] = refs + [ref]
            with contextlib.suppress(errors.ApiError):
                self.client.update(have)

    def _fix_identity(self, sts: dict, pod: dict) -> None:
        """updateIdentity: the pod-name and pod-index labels (hostname is immutable)."""
        name = pod["metadata"]["name"]
        labels = obj_at(pod, "metadata", "labels")
        want = {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal_of(
            sts["metadata"]["name"], pod))}
        if all(labels.get(k) == v for k, v in want.items()):
            return
        try:
            self.client.patch("pods", name, pod["metadata"].get("namespace"),
                              {"metadata": {"labels": want}})
        except errors.NotFound:
            pass

    # -- status -------------------------------------------------------------------------------
    def compute_status(self, sts: dict, pods: list[dict], current_rev: dict,
                       update_rev: dict) -> dict:
        """computeReplicaStatus + completeRollingUpdate."""
        mrs = int(obj_at(sts, "spec").get("minReadySeconds") or 0)
        now = self.clock()
        cur, upd = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        replicas = ready = available = current = updated = 0
        for p in pods:
            replicas += 1
            if is_running_and_ready(p):
                ready += 1
                available += is_available(p, mrs, now)
            if not is_terminating(p):
                current += pod_revision(p) == cur
                updated += pod_revision(p) == upd
        status: dict = {"observedGeneration": sts["metadata"].get("generation", 1),
                        "replicas": replicas}
        rolling = obj_at(sts, "spec", "updateStrategy").get("type",
                                                             "RollingUpdate") == "RollingUpdate"
        if rolling and updated == replicas and ready == replicas:
            current, cur = updated, upd
        for k, v in (("readyReplicas", ready), ("currentReplicas", current),
                     ("updatedReplicas", updated)):
            if v:
                status[k] = v
        status["currentRevision"] = cur
        status["updateRevision"] = upd
        status["collisionCount"] = int((sts.get("status") or {}).get("collisionCount") or 0)
        status["availableReplicas"] = available
        return status
