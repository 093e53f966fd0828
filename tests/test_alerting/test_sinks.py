"""The sink contract suite: every sink runs it against a real HTTP receiver on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pileon.alerting import AlertSink, DeliveryFailed, Rejected, notification_from_event
from pileon.alerting.alertmanager import AlertmanagerSink
from pileon.alerting.notification import Notification
from pileon.alerting.webhook import WebhookSink
from pileon.core.settings import AlertingSettings
from pileon.kafka.broker import free_port
from tests.factories import alert_event
from tests.http_receiver import Receiver

SinkFactory = Callable[[str], AlertSink]


def _alertmanager(url: str) -> AlertSink:
    return AlertmanagerSink(url, timeout=2)


def _webhook_json(url: str) -> AlertSink:
    return WebhookSink(url + "/hook", "json", timeout=2)


def _webhook_slack(url: str) -> AlertSink:
    return WebhookSink(url + "/hook", "slack", timeout=2)


SINKS = {"alertmanager": _alertmanager, "webhook-json": _webhook_json,
         "webhook-slack": _webhook_slack}


def _notification(**changes: Any) -> Notification:
    return notification_from_event(alert_event(**changes), AlertingSettings())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(params=sorted(SINKS))
def make_sink(request: pytest.FixtureRequest) -> SinkFactory:
    return SINKS[request.param]


class TestSinkContract:
    def test_delivers_one_request(self, make_sink: SinkFactory, receiver: Receiver) -> None:
        make_sink(receiver.url).deliver(_notification())
        assert len(receiver.wait_for(1)) == 1

    def test_server_error_is_retriable(self, make_sink: SinkFactory, receiver: Receiver) -> None:
        receiver.fail_first = 1
        with pytest.raises(DeliveryFailed):
            make_sink(receiver.url).deliver(_notification())

    def test_retry_after_is_passed_on(self, make_sink: SinkFactory, receiver: Receiver) -> None:
        receiver.fail_first, receiver.fail_status, receiver.retry_after = 1, 429, "7"
        with pytest.raises(DeliveryFailed) as failed:
            make_sink(receiver.url).deliver(_notification())
        assert failed.value.retry_after == 7.0

    def test_bad_request_is_rejected_for_good(
        self, make_sink: SinkFactory, receiver: Receiver
    ) -> None:
        receiver.fail_first, receiver.fail_status = 1, 400
        with pytest.raises(Rejected, match="400"):
            make_sink(receiver.url).deliver(_notification())

    def test_unreachable_receiver_is_retriable(self, make_sink: SinkFactory) -> None:
        with pytest.raises(DeliveryFailed):
            make_sink(f"http://127.0.0.1:{free_port()}").deliver(_notification())

    def test_payload_links_evidence_and_quotes_no_text(
        self, make_sink: SinkFactory, receiver: Receiver
    ) -> None:
        make_sink(receiver.url).deliver(_notification())
        body = str(receiver.wait_for(1)[0].body)
        assert "/evidence/amara-" in body and "var-person=amara" in body
        assert "bluesky:t1" not in body  # not even exemplar ids: the evidence link has them


class TestAlertmanagerSink:
    def test_alert_has_the_labels_and_annotations_routing_needs(
        self, receiver: Receiver
    ) -> None:
        AlertmanagerSink(receiver.url).deliver(_notification())
        got = receiver.wait_for(1)[0]
        assert got.path == "/api/v2/alerts"
        [alert] = got.body
        assert alert["labels"] == {"alertname": "PileOn", "person": "amara",
                                   "severity": "warning"}
        assert {"summary", "description", "runbook_url", "dashboard_url",
                "evidence_url"} <= set(alert["annotations"])
        assert alert["startsAt"] == "2026-11-20T12:00:00Z" and "endsAt" not in alert

    def test_escalation_ends_the_warning_and_fires_critical(self, receiver: Receiver) -> None:
        AlertmanagerSink(receiver.url).deliver(
            _notification(transition="escalated", severity="critical", at="2026-11-20T12:30:00Z"))
        alerts = {a["labels"]["severity"]: a for a in receiver.wait_for(1)[0].body}
        assert "endsAt" not in alerts["critical"]
        assert alerts["warning"]["endsAt"] == "2026-11-20T12:30:00Z"

    def test_resolved_incident_sets_ends_at(self, receiver: Receiver) -> None:
        AlertmanagerSink(receiver.url).deliver(
            _notification(transition="resolved", at="2026-11-20T14:00:00Z"))
        assert receiver.wait_for(1)[0].body[0]["endsAt"] == "2026-11-20T14:00:00Z"

    def test_refresh_re_sends_open_incidents_in_one_request(self, receiver: Receiver) -> None:
        AlertmanagerSink(receiver.url).refresh([_notification(), _notification(person="sam")])
        assert {a["labels"]["person"] for a in receiver.wait_for(1)[0].body} == {"amara", "sam"}


class TestWebhookSink:
    def test_idempotency_key_and_bearer_token_are_sent(
        self, receiver: Receiver, tmp_path: Path
    ) -> None:
        token = tmp_path / "token"
        token.write_text("s3cret\n")
        WebhookSink(receiver.url, "json", token_file=token).deliver(_notification())
        got = receiver.wait_for(1)[0]
        assert got.headers["Idempotency-Key"] == "amara-20261120T1200Z:opened:warning"
        assert got.headers["Authorization"] == "Bearer s3cret"
        assert got.body["schema"] == "pileon.notification/v1"

    def test_slack_body_has_fallback_text_and_blocks(self, receiver: Receiver) -> None:
        WebhookSink(receiver.url, "slack").deliver(_notification())
        body = receiver.wait_for(1)[0].body
        assert body["text"].startswith("Possible pile-on against amara opened")
        assert "<http://localhost:3000/d/pileon-person" in str(body["blocks"])

    def test_unknown_format_is_refused(self) -> None:
        with pytest.raises(ValueError, match="json or slack"):
            WebhookSink("http://127.0.0.1:1", "xml")


class TestSinksFromSettings:
    def test_webhook_url_can_come_from_a_secret_file(self, tmp_path: Path) -> None:
        from pileon.alerting.sinks import sinks_from_settings

        url_file = tmp_path / "url"
        url_file.write_text("https://hooks.example/secret-path\n")
        cfg = AlertingSettings(webhook_url_file=url_file, webhook_format="slack",
                               alertmanager_urls=["http://a:9093", "http://b:9093"])
        assert [s.name for s in sinks_from_settings(cfg)] == [
            "alertmanager-0", "alertmanager-1", "webhook-slack"]
