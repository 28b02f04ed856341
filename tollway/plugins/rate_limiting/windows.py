"""Fixed, calendar-aligned UTC windows (Kong's kong/tools/timestamp.lua + expiration.lua)."""

from __future__ import annotations

import calendar
import time

PERIODS = ("second", "minute", "hour", "day", "month", "year")
# window lengths for TTLs and RateLimit-Reset (month 30 d, year 365 d, as Kong)
EXPIRATION = {"second": 1, "minute": 60, "hour": 3600, "day": 86400,
              "month": 2592000, "year": 31536000}

_cal: dict[int, tuple[int, int]] = {}  # day start -> (month start, year start)


_last: tuple[int, dict[str, int]] = (-1, {})


def window_starts(now: int) -> dict[str, int]:
    """Window start (unix seconds) of every period for `now`; the same dict is returned for
    the same second (callers must not change it)."""
    global _last
    last = _last
    if last[0] == now:
        return last[1]
    day = now - now % 86400
    cal = _cal.get(day)
    if cal is None:
        tm = time.gmtime(now)
        cal = (calendar.timegm((tm.tm_year, tm.tm_mon, 1, 0, 0, 0)),
               calendar.timegm((tm.tm_year, 1, 1, 0, 0, 0)))
        if len(_cal) > 8:
            _cal.clear()
        _cal[day] = cal
    starts = {"second": now, "minute": now - now % 60, "hour": now - now % 3600, "day": day,
              "month": cal[0], "year": cal[1]}
    _last = (now, starts)
    return starts
