"""``pileon notify``: reads incident transitions from ``alerts`` and delivers them.

On start it rebuilds, from the part of the topic its group already committed, the incidents
still open (re-announced to Alertmanager every ``resend_seconds``) and the idempotency keys
already delivered (a worker that re-sends an alert after a crash does not page twice).

Every page carries the evidence chain's head at that alert, which the archiver publishes to
``evidence.heads`` once the alert's mentions are in the chain: a page waits for it at most
``head_wait_seconds`` (in order: later alerts queue behind it), then goes with the latest head
known for the person, said to be from before the alert. With no archiver (nothing ever on
``evidence.heads``) pages do not wait.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from pileon.alerting import metrics
from pileon.alerting.base import AlertSink
from pileon.alerting.dispatch import OffsetTracker, SinkWorker, Token
from pileon.alerting.notification import EvidenceHead, Notification, notification_from_event
from pileon.core.settings import AlertingSettings
from pileon.kafka.connection import Connection, as_connection
from pileon.schema.alert import ALERT_SCHEMA, AlertEvent
from pileon.schema.head import HEAD_SCHEMA, ChainHead

log = logging.getLogger(__name__)
_KEYS_KEPT = 100_000


class IncidentBook:
    """Open incidents (latest firing notification each) and delivered idempotency keys."""

    def __init__(self) -> None:
        self.open: dict[str, Notification] = {}
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen(self, key: str) -> bool:
        return key in self._keys

    def record(self, n: Notification) -> None:
        self._keys[n.idempotency_key] = None
        while len(self._keys) > _KEYS_KEPT:
            self._keys.popitem(last=False)
        if n.firing:
            self.open[n.incident_id] = n
        else:
            self.open.pop(n.incident_id, None)
        metrics.OPEN_INCIDENTS.set(len(self.open))


class Notifier:
    def __init__(
        self, connection: Connection, topic: str, cfg: AlertingSettings, sinks: Sequence[AlertSink],
        heads_topic: str | None = None,
    ) -> None:
        if not sinks:
            raise ValueError("no alert sinks configured: set alerting.alertmanager_urls or "
                             "alerting.webhook_url")
        self._connection, self._topic, self._cfg = as_connection(connection), topic, cfg
        self.book = IncidentBook()
        self._tracker = OffsetTracker(len(sinks))
        self._workers = [
            SinkWorker(s, queue_size=cfg.queue_size, max_retry_seconds=cfg.max_retry_seconds,
                       on_done=self._tracker.done)
            for s in sinks
        ]
        self._consumer: KafkaConsumer | None = None
        # Alerts read but not yet queued by every sink (a full queue: reading is paused), or
        # waiting for their chain head until their deadline (monotonic seconds).
        self._backlog: deque[tuple[Token, Notification, list[SinkWorker], float]] = deque()
        self._heads_topic = heads_topic
        self._heads_reader: KafkaConsumer | None = None
        self._heads: OrderedDict[str, ChainHead] = OrderedDict()  # by idempotency key
        self._latest: dict[str, ChainHead] = {}  # by person
        self._archiver_seen = False
        # Set once the group has given this notifier its partitions. Joining takes seconds
        # (Tansu answers a JoinGroup after half the session timeout, Apache Kafka after
        # group.initial.rebalance.delay.ms), so tests wait for it rather than guess.
        self.assigned = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self._consumer = KafkaConsumer(
            **self._connection.kafka_python(group_id=self._cfg.group_id),
            client_id="pileon-notify", enable_auto_commit=False, auto_offset_reset="earliest",
            # poll() runs at least every second (reading pauses instead of blocking), so a
            # replacement for a killed notifier does not wait the default 5 minutes to join.
            session_timeout_ms=10_000, heartbeat_interval_ms=3_000, max_poll_interval_ms=30_000,
        )
        self._consumer.subscribe([self._topic], listener=_Rebalance(self))
        self._rebuild()
        self._open_heads()
        for w in self._workers:
            w.start()
        next_refresh = time.monotonic()
        try:
            while not stop.is_set():
                self._read_heads()
                self._flow()
                for records in self._consumer.poll(timeout_ms=500).values():
                    for record in records:
                        self._handle(record)
                if time.monotonic() >= next_refresh:
                    for w in self._workers:
                        w.refresh(list(self.book.open.values()))
                    next_refresh = time.monotonic() + self._cfg.resend_seconds
                self._commit()
        finally:
            for w in self._workers:
                w.stop()
            self._commit()
            self._consumer.close()
            if self._heads_reader is not None:
                self._heads_reader.close()

    def _rebuild(self) -> None:
        """Replay what the group already committed, without delivering it again."""
        assert self._consumer is not None  # noqa: S101
        parts = self._consumer.partitions_for_topic(self._topic) or set()
        tps = [TopicPartition(self._topic, p) for p in sorted(parts)]
        committed = {tp: self._consumer.committed(tp) or 0 for tp in tps}
        todo = {tp: n for tp, n in committed.items() if n > 0}
        if not todo:
            return
        reader = KafkaConsumer(**self._connection.kafka_python(client_id="pileon-notify"),
                               enable_auto_commit=False)
        try:
            reader.assign(list(todo))
            reader.seek_to_beginning(*todo)
            while todo:
                for tp, records in reader.poll(timeout_ms=1000).items():
                    for r in records:
                        if r.offset < committed[tp] and (n := self._parse(r)) is not None:
                            self.book.record(n)
                    if reader.position(tp) >= todo.get(tp, 0):
                        todo.pop(tp, None)
        finally:
            reader.close()
        log.info("notifier resumed with %d open incident(s)", len(self.book.open))

    def _open_heads(self, recent: int = 500) -> None:
        """Read the last ``recent`` heads of every partition, then follow the topic."""
        if self._heads_topic is None or self._cfg.head_wait_seconds <= 0:
            return
        reader = KafkaConsumer(**self._connection.kafka_python(client_id="pileon-notify-heads"),
                               enable_auto_commit=False)
        parts = reader.partitions_for_topic(self._heads_topic) or set()
        tps = [TopicPartition(self._heads_topic, p) for p in sorted(parts)]
        if not tps:
            reader.close()
            log.warning("topic %s not found: pages go without the evidence chain's head "
                        "(run `pileon topics`)", self._heads_topic)
            return
        reader.assign(tps)
        ends = reader.end_offsets(tps)
        for tp in tps:
            reader.seek(tp, max(0, ends[tp] - recent))
        self._archiver_seen = any(ends.values())
        self._heads_reader = reader

    def _read_heads(self) -> None:
        if self._heads_reader is None:
            return
        for records in self._heads_reader.poll(timeout_ms=0).values():
            for r in records:
                try:
                    head = ChainHead.from_json(r.value)
                except (ValidationError, ValueError):
                    log.warning("%s %d@%d is not a %s record; skipped", r.topic, r.partition,
                                r.offset, HEAD_SCHEMA)
                    continue
                self._archiver_seen = True
                self._heads[head.idempotency_key] = head
                self._latest[head.person] = head
                while len(self._heads) > _KEYS_KEPT:
                    self._heads.popitem(last=False)

    def _with_head(self, n: Notification, deadline: float) -> Notification | None:
        """``n`` with its chain head; None while it should still wait for it."""
        if n.evidence_head is not None or self._heads_reader is None:
            return n
        body = self._heads.get(n.idempotency_key)
        if body is not None:
            return dataclasses.replace(n, evidence_head=EvidenceHead.from_head(body, True))
        if self._archiver_seen and time.monotonic() < deadline:
            return None
        metrics.HEADS_MISSING.inc()
        latest = self._latest.get(n.person)
        if latest is None:
            return n
        return dataclasses.replace(n, evidence_head=EvidenceHead.from_head(latest, False))

    def _parse(self, record: Any) -> Notification | None:
        try:
            return notification_from_event(AlertEvent.from_json(record.value), self._cfg)
        except ValidationError as exc:
            metrics.INVALID_EVENTS.inc()
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "(the message)"
            log.error("alerts %d@%d is not a %s event: field %s: %s; skipped and counted",
                      record.partition, record.offset, ALERT_SCHEMA, field, first["type"])
            return None

    def _handle(self, record: Any) -> None:
        token: Token = (TopicPartition(record.topic, record.partition), record.offset)
        n = self._parse(record)
        if n is None or self.book.seen(n.idempotency_key):
            if n is not None:
                metrics.DUPLICATE_EVENTS.inc()
            self._tracker.add(token, sinks=0)
            return
        self._tracker.add(token)
        self.book.record(n)
        log.info("incident %s %s (%s): delivering to %d sink(s)",
                 n.incident_id, n.transition, n.severity, len(self._workers))
        self._backlog.append((token, n, list(self._workers),
                              time.monotonic() + self._cfg.head_wait_seconds))
        self._flow()

    def _flow(self) -> None:
        """Queue the backlog in order; pause reading while a sink's queue is full."""
        assert self._consumer is not None  # noqa: S101
        while self._backlog:
            token, n, waiting, deadline = self._backlog[0]
            ready = self._with_head(n, deadline)
            if ready is None:
                return  # waiting for the archiver's head: keep reading meanwhile
            if ready is not n:
                n = ready
                self._backlog[0] = (token, n, waiting, deadline)
                current = self.book.open.get(n.incident_id)
                if current is not None and current.idempotency_key == n.idempotency_key:
                    self.book.open[n.incident_id] = n  # re-announced with its head
            waiting[:] = [w for w in waiting if not w.offer(token, n, timeout=0.05)]
            if waiting:
                self._consumer.pause(*self._consumer.assignment())
                return
            self._backlog.popleft()
        if self._consumer.paused():
            self._consumer.resume(*self._consumer.paused())

    def partitions_revoked(self, revoked: set[Any]) -> None:
        """Commit what is finished; what is not is the new owner's to deliver."""
        self._commit()
        self._tracker.forget(list(revoked))
        self._backlog = deque(item for item in self._backlog if item[0][0] not in revoked)

    def _commit(self) -> None:
        offsets = self._tracker.committable()
        if not offsets or self._consumer is None:
            return
        try:
            self._consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except (CommitFailedError, KafkaError) as exc:
            log.warning("committing alert offsets failed (%s); they are delivered again "
                        "after a restart", type(exc).__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._notifier.partitions_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        metrics.ASSIGNED_PARTITIONS.set(len(assigned))
        self._notifier.assigned.set()
