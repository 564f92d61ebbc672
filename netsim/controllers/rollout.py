"""Deployment rollout arithmetic, hashes, revisions and rollback, as pure functions.

Ported from kubernetes `pkg/controller/deployment/{rolling,sync}.go`,
`deployment/util/deployment_util.go`, `controller_utils.go` and kubectl's
`polymorphichelpers/{rollback,rollout_status}.go`, so that every step of a rollout sizes the
ReplicaSets exactly as upstream does. Objects are plain Kubernetes JSON dicts.
"""

from __future__ import annotations

import copy
import json
import math
import re

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REV_HISTORY_CHARS = 2000

# Annotations the controller never copies from a Deployment to its ReplicaSets (and kubectl
# never copies back on rollback).
SKIP_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                              MAX_REPLICAS, ROLLBACK_TO})

# apimachinery pkg/util/rand: no vowels, no 0/1/3 — names never spell words or look alike.
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"

# Condition reasons (deployment/util).
REASON_NEW_RS = "NewReplicaSetCreated"
REASON_FOUND_NEW_RS = "FoundNewReplicaSet"
REASON_RS_UPDATED = "ReplicaSetUpdated"
REASON_NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
REASON_TIMED_OUT = "ProgressDeadlineExceeded"
REASON_PAUSED = "DeploymentPaused"
REASON_RESUMED = "DeploymentResumed"
REASON_MIN_AVAILABLE = "MinimumReplicasAvailable"
REASON_MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
REASON_FAILED_CREATE = "FailedCreate"

_PERCENT = re.compile(r"^[0-9]+%$")


# ---- hashes and names ---------------------------------------------------------------------
def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: map each byte onto the 27-char alphabet."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in s)


def canonical_template(template: dict) -> dict:
    """The template as compared and hashed: without the pod-template-hash label. Copies
    only what it changes (the top level, metadata, labels): the Deployment controller
    compares every ReplicaSet's template on each of its syncs, one per pod status change
    in a rollout, and a deep copy of each was most of a sync's CPU. Read-only."""
    t = dict(template or {})
    md = t["metadata"] = dict(t.get("metadata") or {})
    labels = dict(md.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    if labels:
        md["labels"] = labels
    else:
        md.pop("labels", None)
    for k in [k for k, v in md.items() if v in (None, {}, [])]:
        md.pop(k)
    return t


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """controller.ComputeHash: fnv32a of the template (+ collisionCount), safe-encoded.

    Upstream hashes Go's spew dump of the struct; we hash canonical JSON, so the value
    differs from a real cluster's but has the same format (`^[4-9bcdf]{1,10}$`) and the
    same stability: one template, one hash.
    """
    data = json.dumps(canonical_template(template), sort_keys=True,
                      separators=(",", ":")).encode()
    if collision_count:
        data += int(collision_count).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: dict, b: dict) -> bool:
    return canonical_template(a) == canonical_template(b)


# ---- small accessors ------------------------------------------------------------------------
def replicas(obj: dict | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_of(obj: dict | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def available(rs: dict | None) -> int:
    """An RS's available replicas, never more than it is asked to keep.

    The bound matters when the RS status lags a scale-down: upstream relies on a fresh
    informer cache; capping at spec keeps the availability arithmetic conservative.
    """
    if rs is None:
        return 0
    return min(status_of(rs, "availableReplicas"), replicas(rs))


def revision(obj: dict | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("annotations", {}).get(REVISION, "0"))
    except (TypeError, ValueError):
        return 0


def max_revision(rss: list[dict]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def creation_key(obj: dict) -> tuple:
    md = obj.get("metadata") or {}
    return (md.get("creationTimestamp") or "", md.get("name") or "")


def is_rolling(deploy: dict) -> bool:
    st = ((deploy.get("spec") or {}).get("strategy") or {})
    return st.get("type", "RollingUpdate") == "RollingUpdate"


# ---- surge / unavailable --------------------------------------------------------------------
def int_or_percent(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    s = str(value)
    if not _PERCENT.match(s):
        if re.fullmatch(r"-?[0-9]+", s):
            raise ValueError("invalid value for IntOrString: invalid type: string is not a "
                             "percentage")
        raise ValueError(f"invalid value for IntOrString: invalid value {s!r}")
    pct = int(s[:-1])
    if round_up:
        return -(-(pct * total) // 100)
    return (pct * total) // 100


def resolve_fenceposts(max_surge, max_unavailable, desired: int) -> tuple[int, int]:
    """Surge rounds up, unavailable rounds down; both 0 -> unavailable 1."""
    surge = int_or_percent("25%" if max_surge is None else max_surge, desired, True)
    unavailable = int_or_percent("25%" if max_unavailable is None else max_unavailable,
                                 desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(deploy: dict) -> dict:
    return (((deploy.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {})


def max_surge(deploy: dict) -> int:
    if not is_rolling(deploy):
        return 0
    ru = _rolling(deploy)
    return resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), replicas(deploy))[0]


def max_unavailable(deploy: dict) -> int:
    want = replicas(deploy)
    if not is_rolling(deploy) or want == 0:
        return 0
    ru = _rolling(deploy)
    unavailable = resolve_fenceposts(ru.get("maxSurge"), ru.get("maxUnavailable"), want)[1]
    return min(unavailable, want)


# ---- rolling update steps --------------------------------------------------------------------
def new_rs_new_replicas(deploy: dict, all_rss: list[dict], new_rs: dict) -> int:
    """deploymentutil.NewRSNewReplicas: how big the new RS may be at this step."""
    want = replicas(deploy)
    if not is_rolling(deploy):
        return want
    current = sum(replicas(rs) for rs in all_rss)
    max_total = want + max_surge(deploy)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = max_total - current
    return replicas(new_rs) + min(scale_up, want - replicas(new_rs))


def plan_scale_down(deploy: dict, all_rss: list[dict], old_rss: list[dict],
                    new_rs: dict | None) -> list[tuple[str, int]]:
    """reconcileOldReplicaSets: the (old RS name, new size) scale-downs of this step, in order.

    First unhealthy old pods go (oldest RS first, bounded by
    allPods - minAvailable - newRS unavailable), then available ones while the total available
    stays above replicas - maxUnavailable. One RS may appear twice (cleanup, then scale-down),
    each step being one upstream API call and one event.
    """
    old_active = sorted((rs for rs in old_rss if replicas(rs) > 0), key=creation_key)
    if not old_active:
        return []
    all_pods = sum(replicas(rs) for rs in all_rss)
    min_available = replicas(deploy) - max_unavailable(deploy)
    new_unavailable = replicas(new_rs) - available(new_rs) if new_rs else 0
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    sizes = {rs["metadata"]["name"]: replicas(rs) for rs in old_active}
    steps: list[tuple[str, int]] = []
    # cleanupUnhealthyReplicas
    cleaned = 0
    for rs in old_active:
        if cleaned >= max_scaled_down:
            break
        name = rs["metadata"]["name"]
        unhealthy = sizes[name] - available(rs)
        if sizes[name] == 0 or unhealthy <= 0:
            continue
        n = min(max_scaled_down - cleaned, unhealthy)
        sizes[name] -= n
        cleaned += n
        steps.append((name, sizes[name]))
    # scaleDownOldReplicaSetsForRollingUpdate: availability counted on the RSs as they are
    # after the cleanup (upstream re-reads the updated RSs, whose status is unchanged).
    avail = sum(min(available(rs), sizes.get(rs["metadata"]["name"], replicas(rs)))
                for rs in all_rss)
    if avail > min_available:
        budget = avail - min_available
        done = 0
        for rs in old_active:
            if done >= budget:
                break
            name = rs["metadata"]["name"]
            if sizes[name] == 0:
                continue
            n = min(sizes[name], budget - done)
            sizes[name] -= n
            done += n
            steps.append((name, sizes[name]))
    return steps


# ---- proportional scaling ---------------------------------------------------------------------
def _round(x: float) -> int:
    """Go's math.Round: halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _fraction(rs: dict, deploy: dict) -> int:
    want = replicas(deploy)
    if want == 0:
        return -replicas(rs)
    deploy_max = want + max_surge(deploy)
    try:
        before = int(((rs.get("metadata") or {}).get("annotations") or {}).get(MAX_REPLICAS, ""))
    except ValueError:
        before = 0
    if before == 0:
        before = status_of(deploy, "replicas")
        if before == 0:
            return 0
    return _round(replicas(rs) * deploy_max / before) - replicas(rs)


def get_proportion(rs: dict, deploy: dict, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac = _fraction(rs, deploy)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def is_saturated(deploy: dict, rs: dict | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int(((rs.get("metadata") or {}).get("annotations") or {})
                      .get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    want = replicas(deploy)
    return replicas(rs) == want and desired == want and status_of(rs, "availableReplicas") == want


def find_active_or_latest(new_rs: dict | None, old_rss: list[dict]) -> dict | None:
    if new_rs is None and not old_rss:
        return None
    ordered = sorted(old_rss, key=creation_key, reverse=True)
    all_rss = ([new_rs] if new_rs else []) + ordered
    active = [rs for rs in all_rss if replicas(rs) > 0]
    if len(active) == 0:
        return new_rs if new_rs is not None else ordered[0]
    if len(active) == 1:
        return active[0]
    return None


def plan_proportional(deploy: dict, new_rs: dict | None,
                      old_rss: list[dict]) -> tuple[dict[str, int], str]:
    """DeploymentController.scale(): sizes for a scaling event mid-rollout, and "up"/"down".

    Extra replicas are split by each RS's share of the previous size (its max-replicas
    annotation); leftovers go to the largest RS (newer first when scaling up, older first when
    scaling down).
    """
    want = replicas(deploy)
    one = find_active_or_latest(new_rs, old_rss)
    if one is not None:
        if replicas(one) == want:
            return {}, ""
        return {one["metadata"]["name"]: want}, "up" if want > replicas(one) else "down"
    if is_saturated(deploy, new_rs):
        return {rs["metadata"]["name"]: 0 for rs in old_rss if replicas(rs) > 0}, "down"
    if not is_rolling(deploy):
        return {}, ""
    all_rss = [rs for rs in old_rss + ([new_rs] if new_rs else []) if replicas(rs) > 0]
    total = sum(replicas(rs) for rs in all_rss)
    allowed = want + max_surge(deploy) if want > 0 else 0
    to_add = allowed - total
    op = ""
    if to_add > 0:
        # ReplicaSetsBySizeNewer: larger first, newer first on ties.
        all_rss.sort(key=creation_key, reverse=True)
        all_rss.sort(key=replicas, reverse=True)
        op = "up"
    elif to_add < 0:
        # ReplicaSetsBySizeOlder: larger first, older first on ties.
        all_rss.sort(key=creation_key)
        all_rss.sort(key=replicas, reverse=True)
        op = "down"
    sizes: dict[str, int] = {}
    added = 0
    for rs in all_rss:
        name = rs["metadata"]["name"]
        if to_add != 0:
            p = get_proportion(rs, deploy, to_add, added)
            sizes[name] = replicas(rs) + p
            added += p
        else:
            sizes[name] = replicas(rs)
    if all_rss and to_add != 0:
        first = all_rss[0]["metadata"]["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return {n: s for n, s in sizes.items()
            if s != replicas(next(r for r in all_rss if r["metadata"]["name"] == n))}, op


# ---- status and conditions ----------------------------------------------------------------------
def deployment_complete(deploy: dict, status: dict) -> bool:
    want = replicas(deploy)
    return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("observedGeneration", 0)
            >= (deploy.get("metadata") or {}).get("generation", 1))


def deployment_progressing(deploy: dict, status: dict) -> bool:
    old = deploy.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
            or new_old < old_old
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def get_condition(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict:
    return {"type": ctype, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: same status and reason -> unchanged; keep transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] \
            and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime", cond["lastTransitionTime"])
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: dict, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def calculate_status(deploy: dict, all_rss: list[dict], new_rs: dict | None, now: str) -> dict:
    """calculateStatus: counts from the RSs, plus the Available condition."""
    avail = sum(available(rs) for rs in all_rss)
    total = sum(replicas(rs) for rs in all_rss)
    old = deploy.get("status") or {}
    status = {
        "observedGeneration": (deploy.get("metadata") or {}).get("generation", 1),
        "replicas": sum(status_of(rs, "replicas") for rs in all_rss),
        "updatedReplicas": status_of(new_rs, "replicas"),
        "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": avail,
        "unavailableReplicas": max(0, total - avail),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if avail >= replicas(deploy) - max_unavailable(deploy):
        set_condition(status, new_condition("Available", "True", REASON_MIN_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition("Available", "False", REASON_MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.",
                                            now))
    return status


# ---- rollback and history (kubectl) ---------------------------------------------------------------
def owned_by(rs: dict, deploy: dict) -> bool:
    uid = (deploy.get("metadata") or {}).get("uid")
    return any(r.get("controller") and r.get("uid") == uid
               for r in (rs.get("metadata") or {}).get("ownerReferences") or [])


def split_replicasets(deploy: dict, replicasets: list[dict]) -> tuple[dict | None, list[dict]]:
    """(new RS, old RSs) of a Deployment: the new one's template equals the Deployment's
    (ignoring pod-template-hash); the oldest such RS wins, as upstream's FindNewReplicaSet."""
    owned = sorted((r for r in replicasets if owned_by(r, deploy)), key=creation_key)
    template = (deploy.get("spec") or {}).get("template") or {}
    new = next((r for r in owned
                if equal_ignore_hash((r.get("spec") or {}).get("template") or {}, template)), None)
    return new, [r for r in owned if r is not new]


def history_rows(replicasets: list[dict], deploy: dict | None = None) -> list[tuple[int, str]]:
    """`rollout history` rows: (revision, change-cause or "<none>"), oldest first."""
    rows = {}
    for rs in replicasets:
        if deploy is not None and not owned_by(rs, deploy):
            continue
        rev = revision(rs)
        if rev <= 0:
            continue
        cause = ((rs.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE)
        rows[rev] = cause or "<none>"
    return sorted(rows.items())


def format_history(kind_name: str, rows: list[tuple[int, str]]) -> str:
    """kubectl's history text: `deployment.apps/NAME ` then a tabwriter table."""
    width = max([len("REVISION")] + [len(str(r)) for r, _ in rows]) + 2
    lines = [f"{kind_name} ", "REVISION".ljust(width) + "CHANGE-CAUSE"]
    lines += [str(r).ljust(width) + c for r, c in rows]
    return "\n".join(lines) + "\n\n"  # kubectl 1.37 ends it with a blank line


def revision_replicaset(deploy: dict, replicasets: list[dict],
                        to_revision: int) -> tuple[dict | None, str]:
    """kubectl deploymentRevision(): the RS to roll back to, or (None, error message)."""
    owned = [rs for rs in replicasets if owned_by(rs, deploy)] or replicasets
    latest = previous = None
    latest_rev = previous_rev = -1
    for rs in owned:
        v = revision(rs)
        if to_revision == 0:
            if latest_rev < v:
                previous_rev, previous = latest_rev, latest
                latest_rev, latest = v, rs
            elif previous_rev < v:
                previous_rev, previous = v, rs
        elif v == to_revision:
            return rs, ""
    if to_revision > 0:
        return None, f"unable to find specified revision {to_revision} in history"
    if previous is None:
        name = (deploy.get("metadata") or {}).get("name")
        return None, f'no rollout history found for deployment "{name}"'
    return previous, ""


def rollback_deployment(deploy: dict, replicasets: list[dict],
                        to_revision: int = 0) -> tuple[dict | None, str]:
    """kubectl rollout undo: the Deployment to write back (template and annotations restored
    from the chosen RS), and kubectl's message.

    Returns (new_deploy, "rolled back"), (None, "skipped rollback (...)") when nothing changes,
    or (None, error) — errors are the ones that do not start with "rolled back"/"skipped".
    """
    name = (deploy.get("metadata") or {}).get("name")
    rs, err = revision_replicaset(deploy, replicasets, to_revision)
    if rs is None:
        return None, err
    if (deploy.get("spec") or {}).get("paused"):
        return None, ("you cannot rollback a paused deployment; resume it first with "
                      f"'kubectl rollout resume deployment/{name}' and try again")
    cur = (deploy.get("spec") or {}).get("template") or {}
    target = (rs.get("spec") or {}).get("template") or {}
    if equal_ignore_hash(target, cur):
        return None, f"skipped rollback (current template already matches revision {to_revision})"
    tpl = copy.deepcopy(target)
    labels = (tpl.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    new = copy.deepcopy(deploy)
    new["spec"]["template"] = tpl
    cur_ann = (deploy.get("metadata") or {}).get("annotations") or {}
    ann = {k: v for k, v in cur_ann.items() if k in SKIP_ANNOTATIONS}
    ann.update({k: v for k, v in ((rs.get("metadata") or {}).get("annotations") or {}).items()
                if k not in SKIP_ANNOTATIONS})
    new["metadata"]["annotations"] = ann
    return new, "rolled back"


def rollback_template(deploy: dict, replicasets: list[dict],
                      to_revision: int = 0) -> tuple[dict | None, str]:
    """The template to copy into spec.template for `rollout undo`, and kubectl's message."""
    new, msg = rollback_deployment(deploy, replicasets, to_revision)
    return (new["spec"]["template"] if new else None), msg


def rollout_status(deploy: dict) -> tuple[str, bool]:
    """kubectl rollout status (DeploymentStatusViewer): (message, done)."""
    name = (deploy.get("metadata") or {}).get("name")
    st = deploy.get("status") or {}
    gen = (deploy.get("metadata") or {}).get("generation", 1)
    if gen > st.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...\n", False
    cond = get_condition(st, "Progressing")
    if cond is not None and cond.get("reason") == REASON_TIMED_OUT:
        raise ValueError(f'deployment "{name}" exceeded its progress deadline')
    want = replicas(deploy)
    updated = st.get("updatedReplicas", 0)
    total = st.get("replicas", 0)
    avail = st.get("availableReplicas", 0)
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} '
                "new replicas have been updated...\n"), False
    if total > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {total - updated} old '
                "replicas are pending termination...\n"), False
    if avail < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: {avail} of {updated} '
                "updated replicas are available...\n"), False
    return f'deployment "{name}" successfully rolled out\n', True
