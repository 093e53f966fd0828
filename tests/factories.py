"""Builders of valid mentions and settings objects for unit tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

_ids = itertools.count()
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def mention(
    person: str = "amara",
    *,
    at: datetime | None = None,
    text: str = "interesting take on the housing report worth a read",
    author_id: str | None = None,
    author_age_days: float = 900.0,
    **changes: Any,
) -> dict[str, Any]:
    """A valid mention dict (what a connector publishes)."""
    n = next(_ids)
    created = at or NOW
    body: dict[str, Any] = {
        "id": f"bluesky:t{n}",
        "platform": "bluesky",
        "person": person,
        "matched_by": "mention",
        "author": {
            "id": author_id or f"did:plc:a{n}",
            "handle": f"a{n}.example",
            "created_at": iso(created - timedelta(days=author_age_days)),
        },
        "text": text,
        "url": f"https://example.invalid/{n}",
        "created_at": iso(created),
        "raw": {"n": n},
    }
    body.update(changes)
    return body
