"""The `pods/eviction` subresource (policy/v1 Eviction, v1beta1 accepted too): a pod
deleted only when its PodDisruptionBudget allows it, as upstream's EvictionREST.

A POST of an Eviction answers 201 with a Status `Success` after the pod's (graceful)
delete; 429 TooManyRequests `Cannot evict pod as it would violate the pod's disruption
budget.` with a DisruptionBudget cause when its PDB's disruptionsAllowed is 0 (or the
budget's status is older than its spec); 404 for a missing pod; 500 when more than one
PDB selects the pod. A pod that is Pending, finished or already terminating is deleted
without looking at budgets. An allowed eviction decrements the PDB's disruptionsAllowed
and records the pod in status.disruptedPods (through /status, conflicts retried), so the
disruption controller counts it as gone until its delete is seen (netsim.controllers.
disruption). `kubectl drain` finds the subresource in /api/v1's discovery.
"""

from __future__ import annotations

import time

from netsim.api import discovery, errors, routes, selectors
from netsim.api.timeutil import now_rfc3339

EVICTION_API_VERSIONS = ("policy/v1", "policy/v1beta1")
DELETION_TIMEOUT = 120.0  # the disruption controller's DeletionTimeout (2 min)
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."


def too_many_requests(cause: str, retry_after: int = 0) -> errors.ApiError:
    """errors.NewTooManyRequests with a DisruptionBudget cause."""
    details: dict = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.ApiError(TOO_MANY, code=429, reason="TooManyRequests", details=details)


def pod_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or []
               if isinstance(c, dict))


def budgets_for(store, pod: dict) -> list[dict]:
    """The PDBs of the pod's namespace whose selector selects it (a nil or empty selector
    selects nothing here, as getPodDisruptionBudgets)."""
    md = pod.get("metadata") or {}
    out = []
    for pdb in store.list("poddisruptionbudgets", md.get("namespace"))[0]:
        sel = (pdb.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            continue
        if selectors.from_label_selector(sel)(md.get("labels") or {}):
            out.append(pdb)
    return out


def _can_ignore_budget(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or \
        bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _allowed_condition(status: dict, generation: int) -> None:
    """UpdateDisruptionAllowedCondition."""
    ok = status.get("disruptionsAllowed", 0) > 0
    want = {"type": "DisruptionAllowed", "status": "True" if ok else "False",
            "reason": "SufficientPods" if ok else "InsufficientPods",
            "observedGeneration": status.get("observedGeneration", generation), "message": ""}
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    old = next((c for c in conds if c.get("type") == "DisruptionAllowed"), None)
    if old is not None and old.get("status") == want["status"]:
        want["lastTransitionTime"] = old.get("lastTransitionTime") or now_rfc3339()
    else:
        want["lastTransitionTime"] = now_rfc3339()
    status["conditions"] = [c for c in conds if c.get("type") != "DisruptionAllowed"] + [want]


def _check_and_decrement(store, pod_name: str, pdb: dict, dry_run: bool) -> None:
    status = dict(pdb.get("status") or {})
    md = pdb["metadata"]
    if status.get("observedGeneration", 0) < md.get("generation", 1):
        raise too_many_requests(f"The disruption budget {md['name']} is still being "
                                "processed by the server.", 10)
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise errors.ApiError(f'poddisruptionbudgets.policy "{md["name"]}" is forbidden: pdb '
                              "disruptions allowed is negative", code=403, reason="Forbidden")
    if allowed == 0:
        raise too_many_requests(
            f"The disruption budget {md['name']} needs {status.get('desiredHealthy', 0)} "
            f"healthy pods and has {status.get('currentHealthy', 0)} currently")
    status["disruptionsAllowed"] = allowed - 1
    if status["disruptionsAllowed"] == 0:
        _allowed_condition(status, md.get("generation", 1))
    if dry_run:
        return
    disrupted = dict(status.get("disruptedPods") or {})
    disrupted[pod_name] = now_rfc3339()
    status["disruptedPods"] = disrupted
    # PUT .../status with the PDB's resourceVersion: a concurrent eviction conflicts (409)
    store.update({**pdb, "status": status}, subresource="status")


def evict(store, namespace: str, name: str, delete_options: dict | None = None,
          dry_run: bool = False) -> dict:
    """EvictionREST.Create: the Status of a successful eviction, or the ApiError."""
    opts = delete_options if isinstance(delete_options, dict) else {}
    dry_run = dry_run or "All" in (opts.get("dryRun") or [])
    grace = opts.get("gracePeriodSeconds")
    want_rv = (opts.get("preconditions") or {}).get("resourceVersion")
    pod = store.get("pods", name, namespace)
    if want_rv and want_rv != pod["metadata"].get("resourceVersion"):
        raise _conflict(name)
    if not _can_ignore_budget(pod):
        pdbs = budgets_for(store, pod)
        if len(pdbs) > 1:
            raise errors.ApiError("This pod has more than one PodDisruptionBudget, which the "
                                  "eviction subresource does not support.", code=500,
                                  reason="")
        if pdbs:
            pdb = pdbs[0]
            st = pdb.get("status") or {}
            unhealthy_ok = not pod_ready(pod) and (
                (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                or (st.get("currentHealthy", 0) >= st.get("desiredHealthy", 0)
                    and st.get("desiredHealthy", 0) > 0))
            if not unhealthy_ok:
                for _ in range(20):  # RetryOnConflict with EvictionsRetry's 20 steps
                    try:
                        _check_and_decrement(store, name, pdb, dry_run)
                        break
                    except errors.Conflict:
                        time.sleep(0.05)
                        pdb = store.get("poddisruptionbudgets", pdb["metadata"]["name"],
                                        namespace)
                else:
                    raise errors.ApiError(f'couldn\'t update PodDisruptionBudget '
                                          f'"{pdb["metadata"]["name"]}" due to conflicts',
                                          code=504, reason="Timeout")
    if not dry_run:
        store.delete("pods", name, namespace, grace)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def _conflict(name: str) -> errors.ApiError:
    return errors.ApiError(
        f'Operation cannot be fulfilled on pods "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        code=409, reason="Conflict")


def serve_eviction(req: routes.Request) -> None:
    if req.method != "POST":
        raise errors.method_not_allowed()
    body = req.handler._json_body(req.res)
    if not isinstance(body, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type "
                                "Eviction)")
    kind, api = body.get("kind") or "Eviction", body.get("apiVersion") or "policy/v1"
    if kind != "Eviction" or api not in EVICTION_API_VERSIONS:
        raise errors.unregistered_kind(kind, api, "Eviction")
    md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    if md.get("name") != req.name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    dry_run = req.query.get("dryRun") == "All"
    try:
        status = evict(req.store, req.namespace, req.name, body.get("deleteOptions"), dry_run)
    except errors.ApiError as e:
        retry = (e.details or {}).get("retryAfterSeconds")
        extra = b"Retry-After: %d\r\n" % retry if e.code == 429 and retry else b""
        return req.handler._send(e.code, e.status(), extra)
    req.handler._send(201, status)


routes.SUBRESOURCES[("pods", "eviction")] = serve_eviction
discovery.SUBRESOURCE_ENTRIES.setdefault("pods", []).append(
    {"name": "pods/eviction", "group": "policy", "version": "v1", "kind": "Eviction",
     "verbs": ["create"]})
