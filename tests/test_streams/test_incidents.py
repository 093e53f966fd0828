from __future__ import annotations

from pileon.settings import DetectionSettings
from streams.incidents import IncidentState, Severity, Transition, decide

CFG = DetectionSettings(open_score=8, escalate_score=16, close_score=3, quiet_bins=5,
                        min_excess=25)


def _run(scores: list[float], excess: float = 100.0) -> tuple[IncidentState, list[str]]:
    state = IncidentState()
    seen = []
    for i, s in enumerate(scores):
        d = decide(state, "amara", 1_800_000_000.0 + 60 * i, s, excess, CFG)
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
        assert decide(state, "amara", 0.0, 9, 100, CFG) is None
        opened = decide(state, "amara", 60.0, 9, 100, CFG)
        escalated = decide(state, "amara", 120.0, 20, 100, CFG)
        assert opened is not None and escalated is not None
        assert opened.idempotency_key != escalated.idempotency_key
        assert escalated.transition is Transition.ESCALATED

    def test_state_round_trips(self) -> None:
        state, _ = _run([9, 9, 20, 20])
        restored = IncidentState.from_state(state.to_state())
        assert restored == state
        assert restored.severity is Severity.CRITICAL
