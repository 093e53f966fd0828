"""The contract every detector keeps (after river's check_estimator)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from streams.detectors import BinObservation, RateDetector

FACTORIES: dict[str, Callable[[], Any]] = {
    "rate": lambda: RateDetector(bin_seconds=60, window_bins=10, warmup_bins=60),
}


def _stream(seed: int, n: int = 2000) -> list[BinObservation]:
    rng = np.random.default_rng(seed)
    return [BinObservation(i * 60.0, int(rng.poisson(3))) for i in range(n)]


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Callable[[], Any]:
    return FACTORIES[request.param]


class TestDetectorContract:
    def test_has_a_docstring(self, make: Callable[[], Any]) -> None:
        assert type(make()).__doc__

    def test_is_deterministic(self, make: Callable[[], Any]) -> None:
        scores = []
        for _ in range(2):
            d = make()
            run = []
            for x in _stream(1):
                run.append(d.score_one(x))
                d.learn_one(x)
            scores.append(run)
        assert scores[0] == scores[1]

    def test_scores_are_non_negative_and_finite(self, make: Callable[[], Any]) -> None:
        d = make()
        for x in _stream(2):
            s = d.score_one(x)
            assert 0 <= s < float("inf")
            d.learn_one(x)

    def test_score_one_does_not_change_state(self, make: Callable[[], Any]) -> None:
        d = make()
        for x in _stream(3, 300):
            d.learn_one(x)
        before = orjson.dumps(d.to_state())
        d.score_one(BinObservation(300 * 60.0, 50))
        assert orjson.dumps(d.to_state()) == before

    def test_input_is_not_mutated(self, make: Callable[[], Any]) -> None:
        d = make()
        x = BinObservation(0.0, 4)
        snapshot = copy.deepcopy(x)
        d.score_one(x)
        d.learn_one(x)
        assert x == snapshot

    def test_state_round_trips_through_json(self, make: Callable[[], Any]) -> None:
        d = make()
        stream = _stream(4, 600)
        for x in stream[:300]:
            d.learn_one(x)
        state = orjson.loads(orjson.dumps(d.to_state()))
        restored = type(d).from_state(state, **_params(d))
        for x in stream[300:]:
            assert restored.score_one(x) == d.score_one(x)
            restored.learn_one(x)
            d.learn_one(x)

    def test_is_picklable(self, make: Callable[[], Any]) -> None:
        d = make()
        d.learn_one(BinObservation(0.0, 1))
        assert pickle.loads(pickle.dumps(d)).to_state() == d.to_state()  # noqa: S301

    def test_state_size_is_bounded(self, make: Callable[[], Any]) -> None:
        d = make()
        sizes = []
        for i, x in enumerate(_stream(5, 5000)):
            d.learn_one(x)
            if i in (2000, 4999):
                sizes.append(len(orjson.dumps(d.to_state())))
        assert sizes[1] <= sizes[0] * 1.5  # counters gain digits, nothing more
        assert sizes[1] < 4096


def _params(d: Any) -> dict[str, Any]:
    return {k: getattr(d, k) for k in ("bin_seconds", "window_bins", "dispersion", "warmup_bins")}
