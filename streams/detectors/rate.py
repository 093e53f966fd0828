"""Mention rate against a seasonal baseline, scored as a negative-binomial tail probability.

The baseline is an hour-of-day profile of the expected mentions per bin, learned online with an
exponentially weighted mean (a global level fills in until an hour has enough history). The
score of a bin is ``-log10 P(X >= C)`` where ``C`` is the count over the last ``window_bins``
bins and ``X ~ NegBin(mean=E, size=r)``, ``E`` the baseline expectation over the same bins:
the negative binomial allows the over-dispersion of real social traffic (variance
``E + E^2/r``) where a Poisson test would fire on every ordinary burst (Lawless 1987,
"Negative binomial and mixed Poisson regression"). Counts used for learning are clipped, so a
sustained attack does not quickly become the new normal.

Cost: O(window_bins) arithmetic per bin, plus one ``scipy`` tail evaluation when the window
is above its expectation. State: ~60 floats.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from scipy.stats import nbinom

from streams.detectors.base import BinObservation

_HOURS = 24
_MAX_SCORE = 50.0


@dataclass(frozen=True, slots=True)
class RateExplanation:
    """What the score of a window compares: its count and what the baseline expected."""

    count: int
    expected: float
    score: float

    @property
    def ratio(self) -> float:
        return self.count / self.expected if self.expected > 0 else math.inf


class RateDetector:
    """Count-aware rate anomaly score for one person.

    >>> d = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=60)
    >>> for i in range(24 * 60):
    ...     d.learn_one(BinObservation(start=i * 60.0, count=2))
    >>> d.score_one(BinObservation(start=24 * 3600.0, count=2)) < 1
    True
    >>> d.score_one(BinObservation(start=24 * 3600.0, count=80)) > 8
    True
    """

    def __init__(
        self,
        bin_seconds: int = 60,
        window_bins: int = 10,
        dispersion: float = 8.0,
        warmup_bins: int = 720,
        memory_bins: int = 3 * 60,
        min_expected_per_bin: float = 0.05,
    ) -> None:
        self.bin_seconds = bin_seconds
        self.window_bins = window_bins
        self.dispersion = dispersion
        self.warmup_bins = warmup_bins
        self.memory_bins = memory_bins
        self.min_expected_per_bin = min_expected_per_bin
        self.profile = [0.0] * _HOURS
        self.profile_n = [0] * _HOURS
        self.level = 0.0
        self.learned = 0
        self.recent: deque[int] = deque(maxlen=window_bins)

    def _hour(self, start: float) -> int:
        return int(start // 3600) % _HOURS

    def expected_per_bin(self, start: float) -> float:
        h = self._hour(start)
        value = self.profile[h] if self.profile_n[h] >= self.memory_bins // 6 else self.level
        return max(value, self.min_expected_per_bin)

    def explain(self, x: BinObservation) -> RateExplanation:
        counts = [*list(self.recent)[1 - self.window_bins :], x.count]
        if self.window_bins == 1:
            counts = [x.count]
        starts = [x.start - i * self.bin_seconds for i in range(len(counts))]
        expected = sum(self.expected_per_bin(s) for s in starts)
        count = sum(counts)
        return RateExplanation(count, expected, self._tail_score(count, expected))

    def _tail_score(self, count: int, expected: float) -> float:
        if self.learned < self.warmup_bins or count <= expected:
            return 0.0
        r = self.dispersion
        log_sf = float(nbinom.logsf(count - 1, r, r / (r + expected)))
        return min(_MAX_SCORE, max(0.0, -log_sf / math.log(10)))

    def score_one(self, x: BinObservation) -> float:
        return self.explain(x).score

    def learn_one(self, x: BinObservation) -> None:
        expected = self.expected_per_bin(x.start)
        # Robust update: an attack in progress must not teach the baseline that it is normal.
        count = min(float(x.count), 3.0 * expected + 3.0) if self.learned else float(x.count)
        h = self._hour(x.start)
        self.profile_n[h] += 1
        self.profile[h] += (count - self.profile[h]) / min(self.profile_n[h], self.memory_bins)
        self.learned += 1
        self.level += (count - self.level) / min(self.learned, self.memory_bins * 2)
        self.recent.append(x.count)

    def to_state(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "profile_n": self.profile_n,
            "level": self.level,
            "learned": self.learned,
            "recent": list(self.recent),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        detector = cls(**params)
        detector.profile = [float(v) for v in state["profile"]]
        detector.profile_n = [int(v) for v in state["profile_n"]]
        detector.level = float(state["level"])
        detector.learned = int(state["learned"])
        detector.recent.extend(int(v) for v in state["recent"])
        return detector
