"""Pod resource requests for the scheduler; quantity parsing itself is netsim.api.quantity's."""

from __future__ import annotations

from netsim.api.quantity import parse_cpu, parse_memory

__all__ = ["pod_requests"]


def pod_requests(pod: dict) -> tuple[float, float]:
    """(millicpu, bytes) requested by a pod's containers (requests default to limits)."""
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        try:
            if "cpu" in req:
                cpu += parse_cpu(req["cpu"])
            if "memory" in req:
                mem += parse_memory(req["memory"])
        except ValueError:
            pass
    return cpu, mem
