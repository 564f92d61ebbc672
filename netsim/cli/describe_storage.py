"""`describe pvc|pv|sc`: describePersistentVolumeClaim, describePersistentVolume and
describeStorageClass of kubectl's ``pkg/describe/describe.go``, on netsim.cli.describe's
writer."""

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
from netsim.api.printing.format import NONE, meta_of, spec_of, status_of
from netsim.cli.describe import (
    _annotations_multiline,
    _labels_multiline,
    _PrefixWriter,
    describe_events,
)


def _finalizers(meta: Mapping) -> str:
    """%v of a []string: `[a b]`."""
    return "[" + " ".join(meta.get("finalizers") or []) + "]"


def _format_labels(m: Mapping | None) -> str:
    """labels.FormatLabels: sorted k=v joined by commas, `<none>` when empty."""
    if not m:
        return NONE
    return ",".join(f"{k}={m[k]}" for k in sorted(m))


def _status(obj: Mapping, now: datetime) -> str:
    ts = meta_of(obj).get("deletionTimestamp")
    if ts:
        return f"Terminating (lasts {age(ts, now)})"
    return str(status_of(obj).get("phase") or "")


def claim_users(pvc: Mapping, pods: list[Mapping]) -> list[str]:
    """getPodsForPVC: the namespace's pods with a volume naming the claim."""
    name = meta_of(pvc).get("name")
    out = []
    for p in pods:
        for vol in (p.get("spec") or {}).get("volumes") or []:
            if (vol.get("persistentVolumeClaim") or {}).get("claimName") == name:
                out.append(meta_of(p).get("name", ""))
                break
    return sorted(out)


def describe_pvc(pvc: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(pvc), spec_of(pvc), status_of(pvc)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"StorageClass:\t{claim_class(pvc)}\n")
    w.write(0, f"Status:\t{_status(pvc, now)}\n")
    w.write(0, f"Volume:\t{spec.get('volumeName') or ''}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Finalizers:\t{_finalizers(meta)}\n")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes_string(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage") or "0")
    w.write(0, f"Capacity:\t{capacity}\n")
    w.write(0, f"Access Modes:\t{modes}\n")
    if spec.get("volumeMode") is not None:
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    users = claim_users(pvc, related.get("pods") or [])
    w.write(0, "Used By:\t")
    if not users:
        w.line(NONE)
    for i, name in enumerate(users):
        w.write(0, ("\t" if i else "") + f"{name}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()


def _node_affinity(w: _PrefixWriter, affinity: Mapping | None) -> None:
    """printVolumeNodeAffinity."""
    w.write(0, "Node Affinity:\t")
    req = (affinity or {}).get("required")
    if not req:
        w.line(NONE)
        return
    w.line("")
    w.write(1, "Required Terms:\t")
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        w.line(NONE)
        return
    w.line("")
    for i, term in enumerate(terms):
        w.write(2, f"Term {i}:\t")
        exprs = term.get("matchExpressions") or []
        if not exprs:
            w.line(NONE)
            continue
        for j, e in enumerate(exprs):
            if j:
                w.write(2, "\t")
            text = f"{e.get('key', '')} {str(e.get('operator', '')).lower()}"
            if e.get("values"):
                text += " [" + ", ".join(e["values"]) + "]"
            w.write(0, text + "\n")


def _source(w: _PrefixWriter, spec: Mapping) -> None:
    w.write(0, "Source:\n")
    if spec.get("hostPath") is not None:
        hp = spec["hostPath"]
        w.write(2, "Type:\tHostPath (bare host directory volume)\n"
                f"    Path:\t{hp.get('path', '')}\n"
                f"    HostPathType:\t{hp.get('type') if hp.get('type') is not None else NONE}\n")
    elif spec.get("local") is not None:
        w.write(2, "Type:\tLocalVolume (a persistent volume backed by local storage on a node)\n"
                f"    Path:\t{spec['local'].get('path', '')}\n")
    elif spec.get("nfs") is not None:
        nfs = spec["nfs"]
        w.write(2, "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n"
                f"    Server:\t{nfs.get('server', '')}\n"
                f"    Path:\t{nfs.get('path', '')}\n"
                f"    ReadOnly:\t{'true' if nfs.get('readOnly') else 'false'}\n")


def describe_pv(pv: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(pv), spec_of(pv), status_of(pv)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Finalizers:\t{_finalizers(meta)}\n")
    w.write(0, f"StorageClass:\t{volume_class(pv)}\n")
    w.write(0, f"Status:\t{_status(pv, now)}\n")
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    w.write(0, f"Claim:\t{claim}\n")
    w.write(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy') or ''}\n")
    w.write(0, f"Access Modes:\t{access_modes_string(spec.get('accessModes'))}\n")
    if spec.get("volumeMode") is not None:
        w.write(0, f"VolumeMode:\t{spec['volumeMode']}\n")
    w.write(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage') or '0'}\n")
    _node_affinity(w, spec.get("nodeAffinity"))
    w.write(0, f"Message:\t{status.get('message') or ''}\n")
    _source(w, spec)
    describe_events(w, related.get("events", []), now)
    return w.text()


def describe_sc(sc: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta = meta_of(sc)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"IsDefaultClass:\t{'Yes' if is_default_class(sc) else 'No'}\n")
    w.write(0, f"Annotations:\t{_format_labels(meta.get('annotations'))}\n")
    w.write(0, f"Provisioner:\t{sc.get('provisioner') or ''}\n")
    w.write(0, f"Parameters:\t{_format_labels(sc.get('parameters'))}\n")
    allow = sc.get("allowVolumeExpansion")
    w.write(0, "AllowVolumeExpansion:\t"
            + ("<unset>" if allow is None else ("True" if allow else "False")) + "\n")
    opts = sc.get("mountOptions") or []
    if not opts:
        w.write(0, "MountOptions:\t<none>\n")
    else:
        w.write(0, "MountOptions:\n")
        for o in opts:
            w.write(1, f"{o}\n")
    if sc.get("reclaimPolicy") is not None:
        w.write(0, f"ReclaimPolicy:\t{sc['reclaimPolicy']}\n")
    if sc.get("volumeBindingMode") is not None:
        w.write(0, f"VolumeBindingMode:\t{sc['volumeBindingMode']}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()
