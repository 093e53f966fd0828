"""Metrics of ``pileon notify``. Labels carry sink names and outcomes, never alert content."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "pileon_alert_deliveries_total",
    "Incident transitions handed to a sink, by final outcome (delivered, rejected, expired)",
    ["sink", "outcome"],
)
FAILURES = Counter(
    "pileon_alert_delivery_failures_total", "Failed delivery attempts (each retry counts)",
    ["sink"],
)
QUEUE_DEPTH = Gauge("pileon_alert_queue_depth", "Notifications waiting per sink", ["sink"])
DELIVERY_SECONDS = Histogram(
    "pileon_alert_delivery_seconds", "Time from an alert event to its delivery, by sink",
    ["sink"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)
DUPLICATE_EVENTS = Counter(
    "pileon_alert_duplicate_events_total",
    "Alert events with an idempotency key already delivered (worker re-sends), not re-sent",
)
INVALID_EVENTS = Counter(
    "pileon_alert_invalid_events_total", "Records on the alerts topic that are not alert events"
)
OPEN_INCIDENTS = Gauge(
    "pileon_notify_open_incidents", "Incidents the notifier keeps re-announcing as firing"
)
ASSIGNED_PARTITIONS = Gauge(
    "pileon_notify_assigned_partitions", "Partitions of the alerts topic this notifier reads"
)
HEADS_MISSING = Counter(
    "pileon_alert_heads_missing_total",
    "Pages sent without the chain head at their alert (the archiver was late or absent)",
)
