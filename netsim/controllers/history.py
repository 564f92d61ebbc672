"""ControllerRevisions: the template history of DaemonSets and StatefulSets.

As upstream's `pkg/controller/history` and the two controllers' `constructHistory`: a
revision holds the patch `{"spec": {"template": {..., "$patch": "replace"}}}`, is named
`<owner>-<hash>` (the hash of that data, plus collisionCount), is labelled with the
template's labels and `controller.kubernetes.io/hash`, and is owned by its DaemonSet or
StatefulSet (controller reference). The revision for the current template is re-used when
one exists (and renumbered to max+1 if it is not the newest); old ones beyond
revisionHistoryLimit are deleted unless a live pod still runs them.
"""

from __future__ import annotations

import copy
import json

from netsim.api import errors
from netsim.api.client import Client
from netsim.controllers import rollout as ro
from netsim.controllers.replicaset import controller_ref, owner_ref

HASH_LABEL = "controller.kubernetes.io/hash"
POD_HASH_LABEL = "controller-revision-hash"


def revision_data(template: dict) -> dict:
    """getPatch: the template, replacing the owner's on apply."""
    tmpl = copy.deepcopy(template or {})
    tmpl["$patch"] = "replace"
    return {"spec": {"template": tmpl}}


def template_of(rev: dict) -> dict:
    """The pod template a revision holds (its patch applied to an owner)."""
    tmpl = copy.deepcopy(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    tmpl.pop("$patch", None)
    return tmpl


def hash_data(data: dict, collision_count: int | None = None) -> str:
    """HashControllerRevision: fnv32a of the data (+ collisionCount), safe-encoded."""
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        raw += int(collision_count).to_bytes(4, "little")
    return ro.safe_encode(str(ro.fnv32a(raw)))


def number(rev: dict) -> int:
    try:
        return int(rev.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def owned(owner: dict, revisions: list[dict]) -> list[dict]:
    """The revisions `owner` controls, oldest number first."""
    uid = owner["metadata"]["uid"]
    mine = [r for r in revisions if (controller_ref(r) or {}).get("uid") == uid]
    return sorted(mine, key=lambda r: (number(r), r["metadata"]["name"]))


def same_template(rev: dict, template: dict) -> bool:
    return (rev.get("data") or {}) == revision_data(template)


def new_revision(owner: dict, template: dict, rev_number: int,
                 collision_count: int | None) -> dict:
    md = owner["metadata"]
    data = revision_data(template)
    h = hash_data(data, collision_count)
    labels = dict(((template or {}).get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = h
    out = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
           "metadata": {"name": f"{md['name'][:223]}-{h}", "namespace": md.get("namespace"),
                        "labels": labels, "ownerReferences": [owner_ref(owner)]},
           "data": data, "revision": rev_number}
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k != ro.LAST_APPLIED}
    if ann:  # both controllers snapshot the owner's annotations (the change-cause)
        out["metadata"]["annotations"] = ann
    return out


def sync_revision(client: Client, owner: dict, revisions: list[dict]) -> tuple[dict, list[dict]]:
    """(the revision of owner's current template, every revision it owns afterwards).

    Re-uses an equal revision (renumbered to max+1 unless it is already the newest),
    else creates one; a name taken by a different revision bumps status.collisionCount
    (written back) and tries the next hash, as upstream."""
    template = (owner.get("spec") or {}).get("template") or {}
    revs = owned(owner, revisions)
    top = max((number(r) for r in revs), default=0)
    equal = [r for r in revs if same_template(r, template)]
    if equal:
        cur = equal[-1]
        if number(cur) < top:
            cur = copy.deepcopy(cur)
            cur["revision"] = top + 1
            cur = client.update(cur)
            revs = [cur if r["metadata"]["name"] == cur["metadata"]["name"] else r
                    for r in revs]
        return cur, owned(owner, revs)
    status = owner.setdefault("status", {})
    for _ in range(5):
        cc = status.get("collisionCount")
        rev = new_revision(owner, template, top + 1, cc)
        try:
            created = client.create(rev)
            return created, owned(owner, revs + [created])
        except errors.AlreadyExists:
            got = client.get_or_none("controllerrevisions", rev["metadata"]["name"],
                                     rev["metadata"]["namespace"])
            if got is not None and same_template(got, template) and \
                    (controller_ref(got) or {}).get("uid") == owner["metadata"]["uid"]:
                return got, owned(owner, revs + [got])
            status["collisionCount"] = int(cc or 0) + 1
    raise errors.Conflict(f"no free revision name for {owner['metadata']['name']}")


def truncate(client: Client, owner: dict, revisions: list[dict], live: set[str],
             keep: set[str]) -> None:
    """truncateHistory: delete the oldest revisions beyond revisionHistoryLimit (default 10)
    that no live pod runs (`live`: revision names) and that are not current (`keep`)."""
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    limit = 10 if limit is None else int(limit)
    old = [r for r in owned(owner, revisions)
           if r["metadata"]["name"] not in live and r["metadata"]["name"] not in keep]
    for r in old[:max(0, len(old) - limit)]:
        try:
            client.delete("controllerrevisions", r["metadata"]["name"],
                          r["metadata"].get("namespace"))
        except errors.NotFound:
            pass


# ---- kubectl's rollout verbs over revisions (polymorphichelpers, history.go / rollback.go) --
def history_rows(revisions: list[dict]) -> list[tuple[int, str]]:
    """REVISION / CHANGE-CAUSE rows (the cause is the revision's own annotation)."""
    rows = []
    for r in sorted(revisions, key=number):
        cause = ((r.get("metadata") or {}).get("annotations") or {}).get(ro.CHANGE_CAUSE, "")
        rows.append((number(r), cause or "<none>"))
    return rows


def rollback(owner: dict, revisions: list[dict], to_revision: int) -> tuple[dict | None, str]:
    """(the owner with the revision's template, or None; kubectl's message).

    to_revision 0 is the one before the newest, as kubectl's DaemonSet/StatefulSet
    rollbacker picks it."""
    revs = sorted(owned(owner, revisions), key=number)
    if to_revision == 0:
        if len(revs) < 2:
            return None, "no last revision to roll back to"
        target = revs[-2]
    else:
        target = next((r for r in revs if number(r) == to_revision), None)
        if target is None:
            return None, f"unable to find specified revision {to_revision} in history"
    template = template_of(target)
    if same_template(target, (owner.get("spec") or {}).get("template") or {}):
        return None, f"skipped rollback (current template already matches revision " \
                     f"{number(target)})"
    new = copy.deepcopy(owner)
    new["spec"]["template"] = template
    return new, "rolled back"


def daemonset_status(ds: dict) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer: (message, done); ValueError for OnDelete."""
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        raise ValueError("rollout status is only available for RollingUpdate strategy type")
    name = ds["metadata"]["name"]
    if ds["metadata"].get("generation", 1) > st.get("observedGeneration", 0):
        return "Waiting for daemon set spec update to be observed...\n", False
    desired = st.get("desiredNumberScheduled", 0)
    updated, avail = st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0)
    if updated < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {updated} out of '
                f"{desired} new pods have been updated...\n"), False
    if avail < desired:
        return (f'Waiting for daemon set "{name}" rollout to finish: {avail} of {desired} '
                "updated pods are available...\n"), False
    return f'daemon set "{name}" successfully rolled out\n', True


def statefulset_status(sts: dict) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer: (message, done); ValueError for OnDelete."""
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        raise ValueError("rollout status is only available for RollingUpdate strategy type")
    observed = st.get("observedGeneration", 0)
    if not observed or sts["metadata"].get("generation", 1) > observed:
        return "Waiting for statefulset spec update to be observed...\n", False
    want = spec.get("replicas")
    ready, updated = st.get("readyReplicas", 0), st.get("updatedReplicas", 0)
    if want is not None and ready < want:
        return f"Waiting for {want - ready} pods to be ready...\n", False
    ru = strategy.get("rollingUpdate")
    if ru is not None:
        partition = ru.get("partition")
        if want is not None and partition is not None and updated < want - partition:
            return (f"Waiting for partitioned roll out to finish: {updated} out of "
                    f"{want - partition} new pods have been updated...\n"), False
        return f"partitioned roll out complete: {updated} new pods have been updated...\n", True
    if st.get("updateRevision") != st.get("currentRevision"):
        return (f"waiting for statefulset rolling update to complete {updated} pods at "
                f"revision {st.get('updateRevision')}...\n"), False
    return (f"statefulset rolling update complete {st.get('currentReplicas', 0)} pods at "
            f"revision {st.get('currentRevision')}...\n"), True
