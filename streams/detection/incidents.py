"""The decision step: turns a per-bin pile-on score into incident transitions, with hysteresis.

A window whose score reaches its bar (the person's own, derived from the false-alarm budget:
:meth:`~pileon.streams.detection.detectors.rate.RateDetector.bar`; ``open_score`` when none is
given) raises the alarm; the incident opens once the
bins that arrive after it confirm it: every window since scores at least the bar and
the bins since the alarm add evidence of their own, a score of at least ``close_score`` (the
level below which an open incident counts as quiet). That evidence is the tail score of those
bins' mentions against their own expectation (with the short window's dispersion), plus the
part of the window's score that is not volume (coordination signs, focus on one post: a burst
of copies is worth a page even if it is short). Windows overlap, so a one-bin spike keeps
every window that holds it improbable for a whole window length: "two consecutive improbable
windows" would count the same spike twice, and page when the spike is over and the person's
mentions are back to normal. A second window at the critical bar (``escalate_score -
open_score`` above the bar) needs no fresh evidence:
it is improbable enough on its own. A window (the hour's, without its busiest minutes, or
the ten minutes') must also hold at least ``min_excess``
mentions above baseline (a tiny baseline makes a handful of replies look improbable, yet
nobody should be paged for them), or ``min_excess_coordinated`` when the window's coordination
signs alone are as improbable as the budget's model bar (copies of one template from several
accounts, young accounts, one account's flood): for a person who hears from ten strangers a
day, twenty-five extra mentions at one a minute is twenty-five minutes of a campaign before
the page. The severity then follows the current window: an incident
opens at ``critical`` if that window already reaches the critical bar (one page of the right
severity, not a warning and an escalation one bin later), and a warning escalates once to
``critical`` when a window reaches the critical bar. It resolves only after ``quiet_bins``
consecutive bins below ``close_score``, so a campaign that pauses does not flap between open
and resolved.
Incident ids derive from the person and the event time of opening, so replaying history yields
the same ids, and every transition has an idempotency key for consumers to de-duplicate on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pileon.core.settings import DetectionSettings
from pileon.schema.alert import Severity, Transition
from pileon.streams.detection.detectors.rate import RateExplanation, negbin_tail_score


@dataclass
class IncidentState:
    """The open incident of one person, if any (small: it lives in a Faust table)."""

    incident_id: str | None = None
    severity: Severity | None = None
    opened_at: float = 0.0
    peak_score: float = 0.0
    quiet_bins: int = 0
    # Not yet open: when a window raised the alarm (event time), and the mentions and their
    # expectation over the bins since then, which confirm it or not.
    alarm_at: float | None = None
    fresh_count: int = 0
    fresh_expected: float = 0.0

    def _clear_alarm(self) -> None:
        self.alarm_at, self.fresh_count, self.fresh_expected = None, 0, 0.0

    @property
    def is_open(self) -> bool:
        return self.incident_id is not None

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IncidentState:
        severity = state.get("severity")
        known = {k: v for k, v in state.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "severity": Severity(severity) if severity else None})


@dataclass(frozen=True)
class Confirmation:
    """Why an incident opened when it did: the alarm, and the evidence of the bins since."""

    alarm_at: float
    mentions: int  # in the bins since the alarm
    expected: float  # what the baseline expected of those bins
    score: float  # their fresh evidence: volume tail score plus the non-volume part
    critical: bool  # a second window at the critical bar, which needs no fresh evidence
    excess: float  # mentions above baseline in the window that holds the most
    min_excess: int  # what the opening needed of them (min_excess or the coordinated floor)


@dataclass(frozen=True)
class Decision:
    transition: Transition
    incident_id: str
    severity: Severity
    confirmation: Confirmation | None = None  # for an opening

    @property
    def idempotency_key(self) -> str:
        return f"{self.incident_id}:{self.transition}:{self.severity}"


def incident_id(person: str, opened_at: float) -> str:
    return f"{person}-{datetime.fromtimestamp(opened_at, UTC):%Y%m%dT%H%MZ}"


def open_bar(rate: RateExplanation, cfg: DetectionSettings) -> float:
    """The score the window behind ``rate`` must reach to open an incident: the person's own
    bar when the detector gave one, else ``cfg.open_score``."""
    return cfg.open_score if rate.bar is None else rate.bar


def critical_bar(rate: RateExplanation, cfg: DetectionSettings) -> float:
    """The critical bar: as far above the open bar as ``escalate_score`` is above
    ``open_score``."""
    return open_bar(rate, cfg) + cfg.escalate_score - cfg.open_score


def decide(
    state: IncidentState,
    person: str,
    at: float,
    score: float,
    rate: RateExplanation,
    cfg: DetectionSettings,
    coordinated: bool = False,
) -> Decision | None:
    """Advance ``state`` by one closed bin and return the transition it makes, if any.

    ``score`` is the bin's pile-on score; ``rate`` the volume evidence behind it (the window's
    count and expectation, and the newest bin's, and the person's calibrated bar for it:
    ``cfg.open_score`` when the rate explanation has none); the critical bar is as far above
    it as ``escalate_score`` is above ``open_score``. ``coordinated``: the window's
    coordination signs alone reach the model bar, so ``min_excess_coordinated`` is the floor."""
    open_score, escalate_score = open_bar(rate, cfg), critical_bar(rate, cfg)
    if not state.is_open:
        if score < open_score:
            state._clear_alarm()
            return None
        if state.alarm_at is None:
            state.alarm_at = at  # raised by this window; the bins after it confirm it or not
            return None
        state.fresh_count += rate.latest
        state.fresh_expected += rate.latest_expected
        critical = score >= escalate_score
        # The bins since the alarm confirm it by their volume, or the window by evidence that
        # is not volume (coordination, focus: the part of the score above the rate's).
        fresh = negbin_tail_score(state.fresh_count, state.fresh_expected, rate.size)
        fresh += max(0.0, score - rate.score)
        excess = rate.count - rate.expected if rate.excess is None else rate.excess
        # A sustained-rise window is already half an hour of improbable stretches.
        confirmed = critical or rate.sustained or fresh >= cfg.close_score
        floor = min(cfg.min_excess_coordinated, cfg.min_excess) if coordinated else cfg.min_excess
        if confirmed and excess >= floor:
            state.incident_id = incident_id(person, at)
            # Its severity is the current window's: one page with the right severity, not a
            # warning and an escalation a bin later.
            state.severity = Severity.CRITICAL if critical else Severity.WARNING
            state.opened_at, state.peak_score, state.quiet_bins = at, score, 0
            confirmation = Confirmation(state.alarm_at, state.fresh_count, state.fresh_expected,
                                        fresh, critical, excess, floor)
            state._clear_alarm()
            return Decision(Transition.OPENED, state.incident_id, state.severity, confirmation)
        return None
    assert state.incident_id is not None  # noqa: S101 - invariant of is_open
    state.peak_score = max(state.peak_score, score)
    state.quiet_bins = state.quiet_bins + 1 if score < cfg.close_score else 0
    if state.severity is Severity.WARNING and score >= escalate_score:
        state.severity = Severity.CRITICAL
        return Decision(Transition.ESCALATED, state.incident_id, state.severity)
    if state.quiet_bins >= cfg.quiet_bins:
        severity = state.severity or Severity.WARNING
        decision = Decision(Transition.RESOLVED, state.incident_id, severity)
        state.incident_id, state.severity, state.quiet_bins = None, None, 0
        return decision
    return None
