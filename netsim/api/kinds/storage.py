"""PersistentVolumes, PersistentVolumeClaims (v1) and StorageClasses (storage.k8s.io/v1):
defaults, validation and the admission plug-ins that touch them, as the apiserver's.

Defaulting is pkg/apis/core/v1 SetDefaults_PersistentVolume(Claim) (reclaim policy Retain,
volumeMode Filesystem, phase Pending) and pkg/apis/storage/v1 SetDefaults_StorageClass
(reclaimPolicy Delete, volumeBindingMode Immediate). Validation is ValidatePersistentVolume,
ValidatePersistentVolumeClaim(Update) and ValidateStorageClass(Update) in their words: access
modes required, a positive storage request, a claim's spec immutable after creation except
its storage request (and volumeName, set once by the binder). Admission: DefaultStorageClass
(a claim naming no class gets the default one, the newest when several say so) and
StorageObjectInUseProtection (the kubernetes.io/pvc-protection and pv-protection finalizers).
"""

from __future__ import annotations

import json

from netsim.api import quantity
from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.kinds.podspec import HOST_PATH_TYPES

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
CLASS_RECLAIM_POLICIES = ("Delete", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
# The volume sources a PersistentVolume may name (one of them), by JSON field.
PV_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker",
              "nfs", "rbd", "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume",
              "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume",
              "azureDisk", "scaleIO", "local", "storageos", "csi")
POSITIVE_MSG = "must be greater than zero"


def is_default_class(sc: dict) -> bool:
    """storageutil.IsDefaultAnnotation: the GA or the beta annotation is "true"."""
    anns = (sc.get("metadata") or {}).get("annotations") or {}
    return anns.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        anns.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


def claim_class(pvc: dict) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation first, then spec.storageClassName."""
    anns = (pvc.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in anns:
        return anns[BETA_CLASS_ANNOTATION]
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: dict) -> str:
    """GetPersistentVolumeClass."""
    anns = (pv.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in anns:
        return anns[BETA_CLASS_ANNOTATION]
    return (pv.get("spec") or {}).get("storageClassName") or ""


def access_modes_string(modes) -> str:
    """GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once."""
    modes = modes or []
    short = [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP")]
    return ",".join(s for m, s in short if m in modes)


# ---- pieces ---------------------------------------------------------------------------------
def _qstr(q) -> str:
    try:
        return quantity.format_exact(*quantity.parse_exact(q))
    except ValueError:
        return str(q)


def _positive(q, path: str) -> list[str]:
    """ValidatePositiveQuantityValue / ValidateNonnegativeQuantity."""
    try:
        val = quantity.parse_exact(q)[0]
    except ValueError:
        return [v.invalid(path, str(q), quantity.FORMAT_MSG)]
    if val <= 0:
        return [v.invalid(path, _qstr(q), POSITIVE_MSG)]
    return []


def _access_modes(modes, path: str, required_msg: str) -> list[str]:
    errs: list[str] = []
    if not modes:
        errs.append(v.required(path, required_msg))
    rwop = other = False
    for m in modes or []:
        if m not in ACCESS_MODES:
            errs.append(v.unsupported(path, m, ACCESS_MODES))
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(v.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _class_name(name, path: str) -> list[str]:
    """ValidateClassName: a DNS subdomain."""
    if not name:
        return []
    return [v.invalid(path, name, m) for m in v.is_dns1123_subdomain(name)]


def _node_selector_terms(terms, path: str) -> list[str]:
    errs: list[str] = []
    if not terms:
        return [v.required(f"{path}.nodeSelectorTerms", "must have at least one node selector term")]
    for i, t in enumerate(terms):
        t = t if isinstance(t, dict) else {}
        for j, e in enumerate(t.get("matchExpressions") or []):
            ep = f"{path}.nodeSelectorTerms[{i}].matchExpressions[{j}]"
            op = e.get("operator")
            if op in ("In", "NotIn") and not e.get("values"):
                errs.append(v.required(f"{ep}.values",
                                       "must be specified when `operator` is 'In' or 'NotIn'"))
            elif op in ("Exists", "DoesNotExist") and e.get("values"):
                errs.append(v.forbidden(f"{ep}.values", "may not be specified when `operator` "
                                                        "is 'Exists' or 'DoesNotExist'"))
            elif op not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
                errs.append(v.invalid(f"{ep}.operator", op or "", "not a valid selector operator"))
            errs += v.qualified_name(e.get("key") or "", f"{ep}.key")
    return errs


# ---- PersistentVolume -----------------------------------------------------------------------
def pv_spec_errors(spec: dict) -> list[str]:
    """ValidatePersistentVolumeSpec (not inline), in its order."""
    errs = _access_modes(spec.get("accessModes"), "spec.accessModes", "")
    cap = spec.get("capacity") or {}
    if not cap:
        errs.append(v.required("spec.capacity"))
    if "storage" not in cap or len(cap) > 1:
        shown = "{" + ", ".join(f"{k}: {_qstr(q)}" for k, q in sorted(cap.items())) + "}"
        errs.append(f"spec.capacity: Unsupported value: core.ResourceList{shown}: "
                    'supported values: "storage"')
    for name in sorted(cap):
        errs += _positive(cap[name], f"spec.capacity[{name}]")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(v.unsupported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    affinity = spec.get("nodeAffinity")
    has_affinity = False
    if isinstance(affinity, dict):
        req = affinity.get("required")
        if isinstance(req, dict):
            has_affinity = True
            errs += _node_selector_terms(req.get("nodeSelectorTerms"),
                                         "spec.nodeAffinity.required")
    n = 0
    for src in PV_SOURCES:
        if spec.get(src) is None:
            continue
        if n:
            errs.append(v.forbidden(f"spec.{src}", "may not specify more than 1 volume type"))
            continue
        n += 1
        body = spec[src] if isinstance(spec[src], dict) else {}
        if src == "hostPath":
            p = body.get("path") or ""
            if not p:
                errs.append(v.required("spec.hostPath.path"))
            elif ".." in p.split("/"):
                errs.append(v.invalid("spec.hostPath.path", p, "must not contain '..'"))
            t = body.get("type")
            if t and t not in HOST_PATH_TYPES:
                errs.append(v.unsupported("spec.hostPath.type", t, HOST_PATH_TYPES))
        elif src == "local":
            if not body.get("path"):
                errs.append(v.required("spec.local.path"))
            if not has_affinity:
                errs.append(v.required("spec.nodeAffinity", "Local volume requires node affinity"))
        elif src == "nfs":
            if not body.get("server"):
                errs.append(v.required("spec.nfs.server"))
            if not body.get("path"):
                errs.append(v.required("spec.nfs.path"))
        elif src == "csi":
            if not body.get("driver"):
                errs.append(v.required("spec.csi.driver"))
            if not body.get("volumeHandle"):
                errs.append(v.required("spec.csi.volumeHandle"))
    if n == 0:
        errs.append(v.required("spec", "must specify a volume type"))
    errs += _class_name(spec.get("storageClassName"), "spec.storageClassName")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(v.unsupported("spec.volumeMode", mode, VOLUME_MODES))
    return errs


def _default_pv(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    hp = spec.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    if old is None:
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        _protect(obj, PV_PROTECTION)


def _validate_pv(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    errs = pv_spec_errors(spec)
    if old is None:
        return errs
    ospec = old.get("spec") or {}
    src = {k: spec.get(k) for k in PV_SOURCES if spec.get(k) is not None}
    osrc = {k: ospec.get(k) for k in PV_SOURCES if ospec.get(k) is not None}
    if src != osrc:
        errs.append(v.forbidden("spec.persistentvolumesource",
                                "spec.persistentvolumesource is immutable after creation"))
    if spec.get("volumeMode") != ospec.get("volumeMode"):
        errs.append(v.invalid("volumeMode", spec.get("volumeMode"), "field is immutable"))
    if ospec.get("nodeAffinity") is not None and spec.get("nodeAffinity") != ospec["nodeAffinity"]:
        errs.append("nodeAffinity: Invalid value: " + _go_struct(spec.get("nodeAffinity"))
                    + ": field is immutable")
    return errs


def _go_struct(value) -> str:
    return json.dumps(value, separators=(",", ":")) if value is not None else "null"


# ---- PersistentVolumeClaim ------------------------------------------------------------------
def pvc_spec_errors(spec: dict, path: str = "spec") -> list[str]:
    """ValidatePersistentVolumeClaimSpec, in its order."""
    errs = _access_modes(spec.get("accessModes"), f"{path}.accessModes",
                         "at least 1 access mode is required")
    if spec.get("selector") is not None:
        errs += v.label_selector(spec["selector"], f"{path}.selector")
    requests = ((spec.get("resources") or {}).get("requests") or {})
    rpath = f"{path}.resources[storage]"
    if "storage" not in requests:
        errs.append(v.required(rpath))
    else:
        errs += _positive(requests["storage"], rpath)
    name = spec.get("storageClassName")
    if name:
        errs += _class_name(name, f"{path}.storageClassName")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(v.unsupported(f"{path}.volumeMode", mode, VOLUME_MODES))
    for key in ("dataSource", "dataSourceRef"):
        ds = spec.get(key)
        if isinstance(ds, dict):
            if not ds.get("name"):
                errs.append(v.required(f"{path}.{key}.name"))
            if not ds.get("kind"):
                errs.append(v.required(f"{path}.{key}.kind"))
    return errs


_IMMUTABLE_MSG = ("spec is immutable after creation except resources.requests and "
                  "volumeAttributesClassName for bound claims")
_GO_NAMES = {"accessModes": "AccessModes", "selector": "Selector", "resources": "Resources",
             "volumeName": "VolumeName", "storageClassName": "StorageClassName",
             "volumeMode": "VolumeMode", "dataSource": "DataSource",
             "dataSourceRef": "DataSourceRef",
             "volumeAttributesClassName": "VolumeAttributesClassName"}


def _spec_diff(old: dict, new: dict) -> str:
    """A short cmp.Diff-like account of the changed fields."""
    lines = ["  core.PersistentVolumeClaimSpec{"]
    for key, go in _GO_NAMES.items():
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        lines.append(f"- \t{go}: {_go_struct(a)},")
        lines.append(f"+ \t{go}: {_go_struct(b)},")
    lines.append("  }")
    return "\n".join(lines)


def _validate_pvc(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    errs = pvc_spec_errors(spec)
    if old is None:
        return errs
    ospec = dict(old.get("spec") or {})
    nspec = dict(spec)
    if not ospec.get("volumeName"):  # volumeName may be set once (by the binder)
        ospec["volumeName"] = nspec.get("volumeName")
    bound = ((obj.get("status") or {}).get("phase") or (old.get("status") or {}).get("phase")) \
        == "Bound"
    for s in (ospec, nspec):
        s.pop("volumeAttributesClassName", None)
    if bound:
        res = dict(nspec.get("resources") or {})
        req = dict(res.get("requests") or {})
        if "storage" in req or "storage" in ((ospec.get("resources") or {}).get("requests") or {}):
            old_req = (ospec.get("resources") or {}).get("requests") or {}
            if "storage" in old_req:
                req["storage"] = old_req["storage"]
            res["requests"] = req
            nspec["resources"] = res
    ospec = {k: val for k, val in ospec.items() if val is not None}
    nspec = {k: val for k, val in nspec.items() if val is not None}
    if nspec != ospec:
        errs.append(v.forbidden("spec", _IMMUTABLE_MSG + "\n" + _spec_diff(ospec, nspec)))
    new_size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    old_size = (((old.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    cap = ((old.get("status") or {}).get("capacity") or {}).get("storage")
    try:
        if new_size is not None and old_size is not None and \
                quantity.parse_exact(new_size)[0] < quantity.parse_exact(old_size)[0] and \
                (cap is None or quantity.parse_exact(new_size)[0] <= quantity.parse_exact(cap)[0]):
            errs.append(v.forbidden("spec.resources.requests.storage",
                                    "field can not be less than status.capacity"))
    except ValueError:
        pass
    return errs


def _default_pvc(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("volumeMode", "Filesystem")
    if old is None:
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        _protect(obj, PVC_PROTECTION)


def _protect(obj: dict, finalizer: str) -> None:
    """StorageObjectInUseProtection: the protection finalizer on every new claim/volume."""
    md = obj.setdefault("metadata", {})
    fins = md.get("finalizers")
    if not isinstance(fins, list):
        fins = md["finalizers"] = []
    if finalizer not in fins:
        fins.append(finalizer)


def _default_class(store, obj: dict, old: dict | None) -> None:
    """DefaultStorageClass admission: a new claim with no storageClassName (nil, not "")
    and no beta annotation gets the default class, the newest of several."""
    if old is not None:
        return
    spec = obj.setdefault("spec", {})
    anns = (obj.get("metadata") or {}).get("annotations") or {}
    if spec.get("storageClassName") is not None or BETA_CLASS_ANNOTATION in anns:
        return
    classes, _ = store.list("storageclasses")
    defaults = [c for c in classes if is_default_class(c)]
    if defaults:
        newest = max(defaults, key=lambda c: (c["metadata"].get("creationTimestamp") or "",
                                              c["metadata"]["name"]))
        spec["storageClassName"] = newest["metadata"]["name"]


def _resize(store, obj: dict, old: dict | None) -> None:
    """PersistentVolumeClaimResize admission: a bound claim grows only when its class says
    allowVolumeExpansion."""
    if old is None:
        return
    from netsim.api import errors
    new = ((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}
    was = ((old.get("spec") or {}).get("resources") or {}).get("requests") or {}
    try:
        grows = "storage" in new and "storage" in was and \
            quantity.parse_exact(new["storage"])[0] > quantity.parse_exact(was["storage"])[0]
    except ValueError:
        return
    if not grows or (old.get("status") or {}).get("phase") != "Bound":
        return
    name = claim_class(old)
    sc = None
    if name:
        try:
            sc = store.get("storageclasses", name)
        except errors.NotFound:
            sc = None
    if not sc or not sc.get("allowVolumeExpansion"):
        md = obj.get("metadata") or {}
        raise errors.ApiError(
            f'persistentvolumeclaims "{md.get("name", "")}" is forbidden: only dynamically '
            "provisioned pvc can be resized and the storageclass that provisions the pvc must "
            "support resize", code=403, reason="Forbidden")


# ---- StorageClass ---------------------------------------------------------------------------
def _default_sc(obj: dict, old: dict | None) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _validate_sc(obj: dict, old: dict | None) -> list[str]:
    """ValidateStorageClass / ValidateStorageClassUpdate."""
    errs: list[str] = []
    prov = obj.get("provisioner") or ""
    if not prov:
        errs.append(v.required("provisioner"))
    else:
        if len(prov) > 63:
            errs.append(v.too_long("provisioner", 63))
        errs += v.qualified_name(prov.lower(), "provisioner")
    params = obj.get("parameters") or {}
    if len(params) > 512:
        errs.append(v.too_long("parameters", 512))
    size = 0
    for k, val in params.items():
        if not k:
            errs.append(v.invalid("parameters", params, "field can not be empty."))
        size += len(k) + len(str(val))
    if size > 256 * 1024:
        errs.append(v.too_long("parameters", 256 * 1024))
    rp = obj.get("reclaimPolicy")
    if rp and rp not in CLASS_RECLAIM_POLICIES:
        errs.append(v.unsupported("reclaimPolicy", rp, CLASS_RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if not mode:
        errs.append(v.required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        errs.append(v.unsupported("volumeBindingMode", mode, BINDING_MODES))
    for i, term in enumerate(obj.get("allowedTopologies") or []):
        exprs = (term if isinstance(term, dict) else {}).get("matchLabelExpressions") or []
        if not exprs:
            errs.append(v.required(f"allowedTopologies[{i}].matchLabelExpressions",
                                   "must have at least one label selector requirement"))
        for j, e in enumerate(exprs):
            ep = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
            errs += v.qualified_name(e.get("key") or "", f"{ep}.key")
            if not e.get("values"):
                errs.append(v.required(f"{ep}.values",
                                       "must specify as least one value"))
    if old is not None:
        if obj.get("parameters") != old.get("parameters"):
            errs.append(v.forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            errs.append(v.forbidden("provisioner", "updates to provisioner are forbidden."))
        if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
            errs.append(v.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if obj.get("volumeBindingMode") != old.get("volumeBindingMode"):
            errs.append(v.invalid("volumeBindingMode", obj.get("volumeBindingMode") or "",
                                  "field is immutable"))
    return errs


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("PersistentVolume", defaulter=_default_pv, validator=_validate_pv)
    reg.add("PersistentVolumeClaim", defaulter=_default_pvc, validator=_validate_pvc,
            allocator=_default_class)
    reg.add("PersistentVolumeClaim", allocator=_resize)
    reg.add("StorageClass", defaulter=_default_sc, validator=_validate_sc)
