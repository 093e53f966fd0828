"""What a responder is told about an incident transition: evidence and links, never message
text or author handles (the alert event holds neither; see :mod:`pileon.schema.alert`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from pileon.core.settings import AlertingSettings
from pileon.core.wording import local_time, odds
from pileon.schema.alert import AlertEvent, Severity, Transition
from pileon.schema.head import ChainHead


@dataclass(frozen=True)
class EvidenceHead:
    """The evidence chain's head the archiver published for this alert (or, when it did not
    in time, the latest it published for the person): a receiver that keeps it can show later
    that the archive's chain up to ``seq`` is the one that existed then."""

    seq: int
    head_hash: str
    at: str  # when the archiver read it
    at_this_alert: bool  # False: the latest head known, from before this alert
    signature: str | None = None  # the archiver's Ed25519 signature of the checkpoint
    key_id: str | None = None

    def words(self) -> str:
        which = "at this alert" if self.at_this_alert else "latest known before this alert"
        signed = f", signed checkpoint (key {self.key_id})" if self.signature else ""
        return f"evidence chain record {self.seq}, head sha256 {self.head_hash} ({which}, " \
               f"{self.at}{signed})"

    @classmethod
    def from_head(cls, head: ChainHead, at_this_alert: bool) -> EvidenceHead:
        checkpoint: dict[str, Any] = head.checkpoint or {}
        statement = checkpoint.get("statement")
        return cls(seq=head.seq, head_hash=head.head_hash, at=head.at,
                   at_this_alert=at_this_alert, signature=checkpoint.get("signature"),
                   key_id=statement.get("key_id") if isinstance(statement, dict) else None)


@dataclass(frozen=True)
class Notification:
    idempotency_key: str  # one per incident transition: receivers de-duplicate on it
    incident_id: str
    transition: str  # opened | escalated | resolved
    person: str
    severity: str  # warning | critical
    starts_at: str  # RFC 3339, when the incident opened (event time)
    ends_at: str | None  # set when resolved
    at: str  # when this transition happened
    score: float
    assessment: str  # "looks coordinated" | "looks organic"
    summary: str
    description: str
    dashboard_url: str
    evidence_url: str
    runbook_url: str
    evidence_head: EvidenceHead | None = None

    @property
    def firing(self) -> bool:
        return self.transition != "resolved"


def notification_from_event(event: AlertEvent, cfg: AlertingSettings) -> Notification:
    """Build the notification for one ``pileon.alert/v1`` event."""
    person, transition = event.person, str(event.transition)
    return Notification(
        idempotency_key=event.idempotency_key,
        incident_id=event.incident_id,
        transition=transition,
        person=person,
        severity=str(event.severity),
        starts_at=event.opened_at or event.at,
        ends_at=event.at if transition == "resolved" else None,
        at=event.at,
        score=event.score,
        assessment=event.assessment,
        summary=_summary(event),
        description=_description(event),
        dashboard_url=f"{cfg.dashboard_url}?{urlencode({'var-person': person})}",
        evidence_url=f"{cfg.evidence_url.rstrip('/')}/{quote(event.incident_id, safe='')}",
        runbook_url=f"{cfg.runbook_url}#pile-on-incident",
    )


def _summary(event: AlertEvent) -> str:
    person, transition = event.person, event.transition
    if transition is Transition.RESOLVED:
        return f"Pile-on incident {event.incident_id} for {person} resolved"
    ratio = event.signals.rate.ratio
    surge = f"{ratio}x their usual rate" if ratio else "far above their usual rate"
    verb = {Transition.ESCALATED: "escalated to critical"}.get(transition, "opened")
    if transition is Transition.OPENED and event.severity is Severity.CRITICAL:
        verb = "opened at critical"
    return f"Possible pile-on against {person} {verb}: mentions at {surge}"


def _description(event: AlertEvent) -> str:
    signals = event.signals
    rate, authors, young = signals.rate, signals.distinct_authors, signals.young_account_share
    parts = [
        f"{rate.mentions} mentions in {rate.window_minutes:g} min where about "
        f"{rate.expected:g} are usual: on an ordinary day for {event.person} that is "
        f"{odds(rate.score)}. At {local_time(event.at, event.timezone)}.",
        f"Score {event.score} (-log10 p)" + (
            f"; the rise has held: every five minutes of the half hour but one was improbable, "
            f"and its bar {signals.rate.bar:g} is that half hour at the configured multiple of "
            "the usual (the higher of this hour's usual and the last six hours)."
            if signals.rate.sustained and signals.rate.bar is not None else
            f"; this person's bar for this window is {signals.rate.bar:g}, set by the budget "
            "of false pages a month and their own history." if signals.rate.bar is not None
            else "."),
        f"{authors.value} distinct authors (usually {authors.baseline}).",
        f"Young-account share {young.value} (usually {young.baseline}).",
    ]
    if signals.near_duplicate_clusters:
        top = signals.near_duplicate_clusters[0]
        parts.append(f"Largest near-duplicate cluster: {top.size} copies by "
                     f"{top.distinct_authors} authors.")
    focus = signals.reply_focus
    if focus.mentions:
        parts.append(f"{focus.mentions} of them answer one post ({focus.share:.0%}, "
                     f"usually {focus.usual:.0%}; post {focus.post_key} in the "
                     "evidence bundle).")
    confirmation = event.confirmation
    if confirmation is not None and confirmation.critical_window:
        parts.append("Opened on a second window at the critical bar.")
    elif confirmation is not None:
        parts.append(f"Confirmed by the minutes since the alarm at {confirmation.alarm_at}: "
                     f"{confirmation.mentions_since} mentions, "
                     f"{confirmation.expected_since} expected.")
    if (confirmation is not None and confirmation.excess is not None
            and confirmation.min_excess is not None):
        parts.append(f"{confirmation.excess:g} mentions above baseline; an opening needs "
                     f"{confirmation.min_excess}.")
    if event.found_late is not None:
        parts.append(f"Found late: {event.found_late.late_mentions} mentions arrived after "
                     f"their minutes had passed (a backfill or a delayed batch); the incident "
                     f"began at {local_time(event.opened_at, event.timezone)} and was found "
                     f"at {local_time(event.found_late.found_at, event.timezone)}.")
    indicators = ", ".join(event.indicators) or "none"
    parts.append(f"Assessment: {event.assessment} (indicators: {indicators}).")
    parts.append("This is evidence, not a verdict: organic criticism can look like this.")
    return " ".join(parts)
