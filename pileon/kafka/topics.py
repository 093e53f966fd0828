"""pileon's Kafka topics, created explicitly with partitions; every key is a person's key."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from pileon.core.settings import KafkaSettings
from pileon.kafka.connection import Connection, as_connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicNames:
    raw: str
    clean: str
    invalid: str
    alerts: str
    changes: str  # deletions and edits of captured posts (pileon.change/v1), for the archiver
    heads: str  # the archiver's chain head at each alert, for the notifier

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> TopicNames:
        p = kafka.topic_prefix
        return cls(f"{p}mentions.raw", f"{p}mentions.clean", f"{p}mentions.invalid", f"{p}alerts",
                   f"{p}mentions.changes", f"{p}evidence.heads")

    def all(self) -> tuple[str, ...]:
        return (self.raw, self.clean, self.invalid, self.alerts, self.changes, self.heads)


# The worker's Faust tables; each has a compacted changelog topic "<app_id>-<table>-changelog".
TABLES = ("seen", "window", "person-state")


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the default partitioner of the Java client, kafka-python and aiokafka
    (Faust's producer) gives ``key``: murmur2, positive, modulo the partition count."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def changelog_topics(app_id: str) -> tuple[str, ...]:
    return tuple(f"{app_id}-{table}-changelog" for table in TABLES)


class TopicSetupError(Exception):
    """Topics could not be created or have the wrong partition count: pileon does not start."""


def ensure_topics(
    connection: Connection, kafka: KafkaSettings, timeout: float = 30.0
) -> TopicNames:
    """Create pileon's topics if missing and check their partition counts."""
    names = TopicNames.from_settings(kafka)
    admin = _admin(connection, timeout)
    try:
        _create_missing(admin, names.all(), kafka)
        _check_partitions(admin, names, kafka.partitions)
    finally:
        admin.close()
    return names


def ensure_changelogs(
    connection: Connection, kafka: KafkaSettings, app_id: str, timeout: float = 30.0
) -> tuple[str, ...]:
    """Create the worker's table changelogs (compacted) before Faust subscribes to them.

    A changelog that Faust creates itself appears after its consumer subscribed; on Apache
    Kafka the consumer's metadata then shows it with 0 partitions until the next refresh
    (5 min), and every table write fails meanwhile with ``PartitionsMismatch``.
    """
    topics = changelog_topics(app_id)
    admin = _admin(connection, timeout)
    try:
        _create_missing(admin, topics, kafka, {"cleanup.policy": "compact"})
    finally:
        admin.close()
    return topics


def ensure_checkpoints(connection: Connection, kafka: KafkaSettings, timeout: float = 30.0) -> str:
    """Create the connectors' checkpoint topic (compacted, one partition, keyed by connector)."""
    topic = f"{kafka.topic_prefix}connectors.checkpoints"
    admin = _admin(connection, timeout)
    try:
        _create_missing(admin, (topic,), kafka, {"cleanup.policy": "compact"}, partitions=1)
    finally:
        admin.close()
    return topic


def _create_missing(
    admin: KafkaAdminClient, topics: tuple[str, ...], kafka: KafkaSettings,
    configs: dict[str, str] | None = None, partitions: int | None = None,
) -> None:
    existing = set(admin.list_topics())
    missing = [t for t in topics if t not in existing]
    if not missing:
        return
    try:
        admin.create_topics([
            NewTopic(t, partitions or kafka.partitions, kafka.replication_factor,
                     topic_configs=configs or {})
            for t in missing
        ])
        log.info("created topics %s", ", ".join(missing))
    except TopicAlreadyExistsError:
        pass  # another process created them first


def partition_counts(admin: KafkaAdminClient, names: TopicNames) -> dict[str, int]:
    """Partitions of each of pileon's topics that exists."""
    existing = set(admin.list_topics())
    counts: dict[str, int] = {}
    for meta in admin.describe_topics([n for n in names.all() if n in existing]):
        name = meta.get("name") or meta.get("topic")  # kafka-python 3.x says "name"
        counts[str(name)] = len(meta.get("partitions") or [])
    return counts


def _check_partitions(admin: KafkaAdminClient, names: TopicNames, partitions: int) -> None:
    # The stream and its tables are co-partitioned by person: counts must agree.
    for name, got in partition_counts(admin, names).items():
        if got and got != partitions:
            raise TopicSetupError(
                f"topic {name} has {got} partitions, settings say {partitions}"
            )


def _admin(connection: Connection, timeout: float) -> KafkaAdminClient:
    conn = as_connection(connection)
    deadline = time.monotonic() + timeout
    while True:
        remaining_ms = max(500, int((deadline - time.monotonic()) * 1000))
        try:
            return KafkaAdminClient(
                client_id="pileon-admin",
                **conn.kafka_python(),
                bootstrap_timeout_ms=remaining_ms,
            )
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise TopicSetupError(
                    f"Kafka at {conn.bootstrap_servers} is not reachable: {exc}") from exc
            time.sleep(0.5)
