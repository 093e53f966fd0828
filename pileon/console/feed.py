"""What the console knows of incidents comes from what pileon already produces: the ``alerts``
topic (every transition, as the notifier and the archiver read it) and the archive's bundles
(``incidents/<id>/incident.json``, for alerts the topic no longer retains).

Both are idempotent on the event's ``idempotency_key``. The topic's offsets are stored in the
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

from pileon.console.db import AlertRecord, FeedOffset, Incident
from pileon.kafka.connection import Connection, as_connection
from pileon.schema.alert import AlertEvent, Transition

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
        incident.evidence_from = min(incident.evidence_from, _dt(event.evidence.from_))
        incident.evidence_to = max(incident.evidence_to, _dt(event.evidence.to))
    db.add(AlertRecord(idempotency_key=event.idempotency_key, incident_id=event.incident_id,
                       transition=str(event.transition), at=at, body=event.to_dict()))
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
    """Follows the alerts topic into the database until :meth:`stop`."""

    def __init__(self, connection: Connection, topic: str, sm: sessionmaker[Session]) -> None:
        self._conn = as_connection(connection)
        self._topic, self._sm = topic, sm
        self._stop = threading.Event()
        self.caught_up = threading.Event()  # the end offsets seen at start have been read
        self.events = 0

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
            partitions = _partitions(consumer, self._topic, self._stop)
            if not partitions:
                return
            consumer.assign(partitions)
            with self._sm() as db:
                stored = {o.partition: o.next_offset for o in db.scalars(
                    select(FeedOffset).where(FeedOffset.topic == self._topic))}
            for tp in partitions:
                if tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])
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


__all__ = ["KafkaFeed", "load_archive", "record_event"]
