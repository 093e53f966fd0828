from __future__ import annotations

from pileon.streams.detection.detectors import CoordinationDetector, WindowSummary


def _trained(young: int = 0, copies: int = 2, top: int = 2) -> CoordinationDetector:
    d = CoordinationDetector(warmup_windows=60)
    for i in range(600):
        d.learn_one(WindowSummary(i * 60.0, 30, young, copies, top))
    return d


class TestCoordinationDetector:
    def test_silent_during_warm_up_and_for_small_windows(self) -> None:
        d = CoordinationDetector(warmup_windows=60)
        assert d.score_one(WindowSummary(0.0, 80, 80, 80, 80)) == 0.0
        assert _trained().score_one(WindowSummary(0.0, 5, 5, 5, 5)) == 0.0

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
