"""``pileon check``: what an operator needs to know first, straight from the broker.

Is the broker reachable, do pileon's topics exist with the partitions the settings say, and how
far behind is the worker group (``worker.app_id``) on each partition it consumes? Exit status
0 when all is well, 1 when something needs attention.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pileon.settings import Settings
from pileon.topics import TopicNames, partition_counts


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(f"ok    {line}")

    def bad(self, line: str) -> None:
        self.lines.append(f"FAIL  {line}")
        self.problems.append(line)


def check(bootstrap: str, settings: Settings, timeout: float = 10.0) -> Report:
    report = Report()
    names = TopicNames.from_settings(settings.kafka)
    started = time.monotonic()
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pileon-check",
                                 bootstrap_timeout_ms=int(timeout * 1000))
    except KafkaError as exc:
        report.bad(f"broker {bootstrap}: not reachable ({type(exc).__name__})")
        return report
    try:
        brokers = len(admin.describe_cluster().get("brokers", []))
        report.ok(f"broker {bootstrap}: reachable in {time.monotonic() - started:.2f}s, "
                  f"{brokers} broker(s)")
        partitions = _check_topics(admin, names, settings.kafka.partitions, report)
        _check_lag(admin, bootstrap, settings.worker.app_id, names, partitions, report)
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
    admin: KafkaAdminClient,
    bootstrap: str,
    group: str,
    names: TopicNames,
    partitions: dict[str, int],
    report: Report,
) -> None:
    sources = [t for t in (names.raw, names.clean) if t in partitions]
    tps = [TopicPartition(t, p) for t in sources for p in range(partitions[t])]
    if not tps:
        return
    offsets = admin.list_group_offsets({group: tps}).get(group, {})  # kafka-python 3 API
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta and meta.offset >= 0}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="pileon-check",
                             enable_auto_commit=False)
    try:
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    for topic in sources:
        raw_lags = [ends[tp] - committed.get(tp, 0) for tp in tps if tp.topic == topic]
        # The embedded broker (Tansu 0.6) can report an end offset below a committed one.
        lags = [max(0, lag) for lag in raw_lags]
        detail = " ".join(f"p{i}={lag}" for i, lag in enumerate(lags))
        if min(raw_lags) < 0:
            detail += "; the broker reports end offsets below committed ones"
        never = [i for i in range(partitions[topic])
                 if TopicPartition(topic, i) not in committed and ends[TopicPartition(topic, i)]]
        line = f"group {group} on {topic}: lag {sum(lags)} ({detail})"
        if never:
            report.bad(f"{line}; no commit yet on partition(s) {never}: is a worker running?")
        else:
            report.ok(line)
