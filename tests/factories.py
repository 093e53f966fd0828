"""Builders of valid mentions and settings objects for unit tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from pileon.schema.alert import AlertEvent

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


def alert_event(
    person: str = "amara", transition: str = "opened", severity: str = "warning",
    opened: str = "2026-11-20T12:00:00Z", at: str | None = None,
) -> AlertEvent:
    """A ``pileon.alert/v1`` event as the analyser emits it."""
    return AlertEvent.from_json(alert_dict(person, transition, severity, opened, at))


def alert_dict(
    person: str = "amara", transition: str = "opened", severity: str = "warning",
    opened: str = "2026-11-20T12:00:00Z", at: str | None = None,
) -> dict[str, Any]:
    """The same event in its wire form (test_analysis checks the analyser's keys against it)."""
    incident = f"{person}-{opened[:16].replace('-', '').replace(':', '')}Z"
    return {
        "schema": "pileon.alert/v1",
        "idempotency_key": f"{incident}:{transition}:{severity}",
        "incident_id": incident,
        "transition": transition,
        "person": person,
        "timezone": "Europe/Berlin",
        "severity": severity,
        "at": at or opened,
        "opened_at": opened,
        "score": 12.5,
        "confirmation": {"alarm_at": opened, "mentions_since": 60, "expected_since": 6.2,
                         "score": 9.5, "critical_window": False, "excess": 209.0,
                         "min_excess": 25}
        if transition == "opened" else None,
        "found_late": None,
        "signals": {
            "rate": {"window_minutes": 10.0, "mentions": 240, "expected": 31.0, "ratio": 7.7,
                     "score": 12.5, "bar": 6.2, "sustained": False},
            "distinct_authors": {"value": 180, "baseline": 20.0},
            "young_account_share": {"value": 0.64, "baseline": 0.05, "young_means_days": 7.0},
            "near_duplicate_clusters": [
                {"template_id": "bluesky:t1", "in_window": 95, "size": 120,
                 "distinct_authors": 80, "young_share": 0.7, "first_seen": opened},
            ],
            "reply_focus": {"post_key": "1a2b3c4d", "mentions": 150,
                            "share": 0.625, "usual": 0.08, "score": 20.0, "counted": True},
            "coordination": {"young": 20.0, "copies": 20.0, "flood": 0.0, "score": 20.0,
                             "counted": True},
        },
        "assessment": "looks coordinated",
        "indicators": ["young_accounts", "copypasta"],
        "exemplar_ids": ["bluesky:t1"],
        "evidence": {"person": person, "from": opened, "to": at or opened},
    }
