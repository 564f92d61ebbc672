"""Pod resource requests for the scheduler; quantity parsing itself is the API's."""

from __future__ import annotations

from netsim.api.quantity import parse, parse_cpu, parse_memory, valid

__all__ = ["parse", "parse_cpu", "parse_memory", "pod_requests", "valid"]


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
