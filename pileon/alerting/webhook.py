"""Webhook sink: a generic JSON body or a Slack-compatible message (incoming webhooks).

Each request carries the transition's idempotency key (``Idempotency-Key`` header and body):
a retry after a timeout, or a re-delivery after ``pileon notify`` restarts, has the same key.
The bearer token, if any, is read from a file (a mounted secret), never from settings text.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests

from pileon.alerting.base import AlertSink
from pileon.alerting.http import post_json
from pileon.alerting.notification import Notification

SCHEMA = "pileon.notification/v1"


class WebhookSink(AlertSink):
    def __init__(
        self, url: str, body_format: str = "json", token_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        if body_format not in ("json", "slack"):
            raise ValueError(f"webhook format must be json or slack, not {body_format!r}")
        self.name = f"webhook-{body_format}"
        self._url = url
        self._format = body_format
        self._timeout = timeout
        self._token = token_file.read_text().strip() if token_file else None
        self._session = requests.Session()

    def deliver(self, notification: Notification) -> None:
        headers = {"Idempotency-Key": notification.idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = slack_body(notification) if self._format == "slack" else json_body(notification)
        post_json(self._session, self._url, body, self._timeout, headers)

    def close(self) -> None:
        self._session.close()


def json_body(n: Notification) -> dict[str, Any]:
    return {"schema": SCHEMA, **asdict(n)}


def slack_body(n: Notification) -> dict[str, Any]:
    icon = {"opened": ":rotating_light:", "escalated": ":fire:", "resolved": ":white_check_mark:"}
    head = f"{icon.get(n.transition, '')} *{n.summary}* ({n.severity})".strip()
    links = (f"<{n.dashboard_url}|Dashboard> · <{n.evidence_url}|Evidence> · "
             f"<{n.runbook_url}|Runbook>")
    return {
        "text": f"{n.summary} ({n.severity})",  # the notification fallback
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": head}},
            {"type": "section", "text": {"type": "mrkdwn", "text": n.description}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": links}]},
            *([{"type": "context", "elements": [{"type": "plain_text",
                                                 "text": n.evidence_head.words()}]}]
              if n.evidence_head else []),
        ],
        "idempotency_key": n.idempotency_key,
    }
