"""Admission: decoding checks, defaulting, validation and allocation done on every write.

The order is the apiserver's: a body its Go types cannot hold is a 400 before anything
else looks at it (the Store runs `types.check_decodes` first on every write path, before
it reads metadata itself); then defaults; then every validation cause at once (all or nothing,
kubectl's `The Pod "x" is invalid: spec.containers[0].name: Invalid value: ...`); then the
allocators, which may look at the store. Each kind's hooks live in netsim/api/kinds and
are registered explicitly, with the cluster's settings, when an `Admission` is built:

    store = Store(path, admission=Admission(ClusterSettings.parse(cidr, "30000-32767")))
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

from netsim.api import errors
from netsim.api import validation as v
from netsim.api.kinds import DEFAULT_KINDS
from netsim.api.kinds.base import ClusterSettings, Registry, validate_object_meta
from netsim.api.kinds.types import decode_errors
from netsim.api.resources import BY_KIND

log = logging.getLogger("netsim.admission")

__all__ = ["Admission", "ClusterSettings", "admit"]


class Admission:
    """The Store's admission hook: `admission(store, operation, obj, old) -> obj`."""

    def __init__(self, settings: ClusterSettings | None = None,
                 kinds: Iterable = DEFAULT_KINDS):
        self.settings = settings or ClusterSettings()
        self.registry = Registry()
        for module in kinds:
            module.register(self.registry, self.settings)

    def name_fn(self, kind: str):
        return self.registry.name_fns.get(kind, v.name_is_dns_subdomain)

    def __call__(self, store, operation: str, obj: dict, old: dict | None) -> dict:
        kind = obj.get("kind", "")
        res = BY_KIND.get(kind)
        version = str(obj.get("apiVersion") or (res.version if res else "v1")).rsplit("/")[-1]
        reg = self.registry
        name = (obj.get("metadata") or {}).get("name", "")
        try:
            for d in reg.defaulters.get(kind, []):
                d(obj, old)
            causes = validate_object_meta(obj, old if operation == "UPDATE" else None,
                                          self.name_fn(kind), bool(res and res.namespaced))
            for val in reg.validators.get(kind, []):
                causes.extend(val(obj, old))
        except (TypeError, AttributeError, KeyError, ValueError) as e:
            # A shape types.py does not describe: still the client's fault, never a 500.
            log.exception("admission of %s %r failed on an unexpected shape", kind, name)
            raise errors.BadRequest(f'{kind} in version "{version}" cannot be handled as a '
                                    f"{kind}: {e}") from e
        causes = list(dict.fromkeys(causes))  # ErrorList.ToAggregate drops repeats
        if causes:
            raise invalid(kind, name, causes)
        for a in reg.allocators.get(kind, []):
            a(store, obj, old)
        return obj


    def problems(self, obj: dict) -> list[str]:
        """What admission would refuse in `obj` as a new object, without touching it or a
        store: the decoder's complaint or every validation cause; [] when it is fine.
        For consumers that meet an object written around admission (kube-proxy, DNS,
        ingress): they can skip it with the API's own words instead of re-implementing them."""
        obj = copy.deepcopy(obj)
        kind = obj.get("kind", "")
        err = decode_errors(obj)
        if err:
            return [err]
        res = BY_KIND.get(kind)
        try:
            for d in self.registry.defaulters.get(kind, []):
                d(obj, None)
            causes = validate_object_meta(obj, None, self.name_fn(kind),
                                          bool(res and res.namespaced))
            for val in self.registry.validators.get(kind, []):
                causes.extend(val(obj, None))
        except errors.ApiError as e:
            return [e.message]
        except (TypeError, AttributeError, KeyError, ValueError) as e:
            return [f"{type(e).__name__}: {e}"]
        return list(dict.fromkeys(causes))


def invalid(kind: str, name: str, causes: list[str]) -> errors.Invalid:
    """errors.invalid with the name as NewInvalid prints it (%q: `"web\\n"`, not a raw
    newline that would end kubectl's line)."""
    err = errors.invalid(kind, name, causes)
    err.message = err.message.replace(f'The {kind} "{name}" is', f"The {kind} {v.go_quote(name)} is", 1)
    err.args = (err.message,)
    return err


# The default cluster's admission (10.96.0.0/12, 30000-32767): what unit tests and an
# in-memory render use. A control plane builds its own from the cluster's settings.
admit = Admission()
