"""Responders' dispositions, sent on to the detector (``pileon.verdict/v1``).

pileon's bars are calibrated on the person's own bursts, attacks included, because nothing in
the traffic tells an attack from an ordinary burst. A person attacked more often than the
false-alarm budget would teach the detector that their attacks are ordinary, and stop being
paged for them. The responder can tell them apart: a disposition of ``coordinated`` takes the
incident's calibration crossings back in the worker
(:meth:`pileon.streams.detection.analysis.PersonAnalyser.verdict`); any other disposition
counts them again.

The console does not write to Kafka in the request that sets a disposition (a broker away
must not make case work fail): the disposition, its audit entry and a verdict row are one
transaction (:func:`queue_verdict`), and :class:`VerdictSender` produces unsent rows to
``mentions.raw``, keyed by person and marked with the verdict header, marking each sent once
the broker acknowledged it (acks=all). Unsent rows wait, and are retried every few seconds.
A ``coordinated`` incident that goes on after its verdict gets another row with its longer
span when its next transition arrives (:func:`pileon.console.feed.record_event`).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from kafka import KafkaProducer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pileon.console.db import Incident, VerdictRecord, now
from pileon.kafka.connection import Connection, as_connection
from pileon.schema.verdict import Verdict

log = logging.getLogger(__name__)

_SEND_TIMEOUT_S = 10.0


def queue_verdict(db: Session, incident: Incident, at: datetime | None = None) -> VerdictRecord:
    """A verdict row for ``incident``'s disposition as it is now (the caller commits)."""
    assert incident.disposition is not None  # noqa: S101 - only a set disposition is sent
    row = VerdictRecord(
        incident_id=incident.id, person=incident.person, disposition=incident.disposition,
        start=incident.evidence_from, end=max(incident.last_at, incident.evidence_to),
        at=at or now(), sent_at=None)
    db.add(row)
    return row


def verdict_of(row: VerdictRecord) -> Verdict:
    return Verdict.model_validate({
        "person": row.person, "incident_id": row.incident_id, "disposition": row.disposition,
        "start": row.start, "end": row.end, "at": row.at})


def delivery(db: Session, incident_id: str) -> VerdictRecord | None:
    """The newest verdict row of an incident (sent or not), for its page."""
    return db.scalars(select(VerdictRecord).where(VerdictRecord.incident_id == incident_id)
                      .order_by(VerdictRecord.id.desc()).limit(1)).first()


class VerdictSender:
    """Produces the unsent verdict rows to ``topic``, oldest first, every ``every`` seconds
    (or at once after :meth:`wake`); run in a thread with :meth:`run`, stop with :meth:`stop`."""

    def __init__(self, connection: Connection, topic: str, sm: sessionmaker[Session],
                 every: float = 2.0, timeout: float = _SEND_TIMEOUT_S) -> None:
        self._connection = as_connection(connection)
        self._topic = topic
        self._sm = sm
        self._every = every
        self._timeout = timeout  # the longest a send, its flush or its answer may block
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._producer: KafkaProducer | None = None
        self._failing = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self.send_pending()
            self._wake.wait(self._every)
            self._wake.clear()
        if self._producer is not None:
            self._producer.close(timeout=5)

    def send_pending(self) -> int:
        """Send what is unsent; returns how many the broker acknowledged."""
        try:
            sent = self._send()
        except Exception as exc:  # the broker away, or refusing: the rows wait
            if not self._failing:
                log.warning("console: responders' verdicts could not be sent to %s (%s); "
                            "retrying every %.0f s", self._topic, type(exc).__name__,
                            self._every)
            self._failing = True
            return 0
        if self._failing:
            log.info("console: responders' verdicts are reaching %s again", self._topic)
        self._failing = False
        return sent

    def _send(self) -> int:
        with self._sm() as db:
            rows = list(db.scalars(select(VerdictRecord).where(VerdictRecord.sent_at.is_(None))
                                   .order_by(VerdictRecord.id).limit(100)))
            if not rows:
                return 0
            producer = self._producer_now()
            futures = [producer.send(self._topic, key=row.person.encode(),
                                     value=verdict_of(row).to_json(), headers=Verdict.headers())
                       for row in rows]
            producer.flush(timeout=self._timeout)
            sent, failure = 0, None
            for row, future in zip(rows, futures, strict=True):
                try:
                    future.get(timeout=self._timeout)  # raises if the broker refused it
                except Exception as exc:
                    failure = exc
                    break  # in order: the ones after it wait too
                row.sent_at = now()
                sent += 1
            db.commit()
            if sent:
                log.info("console: %d responders' verdicts sent to the detector", sent)
            if failure is not None:
                raise failure
            return sent

    def _producer_now(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                **self._connection.kafka_python(client_id="pileon-console-verdicts"),
                acks="all", retries=5, max_block_ms=int(self._timeout * 1000),
                bootstrap_timeout_ms=int(self._timeout * 1000))
        return self._producer
