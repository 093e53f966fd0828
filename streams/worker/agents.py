"""The worker's agent: one pass per mention, in batches.

``mentions.raw`` → **process**: each mention is validated, normalised and de-duplicated
(:class:`~pileon.streams.detection.ingest.Ingestor`), then clustered, binned, scored and decided
on (:class:`~pileon.streams.detection.analysis.PersonAnalyser`) in the same pass. Its clean
form still goes to ``mentions.clean`` for the evidence archiver and anyone else who reads it;
the worker does not read it back (until 0.x it did: a second Faust hop per mention, its stream
machinery and a second parse, about a quarter of a mention's CPU; docs/benchmarks.md).

Records are taken in batches (``worker.batch_max`` records or ``worker.batch_wait_ms``,
whichever comes first) straight from the queue Faust's consumer delivers ``mentions.raw`` to
(:func:`raw_channel`), not through a Faust stream: the consumer, its commits, rebalances, flow
control and table recovery are Faust's, but no event object and no stream machinery is made per
record (a quarter to a third of Faust's floor in the bare no-op agents, 6-24% of the worker's
CPU a mention; docs/benchmarks.md). Within a batch nothing is awaited per event: the clean
mentions, dead letters and re-keyed mentions of the batch are produced together, and then
awaited. The clean mentions go as Kafka record batches, a few per person (all of a person's
clean mentions share a partition), built with aiokafka's batch API rather than sent one by one
through Faust. Only once the broker has acknowledged every one of them (an alert links to
evidence the archiver can only find in ``mentions.clean``), and the batch's table changes too
(the state that records an incident must outlive the alert about it; a batch without alerts
only checks the changes answered so far, and a refused one stops the worker), are the alerts of
the batch produced, each awaited before it leaves its person's outbox, and only then are the
batch's records acknowledged to Faust's consumer, so their offsets are committed after
everything they caused is durable. A produce that fails after the client's own retries is
produced again, holding the batch, until it succeeds or the worker is stopped (the stall
watchdog stops a worker that stays stuck); its events are then read again: nothing is skipped.
An error out of the batch itself stops the worker before its events are acknowledged
(:func:`run_or_exit`).

A message whose processing raises is dead-lettered with its error class (Faust's agents
acknowledge an event even when the agent raises, faust-streaming #315, #527; this loop never
acknowledges a record whose batch did not finish): nothing is skipped silently. Table
writes in a batch have no current event; the tables are
:class:`~pileon.streams.worker.person_table.PersonTable`\\ s, whose changelog partition is
derived from the key's person.

A record of ``mentions.raw`` with the verdict header is not a mention but a responder's
disposition of an incident (:mod:`pileon.schema.verdict`, sent by the console): it is validated
and applied to its person's detector in the same batch, in order with their mentions.

An event fetched before the consumer group's latest rebalance is not processed: its partition
may belong to another worker now, and it is read again from the committed offset by whoever
owns it (the offset guard drops its acknowledgement).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import faust
from aiokafka.errors import (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from pileon.kafka.topics import key_partition
from pileon.schema.deadletter import Origin, dead_letter, shrunk
from pileon.schema.mention import Reason
from pileon.schema.verdict import is_verdict
from pileon.streams.detection import metrics as detection_metrics
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Clean, DeadLetter, Ingestor, Misrouted, VerdictIn
from pileon.streams.worker import metrics
from pileon.streams.worker.offset_guard import stale
from pileon.streams.worker.person_table import changelogs_durable

log = logging.getLogger(__name__)

_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
EXIT_CODE = 70  # EX_SOFTWARE, as the offset guard's stop


@dataclass(frozen=True)
class Topics:
    raw: Any
    clean: Any
    invalid: Any
    alerts: Any


@dataclass(frozen=True)
class Batching:
    max_events: int
    wait_seconds: float


@dataclass
class _Produce:
    """One record the batch produces, with what it takes to produce it again."""

    topic: Any
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: Any = None
    future: Awaitable[Any] | None = None
    source: Any = None  # the raw event of a clean mention: what a dead letter would keep

    async def start(self) -> None:
        self.future = await self.topic.send(key=self.key, value=self.value,
                                            partition=self.partition, headers=self.headers)

    def topic_name(self) -> str:
        return str(getattr(self.topic, "get_topic_name", lambda: "?")())


# A clean mention above this goes through the per-record path: a record batch of one record
# larger than the producer's request limit would be refused by the broker on every retry,
# where the per-record path refuses it before sending (and it is rare: a mention's clean form
# is a few hundred bytes).
_BATCHED_MAX_BYTES = 64 * 1024


@dataclass
class _RecordBatch:
    """Records for one partition, produced as one Kafka record batch (aiokafka's batch API):
    one future a batch instead of one a record, and no per-record trip through Faust's send
    path (together about 13% of the worker's CPU a mention; docs/benchmarks.md). The builder
    is closed before it is sent, so it does not linger; produced again after a failure, it
    is rebuilt from its records (Kafka appends a record batch whole or not at all)."""

    producer: Any  # aiokafka's AIOKafkaProducer
    topic: str
    partition: int
    records: list[tuple[bytes, bytes, Any]]  # key, value, and the raw event it comes from
    builder: Any = None
    future: Awaitable[Any] | None = None

    async def start(self) -> None:
        builder, self.builder = self.builder, None
        if builder is None:  # produced again: the first builder was consumed
            builder = self.producer.create_batch()
            for key, value, _ in self.records:
                if builder.append(key=key, value=value, timestamp=None, headers=[]) is None:
                    raise RuntimeError("a record batch did not fit when built again")
        builder.close()
        self.future = await self.producer.send_batch(builder, self.topic,
                                                     partition=self.partition)

    def topic_name(self) -> str:
        return self.topic


def record_batches(producer: Any, topic: str, partition: int,
                   records: Sequence[tuple[bytes, bytes, Any]]) -> list[_RecordBatch]:
    """``records`` (key, value, raw event) for one partition cut into as few record batches as
    the producer's batch size allows (a lone record larger than it still makes a batch of its
    own)."""
    out: list[_RecordBatch] = []
    current: list[tuple[bytes, bytes, Any]] = []
    builder = producer.create_batch()
    for record in records:
        key, value, _ = record
        if builder.append(key=key, value=value, timestamp=None, headers=[]) is None:
            out.append(_RecordBatch(producer, topic, partition, current, builder))
            current, builder = [], producer.create_batch()
            builder.append(key=key, value=value, timestamp=None, headers=[])
        current.append(record)
    if current:
        out.append(_RecordBatch(producer, topic, partition, current, builder))
    return out


class BatchPass:
    """Processes one batch of ``mentions.raw`` events (see the module docstring)."""

    def __init__(self, topics: Topics, ingestor: Ingestor, analyser: PersonAnalyser,
                 generation: Callable[[], int | None],
                 producer: Callable[[], Any] | None = None,
                 durable: Callable[[bool], Awaitable[None]] | None = None) -> None:
        """``durable(wait)`` raises if a table write was refused, after waiting until all of
        them are answered if ``wait`` (:func:`~pileon.streams.worker.person_table.
        changelogs_durable`)."""
        self.topics = topics
        self.ingestor = ingestor
        self.analyser = analyser
        self.generation = generation  # the consumer group's current generation
        self.producer = producer  # aiokafka's producer, for the clean mentions' record batches
        self.durable = durable
        self.misrouted = 0
        self._clean_partitions: int | None = None  # asked of the producer once

    async def run(self, events: Sequence[Any]) -> None:
        generation = self.generation()
        produced: list[_Produce | _RecordBatch] = []
        clean: dict[str, list[tuple[bytes, bytes, Any]]] = {}  # by person, in order, with
        # the raw event of each
        alerting: dict[str, None] = {}  # persons with alerts to deliver, in order
        for event in events:
            if stale(event.message, generation):
                continue
            try:
                self._process(event, produced, clean, alerting)
            except Exception as exc:
                produced.append(self._dead_letter(event, exc))
        # The batch's table records: a few chunks per person, then each changed state (with
        # its outbox) before any alert it holds is produced.
        self.ingestor.flush()
        self.analyser.flush()
        produced.extend(await self._clean_batches(clean))
        await _settle(produced, self._too_large)
        if self.durable is not None:
            # A batch with alerts waits until its table changes are in the changelog (the
            # states that hold the alerts): killed after an alert but before its state landed,
            # a restarted worker decided again from the older state, and an opening decided
            # again a bin later, or not at all until the next rise, paged under a second key.
            # Every batch checks the changes answered so far: one the broker refused (Faust
            # only logs it) stops the worker instead of going on from a table its changelog
            # does not hold.
            await self.durable(bool(alerting))
        for person in alerting:
            if self.generation() != generation:
                # Rebalanced while producing: the caches were dropped and the person may be
                # another worker's now. The saved outboxes still hold these alerts; whoever
                # owns the person sends them again (same idempotency keys), and no state is
                # written here for a person this worker may no longer own.
                return
            await self._deliver_alerts(person, generation)
        self.analyser.flush()  # the outboxes without the delivered alerts

    async def _clean_batches(
        self, clean: dict[str, list[tuple[bytes, bytes, Any]]]
    ) -> list[_Produce | _RecordBatch]:
        """The batch's clean mentions: a few record batches per person's partition, or one
        produce each where no aiokafka producer was given (unit tests) or a mention is large."""
        if self.producer is None:
            return [_Produce(self.topics.clean, k, v, source=e) for records in clean.values()
                    for k, v, e in records]
        producer = self.producer()
        topic = self.topics.clean.get_topic_name()
        if self._clean_partitions is None:
            self._clean_partitions = len(await producer.partitions_for(topic))
        out: list[_Produce | _RecordBatch] = []
        for person, records in clean.items():
            small = [r for r in records if len(r[1]) <= _BATCHED_MAX_BYTES]
            if len(small) < len(records):
                out.extend(_Produce(self.topics.clean, k, v, source=e) for k, v, e in records
                           if len(v) > _BATCHED_MAX_BYTES)
            if small:
                partition = key_partition(person.encode(), self._clean_partitions)
                out.extend(record_batches(producer, topic, partition, small))
        return out

    def _too_large(self, record: _Produce | _RecordBatch) -> list[_Produce | _RecordBatch] | None:
        """What to produce instead of a clean mention the broker refuses as too large (its
        topic's ``max.message.bytes`` below what ingest lets through): a record batch goes
        again one record a batch, and a lone record becomes a dead letter with reason
        ``too_large`` that keeps the raw original (its head above 512 KiB) and points at it
        in ``mentions.raw``. Retried as it was, it would be refused forever and stall its
        partition: every person there unwatched, for as long as one hostile post is around.
        A dead letter refused in turn goes again with only the first 1,024 bytes of its
        original. None for any other record (alerts, re-keyed mentions, a dead letter already
        that small): produced again."""
        if isinstance(record, _RecordBatch):  # clean mentions, each with its raw event
            if len(record.records) > 1:
                return [_RecordBatch(record.producer, record.topic, record.partition, [r])
                        for r in record.records]
            _, value, event = record.records[0]
        else:
            if record.topic is self.topics.invalid:  # a dead letter, cut to its head
                smaller = shrunk(record.value)
                if smaller is None:
                    return None
                log.error("a dead letter of %d bytes is over the broker's size limit for %s: "
                          "produced again with the original's first 1,024 bytes (its digest "
                          "and origin kept)", len(record.value), record.topic_name())
                return [_Produce(self.topics.invalid, record.key, smaller)]
            if record.source is None:
                return None
            event, value = record.source, record.value
        detection_metrics.DEAD_LETTERS.labels(Reason.TOO_LARGE).inc()
        log.error("the clean form of %s[%d]@%d (%d bytes) is over the broker's size limit for "
                  "%s: dead-lettered as too_large; the original stays in %s",
                  event.message.topic, event.message.partition, event.message.offset,
                  len(value), record.topic_name(), event.message.topic)
        letter = dead_letter(event.key, event.value, Reason.TOO_LARGE,
                             f"clean form of {len(value)} bytes refused by the broker as too "
                             f"large for {record.topic_name()}", origin(event))
        return [_Produce(self.topics.invalid, event.key, letter)]

    def _process(self, event: Any, produced: list[_Produce | _RecordBatch],
                 clean: dict[str, list[tuple[bytes, bytes, Any]]],
                 alerting: dict[str, None]) -> None:
        started = time.perf_counter()
        if is_verdict(event.message.headers):
            self._verdict(event, produced)
            return
        outcome = self.ingestor.process(event.key, event.value, origin(event))
        if isinstance(outcome, Clean):
            person = outcome.mention.person
            records = clean.get(person)
            if records is None:
                records = clean[person] = []
            records.append((person.encode(), outcome.value, event))
            analysed = time.perf_counter()
            _observe("ingest", started, analysed, event)
            if self.analyser.process(outcome.mention):
                alerting[person] = None
            _observe("analyse", analysed, time.perf_counter(), event)
            return
        if isinstance(outcome, DeadLetter):
            produced.append(_Produce(self.topics.invalid, event.key, outcome.value))
        elif isinstance(outcome, Misrouted):
            produced.append(self._send_home(event, "mention", outcome.mention.person,
                                            outcome.partition))
        _observe("ingest", started, time.perf_counter(), event)

    def _verdict(self, event: Any, produced: list[_Produce | _RecordBatch]) -> None:
        """A responder's verdict on an incident (:mod:`pileon.schema.verdict`): applied to the
        person's detector state, which the batch saves with its other changes."""
        outcome = self.ingestor.verdict(event.key, event.value, origin(event))
        if isinstance(outcome, VerdictIn):
            self.analyser.verdict(outcome.verdict)
        elif isinstance(outcome, DeadLetter):
            produced.append(_Produce(self.topics.invalid, event.key, outcome.value))
        else:
            produced.append(self._send_home(event, "verdict", outcome.verdict.person,
                                            outcome.partition))

    def _send_home(self, event: Any, what: str, person: str, partition: int) -> _Produce:
        """A record read outside its person's partition, produced again to ``mentions.raw``
        in that partition, to be read there (the first is logged as a warning, later ones are
        counted in pileon_misrouted_mentions_total)."""
        level = logging.DEBUG if self.misrouted else logging.WARNING
        self.misrouted += 1
        log.log(level, "%s in %s[%d]@%d belongs in partition %d (its producer did not key it by "
                "person): sent there; further ones are counted in "
                "pileon_misrouted_mentions_total", what, event.message.topic,
                event.message.partition, event.message.offset, partition)
        return _Produce(self.topics.raw, person.encode(), event.value, partition,
                        event.message.headers)

    def _dead_letter(self, event: Any, error: BaseException) -> _Produce:
        """The dead letter of a message whose processing raised, with the error class."""
        detection_metrics.DEAD_LETTERS.labels(Reason.PROCESSING_ERROR).inc()
        log.error(
            "processing failed for %s[%d]@%d: %s; dead-lettered",
            event.message.topic, event.message.partition, event.message.offset,
            type(error).__name__, exc_info=log.isEnabledFor(logging.DEBUG),
        )
        letter = dead_letter(
            event.key, event.value, Reason.PROCESSING_ERROR, str(error)[:200], origin(event),
            error_class=f"{type(error).__module__}.{type(error).__qualname__}",
        )
        return _Produce(self.topics.invalid, event.key, letter)

    async def _deliver_alerts(self, person: str, generation: int | None) -> None:
        """Produce the person's outbox in order, each alert awaited before it leaves it. One
        that fails stays, with those after it, and is sent again after the person's next
        mention (same idempotency key)."""
        delivered = 0
        try:
            for alert in self.analyser.outbox(person):
                sent = await self.topics.alerts.send(key=person.encode(), value=alert.to_json())
                await sent
                delivered += 1
        except Exception as exc:
            log.error("an alert of %s could not be produced (%s): it stays in the outbox and "
                      "is sent again with the person's next mention", person,
                      type(exc).__name__)
        finally:
            if self.generation() == generation:
                self.analyser.delivered(person, delivered)


_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


async def _settle(
    produced: Sequence[_Produce | _RecordBatch],
    too_large: Callable[[_Produce | _RecordBatch], list[_Produce | _RecordBatch] | None]
    | None = None,
) -> None:
    """Produce every record, then wait until the broker has acknowledged each, producing a
    failed one again; one refused as too large is replaced by what ``too_large`` gives, if
    anything (a retry would be refused again)."""
    for record in produced:  # all in flight before the first is awaited
        # One that cannot start is left without a future: produced again below, which logs.
        with contextlib.suppress(Exception):
            await record.start()
    for record in produced:
        attempt = 0
        while True:
            try:
                if record.future is None:
                    await record.start()
                await record.future  # type: ignore[misc]
                break
            except Exception as exc:
                instead = (too_large(record) if too_large is not None
                           and isinstance(exc, _TOO_LARGE) else None)
                if instead is not None:
                    await _settle(instead, too_large)
                    break
                record.future = None
                delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
                attempt += 1
                log.error("producing to %s failed (%s), attempt %d: producing it again in "
                          "%.1f s; the batch's offsets are not committed meanwhile",
                          record.topic_name(),
                          type(exc).__name__, attempt, delay)
                await asyncio.sleep(delay)


class Taken(NamedTuple):
    """A record of ``mentions.raw`` as the consumer delivered it: its key and value (bytes)
    and Faust's message (topic, partition, offset, timestamp, generation), which is
    acknowledged once the batch holding it is done."""

    key: bytes | None
    value: bytes | None
    message: Any


async def _taken(message: Any, *, propagate: bool = False) -> Taken:
    return Taken(message.key, message.value, message)


def raw_channel(app: faust.App, topic: Any) -> Any:
    """``topic`` as a channel whose queue the worker reads in batches itself, below Faust's
    streams: the consumer, its conductor and flow control deliver to it as to an agent's
    channel (the same queue, cleared on a rebalance, the same back-pressure), but each record
    becomes a :class:`Taken` instead of a Faust event, and no stream iterates it (Faust's
    per-event path cost a quarter to a third more than this one in the bare no-op agents, and
    the worker 6-24% of its CPU a mention; docs/benchmarks.md). Offsets, commits, rebalances
    and table recovery are Faust's as before, and :func:`consume` tracks and acknowledges
    records the way Faust's streams do. Relies on faust-streaming's ``Topic._compile_decode``
    (0.15), the hook by which a topic makes its decoder."""

    class RawChannel(type(topic)):  # type: ignore[misc]
        def _compile_decode(self) -> None:
            self.decode = _taken

    channel = RawChannel(app, topics=list(topic.topics), partitions=topic.partitions,
                         key_serializer=topic.key_serializer,
                         value_serializer=topic.value_serializer, is_iterator=True)
    app.topics.add(channel)
    return channel


async def batches(queue: Any, max_events: int, wait_seconds: float,
                  taken: Callable[[Taken], None] = lambda _: None
                  ) -> AsyncIterator[list[Taken]]:
    """Batches from ``queue``: up to ``max_events`` records, waiting at most ``wait_seconds``
    after the first for more (as ``take_events`` does). ``taken`` is called on each record as
    it is taken."""
    loop = asyncio.get_running_loop()
    while True:
        first = await queue.get()
        taken(first)
        batch = [first]
        deadline = loop.time() + wait_seconds
        while len(batch) < max_events:
            if queue.empty():
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    record = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
            else:
                record = queue.get_nowait()
            taken(record)
            batch.append(record)
        yield batch


def taker(consumer: Any, inbound: dict[Any, float]) -> Callable[[Taken], None]:
    """What :func:`batches` does with each record it takes: the consumer tracks it (see
    :func:`consume`), and ``inbound`` notes the partition's last take."""
    def take(record: Taken) -> None:
        message = record.message
        if not message.tracked:
            message.tracked = True
            consumer.track_message(message)
        inbound[message.tp] = time.monotonic()

    return take


async def consume(queue: Any, one_pass: BatchPass, batching: Batching, consumer: Any,
                  inbound: dict[Any, float]) -> None:
    """Run ``one_pass`` on every batch taken from ``queue`` and acknowledge its records to
    ``consumer`` once it has finished: everything the batch caused is durable by then, so
    Faust may commit past it.

    Each record is tracked by the consumer as it is taken, as Faust's streams do: a rebalance
    waits until the records taken are acknowledged (``Consumer.wait_empty``) before it commits
    and hands partitions over, so a batch under way finishes first. ``inbound``: each
    partition's last take (Faust's consumer warns of a partition whose records are not taken).
    """
    take = taker(consumer, inbound)
    async for batch in batches(queue, batching.max_events, batching.wait_seconds, take):
        await run_or_exit(one_pass, batch)
        for record in batch:
            record.message.ack(consumer)


def add_agents(app: faust.App, topics: Topics, ingestor: Ingestor, analyser: PersonAnalyser,
               batching: Batching) -> None:
    one_pass = BatchPass(topics, ingestor, analyser, lambda: app.consumer_generation_id,
                         producer=lambda: cast(Any, app.producer)._ensure_producer(),
                         durable=lambda wait: changelogs_durable(app, wait))
    channel = raw_channel(app, topics.raw)

    @app.task
    async def process() -> None:
        # Faust's consumer warns of a partition whose stream stopped taking records by this
        # (its streams set it per event; SlimMonitor keeps it).
        inbound = getattr(app.monitor, "stream_inbound_time", {})
        await consume(channel.queue, one_pass, batching, app.consumer, inbound)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget(sender: Any, revoked: Any = None, **_: Any) -> None:
        # Another worker may change these persons' state while we do not own them.
        ingestor.forget_cache()
        analyser.forget_cache()


async def run_or_exit(one_pass: BatchPass, events: Sequence[Any]) -> None:
    """Run a batch, or stop the worker before its events are acknowledged.

    One message's error is dead-lettered inside the batch. An error out of the batch itself
    (writing its table chunks, a bug in the produce or alert steps) leaves work undone for
    events Faust would acknowledge as soon as the agent moved on, and commit: the worker
    exits at once instead, without awaiting anything, and its supervisor restarts it to read
    the batch again from the committed offsets (at least once, never skipped).
    """
    try:
        await one_pass.run(events)
    except Exception as exc:
        log.critical("a batch of %d events could not be finished (%s: %s): stopping the worker "
                     "before its offsets are committed; restarted, it reads them again",
                     len(events), type(exc).__name__, str(exc)[:200],
                     exc_info=log.isEnabledFor(logging.DEBUG))
        logging.shutdown()
        _exit(EXIT_CODE)


def _exit(code: int) -> None:
    os._exit(code)


def origin(event: Any) -> Origin:
    msg = event.message
    return Origin(msg.topic, msg.partition, msg.offset, msg.timestamp)


_STAGES = {stage: (metrics.PROCESSING_SECONDS.labels(stage),
                   metrics.END_TO_END_SECONDS.labels(stage)) for stage in ("ingest", "analyse")}


def _observe(stage: str, started: float, ended: float, event: Any) -> None:
    processing, end_to_end = _STAGES[stage]  # the labelled series, looked up once
    processing.observe(ended - started)
    ts = event.message.timestamp
    if ts:
        end_to_end.observe(max(0.0, time.time() - ts))
