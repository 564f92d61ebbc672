"""`get pvc`, `get pv` and `get sc` rows: printPersistentVolumeClaim, printPersistentVolume
and printStorageClass of kubernetes ``pkg/printers/internalversion/printers.go`` (1.37)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netsim.api.kinds.storage import (
    access_modes_string,
    claim_class,
    is_default_class,
    volume_class,
)
from netsim.api.printing.duration import age
from netsim.api.printing.format import meta_of, spec_of, status_of

UNSET = "<unset>"
PVC_COLUMNS = ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS",
               "VOLUMEATTRIBUTESCLASS", "AGE"]
PV_COLUMNS = ["NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
              "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
WIDE_COLUMNS = ["VOLUMEMODE"]
SC_COLUMNS = ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
              "ALLOWVOLUMEEXPANSION", "AGE"]


def _phase(obj: Mapping) -> str:
    if meta_of(obj).get("deletionTimestamp"):
        return "Terminating"
    return str(status_of(obj).get("phase") or "")


def _opt(value) -> str:
    return UNSET if value is None else str(value)


def pvc_row(pvc: Mapping, now: datetime) -> list[str]:
    """printPersistentVolumeClaim: capacity and access modes only once bound to a volume."""
    meta, spec, status = meta_of(pvc), spec_of(pvc), status_of(pvc)
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes_string(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage") or "0")
    return [meta.get("name", ""), _phase(pvc), spec.get("volumeName") or "", capacity, modes,
            claim_class(pvc), _opt(spec.get("volumeAttributesClassName")),
            age(meta.get("creationTimestamp"), now), _opt(spec.get("volumeMode"))]


def pv_row(pv: Mapping, now: datetime) -> list[str]:
    """printPersistentVolume: CLAIM is namespace/name of the claimRef."""
    meta, spec, status = meta_of(pv), spec_of(pv), status_of(pv)
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if spec.get("claimRef") else ""
    return [meta.get("name", ""), str((spec.get("capacity") or {}).get("storage") or "0"),
            access_modes_string(spec.get("accessModes")),
            str(spec.get("persistentVolumeReclaimPolicy") or ""), _phase(pv), claim,
            volume_class(pv), _opt(spec.get("volumeAttributesClassName")),
            str(status.get("reason") or ""), age(meta.get("creationTimestamp"), now),
            _opt(spec.get("volumeMode"))]


def sc_row(sc: Mapping, now: datetime) -> list[str]:
    """printStorageClass: `(default)` after the default's name; Delete, Immediate and false
    when unset."""
    meta = meta_of(sc)
    name = meta.get("name", "") + (" (default)" if is_default_class(sc) else "")
    return [name, str(sc.get("provisioner") or ""), str(sc.get("reclaimPolicy") or "Delete"),
            str(sc.get("volumeBindingMode") or "Immediate"),
            "true" if sc.get("allowVolumeExpansion") else "false",
            age(meta.get("creationTimestamp"), now)]
