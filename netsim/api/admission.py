"""Admission: defaulting, validation and allocation done by the API server on every write.

Each kind registers a defaulter / validator in netsim/api/kinds/; errors carry Kubernetes'
field paths and wording, e.g. `The Pod "x" is invalid: spec.containers: Required value`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from netsim.api import errors

# defaulter(obj, old) -> None (mutates); validator(obj, old) -> list of causes
Defaulter = Callable[[dict, "dict | None"], None]
Validator = Callable[[dict, "dict | None"], list]
Allocator = Callable[[object, dict, "dict | None"], None]   # (store, obj, old)

DEFAULTERS: dict[str, list[Defaulter]] = {}
VALIDATORS: dict[str, list[Validator]] = {}
ALLOCATORS: dict[str, list[Allocator]] = {}

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
               "start with an alphabetic character, and end with an alphanumeric character "
               "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')")

# Kinds whose names must be DNS-1123 labels (not subdomains), and DNS-1035 for Services.
_LABEL_NAMED = {"Namespace"}
_DNS1035_NAMED = {"Service"}


def register(kind: str, *, defaulter: Defaulter | None = None,
             validator: Validator | None = None, allocator: Allocator | None = None) -> None:
    if defaulter:
        DEFAULTERS.setdefault(kind, []).append(defaulter)
    if validator:
        VALIDATORS.setdefault(kind, []).append(validator)
    if allocator:
        ALLOCATORS.setdefault(kind, []).append(allocator)


def validate_metadata(obj: dict) -> list[str]:
    md = obj.get("metadata") or {}
    name = md.get("name", "")
    kind = obj.get("kind", "")
    causes = []
    if kind in _DNS1035_NAMED:
        if not DNS1035_LABEL.match(name) or len(name) > 63:
            causes.append(f'metadata.name: Invalid value: "{name}": {DNS1035_MSG}')
    elif kind in _LABEL_NAMED:
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append(f'metadata.name: Invalid value: "{name}": {LABEL_MSG}')
    elif kind != "Event" and (not DNS1123_SUBDOMAIN.match(name) or len(name) > 253):
        causes.append(f'metadata.name: Invalid value: "{name}": {SUBDOMAIN_MSG}')
    for v in (md.get("labels") or {}).values():
        if not isinstance(v, str):
            causes.append(f"metadata.labels: Invalid value: {v!r}: must be a string")
    return causes


def admit(store, operation: str, obj: dict, old: dict | None) -> dict:
    """The Store's admission hook: default, validate (all or nothing), then allocate."""
    import netsim.api.kinds  # noqa: F401  (registers every kind)

    kind = obj.get("kind", "")
    for d in DEFAULTERS.get(kind, []):
        d(obj, old)
    causes = validate_metadata(obj) if operation == "CREATE" else []
    for v in VALIDATORS.get(kind, []):
        causes.extend(v(obj, old))
    if causes:
        raise errors.invalid(kind, (obj.get("metadata") or {}).get("name", ""), causes)
    for a in ALLOCATORS.get(kind, []):
        a(store, obj, old)
    return obj
