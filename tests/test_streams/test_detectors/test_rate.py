from __future__ import annotations

import numpy as np

from streams.detectors import BinObservation, RateDetector


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
