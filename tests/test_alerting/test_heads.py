"""Pages carry the evidence chain's head: the archiver's head at that alert when it comes in
time, else the latest known for the person, said to be from before the alert; with no
archiver at all, pages do not wait. The notifier runs in-process against the embedded broker
and delivers to a webhook receiver."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

from pileon.alerting.notifier import Notifier
from pileon.alerting.webhook import WebhookSink
from pileon.connectors.producer import MentionProducer
from pileon.core.settings import AlertingSettings, KafkaSettings
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import TopicNames, ensure_topics
from pileon.schema.alert import AlertEvent
from tests.factories import alert_dict
from tests.http_receiver import Receiver

pytestmark = pytest.mark.slow


def _head(event: AlertEvent, seq: int, key: str | None = None) -> bytes:
    return orjson.dumps({
        "schema": "pileon.head/v1", "incident_id": event.incident_id,
        "idempotency_key": key or event.idempotency_key, "person": event.person, "seq": seq,
        "head_hash": f"{seq:064x}", "at": "2026-12-05T10:00:00Z",
        "checkpoint": {"statement": {"key_id": "k1"}, "signature": "c2ln"}})


@contextmanager
def _notifying(bootstrap: str, names: TopicNames, receiver: Receiver, wait: float
               ) -> Iterator[Notifier]:
    cfg = AlertingSettings(group_id=f"n-{uuid.uuid4().hex[:6]}", head_wait_seconds=wait)
    notifier = Notifier(bootstrap, names.alerts, cfg, [WebhookSink(f"{receiver.url}/hook")],
                        heads_topic=names.heads)
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    thread.start()
    try:
        # Alerts are read from the earliest offset either way; waiting for the group's
        # assignment keeps its join time (seconds, broker-dependent) out of the timings below.
        assert notifier.assigned.wait(60), "the notifier never got its partitions"
        yield notifier
    finally:
        stop.set()
        thread.join(30)


def test_a_page_waits_for_its_head_then_falls_back_to_the_latest(
    embedded_broker: EmbeddedBroker
) -> None:
    bootstrap = embedded_broker.bootstrap
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"hd{uuid.uuid4().hex[:6]}."))
    opened = AlertEvent.from_json(orjson.dumps(alert_dict(opened="2026-12-05T09:00:00Z")))
    escalated = AlertEvent.from_json(orjson.dumps(alert_dict(
        opened="2026-12-05T09:00:00Z", transition="escalated", severity="critical",
        at="2026-12-05T09:20:00Z")))
    producer = MentionProducer(bootstrap, names.alerts)
    # An archiver ran before (an older head is on the topic): pages wait for theirs.
    producer.send_record(names.heads, b"amara", _head(opened, 7, key="older:alert"))
    producer.flush()
    with Receiver() as receiver, _notifying(bootstrap, names, receiver, wait=3.0):
        producer.send_raw(b"amara", opened.to_json())
        producer.flush()
        time.sleep(1.0)  # the archiver drains the alert's mentions, then publishes
        assert receiver.requests == []  # waiting for the head
        producer.send_record(names.heads, b"amara", _head(opened, 42))
        producer.flush()
        [first] = receiver.wait_for(1, timeout=20)
        head = first.body["evidence_head"]
        assert head == {"seq": 42, "head_hash": f"{42:064x}", "at": "2026-12-05T10:00:00Z",
                        "at_this_alert": True, "signature": "c2ln", "key_id": "k1"}
        sent = time.monotonic()
        producer.send_raw(b"amara", escalated.to_json())  # its head never comes
        producer.flush()
        second = receiver.wait_for(2, timeout=20)[1]
        assert second.at - sent >= 2.5  # waited head_wait_seconds
        assert second.body["evidence_head"]["seq"] == 42
        assert second.body["evidence_head"]["at_this_alert"] is False


def test_without_an_archiver_pages_do_not_wait(embedded_broker: EmbeddedBroker) -> None:
    bootstrap = embedded_broker.bootstrap
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"hn{uuid.uuid4().hex[:6]}."))
    event = AlertEvent.from_json(orjson.dumps(alert_dict(opened="2026-12-05T09:00:00Z")))
    producer = MentionProducer(bootstrap, names.alerts)
    with Receiver() as receiver, _notifying(bootstrap, names, receiver, wait=30.0):
        sent = time.monotonic()
        producer.send_raw(b"amara", event.to_json())
        producer.flush()
        [page] = receiver.wait_for(1, timeout=20)
        assert page.at - sent < 15  # not the 30 s wait
        assert page.body["evidence_head"] is None
