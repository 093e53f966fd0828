"""The two agents of the pipeline, each catching errors per message.

``mentions.raw`` → **ingest** (validate, normalise, exact de-dup) → ``mentions.clean`` |
``mentions.invalid``; ``mentions.clean`` → **analyse** (near-duplicates, detectors, incidents)
→ ``alerts``. Faust acknowledges an event even when the agent raises (faust-streaming #315,
#527), so a failing message is dead-lettered with its error class: nothing is skipped silently.
An alert leaves the analyser's outbox only once the broker has acknowledged it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust

from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import Mention, Reason
from pileon.streams.detection import metrics as detection_metrics
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Clean, DeadLetter, Ingestor, Misrouted
from pileon.streams.worker import metrics

log = logging.getLogger(__name__)

DeadLetterSender = Callable[[Any, BaseException], Awaitable[None]]


@dataclass(frozen=True)
class Topics:
    raw: Any
    clean: Any
    invalid: Any
    alerts: Any


def dead_letter_sender(invalid: Any) -> DeadLetterSender:
    """Sends a message whose processing raised to ``mentions.invalid``, with the error class."""

    async def send(event: Any, error: BaseException) -> None:
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
        await invalid.send(key=event.key, value=letter)

    return send


def add_agents(
    app: faust.App, topics: Topics, ingestor: Ingestor, analyser: PersonAnalyser
) -> None:
    send_dead_letter = dead_letter_sender(topics.invalid)

    @app.agent(topics.raw, name="ingest")
    async def ingest(stream: Any) -> None:
        misrouted = 0
        async for event in stream.events():
            started = time.perf_counter()
            try:
                outcome = ingestor.process(event.key, event.value, origin(event))
                if isinstance(outcome, Clean):
                    await topics.clean.send(key=outcome.mention.person.encode(),
                                            value=outcome.value)
                elif isinstance(outcome, DeadLetter):
                    await topics.invalid.send(key=event.key, value=outcome.value)
                elif isinstance(outcome, Misrouted):  # to be read in its person's partition
                    level = logging.DEBUG if misrouted else logging.WARNING
                    misrouted += 1
                    log.log(level, "mention in %s[%d]@%d belongs in partition %d (its producer "
                            "did not key it by person): sent there; further ones are counted "
                            "in pileon_misrouted_mentions_total", event.message.topic,
                            event.message.partition, event.message.offset, outcome.partition)
                    await topics.raw.send(key=outcome.mention.person.encode(), value=event.value,
                                          partition=outcome.partition,
                                          headers=event.message.headers)
            except Exception as exc:
                await send_dead_letter(event, exc)
            _observe("ingest", started, event)

    @app.agent(topics.clean, name="analyse")
    async def analyse(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                mention = Mention.model_validate_json(event.value)
                outbox = analyser.process(mention)
                for alert in outbox:  # wait for the broker: only then leave the outbox
                    sent = await topics.alerts.send(key=mention.person.encode(),
                                                    value=alert.to_json())
                    await sent
                analyser.delivered(mention.person, len(outbox))
            except Exception as exc:
                await send_dead_letter(event, exc)
            _observe("analyse", started, event)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget(sender: Any, revoked: Any = None, **_: Any) -> None:
        # Another worker may change these persons' state while we do not own them.
        ingestor.forget_cache()
        analyser.forget_cache()


def origin(event: Any) -> Origin:
    msg = event.message
    return Origin(msg.topic, msg.partition, msg.offset, msg.timestamp)


def _observe(stage: str, started: float, event: Any) -> None:
    metrics.PROCESSING_SECONDS.labels(stage).observe(time.perf_counter() - started)
    ts = event.message.timestamp
    if ts:
        metrics.END_TO_END_SECONDS.labels(stage).observe(max(0.0, time.time() - ts))
