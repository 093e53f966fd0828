"""The shared Kafka producer of connectors: keyed by person, acknowledged by all replicas."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The broker did not acknowledge some mentions: the connector must not advance its
    checkpoint past them, and should stop or retry."""


class MentionProducer:
    """Publishes mentions to ``mentions.raw``; :meth:`flush` raises if any send failed."""

    def __init__(self, bootstrap: str, topic: str, **config: Any) -> None:
        self.topic = topic
        defaults: dict[str, Any] = {
            "acks": "all",
            "retries": 10,
            "linger_ms": 10,
            "max_in_flight_requests_per_connection": 1,  # keep per-person order across retries
            "client_id": "pileon-connector",
        }
        try:
            self._producer = KafkaProducer(bootstrap_servers=bootstrap, **{**defaults, **config})
        except KafkaError as exc:
            raise DeliveryError(f"Kafka at {bootstrap} is not reachable: {exc}") from exc
        self._failures: list[BaseException] = []
        self.sent = 0

    def send(self, mention: dict[str, Any]) -> None:
        self.send_raw(str(mention["person"]).encode(), orjson.dumps(mention))

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        future = self._producer.send(self.topic, key=key, value=value)
        future.add_errback(self._failures.append)
        self.sent += 1

    def flush(self, timeout: float | None = 30.0) -> None:
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise DeliveryError(f"flush failed: {exc}") from exc
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryError(f"{len(failures)} mentions not acknowledged: {failures[0]!r}")

    def close(self) -> None:
        self._producer.close(timeout=10)
