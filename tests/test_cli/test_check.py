from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import CoordinatorNotAvailableError
from prometheus_client import CollectorRegistry, Counter, generate_latest

from pileon.cli.check import check
from pileon.connectors.producer import MentionProducer
from pileon.core.settings import Settings, load_settings
from pileon.evidence.archiver import Archiver
from pileon.kafka.broker import EmbeddedBroker, free_port
from pileon.kafka.groups import StillUnavailable, group_members, retrying
from pileon.kafka.topics import ensure_topics
from tests.factories import mention
from tests.kafka.broker import ApacheKafka
from tests.waiting import wait_until


def _settings(prefix: str) -> Settings:
    return load_settings(kafka={"topic_prefix": prefix})


class TestCheck:
    def test_unreachable_broker_is_a_problem(self) -> None:
        report = check(f"127.0.0.1:{free_port()}", _settings(""), timeout=1.0)
        assert report.problems and "not reachable" in report.problems[0]

    def test_missing_topics_are_named(self, embedded_broker: EmbeddedBroker) -> None:
        report = check(embedded_broker.bootstrap, _settings(f"none{uuid.uuid4().hex[:6]}."))
        assert len([p for p in report.problems if "missing" in p]) == 6

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


def _names(prefix: str) -> dict[str, str]:
    return {"kafka": {"topic_prefix": prefix}, "worker": {"app_id": f"{prefix}w"},  # type: ignore[dict-item]
            "alerting": {"group_id": f"{prefix}n"},  # type: ignore[dict-item]
            "evidence": {"group_id": f"{prefix}e"}}  # type: ignore[dict-item]


class TestCheckSaysWhatIsWrong:
    def test_the_evidence_not_archived_yet_is_counted(self, embedded_broker: EmbeddedBroker,
                                                      tmp_path: Path) -> None:
        bootstrap = embedded_broker.bootstrap
        settings = load_settings(**_names(f"c{uuid.uuid4().hex[:6]}."))  # type: ignore[arg-type]
        names = ensure_topics(bootstrap, settings.kafka)
        producer = MentionProducer(bootstrap, names.clean)

        def send(n: int) -> None:
            for _ in range(n):
                producer.send(mention())
            producer.flush()

        def evidence() -> list[str]:
            return [line for line in check(bootstrap, settings).lines if " evidence: " in line]

        send(2)
        assert evidence() == [f"WARN  evidence: 2 clean mention(s) on {names.clean} and no "
                              "archiver has committed there: none of them is archived yet"]
        archiver = Archiver(bootstrap, names, tmp_path, group_id=settings.evidence.group_id)
        try:
            wait_until(lambda: (archiver._drain_clean(timeout_ms=500), archiver.archived)[1] == 2,
                       timeout=60, what="2 archived")
        finally:
            archiver.close()
        send(3)
        producer.close()
        [line] = evidence()
        assert line.startswith("ok    evidence: 3 clean mention(s) not archived yet (group "
                               f"{settings.evidence.group_id}-clean on {names.clean}: "), line

    def test_a_refused_broker_is_one_line_naming_the_refusal(self) -> None:
        report = check(f"127.0.0.1:{free_port()}", _settings(""), timeout=1.0)
        assert len(report.lines) == 1 and "connection refused" in report.lines[0]

    def test_the_command_prints_only_the_report(self) -> None:
        done = subprocess.run([sys.executable, "-m", "pileon", "check", "--bootstrap",
                               f"127.0.0.1:{free_port()}"], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 1
        assert done.stdout.splitlines() == [line for line in done.stdout.splitlines()
                                            if line.startswith("FAIL  broker")]
        assert len(done.stdout.splitlines()) == 1 and done.stderr == ""

    def test_nobody_running_is_not_ok(self, embedded_broker: EmbeddedBroker) -> None:
        prefix = f"g{uuid.uuid4().hex[:6]}."
        settings = load_settings(**_names(prefix))  # type: ignore[arg-type]
        ensure_topics(embedded_broker.bootstrap, settings.kafka)
        report = check(embedded_broker.bootstrap, settings, metrics_url="http://127.0.0.1:1/")
        problems = " | ".join(report.problems)
        assert "no worker is running" in problems
        assert "no notifier is running" in problems
        assert "no archiver is running" in problems

    @pytest.mark.slow  # a group join on Tansu takes ~20 s
    def test_a_running_member_is_seen(self, embedded_broker: EmbeddedBroker) -> None:
        prefix = f"m{uuid.uuid4().hex[:6]}."
        settings = load_settings(**_names(prefix))  # type: ignore[arg-type]
        names = ensure_topics(embedded_broker.bootstrap, settings.kafka)
        notifier = KafkaConsumer(names.alerts, bootstrap_servers=embedded_broker.bootstrap,
                                 group_id=settings.alerting.group_id)
        try:
            def joined() -> bool:
                notifier.poll(timeout_ms=200)
                group = settings.alerting.group_id
                return group_members(embedded_broker.bootstrap, [group])[group] == 1

            wait_until(joined, timeout=60, what="the consumer to join its group")
            report = check(embedded_broker.bootstrap, settings,
                           metrics_url="http://127.0.0.1:1/")
        finally:
            notifier.close()
        assert any(line.startswith(f"ok    group {prefix}n: 1 member") for line in report.lines)
        assert not any("notifier" in p for p in report.problems)

    def test_late_mentions_in_the_worker_metrics_are_shown(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        registry = CollectorRegistry()  # what the worker's prometheus-client writes
        late_counter = Counter("pileon_late_mentions_total", "late", ["person"],
                               registry=registry)
        late_counter.labels("amara").inc(1234)
        late_counter.labels("sam")
        body = generate_latest(registry)

        class Metrics(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            report = check(embedded_broker.bootstrap, _settings(f"l{uuid.uuid4().hex[:6]}."),
                           metrics_url=f"http://127.0.0.1:{server.server_address[1]}/metrics")
        finally:
            server.shutdown()
        late = [line for line in report.lines if "late mention" in line]
        assert late == [late[0]] and late[0].startswith("WARN  worker: 1234 late mention(s)")
        assert "amara=1234" in late[0] and "sam" not in late[0]


class TestRetrying:
    def test_retriable_errors_are_retried_until_they_pass(self) -> None:
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise CoordinatorNotAvailableError()
            return "ok"

        assert retrying(flaky, seconds=5, pause=0.01) == "ok" and len(calls) == 3

    def test_a_retriable_error_that_lasts_is_one_clear_error(self) -> None:
        def never() -> None:
            raise CoordinatorNotAvailableError()

        with pytest.raises(StillUnavailable, match="CoordinatorNotAvailableError for 0s"):
            retrying(never, seconds=0.05, pause=0.01)


@pytest.mark.slow
def test_check_right_after_topics_on_a_new_apache_kafka(tmp_path: Path) -> None:
    """A new cluster has no offsets topic yet: its coordinator errors are retried, and the
    report says that nothing is running, one line per finding, never a traceback."""
    kafka = ApacheKafka(tmp_path / "kafka").start()
    try:
        def pileon(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "pileon", *args, "--bootstrap",
                                   kafka.bootstrap], capture_output=True, text=True,
                                  timeout=180, check=False)

        assert pileon("topics").returncode == 0
        # mentions.clean taking less than ingest lets through: large mentions would be
        # analysed but not archived, which the report says.
        clean = load_settings().kafka.topic_prefix + "mentions.clean"
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        try:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, clean,
                                                configs={"max.message.bytes": "4000"})])
            wait_until(lambda: admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, clean, {"max.message.bytes": None})],
                config_filter="all")["topic"][clean]["max.message.bytes"]["value"] == "4000",
                timeout=30)
        finally:
            admin.close()
        done = pileon("check", "--timeout", "30")
    finally:
        kafka.stop()
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line[:6] in ("ok    ", "FAIL  ", "WARN  ") for line in lines), lines
    assert done.returncode == 1 and any("no worker is running" in line for line in lines)
    limits = [line for line in lines if "max.message.bytes" in line]
    assert len(limits) == 1 and limits[0].startswith("WARN  topic mentions.clean: "), lines
    assert "4,000" in limits[0] and "not archived as evidence" in limits[0]
