from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

from pileon.alerting import AlertSink, DeliveryFailed, Notification, Rejected
from pileon.alerting import notification_from_event as from_event
from pileon.alerting.dispatch import Backoff, OffsetTracker, SinkWorker, Token
from pileon.core.settings import AlertingSettings
from tests.factories import alert_event
from tests.waiting import wait_until

FAST = Backoff(base=0.01, cap=0.05)


def _n(person: str = "amara") -> Notification:
    return from_event(alert_event(person=person), AlertingSettings())


class FlakySink(AlertSink):
    """Fails the first ``failures`` attempts, then records deliveries."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.name = "flaky"
        self.failures = failures
        self.error = error or DeliveryFailed("down")
        self.delivered: list[Notification] = []
        self.refreshed: list[int] = []

    def deliver(self, notification: Notification) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.delivered.append(notification)

    def refresh(self, open_incidents: Sequence[Notification]) -> None:
        self.refreshed.append(len(open_incidents))


class BlockingSink(AlertSink):
    def __init__(self) -> None:
        self.name = "blocking"
        self.release = threading.Event()

    def deliver(self, notification: Notification) -> None:
        self.release.wait(10)


def _worker(sink: AlertSink, done: list[Token], **kw: float) -> SinkWorker:
    return SinkWorker(sink, queue_size=int(kw.get("queue_size", 10)),
                      max_retry_seconds=kw.get("max_retry", 30.0), on_done=done.append,
                      backoff=FAST, rng=random.Random(1)).start()



class TestSinkWorker:
    def test_failing_receiver_gets_the_alert_once_it_recovers(self) -> None:
        sink, done = FlakySink(failures=3), []
        worker = _worker(sink, done)
        assert worker.offer(("p", 1), _n(), timeout=1)
        wait_until(lambda: done)
        worker.stop()
        assert done == [("p", 1)] and len(sink.delivered) == 1

    def test_rejected_alert_is_finished_not_retried(self) -> None:
        sink, done = FlakySink(failures=1, error=Rejected("HTTP 400")), []
        worker = _worker(sink, done)
        worker.offer(("p", 1), _n(), timeout=1)
        worker.offer(("p", 2), _n("sam"), timeout=1)
        wait_until(lambda: len(done) == 2)
        worker.stop()
        assert done == [("p", 1), ("p", 2)] and [n.person for n in sink.delivered] == ["sam"]

    def test_gives_up_after_max_retry(self) -> None:
        sink, done = FlakySink(failures=10**6), []
        worker = _worker(sink, done, max_retry=0.2)
        worker.offer(("p", 1), _n(), timeout=1)
        wait_until(lambda: done)
        worker.stop()
        assert done == [("p", 1)] and not sink.delivered

    def test_a_sink_bug_is_retried_not_fatal(self) -> None:
        sink, done = FlakySink(failures=2, error=RuntimeError("bug")), []
        worker = _worker(sink, done)
        worker.offer(("p", 1), _n(), timeout=1)
        wait_until(lambda: done)
        worker.stop()
        assert len(sink.delivered) == 1

    def test_full_queue_refuses_instead_of_blocking(self) -> None:
        sink, done = BlockingSink(), []
        worker = _worker(sink, done, queue_size=1)
        worker.offer(("p", 1), _n(), timeout=1)  # taken by the thread, blocks there
        wait_until(lambda: worker._queue.empty())
        assert worker.offer(("p", 2), _n(), timeout=1)
        assert not worker.offer(("p", 3), _n(), timeout=0.1)
        sink.release.set()
        worker.stop()

    def test_alert_abandoned_at_shutdown_is_not_finished(self) -> None:
        sink, done = FlakySink(failures=10**6), []
        worker = _worker(sink, done)
        worker.offer(("p", 1), _n(), timeout=1)
        time.sleep(0.1)
        worker.stop()
        assert done == []  # its offset is not committed: delivered after the restart

    def test_refresh_reaches_the_sink(self) -> None:
        sink, done = FlakySink(), []
        worker = _worker(sink, done)
        worker.refresh([_n(), _n("sam")])
        wait_until(lambda: sink.refreshed)
        worker.stop()
        assert sink.refreshed == [2]


class TestBackoff:
    def test_full_jitter_stays_under_the_capped_exponential(self) -> None:
        rng, b = random.Random(3), Backoff(base=1, cap=60)
        delays = [b.delay(n, rng) for n in range(12) for _ in range(50)]
        assert all(0 <= d <= 60 for d in delays)
        assert max(b.delay(2, rng) for _ in range(200)) <= 4


class TestOffsetTracker:
    def test_commits_only_the_prefix_every_sink_finished(self) -> None:
        t = OffsetTracker(sinks=2)
        for offset in (5, 6, 7):
            t.add(("p", offset))
        t.done(("p", 6))
        t.done(("p", 6))
        t.done(("p", 5))
        assert t.committable() == {}  # 5 still waits for the second sink
        t.done(("p", 5))
        assert t.committable() == {"p": 7}
        assert t.committable() == {}

    def test_a_record_no_sink_gets_is_committable_in_order(self) -> None:
        t = OffsetTracker(sinks=1)
        t.add(("p", 1))
        t.add(("p", 2), sinks=0)
        assert t.committable() == {}
        t.done(("p", 1))
        assert t.committable() == {"p": 3}

    def test_revoked_partitions_are_forgotten(self) -> None:
        t = OffsetTracker(sinks=1)
        t.add(("p", 1))
        t.forget(["p"])
        t.done(("p", 1))
        assert t.committable() == {}
