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
OFFSET_GAPS = Counter(
    "pileon_offset_gaps_total",
    "Records delivered past offsets never delivered on a source topic; the worker stopped and "
    "restarted rather than skip them (streams/offset_guard.py)", ["topic"],
)
OFFSET_GAP_STOP = Gauge(
    "pileon_offset_gap_stop_timestamp_seconds",
    "When a worker last stopped on an offset gap rather than skip records (set again by the "
    "restarted worker from its data dir, so it is scraped)", ["topic"],
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
WINDOW_EXPECTED_UPPER = Gauge(
    "pileon_window_expected_upper_mentions",
    "Upper edge of the baseline band: expectation plus 3 negative-binomial standard deviations",
    ["person"],
)
WINDOW_AUTHORS = Gauge(
    "pileon_window_distinct_authors", "Distinct authors in the detection window", ["person"]
)
WINDOW_AUTHORS_BASELINE = Gauge(
    "pileon_window_distinct_authors_baseline", "Usual distinct authors per detection window",
    ["person"],
)
WINDOW_YOUNG_SHARE = Gauge(
    "pileon_window_young_account_share", "Share of mentions in the window from young accounts",
    ["person"],
)
WINDOW_FOCUS_SHARE = Gauge(
    "pileon_window_reply_focus_share",
    "Share of mentions in the window that reply to or quote its most answered post",
    ["person"],
)
NEARDUP_LARGEST_SIZE = Gauge(
    "pileon_neardup_largest_cluster_size", "Members of the largest near-duplicate cluster",
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
CONSUMER_LAG = Gauge(
    "pileon_consumer_lag_messages",
    "Worker group lag per source partition, as the broker sees it (exported by the leader)",
    ["topic", "partition"],
)
COMMITTED_OFFSET = Gauge(
    "pileon_consumer_committed_offset",
    "Worker group committed offset per source partition; its rate is commit progress",
    ["topic", "partition"],
)
STALLED_PARTITIONS = Gauge(
    "pileon_worker_stalled_partitions",
    "Partitions this worker owns with messages waiting and no progress for worker.stall_seconds",
)
LAG_PROBE_ERRORS = Counter(
    "pileon_lag_probe_errors_total", "Failed reads of the worker group's lag from the broker"
)
NEARDUP_KEY_MISMATCH = Gauge(
    "pileon_neardup_key_mismatch",
    "1 if this person's saved state was signed with another hashing key (replicas must share "
    "neardup.key_file; copies will not match older templates)", ["person"],
)
