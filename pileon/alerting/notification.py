"""What a responder is told about an incident transition: evidence and links, never message
text or author handles (the alert event holds neither; see :mod:`pileon.schema.alert`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from pileon.core.settings import AlertingSettings


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

    @property
    def firing(self) -> bool:
        return self.transition != "resolved"


def notification_from_event(event: dict[str, Any], cfg: AlertingSettings) -> Notification:
    """Build the notification for one ``pileon.alert/v1`` event."""
    person, transition = event["person"], event["transition"]
    evidence = event.get("evidence") or {}
    query = urlencode({"from": evidence.get("from", ""), "to": evidence.get("to", "")})
    return Notification(
        idempotency_key=event["idempotency_key"],
        incident_id=event["incident_id"],
        transition=transition,
        person=person,
        severity=event["severity"],
        starts_at=event.get("opened_at") or event["at"],
        ends_at=event["at"] if transition == "resolved" else None,
        at=event["at"],
        score=float(event.get("score", 0.0)),
        assessment=event.get("assessment", ""),
        summary=_summary(event),
        description=_description(event),
        dashboard_url=f"{cfg.dashboard_url}?{urlencode({'var-person': person})}",
        evidence_url=f"{cfg.evidence_url.rstrip('/')}/{person}?{query}",
        runbook_url=f"{cfg.runbook_url}#pile-on-incident",
    )


def _summary(event: dict[str, Any]) -> str:
    person, transition = event["person"], event["transition"]
    if transition == "resolved":
        return f"Pile-on incident {event['incident_id']} for {person} resolved"
    rate = event.get("signals", {}).get("rate", {})
    ratio = rate.get("ratio")
    surge = f"{ratio}x their usual rate" if ratio else "far above their usual rate"
    verb = {"escalated": "escalated to critical"}.get(transition, "opened")
    if transition == "opened" and event.get("severity") == "critical":
        verb = "opened at critical"
    return f"Possible pile-on against {person} {verb}: mentions at {surge}"


def _description(event: dict[str, Any]) -> str:
    signals = event.get("signals", {})
    rate = signals.get("rate", {})
    authors = signals.get("distinct_authors", {})
    young = signals.get("young_account_share", {})
    parts = [
        f"Score {event.get('score')}.",
        f"{rate.get('mentions')} mentions in {rate.get('window_minutes')} min, "
        f"{rate.get('expected')} expected.",
        f"{authors.get('value')} distinct authors (usually {authors.get('baseline')}).",
        f"Young-account share {young.get('value')} (usually {young.get('baseline')}).",
    ]
    clusters = signals.get("near_duplicate_clusters") or []
    if clusters:
        top = clusters[0]
        parts.append(f"Largest near-duplicate cluster: {top['size']} copies by "
                     f"{top['distinct_authors']} authors.")
    focus = signals.get("reply_focus") or {}
    if focus.get("mentions"):
        parts.append(f"{focus['mentions']} of them answer one post ({focus.get('share', 0):.0%}, "
                     f"usually {focus.get('usual', 0):.0%}; post {focus.get('post_key')} in the "
                     "evidence bundle).")
    confirmation = event.get("confirmation") or {}
    if confirmation.get("critical_window"):
        parts.append("Opened on a second window at the critical bar.")
    elif confirmation:
        parts.append(f"Confirmed by the minutes since the alarm at {confirmation['alarm_at']}: "
                     f"{confirmation['mentions_since']} mentions, "
                     f"{confirmation['expected_since']} expected.")
    indicators = ", ".join(event.get("indicators") or []) or "none"
    parts.append(f"Assessment: {event.get('assessment')} (indicators: {indicators}).")
    parts.append("This is evidence, not a verdict: organic criticism can look like this.")
    return " ".join(parts)
