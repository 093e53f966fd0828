"""Consumer-group lag as the broker sees it: committed offsets against end offsets.

Asked of the broker rather than of the worker's own consumer, so a partition that no worker
consumes any more (a stalled rebalance, a dead replica) still shows its growing lag. Used by
``pileon check`` and by the worker's lag metrics (and so by the stall watchdog).

End offsets are the higher of ListOffsets' answer and the high watermark of a fetch at that
offset. Tansu 0.6 answers ListOffsets(latest) with the base offset of the partition's last
record batch plus one, not with the offset after its last record (one batch of 10 records then
one of 7: 11, not 17), so a group stuck inside a partition's last batch would show no lag and
the watchdog would not see it; its fetch responses carry the true high watermark. On Apache
Kafka the two agree and the fetch, at the end, returns nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pileon.kafka.connection import Connection, as_connection

_FETCH_WAIT_MS = 20
_FETCH_BUDGET_S = 1.0  # the longest a read waits for the fetch (past it, an older high watermark)


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
        # A fetch only for its high watermark: answered at once (no waiting for new records),
        # and as little data as the broker will send (at least one batch, by KIP-74).
        self._consumer = KafkaConsumer(**conn.kafka_python(client_id="pileon-lag"),
                                       enable_auto_commit=False, bootstrap_timeout_ms=ms,
                                       fetch_max_wait_ms=_FETCH_WAIT_MS,
                                       max_partition_fetch_bytes=1, fetch_max_bytes=1)
        if self.tps:
            self._consumer.assign(self.tps)

    def read(self) -> list[PartitionLag]:
        if not self.tps:
            return []
        offsets = self._admin.list_group_offsets({self.group: self.tps}).get(self.group, {})
        committed = {tp: m.offset for tp, m in offsets.items() if m and m.offset >= 0}
        ends = self._ends()
        return [PartitionLag(tp.topic, tp.partition, ends[tp], committed.get(tp))
                for tp in self.tps]

    def _ends(self) -> dict[TopicPartition, int]:
        """Each partition's end: the higher of ListOffsets' and a fetch's high watermark (see
        the module's docstring). Both only ever rise, so a high watermark this read did not
        refresh is an older one, still no higher than the truth: lag is never overstated."""
        consumer = self._consumer
        ends: dict[TopicPartition, int] = consumer.end_offsets(self.tps)
        for tp in self.tps:
            consumer.seek(tp, ends[tp])
        deadline = time.monotonic() + _FETCH_BUDGET_S
        while True:
            consumer.poll(timeout_ms=_FETCH_WAIT_MS * 2, max_records=1)
            known = {tp: consumer.highwater(tp) for tp in self.tps}
            if all(v is not None for v in known.values()) or time.monotonic() > deadline:
                break
        return {tp: max(end, known[tp] or 0) for tp, end in ends.items()}

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
