from __future__ import annotations

import uuid

import orjson
import pytest
from kafka import KafkaConsumer

from connectors.producer import DeliveryError, MentionProducer
from pileon.broker import EmbeddedBroker, free_port
from tests.factories import mention


class TestMentionProducer:
    def test_mentions_are_keyed_by_person(self, embedded_broker: EmbeddedBroker) -> None:
        topic = f"raw-{uuid.uuid4().hex[:8]}"
        producer = MentionProducer(embedded_broker.bootstrap, topic)
        sent = [mention("amara"), mention("sam")]
        for m in sent:
            producer.send(m)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=embedded_broker.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=3000)
        got = {r.key: orjson.loads(r.value)["id"] for r in consumer}
        consumer.close()
        assert got == {b"amara": sent[0]["id"], b"sam": sent[1]["id"]}

    def test_unacknowledged_sends_raise_on_flush(self) -> None:
        with pytest.raises(DeliveryError, match="not reachable"):
            MentionProducer(f"127.0.0.1:{free_port()}", "raw", bootstrap_timeout_ms=500)
