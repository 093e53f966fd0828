"""The alert event (``pileon.alert/v1``): one incident transition, as the worker publishes it.

The worker builds it (``pileon.streams.detection.alert``), the ``alerts`` topic carries it as
JSON, and the notifier, the evidence archiver, the demo and the console read it through this
model, so a renamed field is a type error, not "None mentions in None min" on a pager.

It holds evidence, never message text or author handles: figures, their baselines, opaque keys
(template ids, a post key) and the evidence range the bundle resolves them in. The wire format
is the JSON of :meth:`AlertEvent.to_json`; ``schema`` names its version, and readers reject any
other version with :class:`pydantic.ValidationError`. Unknown fields are kept (``extra``), so an
older reader passes on what a newer worker added.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA = "pileon.alert/v1"


class Transition(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RateSignal(_Part):
    """Mentions in the window that scored, against what this person's baseline expects."""

    window_minutes: float
    mentions: int
    expected: float
    ratio: float | None = Field(description="mentions / expected; None when nothing expected")
    score: float = Field(description="-log10 of the negative-binomial tail probability")
    bar: float | None = Field(
        default=None, description="the score this window length needs to open an incident for "
        "this person: derived from the false-alarm budget and the person's own history")
    sustained: bool = Field(
        default=False, description="the sustained-rise test scored: the window is the last "
        "half hour, all of it but five minutes improbable against the higher of the person's "
        "usual and their last six hours; its bar is that half hour at detection.pileon_multiple "
        "times what was expected")


class AuthorsSignal(_Part):
    value: int
    baseline: float


class YoungShareSignal(_Part):
    value: float
    baseline: float
    young_means_days: float


class ClusterSummary(_Part):
    """A near-duplicate cluster by its opaque template id (the bundle holds the texts)."""

    template_id: str
    in_window: int
    size: int
    distinct_authors: int
    young_share: float
    first_seen: str


class ReplyFocus(_Part):
    post_key: str | None = Field(description="opaque key of the most answered post")
    mentions: int
    share: float
    usual: float
    score: float
    counted: bool


class CoordinationSignal(_Part):
    young: float
    copies: float
    flood: float
    score: float
    counted: bool


class Signals(_Part):
    rate: RateSignal
    distinct_authors: AuthorsSignal
    young_account_share: YoungShareSignal
    near_duplicate_clusters: list[ClusterSummary]
    reply_focus: ReplyFocus
    coordination: CoordinationSignal


class Confirmation(_Part):
    """Why an opening came when it did: the alarm, and what the minutes since added."""

    alarm_at: str
    mentions_since: int
    expected_since: float
    score: float
    critical_window: bool
    excess: float | None = Field(
        default=None, description="mentions above baseline in the window that holds the most")
    min_excess: int | None = Field(
        default=None, description="the mentions above baseline this opening needed: "
        "detection.min_excess, or detection.min_excess_coordinated when the window's "
        "coordination signs alone reached the model bar")


class LateFinding(_Part):
    """An incident found in mentions that arrived after their bins had closed (a connector's
    backfill, a delayed batch): its ``opened_at`` is its true onset, found only later."""

    found_at: str = Field(description="the person's clock (newest event time) when it was found")
    late_mentions: int = Field(description="mentions that arrived late and were folded in")


class EvidenceRange(_Part):
    """The person and event-time range whose mentions the incident's bundle holds."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    person: str
    from_: str = Field(alias="from")
    to: str


class AlertEvent(_Part):
    """One incident transition (opened, escalated, resolved) for one protected person."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    schema_: Literal["pileon.alert/v1"] = Field(default="pileon.alert/v1", alias="schema")
    idempotency_key: str
    incident_id: str
    transition: Transition
    person: str
    timezone: str = Field(default="UTC", description="the person's IANA time zone (watchlist)")
    severity: Severity
    at: str = Field(description="event time of the transition (end of the bin), ISO 8601 UTC")
    opened_at: str
    score: float
    confirmation: Confirmation | None = None
    found_late: LateFinding | None = None
    signals: Signals
    assessment: Literal["looks coordinated", "looks organic"]
    indicators: list[str]
    exemplar_ids: list[str]
    evidence: EvidenceRange

    @property
    def firing(self) -> bool:
        return self.transition is not Transition.RESOLVED

    def to_dict(self) -> dict[str, Any]:
        """The wire form as plain JSON types (``schema`` and ``from`` by their names)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> AlertEvent:
        """Parse and validate an event; raises ``pydantic.ValidationError`` naming the field."""
        if isinstance(data, dict):
            return cls.model_validate(data)
        return cls.model_validate_json(data)


__all__ = [
    "ALERT_SCHEMA", "AlertEvent", "AuthorsSignal", "ClusterSummary", "Confirmation",
    "CoordinationSignal", "EvidenceRange", "LateFinding", "RateSignal", "ReplyFocus",
    "Severity", "Signals", "Transition", "YoungShareSignal",
]
