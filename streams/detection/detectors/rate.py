"""Mention rate against a seasonal baseline, scored as a negative-binomial tail probability.

The baseline is an hour-of-day profile of the expected mentions per bin, learned online with an
exponentially weighted mean (a global level fills in until an hour has enough history), times a
day-of-week factor: the double seasonal decomposition of Taylor (2003, "Short-term electricity
demand forecasting using double seasonal exponential smoothing"), multiplicative. The hour
profile learns counts divided by their day's factor; a day's factor learns, once the day is
over, the ratio of its (clipped) count to what the hour profile expected, and is shrunk towards
1 by ``_WEEK_PRIOR_DAYS`` observations of that weekday and normalised to a mean of 1 over the
week, so a person's quiet weekends (or busy Mondays) are not surprises and a Sunday-evening
surge that would be ordinary on a weekday is. Days are UTC days. The
score of a bin is ``-log10 P(X >= C)`` where ``C`` is the count over the last ``window_bins``
bins and ``X ~ NegBin(mean=E, size=r)``, ``E`` the baseline expectation over the same bins:
the negative binomial allows the over-dispersion of real social traffic (variance
``E + E^2/r``) where a Poisson test would fire on every ordinary burst (Lawless 1987,
"Negative binomial and mixed Poisson regression"). Counts used for learning are clipped, and a
bin whose window is already improbable (score at least ``freeze_score``, p < 1e-5) teaches
the baseline nothing, so an attack in progress does not become the new normal while it is
being detected (at 1 mention a minute, a clip alone let a 5x surge raise its own baseline by
half within 30 minutes). A surge that lasts ``_MAX_FROZEN_SECONDS``, or that the learned
dispersion comes to explain, is learned again (clipped): a lasting change of level is, in the
end, the person's new normal.

The size ``r`` is each person's own: estimated online by the method of moments on window
residuals, ``r = mean(E^2) / (mean((C - E)^2) - mean(E))``, with upward residuals clipped at
four standard deviations so an attack does not widen the band. The estimate of ``1/r`` is
shrunk towards the prior ``1/dispersion`` with a weight of one day of windows. A person whose
mentions come in bursts (news, threads) thus needs a larger surge to score as high as a
steady one: the score stays a calibrated tail probability for that person. (With a fixed
``r``, a surge of ``k`` times the baseline can never score above ``-log10 P(Gamma(r, 1/r) >= k)``
however large the counts: 6.6 for ``r = 8, k = 5``.)

Two window lengths are tested, ``window_bins`` and ``LONG_FACTOR`` times that (10 minutes and
an hour by default), each with its own learned ``r``, and the score is the stronger of the two
less ``log10 2`` (Bonferroni): bursts average out over an hour, so a sustained rise that no
10-minute window makes improbable (a slow build, a long organic surge) still shows, the way a
CUSUM catches sustained shifts that a Shewhart chart misses (Page 1954).

The long window sets aside its busiest stretch of ``window_bins`` bins (its busiest ten
minutes): it is the test for rises that last, and a one-off spike (the short window's
business) must not make the whole hour unusual.

**Calibration.** The default is a false-alarm budget, not a score. Real series are not
negative binomial in their tails (news spikes), so a fixed score bar pages a bursty person
every week and is needlessly deaf for a calm one. Each window length has its own bar
(:meth:`RateDetector.bar`): the lowest score level whose declustered up-crossings on the
person's own traffic come no more often than ``false_alarms_per_month``, where the rate is the
person's observed one with a prior of one month at the rate the model itself implies. A new
person starts at the model's bar (:meth:`RateDetector.model_bar`, ``log10`` of the tests a
month over the budget); a person whose bursts cross it often moves up, level by level, as they
are seen. This is peaks-over-threshold done empirically on a ladder of levels rather than by
a fitted tail (which a previous try found too sensitive to its threshold), in the spirit of
HTM's anomaly likelihood: a score is judged against the person's own history of scores.

Cost: O(LONG_FACTOR * window_bins) arithmetic per bin, plus up to two ``scipy`` tail
evaluations, and O(len(LADDER)) for the calibration. State: ~230 numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from scipy.stats import nbinom, poisson

from pileon.streams.detection.detectors.base import BinObservation

_HOURS = 24
_MAX_SCORE = 50.0
_SIZE_BOUNDS = (0.3, 1000.0)
LONG_FACTOR = 6
_BONFERRONI = math.log10(2)  # two window lengths are tested
_NEVER = 1 << 30
_WEEK_PRIOR_DAYS = 2.0  # a weekday's factor counts for half once two such days are seen
_WEEK_MEMORY_DAYS = 8  # weeks remembered by a weekday's factor (EWMA, 1/8 per new day)
_DAY = 86_400
_MAX_FROZEN_SECONDS = 6 * 3600
# Calibration (see RateDetector.bar): the score levels whose up-crossings are counted, the
# prior's weight (a person starts with one month of model-rate crossings), and the gap after
# which a new crossing counts as a new burst rather than the same one.
LADDER = tuple(range(2, 41))
_MONTH = 30.4 * 86_400
_CALIBRATION_PRIOR_MONTHS = 1.0
_DECLUSTER_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class RateExplanation:
    """What the score of a window compares: its count and what the baseline expected."""

    count: int
    expected: float
    score: float
    window_bins: int = 1  # the window length these figures are for (the short or the long)
    # The newest bin alone: its count, its expectation, and the short window's size ``r``, so
    # the decision step can ask whether a surge is still going on (see
    # pileon.streams.detection.incidents).
    latest: int = 0
    latest_expected: float = 0.0
    size: float = math.inf
    # The score this window length must reach to open an incident for this person: derived
    # from the false-alarm budget and the person's own history (RateDetector.bar).
    bar: float | None = None
    # The most mentions above baseline that any window length holds (the hour's, without its
    # busiest minutes, or the ten minutes'): what the decision step's ``min_excess`` asks of.
    excess: float | None = None

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
        freeze_score: float = 5.0,
        false_alarms_per_month: float = 2.0,
        min_bar: float = 3.0,
    ) -> None:
        self.bin_seconds = bin_seconds
        self.window_bins = window_bins
        self.dispersion = dispersion
        self.warmup_bins = warmup_bins
        self.memory_bins = memory_bins
        self.min_expected_per_bin = min_expected_per_bin
        self.freeze_score = freeze_score
        self.false_alarms_per_month = false_alarms_per_month
        self.min_bar = min_bar
        self.frozen_bins = 0  # consecutive improbable bins the baseline did not learn from
        # (start, count, best score, each window length's score) of the last explained bin
        self._explained: tuple[float, int, float, list[float]] | None = None
        # The bin being closed, (start, count), and its windows (see _windows).
        self._windowed: tuple[tuple[float, int], list[tuple[int, float] | None]] | None = None
        self.profile = [0.0] * _HOURS
        self.profile_n = [0] * _HOURS
        self.level = 0.0
        self.learned = 0
        self.week = [1.0] * 7  # learned ratio of each weekday's count to the hour profile's
        self.week_n = [0] * 7
        self.day = [-1.0, 0.0, 0.0, 0]  # day number, its count, its expectation, bins seen
        self.scales = (window_bins, window_bins * LONG_FACTOR)
        self.recent: deque[int] = deque(maxlen=self.scales[-1])
        # Per window length, running moments of window expectations and residuals, for the
        # dispersion estimate: mean E, mean E^2, mean (C - E)^2.
        self.moments = [[0.0, 0.0, 0.0] for _ in self.scales]
        self.moments_n = [0 for _ in self.scales]
        # Calibration: per window length, declustered up-crossings of each LADDER level on
        # the person's own traffic, bins since each level was last reached, and the bins
        # counted (after the warm-up).
        self.crossings = [[0] * len(LADDER) for _ in self.scales]
        self.since = [[_NEVER] * len(LADDER) for _ in self.scales]
        self.exposure = 0

    def _hour(self, start: float) -> int:
        return int(start // 3600) % _HOURS

    def _profiled(self, start: float) -> bool:
        """Whether the hour of ``start`` has enough history for its own expectation."""
        return self.profile_n[self._hour(start)] >= self.memory_bins // 6

    def expected_per_bin(self, start: float) -> float:
        if not self._profiled(start):
            return max(self.level, self.min_expected_per_bin)
        return max(self.profile[self._hour(start)] * self.week_factor(start),
                   self.min_expected_per_bin)

    def week_factor(self, start: float) -> float:
        """The day-of-week factor for ``start``: shrunk towards 1, a mean of 1 over the week."""
        shrunk = [(n * f + _WEEK_PRIOR_DAYS) / (n + _WEEK_PRIOR_DAYS)
                  for f, n in zip(self.week, self.week_n, strict=True)]
        return shrunk[_weekday(start)] * 7 / sum(shrunk)

    def window(self, x: BinObservation) -> tuple[int, float]:
        """The short window closed by ``x`` (call before learning ``x``): its count and what
        the baseline expected of it, even when the long window gives the score."""
        short = self._windows(x)[0]
        assert short is not None  # noqa: S101 - the short window always counts
        return short

    def _windows(self, x: BinObservation) -> list[tuple[int, float] | None]:
        """Each window length's count and expectation for the bin ``x`` closes, None for the
        long window until it is full. Computed once per bin (``explain``, ``window`` and
        ``learn_one`` all need them) and forgotten once ``x`` is learned."""
        if self._windowed is not None and self._windowed[0] == (x.start, x.count):
            return self._windowed[1]
        windows = [self._window(x, bins) if not i or len(self.recent) >= bins - 1 else None
                   for i, bins in enumerate(self.scales)]
        self._windowed = ((x.start, x.count), windows)
        return windows

    def _window(self, x: BinObservation, bins: int) -> tuple[int, float]:
        """The window's count and expectation. The long window sets aside its busiest
        stretch of ``window_bins`` bins (its busiest ten minutes by default): the test for rises
        that last, and a one-off spike, which the short window judges, must not make the whole
        hour look unusual. A stretch, not the busiest single bins: a quiet person's sparse
        surge has most of its mentions in its busiest minutes (docs/benchmarks.md)."""
        counts = [*list(self.recent)[len(self.recent) - (bins - 1) :], x.count] if bins > 1 \
            else [x.count]
        expected = [self.expected_per_bin(x.start - i * self.bin_seconds)
                    for i in range(len(counts))][::-1]
        if bins == self.scales[0]:
            return sum(counts), sum(expected)
        w = self.window_bins
        run = sum(counts[:w])
        busiest, start = run, 0
        for j in range(1, len(counts) - w + 1):
            run += counts[j + w - 1] - counts[j - 1]
            if run > busiest:
                busiest, start = run, j
        return (sum(counts) - busiest,
                sum(expected) - sum(expected[start : start + w]))

    def explain(self, x: BinObservation) -> RateExplanation:
        """The window length whose count is least probable for this person: the one whose
        score is furthest above (or least below) its own bar, with its count and expectation
        (the long window's without its busiest stretch: its ``window_bins`` are the rest)."""
        best: tuple[int, float, float, int, float] | None = None
        scores = []
        excess = -math.inf
        for i, (bins, window) in enumerate(zip(self.scales, self._windows(x), strict=True)):
            if window is None:
                continue  # the long window is not full yet
            count, expected = window
            score = max(0.0, self._tail_score(count, expected, self.size(i)) - _BONFERRONI)
            scores.append(score)
            excess = max(excess, count - expected)
            bar = self.bar(i)
            shown = bins if i == 0 else bins - self.window_bins
            if best is None or score - bar > best[2] - best[4]:
                best = (count, expected, score, shown, bar)
        assert best is not None  # noqa: S101 - the short window always counts
        self._explained = (x.start, x.count, max(scores), scores)
        count, expected, score, shown, bar = best
        return RateExplanation(count, expected, score, shown, latest=x.count,
                               latest_expected=self.expected_per_bin(x.start), size=self.size(0),
                               bar=bar, excess=excess)

    def bar(self, scale: int = 0) -> float:
        """The score a window length must reach to open an incident for this person.

        The default is a false-alarm budget, ``false_alarms_per_month`` bursts a month on the
        person's own traffic, not a score: the bar is the lowest level of ``LADDER`` (at least
        ``min_bar`` and :meth:`model_bar`) whose rate of declustered up-crossings is within
        the budget. That rate is the person's own (crossings over months counted) with a prior
        of one month at the rate the model implies (``10^-level`` per bin), so a new person
        starts at the higher of ``min_bar`` and :meth:`model_bar`, and a person whose ordinary
        bursts reach the bar more often than the budget allows gets a higher one, as their
        bursts are seen. Each window length has its own bar:
        short bursts are common, rises that last an hour are not.
        """
        per_month = _MONTH / self.bin_seconds
        months = self.exposure / per_month
        m0 = _CALIBRATION_PRIOR_MONTHS
        budget = self.false_alarms_per_month
        crossings = self.crossings[scale]
        floor = max(self.min_bar, self.model_bar())
        for level in (floor, *(float(v) for v in LADDER if v > floor)):
            # Crossings of the highest ladder level at or below ``level`` (the conservative side).
            crossed = crossings[max(0, min(len(LADDER) - 1, math.floor(level) - LADDER[0]))]
            model = per_month * 10.0 ** -level
            if (crossed + m0 * model) / (months + m0) <= budget:
                return level
        return float(LADDER[-1])

    def model_bar(self) -> float:
        """The bar at which a person whose traffic behaved exactly as the model says would
        see ``false_alarms_per_month`` false alarms: ``log10`` of the tests a month (each
        window length once per bin) over the budget. 4.9 for one alarm a month at one-minute
        bins, 4.2 at five-minute bins."""
        tests = _MONTH / self.bin_seconds * len(self.scales)
        return math.log10(tests / self.false_alarms_per_month)

    def _calibrate(self, scores: list[float]) -> None:
        """Count the up-crossings of each ladder level by each window length's score."""
        if self.learned < self.warmup_bins:
            return
        self.exposure += 1
        gap = max(1, round(_DECLUSTER_SECONDS / self.bin_seconds))
        for scale, score in enumerate(scores):
            crossings, since = self.crossings[scale], self.since[scale]
            for i, level in enumerate(LADDER):
                if score >= level:
                    if since[i] >= gap:
                        crossings[i] += 1
                    since[i] = 0
                elif since[i] < _NEVER:
                    since[i] += 1

    def size(self, scale: int = 0) -> float:
        """The negative-binomial size ``r`` in use for a window length: the learned
        over-dispersion ``1/r``, shrunk towards the prior's by one day's worth of windows (a
        short history cannot make ordinary bursts look improbable)."""
        mean_e, mean_e2, mean_r2 = self.moments[scale]
        n = self.moments_n[scale]
        n0 = 86_400 / self.bin_seconds * self.scales[0] / self.scales[scale]
        prior = 1.0 / self.dispersion
        learned = max(0.0, mean_r2 - mean_e) / mean_e2 if n and mean_e2 > 0 else prior
        phi = (n0 * prior + n * learned) / (n0 + n)
        return min(_SIZE_BOUNDS[1], max(_SIZE_BOUNDS[0], 1.0 / phi if phi > 0 else math.inf))

    def _tail_score(self, count: int, expected: float, r: float) -> float:
        if self.learned < self.warmup_bins:
            return 0.0
        return negbin_tail_score(count, expected, r)

    def score_one(self, x: BinObservation) -> float:
        return self.explain(x).score

    def _scores(self, x: BinObservation) -> tuple[float, list[float]]:
        """The best score of the windows ``x`` closes and each length's (from the ``explain``
        just before, as the analyser calls it, or now)."""
        explained = self._explained
        if explained is None or explained[:2] != (x.start, x.count):
            self.explain(x)
            explained = self._explained
        assert explained is not None  # noqa: S101 - set by explain
        return explained[2], explained[3]

    def _surprising(self, x: BinObservation) -> bool:
        """Whether ``x`` closes an improbable window."""
        score, _ = self._scores(x)
        self.frozen_bins = self.frozen_bins + 1 if score >= self.freeze_score else 0
        return 0 < self.frozen_bins <= _MAX_FROZEN_SECONDS / self.bin_seconds

    def learn_one(self, x: BinObservation) -> None:
        # Robust update: an attack in progress must not teach the baseline that it is normal.
        # (The band still learns from it, clipped at four sd: freezing the dispersion too made
        # every bursty series look calmer than it is, NAB 77 -> 68.)
        surprising = bool(self.learned) and self._surprising(x)
        if self.learned:
            self._calibrate(self._scores(x)[1])
        # Residuals count only once the hour has its own expectation: before that they measure
        # the missing daily rhythm, not the person's burstiness.
        if self.learned >= self.warmup_bins // 2 and self._profiled(x.start):
            for i, window in enumerate(self._windows(x)):
                if window is not None:
                    self._learn_dispersion(i, *window)
        expected = self.expected_per_bin(x.start)
        if not self.learned:
            count = float(x.count)
        elif surprising:
            count = expected
        else:
            count = min(float(x.count), 3.0 * expected + 3.0)
        h = self._hour(x.start)
        if self._profiled(x.start):
            self._learn_week(x.start, count, self.profile[h])
        factor = self.week_factor(x.start)
        self.profile_n[h] += 1
        self.profile[h] += (count / factor - self.profile[h]) / min(self.profile_n[h],
                                                                   self.memory_bins)
        self.learned += 1
        self.level += (count - self.level) / min(self.learned, self.memory_bins * 2)
        self.recent.append(x.count)
        self._windowed = None

    def _learn_week(self, start: float, count: float, profile_expected: float) -> None:
        """Add a bin to its day; when a new day starts, the finished one (if the hour profile
        covered at least 90% of it) teaches its weekday's factor."""
        day = float(start // _DAY)
        if day != self.day[0]:
            done, total, expected, bins = self.day
            if done >= 0 and expected > 0 and bins >= 0.9 * _DAY / self.bin_seconds:
                d = _weekday(done * _DAY)
                self.week_n[d] += 1
                alpha = 1.0 / min(self.week_n[d], _WEEK_MEMORY_DAYS)
                self.week[d] += alpha * (total / expected - self.week[d])
            self.day = [day, 0.0, 0.0, 0]
        self.day[1] += count
        self.day[2] += profile_expected
        self.day[3] += 1

    def _learn_dispersion(self, scale: int, count: int, expected: float) -> None:
        residual = count - expected
        r = self.size(scale)
        residual = min(residual, 4.0 * math.sqrt(expected + expected * expected / r))
        self.moments_n[scale] += 1
        alpha = 1.0 / min(self.moments_n[scale], self.memory_bins * 10)
        moments = self.moments[scale]
        for i, value in enumerate((expected, expected * expected, residual * residual)):
            moments[i] += alpha * (value - moments[i])

    def to_state(self) -> dict[str, Any]:
        return {
            "moments": self.moments,
            "moments_n": self.moments_n,
            "profile": self.profile,
            "profile_n": self.profile_n,
            "level": self.level,
            "learned": self.learned,
            "recent": list(self.recent),
            "frozen_bins": self.frozen_bins,
            "week": self.week,
            "week_n": self.week_n,
            "day": self.day,
            "crossings": self.crossings,
            "since": self.since,
            "exposure": self.exposure,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        detector = cls(**params)
        detector.profile = [float(v) for v in state["profile"]]
        detector.profile_n = [int(v) for v in state["profile_n"]]
        detector.level = float(state["level"])
        detector.learned = int(state["learned"])
        detector.recent.extend(int(v) for v in state["recent"])
        if "moments" in state:
            detector.moments = [[float(v) for v in m] for m in state["moments"]]
            detector.moments_n = [int(v) for v in state["moments_n"]]
        detector.frozen_bins = int(state.get("frozen_bins", 0))
        if "week" in state:
            detector.week = [float(v) for v in state["week"]]
            detector.week_n = [int(v) for v in state["week_n"]]
            day, total, expected, bins = state["day"]
            detector.day = [float(day), float(total), float(expected), int(bins)]
        if "crossings" in state:
            detector.crossings = [[int(v) for v in c] for c in state["crossings"]]
            detector.since = [[int(v) for v in c] for c in state["since"]]
            detector.exposure = int(state["exposure"])
        return detector


def negbin_tail_score(count: float, expected: float, r: float) -> float:
    """``-log10 P(X >= count)`` for ``X ~ NegBin(mean=expected, size=r)``, capped at
    ``_MAX_SCORE``; 0 when ``count`` is no more than ``expected``."""
    if count <= expected or expected <= 0:
        return 0.0
    if math.isinf(r):
        log_sf = float(poisson.logsf(math.ceil(count) - 1, expected))
    else:
        log_sf = float(nbinom.logsf(math.ceil(count) - 1, r, r / (r + expected)))
    return min(_MAX_SCORE, max(0.0, -log_sf / math.log(10)))


def _weekday(t: float) -> int:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (int(t // _DAY) + 3) % 7
