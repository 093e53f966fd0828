"""Prometheus metrics of connectors. Labels carry the connector name, never text or authors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTOR_EVENTS = Counter(
    "pileon_connector_events_total",
    "Platform events read, by outcome (matched, unmatched, bad_frame, ignored, deleted, "
    "edited; *_unknown_post: a change of a post not published lately)",
    ["connector", "outcome"],
)
CONNECTOR_PUBLISHED = Counter(
    "pileon_connector_published_total", "Mentions sent to mentions.raw", ["connector"]
)
CONNECTOR_DUPLICATES = Counter(
    "pileon_connector_duplicates_skipped_total",
    "Mentions not sent again after a restart because they were published after the checkpoint",
    ["connector"],
)
CONNECTOR_RECONNECTS = Counter(
    "pileon_connector_reconnects_total", "Connections to the platform re-established",
    ["connector"],
)
CONNECTOR_CHECKPOINT = Gauge(
    "pileon_connector_checkpoint_timestamp_seconds", "Wall time of the last checkpoint",
    ["connector"],
)
CONNECTOR_EVENT_TIME = Gauge(
    "pileon_connector_event_timestamp_seconds",
    "Event time of the last platform event read (now minus this is the connector's lag)",
    ["connector"],
)
CONNECTOR_LOOKUPS = Counter(
    "pileon_connector_profile_lookups_total",
    "Author profile lookups (account age), by outcome (hit, fetched, failed)",
    ["connector", "outcome"],
)
