from __future__ import annotations

import math

from pileon.core.settings import DetectionSettings
from pileon.streams.detection.detectors import RateExplanation
from pileon.streams.detection.incidents import (
    Decision,
    IncidentState,
    Severity,
    Transition,
    decide,
)

CFG = DetectionSettings(open_score=8, escalate_score=16, close_score=3, quiet_bins=5,
                        min_excess=25)


def _rate(score: float, excess: float = 100.0, latest: int = 30) -> RateExplanation:
    """A window ``excess`` mentions above its baseline of 100, whose newest bin holds
    ``latest`` mentions where 10 were expected (30 is improbable on its own: p ~ 1e-6)."""
    return RateExplanation(100 + round(excess), 100.0, score, latest=latest, latest_expected=10.0,
                           size=math.inf)


def _run(
    scores: list[float], excess: float = 100.0, latest: list[int] | None = None,
) -> tuple[IncidentState, list[str]]:
    state = IncidentState()
    seen = []
    for i, s in enumerate(scores):
        rate = _rate(s, excess, latest[i] if latest else 30)
        d = decide(state, "amara", 1_800_000_000.0 + 60 * i, s, rate, CFG)
        if d is not None:
            seen.append(f"{d.transition}:{d.severity}")
    return state, seen


class TestDecide:
    def test_opens_at_the_open_score(self) -> None:
        _, seen = _run([1, 2, 9, 9])
        assert seen == ["opened:warning"]

    def test_a_one_bin_spike_does_not_open(self) -> None:
        _, seen = _run([1, 30, 1, 1, 30, 2])
        assert seen == []

    def test_a_spike_that_is_over_does_not_open(self) -> None:
        # Windows overlap: a spike keeps every window holding it improbable, but the bins after
        # it are ordinary (10 where 10 were expected), so nobody is paged for a spike that
        # ended.
        _, seen = _run([1, 12, 12, 12, 12, 1], latest=[10, 120, 10, 10, 10, 10])
        assert seen == []

    def test_an_opening_carries_what_confirmed_it(self) -> None:
        state = IncidentState()
        for i, latest in enumerate([40, 30]):
            d = decide(state, "amara", 60.0 * (i + 1), 9, _rate(9, latest=latest), CFG)
        assert d is not None and d.confirmation is not None
        assert d.confirmation.alarm_at == 60.0
        assert (d.confirmation.mentions, d.confirmation.expected) == (30, 10.0)
        assert d.confirmation.score >= CFG.close_score and not d.confirmation.critical
        assert state.alarm_at is None and state.fresh_count == 0  # cleared once open

    def test_a_spike_at_the_critical_bar_needs_no_fresh_bins(self) -> None:
        _, seen = _run([1, 30, 30, 1], latest=[10, 300, 10, 10])
        assert seen == ["opened:critical"]

    def test_fresh_evidence_accumulates_over_the_bins_since_the_alarm(self) -> None:
        # 16 where 10 were expected is not improbable in one bin (p = 0.05) but four such bins
        # together are (64 where 40 were expected: p < 1e-3): it opens on the fifth window.
        _, seen = _run([9] * 8, latest=[40] + [16] * 7)
        state, first = _run([9] * 4, latest=[40] + [16] * 3)
        assert first == [] and not state.is_open
        assert seen == ["opened:warning"]
        state, five = _run([9] * 5, latest=[40] + [16] * 4)
        assert five == ["opened:warning"]

    def test_coordination_in_the_window_confirms_without_fresh_volume(self) -> None:
        # A pile-on score of 11 on a rate score of 9: the 2 points of coordination evidence,
        # with fresh bins at 1.5 times their expectation, make the fresh evidence 3.
        state = IncidentState()
        seen = []
        for i in range(3):
            rate = RateExplanation(200, 100.0, 9.0, latest=40 if i == 0 else 15,
                                   latest_expected=10.0, size=math.inf)
            d = decide(state, "amara", 60.0 * i, 11.0, rate, CFG)
            seen.append(d.transition if d else None)
        assert seen == [None, Transition.OPENED, None]

    def test_state_from_an_older_version_loads(self) -> None:
        restored = IncidentState.from_state({"incident_id": None, "severity": None,
                                             "opened_at": 0.0, "peak_score": 0.0,
                                             "quiet_bins": 0, "last_score": 9.0})
        assert restored == IncidentState()

    def test_a_quiet_window_forgets_the_fresh_bins(self) -> None:
        _, seen = _run([9, 9, 9, 1, 9, 9], latest=[40, 16, 16, 10, 40, 16])
        assert seen == []

    def test_small_excess_never_opens(self) -> None:
        _, seen = _run([30, 30, 30], excess=10)
        assert seen == []

    def test_escalates_once(self) -> None:
        _, seen = _run([9, 9, 20, 25, 30])
        assert seen == ["opened:warning", "escalated:critical"]

    def test_evidence_at_the_critical_bar_opens_at_critical(self) -> None:
        _, seen = _run([1, 20, 25, 30, 30])
        assert seen == ["opened:critical"]  # one page, not a warning and an escalation

    def test_severity_follows_the_current_window_once_confirmed(self) -> None:
        # Two windows at the open bar confirm the incident; the second already at the
        # critical bar opens it at critical, not at warning with an escalation a bin later.
        _, seen = _run([1, 9, 20, 25])
        assert seen == ["opened:critical"]

    def test_one_critical_window_escalates_an_open_incident(self) -> None:
        _, seen = _run([9, 9, 9, 20, 5, 5])
        assert seen == ["opened:warning", "escalated:critical"]

    def test_resolves_after_quiet_bins(self) -> None:
        state, seen = _run([9, 9] + [1] * 5)
        assert seen == ["opened:warning", "resolved:warning"]
        assert not state.is_open

    def test_a_pause_does_not_flap(self) -> None:
        _, seen = _run([9, 9, 1, 1, 1, 9, 9, 1, 1, 1, 9, 9])
        assert seen == ["opened:warning"]

    def test_scores_between_close_and_open_keep_it_open(self) -> None:
        state, seen = _run([9, 9] + [5] * 20)
        assert seen == ["opened:warning"]
        assert state.is_open

    def test_same_history_gives_the_same_incident_id(self) -> None:
        a, _ = _run([1, 9, 9])
        b, _ = _run([1, 9, 9])
        assert a.incident_id == b.incident_id == "amara-20270115T0802Z"

    def test_idempotency_keys_differ_per_transition(self) -> None:
        state = IncidentState()
        assert decide(state, "amara", 0.0, 9, _rate(9), CFG) is None
        opened = decide(state, "amara", 60.0, 9, _rate(9), CFG)
        escalated = decide(state, "amara", 120.0, 20, _rate(20), CFG)
        assert opened is not None and escalated is not None
        assert opened.idempotency_key != escalated.idempotency_key
        assert escalated.transition is Transition.ESCALATED

    def test_state_round_trips(self) -> None:
        state, _ = _run([9, 9, 20, 20])
        restored = IncidentState.from_state(state.to_state())
        assert restored == state
        assert restored.severity is Severity.CRITICAL


class TestPersonalBar:
    """The bar comes with the rate explanation (the person's own, from the budget)."""

    def _decide(self, scores: list[float], bar: float, excess: float | None = None
                ) -> list[str]:
        state, seen = IncidentState(), []
        for i, s in enumerate(scores):
            rate = RateExplanation(110, 100.0, s, latest=30, latest_expected=10.0,
                                   size=math.inf, bar=bar, excess=excess)
            d = decide(state, "amara", 60.0 * i, s, rate, CFG)
            if d is not None:
                seen.append(f"{d.transition}:{d.severity}")
        return seen

    def test_a_lower_bar_opens_below_open_score_and_a_higher_one_does_not_at_it(self) -> None:
        assert self._decide([1, 5, 5], bar=4.6, excess=40) == ["opened:warning"]
        assert self._decide([1, 9, 9], bar=12.0, excess=40) == []

    def test_critical_is_as_far_above_the_bar_as_escalate_is_above_open(self) -> None:
        assert self._decide([1, 13, 13], bar=4.6, excess=40) == ["opened:critical"]
        assert self._decide([1, 19, 19], bar=12.0, excess=40) == ["opened:warning"]

    def test_min_excess_counts_the_window_that_holds_the_most(self) -> None:
        # The scoring window holds 10 above baseline, but the hour holds 40: that is 40 extra
        # mentions, for a quiet person as for a busy one.
        assert self._decide([1, 9, 9], bar=8.0, excess=40) == ["opened:warning"]
        assert self._decide([1, 9, 9], bar=8.0, excess=10) == []


class TestCoordinatedFloor:
    """A dozen copies from several accounts is a campaign's signature; a dozen replies is not:
    ``min_excess_coordinated`` applies when the coordination signs alone reach the model bar."""

    def _decisions(self, coordinated: bool, excess: float) -> list[Decision]:
        cfg = DetectionSettings(min_excess=25, min_excess_coordinated=10)
        state, seen = IncidentState(), []
        for i in range(3):
            rate = RateExplanation(15, 3.0, 6.0, latest=3, latest_expected=0.3, size=2.0,
                                   bar=5.0, excess=excess)
            d = decide(state, "amara", 60.0 * i, 9.0, rate, cfg, coordinated)
            if d is not None:
                seen.append(d)
        return seen

    def _decide(self, coordinated: bool, excess: float) -> list[str]:
        return [f"{d.transition}:{d.severity}" for d in self._decisions(coordinated, excess)]

    def test_coordinated_windows_open_at_the_lower_floor(self) -> None:
        assert self._decide(coordinated=True, excess=12.0) == ["opened:warning"]
        assert self._decide(coordinated=False, excess=12.0) == []
        assert self._decide(coordinated=False, excess=25.0) == ["opened:warning"]

    def test_the_lower_floor_still_applies(self) -> None:
        assert self._decide(coordinated=True, excess=9.0) == []

    def test_an_opening_says_what_it_rested_on_and_the_floor_it_needed(self) -> None:
        for coordinated, excess, floor in ((False, 30.0, 25), (True, 12.0, 10)):
            [opened] = self._decisions(coordinated, excess)
            assert opened.confirmation is not None
            assert (opened.confirmation.excess, opened.confirmation.min_excess) == (excess, floor)


class TestSustainedRise:
    """A window from the sustained-rise test is half an hour of evidence already: the bin after
    the alarm need not be improbable on its own."""

    def _decide(self, sustained: bool, excess: float = 40.0) -> list[str]:
        state, seen = IncidentState(), []
        for i in range(3):
            # The newest minutes are ordinary (latest == expected): no fresh evidence.
            rate = RateExplanation(300, 60.0, 9.0, window_bins=30, latest=2,
                                   latest_expected=2.0, size=math.inf, bar=6.0,
                                   excess=excess, sustained=sustained)
            d = decide(state, "amara", 60.0 * i, 9.0, rate, CFG)
            if d is not None:
                seen.append(f"{d.transition}:{d.severity}")
        return seen

    def test_it_opens_on_the_next_bin_without_fresh_evidence(self) -> None:
        assert self._decide(sustained=True) == ["opened:warning"]
        assert self._decide(sustained=False) == []

    def test_min_excess_still_applies(self) -> None:
        assert self._decide(sustained=True, excess=10.0) == []
