"""Kubernetes resource quantities (`100m`, `500Mi`, `1.5Gi`, `2e3`), as the API decodes them.

Lives in the api room because admission validates them; the scheduler imports it from here.
"""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "m": 10**-3, "u": 10**-6, "n": 10**-9}
_QTY = re.compile(r"([+-]?[0-9.]+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)")
FORMAT_MSG = ("quantities must match the regular expression "
              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def valid(q) -> bool:
    s = str(q).strip()
    return _QTY.fullmatch(s) is not None and s not in ("", ".")


def parse(q) -> float:
    """A quantity as a number of base units; ValueError on a malformed one."""
    m = _QTY.fullmatch(str(q).strip())
    if not m:
        raise ValueError(FORMAT_MSG)
    val = float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1)
    return val * _SUFFIX[m.group(3)]


def parse_cpu(q) -> float:
    """CPU in millicores."""
    return parse(q) * 1000


def parse_memory(q) -> float:
    return parse(q)
