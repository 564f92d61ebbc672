"""The kubelet eviction manager's local-storage check (pkg/kubelet/eviction,
localStorageEviction / emptyDirLimitEviction): a pod whose disk emptyDir holds more than
its sizeLimit is evicted, status Failed with reason Evicted and upstream's message
(`Usage of EmptyDir volume "x" exceeds the limit "1Mi". `), a Warning Evicted event, its
containers killed at once and not restarted. Memory emptyDirs are tmpfs mounted with
size=<sizeLimit>, so the kernel already refuses what would exceed them.

Usage is counted as du counts it (allocated blocks, each inode once), every
NETSIM_EVICTION_INTERVAL seconds (10, the eviction manager's monitoring interval)."""

from __future__ import annotations

import contextlib
import os

from netsim.api import quantity
from netsim.kubelet import volumes

INTERVAL = float(os.environ.get("NETSIM_EVICTION_INTERVAL", "10"))
EVICTED = "Evicted"
MESSAGE = 'Usage of EmptyDir volume "{}" exceeds the limit "{}". '


def disk_usage(path: str) -> int:
    """Bytes allocated below `path` (du's st_blocks * 512, hard links once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(d, n))
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _limit(vol: dict) -> tuple[float, str] | None:
    src = vol.get("emptyDir")
    if not isinstance(src, dict) or src.get("medium") == "Memory" or not src.get("sizeLimit"):
        return None
    try:
        exact, binary = quantity.parse_exact(src["sizeLimit"])
    except ValueError:
        return None
    if exact <= 0:
        return None
    return float(exact), quantity.format_exact(exact, binary)


def over_limit(pod: dict, pdir: str, usage=disk_usage) -> str | None:
    """The eviction message for the first disk emptyDir of the pod over its sizeLimit."""
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        lim = _limit(vol)
        if lim is None:
            continue
        path = volumes.volume_dir(pdir, vol)
        if os.path.isdir(path) and usage(path) > lim[0]:
            return MESSAGE.format(vol.get("name", ""), lim[1])
    return None


def is_evicted(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == EVICTED


def evicted_status(old: dict, message: str, now: str) -> dict:
    """evictPod's status: Failed, reason Evicted, the message; the DisruptionTarget
    condition (TerminationByKubelet) and Ready/ContainersReady False (PodFailed)."""
    new = dict(old or {})
    conds = [dict(c) for c in new.get("conditions") or []
             if c.get("type") != "DisruptionTarget"]
    for c in conds:
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") != "False":
            c.update({"status": "False", "reason": "PodFailed", "lastTransitionTime": now})
            c.pop("message", None)
    conds.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": now, "reason": "TerminationByKubelet",
                  "message": message})
    new.update({"phase": "Failed", "reason": EVICTED, "message": message, "conditions": conds})
    return new
