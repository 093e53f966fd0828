from __future__ import annotations

import uuid

from pileon.cli.check import check
from pileon.core.settings import Settings, load_settings
from pileon.kafka.broker import EmbeddedBroker, free_port
from pileon.kafka.topics import ensure_topics


def _settings(prefix: str) -> Settings:
    return load_settings(kafka={"topic_prefix": prefix})


class TestCheck:
    def test_unreachable_broker_is_a_problem(self) -> None:
        report = check(f"127.0.0.1:{free_port()}", _settings(""), timeout=1.0)
        assert report.problems and "not reachable" in report.problems[0]

    def test_missing_topics_are_named(self, embedded_broker: EmbeddedBroker) -> None:
        report = check(embedded_broker.bootstrap, _settings(f"none{uuid.uuid4().hex[:6]}."))
        assert len(report.problems) == 4
        assert all("missing" in p for p in report.problems)

    def test_topics_without_a_worker_say_so(self, embedded_broker: EmbeddedBroker) -> None:
        settings = _settings(f"c{uuid.uuid4().hex[:6]}.")
        names = ensure_topics(embedded_broker.bootstrap, settings.kafka)
        from pileon.connectors.producer import MentionProducer
        from tests.factories import mention

        producer = MentionProducer(embedded_broker.bootstrap, names.raw)
        producer.send(mention())
        producer.flush()
        producer.close()
        report = check(embedded_broker.bootstrap, settings)
        assert any("no commit yet" in p and "is a worker running" in p for p in report.problems)
        assert any(line.startswith("ok    topic") for line in report.lines)
