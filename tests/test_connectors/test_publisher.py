from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from kafka import KafkaProducer

from pileon.connectors.checkpoint import KafkaCheckpoints, MemoryCheckpoints
from pileon.connectors.producer import MentionProducer
from pileon.connectors.publisher import ID_HEADER, SOURCE_HEADER, Publisher
from pileon.kafka.broker import EmbeddedBroker
from tests.factories import mention
from tests.kafka.broker import ApacheKafka


def _record(bootstrap: str, topic: str, source: str, m: dict, at: float) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, key=m["person"].encode(), value=orjson.dumps(m), partition=0,
                  headers=[(SOURCE_HEADER, source.encode()), (ID_HEADER, m["id"].encode())],
                  timestamp_ms=int(at * 1000))
    producer.flush()
    producer.close()


class TestPublisher:
    def test_resume_skips_what_was_published_after_the_checkpoint_only(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        bootstrap, topic = embedded_broker.bootstrap, f"raw-{uuid.uuid4().hex[:8]}"
        store = MemoryCheckpoints()
        first = Publisher("c", MentionProducer(bootstrap, topic), store, connection=bootstrap)
        before, after, other = mention(), mention(), mention()
        first.publish(before)
        first.commit({"line": 1})
        first.publish(after)  # sent, then the process "dies" before its next checkpoint
        first.producer.flush()
        first.close()
        _record(bootstrap, topic, "someone-else", other, time.time())
        second = Publisher("c", MentionProducer(bootstrap, topic), store, connection=bootstrap)
        resume = second.resume()
        assert resume.position == {"line": 1}
        assert resume.published == {(after["person"], after["id"])}
        assert second.publish(before) is True  # before the checkpoint: the source won't replay
        assert second.publish(after) is False  # already there: skipped once
        assert second.duplicates == 1
        second.close()

    @pytest.mark.slow
    def test_read_back_after_a_long_outage_is_bounded_in_time(
        self, apache_kafka: ApacheKafka
    ) -> None:
        soon, late = self._long_outage(apache_kafka.bootstrap)
        assert soon and not late

    def test_read_back_scans_everything_when_the_time_index_is_wrong(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        soon, late = self._long_outage(embedded_broker.bootstrap)  # Tansu 0.6's time lookups
        assert soon and late  # a longer scan, never a missed record

    def _long_outage(self, bootstrap: str) -> tuple[bool, bool]:
        """Whether a record sent just after a two-hour-old checkpoint, and one sent long after
        it, are read back."""
        topic = f"raw-{uuid.uuid4().hex[:8]}"
        t0 = time.time() - 7200  # the checkpoint is two hours old
        _record(bootstrap, topic, "c", mention(), t0 - 10)
        store = MemoryCheckpoints()
        store.save("c", {"position": {"line": 1}, "offsets": {"0": 1},
                         "saved_at": datetime.fromtimestamp(t0, UTC).isoformat()})
        soon, late = mention(), mention()
        _record(bootstrap, topic, "c", soon, t0 + 30)  # sent just before the crash
        _record(bootstrap, topic, "c", late, time.time() - 60)  # can't be ours: long after
        publisher = Publisher("c", MentionProducer(bootstrap, topic), store, connection=bootstrap)
        found = publisher.resume().published
        publisher.close()
        return (soon["person"], soon["id"]) in found, (late["person"], late["id"]) in found

    def test_checkpoints_in_kafka_survive_the_process(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        bootstrap = embedded_broker.bootstrap
        topic = f"ckpt-{uuid.uuid4().hex[:8]}"
        producer = MentionProducer(bootstrap, "unused")
        KafkaCheckpoints(bootstrap, topic, producer).save("a", {"position": 1})
        KafkaCheckpoints(bootstrap, topic, producer).save("a", {"position": 2})
        KafkaCheckpoints(bootstrap, topic, producer).save("b", {"position": 9})
        producer.close()
        fresh = KafkaCheckpoints(bootstrap, topic, MentionProducer(bootstrap, "unused"))
        assert fresh.load("a") == {"position": 2}
        assert fresh.load("b") == {"position": 9}
        assert fresh.load("c") is None
