"""Consumer-group lag as the broker sees it: committed offsets against end offsets.

Asked of the broker rather than of the worker's own consumer, so a partition that no worker
consumes any more (a stalled rebalance, a dead replica) still shows its growing lag. Used by
``pileon check`` and by the worker's lag metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pileon.kafka.connection import Connection, as_connection


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    committed: int | None  # None: the group never committed on this partition

    @property
    def lag(self) -> int:
        # The embedded broker (Tansu 0.6) can report an end offset below a committed one.
        return max(0, self.end - (self.committed or 0))

    @property
    def end_below_committed(self) -> bool:
        return self.committed is not None and self.end < self.committed


class LagProbe:
    """Reads one group's lag on the given topics; keeps its two clients between reads."""

    def __init__(self, connection: Connection, group: str, partitions: dict[str, int],
                 timeout: float = 10.0) -> None:
        self.group = group
        self.tps = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
        ms = int(timeout * 1000)
        conn = as_connection(connection)
        self._admin = KafkaAdminClient(**conn.kafka_python(client_id="pileon-lag"),
                                       bootstrap_timeout_ms=ms)
        self._consumer = KafkaConsumer(**conn.kafka_python(client_id="pileon-lag"),
                                       enable_auto_commit=False, bootstrap_timeout_ms=ms)

    def read(self) -> list[PartitionLag]:
        if not self.tps:
            return []
        offsets = self._admin.list_group_offsets({self.group: self.tps}).get(self.group, {})
        committed = {tp: m.offset for tp, m in offsets.items() if m and m.offset >= 0}
        ends = self._consumer.end_offsets(self.tps)
        return [PartitionLag(tp.topic, tp.partition, ends[tp], committed.get(tp))
                for tp in self.tps]

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
