"""The contract every detector keeps (after river's check_estimator)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from pileon.streams.detection.detectors import (
    BinObservation,
    CoordinationDetector,
    FocusDetector,
    FocusSummary,
    RateDetector,
    WindowSummary,
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


# name: (factory, stream of its observations, a large observation, constructor params)
DETECTORS: dict[str, tuple[Callable[[], Any], Callable[[int, int], list[Any]], Any, list[str]]] = {
    "rate": (lambda: RateDetector(bin_seconds=60, window_bins=10, warmup_bins=60), _bins,
             BinObservation(300 * 60.0, 50),
             ["bin_seconds", "window_bins", "dispersion", "warmup_bins"]),
    "coordination": (lambda: CoordinationDetector(warmup_windows=30), _windows,
                     WindowSummary(300 * 60.0, 80, 60, 70, 40), ["warmup_windows"]),
    "focus": (lambda: FocusDetector(warmup_windows=30), _focus, FocusSummary(300 * 60.0, 80, 70),
              ["warmup_windows"]),
}


class Make:
    def __init__(self, name: str) -> None:
        self.factory, self.stream_of, self.big, self.params = DETECTORS[name]

    def __call__(self) -> Any:
        return self.factory()

    def stream(self, seed: int, n: int = 2000) -> list[Any]:
        return self.stream_of(seed, n)


@pytest.fixture(params=sorted(DETECTORS))
def make(request: pytest.FixtureRequest) -> Make:
    return Make(request.param)


class TestDetectorContract:
    def test_has_a_docstring(self, make: Make) -> None:
        assert type(make()).__doc__

    def test_is_deterministic(self, make: Make) -> None:
        scores = []
        for _ in range(2):
            d = make()
            run = []
            for x in make.stream(1):
                run.append(d.score_one(x))
                d.learn_one(x)
            scores.append(run)
        assert scores[0] == scores[1]

    def test_scores_are_non_negative_and_finite(self, make: Make) -> None:
        d = make()
        for x in make.stream(2):
            s = d.score_one(x)
            assert 0 <= s < float("inf")
            d.learn_one(x)

    def test_score_one_does_not_change_state(self, make: Make) -> None:
        d = make()
        for x in make.stream(3, 300):
            d.learn_one(x)
        before = orjson.dumps(d.to_state())
        d.score_one(make.big)
        assert orjson.dumps(d.to_state()) == before

    def test_input_is_not_mutated(self, make: Make) -> None:
        d = make()
        x = make.stream(9, 1)[0]
        snapshot = copy.deepcopy(x)
        d.score_one(x)
        d.learn_one(x)
        assert x == snapshot

    def test_state_round_trips_through_json(self, make: Make) -> None:
        d = make()
        stream = make.stream(4, 600)
        for x in stream[:300]:
            d.learn_one(x)
        state = orjson.loads(orjson.dumps(d.to_state()))
        restored = type(d).from_state(state, **{k: getattr(d, k) for k in make.params})
        for x in stream[300:]:
            assert restored.score_one(x) == d.score_one(x)
            restored.learn_one(x)
            d.learn_one(x)

    def test_is_picklable(self, make: Make) -> None:
        d = make()
        d.learn_one(make.stream(8, 1)[0])
        assert pickle.loads(pickle.dumps(d)).to_state() == d.to_state()  # noqa: S301

    def test_state_size_is_bounded(self, make: Make) -> None:
        d = make()
        sizes = []
        for i, x in enumerate(make.stream(5, 5000)):
            d.learn_one(x)
            if i in (2000, 4999):
                sizes.append(len(orjson.dumps(d.to_state())))
        assert sizes[1] <= sizes[0] * 1.5  # counters gain digits, nothing more
        assert sizes[1] < 4096

