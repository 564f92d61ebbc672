"""Reading fields of objects from a cache that admission may never have seen.

The API server decodes every write into its Go type, so upstream's controllers never meet
a Node whose `spec` is missing-and-null or whose conditions are a string. netsim's store
can hold such objects (older versions, writes around admission), and one of them must not
stop a controller serving every other object: controllers read the structural fields
through these, which see an absent, null or wrongly-typed field as empty (what an omitted
field means in Kubernetes).
"""

from __future__ import annotations

from typing import Any


def obj_at(obj: Any, *keys: str) -> dict:
    """obj[k1][k2]..., or {} where any step is missing or not an object."""
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj if isinstance(obj, dict) else {}


def dicts_at(obj: Any, *keys: str) -> list[dict]:
    """The list at obj[k1]...[kn], keeping only its objects; [] where it is no list."""
    *parents, last = keys
    value = obj_at(obj, *parents).get(last)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
