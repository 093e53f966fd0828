"""Notice when this worker owns partitions with waiting messages and makes no progress on them.

Rarely (about 1 in 13 runs of the two-workers fault test on Apache Kafka), after a rebalance
faust-streaming 0.15 recovers, logs "Worker ready", and never fetches the partitions it took
over: nothing is lost, but nothing moves either. The watchdog compares, for each partition this
worker owns, the group's committed offset with the partition's end offset (both from the
broker, as ``pileon check`` does): a partition with messages waiting whose committed offset has
not moved for ``stall_seconds`` is *stalled*. The worker then reports it on ``/healthz`` (503,
so a Kubernetes liveness probe restarts it) and in ``pileon_worker_stalled_partitions``, and
after ``stall_exit_seconds`` it stops with an error so any supervisor restarts it. A restart is
safe (offsets are committed only after processing; see the kill -9 fault test) and assigns the
partitions afresh.

Time spent rebalancing or restoring tables from changelogs does not count: the clock restarts
when they end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pileon.kafka.lag import PartitionLag

Partition = tuple[str, int]


@dataclass(frozen=True)
class _Seen:
    committed: int | None
    since: float


class StallWatch:
    """Pure bookkeeping: feed it the owned partitions and their lag; it says which are stuck.

    >>> from pileon.kafka.lag import PartitionLag
    >>> w = StallWatch(after_seconds=60)
    >>> waiting = [PartitionLag("raw", 0, end=100, committed=40)]
    >>> w.observe(0.0, {("raw", 0)}, waiting), w.observe(61.0, {("raw", 0)}, waiting)
    ({}, {('raw', 0): 61.0})
    """

    def __init__(self, after_seconds: float) -> None:
        self.after = after_seconds
        self._seen: dict[Partition, _Seen] = {}

    def reset(self) -> None:
        """Forget all progress clocks (a rebalance or a table recovery is under way)."""
        self._seen.clear()

    def observe(
        self, now: float, owned: set[Partition], lags: Iterable[PartitionLag]
    ) -> dict[Partition, float]:
        """Stalled owned partitions, with the seconds since their last progress."""
        stalled: dict[Partition, float] = {}
        current: dict[Partition, _Seen] = {}
        for lag in lags:
            key = (lag.topic, lag.partition)
            if key not in owned:
                continue
            before = self._seen.get(key)
            if lag.lag == 0 or before is None or before.committed != lag.committed:
                current[key] = _Seen(lag.committed, now)  # idle or moving: clock restarts
                continue
            current[key] = before
            if now - before.since >= self.after:
                stalled[key] = now - before.since
        self._seen = current
        return stalled
