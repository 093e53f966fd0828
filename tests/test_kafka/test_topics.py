from __future__ import annotations

import uuid

import pytest
from kafka import KafkaAdminClient

from pileon.core.settings import KafkaSettings, Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.topics import (
    TopicNames,
    TopicSetupError,
    changelog_topics,
    ensure_changelogs,
    ensure_topics,
)


class TestTopicNames:
    def test_prefix_applies_to_every_topic(self) -> None:
        names = TopicNames.from_settings(KafkaSettings(topic_prefix="nr1."))
        assert names.all() == (
            "nr1.mentions.raw", "nr1.mentions.clean", "nr1.mentions.invalid", "nr1.alerts",
            "nr1.mentions.changes", "nr1.evidence.heads",
        )


class TestEnsureTopics:
    def test_creates_all_topics_with_partitions(self, embedded_broker: EmbeddedBroker) -> None:
        prefix = f"t{uuid.uuid4().hex[:8]}."
        names = ensure_topics(embedded_broker.bootstrap, KafkaSettings(topic_prefix=prefix))
        admin = KafkaAdminClient(bootstrap_servers=embedded_broker.bootstrap)
        topics = admin.describe_topics(list(names.all()))
        described = {t["name"]: len(t["partitions"]) for t in topics}
        admin.close()
        assert described == dict.fromkeys(names.all(), 4)

    def test_is_idempotent(self, embedded_broker: EmbeddedBroker) -> None:
        kafka = KafkaSettings(topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
        assert ensure_topics(embedded_broker.bootstrap, kafka) == ensure_topics(
            embedded_broker.bootstrap, kafka
        )

    def test_partition_mismatch_stops_start_up(self, embedded_broker: EmbeddedBroker) -> None:
        prefix = f"t{uuid.uuid4().hex[:8]}."
        ensure_topics(embedded_broker.bootstrap, KafkaSettings(topic_prefix=prefix, partitions=2))
        with pytest.raises(TopicSetupError, match="has 2 partitions, settings say 4"):
            ensure_topics(embedded_broker.bootstrap, KafkaSettings(topic_prefix=prefix))

    def test_unreachable_broker_is_a_clear_error(self) -> None:
        from pileon.kafka.broker import free_port

        with pytest.raises(TopicSetupError, match="not reachable"):
            ensure_topics(f"127.0.0.1:{free_port()}", KafkaSettings(), timeout=1.0)


class TestEnsureChangelogs:
    def test_creates_one_changelog_per_worker_table(
        self, embedded_broker: EmbeddedBroker, settings: Settings, watchlist: Watchlist
    ) -> None:
        app_id = f"app{uuid.uuid4().hex[:8]}"
        topics = ensure_changelogs(embedded_broker.bootstrap, KafkaSettings(), app_id)
        admin = KafkaAdminClient(bootstrap_servers=embedded_broker.bootstrap)
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(topics))}
        admin.close()
        assert described == dict.fromkeys(topics, 4)
        assert ensure_changelogs(embedded_broker.bootstrap, KafkaSettings(), app_id) == topics

    def test_names_match_the_tables_of_the_faust_app(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.streams.worker.app import build_app

        app = build_app(settings, watchlist, "127.0.0.1:1")
        names = {t.changelog_topic.get_topic_name() for t in app.tables.values()}
        assert names == set(changelog_topics(settings.worker.app_id))
