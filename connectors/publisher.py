"""One connector's path into Kafka: publish, checkpoint, and resume without gaps or repeats.

A checkpoint can't be written atomically with the mentions it covers (no Kafka transactions:
the embedded broker lacks them), so a connector killed between a send and its checkpoint
would publish those mentions again on restart. Instead, like Kafka Connect's source offsets
plus a read-back:

* every record carries headers naming its connector (``pileon-source``) and mention id
  (``pileon-id``);
* a checkpoint is taken only when every earlier send is acknowledged, and stores, beside the
  source's position, the end offset of each ``mentions.raw`` partition at that moment;
* on restart, the records past those offsets are exactly what may have been published after
  the checkpoint; their (person, id) pairs from this connector are skipped when the source
  replays from the checkpointed position.

The source must replay from its position deterministically (a cursor, an id, a line number)
for this to hold. The read-back costs one pass over what all connectors wrote in the
``READ_BACK_SECONDS`` after the checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import TopicPartition

from pileon.connectors.checkpoint import CheckpointStore, read_range, reader
from pileon.connectors.metrics import (
    CONNECTOR_CHECKPOINT,
    CONNECTOR_DUPLICATES,
    CONNECTOR_PUBLISHED,
)
from pileon.connectors.producer import MentionProducer
from pileon.kafka.connection import Connection
from pileon.schema.change import ChangeEvent

log = logging.getLogger(__name__)

# Records of a connector written after its last checkpoint are at most this much younger than
# it (commit interval + the producer's delivery timeout, with room to spare). Bounding the
# read-back by it keeps a restart after a long outage from scanning all traffic since; a
# record later than that (a paused VM) would be sent twice and dropped by the worker's dedup.
READ_BACK_SECONDS = 600.0
SOURCE_HEADER = "pileon-source"
ID_HEADER = "pileon-id"


@dataclass
class Resume:
    """Where a connector starts: its source position (None: the source's default) and the
    mention ids it already published past that position."""

    position: Any = None
    published: set[tuple[str, str]] = field(default_factory=set)  # (person, mention id)


class Publisher:
    def __init__(
        self, name: str, producer: MentionProducer, store: CheckpointStore, *,
        connection: Connection, commit_seconds: float = 1.0, commit_mentions: int = 1000,
        changes_topic: str | None = None,
    ) -> None:
        self.name = name
        self.changes_topic = changes_topic
        self.producer = producer
        self.store = store
        self._connection = connection
        self._header = name.encode()
        self._commit_seconds = commit_seconds
        self._commit_mentions = commit_mentions
        self._skip: set[tuple[str, str]] = set()
        self._uncommitted = 0
        self._last_commit = time.monotonic()
        self._consumer: Any = None
        self.published = 0
        self.duplicates = 0

    def resume(self) -> Resume:
        """Load the checkpoint and read back what was published after it."""
        checkpoint = self.store.load(self.name)
        if checkpoint is None:
            log.info("connector %s has no checkpoint: starting from the source's default",
                     self.name)
            return Resume()
        offsets = {int(p): int(o) for p, o in checkpoint.get("offsets", {}).items()}
        saved = checkpoint.get("saved_at")
        until = datetime.fromisoformat(saved).timestamp() + READ_BACK_SECONDS if saved else None
        self._skip = self._published_after(offsets, until)
        log.info("connector %s resumes from its checkpoint of %s; %d mentions were published "
                 "after it and will not be sent again", self.name, checkpoint.get("saved_at"),
                 len(self._skip))
        return Resume(checkpoint.get("position"), set(self._skip))

    def publish(self, mention: dict[str, Any]) -> bool:
        """Send ``mention`` unless this connector already published it since its checkpoint."""
        mention_id = str(mention["id"])
        if self._skip and (str(mention["person"]), mention_id) in self._skip:
            self._skip.discard((str(mention["person"]), mention_id))
            self.duplicates += 1
            CONNECTOR_DUPLICATES.labels(self.name).inc()
            return False
        self.producer.send(mention, [(SOURCE_HEADER, self._header),
                                     (ID_HEADER, mention_id.encode())])
        self.published += 1
        self._uncommitted += 1
        CONNECTOR_PUBLISHED.labels(self.name).inc()
        return True

    def publish_change(self, change: ChangeEvent) -> None:
        """Send a deletion or edit to ``mentions.changes`` (keyed by person). The next
        :meth:`commit` waits for it like for a mention; a replay after a restart may send it
        twice, and the archiver keeps one."""
        if self.changes_topic is None:
            log.debug("connector %s has no changes topic: change not published", self.name)
            return
        self.producer.send_record(self.changes_topic, change.person.encode(), change.to_json())
        self._uncommitted += 1

    @property
    def pending(self) -> int:
        """Mentions sent since the last checkpoint."""
        return self._uncommitted

    def due(self) -> bool:
        return self._uncommitted >= self._commit_mentions or (
            time.monotonic() - self._last_commit >= self._commit_seconds
        )

    def commit(self, position: Any) -> None:
        """Wait for every send to be acknowledged, then checkpoint ``position``: the source
        position after the last mention handed to :meth:`publish`. Raises DeliveryError
        (nothing is checkpointed) if any send failed."""
        self.producer.flush()
        checkpoint = {
            "connector": self.name,
            "position": position,
            "offsets": {str(p): o for p, o in self._end_offsets().items()},
            "saved_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self.store.save(self.name, checkpoint)
        self._uncommitted = 0
        self._last_commit = time.monotonic()
        CONNECTOR_CHECKPOINT.labels(self.name).set(time.time())

    def _end_offsets(self) -> dict[int, int]:
        consumer = self._reader()
        ends = consumer.end_offsets(self._partitions(consumer))
        return {tp.partition: off for tp, off in ends.items()}

    def _published_after(
        self, offsets: dict[int, int], until: float | None
    ) -> set[tuple[str, str]]:
        consumer = self._reader()
        ids: set[tuple[str, str]] = set()
        tps = self._partitions(consumer)
        consumer.assign(tps)
        try:
            ends = consumer.end_offsets(tps)
            starts = {tp: offsets.get(tp.partition, 0) for tp in tps}
            bounds: dict[TopicPartition, int] = {}  # only where the time index was trusted
            if until is not None and until < time.time():  # stopped long ago: bound the scan
                for tp in tps:
                    bound = _time_bound(consumer, tp, starts[tp], ends[tp], until)
                    if bound < ends[tp]:
                        bounds[tp] = ends[tp] = bound
            for record in read_range(consumer, starts, ends):
                tp = TopicPartition(record.topic, record.partition)
                if tp in bounds and record.offset >= bounds[tp]:
                    continue  # fetched past the bound in the same batch
                if (ours := _published_by(record, self._header)) is not None:
                    ids.add(ours)
        finally:
            consumer.assign([])
        return ids

    def _reader(self) -> Any:
        if self._consumer is None:
            self._consumer = reader(self._connection)
        return self._consumer

    def _partitions(self, consumer: Any) -> list[TopicPartition]:
        topic = self.producer.topic
        deadline = time.monotonic() + 30
        while not (parts := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} has no partitions; run `pileon topics`")
            time.sleep(0.2)
        return [TopicPartition(topic, p) for p in sorted(parts)]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self.producer.close()


def _published_by(record: Any, source: bytes) -> tuple[str, str] | None:
    """(person, mention id) of a record connector ``source`` published, else None."""
    headers = dict(record.headers or [])
    if headers.get(SOURCE_HEADER) != source or ID_HEADER not in headers:
        return None
    return record.key.decode(), headers[ID_HEADER].decode()


def _time_bound(consumer: Any, tp: TopicPartition, start: int, end: int, until: float) -> int:
    """The first offset at or after ``until`` if the broker's time index can be trusted, else
    ``end``. The embedded broker (Tansu 0.6) answers time lookups with offset 0 and the current
    time, so the answer is checked against the record it points at."""
    found = consumer.offsets_for_times({tp: int(until * 1000)}).get(tp)
    if found is None or not start <= found.offset < end:
        return end
    consumer.seek(tp, found.offset)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in consumer.poll(timeout_ms=500).get(tp, []):
            if record.offset == found.offset:
                trusted = record.timestamp == found.timestamp and record.timestamp >= until * 1000
                return found.offset if trusted else end
    return end


def published_since(
    connection: Connection, topic: str, source: str, since: float
) -> Iterator[tuple[str, str, float]]:
    """(person, mention id, publish time) of what connector ``source`` wrote to ``topic`` since
    ``since`` (epoch seconds), found by record timestamp."""
    consumer = reader(connection)
    header = source.encode()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        found = consumer.offsets_for_times({tp: int(since * 1000) for tp in tps})
        starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
        for record in read_range(consumer, starts, ends):
            fresh = record.timestamp >= since * 1000  # brokers may look up times per batch
            if fresh and (ours := _published_by(record, header)) is not None:
                yield *ours, record.timestamp / 1000
    finally:
        consumer.close()
