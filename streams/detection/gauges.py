"""The per-person gauges a closed bin updates (the person dashboard's panels)."""

from __future__ import annotations

import math
from functools import cache
from typing import Any, NamedTuple

from pileon.schema.alert import Severity
from pileon.streams.detection import metrics
from pileon.streams.detection.alert import Scored
from pileon.streams.detection.neardup import ClusterIndex
from pileon.streams.detection.person_state import PersonRuntime


class _Children(NamedTuple):
    score: Any
    mentions: Any
    expected: Any
    expected_upper: Any
    authors: Any
    authors_baseline: Any
    young_share: Any
    focus_share: Any
    largest: Any
    clusters: Any
    top_authors: Any
    open_by_severity: tuple[tuple[Severity, Any], ...]


@cache
def _children(person: str) -> _Children:
    """The person's labelled series, looked up once (a label look-up costs twice a set)."""
    return _Children(
        metrics.SCORE.labels(person), metrics.WINDOW_MENTIONS.labels(person),
        metrics.WINDOW_EXPECTED.labels(person), metrics.WINDOW_EXPECTED_UPPER.labels(person),
        metrics.WINDOW_AUTHORS.labels(person), metrics.WINDOW_AUTHORS_BASELINE.labels(person),
        metrics.WINDOW_YOUNG_SHARE.labels(person), metrics.WINDOW_FOCUS_SHARE.labels(person),
        metrics.NEARDUP_LARGEST_SIZE.labels(person), metrics.NEARDUP_CLUSTERS.labels(person),
        metrics.NEARDUP_TOP_AUTHORS.labels(person),
        tuple((s, metrics.INCIDENTS_OPEN.labels(person, s)) for s in Severity),
    )


def export_gauges(
    person: str, rt: PersonRuntime, scored: Scored, short: tuple[int, float], index: ClusterIndex
) -> None:
    """``short`` is the 10-minute window's (count, expectation): the panels plot one window
    length, whichever window scored."""
    count, expected = short
    window = scored.window
    series = _children(person)
    series.score.set(scored.score)
    series.mentions.set(count)
    series.expected.set(expected)
    r = rt.detector.size(0)  # the person's learned over-dispersion, as the test uses
    sd = math.sqrt(expected + expected**2 / r)  # NB(r) variance
    series.expected_upper.set(expected + 3 * sd)
    series.authors.set(window.distinct_authors)
    series.authors_baseline.set(rt.baselines["distinct_authors"])
    series.young_share.set(window.young_share)
    series.focus_share.set(scored.focus.share)
    series.largest.set(index.largest_size)
    series.clusters.set(index.copied)
    series.top_authors.set(index.most_authors())
    for severity, is_open_series in series.open_by_severity:
        is_open_series.set(int(rt.incident.is_open and rt.incident.severity is severity))
