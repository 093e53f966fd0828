"""``pileon check``: what an operator needs to know first, one line per finding.

Is the broker reachable (a refused or unresolvable address fails at once, without the client's
retry noise), do pileon's topics exist with the partitions the settings say (and do the clean
and dead-letter topics take records as large as ingest lets through), is a worker, a
notifier and an archiver a member of its group, how far behind is the worker group on each
partition it consumes, and has the worker set aside late mentions (read from its ``/metrics``
when reachable). What a new cluster answers with retriable errors is retried for a while.
Exit status 0 when all is well, 1 when something needs attention.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from pileon.cli.common import scrape
from pileon.core.settings import Settings
from pileon.evidence.archiver import clean_group
from pileon.kafka.connection import Connection, ConnectionConfig, as_connection
from pileon.kafka.groups import StillUnavailable, group_members, retrying
from pileon.kafka.lag import LagProbe, PartitionLag
from pileon.kafka.topics import TopicNames, partition_counts


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ok(self, line: str) -> None:
        self.lines.append(f"ok    {line}")

    def warn(self, line: str) -> None:
        self.lines.append(f"WARN  {line}")

    def bad(self, line: str) -> None:
        self.lines.append(f"FAIL  {line}")
        self.problems.append(line)


def check(
    connection: Connection, settings: Settings, timeout: float = 10.0,
    metrics_url: str | None = None,
) -> Report:
    conn = as_connection(connection)
    report = Report()
    unreachable = _unreachable(conn, min(timeout, 3.0))
    if unreachable:
        report.bad(f"broker {conn.bootstrap_servers}: not reachable ({unreachable})")
        return report
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
        _check_record_limits(admin, names, partitions, settings.ingest.max_message_bytes,
                             report)
    finally:
        admin.close()
    _check_members(conn, settings, timeout, report)
    _check_lag(conn, settings.worker.app_id, names, partitions, timeout, report)
    _check_evidence_lag(conn, names, partitions, timeout, report,
                        settings.evidence.group_id)
    worker = settings.worker
    _check_worker_metrics(metrics_url or f"http://{worker.web_bind}:{worker.web_port}/metrics",
                          report)
    return report


def _unreachable(conn: ConnectionConfig, timeout: float) -> str | None:
    """Why no bootstrap server accepts a TCP connection, or None if one does."""
    reasons = []
    for server in conn.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return None
        except ValueError:
            reasons.append(f"{server.strip()}: not host:port")
        except socket.gaierror:
            reasons.append(f"{host}: unknown host")
        except TimeoutError:
            reasons.append(f"{server.strip()}: no answer in {timeout:.0f}s")
        except OSError as exc:
            reasons.append(f"{server.strip()}: {exc.strerror or type(exc).__name__}".lower())
    return "; ".join(reasons)


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


# A record batch of one record adds its header and the record's framing and key (a person key
# is at most 63 bytes) to the value: well under this.
_RECORD_OVERHEAD = 1024


def _check_record_limits(admin: KafkaAdminClient, names: TopicNames, found: dict[str, int],
                         ingest_limit: int, report: Report) -> None:
    """Whether ``mentions.clean`` and ``mentions.invalid`` take what ingest lets through
    (``ingest.max_message_bytes``). A clean mention over its topic's ``max.message.bytes`` is
    analysed, but dead-lettered as ``too_large`` instead of archived as evidence; a dead
    letter over it keeps only its original's first 1,024 bytes. Nothing is said when the
    broker does not describe topic configs (Tansu 0.6 closes the connection)."""
    topics = [name for name in (names.clean, names.invalid) if name in found]
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
             for name in topics], config_filter="all")
    except Exception:  # any refusal: this check is optional
        return
    what = {names.clean: "is analysed but dead-lettered as too_large, not archived as evidence",
            names.invalid: "is dead-lettered with only the original's first 1,024 bytes"}
    for name in topics:
        value = str(described.get("topic", {}).get(name, {})
                    .get("max.message.bytes", {}).get("value", ""))
        if not value.isdigit():
            continue
        if int(value) < ingest_limit + _RECORD_OVERHEAD:
            report.warn(f"topic {name}: max.message.bytes {int(value):,} is below what ingest "
                        f"lets through ({ingest_limit:,} bytes, ingest.max_message_bytes): a "
                        f"larger mention {what[name]}")


def _check_members(
    conn: ConnectionConfig, settings: Settings, timeout: float, report: Report
) -> None:
    roles = {settings.worker.app_id: ("worker", "pileon worker"),
             settings.alerting.group_id: ("notifier", "pileon notify: no alert is delivered"),
             settings.evidence.group_id: ("archiver",
                                          "pileon archive: no evidence bundle is written")}
    try:
        members = retrying(lambda: group_members(conn, list(roles), timeout), seconds=timeout)
    except (StillUnavailable, KafkaError) as exc:
        report.bad(f"consumer groups: not described ({exc})")
        return
    except Exception as exc:  # aiokafka's own errors: one line, never a traceback
        report.bad(f"consumer groups: not described ({type(exc).__name__})")
        return
    for group, (role, what) in roles.items():
        if members.get(group):
            report.ok(f"group {group}: {members[group]} member(s) (the {role})")
        else:
            report.bad(f"group {group}: no member: no {role} is running (start {what})")


def _check_lag(
    connection: Connection, group: str, names: TopicNames, partitions: dict[str, int],
    timeout: float, report: Report,
) -> None:
    sources = {t: partitions[t] for t in (names.raw,) if t in partitions}  # what it reads
    if not sources:
        return
    try:
        lags = _read_lags(connection, group, sources, timeout)
    except (StillUnavailable, KafkaError) as exc:
        report.bad(f"group {group}: offsets not readable ({exc})")
        return
    for topic in sources:
        mine = [p for p in lags if p.topic == topic]
        detail = _per_partition(mine)
        if any(p.end_below_committed for p in mine):
            detail += "; the broker reports end offsets below committed ones"
        never = [p.partition for p in mine if p.committed is None and p.end]
        line = f"group {group} on {topic}: lag {sum(p.lag for p in mine)} ({detail})"
        if never:
            report.bad(f"{line}; no commit yet on partition(s) {never}: is a worker running?")
        else:
            report.ok(line)


def _check_evidence_lag(
    connection: Connection, names: TopicNames, partitions: dict[str, int], timeout: float,
    report: Report, group_id: str,
) -> None:
    """How many clean mentions the archiver has not made durable yet: it commits its offsets
    on ``mentions.clean`` only once a poll's records are fsynced. Whether an archiver runs at
    all is the members check's to say; this says how far behind the evidence is."""
    topic, group = names.clean, clean_group(group_id)
    if topic not in partitions:
        return
    try:
        lags = _read_lags(connection, group, {topic: partitions[topic]}, timeout)
    except (StillUnavailable, KafkaError) as exc:
        report.warn(f"evidence: group {group}'s offsets not readable ({exc})")
        return
    behind = sum(p.lag for p in lags)
    if all(p.committed is None for p in lags):
        if any(p.end for p in lags):
            report.warn(f"evidence: {behind} clean mention(s) on {topic} and no archiver has "
                        "committed there: none of them is archived yet")
        return
    report.ok(f"evidence: {behind} clean mention(s) not archived yet (group {group} on "
              f"{topic}: {_per_partition(lags)})")


def _read_lags(connection: Connection, group: str, sources: dict[str, int],
               timeout: float) -> list[PartitionLag]:
    """A group's lag on ``sources`` from the broker, retried while the broker is settling."""
    with LagProbe(connection, group, sources, timeout=timeout) as probe:
        return retrying(probe.read, seconds=timeout)


def _per_partition(lags: list[PartitionLag]) -> str:
    return " ".join(f"p{p.partition}={p.lag}" for p in lags)


def _check_worker_metrics(url: str, report: Report) -> None:
    """Late mentions the worker set aside (not counted in rates), from its own metrics."""
    try:
        samples = scrape(url, timeout=2.0)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        report.warn(f"worker metrics at {url}: not reachable ({reason}); a worker elsewhere? "
                    "pass --metrics-url")
        return
    late = {s.labels.get("person", "?"): s.value for s in samples
            if s.name == "pileon_late_mentions_total"}
    total = int(sum(late.values()))
    if total:
        worst = ", ".join(f"{p}={int(v)}" for p, v in sorted(late.items(), key=lambda kv: -kv[1])
                          if v)
        report.warn(f"worker: {total} late mention(s) kept as evidence but not counted in rates "
                    f"({worst}); see pileon_late_mentions_total")
    else:
        report.ok(f"worker metrics at {url}: no late mentions")
