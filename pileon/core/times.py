"""ISO 8601 times as pileon writes and reads them: UTC, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def epoch(iso: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (``Z`` or an offset)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def iso_z(t: float) -> str:
    """A time in seconds since the epoch, as ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
