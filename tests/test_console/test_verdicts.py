"""A responder's disposition goes on to the detector: queued with the case change, shown on the
incident page, produced to mentions.raw by the sender (a real broker), waiting while the broker
is away, and read back by the worker's ingest as a verdict of the person's partition."""

from __future__ import annotations

import logging
import socket
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from sqlalchemy import select

from pileon.console.db import Incident, VerdictRecord
from pileon.console.feed import record_event
from pileon.console.verdicts import VerdictSender
from pileon.core.settings import IngestSettings, KafkaSettings
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import ensure_topics, key_partition
from pileon.schema.deadletter import Origin
from pileon.schema.verdict import HEADER, VERDICT_SCHEMA, is_verdict
from pileon.streams.detection.ingest import Ingestor, VerdictIn
from tests.factories import alert_event
from tests.test_console.helpers import console_clients, csrf, write_archive


def _dispose(tmp: Path, *dispositions: str) -> tuple[object, str, list[VerdictRecord], str]:
    event = write_archive(tmp / "evidence")
    with console_clients(tmp) as (sm, clients):
        client = clients["responder"]
        token = csrf(client)
        for d in dispositions:
            assert client.post(f"/incidents/{event.incident_id}/disposition",
                               data={"csrf": token, "disposition": d}).status_code == 303
        page = client.get(f"/incidents/{event.incident_id}").text
        with sm() as db:
            rows = list(db.scalars(select(VerdictRecord).order_by(VerdictRecord.id)))
            db.expunge_all()
    return sm, str(event.incident_id), rows, page


def test_a_disposition_is_queued_for_the_detector_with_the_incidents_span(
        tmp_path: Path) -> None:
    _, incident, rows, page = _dispose(tmp_path, "coordinated", "organic")
    assert [(r.incident_id, r.person, r.disposition, r.sent_at) for r in rows] == [
        (incident, "amara", "coordinated", None), (incident, "amara", "organic", None)]
    assert rows[0].start < rows[0].end
    assert "waiting to reach the detector" in page


def test_a_coordinated_incident_that_goes_on_is_queued_again_with_its_longer_span(
        tmp_path: Path) -> None:
    event = write_archive(tmp_path / "evidence")
    with console_clients(tmp_path) as (sm, clients):
        client = clients["responder"]
        assert client.post(f"/incidents/{event.incident_id}/disposition", data={
            "csrf": csrf(client), "disposition": "coordinated"}).status_code == 303
        later = alert_event("amara", "resolved", opened=event.opened_at,
                            at="2026-11-20T14:00:00Z")
        with sm.begin() as db:
            assert record_event(db, later)
        with sm() as db:
            rows = list(db.scalars(select(VerdictRecord).order_by(VerdictRecord.id)))
            incident = db.get(Incident, event.incident_id)
            assert incident is not None
            assert len(rows) == 2 and rows[1].end > rows[0].end
            assert rows[1].end == max(incident.last_at, incident.evidence_to)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_verdicts_wait_while_the_broker_is_away(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    sm, _, _, _ = _dispose(tmp_path, "coordinated")
    sender = VerdictSender(f"127.0.0.1:{_free_port()}", "mentions.raw", sm,  # type: ignore[arg-type]
                           timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="pileon.console.verdicts"):
        assert sender.send_pending() == 0
        assert sender.send_pending() == 0
    assert len([r for r in caplog.records if "could not be sent" in r.message]) == 1
    with sm() as db:  # type: ignore[attr-defined]
        assert [r.sent_at for r in db.scalars(select(VerdictRecord))] == [None]


@pytest.mark.slow
def test_the_sender_produces_verdicts_the_worker_reads_in_the_persons_partition(
        embedded_broker: EmbeddedBroker, tmp_path: Path) -> None:
    bootstrap = embedded_broker.bootstrap
    settings = KafkaSettings(topic_prefix=f"v{uuid.uuid4().hex[:6]}.")
    names = ensure_topics(bootstrap, settings)
    sm, incident, _, _ = _dispose(tmp_path, "coordinated")
    sender = VerdictSender(bootstrap, names.raw, sm)  # type: ignore[arg-type]
    assert sender.send_pending() == 1
    assert sender.send_pending() == 0  # marked sent: not sent twice
    consumer = KafkaConsumer(names.raw, bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert is_verdict(record.headers) and (HEADER, VERDICT_SCHEMA.encode()) in record.headers
    assert record.key == b"amara"
    assert record.partition == key_partition(b"amara", settings.partitions)
    homes = {"amara": key_partition(b"amara", settings.partitions)}
    ingestor = Ingestor(frozenset(homes), IngestSettings(), {}, homes=homes)
    outcome = ingestor.verdict(record.key, record.value,
                               Origin(record.topic, record.partition, record.offset))
    assert isinstance(outcome, VerdictIn)
    assert (outcome.verdict.incident_id, outcome.verdict.disposition) == (incident,
                                                                          "coordinated")
    with sm() as db:  # type: ignore[attr-defined]
        assert all(r.sent_at is not None for r in db.scalars(select(VerdictRecord)))
