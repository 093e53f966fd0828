"""Alertmanager sink: API v2 ``POST /api/v2/alerts``.

Alertmanager treats an alert without ``endsAt`` as firing for ``resolve_timeout`` (5 min by
default), so open incidents are re-sent every ``alerting.resend_seconds``; routing, grouping,
silences, inhibition and paging then come from Alertmanager itself. The alert's identity is
its label set (``alertname``, ``person``, ``severity``): re-sending it is idempotent, and an
escalation ends the ``warning`` alert and starts a ``critical`` one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from pileon.alerting.base import AlertSink
from pileon.alerting.http import post_json
from pileon.alerting.notification import Notification

ALERTNAME = "PileOn"


class AlertmanagerSink(AlertSink):
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.name = "alertmanager"
        self._url = base_url.rstrip("/") + "/api/v2/alerts"
        self._timeout = timeout
        self._session = requests.Session()

    def deliver(self, notification: Notification) -> None:
        alerts = [to_alert(notification)]
        if notification.transition == "escalated":  # the warning alert ends here
            alerts.append(to_alert(notification, severity="warning", ends_at=notification.at))
        post_json(self._session, self._url, alerts, self._timeout)

    def refresh(self, open_incidents: Sequence[Notification]) -> None:
        if open_incidents:
            post_json(self._session, self._url, [to_alert(n) for n in open_incidents],
                      self._timeout)

    def close(self) -> None:
        self._session.close()


def to_alert(
    n: Notification, severity: str | None = None, ends_at: str | None = None
) -> dict[str, Any]:
    """The postable alert of the Alertmanager v2 OpenAPI (``postableAlert``)."""
    alert: dict[str, Any] = {
        "labels": {"alertname": ALERTNAME, "person": n.person,
                   "severity": severity or n.severity},
        "annotations": {
            "summary": n.summary,
            "description": n.description,
            "runbook_url": n.runbook_url,
            "dashboard_url": n.dashboard_url,
            "evidence_url": n.evidence_url,
            "incident_id": n.incident_id,
            "assessment": n.assessment,
            **({"evidence_head": n.evidence_head.words()} if n.evidence_head else {}),
        },
        "startsAt": n.starts_at,
        "generatorURL": n.dashboard_url,
    }
    if ends_at or n.ends_at:
        alert["endsAt"] = ends_at or n.ends_at
    return alert


def create_silence(
    base_url: str, person: str, severity: str, ends_at: str, created_by: str, comment: str,
    timeout: float = 10.0,
) -> str:
    """Silence this person's pile-on alert at ``severity`` until ``ends_at`` (API v2
    ``POST /api/v2/silences``): what acknowledging an incident in the console does where the
    page came from. An escalation to another severity is another alert and still pages.
    Returns the silence id; raises ``requests.RequestException`` when Alertmanager refuses."""
    from datetime import UTC, datetime

    body = {
        "matchers": [
            {"name": "alertname", "value": ALERTNAME, "isRegex": False, "isEqual": True},
            {"name": "person", "value": person, "isRegex": False, "isEqual": True},
            {"name": "severity", "value": severity, "isRegex": False, "isEqual": True},
        ],
        "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "endsAt": ends_at,
        "createdBy": created_by,
        "comment": comment,
    }
    reply = requests.post(base_url.rstrip("/") + "/api/v2/silences", json=body, timeout=timeout)
    reply.raise_for_status()
    return str(reply.json()["silenceID"])


def expire_silence(base_url: str, silence_id: str, timeout: float = 10.0) -> None:
    """End a silence early (``DELETE /api/v2/silence/{id}``); one already gone is fine."""
    reply = requests.delete(f"{base_url.rstrip('/')}/api/v2/silence/{silence_id}",
                            timeout=timeout)
    if reply.status_code != 404:
        reply.raise_for_status()
