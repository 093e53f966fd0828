"""Published volume-spike rules, as online detectors over a count series (one value per bin).

Each returns, per bin, whether its rule holds. An alert is raised on the rising edge (the first
bin where the rule holds after a bin where it did not), the way these tools notify once per
spike; pileon's own alerts are incident openings and escalations.

* ``LastHourVsPrevious12h``: the spike alert of commercial social-listening tools: mentions in
  the last hour against the hourly average of the 12 hours before it; alert at twice the
  average ("100% above usual volume") with at least ``min_count`` mentions in the hour.
* ``DailyMeanAboveWeekly``: the mean of the last 24 hours above the mean of the 7 days before
  them plus ``k`` standard deviations of those 7 daily means (the "mean + k sigma"
  control-chart rule, Shewhart), k = 3.
* ``EwmaZScore``: the z-score of each bin against an exponentially weighted mean and variance
  (Roberts 1959; alpha = 0.05), alert at z >= 3.

All are causal: they use only bins before the current one (and the current one).
"""

from __future__ import annotations

import math
from collections import deque


class LastHourVsPrevious12h:
    name = "last hour vs previous 12 h (x2)"

    def __init__(self, bin_seconds: int, ratio: float = 2.0, min_count: int = 10) -> None:
        self.per_hour = max(1, 3600 // bin_seconds)
        self.ratio, self.min_count = ratio, min_count
        self.bins: deque[float] = deque(maxlen=13 * self.per_hour)

    def step(self, count: float) -> bool:
        self.bins.append(count)
        if len(self.bins) < self.bins.maxlen:  # type: ignore[operator]
            return False
        values = list(self.bins)
        last = sum(values[-self.per_hour :])
        before = sum(values[: -self.per_hour]) / 12
        return last >= self.min_count and last >= self.ratio * max(before, 1e-9)


class DailyMeanAboveWeekly:
    name = "24 h mean > 7-day mean + 3 sd"

    def __init__(self, bin_seconds: int, k: float = 3.0) -> None:
        self.per_day = max(1, 86_400 // bin_seconds)
        self.k = k
        self.bins: deque[float] = deque(maxlen=8 * self.per_day)

    def step(self, count: float) -> bool:
        self.bins.append(count)
        if len(self.bins) < self.bins.maxlen:  # type: ignore[operator]
            return False
        values = list(self.bins)
        days = [sum(values[i : i + self.per_day]) for i in range(0, 7 * self.per_day,
                                                                    self.per_day)]
        mean = sum(days) / 7
        sd = math.sqrt(sum((d - mean) ** 2 for d in days) / 6)
        return sum(values[-self.per_day :]) > mean + self.k * sd


class EwmaZScore:
    name = "EWMA z-score >= 3"

    def __init__(self, bin_seconds: int, alpha: float = 0.05, z: float = 3.0,
                 warmup: int = 288) -> None:
        self.alpha, self.z, self.warmup = alpha, z, warmup
        self.mean = 0.0
        self.var = 0.0
        self.n = 0

    def step(self, count: float) -> bool:
        fire = False
        if self.n >= self.warmup and self.var > 0:
            fire = (count - self.mean) / math.sqrt(self.var) >= self.z
        if self.n == 0:
            self.mean = count
        diff = count - self.mean
        self.mean += self.alpha * diff
        self.var = (1 - self.alpha) * (self.var + self.alpha * diff * diff)
        self.n += 1
        return fire


BASELINES = (LastHourVsPrevious12h, DailyMeanAboveWeekly, EwmaZScore)


def rising_edges(flags: list[bool]) -> list[int]:
    return [int(f and (i == 0 or not flags[i - 1])) for i, f in enumerate(flags)]
