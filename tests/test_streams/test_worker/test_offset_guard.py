from __future__ import annotations

import asyncio
from collections import namedtuple
from typing import Any

import pytest
from faust.types.tuples import ConsumerMessage

from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.topics import TopicNames
from pileon.streams.worker import metrics, offset_guard
from pileon.streams.worker.offset_guard import OffsetGap, gapless

TP = namedtuple("TP", "topic partition")
RAW = TP("p.mentions.raw", 1)
OTHER = TP("app-window-changelog", 0)


class RecordingConsumer:
    """Stands in for Faust's consumer: remembers the gaps it was asked to record."""

    def __init__(self, earliest: int | None = 0, earliest_fails: bool = False) -> None:
        self._committed_offset: dict[Any, int | None] = {RAW: None, OTHER: None}
        self._acked: dict[Any, list[int]] = {RAW: [], OTHER: []}
        self.gaps: list[tuple[Any, int, int]] = []
        self.crashed: list[BaseException] = []
        self._earliest, self._earliest_fails = earliest, earliest_fails
        self.app = self

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        if self._earliest_fails:
            raise ConnectionError("broker away")
        return {tp: self._earliest for tp in tps} if self._earliest is not None else {}

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self.gaps.append((tp, offset_from, offset_to))

    def assignment(self) -> set[Any]:
        return {RAW, OTHER}

    async def perform_seek(self) -> None:  # Faust: committed offsets from the broker
        pass

    def _new_offset(self, tp: Any) -> int | None:  # Faust's rule, simplified: past the acked
        return max(self._acked[tp]) + 1 if self._acked[tp] else None


@pytest.fixture(autouse=True)
def _no_exit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    exits: list[int] = []
    monkeypatch.setattr(offset_guard, "EXIT_GRACE_SECONDS", 0.0)
    monkeypatch.setattr(offset_guard.os, "_exit", exits.append)
    return exits


def _guarded(**kwargs: Any) -> Any:
    return gapless(RecordingConsumer, frozenset({RAW.topic}))(**kwargs)


class TestGaplessConsumer:
    def test_a_gap_on_a_source_topic_stops_the_worker_before_anything_is_skipped(self) -> None:
        consumer = _guarded()
        before = metrics.OFFSET_GAPS.labels(RAW.topic)._value.get()
        with pytest.raises(OffsetGap, match=r"offset 2422 arrived before offsets 664\.\.2421"):
            asyncio.run(consumer._add_gap(RAW, 664, 2422))
        assert consumer.gaps == []  # never recorded, so never committed past
        assert isinstance(consumer.crashed[0], OffsetGap)
        assert metrics.OFFSET_GAPS.labels(RAW.topic)._value.get() == before + 1

    def test_records_deleted_by_retention_are_a_real_gap(self) -> None:
        consumer = _guarded(earliest=2422)
        asyncio.run(consumer._add_gap(RAW, 664, 2422))
        assert consumer.gaps == [(RAW, 664, 2422)] and consumer.crashed == []

    def test_retention_that_deleted_only_part_of_the_gap_still_stops(self) -> None:
        consumer = _guarded(earliest=1000)
        with pytest.raises(OffsetGap):
            asyncio.run(consumer._add_gap(RAW, 664, 2422))

    def test_when_the_log_start_cannot_be_read_it_stops(self) -> None:
        consumer = _guarded(earliest_fails=True)
        with pytest.raises(OffsetGap):
            asyncio.run(consumer._add_gap(RAW, 664, 2422))

    def test_a_worker_that_does_not_stop_in_time_exits(self, _no_exit: list[int]) -> None:
        async def gap_then_wait() -> None:
            with pytest.raises(OffsetGap):
                await _guarded()._add_gap(RAW, 664, 2422)
            await asyncio.sleep(0.01)  # Faust's stop hangs; the grace period (0 here) runs out

        asyncio.run(gap_then_wait())
        assert _no_exit == [offset_guard.EXIT_CODE]

    def test_other_topics_keep_fausts_gap_handling(self) -> None:
        consumer = _guarded()
        changelog = TP("app-window-changelog", 0)  # compacted: gaps are real there
        asyncio.run(consumer._add_gap(changelog, 5, 9))
        assert consumer.gaps == [(changelog, 5, 9)] and consumer.crashed == []


class TestStopMarker:
    def test_a_stop_is_counted_by_the_next_start(self, tmp_path: Any) -> None:
        marker = tmp_path / "offset-gap.json"
        consumer = gapless(RecordingConsumer, frozenset({RAW.topic}), marker)()
        with pytest.raises(OffsetGap):
            asyncio.run(consumer._add_gap(RAW, 664, 2422))
        assert "2422" in marker.read_text()
        before = metrics.OFFSET_GAPS.labels(RAW.topic)._value.get()
        offset_guard.report_previous_stop(marker)
        assert metrics.OFFSET_GAPS.labels(RAW.topic)._value.get() == before + 1
        assert metrics.OFFSET_GAP_STOP.labels(RAW.topic)._value.get() > 1.7e9  # when it stopped
        assert not marker.exists()

    def test_no_marker_no_count(self, tmp_path: Any) -> None:
        offset_guard.report_previous_stop(tmp_path / "offset-gap.json")  # nothing to report

    def test_an_unreadable_marker_is_still_counted(self, tmp_path: Any) -> None:
        marker = tmp_path / "offset-gap.json"
        marker.write_text("{not json")
        before = metrics.OFFSET_GAPS.labels("unknown")._value.get()
        offset_guard.report_previous_stop(marker)
        assert metrics.OFFSET_GAPS.labels("unknown")._value.get() == before + 1


class TestStrictCommits:
    def test_a_skipped_committed_offset_is_not_committed_past_and_stops_the_worker(self) -> None:
        async def commit() -> tuple[int | None, Any]:
            consumer = _guarded()
            consumer._committed_offset[RAW], consumer._acked[RAW] = 663, [664, 665]
            new = consumer._new_offset(RAW)  # Faust would commit 666, skipping 663
            await asyncio.sleep(0)  # the stop runs as a task
            return new, consumer

        new, consumer = asyncio.run(commit())
        assert new is None
        assert "offset 663 was never processed" in str(consumer.crashed[0])

    def test_a_hole_at_offset_zero_is_a_hole_too(self) -> None:
        async def commit() -> int | None:
            consumer = _guarded()
            consumer._committed_offset[RAW], consumer._acked[RAW] = 0, [5, 6]
            return consumer._new_offset(RAW)  # type: ignore[no-any-return]

        assert asyncio.run(commit()) is None

    def test_the_worker_is_stopped_once_for_several_reasons(self) -> None:
        consumer = _guarded()
        with pytest.raises(OffsetGap):
            asyncio.run(consumer._add_gap(RAW, 664, 2422))
        with pytest.raises(OffsetGap):
            asyncio.run(consumer._add_gap(RAW, 3000, 3100))
        assert len(consumer.crashed) == 1

    def test_without_a_committed_offset_the_log_start_is_the_floor(self) -> None:
        async def seek_then_commit() -> tuple[int | None, Any]:
            consumer = _guarded(earliest=0)
            await consumer.perform_seek()  # RAW has no committed offset: floor = log start 0
            consumer._acked[RAW] = [2404, 2405]  # a first record far past the log start
            new = consumer._new_offset(RAW)  # Faust would commit 2406, skipping 0..2403
            await asyncio.sleep(0)
            return new, consumer

        new, consumer = asyncio.run(seek_then_commit())
        assert new is None and "offset 0 was never processed" in str(consumer.crashed[0])

    def test_without_a_committed_offset_a_first_commit_from_the_log_start_goes(self) -> None:
        async def seek_then_commit() -> int | None:
            consumer = _guarded(earliest=417)
            await consumer.perform_seek()
            consumer._acked[RAW] = [417, 418]
            return consumer._new_offset(RAW)  # type: ignore[no-any-return]

        assert asyncio.run(seek_then_commit()) == 419

    def test_contiguous_acknowledgements_commit_as_faust_does(self) -> None:
        consumer = _guarded()
        consumer._committed_offset[RAW], consumer._acked[RAW] = 663, [663, 664]
        assert consumer._new_offset(RAW) == 665

    def test_other_topics_commit_as_faust_does(self) -> None:
        consumer = _guarded()
        consumer._committed_offset[OTHER], consumer._acked[OTHER] = 10, [20]
        assert consumer._new_offset(OTHER) == 21


class TestWorkerApp:
    def test_the_worker_consumes_through_the_guarded_consumer(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.streams.worker.app import build_app

        app = build_app(settings, watchlist, "127.0.0.1:1")
        assert type(app.consumer).__name__ == "GaplessConsumer"
        assert list(app.consumer._get_tasks())  # mode finds its service tasks (start-up needs them)

    def test_the_consumer_waits_for_a_fetch_as_long_as_the_setting_says(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.streams.worker.app import build_app

        settings = settings.model_copy(update={"worker": settings.worker.model_copy(
            update={"fetch_wait_ms": 37})})

        async def created() -> Any:  # aiokafka's consumer is made on a running loop
            app = build_app(settings, watchlist, "127.0.0.1:1")
            thread = app.consumer._thread
            return thread._create_worker_consumer(app.transport)

        consumer = asyncio.run(created())
        assert consumer._fetch_max_wait_ms == 37  # Faust's own is 1,500
        assert type(consumer).__name__ == "AIOKafkaConsumer"



class TestGenerations:
    """Against Faust's own consumer (the worker's app, not started): acknowledgements belong
    to the consumer group's current generation."""

    @pytest.fixture
    def consumer(self, settings: Settings, watchlist: Watchlist) -> Any:
        from pileon.streams.worker.app import build_app

        app = build_app(settings, watchlist, "127.0.0.1:1")
        app.consumer_generation_id = 7
        names = TopicNames.from_settings(settings.kafka)
        app.topics._acking_topics.update({names.raw, OTHER.topic})  # as Faust's start sets it
        return app.consumer

    @staticmethod
    def _message(consumer: Any, offset: int, generation: int, topic: str | None = None) -> Any:
        topic = topic or next(t for t in consumer.app.topics._acking_topics
                              if t.endswith("mentions.raw"))
        return ConsumerMessage(topic, 0, offset, 0.0, 0, None, None, b"{}", None,
                               generation_id=generation)

    def test_a_record_of_the_current_generation_is_acknowledged(self, consumer: Any) -> None:
        message = self._message(consumer, 5, generation=7)
        assert message.ack(consumer)
        assert consumer._acked[message.tp] == [5]

    def test_a_record_fetched_before_the_rebalance_is_not(self, consumer: Any) -> None:
        # Faust skips such a record and acknowledges it: the offset would sit above a
        # committed offset not yet read again, a hole Faust commits past.
        message = self._message(consumer, 5, generation=6)
        consumer._unacked_messages.add(message)
        assert not message.ack(consumer)
        assert consumer._acked[message.tp] == []
        assert message not in consumer._unacked_messages  # nothing waits for it
        assert message.acked

    def test_other_topics_keep_fausts_acknowledgements(self, consumer: Any) -> None:
        message = self._message(consumer, 5, generation=6, topic=OTHER.topic)
        assert message.ack(consumer)
        assert consumer._acked[message.tp] == [5]

    def test_an_assignment_forgets_acknowledgements_made_since_the_revocation(
        self, consumer: Any
    ) -> None:
        tp = self._message(consumer, 0, generation=7).tp
        consumer._acked[tp], consumer._acked_index[tp] = [40], {40}
        consumer._on_partitions_assigned = _nothing  # the app's callbacks: recovery and so on

        asyncio.run(consumer.on_partitions_assigned({tp}, 8))
        assert consumer._acked[tp] == []
        assert not consumer._acked_index[tp]

    def test_a_revocation_commits_what_is_acknowledged_first(self, consumer: Any) -> None:
        # Faust forgets the revoked partitions' acknowledgements before its own revocation
        # commit: without this the progress since the last periodic commit was never committed.
        tp = self._message(consumer, 0, generation=7).tp
        consumer._acked[tp], consumer._acked_index[tp] = [0, 1, 2], {0, 1, 2}
        seen: list[list[int]] = []

        async def commit(*args: Any, **kwargs: Any) -> bool:
            seen.append(list(consumer._acked[tp]))
            return True

        consumer.commit = commit
        consumer._on_partitions_revoked = _nothing  # the app's callbacks
        asyncio.run(consumer.on_partitions_revoked({tp}))
        assert seen == [[0, 1, 2]]  # committed while Faust still knew the acknowledgements
        assert tp not in consumer._acked  # then Faust forgot them, as before

    def test_a_failed_revocation_commit_still_revokes(self, consumer: Any) -> None:
        tp = self._message(consumer, 0, generation=7).tp
        consumer._acked[tp] = [0]

        async def commit(*args: Any, **kwargs: Any) -> bool:
            raise ConnectionError("coordinator away")

        consumer.commit = commit
        consumer._on_partitions_revoked = _nothing
        asyncio.run(consumer.on_partitions_revoked({tp}))
        assert tp not in consumer._acked


async def _nothing(*args: Any) -> None:
    return None
