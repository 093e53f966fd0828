"""A clean mention Apache Kafka refuses as too large (``mentions.clean``'s max.message.bytes
below what ingest lets through) is dead-lettered, and the rest of its partition goes on: retried
as it was, it would be refused forever, and every person on that partition would go unwatched
while the hostile post is around. The unit test (test_agents.py) covers the split and the
letter; this one the broker's own error on the wire."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from pileon.connectors.producer import MentionProducer
from pileon.core.settings import KafkaSettings
from pileon.kafka.topics import ensure_topics
from tests.factories import mention
from tests.kafka.broker import ApacheKafka
from tests.test_integration.worker import WorkerProcess, metric_value, read_topic

pytestmark = pytest.mark.slow


def test_a_clean_mention_over_the_topic_limit_is_dead_lettered_and_the_rest_go_on(
    apache_kafka: ApacheKafka, tmp_path: Path
) -> None:
    bootstrap = apache_kafka.bootstrap
    prefix = f"big{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, names.clean,
                                            configs={"max.message.bytes": "4000"})])
    finally:
        admin.close()
    start = datetime.now(UTC) - timedelta(minutes=40)
    sent = [mention("amara", at=start + timedelta(seconds=30 * i)) for i in range(40)]
    sent[12]["text"] = "a very long post " * 400  # about 6.8 kB, under ingest's limit
    producer = MentionProducer(bootstrap, names.raw)
    try:
        for m in sent:
            producer.send(m)
        producer.flush()
    finally:
        producer.close()
    raw = {orjson.loads(r.value)["id"]: r for r in read_topic(bootstrap, names.raw, len(sent),
                                                                timeout=30)}
    with WorkerProcess(bootstrap, tmp_path, prefix, f"pileon-{prefix}") as worker:
        clean = read_topic(bootstrap, names.clean, len(sent) - 1, timeout=120)
        letters = read_topic(bootstrap, names.invalid, 1, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            refused = metric_value(worker.metrics(), "pileon_dead_letters_total",
                                   reason="too_large")
            if refused:
                break
            time.sleep(1)
        log = worker.log_path.read_text(errors="replace")
    assert sorted(orjson.loads(r.value)["id"] for r in clean) == sorted(
        m["id"] for i, m in enumerate(sent) if i != 12)
    assert len(letters) == 1
    letter = orjson.loads(letters[0].value)
    original = raw[sent[12]["id"]]
    assert letter["reason"] == "too_large"
    assert (letter["origin"]["partition"], letter["origin"]["offset"]) == (
        original.partition, original.offset)
    assert letter["value_sha256"] == hashlib.sha256(original.value).hexdigest()
    assert refused == 1
    assert "Traceback" not in log
    assert "a very long post" not in log  # no message text in the log
