"""pileon's Prometheus recording and alerting rules, generated from this one place.

Shaped after the kubernetes-mixin: every alert has ``severity``, ``summary``, ``description``
and ``runbook_url``, and a ``promtool test rules`` case (``prometheus/pileon-rules.test.yml``;
a test checks that each alert has one). Pipeline-health alerts page the operator; the
``PileonIncidentOpen`` alert mirrors open incidents for teams that route from Prometheus
rather than from ``pileon notify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from pileon.core.deployment import JOBS, RUNBOOK_URL

RUNBOOK = RUNBOOK_URL
WORKER_JOB = JOBS.worker
NOTIFY_JOB = JOBS.notify
ARCHIVER_JOB = JOBS.archiver


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str | None  # None: taken from the series' own severity label
    summary: str
    description: str
    runbook: str = ""  # anchor in docs/runbook.md; default: the alert's name

    def to_rule(self) -> dict[str, Any]:
        labels = {"severity": self.severity} if self.severity else {}
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK}#{self.runbook or self.name.lower()}",
            },
        }


RECORDING = {
    "pileon:mentions:rate5m": "sum by (person) (rate(pileon_mentions_total[5m]))",
    "pileon:score:max": "max by (person) (pileon_pileon_score)",
    "pileon:consumer_lag_messages:sum":
        "sum by (topic) (max by (topic, partition) (pileon_consumer_lag_messages))",
    "pileon:dead_letters:rate5m": "sum by (reason) (rate(pileon_dead_letters_total[5m]))",
    "pileon:incidents_open:sum":
        "sum by (severity) (max by (person, severity) (pileon_incidents_open))",
}

PIPELINE = [
    Alert(
        "PileonWorkerAbsent",
        f'absent(up{{job="{WORKER_JOB}"}} == 1)',
        "5m", "critical",
        "No pileon worker is up",
        "Prometheus has scraped no healthy pileon worker for 5 minutes: mentions are not being "
        "analysed and no pile-on can be detected.",
    ),
    Alert(
        "PileonConsumerLagGrowing",
        "sum by (topic) (max by (topic, partition) (pileon_consumer_lag_messages)) > 1000 "
        "and sum by (topic) (delta(pileon_consumer_lag_messages[10m])) > 0",
        "10m", "warning",
        "pileon is falling behind on {{ $labels.topic }}",
        "Over 1000 messages wait on {{ $labels.topic }} and the backlog has grown for "
        "10 minutes: detection is delayed by that much.",
    ),
    Alert(
        "PileonCommitsStalled",
        "max by (topic, partition) (pileon_consumer_lag_messages) > 0 "
        "and max by (topic, partition) "
        "(changes(pileon_consumer_committed_offset[10m])) == 0",
        "5m", "critical",
        "pileon stopped committing on {{ $labels.topic }} partition {{ $labels.partition }}",
        "Messages wait on partition {{ $labels.partition }} of {{ $labels.topic }} but its "
        "committed offset has not moved for 15 minutes: a stuck or unowned partition. Mentions "
        "of the persons on it are not analysed.",
    ),
    Alert(
        "PileonConnectorFlapping",
        "sum by (connector) (increase(pileon_connector_reconnects_total[15m])) > 5",
        "15m", "warning",
        "Connector {{ $labels.connector }} keeps losing its platform connection",
        "Connector {{ $labels.connector }} reconnected more than 5 times in 15 minutes for 15 "
        "minutes. Each reconnect resumes from its position (nothing is lost while the platform "
        "keeps its replay window), but mentions arrive late. Check the platform's status, the "
        "network and the token.",
    ),
    Alert(
        "PileonDeadLettersRising",
        "sum by (reason) (rate(pileon_dead_letters_total[15m])) > 0.05",
        "15m", "warning",
        "Mentions are being dead-lettered ({{ $labels.reason }})",
        "More than 3 messages a minute have gone to the dead-letter topic with reason "
        "{{ $labels.reason }} for 15 minutes: a connector or a schema change may be broken. "
        "Nothing is lost; the letters hold the originals.",
    ),
    Alert(
        "PileonAlertDeliveryFailing",
        "sum by (sink) (rate(pileon_alert_delivery_failures_total[5m])) > 0 "
        "and sum by (sink) (pileon_alert_queue_depth) > 0",
        "10m", "critical",
        "Alerts are not reaching {{ $labels.sink }}",
        "pileon notify has failed to deliver to {{ $labels.sink }} for 10 minutes and alerts "
        "are queued: responders may not be paged. It keeps retrying.",
    ),
    Alert(
        "PileonAlertsDropped",
        'sum by (sink) (increase(pileon_alert_deliveries_total{outcome=~"expired|rejected"}'
        "[1h])) > 0",
        "0m", "critical",
        "{{ $labels.sink }} refused or never took some alerts",
        "In the last hour some incident transitions were rejected by {{ $labels.sink }} or "
        "expired after retrying: check the notifier's log and the incidents on the dashboard.",
    ),
    Alert(
        "PileonNotifierAbsent",
        f'absent(up{{job="{NOTIFY_JOB}"}} == 1)',
        "5m", "critical",
        "pileon notify is not running",
        "No healthy pileon notify process has been scraped for 5 minutes: incidents are "
        "detected but nobody is paged.",
    ),
    Alert(
        "PileonArchiverAbsent",
        f'absent(up{{job="{ARCHIVER_JOB}"}} == 1)',
        "5m", "critical",
        "The evidence archiver is not running",
        "No healthy pileon archive process has been scraped for 5 minutes: mentions are not "
        "being made durable as evidence, new incidents get no bundle and pages go without "
        "their chain head. Kafka still holds the mentions for its retention; restart the "
        "archiver well within it.",
    ),
    Alert(
        "PileonEvidenceNotCommitting",
        "max by (topic, partition) (pileon_evidence_lag_messages) > 0 "
        "and max by (topic, partition) "
        "(changes(pileon_evidence_committed_offset[10m])) == 0",
        "5m", "critical",
        "The archiver stopped making {{ $labels.topic }} durable",
        "Records wait on partition {{ $labels.partition }} of {{ $labels.topic }} and the "
        "archiver has not moved past any for 15 minutes: a full disk, a failing write or a "
        "stuck export. Those mentions are not evidence yet.",
    ),
    Alert(
        "PileonEvidenceBacklogGrowing",
        "sum by (topic) (pileon_evidence_lag_messages) > 1000 "
        "and sum by (topic) (delta(pileon_evidence_lag_messages[10m])) > 0",
        "10m", "warning",
        "The archiver is falling behind on {{ $labels.topic }}",
        "Over 1000 records wait for the archiver on {{ $labels.topic }} and the backlog has "
        "grown for 10 minutes: mentions become evidence late, and bundles wait for them.",
    ),
    Alert(
        "PileonEvidenceDiskFilling",
        "pileon_evidence_disk_free_bytes / pileon_evidence_disk_size_bytes < 0.15 "
        "and predict_linear(pileon_evidence_disk_free_bytes[6h], 4 * 24 * 3600) < 0",
        "1h", "warning",
        "The evidence disk fills up within 4 days",
        "Less than 15% of the evidence volume of {{ $labels.instance }} is free and at the "
        "rate of the last 6 hours it is full within 4 days. When it is full the archiver "
        "stops appending. Grow the volume, or shorten evidence.retention_days.",
        runbook="the-evidence-disk-pileonevidencediskfilling-pileonevidencediskfull",
    ),
    Alert(
        "PileonEvidenceDiskFull",
        "pileon_evidence_disk_free_bytes / pileon_evidence_disk_size_bytes < 0.03",
        "5m", "critical",
        "The evidence disk is almost full",
        "Less than 3% of the evidence volume of {{ $labels.instance }} is free: the archiver "
        "is about to stop appending mentions. Grow the volume now.",
        runbook="the-evidence-disk-pileonevidencediskfilling-pileonevidencediskfull",
    ),
    Alert(
        "PileonTimestampsFailing",
        'sum(increase(pileon_evidence_timestamps_total{outcome!="granted"}[1h])) > 0 '
        'unless sum(increase(pileon_evidence_timestamps_total{outcome="granted"}[1h])) > 0',
        "0m", "warning",
        "Evidence seals are going out without a timestamp",
        "In the last hour no timestamp authority granted a token for the archiver's seals. "
        "Seals are still signed, but a signature alone does not show when the evidence "
        "existed: whoever holds the key could sign it again later. Check evidence.tsa_urls "
        "and the network path to the authorities.",
    ),
    Alert(
        "PileonOffsetGap",
        "time() - max by (topic) (pileon_offset_gap_stop_timestamp_seconds) < 3600",
        "0m", "warning",
        "A worker restarted rather than skip records of {{ $labels.topic }}",
        "Within the last hour a worker received a record past offsets it was never given and "
        "stopped instead of committing past them (a faust-streaming rebalance bug); its "
        "restart read them again. Nothing was lost; repeated stops slow processing down.",
    ),
    Alert(
        "PileonNeardupKeyMismatch",
        "max by (person) (pileon_neardup_key_mismatch) == 1",
        "0m", "warning",
        "Worker replicas use different near-duplicate keys",
        "State of {{ $labels.person }} was signed with another hashing key: copies will not "
        "match older templates. Mount one neardup.key_file for every replica.",
    ),
]

PILEON = [
    Alert(
        "PileonIncidentOpen",
        "max by (person, severity) (pileon_incidents_open) == 1",
        "0m", None,
        "Pile-on incident open for {{ $labels.person }} ({{ $labels.severity }})",
        "pileon has an open {{ $labels.severity }} incident for {{ $labels.person }}. The "
        "dashboard and the evidence show why; a surge can be organic criticism, so a human "
        "decides what it is.",
        runbook="pile-on-incident",
    ),
]


def alerts() -> list[Alert]:
    return PIPELINE + PILEON


def rule_groups() -> dict[str, Any]:
    return {
        "groups": [
            {"name": "pileon.recording",
             "rules": [{"record": k, "expr": v} for k, v in RECORDING.items()]},
            {"name": "pileon.pipeline", "rules": [a.to_rule() for a in PIPELINE]},
            {"name": "pileon.pileon", "rules": [a.to_rule() for a in PILEON]},
        ]
    }


def render() -> str:
    header = "# Generated by `pileon generate` from pileon/observability/rules.py: do not edit.\n"
    return header + yaml.safe_dump(rule_groups(), sort_keys=False, width=100)
