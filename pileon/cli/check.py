"""``pileon check``: what an operator needs to know first, straight from the broker.

Is the broker reachable, do pileon's topics exist with the partitions the settings say, and how
far behind is the worker group (``worker.app_id``) on each partition it consumes? Exit status
0 when all is well, 1 when something needs attention.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pileon.core.settings import Settings
from pileon.kafka.connection import Connection, as_connection
from pileon.kafka.lag import LagProbe
from pileon.kafka.topics import TopicNames, partition_counts


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(f"ok    {line}")

    def bad(self, line: str) -> None:
        self.lines.append(f"FAIL  {line}")
        self.problems.append(line)


def check(connection: Connection, settings: Settings, timeout: float = 10.0) -> Report:
    conn = as_connection(connection)
    report = Report()
    names = TopicNames.from_settings(settings.kafka)
    started = time.monotonic()
    try:
        admin = KafkaAdminClient(**conn.kafka_python(client_id="pileon-check"),
                                 bootstrap_timeout_ms=int(timeout * 1000))
    except KafkaError as exc:
        report.bad(f"broker {conn.bootstrap_servers}: not reachable ({type(exc).__name__})")
        return report
    try:
        brokers = len(admin.describe_cluster().get("brokers", []))
        elapsed = time.monotonic() - started
        report.ok(f"broker {conn.bootstrap_servers}: reachable in {elapsed:.2f}s, "
                  f"{brokers} broker(s)")
        partitions = _check_topics(admin, names, settings.kafka.partitions, report)
        _check_lag(conn, settings.worker.app_id, names, partitions, report)
    finally:
        admin.close()
    return report


def _check_topics(
    admin: KafkaAdminClient, names: TopicNames, expected: int, report: Report
) -> dict[str, int]:
    found = partition_counts(admin, names)
    for name in names.all():
        if name not in found:
            report.bad(f"topic {name}: missing (create it with `pileon topics`)")
        elif found[name] != expected:
            report.bad(f"topic {name}: {found[name]} partitions, settings say {expected}")
        else:
            report.ok(f"topic {name}: {found[name]} partitions")
    return found


def _check_lag(
    connection: Connection, group: str, names: TopicNames, partitions: dict[str, int],
    report: Report,
) -> None:
    sources = {t: partitions[t] for t in (names.raw, names.clean) if t in partitions}
    if not sources:
        return
    with LagProbe(connection, group, sources) as probe:
        lags = probe.read()
    for topic in sources:
        mine = [p for p in lags if p.topic == topic]
        detail = " ".join(f"p{p.partition}={p.lag}" for p in mine)
        if any(p.end_below_committed for p in mine):
            detail += "; the broker reports end offsets below committed ones"
        never = [p.partition for p in mine if p.committed is None and p.end]
        line = f"group {group} on {topic}: lag {sum(p.lag for p in mine)} ({detail})"
        if never:
            report.bad(f"{line}; no commit yet on partition(s) {never}: is a worker running?")
        else:
            report.ok(line)
