"""Validation, normalisation and exact de-duplication of raw mentions.

Each raw message becomes exactly one of: a clean mention (re-serialised in canonical form), a
duplicate (same mention id already seen within ``dedup_hours`` of event time; counted, not
forwarded), or a dead letter with a reason.

The dedup record and the clean mention are two separate writes to Kafka, and a crash can make
the first durable without the second. So the record keeps where the mention was first read
(partition and offset of ``mentions.raw``): reading that same message again is a redelivery
after a crash, and it is forwarded again (at least once: the analyser and the evidence archiver
de-duplicate by id). Only another message with the same id is a duplicate.

The worker's tables are partitioned like ``mentions.raw``: a person's records belong in the
partition the producer's partitioner gives their key. A valid mention read from any other
partition (a producer that keyed it otherwise, or by nothing) is *misrouted*: it is not
de-duplicated or forwarded here, where its table records would land in another person's
partition, but sent back to ``mentions.raw`` in its person's partition, to be read there.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pileon.core.settings import IngestSettings
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import InvalidMention, Mention, MentionValidator
from pileon.schema.verdict import Verdict
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


@dataclass(frozen=True, slots=True)
class Misrouted:
    mention: Mention
    partition: int  # where the person's records belong


@dataclass(frozen=True, slots=True)
class VerdictIn:
    """A responder's verdict on one of the person's incidents, read in their partition."""

    verdict: Verdict


@dataclass(frozen=True, slots=True)
class MisroutedVerdict:
    verdict: Verdict
    partition: int  # where the person's records belong


Outcome = Clean | Duplicate | DeadLetter | Misrouted
VerdictOutcome = VerdictIn | DeadLetter | MisroutedVerdict


@cache
def _mentions(person: str, platform: str) -> Any:
    """The counter of one person's mentions from one platform, looked up once (the cache
    holds one entry per series the counter itself holds)."""
    return metrics.MENTIONS.labels(person, platform)


class Ingestor:
    def __init__(
        self,
        persons: frozenset[str],
        settings: IngestSettings,
        seen: MutableMapping[bytes, bytes],
        homes: Mapping[str, int] | None = None,
        buffered: bool = False,
    ) -> None:
        """``homes`` maps each of ``persons`` to their partition of ``mentions.raw`` (None: no
        check, for callers that do not read a partitioned topic). ``buffered``: the dedup
        records are written to ``seen`` by :meth:`flush` (once per batch), not one by one."""
        self._validator = MentionValidator(
            persons,
            max_bytes=settings.max_message_bytes,
            max_age=timedelta(days=settings.max_age_days),
            max_future=timedelta(seconds=settings.max_future_seconds),
        )
        self._seen = WindowStore(seen, settings.dedup_hours * 3600, buffered=buffered)
        self._homes = homes

    def process(
        self, key: bytes | None, value: bytes | None, origin: Origin, now: datetime | None = None
    ) -> Outcome:
        try:
            mention = self._validator.validate(value, key, now or datetime.now(UTC))
        except InvalidMention as exc:
            metrics.DEAD_LETTERS.labels(exc.reason).inc()
            return DeadLetter(dead_letter(key, value, exc.reason, exc.detail, origin), exc.reason)
        person = mention.person
        home = self._elsewhere(person, origin)
        if home is not None:
            return Misrouted(mention, home)
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
        _mentions(person, mention.platform).inc()
        return Clean(mention, mention.to_json())

    def verdict(self, key: bytes | None, value: bytes | None, origin: Origin) -> VerdictOutcome:
        """A record marked as a verdict (:func:`pileon.schema.verdict.is_verdict`): validated
        like a mention (a dead letter with the reason otherwise), and sent back to its person's
        partition if read in another one, where it would change another worker's state."""
        try:
            verdict = self._validator.validate_verdict(value, key)
        except InvalidMention as exc:
            metrics.DEAD_LETTERS.labels(exc.reason).inc()
            return DeadLetter(dead_letter(key, value, exc.reason, exc.detail, origin), exc.reason)
        home = self._elsewhere(verdict.person, origin)
        if home is not None:
            return MisroutedVerdict(verdict, home)
        return VerdictIn(verdict)

    def _elsewhere(self, person: str, origin: Origin) -> int | None:
        """The person's partition when ``origin`` is another one (counted as misrouted); None
        when read where it belongs, or when no partitions are checked."""
        if self._homes is None or origin.partition < 0:
            return None
        home = self._homes[person]  # a known person: the validator refuses the others
        if home == origin.partition:
            return None
        metrics.MISROUTED.labels(person).inc()
        return home

    def flush(self) -> int:
        """Write the dedup records gained since the last flush; returns the table writes."""
        return self._seen.flush()

    def forget_cache(self) -> None:
        self._seen.forget_cache()
