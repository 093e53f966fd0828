"""What the console knows of incidents comes from what pileon already produces: the ``alerts``
topic (every transition, as the notifier and the archiver read it), the archive's bundles
(``incidents/<id>/incident.json``, for alerts the topic no longer retains), and the
``evidence.heads`` topic (the chain's head at each alert, as the page carried it, for the
incident page to check against the chain).

All are idempotent on the event's ``idempotency_key``. The topic's offsets are stored in the
database in the same transaction as what was read from them (no consumer group), so a new
database reads the topic from its beginning and rebuilds every incident, and a restart
resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pileon.console.db import AlertRecord, ChainHeadRecord, FeedOffset, Incident
from pileon.console.verdicts import queue_verdict
from pileon.kafka.connection import Connection, as_connection
from pileon.schema.alert import AlertEvent, Transition
from pileon.schema.head import ChainHead

log = logging.getLogger(__name__)


def record_event(db: Session, event: AlertEvent) -> bool:
    """Add one transition to its incident (created on first sight); False if already known."""
    if db.get(AlertRecord, event.idempotency_key) is not None:
        return False
    at, opened = _dt(event.at), _dt(event.opened_at)
    incident = db.get(Incident, event.incident_id)
    if incident is None:
        incident = Incident(
            id=event.incident_id, person=event.person, timezone=event.timezone,
            severity=str(event.severity), firing=event.firing, assessment=event.assessment,
            opened_at=opened, last_at=at, score=event.score,
            evidence_from=_dt(event.evidence.from_), evidence_to=_dt(event.evidence.to),
            status="new",
        )
        db.add(incident)
        db.flush()  # the incident row before its events (no ORM relationship orders them)
    else:
        newest = at >= incident.last_at
        if newest:
            incident.last_at = at
            incident.firing = event.firing
            incident.assessment = event.assessment
        if event.transition is not Transition.RESOLVED:
            incident.severity = _max_severity(incident.severity, str(event.severity))
        incident.score = max(incident.score, event.score)
        span = (incident.evidence_from, incident.evidence_to, incident.last_at)
        incident.evidence_from = min(incident.evidence_from, _dt(event.evidence.from_))
        incident.evidence_to = max(incident.evidence_to, _dt(event.evidence.to))
        if incident.disposition == "coordinated" and span != (
                incident.evidence_from, incident.evidence_to, incident.last_at):
            # Found an attack while it went on: its later windows are the attack's too.
            queue_verdict(db, incident)
    db.add(AlertRecord(idempotency_key=event.idempotency_key, incident_id=event.incident_id,
                       transition=str(event.transition), at=at, body=event.to_dict()))
    db.flush()
    return True


def record_head(db: Session, head: ChainHead) -> bool:
    """Keep the chain head published for one alert transition; False if already known."""
    if db.get(ChainHeadRecord, head.idempotency_key) is not None:
        return False
    db.add(ChainHeadRecord(idempotency_key=head.idempotency_key, incident_id=head.incident_id,
                           person=head.person, seq=head.seq, head_hash=head.head_hash,
                           read_at=_dt(head.at), sealed=head.checkpoint is not None))
    db.flush()
    return True


def load_archive(sm: sessionmaker[Session], evidence_dir: Path) -> int:
    """Every transition in the archive's bundles that the database lacks; returns how many."""
    added = 0
    for saved in sorted((evidence_dir / "incidents").glob("*/incident.json")):
        try:
            events = [AlertEvent.from_json(e) for e in orjson.loads(saved.read_bytes())]
        except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
            log.error("archive %s is not a list of alert events (%s); skipped",
                      saved.parent.name, type(exc).__name__)
            continue
        with sm.begin() as db:
            added += sum(record_event(db, e) for e in events)
    return added


class KafkaFeed:
    """Follows the alerts topic (and the chain heads topic, when given) into the database
    until :meth:`stop`."""

    def __init__(self, connection: Connection, topic: str, sm: sessionmaker[Session],
                 heads_topic: str | None = None) -> None:
        self._conn = as_connection(connection)
        self._topic, self._heads, self._sm = topic, heads_topic, sm
        self._stop = threading.Event()
        self.caught_up = threading.Event()  # the end offsets seen at start have been read
        self.events = 0
        self.heads = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # a broker outage: the console keeps serving what it has
                log.warning("alerts feed interrupted (%s: %s); retrying in 5 s",
                            type(exc).__name__, exc)
                self._stop.wait(5.0)

    def _follow(self) -> None:
        consumer = KafkaConsumer(**self._conn.kafka_python(
            client_id="pileon-console", enable_auto_commit=False, group_id=None,
            auto_offset_reset="earliest"))
        try:
            topics = [self._topic, *([self._heads] if self._heads else [])]
            partitions = [tp for topic in topics
                          for tp in _partitions(consumer, topic, self._stop)]
            if self._stop.is_set():
                return
            consumer.assign(partitions)
            with self._sm() as db:
                stored = {(o.topic, o.partition): o.next_offset for o in db.scalars(
                    select(FeedOffset).where(FeedOffset.topic.in_(topics)))}
            for tp in partitions:
                if (tp.topic, tp.partition) in stored:
                    consumer.seek(tp, stored[(tp.topic, tp.partition)])
                else:
                    consumer.seek_to_beginning(tp)
            ends = consumer.end_offsets(partitions)
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=500, max_records=500)
                for tp, records in batch.items():
                    self._store(tp, records)
                if not self.caught_up.is_set() and all(
                        consumer.position(tp) >= end for tp, end in ends.items()):
                    self.caught_up.set()
        finally:
            consumer.close()

    def _store(self, tp: TopicPartition, records: list[Any]) -> None:
        with self._sm.begin() as db:
            for record in records:
                if tp.topic == self._heads:
                    try:
                        head = ChainHead.from_json(record.value)
                    except (ValidationError, orjson.JSONDecodeError, TypeError) as exc:
                        log.error("%s %d@%d is not a chain head (%s); skipped", tp.topic,
                                  record.partition, record.offset, type(exc).__name__)
                        continue
                    self.heads += record_head(db, head)
                    continue
                try:
                    event = AlertEvent.from_json(record.value)
                except ValidationError as exc:
                    log.error("alerts %d@%d is not an alert event (%d errors); skipped",
                              record.partition, record.offset, exc.error_count())
                    continue
                self.events += record_event(db, event)
            offset = db.get(FeedOffset, (tp.topic, tp.partition))
            if offset is None:
                db.add(FeedOffset(topic=tp.topic, partition=tp.partition,
                                  next_offset=records[-1].offset + 1))
            else:
                offset.next_offset = records[-1].offset + 1


def _partitions(consumer: KafkaConsumer, topic: str, stop: threading.Event) -> list[TopicPartition]:
    while not stop.is_set():
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        stop.wait(1.0)
    return []


def _max_severity(a: str, b: str) -> str:
    return "critical" if "critical" in (a, b) else a


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


__all__ = ["KafkaFeed", "load_archive", "record_event", "record_head"]
