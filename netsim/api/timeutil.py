"""RFC 3339 time stamps as the API writes them (metav1.Time and metav1.MicroTime).

One place for the layout every room stamps and reads: ``2026-11-25T17:43:02Z`` (Time,
whole seconds, what creationTimestamp, conditions and deletionTimestamp carry) and
``2026-11-25T17:43:02.123456Z`` (MicroTime, what an Event's eventTime carries).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["format_rfc3339", "now_rfc3339", "now_rfc3339_micro", "parse_rfc3339",
           "rfc3339_seconds"]

_TIME = "%Y-%m-%dT%H:%M:%SZ"
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_rfc3339(t: float | datetime) -> str:
    """metav1.Time's JSON form of a datetime or a Unix time: UTC, whole seconds, ``Z``."""
    if not isinstance(t, datetime):
        t = datetime.fromtimestamp(t, timezone.utc)
    elif t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime(_TIME)


def now_rfc3339(offset_s: float = 0) -> str:
    """Now (plus ``offset_s`` seconds) as metav1.Time."""
    return format_rfc3339(datetime.now(timezone.utc) + timedelta(seconds=offset_s))


def now_rfc3339_micro() -> str:
    """Now as metav1.MicroTime (microseconds)."""
    return datetime.now(timezone.utc).strftime(_MICRO)


def parse_rfc3339(ts: str | None) -> datetime | None:
    """An aware UTC datetime from an RFC 3339 stamp (``Z`` or an offset, any fraction).

    None for None or "" (Kubernetes' zero time); ValueError for a malformed stamp.
    """
    if not ts:
        return None
    if not isinstance(ts, str):
        raise ValueError(f"not an RFC 3339 time: {ts!r}")
    s = ts.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # Python < 3.11 only accepts 3 or 6 fractional digits: normalise to 6.
    if "." in s:
        head, _, rest = s.partition(".")
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + (rest[:i] + "000000")[:6] + rest[i:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def rfc3339_seconds(ts: str | None) -> float | None:
    """A stamp as a Unix time; None when it is unset or cannot be read."""
    try:
        t = parse_rfc3339(ts)
    except ValueError:
        return None
    return None if t is None else t.timestamp()
