"""Never commit past records that were not delivered (a guard on faust-streaming's gaps).

faust-streaming 0.15 assumes that a record arriving beyond a partition's read offset + 1 means
the offsets in between do not exist (compacted away, or transaction markers): it records them
as a *gap*, later merges the gap into the acknowledged offsets and commits past it, and drops
the skipped records when they do arrive, as older than the new read offset ("DROPPED MESSAGE"
in ``Consumer._drain_messages``). Found by the two-workers fault test on Apache Kafka: after
taking a partition back, a worker received a stale prefetched record at offset 2422 while its
read offset was 663, and 1,759 acknowledged mentions (663-2421) were committed unprocessed.

pileon's source topics are never compacted and never written in transactions, so their
offsets are contiguous and a gap on them means records are about to be skipped. The guarded
consumer refuses: it stops the worker with :class:`OffsetGap` before the record that revealed
the gap is processed (so nothing past the hole is acknowledged or committed), and the worker's
supervisor (Kubernetes, the fault test) restarts it to read the partition again from its last
committed offset, as after a ``kill -9``: at least once, never skipped. Offsets below the
partition's log start (deleted by retention) are a real gap and are let through.

The commit step is made strict on the same topics. Faust declines to commit past a hole at the
head of a partition's acknowledged offsets only when the committed offset is truthy (not at 0),
and lets one skipped record through: it accepts a lowest acknowledged offset of committed + 1,
though the committed offset is the next one to read, and its gap check misses a first record
at committed + 1 too. The two-workers test on Tansu hit exactly that: the record at the
committed offset was never processed after a takeover (invisible to the test, because the
killed worker had forwarded it already). pileon's agents process a partition in order, so a
later acknowledged record with the committed one unacknowledged means it was skipped: no
commit is made, and the worker stops (:class:`OffsetGap`) to read it again.

Acknowledgements are kept to the current generation of the consumer group. Faust skips a
queued record that was fetched before the latest rebalance, and *acknowledges* it ("otherwise
the lag would increase"); a record whose processing straddled the rebalance is acknowledged
after it too. Either way the offset lands in the new generation's bookkeeping, though the
partition is read again from its committed offset: when the partition has come back to this
worker, the stale offset sits above a committed offset not yet re-read, a head-of-line hole
that Faust commits past when there is no committed offset or the hole is one record wide. The
guarded consumer drops the acknowledgement of a record from an older generation on the guarded
topics, and any left from before an assignment. (Found by reading Faust; in the loop runs that
followed it never fired, and the guard's stops went on at the same rate: they have another
cause, see docs/reliability.md.)

Progress is committed before a revocation. faust-streaming forgets a revoked partition's
acknowledgements *before* the app's revocation handler commits, so everything processed since
the last periodic commit was never committed: the next owner read it again (duplicates), and
when the partition came back to the same worker with its fetch position kept, the group's
commit lay below the first record processed in the new generation, a hole the guard stopped
on although the records had been processed (the stop diagnostics showed ``committed=None
floor=0 acked=128 in 2407..2538``). The guarded consumer commits what is acknowledged first
(Kafka's rebalance contract: commit in ``onPartitionsRevoked``), bounded by a few seconds.

A partition with no committed offset yet is where Faust is blindest: it accepts the first
record it sees without any gap check and commits past whatever came before (the two-workers
test lost 1,987 mentions this way on Apache Kafka when the first owner was killed before its
first commit). After every seek the guard reads the log start offset of such partitions from
the broker and holds commits to it as if it were the committed offset.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pileon.streams.worker import metrics

log = logging.getLogger(__name__)
_EARLIEST_TIMEOUT_SECONDS = 10.0
_REVOKE_COMMIT_TIMEOUT_SECONDS = 5.0  # well inside the rebalance timeout
# Faust's graceful stop waits for every delivered record to be acknowledged, and the record
# that revealed the gap never will be: past this, the process exits as a kill -9 would (safe:
# nothing past the hole was committed, and the restart reads it again).
EXIT_GRACE_SECONDS = 15.0
EXIT_CODE = 70  # EX_SOFTWARE


class OffsetGap(RuntimeError):
    """Records were about to be skipped: restart the worker, which reads them again."""


def guard_offsets(app: Any, topics: Iterable[str], marker: Path) -> None:
    """Make ``app``'s consumer stop rather than skip records on ``topics`` (before it starts).

    A stop leaves ``marker`` behind (the worker's data dir survives a container restart); the
    next start counts it in ``pileon_offset_gaps_total``, which the dying process itself would
    rarely have been scraped for.
    """
    report_previous_stop(marker)
    transport = app.transport
    consumer = gapless(transport.Consumer, frozenset(topics), marker)  # this transport's
    setattr(transport, "Consumer", consumer)  # noqa: B010 - a ClassVar, set on this transport only


def report_previous_stop(marker: Path) -> None:
    """Count and log a stop on an offset gap that the previous run left in ``marker``, and
    export its time (``pileon_offset_gap_stop_timestamp_seconds``, for the alert)."""
    try:
        previous = json.loads(marker.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        previous = {"topic": "unknown", "error": "unreadable marker"}
    topic = str(previous.get("topic", "unknown"))
    metrics.OFFSET_GAPS.labels(topic).inc()
    metrics.OFFSET_GAP_STOP.labels(topic).set(float(previous.get("at", time.time())))
    log.warning("the previous run stopped on an offset gap and was restarted: %s",
                previous.get("error"))
    marker.unlink(missing_ok=True)


def gapless(base: type[Any], topics: frozenset[str], marker: Path | None = None) -> type[Any]:
    """A subclass of Faust's consumer ``base`` that refuses gaps on ``topics``."""

    class GaplessConsumer(base):
        offset_gap_marker = marker

        async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
            if tp.topic in topics:
                await refuse_gap(self, tp, offset_from, offset_to)
            await super()._add_gap(tp, offset_from, offset_to)

        async def on_partitions_revoked(self, revoked: set[Any]) -> None:
            # Faust forgets a revoked partition's acknowledgements before its revocation
            # commit, so the progress since the last periodic commit was never committed: the
            # partition's next owner (often this worker again) read it again, and a position
            # kept across the rebalance then began above an uncommitted head, where the guard
            # stopped. Commit what is acknowledged first, as Kafka's rebalance contract intends.
            if any(tp.topic in topics for tp in revoked):
                try:
                    await asyncio.wait_for(self.commit(), _REVOKE_COMMIT_TIMEOUT_SECONDS)
                except Exception as exc:  # the next owner reads from the last commit: duplicates
                    log.warning("could not commit before the revocation: %s", type(exc).__name__)
                else:
                    log.info("committed before the revocation of %d partitions", len(revoked))
            await super().on_partitions_revoked(revoked)

        async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
            # Faust forgets a revoked partition's acknowledgements at the revocation, but an
            # older record acknowledged between revocation and assignment is recorded again:
            # the new assignment reads from the committed offset, so none of it holds.
            for tp in assigned:
                if tp.topic in topics:
                    self._acked.pop(tp, None)
                    self._acked_index.pop(tp, None)
            await super().on_partitions_assigned(assigned, generation_id)

        async def perform_seek(self) -> None:
            await super().perform_seek()
            self._offset_floor = await uncommitted_floors(self, topics)

        def ack(self, message: Any) -> bool:
            if message.tp.topic in topics and stale(message, self.app.consumer_generation_id):
                # Read again from the committed offset in this generation: it must not count
                # as acknowledged in it (nothing waits for it either).
                message.acked = True
                self._unacked_messages.discard(message)
                log.debug("not counting %s[%d]@%d as acknowledged: fetched in generation %s, "
                          "now %s", message.tp.topic, message.tp.partition, message.offset,
                          message.generation_id, self.app.consumer_generation_id)
                return False
            acked: bool = super().ack(message)
            return acked

        def _new_offset(self, tp: Any) -> int | None:
            committed = self._committed_offset[tp]
            if committed is None:  # nothing committed yet: the log start is the floor
                committed = getattr(self, "_offset_floor", {}).get(tp)
            if tp.topic in topics and head_unacknowledged(committed, self._acked[tp]):
                skipped = OffsetGap(
                    f"{tp.topic}[{tp.partition}]: offset {committed} was never processed but "
                    f"later ones were; not committing, stopping so it is read again "
                    f"(faust-streaming would have committed past it); {hole_diagnostics(self, tp)}")
                # (called from the commit path: the loop is running; keep the task referenced)
                self._offset_gap_stop = asyncio.ensure_future(stop(self, tp, skipped))
                return None
            new: int | None = super()._new_offset(tp)
            return new

    return GaplessConsumer  # (not renamed: mode registers a Service's tasks by its qualname)


async def log_starts(consumer: Any, tps: list[Any]) -> dict[Any, int] | None:
    """The log start offsets of ``tps`` (a bounded wait), or None if the broker can't say."""
    try:
        earliest = await asyncio.wait_for(consumer.earliest_offsets(*tps),
                                          _EARLIEST_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("could not read the log start of %d partitions: %s",
                    len(tps), type(exc).__name__)
        return None
    return {tp: int(offset) for tp, offset in earliest.items() if offset is not None}


async def uncommitted_floors(consumer: Any, topics: frozenset[str]) -> dict[Any, int]:
    """The log start offsets of the guarded partitions that have no committed offset (if the
    broker can't say, their first commits go as Faust would make them, unchecked)."""
    bare = [tp for tp in consumer.assignment()
            if tp.topic in topics and consumer._committed_offset[tp] is None]
    return (await log_starts(consumer, bare) or {}) if bare else {}


def hole_diagnostics(consumer: Any, tp: Any) -> str:
    """What Faust's bookkeeping says about a partition (offsets only: no message content), for
    the stop's message (logged once, and what an upstream report needs)."""
    try:
        acked = consumer._acked.get(tp) or []
        in_flight = sorted(m.offset for m in list(consumer._unacked_messages) if m.tp == tp)
        return (f"committed={consumer._committed_offset.get(tp)} "
                f"floor={getattr(consumer, '_offset_floor', {}).get(tp)} "
                f"read_offset={consumer._read_offset.get(tp)} "
                f"acked={len(acked)} in {min(acked, default=None)}..{max(acked, default=None)} "
                f"in_flight={in_flight[:5]}{'...' if len(in_flight) > 5 else ''} "
                f"generation={consumer.app.consumer_generation_id} "
                f"flow_active={consumer.flow_active}")
    except Exception as exc:  # diagnostics must never stand in the way of the stop
        return f"unavailable ({type(exc).__name__})"


def stale(message: Any, generation: int | None) -> bool:
    """Whether ``message`` was fetched before the consumer group's latest rebalance."""
    return message.generation_id is not None and message.generation_id != generation


def head_unacknowledged(committed: int | None, acked: list[int]) -> bool:
    """Whether the next offset to commit from was never acknowledged (a hole at the head)."""
    return committed is not None and bool(acked) and min(acked) > committed


async def refuse_gap(consumer: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Return if the records before ``offset_to`` were deleted by retention; otherwise stop
    the app and raise :class:`OffsetGap`."""
    earliest = (await log_starts(consumer, [tp]) or {}).get(tp)  # unknown: stop, the safe side
    if earliest is not None and earliest >= offset_to:
        return
    error = OffsetGap(
        f"{tp.topic}[{tp.partition}]: a record at offset {offset_to} arrived before offsets "
        f"{offset_from}..{offset_to - 1} were delivered; stopping so they are read again "
        "(faust-streaming would have skipped them)"
    )
    await stop(consumer, tp, error)
    raise error


async def stop(consumer: Any, tp: Any, error: OffsetGap) -> None:
    """Count, log and stop the app (once: the first reason is the one reported)."""
    if getattr(consumer, "_offset_gap", None) is not None:
        return
    consumer._offset_gap = error
    metrics.OFFSET_GAPS.labels(tp.topic).inc()
    metrics.OFFSET_GAP_STOP.labels(tp.topic).set_to_current_time()
    log.critical("%s", error)
    marker = getattr(consumer, "offset_gap_marker", None)
    if marker is not None:
        try:
            marker.write_text(json.dumps({"topic": tp.topic, "partition": tp.partition,
                                          "at": time.time(), "error": str(error)}))
        except OSError as exc:  # the restart still happens; only the count is lost
            log.error("could not leave the offset-gap marker %s: %s", marker, exc)
    asyncio.get_running_loop().call_later(EXIT_GRACE_SECONDS, _exit_now)
    await consumer.app.crash(error)


def _exit_now() -> None:
    log.critical("the worker did not stop within %.0fs of an offset gap: exiting",
                 EXIT_GRACE_SECONDS)
    logging.shutdown()
    os._exit(EXIT_CODE)
