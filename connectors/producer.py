"""The shared Kafka producer of connectors: keyed by person, acknowledged by all replicas."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from pileon.kafka.connection import Connection, as_connection
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import Reason

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The broker did not acknowledge some mentions: the connector must not advance its
    checkpoint past them, and should stop or retry."""


class MentionTooLarge(ValueError):
    """A mention is over the producer's request size and no dead-letter topic was given."""


class MentionProducer:
    """Publishes mentions to ``mentions.raw``; :meth:`flush` raises if any send failed.

    A mention over ``max_request_size`` (1 MiB by default, the broker's default record limit)
    cannot be written to Kafka: with ``invalid_topic`` it becomes a dead letter with reason
    ``too_large`` (head, SHA-256 and length of the original), else :class:`MentionTooLarge`.
    """

    def __init__(
        self,
        connection: Connection,
        topic: str,
        *,
        invalid_topic: str | None = None,
        **config: Any,
    ) -> None:
        conn = as_connection(connection)
        self.topic = topic
        self.invalid_topic = invalid_topic
        self.max_bytes = int(config.get("max_request_size", 1_048_576)) - 1024  # headers
        defaults: dict[str, Any] = {
            "acks": "all",
            "retries": 10,
            "linger_ms": 10,
            "max_in_flight_requests_per_connection": 1,  # keep per-person order across retries
            "client_id": "pileon-connector",
        }
        try:
            self._producer = KafkaProducer(
                **conn.kafka_python(**{**defaults, **config})
            )
        except KafkaError as exc:
            raise DeliveryError(
                f"Kafka at {conn.bootstrap_servers} is not reachable: {exc}") from exc
        self._failures: list[BaseException] = []
        self.sent = 0

    def send(
        self, mention: dict[str, Any], headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        self.send_raw(str(mention["person"]).encode(), orjson.dumps(mention), headers)

    def send_raw(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        topic = self.topic
        if len(value) > self.max_bytes:
            if self.invalid_topic is None:
                raise MentionTooLarge(f"{len(value)} bytes, limit {self.max_bytes}")
            detail = f"{len(value)} bytes, over the producer limit {self.max_bytes}"
            topic, value = self.invalid_topic, dead_letter(
                key, value, Reason.TOO_LARGE, detail, Origin(self.topic, -1, -1, time.time())
            )
            log.warning("mention over %d bytes dead-lettered by the connector", self.max_bytes)
        try:
            future = self._producer.send(topic, key=key, value=value, headers=headers)
        except KafkaError as exc:  # no metadata within max_block_ms: the broker is away
            raise DeliveryError(f"send failed: {exc}") from exc
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

    def send_record(self, topic: str, key: bytes | None, value: bytes) -> None:
        """A record that is not a mention (a connector checkpoint); failures surface in flush."""
        self._producer.send(topic, key=key, value=value).add_errback(self._failures.append)

    def close(self) -> None:
        self._producer.close(timeout=10)
