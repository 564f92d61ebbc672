"""Kubernetes resource quantities (`100m`, `500Mi`, `1.5Gi`, `2e3`), as the API decodes them.

Lives in the api room because admission validates them; the scheduler imports it from here,
and describe prints them back. Values are exact (Decimal), as resource.Quantity's are, so
`0.1` and `100m` compare equal and describe's sums print the digits kubectl prints.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_QTY = re.compile(r"([+-]?[0-9.]+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)")
FORMAT_MSG = ("quantities must match the regular expression "
              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def valid(q) -> bool:
    s = str(q).strip()
    return _QTY.fullmatch(s) is not None and s not in ("", ".")


def parse_exact(q) -> tuple[Decimal, bool]:
    """A quantity as (exact number of base units, whether its suffix is binary: Ki..Ei).

    The flag is the format Quantity.String() prints a sum back in. ValueError when malformed.
    """
    m = _QTY.fullmatch(str(q).strip())
    if not m:
        raise ValueError(FORMAT_MSG)
    try:
        val = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(FORMAT_MSG) from None
    if m.group(2):
        val = val.scaleb(int(m.group(2)))
    suffix = m.group(3)
    if suffix in _BINARY:
        return val * 2 ** _BINARY[suffix], True
    return val.scaleb(_DECIMAL[suffix]), False


def parse(q) -> float:
    """A quantity as a number of base units; ValueError on a malformed one."""
    return float(parse_exact(q)[0])


def parse_cpu(q) -> float:
    """CPU in millicores."""
    return float(parse_exact(q)[0] * 1000)


def parse_memory(q) -> float:
    return parse(q)


def format_exact(v: Decimal, binary: bool) -> str:
    """Canonical Quantity.String() for the common cases (whole bytes, milli-cores)."""
    if v == 0:
        return "0"
    if binary and v == v.to_integral_value():
        n = int(v)
        for suf, exp in reversed(_BINARY.items()):
            if n % 2**exp == 0:
                return f"{n >> exp}{suf}"
        return str(n)
    milli = v * 1000
    if milli != milli.to_integral_value():
        return f"{int((v * 10**9).to_integral_value())}n"
    if v != v.to_integral_value():
        return f"{int(milli)}m"
    n = int(v)
    for suf in ("E", "P", "T", "G", "M", "k"):
        if n % 10 ** _DECIMAL[suf] == 0:
            return f"{n // 10 ** _DECIMAL[suf]}{suf}"
    return str(n)
