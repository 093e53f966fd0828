"""The decision step: turns a per-bin pile-on score into incident transitions, with hysteresis.

An incident opens when the score has reached ``open_score`` in two consecutive bins (a
one-bin spike is not a pile-on; this costs one bin of delay) and the window holds at least
``min_excess`` mentions above baseline (a tiny baseline makes a handful of replies look
improbable, yet nobody should be paged for them). Two windows confirm that an incident exists;
its severity then follows the current window: it opens at ``critical`` if that window already
reaches ``escalate_score`` (one page of the right severity, not a warning and an escalation
one bin later), and a warning escalates once to ``critical`` when a window reaches
``escalate_score``. It resolves only after ``quiet_bins`` consecutive bins below
``close_score``, so a campaign that pauses does not flap between open and resolved.
Incident ids derive from the person and the event time of opening, so replaying history yields
the same ids, and every transition has an idempotency key for consumers to de-duplicate on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pileon.settings import DetectionSettings


class Transition(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass
class IncidentState:
    """The open incident of one person, if any (small: it lives in a Faust table)."""

    incident_id: str | None = None
    severity: Severity | None = None
    opened_at: float = 0.0
    peak_score: float = 0.0
    quiet_bins: int = 0
    last_score: float = 0.0  # the previous bin's score: opening needs two in a row

    @property
    def is_open(self) -> bool:
        return self.incident_id is not None

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IncidentState:
        severity = state.get("severity")
        return cls(**{**state, "severity": Severity(severity) if severity else None})


@dataclass(frozen=True)
class Decision:
    transition: Transition
    incident_id: str
    severity: Severity

    @property
    def idempotency_key(self) -> str:
        return f"{self.incident_id}:{self.transition}:{self.severity}"


def incident_id(person: str, opened_at: float) -> str:
    return f"{person}-{datetime.fromtimestamp(opened_at, UTC):%Y%m%dT%H%MZ}"


def decide(
    state: IncidentState,
    person: str,
    at: float,
    score: float,
    excess: float,
    cfg: DetectionSettings,
) -> Decision | None:
    """Advance ``state`` by one closed bin and return the transition it makes, if any."""
    sustained, state.last_score = min(score, state.last_score), score
    if not state.is_open:
        if sustained >= cfg.open_score and excess >= cfg.min_excess:
            state.incident_id = incident_id(person, at)
            # The incident is confirmed by two windows; its severity is the current one's:
            # one page with the right severity, not a warning and an escalation a bin later.
            critical = score >= cfg.escalate_score
            state.severity = Severity.CRITICAL if critical else Severity.WARNING
            state.opened_at, state.peak_score, state.quiet_bins = at, score, 0
            return Decision(Transition.OPENED, state.incident_id, state.severity)
        return None
    assert state.incident_id is not None  # noqa: S101 - invariant of is_open
    state.peak_score = max(state.peak_score, score)
    state.quiet_bins = state.quiet_bins + 1 if score < cfg.close_score else 0
    if state.severity is Severity.WARNING and score >= cfg.escalate_score:
        state.severity = Severity.CRITICAL
        return Decision(Transition.ESCALATED, state.incident_id, state.severity)
    if state.quiet_bins >= cfg.quiet_bins:
        severity = state.severity or Severity.WARNING
        decision = Decision(Transition.RESOLVED, state.incident_id, severity)
        state.incident_id, state.severity, state.quiet_bins = None, None, 0
        return decision
    return None
