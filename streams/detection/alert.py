"""Builds the alert event (:class:`pileon.schema.alert.AlertEvent`) for one incident transition.

The one place an alert is made: the figures that scored, their baselines, the near-duplicate
clusters by opaque id, the coordinated/organic assessment with the signs behind it, and the
evidence range. Never message text or author handles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from pileon.core.settings import DetectionSettings
from pileon.schema.alert import (
    AlertEvent,
    AuthorsSignal,
    ClusterSummary,
    Confirmation,
    CoordinationSignal,
    EvidenceRange,
    RateSignal,
    ReplyFocus,
    Signals,
    YoungShareSignal,
)
from pileon.streams.detection.detectors import (
    CoordinationExplanation,
    FocusExplanation,
    RateExplanation,
)
from pileon.streams.detection.incidents import Confirmation as Confirmed
from pileon.streams.detection.incidents import Decision
from pileon.streams.detection.window_stats import WindowStats

INDICATOR_SCORE = 3.0  # -log10 p of a coordination sign that is reported as an indicator


@dataclass(frozen=True)
class Scored:
    """One closed window as the detectors saw it."""

    score: float
    rate: RateExplanation
    coordination: CoordinationExplanation
    focus: FocusExplanation
    window: WindowStats


def evidence_counts(rate: RateExplanation, cfg: DetectionSettings) -> bool:
    """Whether the window's coordination and focus evidence counts towards its pile-on score:
    only once volume itself is unusual (``coordination_gate``)."""
    return rate.score >= cfg.coordination_gate


def build_alert(
    person: str,
    at: float,
    opened_at: float | None,
    decision: Decision,
    scored: Scored,
    baselines: dict[str, float],
    clusters: list[ClusterSummary],
    cfg: DetectionSettings,
    timezone: str = "UTC",
) -> AlertEvent:
    """The event for ``decision``, taken at the end of the bin that closed at ``at``."""
    rate, coordination, focus, window = (
        scored.rate, scored.coordination, scored.focus, scored.window)
    indicators = coordination_indicators(window, coordination)
    counted = evidence_counts(rate, cfg)
    post, on_post = window.top_post
    return AlertEvent(
        idempotency_key=decision.idempotency_key,
        incident_id=decision.incident_id,
        transition=decision.transition,
        person=person,
        timezone=timezone,
        severity=decision.severity,
        at=iso(at),
        opened_at=iso(opened_at or at),
        score=round(scored.score, 2),
        confirmation=_confirmation(decision.confirmation),
        signals=Signals(
            rate=RateSignal(
                window_minutes=rate.window_bins * cfg.bin_seconds / 60,
                mentions=rate.count,
                expected=round(rate.expected, 2),
                ratio=round(rate.ratio, 1) if math.isfinite(rate.ratio) else None,
                score=round(rate.score, 2),
                bar=round(rate.bar, 2) if rate.bar is not None else None,
                sustained=rate.sustained,
            ),
            distinct_authors=AuthorsSignal(
                value=window.distinct_authors,
                baseline=round(baselines["distinct_authors"], 1)),
            young_account_share=YoungShareSignal(
                value=round(window.young_share, 3),
                baseline=round(baselines["young_share"], 3),
                young_means_days=cfg.young_account_days),
            near_duplicate_clusters=clusters,
            # the post most of the window answers, by key (the bundle resolves it)
            reply_focus=ReplyFocus(
                post_key=f"{post:08x}" if on_post and post is not None else None,
                mentions=on_post, **focus.to_dict(), counted=counted),
            coordination=CoordinationSignal(
                **coordination.to_dict(), score=round(coordination.score, 2),
                counted=counted),
        ),
        assessment="looks coordinated" if indicators else "looks organic",
        indicators=indicators,
        exemplar_ids=[c.template_id for c in clusters],
        evidence=EvidenceRange(
            person=person, from_=iso(at - cfg.window_bins * cfg.bin_seconds), to=iso(at)),
    )


def coordination_indicators(
    window: WindowStats, coordination: CoordinationExplanation
) -> list[str]:
    """Signs that a surge is coordinated rather than organic; none means 'looks organic'.

    A sign counts when its share in the window is improbable for this person (p < 0.001):
    young accounts, copies of one text by many accounts, or one account posting much of it.
    """
    indicators = []
    if coordination.young >= INDICATOR_SCORE:
        indicators.append("young_accounts")
    if coordination.copies >= INDICATOR_SCORE:
        indicators.append("copypasta")
    if coordination.flood >= INDICATOR_SCORE or (
        window.distinct_authors < 0.3 * max(1, window.mentions)
    ):
        indicators.append("few_sources")
    return indicators


def _confirmation(c: Confirmed | None) -> Confirmation | None:
    """Why an opening came when it did: the alarm, and what the minutes since added."""
    if c is None:
        return None
    return Confirmation(alarm_at=iso(c.alarm_at), mentions_since=c.mentions,
                        expected_since=round(c.expected, 2), score=round(c.score, 2),
                        critical_window=c.critical, excess=round(c.excess, 1),
                        min_excess=c.min_excess)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
