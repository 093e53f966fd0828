"""The per-person gauges a closed bin updates (the person dashboard's panels)."""

from __future__ import annotations

import math

from pileon.schema.alert import Severity
from pileon.streams.detection import metrics
from pileon.streams.detection.alert import Scored
from pileon.streams.detection.neardup import ClusterIndex
from pileon.streams.detection.person_state import PersonRuntime


def export_gauges(
    person: str, rt: PersonRuntime, scored: Scored, short: tuple[int, float], index: ClusterIndex
) -> None:
    """``short`` is the 10-minute window's (count, expectation): the panels plot one window
    length, whichever window scored."""
    count, expected = short
    window = scored.window
    metrics.SCORE.labels(person).set(scored.score)
    metrics.WINDOW_MENTIONS.labels(person).set(count)
    metrics.WINDOW_EXPECTED.labels(person).set(expected)
    r = rt.detector.size(0)  # the person's learned over-dispersion, as the test uses
    sd = math.sqrt(expected + expected**2 / r)  # NB(r) variance
    metrics.WINDOW_EXPECTED_UPPER.labels(person).set(expected + 3 * sd)
    metrics.WINDOW_AUTHORS.labels(person).set(window.distinct_authors)
    metrics.WINDOW_AUTHORS_BASELINE.labels(person).set(rt.baselines["distinct_authors"])
    metrics.WINDOW_YOUNG_SHARE.labels(person).set(window.young_share)
    metrics.WINDOW_FOCUS_SHARE.labels(person).set(scored.focus.share)
    metrics.NEARDUP_LARGEST_SIZE.labels(person).set(index.largest_size)
    metrics.NEARDUP_CLUSTERS.labels(person).set(index.copied)
    metrics.NEARDUP_TOP_AUTHORS.labels(person).set(index.most_authors())
    for severity in Severity:
        is_open = rt.incident.is_open and rt.incident.severity is severity
        metrics.INCIDENTS_OPEN.labels(person, severity).set(int(is_open))
