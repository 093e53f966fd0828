"""pileon's detectors run the contract checks that ship with the library (detectors/checks.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pileon.streams.detection.detectors import (
    BUILTIN,
    BinObservation,
    CoordinationDetector,
    FocusDetector,
    FocusSummary,
    RateDetector,
    WindowSummary,
)
from pileon.streams.detection.detectors.checks import (
    CHECKS,
    DetectorSpec,
    check_score_one_does_not_change_state,
    check_state_size_is_bounded,
)


def _bins(seed: int, n: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [BinObservation(i * 60.0, int(rng.poisson(3))) for i in range(n)]


def _windows(seed: int, n: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mentions = int(rng.poisson(30))
        out.append(WindowSummary(i * 60.0, mentions, int(rng.binomial(mentions, 0.02)),
                                 int(rng.binomial(mentions, 0.1)),
                                 min(mentions, int(rng.poisson(2)))))
    return out


def _focus(seed: int, n: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mentions = int(rng.poisson(30))
        out.append(FocusSummary(i * 60.0, mentions, int(rng.binomial(mentions, 0.15))))
    return out


SPECS: dict[str, DetectorSpec[Any]] = {
    "rate": DetectorSpec(lambda: RateDetector(bin_seconds=60, window_bins=10, warmup_bins=60),
                         _bins, BinObservation(300 * 60.0, 50),
                         ["bin_seconds", "window_bins", "dispersion", "warmup_bins"]),
    "coordination": DetectorSpec(lambda: CoordinationDetector(warmup_windows=30), _windows,
                                 WindowSummary(300 * 60.0, 80, 60, 70, 40), ["warmup_windows"]),
    "focus": DetectorSpec(lambda: FocusDetector(warmup_windows=30), _focus,
                          FocusSummary(300 * 60.0, 80, 70), ["warmup_windows"]),
}


def test_every_builtin_detector_has_a_spec() -> None:
    assert {type(spec.make()) for spec in SPECS.values()} == set(BUILTIN.values())


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(SPECS))
def test_detector_contract(name: str, check: Callable[[DetectorSpec[Any]], None]) -> None:
    check(SPECS[name])


class TestTheChecksCatchBreakage:
    """The checks themselves must fail on a detector that breaks the contract."""

    def test_a_detector_that_learns_while_scoring_fails(self) -> None:
        class Leaky(FocusDetector):
            """Learns in score_one."""

            def score_one(self, x: FocusSummary) -> float:
                self.learn_one(x)
                return super().score_one(x)

        spec = DetectorSpec(lambda: Leaky(warmup_windows=30), _focus,
                            FocusSummary(300 * 60.0, 80, 70), ["warmup_windows"])
        with pytest.raises(AssertionError, match="changed the state"):
            check_score_one_does_not_change_state(spec)

    def test_a_detector_with_growing_state_fails(self) -> None:
        class Hoarder(FocusDetector):
            """Keeps every observation."""

            def learn_one(self, x: FocusSummary) -> None:
                super().learn_one(x)
                self.kept = [*getattr(self, "kept", []), x.mentions]

            def to_state(self) -> dict[str, Any]:
                return {**super().to_state(), "kept": getattr(self, "kept", [])}

        spec = DetectorSpec(lambda: Hoarder(warmup_windows=30), _focus,
                            FocusSummary(300 * 60.0, 80, 70), ["warmup_windows"])
        with pytest.raises(AssertionError, match="state"):
            check_state_size_is_bounded(spec)
