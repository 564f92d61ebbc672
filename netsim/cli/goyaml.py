"""How kubectl's YAML encoder (sigs.k8s.io/yaml over its goyaml.v2 fork) reads a plain
scalar, so that `-o yaml` quotes exactly the strings kubectl quotes.

go-yaml double-quotes a string when its plain form would resolve to another tag
(encode.go stringv: `resolve("", s)` is not !!str, or it is a base-60 float). Its resolver
(resolve.go) is YAML 1.1's with Go's number parsing, which is not PyYAML's:

- the words: y Y yes Yes YES on On ON true True TRUE, n N no No NO off Off OFF false False
  FALSE, null Null NULL ~ and the empty string, .inf/.nan in their three spellings, signed;
- for a first character that is a digit or a sign: a timestamp (2006-1-2, with a time
  2006-1-2T15:4:5.999999999Z07:00, `t` or a space between), then, with every `_` removed,
  an integer as Go's strconv.ParseInt/ParseUint(s, 0, 64) read it (0x, 0o, 0b and leading-0
  octal, in range), a float matching `[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`
  (finite), or -?0b binary;
- for a leading `.`: a float (".5").

Everything else is a string, so `=`, `<<` and `2001-13-01` stay plain where PyYAML would
quote them, and `y`, `n`, `1e3`, `0o17`, `+.5` are quoted where PyYAML would not.

Mapping keys come in go-yaml's order (sorter.go), which compares digit runs as numbers:
`k2` before `k10` (PyYAML's sort_keys: `k10` first).
"""

from __future__ import annotations

import datetime
import functools
import math
import re

STR, BOOL, NULL, INT, FLOAT, TIMESTAMP = ("str", "bool", "null", "int", "float", "timestamp")

_WORDS = {
    **dict.fromkeys("y Y yes Yes YES on On ON true True TRUE".split(), BOOL),
    **dict.fromkeys("n N no No NO off Off OFF false False FALSE".split(), BOOL),
    **dict.fromkeys("null Null NULL ~".split(), NULL),
    **dict.fromkeys([s + w for s in ("", "+", "-") for w in (".inf", ".Inf", ".INF")], FLOAT),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], FLOAT),
}
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:([Tt ])(\d{1,2}):(\d{1,2}):(\d{1,2})"
                        r"(?:\.\d{1,9})?(Z|[-+]\d{2}:\d{2})?)?")


def _go_int(s: str) -> bool:
    m = _GO_INT.fullmatch(s)
    if not m:
        return False
    digits = m.group(2)
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "0123456789":
        digits = "0o" + digits[1:]  # Go's leading-zero octal
    v = int(digits, 0)
    if m.group(1) == "-":
        return v <= 1 << 63
    return v < 1 << 64 if not m.group(1) else v < 1 << 63  # ParseUint takes no sign


def _timestamp(s: str) -> bool:
    m = _TIMESTAMP.fullmatch(s)
    if not m:
        return False
    y, mo, d, sep, h, mi, sec, tz = m.groups()
    if sep is not None and (tz is None) != (sep == " "):
        return False  # the T/t layouts end with Z07:00, the space one has no zone
    try:
        datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0))
    except ValueError:
        return False
    return tz is None or tz == "Z" or (int(tz[1:3]) < 24 and int(tz[4:]) < 60)


def resolve(s: str) -> str:
    """The tag go-yaml gives `s` written plain (STR, BOOL, NULL, INT, FLOAT, TIMESTAMP)."""
    if s == "":
        return NULL
    if s in _WORDS:
        return _WORDS[s]
    first = s[0]
    if first == ".":
        return FLOAT if re.fullmatch(r"\.[0-9]+([eE][-+]?[0-9]+)?", s) else STR
    if not (first.isdigit() and first.isascii()) and first not in "+-":
        return STR
    if first.isdigit() and _timestamp(s):
        return TIMESTAMP
    plain = s.replace("_", "")
    if _go_int(plain):
        return INT
    if _FLOAT.fullmatch(plain) and math.isfinite(float(plain)):
        return FLOAT
    if re.fullmatch(r"-?0b[01]+", plain):
        return INT
    return STR


def needs_quotes(s: str) -> bool:
    """go-yaml's stringv: a string that would not read back as a string (or a base-60
    float) is written double-quoted."""
    return resolve(s) != STR or bool(_BASE60.fullmatch(s))


def key_less(a: str, b: str) -> bool:
    """go-yaml's map key order (sorter.go keyList.Less) for two string keys: runs of digits
    compare as numbers ("k2" before "k10"), a letter after a digit run comes before a
    digit, otherwise rune order; a prefix comes first."""
    digits = False
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            digits = a[i].isdigit()
            continue
        al, bl = a[i].isalpha(), b[i].isalpha()
        if al and bl:
            return a[i] < b[i]
        if al or bl:
            return al if digits else bl
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdigit():
            an, ai = an * 10 + int(a[ai]), ai + 1
        bi = i
        while bi < len(b) and b[bi].isdigit():
            bn, bi = bn * 10 + int(b[bi]), bi + 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def sorted_keys(obj):
    """`obj` with every mapping's keys in go-yaml's order (key_less), for `-o yaml`."""
    if isinstance(obj, dict):
        keys = sorted(obj, key=functools.cmp_to_key(
            lambda x, y: -1 if key_less(str(x), str(y)) else 1 if key_less(str(y), str(x)) else 0))
        return {k: sorted_keys(obj[k]) for k in keys}
    if isinstance(obj, list):
        return [sorted_keys(v) for v in obj]
    return obj
