"""Lag as the broker sees it, on both brokers: a group stuck inside a partition's last record
batch shows its lag (Tansu 0.6's ListOffsets alone would say 0: it answers the last batch's base
offset plus one), and an empty or caught-up partition shows none."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic

from pileon.kafka.lag import LagProbe

pytestmark = pytest.mark.slow


def _batches(bootstrap: str, topic: str, *sizes: int) -> None:
    """Records on partition 0, one record batch per size (a long linger, a flush after each)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=500, acks="all")
    for size in sizes:
        for i in range(size):
            producer.send(topic, b"r%d" % i, partition=0)
        producer.flush()
    producer.close()


def _commit(bootstrap: str, group: str, tp: TopicPartition, offset: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
    consumer.close()


def test_lag_inside_the_last_batch_is_seen(bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    _batches(bootstrap, topic, 10, 7)  # offsets 0-9, then 10-16
    tp = TopicPartition(topic, 0)
    _commit(bootstrap, group, tp, 11)
    with LagProbe(bootstrap, group, {topic: 2}) as probe:
        for _ in range(2):  # and again on the same clients
            stuck, empty = probe.read()
            assert (stuck.end, stuck.committed, stuck.lag) == (17, 11, 6)
            assert (empty.end, empty.committed, empty.lag) == (0, None, 0)
        _commit(bootstrap, group, tp, 17)
        assert probe.read()[0].lag == 0
