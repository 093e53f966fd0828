"""The evidence archiver: appends every clean mention to its person's hash chain and writes
an incident bundle on every alert transition.

It also appends the deletions and edits the connectors saw on the platforms' streams
(``mentions.changes``) to the change log and writes the bundles that hold those posts again,
and, for every alert, publishes the chain's head at that alert to ``evidence.heads`` (with its
signed checkpoint when the archiver has a key): the notifier puts it in the page, so the
people paged hold a copy of the head hash that no later edit of the archive can change.

Offsets are committed only after records are fsynced, so a crash re-reads rather than loses;
re-read mentions are skipped by id. Before exporting a bundle the archiver drains
``mentions.clean`` up to the end offsets seen when the alert arrived: the worker publishes a
mention before any alert it causes, so the bundle holds every mention the alert counted.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from pileon.core.times import epoch
from pileon.evidence import metrics
from pileon.evidence.anchors import Checkpoints, Sealer
from pileon.evidence.bundle import export_bundle
from pileon.evidence.chain import EvidenceLog
from pileon.evidence.platform import PlatformRecords
from pileon.evidence.rechecks import Rechecks
from pileon.evidence.retention import Retention, archive_lock
from pileon.kafka.connection import Connection, as_connection
from pileon.kafka.topics import TopicNames
from pileon.schema.alert import ALERT_SCHEMA, AlertEvent
from pileon.schema.change import CHANGE_SCHEMA, ChangeEvent
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.head import ChainHead
from pileon.schema.mention import Reason

log = logging.getLogger(__name__)

AlertCallback = Callable[[AlertEvent, Path], None]
ARCHIVER_GROUP = "pileon-evidence"  # its alerts consumer, unless evidence.group_id says


def clean_group(group_id: str = ARCHIVER_GROUP) -> str:
    """The group the archiver commits its ``mentions.clean`` offsets under, each time a poll's
    records are durable: its lag there is what is not archived yet (``pileon check``)."""
    return f"{group_id}-clean"


class Archiver:
    def __init__(
        self,
        connection: Connection,
        topics: TopicNames,
        root: Path,
        group_id: str = ARCHIVER_GROUP,
        on_bundle: AlertCallback | None = None,
        sealer: Sealer | None = None,
        checkpoint_seconds: float = 300.0,
        retention_days: float | None = None,
        expire_seconds: float = 3600.0,
        platform: PlatformRecords | None = None,
        platform_wait_seconds: float = 10.0,
        recheck_hours: Sequence[float] = (),
        metrics_seconds: float = 10.0,
    ) -> None:
        self.log = EvidenceLog(root / "chains")
        self.checkpoints = Checkpoints(root / "checkpoints", sealer) if sealer else None
        self._sealer = sealer
        self._checkpoint_seconds = checkpoint_seconds
        self._next_checkpoint = time.monotonic() + checkpoint_seconds
        self.retention = Retention(root, self.log, sealer, retention_days)
        self.platform = platform
        self._platform_wait = platform_wait_seconds
        self.changes = self.retention.changes
        self.rechecks = (Rechecks(root / "rechecks", platform, sealer, recheck_hours,
                                  self.changes)
                         if platform is not None and recheck_hours else None)
        self._next_recheck = time.monotonic()
        self._looking: threading.Thread | None = None
        self._looked: list[str] = []
        self._expire_seconds = expire_seconds
        self._next_expiry = time.monotonic()  # at start, then every expire_seconds
        self.incidents_dir = root / "incidents"
        self._root = root
        self._metrics_seconds = metrics_seconds
        self._next_probe = time.monotonic()
        self._topics = topics
        self._on_bundle = on_bundle
        self._events: dict[str, list[AlertEvent]] = {}
        self._stop = threading.Event()
        conn = as_connection(connection)
        self._consumer = KafkaConsumer(
            **conn.kafka_python(group_id=group_id, client_id="pileon-archiver"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
        )
        self._clean = KafkaConsumer(
            **conn.kafka_python(group_id=clean_group(group_id), client_id="pileon-archiver-clean"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        self._changes = KafkaConsumer(
            **conn.kafka_python(group_id=f"{group_id}-changes",
                                client_id="pileon-archiver-changes"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
        )
        self._producer = KafkaProducer(**conn.kafka_python(client_id="pileon-archiver",
                                                           acks="all", linger_ms=0))
        self._consumer.subscribe([topics.alerts])
        # Assigned, not subscribed: a bundle must hold every mention an alert counted, and a
        # group join can take seconds, during which "drain up to the end" would cover nothing.
        # Offsets are still committed under the group, so a restart resumes where it stopped.
        self._clean.assign(_partitions(self._clean, topics.clean))
        self._changes.assign(_partitions(self._changes, topics.changes))
        self.archived = 0
        self.changes_recorded = 0
        self.latest_event_time: str | None = None  # created_at of the newest mention archived

    def run(self) -> None:
        """Consume until :meth:`stop`; alerts are handled after the mentions they count."""
        with archive_lock(self.retention.root) as mine:
            if not mine:
                raise RuntimeError(f"another archiver runs on {self.retention.root} "
                                   "(archiver.lock)")
            self._run()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._drain_clean(timeout_ms=200)
            self._drain_changes()
            if self.checkpoints is not None and time.monotonic() >= self._next_checkpoint:
                self.checkpoint_all()
            self.retention.handle_requests()
            if self.rechecks is not None and time.monotonic() >= self._next_recheck:
                self._next_recheck = time.monotonic() + 60
                if self._looking is None or not self._looking.is_alive():
                    # Looking again reaches other servers: in a thread of its own, so the
                    # archive keeps up; the bundles are written again here.
                    self._looking = threading.Thread(target=self._look_again, daemon=True,
                                                     name="rechecks")
                    self._looking.start()
            while self._looked:
                self._reexport(self._looked.pop())
            if time.monotonic() >= self._next_expiry:
                self._next_expiry = time.monotonic() + self._expire_seconds
                self.retention.expire()
            if time.monotonic() >= self._next_probe:
                self._next_probe = time.monotonic() + self._metrics_seconds
                self.probe()
            batch = self._consumer.poll(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self._on_alert(record)
            if batch:
                self._consumer.commit()
        self.close()

    def close(self) -> None:
        """Close its Kafka clients (done by :meth:`run` when it stops)."""
        self._consumer.close()
        self._clean.close()
        self._changes.close()
        self._producer.close(timeout=10)

    def stop(self) -> None:
        self._stop.set()

    def _look_again(self) -> None:
        if self.rechecks is None:
            return
        try:
            self._looked.extend(self.rechecks.run_due())
        except Exception as exc:  # a later round tries again
            log.warning("rechecks: %s", type(exc).__name__)

    def _reexport(self, incident_id: str) -> None:
        """Write an incident's bundle again (new looks at its posts go into it)."""
        saved = self.incidents_dir / incident_id / "incident.json"
        if not saved.exists():
            return
        events = [AlertEvent.from_json(e) for e in orjson.loads(saved.read_bytes())]
        person = events[0].person
        checkpoints: list[dict[str, Any]] = []
        if self.checkpoints is not None:
            self.checkpoints.add(person, *self.log.head(person))
            checkpoints = self.checkpoints.records(person)
        export_bundle(self.log, events, self.incidents_dir / incident_id, sealer=self._sealer,
                      checkpoints=checkpoints, platform=self.platform, changes=self.changes)

    def probe(self) -> None:
        """Refresh the gauges that need a look outside: each consumed partition's lag and the
        evidence disk's space. The lag is the partition's high watermark as the last fetch
        response gave it, minus the archiver's position (its committed offset between polls:
        records are committed as soon as they are durable). No request is sent for it: with
        the archiver's own clean consumer asking Tansu for end offsets every 0.2 s, its alerts
        consumer never finished joining its group (no bundle in 90 s, against 24 s without;
        every 10 s: 47 s). Another client asking as often did not do it; the cause is not
        isolated."""
        try:
            usage = shutil.disk_usage(self._root if self._root.exists() else self._root.parent)
            metrics.DISK_FREE.set(usage.free)
            metrics.DISK_SIZE.set(usage.total)
        except OSError:
            pass
        for consumer in (self._clean, self._changes, self._consumer):
            for tp in consumer.assignment():
                end = consumer.highwater(tp)
                if end is None:  # not fetched from yet
                    continue
                position = consumer.position(tp)
                labels = (tp.topic, str(tp.partition))
                metrics.LAG.labels(*labels).set(max(0, end - position))
                metrics.COMMITTED_OFFSET.labels(*labels).set(position)

    def checkpoint_all(self) -> int:
        """Seal every chain that grew since its last checkpoint; returns how many."""
        if self.checkpoints is None:
            return 0
        self._next_checkpoint = time.monotonic() + self._checkpoint_seconds
        made = 0
        for person in self.log.persons():
            seq, head = self.log.head(person)
            made += self.checkpoints.add(person, seq, head) is not None
        return made

    def _drain_clean(self, timeout_ms: int, until: dict[TopicPartition, int] | None = None) -> None:
        while True:
            batch = self._clean.poll(timeout_ms=timeout_ms)
            # One write and one fsync per person per poll (a group commit), then the offsets.
            started = time.perf_counter()
            appended = self.log.append_many(
                (orjson.loads(r.value),
                 {"topic": r.topic, "partition": r.partition, "offset": r.offset})
                for records in batch.values() for r in records)
            if batch:
                metrics.APPEND_SECONDS.observe(time.perf_counter() - started)
            if appended:
                self.archived += len(appended)
                for person, n in Counter(str(r["mention"]["person"]) for r in appended).items():
                    metrics.RECORDS.labels(person).inc(n)
                self.latest_event_time = max(
                    str(r["mention"].get("created_at") or "") for r in appended
                ) or self.latest_event_time
            if batch:
                self._clean.commit()
            if until is None:
                if not batch:
                    return
                continue
            if all(self._clean.position(tp) >= end for tp, end in until.items()):
                return

    def _drain_changes(self) -> None:
        """Append the deletions and edits the connectors saw; write the bundles that hold
        those posts again. A change of a post not archived yet is kept all the same (a bundle
        made later picks it up)."""
        batch = self._changes.poll(timeout_ms=0)
        touched: dict[str, set[str]] = {}
        for records in batch.values():
            for r in records:
                try:
                    change = ChangeEvent.from_json(r.value)
                except (ValidationError, ValueError) as exc:
                    self._dead_letter(r, exc)
                    continue
                if self.changes.append(change.person, change.log_entry()) is not None:
                    self.changes_recorded += 1
                    metrics.CHANGES.inc()
                    touched.setdefault(change.person, set()).add(change.of)
        for person, ids in touched.items():
            for incident_id in self._incidents_holding(person, ids):
                self._reexport(incident_id)
        if batch:
            self._producer.flush(timeout=30)  # the dead letters, before the offsets move
            self._changes.commit()

    def _dead_letter(self, record: Any, exc: Exception) -> None:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"]) or "(the message)"
            detail = f"not a {CHANGE_SCHEMA} event: field {field}: {first['type']}"
        else:
            detail = f"not a {CHANGE_SCHEMA} event: {type(exc).__name__}"
        log.warning("%s %d@%d dead-lettered: %s", record.topic, record.partition,
                    record.offset, detail)
        metrics.DEAD_LETTERS.inc()
        self._producer.send(self._topics.invalid, key=record.key, value=dead_letter(
            record.key, record.value, Reason.SCHEMA, detail,
            Origin(record.topic, record.partition, record.offset, record.timestamp / 1000)))

    def _incidents_holding(self, person: str, ids: set[str]) -> list[str]:
        """The incidents of ``person`` whose bundle holds one of these mentions."""
        needles = [orjson.dumps(i) for i in ids]
        found: list[str] = []
        if not self.incidents_dir.is_dir():
            return found
        for folder in sorted(self.incidents_dir.iterdir()):
            path = folder / "mentions.jsonl"
            if not path.exists() or not folder.name.startswith(f"{person}-"):
                continue
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(folder.name)
        return found

    def _publish_head(self, event: AlertEvent, seq: int, hash_: str,
                      checkpoint: dict[str, Any] | None) -> None:
        """The chain's head at this alert, for the notifier to put in the page."""
        head = ChainHead(incident_id=event.incident_id,
                         idempotency_key=event.idempotency_key, person=event.person, seq=seq,
                         head_hash=hash_, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         checkpoint=checkpoint)
        try:
            self._producer.send(self._topics.heads, key=event.person.encode(),
                                value=head.to_json()).get(timeout=30)
        except KafkaError as exc:  # the bundle holds it anyway; the page goes without it
            metrics.HEADS_UNPUBLISHED.inc()
            log.warning("head of incident %s not published: %s", event.incident_id,
                        type(exc).__name__)

    def _on_alert(self, record: Any) -> None:
        try:
            event = AlertEvent.from_json(record.value)
        except ValidationError as exc:
            # Only pileon workers write this topic: a bad event is a bug to see, not to die on.
            log.error("alerts %d@%d is not a %s event (%d errors); no bundle made for it",
                      record.partition, record.offset, ALERT_SCHEMA, exc.error_count())
            return
        events = self._events.get(event.incident_id)
        if events is None:  # after a restart, continue the incident's existing bundle
            saved = self.incidents_dir / event.incident_id / "incident.json"
            events = ([AlertEvent.from_json(e) for e in orjson.loads(saved.read_bytes())]
                      if saved.exists() else [])
            self._events[event.incident_id] = events
        if any(e.idempotency_key == event.idempotency_key for e in events):
            return  # re-delivered transition
        events.append(event)
        partitions = list(self._clean.assignment())
        self._drain_clean(timeout_ms=100, until=self._clean.end_offsets(partitions))
        if self.platform is not None:  # the signed records of the incident's Bluesky posts
            since = epoch(events[0].opened_at) - 3600
            for record in self.log.records(event.person):
                if epoch(record["mention"]["created_at"]) >= since:
                    self.platform.want(record["mention"])
            self.platform.drain(self._platform_wait)
        checkpoints: list[dict[str, Any]] = []
        sealed = None
        seq, head = self.log.head(event.person)
        if self.checkpoints is not None:
            self.checkpoints.add(event.person, seq, head)
            checkpoints = self.checkpoints.records(event.person)
            sealed = next((c for c in reversed(checkpoints) if c["statement"]["seq"] == seq),
                          None)
        self._publish_head(event, seq, head, sealed)
        folder = export_bundle(self.log, events, self.incidents_dir / event.incident_id,
                               sealer=self._sealer, checkpoints=checkpoints,
                               platform=self.platform, changes=self.changes)
        self.retention.hold(event.incident_id)
        metrics.BUNDLES.labels(event.transition.value).inc()
        if self.rechecks is not None:
            since = epoch(events[0].opened_at) - 3600  # the posts the bundle holds
            self.rechecks.schedule(event.incident_id, events[0].opened_at, [
                r["mention"] for r in self.log.records(event.person)
                if epoch(r["mention"]["created_at"]) >= since])
            self._next_recheck = time.monotonic()  # a look already due (an old incident)
        log.info("incident %s %s: bundle at %s", event.incident_id, event.transition, folder)
        if self._on_bundle is not None:
            self._on_bundle(event, folder)


def _partitions(consumer: KafkaConsumer, topic: str, timeout: float = 30.0) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {topic} has no partitions: run `pileon topics` first")
        time.sleep(0.2)
