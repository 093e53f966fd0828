"""Alerts reach responders through a real Alertmanager (Debian package, loopback, clustering
off) routed to a webhook receiver in the test, and through pileon's own webhook sink."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pileon.connectors.producer import MentionProducer
from pileon.core.settings import KafkaSettings
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import TopicNames, ensure_topics
from pileon.schema.alert import AlertEvent
from tests.factories import alert_event
from tests.http_receiver import Received, Receiver
from tests.monitoring import AlertmanagerServer
from tests.test_integration.notifier import NotifierProcess
from tests.test_integration.worker import metric_value
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def _send(bootstrap: str, names: TopicNames, *events: AlertEvent) -> None:
    producer = MentionProducer(bootstrap, names.alerts)
    for e in events:
        producer.send_raw(e.person.encode(), e.to_json())
    producer.flush()
    producer.close()


def _am(receiver: Receiver) -> list[Received]:
    return [r for r in receiver.requests if r.path == "/am"]


def _hooks(receiver: Receiver) -> list[Received]:
    return [r for r in receiver.requests if r.path == "/hook"]



@pytest.fixture(scope="module")
def run(embedded_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alerting")
    bootstrap = embedded_broker.bootstrap
    prefix = f"am{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    opened = alert_event("amara", "opened", opened="2026-11-25T10:00:00Z")
    with Receiver() as receiver, AlertmanagerServer(tmp, f"{receiver.url}/am") as am:
        receiver.fail_path, receiver.fail_first = "/hook", 3  # the webhook is down at first
        notifier = NotifierProcess(bootstrap, tmp, prefix, alertmanager=am.url,
                                   webhook=f"{receiver.url}/hook").start()
        try:
            _send(bootstrap, names, opened, alert_event("sam", "opened",
                                                        opened="2026-11-25T10:05:00Z"))
            wait_until(lambda: len({r.body["groupLabels"]["person"] for r in _am(receiver)}) == 2)
            wait_until(lambda: len(_hooks(receiver)) == 2)
            before_restart = len(_am(receiver))
            metrics = notifier.metrics()
            time.sleep(2)  # offsets committed: what was delivered is not delivered again
            # Mid-incident: the notifier dies, and the worker re-sends the same transition.
            notifier.kill()
            notifier = NotifierProcess(bootstrap, tmp, prefix, alertmanager=am.url,
                                       webhook=f"{receiver.url}/hook").start()
            wait_until(lambda: metric_value(notifier.metrics(),
                                       "pileon_notify_assigned_partitions") > 0, timeout=60)
            _send(bootstrap, names, opened)
            time.sleep(8)  # resends every 2 s, Alertmanager's group interval is 2 s
            after_restart = len(_am(receiver))
            _send(bootstrap, names, alert_event("amara", "resolved", opened="2026-11-25T10:00:00Z",
                                                at="2026-11-25T11:00:00Z"))
            wait_until(lambda: any(r.body["status"] == "resolved" for r in _am(receiver)))
            time.sleep(1)
            yield {"receiver": receiver, "before_restart": before_restart,
                   "after_restart": after_restart, "metrics": metrics,
                   "metrics_after": notifier.metrics(), "log": notifier.log_path}
        finally:
            notifier.stop()


class TestAlertmanagerRoute:
    def test_firing_notification_has_the_labels_and_links(self, run: dict[str, Any]) -> None:
        first = next(r.body for r in _am(run["receiver"])
                     if r.body["groupLabels"]["person"] == "amara")
        assert first["status"] == "firing"
        [alert] = first["alerts"]
        assert alert["labels"] == {"alertname": "PileOn", "person": "amara",
                                   "severity": "warning"}
        assert alert["annotations"]["evidence_url"].startswith("http://127.0.0.1:6070/evidence/amara-")
        assert alert["startsAt"].startswith("2026-11-25T10:00:00")

    def test_one_notification_group_per_person(self, run: dict[str, Any]) -> None:
        keys = {r.body["groupLabels"]["person"]: r.body["groupKey"] for r in _am(run["receiver"])}
        assert set(keys) == {"amara", "sam"} and len(set(keys.values())) == 2

    def test_no_second_notification_after_restart_and_re_sent_alert(
        self, run: dict[str, Any]
    ) -> None:
        assert run["after_restart"] == run["before_restart"] == 2

    def test_resolved_notification_arrives(self, run: dict[str, Any]) -> None:
        resolved = [r.body for r in _am(run["receiver"]) if r.body["status"] == "resolved"]
        assert [b["groupLabels"]["person"] for b in resolved] == ["amara"]
        assert resolved[0]["alerts"][0]["endsAt"].startswith("2026-11-25T11:00:00")


class TestWebhookSink:
    def test_receiver_down_for_a_while_still_gets_each_transition_once(
        self, run: dict[str, Any]
    ) -> None:
        keys = [r.headers["Idempotency-Key"] for r in _hooks(run["receiver"])]
        assert sorted(keys) == sorted({*keys})  # each transition once, re-sent one dropped
        assert len(keys) == 3  # amara opened, sam opened, amara resolved
        assert metric_value(run["metrics"], "pileon_alert_delivery_failures_total",
                            sink="webhook-json") > 0

    def test_re_sent_alert_is_counted_as_duplicate(self, run: dict[str, Any]) -> None:
        assert metric_value(run["metrics_after"], "pileon_alert_duplicate_events_total") == 1

    def test_notifier_log_holds_no_alert_text(self, run: dict[str, Any]) -> None:
        log = Path(run["log"]).read_text()
        assert "Possible pile-on" not in log and "distinct authors" not in log
