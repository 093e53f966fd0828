"""The worker consumer's fetch wait, which faust-streaming hard-codes.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to change it
(``faust/transport/drivers/aiokafka.py``, ``_create_worker_consumer``). A broker that answers a
fetch as soon as a record arrives (Apache Kafka) makes the wait harmless; Tansu holds a
waiting fetch for part of it, so every Faust hop of a mention (raw, then clean) waited about
0.4 s (``bench/fetch_wait.py``, docs/benchmarks.md). aiokafka reads the wait when the consumer
starts (its ``Fetcher`` is built in ``start()``), so the consumer Faust creates gets the
configured wait before it is started.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


def set_fetch_wait(app: Any, wait_ms: int) -> None:
    """Make ``app``'s worker consumer wait at most ``wait_ms`` for a fetch (before it starts).
    Raises ``RuntimeError`` at start if aiokafka no longer keeps the wait where it is set."""

    class ConsumerThread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
                raise RuntimeError(
                    "aiokafka's consumer has no _fetch_max_wait_ms: worker.fetch_wait_ms "
                    "cannot be applied to this aiokafka version")
            consumer._fetch_max_wait_ms = wait_ms
            return consumer

    transport = app.transport
    base = transport.Consumer

    class Consumer(base):  # type: ignore[misc,valid-type]
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    setattr(transport, "Consumer", Consumer)  # noqa: B010 - a ClassVar, set on this transport only
