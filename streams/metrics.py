"""pileon's Prometheus metrics. Labels carry the watchlist key, never author names or text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MENTIONS = Counter(
    "pileon_mentions_total", "Clean mentions accepted, by person and platform",
    ["person", "platform"],
)
DUPLICATES = Counter(
    "pileon_duplicate_mentions_total", "Mentions dropped as exact duplicates (same id)",
    ["person"],
)
REDELIVERED = Counter(
    "pileon_redelivered_mentions_total",
    "Mentions read again after a crash or rebalance and forwarded again (at least once)",
    ["person"],
)
DEAD_LETTERS = Counter(
    "pileon_dead_letters_total", "Messages sent to the dead-letter topic, by reason", ["reason"]
)
LATE_MENTIONS = Counter(
    "pileon_late_mentions_total",
    "Mentions arriving after their rate bin closed (kept as evidence, not counted in rates)",
    ["person"],
)
WINDOW_CAPPED = Counter(
    "pileon_neardup_window_evictions_total",
    "Mentions evicted from the near-duplicate window by the per-person cap", ["person"],
)
INCIDENTS_OPEN = Gauge(
    "pileon_incidents_open", "Open incidents by person and severity", ["person", "severity"]
)
INCIDENT_TRANSITIONS = Counter(
    "pileon_incident_transitions_total", "Incident transitions emitted as alert events",
    ["person", "transition"],
)
SCORE = Gauge("pileon_pileon_score", "Pile-on score of the last closed bin", ["person"])
WINDOW_MENTIONS = Gauge(
    "pileon_window_mentions", "Mentions in the detection window of the last closed bin",
    ["person"],
)
WINDOW_EXPECTED = Gauge(
    "pileon_window_expected_mentions", "Baseline expectation for the detection window",
    ["person"],
)
NEARDUP_CLUSTERS = Gauge(
    "pileon_neardup_clusters", "Near-duplicate clusters with two or more members", ["person"]
)
NEARDUP_TOP_AUTHORS = Gauge(
    "pileon_neardup_largest_cluster_authors",
    "Distinct authors of the near-duplicate cluster with the most of them", ["person"],
)
PROCESSING_SECONDS = Histogram(
    "pileon_processing_seconds", "Worker time to process one message, by stage", ["stage"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
END_TO_END_SECONDS = Histogram(
    "pileon_end_to_end_latency_seconds",
    "Wall time from a message's Kafka timestamp to the end of its processing, by stage",
    ["stage"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
