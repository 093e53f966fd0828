"""Where connectors keep their checkpoints: a compacted Kafka topic keyed by connector name.

Keeping them in Kafka, beside the mentions, means a connector needs no volume (a Helm
Deployment can be rescheduled anywhere) and a checkpoint is never ahead of the broker it
describes. :class:`MemoryCheckpoints` serves tests and one-shot runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

import orjson
from kafka import KafkaConsumer, TopicPartition

from pileon.connectors.producer import MentionProducer
from pileon.kafka.connection import Connection, as_connection


class CheckpointStore(Protocol):
    def load(self, name: str) -> dict[str, Any] | None:
        """The last checkpoint saved under ``name``, or None."""

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        """Store ``checkpoint``; acknowledged by the store when this returns."""


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        return self.saved.get(name)

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        self.saved[name] = orjson.loads(orjson.dumps(checkpoint))  # as stored: JSON only


class KafkaCheckpoints:
    """Checkpoints as records of a one-partition compacted topic, key = connector name."""

    def __init__(self, connection: Connection, topic: str, producer: MentionProducer) -> None:
        self.connection = as_connection(connection)
        self.topic = topic
        self._producer = producer

    def load(self, name: str) -> dict[str, Any] | None:
        tp = TopicPartition(self.topic, 0)
        consumer = reader(self.connection)
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            start = consumer.position(tp)
            end = consumer.end_offsets([tp])[tp]
            last: bytes | None = None
            for record in read_range(consumer, {tp: start}, {tp: end}):
                if record.key == name.encode():
                    last = record.value
        finally:
            consumer.close()
        return orjson.loads(last) if last else None

    def save(self, name: str, checkpoint: dict[str, Any]) -> None:
        self._producer.send_record(self.topic, name.encode(), orjson.dumps(checkpoint))
        self._producer.flush()


def reader(connection: Connection) -> KafkaConsumer:
    """A consumer outside any group, for reading ranges of offsets."""
    return KafkaConsumer(
        **as_connection(connection).kafka_python(
            enable_auto_commit=False, group_id=None, client_id="pileon-connector-reader"),
    )


def read_range(
    consumer: KafkaConsumer, starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int], timeout: float = 60.0,
) -> Iterator[Any]:
    """Every record from ``starts`` (inclusive) to at least ``ends`` per partition.

    Records past ``ends`` that arrive in the same fetch are yielded too: the embedded broker
    (Tansu 0.6) reports a partition's end as its last batch's *base* offset + 1, so the
    rest of that batch lies "past the end" though it was written before.
    """
    todo = {tp: end for tp, end in ends.items() if end > starts.get(tp, end)}
    for tp in todo:
        consumer.seek(tp, starts[tp])
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {sorted(map(str, todo))} took over {timeout:.0f}s")
        for tp, records in consumer.poll(timeout_ms=500).items():
            yield from records
            if tp in todo and consumer.position(tp) >= todo[tp]:
                del todo[tp]
