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
bin whose window is already improbable (score at least ``freeze_score``, p < 1e-5), or whose
pile-on score (volume with the coordination signs this detector does not see) reached the
person's bar (``learn_one(held=True)``), teaches the baseline nothing, so an attack in
progress does not become the new normal while it is being detected (at 1 mention a minute, a
clip alone let a 5x surge raise its own baseline by half within 30 minutes). A surge that
lasts ``_MAX_FROZEN_SECONDS``, or that the learned dispersion comes to explain, is learned
again (clipped): a lasting change of level is, in the end, the person's new normal.

The size ``r`` is each person's own: estimated online by the method of moments on window
residuals, ``r = mean(E^2) / (mean((C - E)^2) - mean(E))``, with upward residuals clipped at
four standard deviations so an attack does not widen the band. The estimate of ``1/r`` is
shrunk towards the prior ``1/dispersion`` with a weight of one day of windows. A person whose
mentions come in bursts (news, threads) thus needs a larger surge to score as high as a
steady one: the score stays a calibrated tail probability for that person. (With a fixed
``r``, a surge of ``k`` times the baseline can never score above ``-log10 P(Gamma(r, 1/r) >= k)``
however large the counts: 6.6 for ``r = 8, k = 5``.)

Two window lengths are tested, ``window_bins`` and ``LONG_FACTOR`` times that (10 minutes and
an hour by default), each with its own learned ``r`` and less ``log10 2`` (Bonferroni), and
the window reported is the one furthest above its own bar (see Calibration; with the caller's
coordination or focus evidence added where its volume reaches the gate, :meth:`RateDetector.
explain`): bursts average out over an hour, so a sustained rise that no 10-minute window makes
improbable (a slow build, a long organic surge) still shows, the way a CUSUM catches sustained
shifts that a Shewhart chart misses (Page 1954).

The long window sets aside its busiest stretch of ``window_bins`` bins (its busiest ten
minutes): it is the test for rises that last, and a one-off spike (the short window's
business) must not make the whole hour unusual.

**Rises that hold** (:meth:`RateDetector._sustained`): the last half hour in six stretches of
five minutes, each against the higher of the seasonal expectation and the person's recent
level (an exponentially weighted mean over six hours of the bins before the half hour, frozen
while a rise is being detected, for at most two hours). All stretches but one must be
improbable: Wilkinson's order-statistic combination of their negative-binomial tail
probabilities, with a size ``r`` learned on five-minute stretches. Its bar is the score the same
half hour would have at ``pileon_multiple`` times its expectation, not a calibrated one: on
the dev series and the injected pile-ons, calibrating it on the person's own bursts learned
the injected attacks themselves as ordinary (an attacked person's bar would rise with every
attack), and the windows' calibrated bars stayed deaf to ten-fold rises on series as bursty
as AAPL (learned ``r`` below 1). docs/benchmarks.md has the measurements.

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
evaluations (twelve more for the sustained test, only when five of its six stretches are above
their expectation), and O(len(LADDER)) for the calibration. State: ~240 numbers.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from scipy.stats import binom, nbinom, poisson

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
# What a responder's verdict can take back (RateDetector.take_back): the crossings counted in
# the last two weeks, at levels a bar can have (from the floor up), one entry per bin and window
# length that counted any, at most ``_CROSSED_MAX`` of them.
_VERDICT_SECONDS = 14 * 86_400
_CROSSED_MAX = 512
# The sustained-rise test (RateDetector.sustained): the last half hour in six stretches of five
# minutes, of which all but ``_SUSTAINED_SPARE`` must be improbable, against the higher of the
# person's usual for that hour and their own recent level (the mean of the six hours before the
# half hour, learned as an exponentially weighted mean).
_SUSTAINED_SECONDS = 1800
_STRETCH_SECONDS = 300
_SUSTAINED_SPARE = 1
_LOCAL_SECONDS = 6 * 3600
_LOCAL_FROZEN_SECONDS = 2 * 3600


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
    # Whether the sustained-rise test gave it: half an hour of improbable stretches, evidence
    # that the rise lasts (the decision step needs no further bin to confirm it).
    sustained: bool = False
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
        pileon_multiple: float = 8.0,
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
        self.pileon_multiple = pileon_multiple
        self.frozen_bins = 0  # consecutive improbable bins the baseline did not learn from
        # (start, count, best score, each window length's score) of the last explained bin
        self._explained: tuple[float, int, float, list[float], float] | None = None
        # The bin being closed, (start, count), and its windows (see _windows).
        self._windowed: tuple[tuple[float, int], list[tuple[int, float] | None]] | None = None
        self._expected: tuple[float, list[float]] | None = None  # see _expectations
        self.profile = [0.0] * _HOURS
        self.profile_n = [0] * _HOURS
        self.level = 0.0
        self.learned = 0
        self.week = [1.0] * 7  # learned ratio of each weekday's count to the hour profile's
        self.week_n = [0] * 7
        self.day = [-1.0, 0.0, 0.0, 0]  # day number, its count, its expectation, bins seen
        self.scales = (window_bins, window_bins * LONG_FACTOR)
        # The sustained test's stretches, in bins (at least one bin each; the half hour held
        # in ``recent``, which keeps the long window's bins).
        self.stretch_bins = max(1, round(_STRETCH_SECONDS / bin_seconds))
        self.stretches = max(2, round(_SUSTAINED_SECONDS / (self.stretch_bins * bin_seconds)))
        self.tests = len(self.scales) + 1  # the two windows and the sustained test
        # The lowest ladder level a bar can rest on: the crossings below it are not kept for a
        # verdict (they cannot move a bar). Fixed by the settings, so found once.
        self._kept_from = math.floor(self.floor())
        self.local = -1.0  # recent level per bin, lagged by the half hour; < 0 until learned
        self.local_n = 0
        self.local_frozen = 0  # consecutive bins the recent level did not learn from
        self.recent: deque[int] = deque(maxlen=max(self.scales[-1],
                                                   self.stretches * self.stretch_bins))
        # Per window length, running moments of window expectations and residuals, for the
        # dispersion estimate: mean E, mean E^2, mean (C - E)^2.
        self.moments = [[0.0, 0.0, 0.0] for _ in range(self.tests)]
        self.moments_n = [0 for _ in range(self.tests)]
        # Calibration: per window length, declustered up-crossings of each LADDER level on
        # the person's own traffic, bins since each level was last reached, and the bins
        # counted (after the warm-up).
        self.crossings = [[0] * len(LADDER) for _ in self.scales]
        self.since = [[_NEVER] * len(LADDER) for _ in self.scales]
        self.exposure = 0
        # The crossings counted lately, for a responder's verdict: [bin start, window length,
        # bit mask of LADDER levels, the incident that took them back or None] (take_back).
        self.crossed: deque[list[Any]] = deque(maxlen=_CROSSED_MAX)

    def _hour(self, start: float) -> int:
        return int(start // 3600) % _HOURS

    def _profiled(self, start: float) -> bool:
        """Whether the hour of ``start`` has enough history for its own expectation."""
        return self.profile_n[self._hour(start)] >= self.memory_bins // 6

    def expected_per_bin(self, start: float, factors: list[float] | None = None) -> float:
        """``factors``: :meth:`week_factors`, when the caller asks for many bins at once."""
        if not self._profiled(start):
            return max(self.level, self.min_expected_per_bin)
        factors = self.week_factors() if factors is None else factors
        return max(self.profile[self._hour(start)] * factors[_weekday(start)],
                   self.min_expected_per_bin)

    def week_factor(self, start: float) -> float:
        """The day-of-week factor for ``start``: shrunk towards 1, a mean of 1 over the week."""
        return self.week_factors()[_weekday(start)]

    def week_factors(self) -> list[float]:
        """Each weekday's factor, Monday first."""
        shrunk = [(n * f + _WEEK_PRIOR_DAYS) / (n + _WEEK_PRIOR_DAYS)
                  for f, n in zip(self.week, self.week_n, strict=True)]
        total = sum(shrunk)
        return [f * 7 / total for f in shrunk]

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

    def _expectations(self, x: BinObservation, n: int) -> list[float]:
        """The baseline's expectation of each of the ``n`` bins up to ``x``, oldest first.
        Computed once per bin for the longest span asked (the windows and the sustained test
        share it) and forgotten once ``x`` is learned."""
        cached = self._expected
        if cached is None or cached[0] != x.start or len(cached[1]) < n:
            span = max(n, self.recent.maxlen or n)
            factors = self.week_factors()
            cached = (x.start, [self.expected_per_bin(x.start - i * self.bin_seconds, factors)
                                for i in range(span)][::-1])
            self._expected = cached
        return cached[1][len(cached[1]) - n :]

    def _window(self, x: BinObservation, bins: int) -> tuple[int, float]:
        """The window's count and expectation. The long window sets aside its busiest
        stretch of ``window_bins`` bins (its busiest ten minutes by default): the test for rises
        that last, and a one-off spike, which the short window judges, must not make the whole
        hour look unusual. A stretch, not the busiest single bins: a quiet person's sparse
        surge has most of its mentions in its busiest minutes (docs/benchmarks.md)."""
        counts = [*list(self.recent)[len(self.recent) - (bins - 1) :], x.count] if bins > 1 \
            else [x.count]
        expected = self._expectations(x, len(counts))
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

    def explain(self, x: BinObservation, evidence: float = 0.0,
                gate: float = math.inf) -> RateExplanation:
        """The window length whose count is least probable for this person: the one whose
        score is furthest above (or least below) its own bar, with its count and expectation
        (the long window's without its busiest stretch: its ``window_bins`` are the rest).

        ``evidence``: the caller's non-volume score for the window (coordination signs, focus
        on one post), which counts towards a window length's score once that score reaches
        ``gate`` (see :func:`pileon.streams.detection.analysis.pileon_score`). The choice is
        then made on the pile-on score: otherwise a window length whose volume score is below
        the gate could win on volume alone and switch the evidence off for the whole bin,
        although the short window's volume was unusual (a quiet person's campaign paused
        its page by minutes that way; docs/benchmarks.md). Without evidence the choice is
        volume alone, as :mod:`pileon.cli.scorecsv` makes it."""
        best: tuple[int, float, float, int, float, bool] | None = None
        scores = []
        excess = -math.inf
        candidates: list[tuple[int, int, float, int] | None] = [
            None if window is None else (i, window[0], window[1],
                                         bins if i == 0 else bins - self.window_bins)
            for i, (bins, window) in enumerate(zip(self.scales, self._windows(x), strict=True))]
        sustained = self._sustained(x)
        for i, candidate in enumerate(candidates):
            if candidate is None:
                if i == 0:
                    raise AssertionError("the short window always counts")
                scores.append(0.0)
                continue  # the long window is not full yet
            _, count, expected, shown = candidate
            score = max(0.0, self._tail_score(count, expected, self.size(i)) - _BONFERRONI)
            scores.append(score)
            excess = max(excess, count - expected)
            bar = self.bar(i)
            if best is None or _margin(score, bar, evidence, gate) > _margin(
                    best[2], best[4], evidence, gate):
                best = (count, expected, score, shown, bar, False)
        windows_best = max(scores)
        sustained_bar = math.inf
        if sustained is not None:
            count, expected, score, at_multiple = sustained
            scores.append(score)
            excess = max(excess, count - expected)
            # Its bar: the half hour at ``pileon_multiple`` times the expectation (and at
            # least the floor every bar has). Not calibrated on the person's own bursts as the
            # windows' bars are: a person attacked every week would teach it that attacks are
            # ordinary (docs/benchmarks.md).
            bar = max(self.floor(), at_multiple)
            sustained_bar = bar
            assert best is not None  # noqa: S101 - the short window always counts
            if _margin(score, bar, evidence, gate) > _margin(best[2], best[4], evidence, gate):
                best = (count, expected, score, self.stretches * self.stretch_bins, bar, True)
        else:
            scores.append(0.0)
        assert best is not None  # noqa: S101 - the short window always counts
        self._explained = (x.start, x.count, windows_best, scores, sustained_bar)
        count, expected, score, shown, bar, is_sustained = best
        return RateExplanation(count, expected, score, shown, latest=x.count,
                               latest_expected=self.expected_per_bin(x.start), size=self.size(0),
                               bar=bar, excess=excess, sustained=is_sustained)

    def _sustained(self, x: BinObservation) -> tuple[int, float, float, float] | None:
        """The sustained-rise test for the half hour ``x`` closes: its count, what was expected
        of it, and its score; None until the half hour and the recent level are known.

        Each five-minute stretch is expected to hold the higher of the person's usual for its
        hour and their recent level (the six hours before the half hour), and its count gets a
        tail probability under a negative binomial with the stretches' own learned size. All
        stretches but ``_SUSTAINED_SPARE`` must be improbable: the score is
        ``-log10 P(at least k of m independent uniform p-values are <= p_(k))``, ``p_(k)`` the
        k-th smallest (Wilkinson's order-statistic combination), so a rise that holds for half an
        hour scores high even when no single ten-minute window is improbable, and one spike,
        however large, scores nothing. Discrete p-values make it conservative."""
        n = self.stretches * self.stretch_bins
        if self.local < 0 or len(self.recent) < n - 1 or self.learned < self.warmup_bins:
            return None
        counts = [*list(self.recent)[len(self.recent) - (n - 1) :], x.count]
        floors = [max(e, self.local) for e in self._expectations(x, n)]
        w = self.stretch_bins
        pairs = [(sum(counts[j : j + w]), sum(floors[j : j + w])) for j in range(0, n, w)]
        total, expected = sum(c for c, _ in pairs), sum(e for _, e in pairs)
        k = self.stretches - _SUSTAINED_SPARE
        if sum(1 for c, e in pairs if c > e) < k:
            return total, expected, 0.0, _MAX_SCORE
        r = self.size(len(self.scales))
        score = self._combined(pairs, r)
        # The same stretches each at ``pileon_multiple`` times their expectation: a rise that
        # large always reaches the bar, however bursty the person (see ``bar``).
        at_multiple = self._combined(
            [(math.ceil(self.pileon_multiple * e), e) for _, e in pairs], r)
        return total, expected, score, at_multiple

    def _combined(self, pairs: list[tuple[int, float]], r: float) -> float:
        """Wilkinson's combination of the stretches' tail probabilities (see ``_sustained``)."""
        k = self.stretches - _SUSTAINED_SPARE
        log_p = sorted(_log_sf(c, e, r) for c, e in pairs)[k - 1]  # ln p_(k)
        # P(Binomial(m, p) >= k), in logs for tiny p: the leading term m!/(k!(m-k)!) p^k.
        tail = float(binom.logsf(k - 1, self.stretches, math.exp(log_p))) if log_p > -700 \
            else math.log(math.comb(self.stretches, k)) + k * log_p
        return min(_MAX_SCORE, max(0.0, -tail / math.log(10) - _BONFERRONI))

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
        floor = self.floor()
        for level in (floor, *(float(v) for v in LADDER if v > floor)):
            # Crossings of the highest ladder level at or below ``level`` (the conservative side).
            crossed = crossings[max(0, min(len(LADDER) - 1, math.floor(level) - LADDER[0]))]
            model = per_month * 10.0 ** -level
            if (crossed + m0 * model) / (months + m0) <= budget:
                return level
        return float(LADDER[-1])

    def floor(self) -> float:
        """The lowest bar any test may have: ``min_bar`` and :meth:`model_bar`."""
        return max(self.min_bar, self.model_bar())

    def model_bar(self) -> float:
        """The bar at which a person whose traffic behaved exactly as the model says would
        see ``false_alarms_per_month`` false alarms: ``log10`` of the tests a month (each
        test once per bin: the two window lengths and the sustained rise) over the budget.
        5.1 for one alarm a month at one-minute bins, 4.4 at five-minute bins."""
        tests = _MONTH / self.bin_seconds * self.tests
        return math.log10(tests / self.false_alarms_per_month)

    def _calibrate(self, scores: list[float], start: float) -> None:
        """Count the up-crossings of each ladder level by each window length's score, and
        remember those a bar could rest on (from the floor up) for :meth:`take_back`."""
        if self.learned < self.warmup_bins:
            return
        self.exposure += 1
        gap = max(1, round(_DECLUSTER_SECONDS / self.bin_seconds))
        for scale, score in enumerate(scores):
            crossings, since = self.crossings[scale], self.since[scale]
            mask = 0
            for i, level in enumerate(LADDER):
                if score >= level:
                    if since[i] >= gap:
                        crossings[i] += 1
                        if level >= self._kept_from:
                            mask |= 1 << i
                    since[i] = 0
                elif since[i] < _NEVER:
                    since[i] += 1
            if mask:
                while self.crossed and self.crossed[0][0] < start - _VERDICT_SECONDS:
                    self.crossed.popleft()
                self.crossed.append([start, scale, mask, None])

    def take_back(self, start: float, end: float, incident: str) -> int:
        """A responder found that the incident ``incident`` (its windows from ``start`` to
        ``end``) was an attack: the calibration crossings counted in that span were not the
        person's ordinary bursts, so they no longer count towards the bars.

        The bars are calibrated on the person's own traffic, attacks included, because
        nothing else tells them apart; a person attacked more often than the false-alarm budget
        would otherwise teach pileon that their attacks are ordinary, and stop being paged for
        them (docs/benchmarks.md, "Attacks learned as the person's normal"). Returns how many
        crossings were taken back (0 for a verdict already applied, or older than two weeks).
        What else the attack taught is not undone: the negative-binomial size (an average)
        and the hour profile (frozen while the rise was improbable, for at most six hours)."""
        taken = 0
        for entry in self.crossed:
            if entry[3] is None and start <= entry[0] <= end:
                taken += self._recount(entry, -1)
                entry[3] = incident
        return taken

    def give_back(self, incident: str) -> int:
        """The responder changed their mind about ``incident``: what :meth:`take_back` took
        for it counts again. Returns how many crossings."""
        given = 0
        for entry in self.crossed:
            if entry[3] == incident:
                given += self._recount(entry, 1)
                entry[3] = None
        return given

    def _recount(self, entry: list[Any], step: int) -> int:
        """Add ``step`` to the count of each level a kept entry crossed (each was counted when
        the entry was made); returns how many levels."""
        crossings = self.crossings[entry[1]]
        levels = [i for i in range(len(LADDER)) if entry[2] >> i & 1]
        for i in levels:
            crossings[i] += step
        return len(levels)

    def size(self, scale: int = 0) -> float:
        """The negative-binomial size ``r`` in use for a window length: the learned
        over-dispersion ``1/r``, shrunk towards the prior's by one day's worth of windows (a
        short history cannot make ordinary bursts look improbable)."""
        mean_e, mean_e2, mean_r2 = self.moments[scale]
        n = self.moments_n[scale]
        n0 = 86_400 / self.bin_seconds * self.scales[0] / self._test_bins(scale)
        prior = 1.0 / self.dispersion
        learned = max(0.0, mean_r2 - mean_e) / mean_e2 if n and mean_e2 > 0 else prior
        phi = (n0 * prior + n * learned) / (n0 + n)
        return min(_SIZE_BOUNDS[1], max(_SIZE_BOUNDS[0], 1.0 / phi if phi > 0 else math.inf))

    def _test_bins(self, test: int) -> int:
        return self.scales[test] if test < len(self.scales) else self.stretch_bins

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

    def _sustained_bar(self, x: BinObservation) -> float:
        """The sustained test's bar for the half hour ``x`` closes (inf before it is known)."""
        self._scores(x)
        assert self._explained is not None  # noqa: S101 - set by _scores
        return self._explained[4]

    def _surprising(self, x: BinObservation, held: bool) -> bool:
        """Whether ``x`` closes an improbable window (or one the caller holds back: see
        :meth:`learn_one`)."""
        score, _ = self._scores(x)
        self.frozen_bins = self.frozen_bins + 1 if held or score >= self.freeze_score else 0
        return 0 < self.frozen_bins <= _MAX_FROZEN_SECONDS / self.bin_seconds

    def learn_one(self, x: BinObservation, held: bool = False) -> None:
        """Learn the bin ``x`` closes. ``held``: the caller's pile-on score for it reached the
        person's bar (volume with coordination signs, which this detector does not see), so
        the baseline learns it as it learns an improbable window: not at all, for at most
        ``_MAX_FROZEN_SECONDS``. Without it a quiet person's surge whose volume alone scores
        below ``freeze_score`` (a dozen copies against 0.1 a minute) becomes, clipped at
        ``3E + 3`` a bin, the baseline it is measured against within the hour."""
        # Robust update: an attack in progress must not teach the baseline that it is normal.
        # (The band still learns from it, clipped at four sd: freezing the dispersion too made
        # every bursty series look calmer than it is, NAB 77 -> 68.)
        surprising = bool(self.learned) and self._surprising(x, held)
        if self.learned:
            self._calibrate(self._scores(x)[1][: len(self.scales)], x.start)
        # Residuals count only once the hour has its own expectation: before that they measure
        # the missing daily rhythm, not the person's burstiness.
        if self.learned >= self.warmup_bins // 2 and self._profiled(x.start):
            for i, window in enumerate(self._windows(x)):
                if window is not None:
                    self._learn_dispersion(i, *window)
            if self.local >= 0 and len(self.recent) >= self.stretch_bins - 1:
                w = self.stretch_bins
                counts = [*list(self.recent)[len(self.recent) - (w - 1) :], x.count]
                self._learn_dispersion(len(self.scales), sum(counts), sum(
                    max(e, self.local) for e in self._expectations(x, w)))
        self._learn_local(x)
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
        self._windowed = self._expected = None

    def _learn_local(self, x: BinObservation) -> None:
        """Learn the recent level from the bin leaving the sustained test's half hour (the
        level is what the half hour is compared with, so it must not hold it), unless a rise
        is being detected (a window improbable, or the sustained test at its bar): an attack
        must not become its own baseline. Clipped like the profile's counts."""
        n = self.stretches * self.stretch_bins
        if len(self.recent) < n:
            return
        rising = self.frozen_bins > 0 or self._scores(x)[1][-1] >= self._sustained_bar(x)
        self.local_frozen = self.local_frozen + 1 if rising else 0
        if self.local >= 0 and 0 < self.local_frozen <= _LOCAL_FROZEN_SECONDS / self.bin_seconds:
            return
        start = x.start - n * self.bin_seconds
        count = float(self.recent[-n])
        if self.local >= 0:
            count = min(count, 3.0 * max(self.local, self.expected_per_bin(start)) + 3.0)
        self.local_n += 1
        alpha = 1.0 / min(self.local_n, max(1, round(_LOCAL_SECONDS / self.bin_seconds)))
        self.local = count if self.local < 0 else self.local + alpha * (count - self.local)

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
            "crossed": list(self.crossed),
            "local": self.local,
            "local_n": self.local_n,
            "local_frozen": self.local_frozen,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        detector = cls(**params)
        detector.profile = [float(v) for v in state["profile"]]
        detector.profile_n = [int(v) for v in state["profile_n"]]
        detector.level = float(state["level"])
        detector.learned = int(state["learned"])
        detector.recent.extend(int(v) for v in state["recent"])
        if "moments" in state:  # a state from before the sustained test has two of each
            for i, m in enumerate(state["moments"]):
                detector.moments[i] = [float(v) for v in m]
                detector.moments_n[i] = int(state["moments_n"][i])
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
        detector.crossed.extend([float(t), int(scale), int(mask), incident]
                                for t, scale, mask, incident in state.get("crossed", []))
        detector.local = float(state.get("local", -1.0))
        detector.local_n = int(state.get("local_n", 0))
        detector.local_frozen = int(state.get("local_frozen", 0))
        return detector


def with_evidence(score: float, evidence: float, gate: float) -> float:
    """A window's pile-on score: its volume ``score``, plus the non-volume ``evidence``
    (coordination signs, focus on one post) once the volume score reaches ``gate``. The one
    rule both the choice of window length (:meth:`RateDetector.explain`) and the analyser's
    :func:`~pileon.streams.detection.analysis.pileon_score` apply."""
    return score + (evidence if score >= gate else 0.0)


def _margin(score: float, bar: float, evidence: float, gate: float) -> float:
    """How far a window length's pile-on score is above its bar."""
    return with_evidence(score, evidence, gate) - bar


def _log_sf(count: int, expected: float, r: float) -> float:
    """``ln P(X >= count)`` for ``X ~ NegBin(mean=expected, size=r)`` (Poisson for r = inf)."""
    if count <= 0 or expected <= 0:
        return 0.0 if count <= 0 else -math.inf
    if math.isinf(r):
        return float(poisson.logsf(count - 1, expected))
    return float(nbinom.logsf(count - 1, r, r / (r + expected)))


def negbin_tail_score(count: float, expected: float, r: float) -> float:
    """``-log10 P(X >= count)`` for ``X ~ NegBin(mean=expected, size=r)``, capped at
    ``_MAX_SCORE``; 0 when ``count`` is no more than ``expected``."""
    if count <= expected or expected <= 0:
        return 0.0
    log_sf = _log_sf(math.ceil(count), expected, r)
    return min(_MAX_SCORE, max(0.0, -log_sf / math.log(10)))


def _weekday(t: float) -> int:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (int(t // _DAY) + 3) % 7
