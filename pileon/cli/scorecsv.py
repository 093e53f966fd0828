"""``pileon score-csv``: the detector and decision step over a NAB-style count series.

Input ``timestamp,value`` (one row per bin, e.g. mentions per 5 minutes); output
``timestamp,value,anomaly_score,alert`` with one row per input row. ``alert`` is 1 exactly on
the rows where pileon would open or escalate an incident; ``anomaly_score`` is the bin's
pile-on score scaled to [0, 1] (1 at the escalation score). The bin width is read from the
data, and the time-based defaults (a 10-minute detection window, 30 quiet minutes to resolve,
12 hours of warm-up) are converted to bins of that width, so the same settings serve 1-minute
and 5-minute series.
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pileon.core.settings import DetectionSettings
from pileon.streams.detection.detectors import BinObservation, RateDetector
from pileon.streams.detection.incidents import (
    IncidentState,
    Transition,
    critical_bar,
    decide,
    open_bar,
)
from pileon.streams.detection.person_state import detector_params


class SeriesError(ValueError):
    """The input is not a usable count series; the message names the row."""


@dataclass(frozen=True)
class Scored:
    timestamp: str
    value: str
    anomaly_score: float
    alert: int


def _time(text: str, line: int) -> float:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SeriesError(f"line {line}: timestamp {text!r} is not a date and time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def read_series(path: Path) -> list[tuple[str, str, float, int]]:
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"timestamp", "value"} <= set(reader.fieldnames):
            raise SeriesError(f"{path}: needs the columns timestamp,value")
        for line, row in enumerate(reader, start=2):
            try:
                count = round(float(row["value"]))
            except (TypeError, ValueError):
                raise SeriesError(f"line {line}: value {row['value']!r} is not a number") from None
            if count < 0:
                raise SeriesError(f"line {line}: a count cannot be negative")
            rows.append((row["timestamp"], row["value"], _time(row["timestamp"], line), count))
    if len(rows) < 3:
        raise SeriesError(f"{path}: too few rows to score")
    return rows


def settings_for_bin(cfg: DetectionSettings, bin_seconds: int) -> DetectionSettings:
    """The same time spans as ``cfg``, expressed in bins of ``bin_seconds``."""
    def bins(seconds: float) -> int:
        return max(1, round(seconds / bin_seconds))

    return cfg.model_copy(update={
        "bin_seconds": bin_seconds,
        "window_bins": bins(cfg.window_bins * cfg.bin_seconds),
        "quiet_bins": bins(cfg.quiet_bins * cfg.bin_seconds),
    })


def score(rows: list[tuple[str, str, float, int]], cfg: DetectionSettings) -> Iterator[Scored]:
    deltas = [b[2] - a[2] for a, b in itertools.pairwise(rows)]
    bin_seconds = max(1, round(statistics.median(deltas)))
    cfg = settings_for_bin(cfg, bin_seconds)
    detector = RateDetector(**detector_params(cfg))  # the worker's, in bins of the data
    state = IncidentState()
    for timestamp, value, t, count in rows:
        x = BinObservation(t, count)
        rate = detector.explain(x)
        decision = decide(state, "series", t + bin_seconds, rate.score, rate, cfg)
        detector.learn_one(x, held=rate.score >= open_bar(rate, cfg))  # as the worker does
        opens = decision is not None and decision.transition is not Transition.RESOLVED
        yield Scored(timestamp, value, min(1.0, rate.score / critical_bar(rate, cfg)),
                     int(opens))


def write(scored: Iterable[Scored], path: Path) -> int:
    n = 0
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")  # as NAB's files and most tools write
        out.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for s in scored:
            out.writerow([s.timestamp, s.value, f"{s.anomaly_score:.6f}", s.alert])
            n += 1
    return n
