"""Detection's Prometheus metrics. Labels carry the watchlist key, never author names or text."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
MISROUTED = Counter(
    "pileon_misrouted_mentions_total",
    "Mentions read from a partition of mentions.raw other than their person's, sent back to "
    "their person's partition (a producer that did not key them by person)", ["person"],
)
DEAD_LETTERS = Counter(
    "pileon_dead_letters_total", "Messages sent to the dead-letter topic, by reason", ["reason"]
)
VERDICTS = Counter(
    "pileon_verdicts_total",
    "Responders' dispositions of incidents the worker applied, by person and disposition "
    "(coordinated: the incident's calibration crossings no longer raise the person's bars)",
    ["person", "disposition"],
)
CROSSINGS_TAKEN_BACK = Counter(
    "pileon_calibration_crossings_taken_back_total",
    "Calibration crossings taken back (positive) by verdicts that an incident was an attack",
    ["person"],
)
LATE_MENTIONS = Counter(
    "pileon_late_mentions_total",
    "Mentions arriving after their rate bin closed (kept as evidence; folded into detection "
    "when the next bin closes, see pileon_late_mentions_folded_total)",
    ["person"],
)
LATE_FOLDED = Counter(
    "pileon_late_mentions_folded_total",
    "Late mentions folded into the bins they belong to, whose windows were scored again",
    ["person"],
)
LATE_INCIDENTS = Counter(
    "pileon_incidents_found_late_total",
    "Incidents opened from late (backfilled) mentions, with their true onset",
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
NEARDUP_KEY_MISMATCH = Gauge(
    "pileon_neardup_key_mismatch",
    "1 if this person's saved state was signed with another hashing key (replicas must share "
    "neardup.key_file; copies will not match older templates)", ["person"],
)
