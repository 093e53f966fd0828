from __future__ import annotations

from pileon.streams.detection.detectors import CoordinationDetector, WindowSummary


def _trained(young: int = 0, copies: int = 2, top: int = 2) -> CoordinationDetector:
    d = CoordinationDetector(warmup_windows=60)
    for i in range(600):
        d.learn_one(WindowSummary(i * 60.0, 30, young, copies, top))
    return d


class TestCoordinationDetector:
    def test_silent_during_warm_up(self) -> None:
        d = CoordinationDetector(warmup_windows=60)
        assert d.score_one(WindowSummary(0.0, 80, 80, 80, 80)) == 0.0

    def test_a_small_window_says_as_much_as_it_holds(self) -> None:
        # No minimum count: a quiet person's windows are small. What a few mentions show is
        # the tail test's to say: less than many mentions of the same share, nothing when
        # the shares are usual; an optional floor still silences them.
        d = _trained()
        few = d.explain(WindowSummary(0.0, 5, 5, 0, 1))
        many = d.explain(WindowSummary(0.0, 50, 50, 0, 2))
        assert 5 < few.young < many.young
        assert d.score_one(WindowSummary(0.0, 3, 0, 0, 1)) < 1.0  # three replies, three authors
        floored = CoordinationDetector(warmup_windows=60, min_mentions=10)
        for i in range(600):
            floored.learn_one(WindowSummary(i * 60.0, 30, 0, 2, 2))
        assert floored.score_one(WindowSummary(0.0, 5, 5, 5, 5)) == 0.0

    def test_usual_shares_at_any_volume_score_low(self) -> None:
        d = _trained()
        assert d.score_one(WindowSummary(0.0, 300, 0, 20, 20)) < 1.0  # an organic surge

    def test_young_accounts_copies_and_a_flood_each_score_high(self) -> None:
        d = _trained()
        e = d.explain(WindowSummary(0.0, 60, 45, 2, 3))
        assert e.young > 8 and e.copies == 0 and e.flood == 0
        assert d.explain(WindowSummary(0.0, 60, 0, 50, 3)).copies > 8
        assert d.explain(WindowSummary(0.0, 60, 0, 2, 50)).flood > 8

    def test_a_person_used_to_young_accounts_is_not_surprised_by_them(self) -> None:
        assert _trained(young=12).score_one(WindowSummary(0.0, 60, 25, 2, 3)) < 2.0

    def test_score_is_the_strongest_sign_and_capped(self) -> None:
        e = _trained().explain(WindowSummary(0.0, 500, 500, 500, 500))
        assert e.score == max(e.young, e.copies, e.flood) == 20.0


def _with_waves(every: int, length: int = 40, share: float = 0.5, n: int = 60,
                windows: int = 20_000) -> CoordinationDetector:
    """Trained on windows that hold copies only in waves (a shared headline: ``share`` of
    ``n`` for ``length`` windows every ``every``), the rest none."""
    d = _trained(copies=0)
    for i in range(windows):
        copies = round(share * n) if i % every < length else 0
        d.learn_dispersion(WindowSummary(i * 60.0, n, 0, copies, 2))
    return d


class TestCopiesThatVary:
    def test_a_person_whose_windows_never_hold_copies_keeps_the_binomial(self) -> None:
        d = _with_waves(every=10**9, length=0)
        assert d.copies_rho() == 0.0
        assert d.explain(WindowSummary(0.0, 60, 0, 30, 2)).copies == 20.0

    def test_rho_is_the_method_of_moments_estimate(self) -> None:
        # Shares 0.5 in 1 window of 20 at n = 60, else 0: mean 0.025, mean square 0.0125.
        d = _with_waves(every=20, length=1, windows=20_000)
        mean, square, inv_n = 0.025, 0.0125, 1 / 60
        spread = mean * (1 - mean)
        expected = (square - mean**2 - spread * inv_n) / (spread * (1 - inv_n))
        assert abs(d.copies_rho() - expected) < 1e-6

    def test_shared_headlines_are_learned_so_the_next_wave_is_not_a_brigade(self) -> None:
        d = _with_waves(every=2880)  # a piece every two days
        assert 0.0 < d.copies_rho() < 1.0
        wave = WindowSummary(0.0, 60, 0, 30, 2)
        assert d.explain(wave).copies < 3.0  # was the cap: 20
        # A window nearly all copies is still beyond what the waves showed.
        assert d.explain(WindowSummary(0.0, 60, 0, 60, 2)).copies > \
            d.explain(wave).copies

    def test_warm_up_and_a_state_saved_before_the_dispersion(self) -> None:
        d = CoordinationDetector(warmup_windows=60)
        for i in range(59):
            d.learn_dispersion(WindowSummary(i * 60.0, 60, 0, 30 if i % 2 else 0, 2))
        assert d.copies_rho() == 0.0
        old = {"shares": [0.01, 0.0, 0.05], "learned": 600}
        loaded = CoordinationDetector.from_state(old)
        assert loaded.copies_rho() == 0.0 and loaded.copies_seen == 0
        waves = _with_waves(every=2880)
        again = CoordinationDetector.from_state(waves.to_state())
        assert again.copies_rho() == waves.copies_rho()


class TestShareTail:
    def test_rho_zero_is_the_binomial_and_rho_widens_the_tail(self) -> None:
        import math

        from scipy.stats import betabinom, binom

        from pileon.streams.detection.detectors.base import share_tail_score

        assert share_tail_score(30, 60, 0.05, 100.0) == \
            -binom.logsf(29, 60, 0.05) / math.log(10)
        size = 1 / 0.2 - 1
        exact = -math.log10(betabinom.sf(9, 60, 0.05 * size, 0.95 * size))
        assert abs(share_tail_score(10, 60, 0.05, 100.0, 0.2) - exact) < 1e-6
        scores = [share_tail_score(30, 60, 0.05, 100.0, r) for r in (0.0, 0.01, 0.1, 0.5)]
        assert scores == sorted(scores, reverse=True)
        # Far tails stay finite and ordered, where 1 - cdf would round to 0.
        assert 20 < share_tail_score(2500, 5000, 0.05, 1e4, 0.01) < \
            share_tail_score(2500, 5000, 0.05, 1e4, 0.001)
