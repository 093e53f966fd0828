from __future__ import annotations

import copy
import functools
import math

import numpy as np
import orjson
import pytest

from pileon.streams.detection.detectors import BinObservation, RateDetector


def _trained(rate: float = 2.0, days: int = 2, seed: int = 0) -> RateDetector:
    rng = np.random.default_rng(seed)
    d = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=720)
    for i in range(days * 1440):
        d.learn_one(BinObservation(i * 60.0, int(rng.poisson(rate))))
    return d


class TestRateDetector:
    def test_silent_during_warm_up(self) -> None:
        d = RateDetector(warmup_bins=100)
        for i in range(50):
            d.learn_one(BinObservation(i * 60.0, 1))
        assert d.score_one(BinObservation(50 * 60.0, 500)) == 0.0

    def test_ordinary_counts_score_low(self) -> None:
        d = _trained()
        assert d.score_one(BinObservation(2 * 86400.0, 2)) < 1.0

    def test_ten_times_baseline_over_the_window_scores_high(self) -> None:
        d = _trained()
        t = 2 * 86400.0
        for i in range(9):
            d.learn_one(BinObservation(t + i * 60, 20))
        assert d.score_one(BinObservation(t + 9 * 60, 20)) > 8

    def test_score_grows_with_the_excess(self) -> None:
        d = _trained()
        t = 2 * 86400.0
        scores = [d.score_one(BinObservation(t, c)) for c in (5, 15, 30, 60)]
        assert scores == sorted(scores)

    def test_learns_the_daily_rhythm(self) -> None:
        d = RateDetector(bin_seconds=60, window_bins=1, warmup_bins=60)
        for i in range(3 * 1440):
            hour = (i // 60) % 24
            d.learn_one(BinObservation(i * 60.0, 10 if 12 <= hour < 18 else 1))
        assert d.expected_per_bin(3 * 86400.0 + 14 * 3600) > 5 * d.expected_per_bin(
            3 * 86400.0 + 3 * 3600
        )

    def test_attack_does_not_quickly_become_normal(self) -> None:
        d = _trained()
        before = d.expected_per_bin(2 * 86400.0)
        for i in range(60):
            d.learn_one(BinObservation(2 * 86400.0 + i * 60, 50))
        assert d.expected_per_bin(2 * 86400.0 + 3600) < 3 * before

    def test_explanation_carries_count_and_expectation(self) -> None:
        d = _trained()
        e = d.explain(BinObservation(2 * 86400.0, 40))
        assert e.count >= 40
        assert 10 < e.expected < 40
        assert e.ratio == e.count / e.expected


    def test_explanation_names_the_window_length_that_scores(self) -> None:
        # A sharp burst is least probable over 10 minutes; a long, mild rise over the hour.
        sharp, mild = _trained(), _trained()
        t = 2 * 86400.0
        assert sharp.explain(BinObservation(t, 40)).window_bins == 10
        for i in range(59):
            x = BinObservation(t + i * 60, 4)
            mild.explain(x)
            mild.learn_one(x)
        rise = mild.explain(BinObservation(t + 59 * 60, 4))
        assert rise.window_bins == 50  # the hour without its ten busiest minutes
        assert rise.count >= 190  # fifty minutes' count, not ten minutes' worth
        assert rise.latest == 4 and 1 < rise.latest_expected < 3

    def test_the_short_window_is_at_hand_whichever_length_scores(self) -> None:
        d = _trained()
        count, expected = d.window(BinObservation(2 * 86400.0, 40))
        assert count >= 40 and 10 < expected < 40


def _weekly(weeks: int, weekend_rate: float = 1.0, weekday_rate: float = 4.0) -> RateDetector:
    """Poisson traffic four times lower on Saturdays and Sundays (epoch day 0 is a Thursday)."""
    rng = np.random.default_rng(1)
    d = RateDetector(bin_seconds=300, window_bins=2, warmup_bins=144)
    for i in range(weeks * 7 * 288):
        weekday = (i // 288 + 3) % 7
        rate = weekend_rate if weekday >= 5 else weekday_rate
        d.learn_one(BinObservation(i * 300.0, int(rng.poisson(rate))))
    return d


class TestWeeklyRhythm:
    def test_quiet_weekends_are_learned(self) -> None:
        d = _weekly(weeks=4)
        saturday, monday = 2 * 86400.0 + 28 * 86400, 4 * 86400.0 + 28 * 86400
        assert d.week_factor(saturday) < 0.6 < 1.1 < d.week_factor(monday)
        # (shrunk towards 1 by two prior days: 4x in the data, 2x+ after three weekends)
        assert d.expected_per_bin(monday + 3600) > 2 * d.expected_per_bin(saturday + 3600)

    def test_factors_average_one_over_the_week(self) -> None:
        d = _weekly(weeks=3)
        assert abs(sum(d.week_factor(day * 86400.0) for day in range(7)) / 7 - 1) < 1e-9

    def test_one_week_moves_a_factor_only_part_of_the_way(self) -> None:
        one, four = _weekly(weeks=1), _weekly(weeks=4)
        saturday = 2 * 86400.0
        assert four.week_factor(saturday) < one.week_factor(saturday) < 1.0

    def test_a_weekday_level_on_a_sunday_scores_as_a_surge(self) -> None:
        d = _weekly(weeks=4)
        sunday = 3 * 86400.0 + 28 * 86400 + 12 * 3600
        d.learn_one(BinObservation(sunday - 300, 9))
        assert d.score_one(BinObservation(sunday, 9)) > 3


class TestLearningDuringASurge:
    def test_an_improbable_window_teaches_the_baseline_nothing(self) -> None:
        frozen, clipped_only = _trained(), _trained()
        clipped_only.freeze_score = float("inf")
        t = 2 * 86400.0
        before = frozen.expected_per_bin(t)
        for d in (frozen, clipped_only):
            for i in range(30):  # 5x: clipping alone (3E + 3) lets it all in
                x = BinObservation(t + i * 60, 10)
                d.explain(x)
                d.learn_one(x)
        assert frozen.frozen_bins > 20
        rise = frozen.expected_per_bin(t + 1740) - before
        assert rise < 0.3 * (clipped_only.expected_per_bin(t + 1740) - before)

    def test_a_held_bin_teaches_the_baseline_nothing_though_its_volume_is_probable(
        self,
    ) -> None:
        # A quiet person (0.1 a minute) and a surge of 1.5 a minute whose volume alone would
        # not freeze the baseline (freeze_score out of reach, as it is for a bursty quiet
        # person's dozen); the caller's pile-on score (coordination signs) reached the bar.
        held, learned = _trained(rate=0.1, seed=3), _trained(rate=0.1, seed=3)
        held.freeze_score = learned.freeze_score = math.inf
        t = 2 * 86400.0
        before = held.expected_per_bin(t)
        for i in range(45):
            x = BinObservation(t + i * 60, 1 + i % 2)
            held.learn_one(x, held=True)
            learned.learn_one(x)
        assert held.frozen_bins == 45 and learned.frozen_bins == 0
        assert held.expected_per_bin(t + 2700) == pytest.approx(before, rel=0.05)
        assert learned.expected_per_bin(t + 2700) > 1.5 * before

    def test_a_held_surge_is_learned_once_the_freeze_runs_out(self) -> None:
        d = _trained(rate=0.1, seed=3)
        t = 2 * 86400.0
        last_hour = t + 7.5 * 3600
        before = d.expected_per_bin(last_hour)
        for i in range(8 * 60):  # held for eight hours: past the six-hour freeze
            d.learn_one(BinObservation(t + i * 60, 1 + i % 2), held=True)
        assert d.expected_per_bin(last_hour) > 1.5 * before

    def test_a_lasting_new_level_is_learned_in_the_end(self) -> None:
        d = _trained()
        t = 2 * 86400.0
        last_hour = t + 7.5 * 3600  # learned again once the freeze ran out
        before = d.expected_per_bin(last_hour)
        for i in range(8 * 60):  # eight hours at 5x: past the six-hour freeze
            d.learn_one(BinObservation(t + i * 60, 10))
        assert d.expected_per_bin(last_hour) > 1.5 * before

    def test_state_round_trip_keeps_week_and_freeze(self) -> None:
        d = _weekly(weeks=2)
        d.frozen_bins = 7
        again = RateDetector.from_state(d.to_state(), bin_seconds=300, window_bins=2,
                                        warmup_bins=144)
        assert (again.week, again.week_n, again.day, again.frozen_bins) == (
            d.week, d.week_n, d.day, 7)


class TestCalibration:
    """The default is a false-alarm budget; each window length's bar derives from it."""

    def test_a_new_person_starts_at_the_bar_the_budget_implies(self) -> None:
        d = _trained()
        # 43,776 one-minute bins a month, three tests (two window lengths and the sustained
        # rise), two alarms a month.
        assert d.model_bar() == pytest.approx(math.log10(3 * 43_776 / 2.0), abs=0.01)
        assert d.bar(0) == d.bar(1) == pytest.approx(d.model_bar())
        strict = RateDetector(bin_seconds=60, false_alarms_per_month=0.5)
        assert strict.model_bar() > d.model_bar()

    def test_a_bursty_person_gets_a_higher_bar_for_short_bursts_only(self) -> None:
        rng = np.random.default_rng(3)
        d = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=720)
        quiet = _trained()
        for i in range(12 * 1440):  # twelve days, a five-minute burst every six hours
            burst = 60 if i % 360 < 5 and i > 1440 else 0
            x = BinObservation(i * 60.0, int(rng.poisson(2.0)) + burst)
            d.explain(x)
            d.learn_one(x)
        assert d.bar(0) >= quiet.bar(0) + 4  # its ordinary bursts no longer page
        assert d.bar(1) < d.bar(0)  # an hour without its busiest ten minutes stays sensitive

    def test_a_spike_does_not_make_the_hour_unusual(self) -> None:
        d = _trained()
        t = 2 * 86400.0
        for i, count in enumerate([300] + [2] * 30):
            d.explain(BinObservation(t + i * 60, count))
            d.learn_one(BinObservation(t + i * 60, count))
        # The hour holds the spike; set aside as its busiest minutes, the rest is ordinary.
        assert d.explain(BinObservation(t + 31 * 60, 2)).score < 2

    def test_calibration_survives_a_restart(self) -> None:
        d = _trained()
        for i in range(60):
            x = BinObservation(2 * 86400.0 + i * 60, 40 if i < 5 else 2)
            d.explain(x)
            d.learn_one(x)
        restored = RateDetector.from_state(d.to_state(), bin_seconds=60, window_bins=10,
                                           warmup_bins=720)
        assert restored.crossings == d.crossings and restored.exposure == d.exposure
        assert restored.bar(0) == d.bar(0)


def _attacked(every_hours: int, days: int = 12) -> tuple[RateDetector, list[tuple[float, float]]]:
    """A person at 2 a minute with a ten-fold rise held for 40 minutes every ``every_hours``
    hours after the first day (not a whole number of days: the same hour every day would be the
    person's daily rhythm); the detector and each rise's (start, end), a fresh copy each call."""
    detector, rises = _attacked_once(every_hours, days)
    return copy.deepcopy(detector), list(rises)


@functools.cache
def _attacked_once(every_hours: int, days: int, seed: int = 3) -> tuple[
        RateDetector, list[tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    d = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=720)
    rises = []
    period = every_hours * 60
    for i in range(days * 1440):
        inside = i > 1440 and i % period < 40
        if i > 1440 and i % period == 0:
            rises.append((i * 60.0, (i + 100) * 60.0))
        x = BinObservation(i * 60.0, int(rng.poisson(2.0)) + (18 if inside else 0))
        d.explain(x)
        d.learn_one(x)
    return d, rises


class TestVerdicts:
    """A responder's verdict that an incident was an attack takes its calibration crossings
    back: attacks more frequent than the budget no longer raise the bars."""

    def test_attacks_more_often_than_the_budget_raise_the_bars(self) -> None:
        attacked, _ = _attacked(every_hours=29)
        quiet = _trained()
        assert max(attacked.bar(0), attacked.bar(1)) > max(quiet.bar(0), quiet.bar(1))

    def test_taking_the_attacks_back_lowers_the_bars_again(self) -> None:
        attacked, rises = _attacked(every_hours=29)
        before = (attacked.bar(0), attacked.bar(1))
        taken = sum(attacked.take_back(start - 3600, end, f"i{n}")
                    for n, (start, end) in enumerate(rises))
        assert taken > 0
        after = (attacked.bar(0), attacked.bar(1))
        assert after[0] <= before[0] and after[1] <= before[1] and after != before
        assert after == pytest.approx((attacked.floor(), attacked.floor()))

    def test_a_verdict_applied_twice_takes_back_once(self) -> None:
        attacked, rises = _attacked(every_hours=29)
        start, end = rises[-1]
        first = attacked.take_back(start - 3600, end, "i")
        assert first > 0
        assert attacked.take_back(start - 3600, end, "i") == 0
        assert attacked.take_back(start - 3600, end, "another") == 0

    def test_a_verdict_changed_back_counts_the_crossings_again(self) -> None:
        attacked, rises = _attacked(every_hours=29)
        crossings = [list(c) for c in attacked.crossings]
        start, end = rises[-1]
        taken = attacked.take_back(start - 3600, end, "i")
        assert attacked.crossings != crossings
        assert attacked.give_back("i") == taken
        assert attacked.crossings == crossings
        assert attacked.give_back("i") == 0

    def test_only_crossings_inside_the_span_are_taken(self) -> None:
        attacked, rises = _attacked(every_hours=29)
        start, _ = rises[-1]
        ordinary_span = attacked.take_back(start - 6 * 3600, start - 3600, "not an attack")
        assert ordinary_span == 0  # nothing crossed a bar's levels in ordinary hours

    def test_what_can_be_taken_back_survives_a_restart_and_stays_bounded(self) -> None:
        attacked, _ = _attacked(every_hours=7, days=20)
        assert 0 < len(attacked.crossed) <= 512
        assert attacked.crossed[-1][0] - attacked.crossed[0][0] <= 14 * 86_400  # two weeks
        state = orjson.loads(orjson.dumps(attacked.to_state()))
        restored = RateDetector.from_state(state, bin_seconds=60, window_bins=10,
                                           warmup_bins=720)
        newest = attacked.crossed[-1][0]
        assert restored.take_back(newest - 3600, newest, "i") == attacked.take_back(
            newest - 3600, newest, "i") > 0
        assert restored.crossings == attacked.crossings


class TestChoiceOfWindowLength:
    """The window length is chosen on the pile-on score when the caller has non-volume
    evidence (coordination signs, focus), so that evidence is not switched off by a window
    length that wins on volume alone."""

    @staticmethod
    def _bursty() -> RateDetector:
        rng = np.random.default_rng(3)
        d = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=720)
        for i in range(12 * 1440):  # a five-minute burst of 12 a minute every six hours
            burst = 12 if i % 360 < 5 and i > 1440 else 0
            x = BinObservation(i * 60.0, int(rng.poisson(2.0)) + burst)
            d.explain(x)
            d.learn_one(x)
        return d

    def test_evidence_counts_where_the_volume_is_unusual(self) -> None:
        d = self._bursty()
        assert d.bar(0) > d.bar(1) + 3  # its bursts raised the ten-minute bar only
        x = BinObservation(12 * 86400.0, 35)
        volume = d.explain(x)
        # On volume alone the hour is nearer its bar; its score is under the gate (2).
        assert volume.window_bins == 50 and volume.score < 2
        piled = d.explain(x, evidence=6.0, gate=2.0)
        # The ten minutes are unusual enough for the evidence to count, and with it they
        # reach their bar: that is the window the bar is asked of.
        assert piled.bar is not None
        assert piled.window_bins == 10 and 2 <= piled.score < piled.bar <= piled.score + 6.0

    def test_without_evidence_the_choice_is_volume_alone(self) -> None:
        d = self._bursty()
        x = BinObservation(12 * 86400.0, 35)
        assert d.explain(x) == d.explain(x, evidence=0.0, gate=2.0)
        assert d.explain(x, evidence=6.0) == d.explain(x)  # no gate: evidence never counts


class TestSustainedRise:
    """Half an hour, all of it but five minutes, well above the person's usual and their last
    six hours: the test for rises that hold, whose bar is a multiple of the usual."""

    def _run(self, d: RateDetector, start: float, counts: list[int]) -> list:
        out = []
        for i, c in enumerate(counts):
            x = BinObservation(start + i * 60.0, c)
            out.append(d.explain(x))
            d.learn_one(x)
        return out

    def test_a_held_rise_reaches_its_bar_and_says_so(self) -> None:
        d = _trained(rate=1.0)
        rng = np.random.default_rng(5)
        # Ten times the usual for half an hour: the sustained test gives the explanation.
        counts = [int(v) for v in rng.poisson(10.0, 30)]
        self._run(d, 2 * 86400.0, counts[:-1])
        last = d.explain(BinObservation(2 * 86400.0 + 29 * 60, counts[-1]))
        assert last.score >= last.bar
        # The steady person's window tests see it too; the sustained test's own score and bar:
        _, _, _, scores, sustained_bar = d._explained  # type: ignore[misc]
        assert scores[-1] >= sustained_bar >= d.floor()
        # A bursty person's windows would not: the explanation then is the held half hour.
        d.crossings = [[10_000] * len(c) for c in d.crossings]
        held = d.explain(BinObservation(2 * 86400.0 + 29 * 60 + 0.5, counts[-1]))
        assert held.sustained and held.window_bins == 30 and held.score >= held.bar

    def test_one_spike_is_not_a_held_rise(self) -> None:
        d = _trained(rate=1.0)
        rates = self._run(d, 2 * 86400.0, [200] + [1] * 29)
        assert not any(r.sustained and r.score >= r.bar for r in rates)

    def test_its_bar_is_the_multiple_not_the_persons_bursts(self) -> None:
        """A person attacked again and again does not learn that attacks are ordinary."""
        d = _trained(rate=1.0)
        t = 2 * 86400.0
        for _ in range(6):  # six held rises to ten times, a day apart
            self._run(d, t, [10] * 40 + [1] * (1440 - 40))
            t += 86400.0
        rates = self._run(d, t, [10] * 30)
        assert rates[-1].sustained and rates[-1].score >= rates[-1].bar
        loose = RateDetector(bin_seconds=60, window_bins=10, warmup_bins=720,
                             pileon_multiple=20.0)
        rng = np.random.default_rng(0)
        for i in range(2 * 1440):
            loose.learn_one(BinObservation(i * 60.0, int(rng.poisson(1.0))))
        held = self._run(loose, 2 * 86400.0, [10] * 30)[-1]
        assert not (held.sustained and held.score >= held.bar)  # 10x is below a 20x bar

    def test_the_recent_level_survives_a_restart(self) -> None:
        d = _trained(rate=1.0)
        restored = RateDetector.from_state(d.to_state(), bin_seconds=60, window_bins=10,
                                           warmup_bins=720)
        assert (restored.local, restored.local_n, restored.moments) == (
            d.local, d.local_n, d.moments)
        old = {k: v for k, v in d.to_state().items() if k not in ("local", "local_n",
                                                                   "local_frozen")}
        old["moments"], old["moments_n"] = d.moments[:2], d.moments_n[:2]  # before the test
        before = RateDetector.from_state(old, bin_seconds=60, window_bins=10, warmup_bins=720)
        assert before.local == -1.0 and len(before.moments) == 3
