"""Validation, normalisation and exact de-duplication of raw mentions.

Each raw message becomes exactly one of: a clean mention (re-serialised in canonical form), a
duplicate (same mention id already seen within ``dedup_hours`` of event time; counted, not
forwarded), or a dead letter with a reason.

The dedup record and the clean mention are two separate writes to Kafka, and a crash can make
the first durable without the second. So the record keeps where the mention was first read
(partition and offset of ``mentions.raw``): reading that same message again is a redelivery
after a crash, and it is forwarded again (at least once: the analyser and the evidence archiver
de-duplicate by id). Only another message with the same id is a duplicate.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pileon.core.settings import IngestSettings
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import InvalidMention, Mention, MentionValidator
from pileon.streams.detection import metrics
from pileon.streams.detection.window_store import WindowStore


@dataclass(frozen=True, slots=True)
class Clean:
    mention: Mention
    value: bytes


@dataclass(frozen=True, slots=True)
class Duplicate:
    mention_id: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    value: bytes
    reason: str


Outcome = Clean | Duplicate | DeadLetter


class Ingestor:
    def __init__(
        self,
        persons: frozenset[str],
        settings: IngestSettings,
        seen: MutableMapping[bytes, bytes],
    ) -> None:
        self._validator = MentionValidator(
            persons,
            max_bytes=settings.max_message_bytes,
            max_age=timedelta(days=settings.max_age_days),
            max_future=timedelta(seconds=settings.max_future_seconds),
        )
        self._seen = WindowStore(seen, settings.dedup_hours * 3600)

    def process(
        self, key: bytes | None, value: bytes | None, origin: Origin, now: datetime | None = None
    ) -> Outcome:
        try:
            mention = self._validator.validate(value, key, now or datetime.now(UTC))
        except InvalidMention as exc:
            metrics.DEAD_LETTERS.labels(exc.reason).inc()
            return DeadLetter(dead_letter(key, value, exc.reason, exc.detail, origin), exc.reason)
        person = mention.person
        first = self._seen.get(person, mention.id)
        here = [origin.partition, origin.offset]
        if first is not None and first.get("o") != here:
            metrics.DUPLICATES.labels(person).inc()
            return Duplicate(mention.id)
        if first is not None:
            metrics.REDELIVERED.labels(person).inc()
            return Clean(mention, mention.to_json())
        self._seen.put(person, mention.id, {"t": mention.event_time, "o": here})
        self._seen.expire(person, mention.event_time)
        metrics.MENTIONS.labels(person, mention.platform).inc()
        return Clean(mention, mention.to_json())

    def forget_cache(self) -> None:
        self._seen.forget_cache()
