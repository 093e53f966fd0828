"""The worker's own Prometheus metrics (offsets, lag, latency). Labels carry the watchlist key
or the topic and partition, never author names or text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OFFSET_GAPS = Counter(
    "pileon_offset_gaps_total",
    "Records delivered past offsets never delivered on a source topic; the worker stopped and "
    "restarted rather than skip them (streams/worker/offset_guard.py)", ["topic"],
)
OFFSET_GAP_STOP = Gauge(
    "pileon_offset_gap_stop_timestamp_seconds",
    "When a worker last stopped on an offset gap rather than skip records (set again by the "
    "restarted worker from its data dir, so it is scraped)", ["topic"],
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
