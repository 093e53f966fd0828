"""Metrics of ``pileon archive``. Labels carry the watchlist's person key, topics, partitions
and transitions, never a mention's content.

The archiver is where evidence becomes durable, so an operator must see when it stops, falls
behind or runs out of disk: ``PileonArchiverAbsent``, ``PileonEvidenceNotCommitting``,
``PileonEvidenceBacklogGrowing`` and ``PileonEvidenceDiskFilling`` read these.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "pileon_evidence_records_total",
    "Clean mentions appended to a person's hash chain and fsynced", ["person"],
)
APPEND_SECONDS = Histogram(
    "pileon_evidence_append_seconds",
    "One group commit: a poll's records written and fsynced, person by person",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
LAG = Gauge(
    "pileon_evidence_lag_messages",
    "Records on a topic the archiver has not handled yet (high watermark minus position)",
    ["topic", "partition"],
)
COMMITTED_OFFSET = Gauge(
    "pileon_evidence_committed_offset",
    "The archiver's committed offset per partition; its rate is archiving progress",
    ["topic", "partition"],
)
BUNDLES = Counter(
    "pileon_evidence_bundles_total", "Incident bundles written, by the transition that made them",
    ["transition"],
)
CHANGES = Counter(
    "pileon_evidence_changes_total", "Deletions and edits of posts appended to the change log",
)
DEAD_LETTERS = Counter(
    "pileon_evidence_dead_letters_total",
    "Records of mentions.changes that are not change events, sent to the dead-letter topic",
)
HEADS_UNPUBLISHED = Counter(
    "pileon_evidence_heads_unpublished_total",
    "Chain heads at an alert the broker did not take (the page goes without the head)",
)
TORN_TAILS = Counter(
    "pileon_evidence_torn_tails_total",
    "Unfinished writes found at a chain's end after a crash and set aside (re-read from Kafka)",
)
DISK_FREE = Gauge(
    "pileon_evidence_disk_free_bytes", "Free bytes on the evidence folder's file system",
)
DISK_SIZE = Gauge(
    "pileon_evidence_disk_size_bytes", "Size of the evidence folder's file system",
)
TIMESTAMPS = Counter(
    "pileon_evidence_timestamps_total",
    "RFC 3161 timestamp requests for seals, by outcome: granted, failed (no answer, an error) "
    "or refused (an answer that is not a grant for this request)", ["outcome"],
)
