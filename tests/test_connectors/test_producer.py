from __future__ import annotations

import uuid

import orjson
import pytest
from kafka import KafkaConsumer

from pileon.connectors.producer import DeliveryError, MentionProducer, MentionTooLarge
from pileon.kafka.broker import EmbeddedBroker, free_port
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

    def test_mention_too_big_for_kafka_becomes_a_dead_letter(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        raw, invalid = f"raw-{uuid.uuid4().hex[:8]}", f"invalid-{uuid.uuid4().hex[:8]}"
        producer = MentionProducer(embedded_broker.bootstrap, raw, invalid_topic=invalid)
        big = mention("amara", text="x" * 2_000_000)
        producer.send(big)
        producer.flush()  # nothing failed: the letter was acknowledged
        producer.close()
        consumer = KafkaConsumer(invalid, bootstrap_servers=embedded_broker.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=3000)
        letters = [orjson.loads(r.value) for r in consumer]
        consumer.close()
        assert [(x["reason"], x["origin"]["topic"]) for x in letters] == [("too_large", raw)]
        assert letters[0]["value_bytes"] > 2_000_000 and letters[0]["value_truncated"]

    def test_mention_too_big_without_a_dead_letter_topic_is_refused(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        producer = MentionProducer(embedded_broker.bootstrap, "raw")
        with pytest.raises(MentionTooLarge, match="limit"):
            producer.send(mention("amara", text="x" * 2_000_000))
        producer.close()
