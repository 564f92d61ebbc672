"""The little of Go the patch code needs to give upstream's answers: fmt's %v/%s/%q of
decoded JSON values (error texts quote maps and lists that way), the Go type names of those
values, and sort.SliceStable (the strategic merge's ordering rules use a comparison that is
no strict order, so the result depends on the exact algorithm: insertion sort over blocks of
20, then SymMerge, as Go's sort package does)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any


def type_name(v: Any) -> str:
    """reflect.TypeOf(v).String() for a value decoded from JSON (ints are int64, as the
    apiserver decodes patches preserving ints)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


def hashable(v: Any) -> tuple[str, Any]:
    """A set key with Go's interface equality: true and 1 differ, as int64 1 and float64 1."""
    return type_name(v), v


def _float(f: float) -> str:
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    r = repr(f)
    if "e" in r:
        mant, exp = r.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return r


def v(x: Any) -> str:
    """fmt's %v."""
    if x is None:
        return "<nil>"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return _float(x)
    if isinstance(x, dict):
        return "map[" + " ".join(f"{k}:{v(x[k])}" for k in sorted(x)) + "]"
    if isinstance(x, (list, tuple)):
        return "[" + " ".join(v(i) for i in x) + "]"
    return str(x)


def s(x: Any) -> str:
    """fmt's %s: strings as they are, anything else as Go's %!s(type=value)."""
    if isinstance(x, str):
        return x
    if x is None:
        return "%!s(<nil>)"
    if isinstance(x, dict):
        return "map[" + " ".join(f"{k}:{s(x[k])}" for k in sorted(x)) + "]"
    if isinstance(x, list):
        return "[" + " ".join(s(i) for i in x) + "]"
    return f"%!s({type_name(x)}={v(x)})"


def q(x: str) -> str:
    """fmt's %q of a string (strconv.Quote; JSON's escaping agrees for printable text)."""
    return json.dumps(x, ensure_ascii=False)


def slice_stable(data: list, less: Callable[[Any, Any], bool]) -> None:
    """sort.SliceStable(data, less) in place, step for step as Go does it."""
    n = len(data)

    def lt(i: int, j: int) -> bool:
        return less(data[i], data[j])

    def swap(i: int, j: int) -> None:
        data[i], data[j] = data[j], data[i]

    def insertion(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and lt(j, j - 1):
                swap(j, j - 1)
                j -= 1

    def swap_range(a: int, b: int, n: int) -> None:
        for i in range(n):
            swap(a + i, b + i)

    def rotate(a: int, m: int, b: int) -> None:
        i, j = m - a, b - m
        while i != j:
            if i > j:
                swap_range(m - i, m, j)
                i -= j
            else:
                swap_range(m - i, m + j - i, i)
                j -= i
        swap_range(m - i, m, i)

    def sym_merge(a: int, m: int, b: int) -> None:
        if m - a == 1:
            i, j = m, b
            while i < j:
                h = (i + j) >> 1
                if lt(h, a):
                    i = h + 1
                else:
                    j = h
            for k in range(a, i - 1):
                swap(k, k + 1)
            return
        if b - m == 1:
            i, j = a, m
            while i < j:
                h = (i + j) >> 1
                if not lt(m, h):
                    i = h + 1
                else:
                    j = h
            for k in range(m, i, -1):
                swap(k, k - 1)
            return
        mid = (a + b) >> 1
        nn = mid + m
        if m > mid:
            start, r = nn - b, mid
        else:
            start, r = a, m
        p = nn - 1
        while start < r:
            c = (start + r) >> 1
            if not lt(p - c, c):
                start = c + 1
            else:
                r = c
        end = nn - start
        if start < m < end:
            rotate(start, m, end)
        if a < start < mid:
            sym_merge(a, start, mid)
        if mid < end < b:
            sym_merge(mid, end, b)

    block = 20
    a, b = 0, block
    while b <= n:
        insertion(a, b)
        a, b = b, b + block
    insertion(a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            sym_merge(a, a + block, b)
            a, b = b, b + 2 * block
        m = a + block
        if m < n:
            sym_merge(a, m, n)
        block *= 2


# Go's malloc size classes up to 32 KiB: a grown []interface{} (16 bytes an element) gets
# the capacity its size class holds.
_SIZE_CLASSES = (
    16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536,
    1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192,
    9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576,
    27264, 28672, 32768)


def _grow(old_cap: int, needed: int) -> int:
    """runtime.growslice's new capacity for 16-byte elements."""
    double = old_cap * 2
    if needed > double:
        cap = needed
    elif old_cap < 256:
        cap = double
    else:
        cap = old_cap
        while cap < needed:
            cap += (cap + 3 * 256) >> 2
    size = cap * 16
    for c in _SIZE_CLASSES:
        if c >= size:
            return c // 16
    return -(-size // 8192) * 8192 // 16


class Slice:
    """A Go []interface{}: a window on a backing array that other windows may share. The
    strategic merge's list order depends on it: upstream deletes list items by appending
    around them and merges by appending onto the same array, so a caller still holding the
    original slice sees those writes (and uses it as the server's order)."""

    __slots__ = ("arr", "off", "n", "cap")

    def __init__(self, arr: list, off: int, n: int, cap: int):
        self.arr, self.off, self.n, self.cap = arr, off, n, cap

    @classmethod
    def decoded(cls, items: list) -> Slice:
        """A slice as encoding/json builds it: appended one element at a time."""
        cap = 0
        for i in range(len(items)):
            if i >= cap:
                cap = _grow(cap, i + 1)
        return cls(list(items) + [None] * (cap - len(items)), 0, len(items), cap)

    def list(self) -> list:
        return self.arr[self.off:self.off + self.n]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.arr[self.off + i]

    def __setitem__(self, i: int, v: Any) -> None:
        self.arr[self.off + i] = v

    def head(self, n: int) -> Slice:
        """s[:n]."""
        return Slice(self.arr, self.off, n, self.cap)

    def tail(self, i: int) -> Slice:
        """s[i:]."""
        return Slice(self.arr, self.off + i, self.n - i, self.cap - i)

    def shrink(self, n: int) -> Slice:
        return Slice(self.arr, self.off, n, self.cap)

    def append(self, items: list | Slice) -> Slice:
        """append(s, items...)."""
        items = items.list() if isinstance(items, Slice) else list(items)
        need = self.n + len(items)
        if need <= self.cap:
            for k, v in enumerate(items):
                self.arr[self.off + self.n + k] = v
            return Slice(self.arr, self.off, need, self.cap)
        cap = _grow(self.cap, need)
        arr = self.list() + items
        return Slice(arr + [None] * (cap - need), 0, need, cap)
