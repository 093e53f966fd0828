"""Each sink behind its own bounded queue and delivery thread, with retries.

A failing receiver fills only its own queue; when a queue is full the notifier stops reading
the ``alerts`` topic (it never blocks the stream workers, which only write to that topic).
Offsets are committed only up to the first alert not yet finished by every sink, so an alert
pending at a crash is delivered again after the restart, with the same idempotency key.

Retries use :class:`pileon.core.retry.Backoff` (exponential, full jitter).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pileon.alerting import metrics
from pileon.alerting.base import AlertSink, DeliveryFailed, Rejected
from pileon.alerting.notification import Notification
from pileon.core.retry import Backoff

log = logging.getLogger(__name__)

Token = tuple[Any, int]  # (topic partition, offset)


@dataclass
class _Job:
    token: Token | None
    notification: Notification | None = None
    open_incidents: Sequence[Notification] = ()
    received: float = 0.0


class SinkWorker:
    """Delivers one sink's queue in order on a thread; calls ``on_done(token)`` when an
    alert is finished (delivered, rejected or expired), never when abandoned at shutdown."""

    def __init__(
        self, sink: AlertSink, *, queue_size: int, max_retry_seconds: float,
        on_done: Callable[[Token], None], backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.sink = sink
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._max_retry = max_retry_seconds
        self._on_done = on_done
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sink-{sink.name}", daemon=True)
        self._depth = metrics.QUEUE_DEPTH.labels(sink.name)
        metrics.FAILURES.labels(sink.name)  # every series exists from the start, at 0
        for outcome in ("delivered", "rejected", "expired"):
            metrics.DELIVERIES.labels(sink.name, outcome)

    def start(self) -> SinkWorker:
        self._thread.start()
        return self

    def offer(self, token: Token, notification: Notification, timeout: float) -> bool:
        """Queue an alert; False if the queue stayed full for ``timeout`` seconds."""
        job = _Job(token, notification, received=time.monotonic())
        try:
            self._queue.put(job, timeout=timeout)
        except queue.Full:
            return False
        self._depth.set(self._queue.qsize())
        return True

    def refresh(self, open_incidents: Sequence[Notification]) -> None:
        """Best effort: skipped when the queue is full (the next refresh comes soon)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_Job(None, open_incidents=list(open_incidents)))

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self.sink.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            job = self._queue.get()
            self._depth.set(self._queue.qsize())
            if job is None:
                return
            if job.notification is None:
                self._refresh(job.open_incidents)
            elif self._deliver(job):
                self._on_done(job.token)  # type: ignore[arg-type]

    def _refresh(self, open_incidents: Sequence[Notification]) -> None:
        try:
            self.sink.refresh(open_incidents)
        except (DeliveryFailed, Rejected) as exc:
            metrics.FAILURES.labels(self.sink.name).inc()
            log.warning("sink %s: re-announcing open incidents failed: %s", self.sink.name, exc)

    def _deliver(self, job: _Job) -> bool:
        """True once finished; False if abandoned because the notifier is stopping."""
        assert job.notification is not None  # noqa: S101 - only alert jobs come here
        name, key = self.sink.name, job.notification.idempotency_key
        attempt = 0
        while True:
            try:
                self.sink.deliver(job.notification)
            except Rejected as exc:
                log.error("sink %s rejected alert %s for good: %s", name, key, exc)
                metrics.DELIVERIES.labels(name, "rejected").inc()
                return True
            except Exception as exc:  # DeliveryFailed, or a bug: retry, never crash the thread
                metrics.FAILURES.labels(name).inc()
                waited = time.monotonic() - job.received
                if waited > self._max_retry:
                    log.error("sink %s: giving up on alert %s after %.0f s: %s",
                              name, key, waited, exc)
                    metrics.DELIVERIES.labels(name, "expired").inc()
                    return True
                retry_after = exc.retry_after if isinstance(exc, DeliveryFailed) else None
                delay = retry_after if retry_after is not None else self._backoff.delay(
                    attempt, self._rng)
                log.warning("sink %s: alert %s not delivered (%s); retry in %.1f s",
                            name, key, exc, delay)
                attempt += 1
                if self._stopping.wait(delay):
                    return False
                continue
            metrics.DELIVERIES.labels(name, "delivered").inc()
            metrics.DELIVERY_SECONDS.labels(name).observe(time.monotonic() - job.received)
            return True


class OffsetTracker:
    """Which offsets every sink has finished, so commits never pass an unfinished alert."""

    def __init__(self, sinks: int) -> None:
        self._sinks = sinks
        self._lock = threading.Lock()
        self._pending: dict[Any, deque[int]] = {}
        self._remaining: dict[Token, int] = {}

    def add(self, token: Token, sinks: int | None = None) -> None:
        """Track an offset that ``sinks`` (default: every sink) must finish; 0 for a record no
        sink gets (a duplicate or not an alert), which still must not be committed early."""
        tp, offset = token
        with self._lock:
            self._pending.setdefault(tp, deque()).append(offset)
            self._remaining[token] = self._sinks if sinks is None else sinks

    def done(self, token: Token) -> None:
        with self._lock:
            if token in self._remaining:
                self._remaining[token] -= 1

    def committable(self) -> dict[Any, int]:
        """Next offset to commit per partition whose finished prefix advanced."""
        out = {}
        with self._lock:
            for tp, offsets in self._pending.items():
                last = None
                while offsets and self._remaining.get((tp, offsets[0]), 0) <= 0:
                    last = offsets.popleft()
                    self._remaining.pop((tp, last), None)
                if last is not None:
                    out[tp] = last + 1
        return out

    def forget(self, tps: Sequence[Any]) -> None:
        """Partitions revoked: their unfinished alerts are the new owner's to deliver."""
        with self._lock:
            for tp in tps:
                for offset in self._pending.pop(tp, ()):
                    self._remaining.pop((tp, offset), None)
