"""Ages and durations exactly as kubectl prints them.

Ports of apimachinery's ``duration.HumanDuration`` / ``ShortHumanDuration`` and
kubectl's ``translateTimestampSince``: the AGE column, ``89s (x2 over 2d)`` in
describe's event table and ``3 (5m ago)`` in RESTARTS all come from here, so a
one-second drift from upstream would show in every table.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from netsim.api.timeutil import parse_rfc3339

__all__ = [
    "age",
    "human_duration",
    "rfc1123z",
    "short_human_duration",
    "since_seconds",
]


def _go_int(x: float) -> int:
    """Go's int(float64): truncation toward zero."""
    return math.trunc(x)


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    """``2m5s``, or ``2m`` when the smaller unit is zero."""
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``: 45s, 2m5s, 11m, 179m, 7h59m, 37h, 2d12h, 23d.

    Precision shrinks as the duration grows so the column stays short, and the
    ranges overlap on purpose (``119s`` but ``2m``; ``179m`` but ``3h``).
    """
    secs = _go_int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        return _pair(minutes, "m", secs % 60, "s")
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _pair(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """apimachinery ``duration.ShortHumanDuration``: one unit only (45s, 2m, 5h, 3d, 1y)."""
    secs = _go_int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60:
        return f"{secs}s"
    minutes = _go_int(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = _go_int(seconds / 3600)
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{_go_int(seconds / 3600 / 24 / 365)}y"


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def since_seconds(ts: str | None, now: datetime) -> float | None:
    """Seconds elapsed from ``ts`` to ``now`` (None when ``ts`` is unset)."""
    t = parse_rfc3339(ts)
    if t is None:
        return None
    return (_aware(now) - t).total_seconds()


def age(timestamp_rfc3339: str | None, now: datetime) -> str:
    """kubectl's ``translateTimestampSince``: HumanDuration since the stamp, ``<unknown>`` if unset."""
    secs = since_seconds(timestamp_rfc3339, now)
    if secs is None:
        return "<unknown>"
    return human_duration(secs)


def rfc1123z(ts: str | None) -> str:
    """Go's ``time.RFC1123Z`` layout (``Mon, 02 Jan 2006 15:04:05 -0700``), as describe prints.

    kubectl formats in the local zone of the machine it runs on; netsim prints UTC
    so output does not depend on the host's TZ. A zero time prints as Go's zero time.
    """
    t = parse_rfc3339(ts)
    if t is None:
        return "Mon, 01 Jan 0001 00:00:00 +0000"
    day = _DAYS[t.weekday()]
    mon = _MONTHS[t.month - 1]
    return f"{day}, {t.day:02d} {mon} {t.year:04d} {t:%H:%M:%S} +0000"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
