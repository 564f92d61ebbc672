"""PodDisruptionBudgets (policy/v1): defaults and validation as the apiserver's.

Validation is pkg/apis/policy/validation ValidatePodDisruptionBudgetSpec in its order:
minAvailable and maxUnavailable not both, each a non-negative int or a percent of at most
100%, the selector, unhealthyPodEvictionPolicy one of IfHealthyBudget/AlwaysAllow. The
strategy's PrepareForCreate empties the status (its counters then read 0, as `kubectl get
pdb` shows before the disruption controller's first pass).
"""

from __future__ import annotations

import json

from netsim.api import validation as v
from netsim.api.kinds.apps import _percent_over_100, _validate_int_or_percent
from netsim.api.kinds.base import ClusterSettings, Registry

UNHEALTHY_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
# PodDisruptionBudgetStatus' counters have no omitempty: an empty status prints them as 0
EMPTY_STATUS = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                "expectedPods": 0}


def _go_intstr(value) -> str:
    """A *intstr.IntOrString field of %#v (the value itself, as the pointer's target)."""
    if value is None:
        return "(*intstr.IntOrString)(nil)"
    if isinstance(value, str):
        return f'(*intstr.IntOrString){{Type:1, IntVal:0, StrVal:{json.dumps(value)}}}'
    return f'(*intstr.IntOrString){{Type:0, IntVal:{value}, StrVal:""}}'


def spec_errors(spec: dict) -> list[str]:
    errs: list[str] = []
    lo, hi = spec.get("minAvailable"), spec.get("maxUnavailable")
    if lo is not None and hi is not None:
        errs.append("spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:"
                    f"{_go_intstr(lo)}, Selector:(*v1.LabelSelector)(...), MaxUnavailable:"
                    f"{_go_intstr(hi)}, UnhealthyPodEvictionPolicy:(*policy."
                    "UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable "
                    "cannot be both set")
    for key, value in (("minAvailable", lo), ("maxUnavailable", hi)):
        if value is not None:
            errs += _validate_int_or_percent(value, f"spec.{key}")
            errs += _percent_over_100(value, f"spec.{key}")
    errs += v.label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POLICIES:
        errs.append(v.unsupported("spec.unhealthyPodEvictionPolicy", policy,
                                  UNHEALTHY_POLICIES))
    return errs


def _default(obj: dict, old: dict | None) -> None:
    if old is None:
        obj["status"] = dict(EMPTY_STATUS)
    elif not isinstance(obj.get("status"), dict):
        obj["status"] = dict(EMPTY_STATUS)
    else:
        for k, val in EMPTY_STATUS.items():
            obj["status"].setdefault(k, val)


def _validate(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    return spec_errors(spec)


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("PodDisruptionBudget", defaulter=_default, validator=_validate)
