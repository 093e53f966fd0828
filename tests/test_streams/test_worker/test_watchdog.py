from __future__ import annotations

from pileon.kafka.lag import PartitionLag
from pileon.streams.worker.watchdog import StallWatch

RAW0 = ("raw", 0)


def lag(committed: int | None, end: int = 100, partition: int = 0) -> list[PartitionLag]:
    return [PartitionLag("raw", partition, end=end, committed=committed)]


class TestStallWatch:
    def test_waiting_messages_without_progress_stall_after_the_limit(self) -> None:
        w = StallWatch(after_seconds=60)
        assert w.observe(0, {RAW0}, lag(10)) == {}
        assert w.observe(59, {RAW0}, lag(10)) == {}
        assert w.observe(75, {RAW0}, lag(10)) == {RAW0: 75}

    def test_progress_restarts_the_clock(self) -> None:
        w = StallWatch(after_seconds=60)
        w.observe(0, {RAW0}, lag(10))
        assert w.observe(50, {RAW0}, lag(11)) == {}
        assert w.observe(100, {RAW0}, lag(11)) == {}
        assert w.observe(111, {RAW0}, lag(11)) == {RAW0: 61}

    def test_a_caught_up_partition_is_idle_not_stalled(self) -> None:
        w = StallWatch(after_seconds=60)
        for t in range(0, 600, 30):
            assert w.observe(t, {RAW0}, lag(100)) == {}

    def test_a_partition_never_committed_can_stall(self) -> None:
        w = StallWatch(after_seconds=60)
        w.observe(0, {RAW0}, lag(None))
        assert w.observe(60, {RAW0}, lag(None)) == {RAW0: 60}

    def test_only_owned_partitions_count_and_a_new_owner_starts_fresh(self) -> None:
        w = StallWatch(after_seconds=60)
        w.observe(0, {RAW0}, lag(10))
        assert w.observe(70, set(), lag(10)) == {}  # revoked
        assert w.observe(80, {RAW0}, lag(10)) == {}  # assigned again: a new clock
        assert w.observe(140, {RAW0}, lag(10)) == {RAW0: 60}

    def test_reset_forgets_every_clock(self) -> None:
        w = StallWatch(after_seconds=60)
        w.observe(0, {RAW0}, lag(10))
        w.reset()  # a rebalance or table recovery
        assert w.observe(70, {RAW0}, lag(10)) == {}
