"""Figures said in words for a security lead, not a statistician.

A window's score is ``-log10 p``: how improbable its mentions are on an ordinary day for this
person. :func:`odds` says that as "about 1 in 3 billion"; :func:`local_time` puts the person's
local time beside UTC, since "14:05 UTC" means little to a responder in another time zone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_SCALES = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"), (1e3, "thousand"))


def odds(score: float) -> str:
    """``-log10 p`` as odds in words.

    >>> odds(1.0)
    'about 1 in 10'
    >>> odds(7.0)
    'about 1 in 10 million'
    >>> odds(9.47)
    'about 1 in 3 billion'
    >>> odds(25)
    'less than 1 in a trillion'
    >>> odds(0.1)
    'not unusual'
    """
    if score < 0.5:
        return "not unusual"
    n = 10.0 ** score
    if n >= 1e15:
        return "less than 1 in a trillion"
    for size, word in _SCALES:
        if n >= size:
            return f"about 1 in {_round(n / size)} {word}"
    return f"about 1 in {_round(n)}"


def local_time(iso: str, timezone: str) -> str:
    """``2026-12-04T18:09:00Z`` as ``18:09 UTC (19:09 Europe/Berlin)``.

    >>> local_time("2026-12-04T18:09:00Z", "America/New_York")
    '2026-12-04 18:09 UTC (13:09 America/New_York)'
    >>> local_time("2026-12-04T18:09:00Z", "UTC")
    '2026-12-04 18:09 UTC'
    """
    at = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    text = f"{at:%Y-%m-%d %H:%M} UTC"
    if timezone in ("UTC", "Etc/UTC"):
        return text
    there = at.astimezone(ZoneInfo(timezone))
    day = "" if there.date() == at.date() else f"{there:%a} "
    return f"{text} ({day}{there:%H:%M} {timezone})"


def _round(x: float) -> str:
    """One or two significant figures, no decimals: 3, 12, 250, not 3.16 or 251."""
    digits = max(0, int(math.log10(x)) - 1) if x >= 10 else 0
    return f"{round(x, -digits):,.0f}"
