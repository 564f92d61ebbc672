"""PersistentVolume binding and the local-path provisioner, as a kind cluster has them.

One controller plays three upstream parts, each in its own words and event source:

* kube-controller-manager's persistentvolume-binder: a pending claim is bound to an
  available volume of its class that is big enough and offers its access modes (a class
  with volumeBindingMode WaitForFirstConsumer waits until the scheduler has chosen a node:
  event `WaitForFirstConsumer`, then only volumes that node can reach); a volume whose claim
  is gone is Released, and reclaimed by its policy (Delete: the volume goes, Retain: it
  stays Released);
* the pvc-protection and pv-protection controllers: the finalizers admission put on every
  claim and volume are taken off once no pod uses the claim (a volume: once it is no longer
  Bound), so deleting a claim a pod mounts leaves it Terminating until the pod is gone;
* rancher.io/local-path (the provisioner kind ships as StorageClass `standard`): a claim of
  its class with a selected node gets a volume `pvc-<claim uid>` whose data folder is
  /var/lib/netsim/<cluster>/local-path/pvc-<uid>_<namespace>_<claim> (a hostPath volume
  with nodeAffinity to that node; events Provisioning / ProvisioningSucceeded); on Delete
  the folder goes with the volume. The folder root is in the cluster's ledger, so `cluster
  down` removes whatever is left of it.

install(client, cfg) makes the default StorageClass at `cluster up`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil

from netsim.api import errors, events, quantity
from netsim.api.kinds.storage import PV_PROTECTION, PVC_PROTECTION, claim_class, volume_class
from netsim.controllers.base import Controller
from netsim.machinery import clone

log = logging.getLogger("netsim.controllers")

PROVISIONER = "rancher.io/local-path"
PROVISIONER_ID = "rancher.io/local-path_local-path-provisioner"
BINDER = "persistentvolume-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
HOSTNAME = "kubernetes.io/hostname"
DEFAULT_CLASS = "standard"
STATE_ROOT = "/var/lib/netsim"


def local_path_root(cluster: str) -> str:
    return os.path.join(STATE_ROOT, cluster, "local-path")


def volume_dir(cluster: str, pvc: dict) -> str:
    md = pvc["metadata"]
    return os.path.join(local_path_root(cluster),
                        f"pvc-{md['uid']}_{md.get('namespace', 'default')}_{md['name']}")


def default_class() -> dict:
    """kind's `standard`: the default class, local-path, WaitForFirstConsumer, Delete."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS,
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}


def install(client, cfg) -> None:
    """The add-on part: the default StorageClass (kept if one by that name exists)."""
    with contextlib.suppress(errors.AlreadyExists):
        client.create(default_class())


def _storage(obj: dict, *path: str) -> float:
    cur = obj
    for p in path:
        cur = (cur or {}).get(p) or {}
    try:
        return float(quantity.parse_exact((cur or {}).get("storage") or "0")[0])
    except ValueError:
        return 0.0


def _claim_key(ns: str, name: str) -> str:
    return f"pvc/{ns}/{name}"


def pod_claims(pod: dict) -> list[str]:
    return [v["persistentVolumeClaim"].get("claimName", "")
            for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), dict)]


def node_matches(pv: dict, node: dict | None, node_name: str) -> bool:
    """Whether the volume's nodeAffinity admits the node (no affinity: every node)."""
    from netsim.controllers.scheduler import _term_matches
    req = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if not req:
        return True
    labels = ((node or {}).get("metadata") or {}).get("labels") or {HOSTNAME: node_name}
    return any(_term_matches(t, labels, node_name) for t in req.get("nodeSelectorTerms") or [])


def volume_fits(pv: dict, pvc: dict) -> bool:
    """findMatchingVolume's checks: class, mode, access modes, size, not promised elsewhere."""
    spec, cspec = pv.get("spec") or {}, pvc.get("spec") or {}
    if pv["metadata"].get("deletionTimestamp") or \
            (pv.get("status") or {}).get("phase") in ("Released", "Failed"):
        return False
    ref = spec.get("claimRef")
    if ref and (ref.get("name") != pvc["metadata"]["name"] or
                ref.get("namespace") != pvc["metadata"].get("namespace") or
                (ref.get("uid") and ref["uid"] != pvc["metadata"].get("uid"))):
        return False
    if volume_class(pv) != claim_class(pvc):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (cspec.get("volumeMode") or "Filesystem"):
        return False
    if not set(cspec.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    return _storage(pv, "spec", "capacity") >= _storage(pvc, "spec", "resources", "requests")


class PersistentVolumeController(Controller):
    name = BINDER
    watches = ("persistentvolumeclaims", "persistentvolumes", "pods")
    reads = ("storageclasses", "nodes")
    cluster = ""  # set by the control plane: where local-path folders live
    root = ""     # the local-path folder root (tests); default local_path_root(cluster)

    def local_root(self) -> str:
        return self.root or local_path_root(self.cluster)

    def keys_for(self, resource, obj):
        md = obj.get("metadata") or {}
        if resource == "persistentvolumeclaims":
            keys = [_claim_key(md.get("namespace", "default"), md.get("name", ""))]
            vol = (obj.get("spec") or {}).get("volumeName")
            return keys + ([f"pv/{vol}"] if vol else [])
        if resource == "persistentvolumes":
            keys = [f"pv/{md.get('name', '')}"]
            ref = (obj.get("spec") or {}).get("claimRef") or {}
            if ref.get("name"):
                keys.append(_claim_key(ref.get("namespace", "default"), ref["name"]))
            return keys
        ns = md.get("namespace", "default")
        return [_claim_key(ns, c) for c in pod_claims(obj)]

    def all_keys(self):
        for c in self.lister("persistentvolumeclaims").list():
            yield _claim_key(c["metadata"].get("namespace", "default"), c["metadata"]["name"])
        for v in self.lister("persistentvolumes").list():
            yield f"pv/{v['metadata']['name']}"

    def reconcile(self, key):
        kind, _, rest = key.partition("/")
        if kind == "pv":
            return self._sync_volume(rest)
        ns, _, name = rest.partition("/")
        return self._sync_claim(ns, name)

    # ---- claims ---------------------------------------------------------------------
    def _users(self, ns: str, name: str) -> list[dict]:
        return [p for p in self.lister("pods").list(ns) if name in pod_claims(p)
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

    def _sync_claim(self, ns: str, name: str) -> float | None:
        cached = self.lister("persistentvolumeclaims").get(f"{ns}/{name}")
        if cached is None:
            return None
        pvc = clone(cached)
        md = pvc["metadata"]
        if md.get("deletionTimestamp"):
            if PVC_PROTECTION in (md.get("finalizers") or []) and not self._users(ns, name):
                md["finalizers"] = [f for f in md["finalizers"] if f != PVC_PROTECTION]
                with contextlib.suppress(errors.NotFound):
                    self.client.update(pvc)
            return None
        vol_name = (pvc.get("spec") or {}).get("volumeName")
        if vol_name:
            pv = self.lister("persistentvolumes").get(vol_name)
            if pv is not None:
                self._bind(pv, pvc)
            return None
        return self._find_volume(pvc)

    def _find_volume(self, pvc: dict) -> float | None:
        md = pvc["metadata"]
        anns = md.get("annotations") or {}
        klass = claim_class(pvc)
        sc = self.lister("storageclasses").get(klass) if klass else None
        wait = bool(sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer")
        node_name = anns.get(SELECTED_NODE)
        if wait and not node_name:
            events.record(self.client, pvc, "Normal", "WaitForFirstConsumer",
                          "waiting for first consumer to be created before binding", BINDER)
            return None
        node = self.lister("nodes").get(node_name) if node_name else None
        # a volume promised to this claim first (pre-bound), then the smallest that fits
        candidates = [v for v in self.lister("persistentvolumes").list() if volume_fits(v, pvc)
                      and (not node_name or node_matches(v, node, node_name))]
        candidates.sort(key=lambda v: (not (v.get("spec") or {}).get("claimRef"),
                                       _storage(v, "spec", "capacity"), v["metadata"]["name"]))
        if candidates:
            self._bind(candidates[0], pvc)
            return None
        if not klass:
            events.record(self.client, pvc, "Normal", "FailedBinding",
                          "no persistent volumes available for this claim and no storage class "
                          "is set", BINDER)
            return None
        if sc is None:
            events.record(self.client, pvc, "Warning", "ProvisioningFailed",
                          f'storageclass.storage.k8s.io "{klass}" not found', BINDER)
            return None
        if sc.get("provisioner") != PROVISIONER:
            events.record(self.client, pvc, "Normal", "ExternalProvisioning",
                          _external_msg(sc.get("provisioner", "")), BINDER)
            return None
        return self._provision(pvc, sc, node_name)

    def _provision(self, pvc: dict, sc: dict, node_name: str | None) -> float | None:
        md = pvc["metadata"]
        anns = md.setdefault("annotations", {})
        if anns.get(STORAGE_PROVISIONER) != PROVISIONER:
            anns[STORAGE_PROVISIONER] = anns[BETA_STORAGE_PROVISIONER] = PROVISIONER
            try:
                pvc = self.client.update(pvc)
            except errors.NotFound:
                return None
            events.record(self.client, pvc, "Normal", "ExternalProvisioning",
                          _external_msg(PROVISIONER), BINDER)
        ns = md.get("namespace", "default")
        claim = f"{ns}/{md['name']}"
        if not node_name:
            events.record(self.client, pvc, "Warning", "ProvisioningFailed",
                          f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}"'
                          ": configuration error, no node was specified", PROVISIONER_ID)
            return None
        events.record(self.client, pvc, "Normal", "Provisioning",
                      f'External provisioner is provisioning volume for claim "{claim}"',
                      PROVISIONER_ID)
        md_ = pvc["metadata"]
        path = os.path.join(self.local_root(),
                            f"pvc-{md_['uid']}_{md_.get('namespace', 'default')}_{md_['name']}")
        try:
            self._make_dir(path)
        except OSError as e:
            events.record(self.client, pvc, "Warning", "ProvisioningFailed",
                          f'failed to provision volume with StorageClass "{sc["metadata"]["name"]}"'
                          f": {e}", PROVISIONER_ID)
            return 10.0
        name = f"pvc-{md['uid']}"
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {
                  PROVISIONED_BY: PROVISIONER, "local.path.provisioner/selected-node": node_name}},
              "spec": {"accessModes": list((pvc.get("spec") or {}).get("accessModes") or []),
                       "capacity": {"storage": ((pvc["spec"].get("resources") or {})
                                                .get("requests") or {}).get("storage", "0")},
                       "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                    "name": md["name"], "namespace": ns, "uid": md["uid"],
                                    "resourceVersion": md.get("resourceVersion")},
                       "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": HOSTNAME, "operator": "In", "values": [node_name]}]}]}},
                       "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                       "storageClassName": sc["metadata"]["name"],
                       "volumeMode": (pvc.get("spec") or {}).get("volumeMode") or "Filesystem"}}
        try:
            self.client.create(pv)
        except errors.AlreadyExists:
            return None
        events.record(self.client, pvc, "Normal", "ProvisioningSucceeded",
                      f"Successfully provisioned volume {name}", PROVISIONER_ID)
        return None

    def _make_dir(self, path: str) -> None:
        root = os.path.dirname(path)
        if not os.path.isdir(root):
            os.makedirs(root, mode=0o755, exist_ok=True)
            if self.cluster and not self.root:
                from netsim.net.ledger import Ledger
                Ledger(self.cluster).add("dir", path=root)
        os.makedirs(path, mode=0o777, exist_ok=True)
        os.chmod(path, 0o777)  # local-path's helper pod: mkdir -m 0777

    def _bind(self, pv: dict, pvc: dict) -> None:
        """bindVolumeToClaim, bindClaimToVolume, then both statuses Bound."""
        pv, md = clone(pv), pvc["metadata"]
        ns = md.get("namespace", "default")
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("name") != md["name"] or ref.get("namespace") != ns or \
                ref.get("uid") != md.get("uid"):
            pv["spec"]["claimRef"] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                      "name": md["name"], "namespace": ns, "uid": md["uid"],
                                      "resourceVersion": md.get("resourceVersion")}
            pv.setdefault("metadata", {}).setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            pv = self.client.update(pv)
        if (pv.get("status") or {}).get("phase") != "Bound":
            pv["status"] = {**(pv.get("status") or {}), "phase": "Bound"}
            pv = self.client.update_status(pv)
        pvc = clone(pvc)
        anns = pvc["metadata"].setdefault("annotations", {})
        if pvc["spec"].get("volumeName") != pv["metadata"]["name"] or \
                anns.get(BIND_COMPLETED) != "yes":
            pvc["spec"]["volumeName"] = pv["metadata"]["name"]
            anns[BIND_COMPLETED] = "yes"
            anns.setdefault(BOUND_BY_CONTROLLER, "yes")
            pvc = self.client.update(pvc)
        status = pvc.get("status") or {}
        want = {"phase": "Bound", "accessModes": list(pv["spec"].get("accessModes") or []),
                "capacity": dict(pv["spec"].get("capacity") or {})}
        if any(status.get(k) != val for k, val in want.items()):
            pvc["status"] = {**status, **want}
            self.client.update_status(pvc)

    # ---- volumes --------------------------------------------------------------------
    def _sync_volume(self, name: str) -> float | None:
        cached = self.lister("persistentvolumes").get(name)
        if cached is None:
            return None
        pv = clone(cached)
        md, spec = pv["metadata"], pv.get("spec") or {}
        phase = (pv.get("status") or {}).get("phase")
        if md.get("deletionTimestamp"):
            if PV_PROTECTION in (md.get("finalizers") or []) and phase != "Bound":
                md["finalizers"] = [f for f in md["finalizers"] if f != PV_PROTECTION]
                with contextlib.suppress(errors.NotFound):
                    self.client.update(pv)
            return None
        ref = spec.get("claimRef")
        if not ref:
            if phase != "Available":
                self._phase(pv, "Available")
            return None
        claim = self.lister("persistentvolumeclaims").get(
            f"{ref.get('namespace', 'default')}/{ref.get('name', '')}")
        if claim is not None and (not ref.get("uid") or ref["uid"] == claim["metadata"].get("uid")):
            if (claim.get("spec") or {}).get("volumeName") == name and phase != "Bound":
                self._phase(pv, "Bound")
            return None
        if claim is None or ref.get("uid"):  # the claim is gone (or a new one by that name)
            if ref.get("uid") or phase == "Bound":
                return self._reclaim(pv, phase)
        if phase not in ("Available", "Released", "Failed"):  # pre-bound to a claim to come
            self._phase(pv, "Available")
        return None

    def _phase(self, pv: dict, phase: str) -> dict:
        pv["status"] = {**(pv.get("status") or {}), "phase": phase}
        try:
            return self.client.update_status(pv)
        except errors.NotFound:
            return pv

    def _reclaim(self, pv: dict, phase: str | None) -> float | None:
        if phase != "Released":
            pv = self._phase(pv, "Released")
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if policy != "Delete":
            return None
        anns = pv["metadata"].get("annotations") or {}
        if anns.get(PROVISIONED_BY) == PROVISIONER:
            path = ((pv.get("spec") or {}).get("hostPath") or {}).get("path", "")
            if path and os.path.dirname(path) == self.local_root():
                shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(errors.NotFound):
            self.client.delete("persistentvolumes", pv["metadata"]["name"])
        return None


def _external_msg(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner "
            f"'{provisioner}' or manually by the system administrator. If volume creation is "
            "delayed, please verify that the provisioner is running and correctly registered.")


# ---- the scheduler's VolumeBinding plugin -------------------------------------------------
class PodVolumes:
    """What kube-scheduler's VolumeBinding plugin finds for one pod: a PreFilter error, the
    bound claims' volumes (their nodeAffinity filters nodes) and the claims still waiting for
    their first consumer (bound once a node is chosen)."""

    def __init__(self, error: str = "", bound: list | None = None,
                 delayed: list | None = None, statics: dict | None = None):
        self.error = error
        self.bound = bound or []       # PersistentVolumes of bound claims
        self.delayed = delayed or []   # claims waiting for a node
        self.statics = statics or {}   # claim uid -> volumes it could bind (no provisioner)

    def node_reason(self, node: dict) -> str | None:
        name = node["metadata"]["name"]
        if any(not node_matches(pv, node, name) for pv in self.bound):
            return "node(s) had volume node affinity conflict"
        for claim in self.delayed:
            picked = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if picked and picked != name:
                return "node(s) didn't find available persistent volumes to bind"
            vols = self.statics.get(claim["metadata"].get("uid"))
            if vols is not None and not any(node_matches(v, node, name) for v in vols):
                return "node(s) didn't find available persistent volumes to bind"
        return None


def pod_volumes(pod: dict, claims, volumes, classes) -> PodVolumes:
    """PreFilter + the per-node data (listers: get('ns/name') / get(name) / list())."""
    ns = pod["metadata"].get("namespace", "default")
    out = PodVolumes()
    for name in pod_claims(pod):
        pvc = claims.get(f"{ns}/{name}")
        if pvc is None:
            out.error = f'persistentvolumeclaim "{name}" not found'
            return out
        if pvc["metadata"].get("deletionTimestamp"):
            out.error = f'persistentvolumeclaim "{name}" is being deleted'
            return out
        vol = (pvc.get("spec") or {}).get("volumeName")
        if vol:
            pv = volumes.get(vol)
            if pv is None:
                out.error = f'pvc {ns}/{name} bound to non-existent pv {vol}'
                return out
            out.bound.append(pv)
            continue
        klass = claim_class(pvc)
        sc = classes.get(klass) if klass else None
        if not sc or sc.get("volumeBindingMode") != "WaitForFirstConsumer":
            out.error = "pod has unbound immediate PersistentVolumeClaims"
            return out
        out.delayed.append(pvc)
        if sc.get("provisioner") != PROVISIONER:
            out.statics[pvc["metadata"].get("uid")] = [
                v for v in volumes.list() if volume_fits(v, pvc)]
    return out


def select_node(client, claims: list, node: str) -> None:
    """AssumePodVolumes + PreBind for dynamic provisioning: the chosen node on each claim
    (volume.kubernetes.io/selected-node); the binder and the provisioner take it from there."""
    for pvc in claims:
        if (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE) == node:
            continue
        md = pvc["metadata"]
        with contextlib.suppress(errors.NotFound):
            client.patch("persistentvolumeclaims", md["name"], md.get("namespace"),
                         {"metadata": {"annotations": {SELECTED_NODE: node}}})
