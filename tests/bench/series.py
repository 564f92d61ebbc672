"""The benches' common way to keep the series they print, for the charts of tests/bench/plots.

A bench calls `point(bench, series, x, y, ...)` for each figure of a series it printed.
Nothing is written unless NETSIM_BENCH_SERIES names a folder (`python -m tests.bench.plots`
sets it); there `<bench>.json` gathers that bench's series, each a list of [x, y] points
(a point at the same x replaces the older one) with its axis labels, plus where and when
they were measured. `sizes(default)` lets plots.py ask a bench for several sizes
(NETSIM_BENCH_SIZES="10,20,40") instead of its one default size.
"""

from __future__ import annotations

import json
import os
import platform
import time

SERIES_ENV = "NETSIM_BENCH_SERIES"
SIZES_ENV = "NETSIM_BENCH_SIZES"


def sizes(default: tuple[int, ...]) -> tuple[int, ...]:
    """The sizes a bench runs: NETSIM_BENCH_SIZES (comma separated) or its own default."""
    raw = os.environ.get(SIZES_ENV, "").strip()
    if not raw:
        return default
    return tuple(int(s) for s in raw.split(",") if s.strip())


def machine() -> dict:
    return {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load": round(os.getloadavg()[0], 1)}  # other work on the machine meanwhile


def point(bench: str, series: str, x, y: float, *, x_label: str, y_label: str,
          kind: str = "line") -> None:
    """Record one (x, y) of `series` (kind "line": x numeric; "bar": x a category)."""
    folder = os.environ.get(SERIES_ENV)
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{bench}.json")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        doc = {"bench": bench, "series": {}}
    doc["machine"] = machine()
    doc["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    s = doc["series"].setdefault(series, {"x_label": x_label, "y_label": y_label,
                                          "kind": kind, "points": []})
    s.update(x_label=x_label, y_label=y_label, kind=kind)
    s["points"] = [p for p in s["points"] if p[0] != x] + [[x, y]]
    if kind == "line":
        s["points"].sort(key=lambda p: p[0])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def load(folder: str, bench: str) -> dict | None:
    try:
        with open(os.path.join(folder, f"{bench}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
