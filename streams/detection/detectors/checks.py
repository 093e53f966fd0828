"""The detector contract as checks anyone adding a detector runs (after river's ``checks``).

Describe the detector with a :class:`DetectorSpec` (how to make one, a stream of ordinary
observations, one very anomalous observation, the constructor parameters that ``from_state``
needs again) and call :func:`check_detector`, or one ``check_*`` at a time from a
parametrised test. Each check raises ``AssertionError`` with what broke. pileon's own detectors
run every check in ``tests/test_streams/test_detection/test_detectors/test_contract.py``.

What they hold a detector to: it fits :class:`~.base.Detector`, has a docstring, is
deterministic, scores are finite and non-negative, scoring changes no state and mutates no
input, the state round-trips through JSON (and pickle) to a detector that scores the same, and
the state stays small however long the detector runs (it lives in one Faust table record).
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from pileon.streams.detection.detectors.base import Detector

X = TypeVar("X")

MAX_STATE_BYTES = 4096


@dataclass(frozen=True)
class DetectorSpec(Generic[X]):
    """What the checks need to know of one detector."""

    make: Callable[[], Detector[X, Any]]
    stream: Callable[[int, int], Sequence[X]]  # (seed, n) -> n ordinary observations
    anomalous: X  # an observation far outside what ``stream`` produces
    params: Sequence[str] = field(default_factory=tuple)  # attributes from_state needs again


def check_fits_the_protocol(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    _require(isinstance(detector, Detector), f"{type(detector).__name__} lacks a Detector method")


def check_has_a_docstring(spec: DetectorSpec[X]) -> None:
    _require(bool(type(spec.make()).__doc__), f"{type(spec.make()).__name__} has no docstring")


def check_is_deterministic(spec: DetectorSpec[X]) -> None:
    runs = [list(_scores(spec.make(), spec.stream(1, 2000))) for _ in range(2)]
    _require(runs[0] == runs[1], "two runs over the same stream scored differently")


def check_scores_are_finite_and_non_negative(spec: DetectorSpec[X]) -> None:
    for i, score in enumerate(_scores(spec.make(), spec.stream(2, 2000))):
        _require(0 <= score < math.inf, f"observation {i} scored {score}")


def check_score_one_does_not_change_state(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    for x in spec.stream(3, 300):
        detector.learn_one(x)
    before = orjson.dumps(detector.to_state())
    detector.score_one(spec.anomalous)
    detector.explain(spec.anomalous)
    _require(orjson.dumps(detector.to_state()) == before, "scoring changed the state")


def check_explain_agrees_with_score_one(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    for x in spec.stream(6, 500):
        _require(detector.explain(x).score == detector.score_one(x),
                 "explain disagrees with score_one")
        detector.learn_one(x)


def check_input_is_not_mutated(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    x = spec.stream(9, 1)[0]
    snapshot = copy.deepcopy(x)
    detector.score_one(x)
    detector.learn_one(x)
    _require(x == snapshot, "the detector mutated its input")


def check_state_round_trips_through_json(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    stream = spec.stream(4, 600)
    for x in stream[:300]:
        detector.learn_one(x)
    state = orjson.loads(orjson.dumps(detector.to_state()))
    params = {name: getattr(detector, name) for name in spec.params}
    restored = type(detector).from_state(state, **params)
    for i, x in enumerate(stream[300:]):
        _require(restored.score_one(x) == detector.score_one(x), f"restored differs at {i}")
        restored.learn_one(x)
        detector.learn_one(x)


def check_is_picklable(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    detector.learn_one(spec.stream(8, 1)[0])
    restored = pickle.loads(pickle.dumps(detector))  # noqa: S301 - made just above
    _require(restored.to_state() == detector.to_state(), "unpickled state differs")


def check_state_size_is_bounded(spec: DetectorSpec[X]) -> None:
    detector = spec.make()
    sizes = []
    for i, x in enumerate(spec.stream(5, 5000)):
        detector.learn_one(x)
        if i in (2000, 4999):
            sizes.append(len(orjson.dumps(detector.to_state())))
    _require(sizes[1] <= sizes[0] * 1.5, f"state grew from {sizes[0]} to {sizes[1]} bytes")
    _require(sizes[1] < MAX_STATE_BYTES, f"state is {sizes[1]} bytes (limit {MAX_STATE_BYTES})")


CHECKS: tuple[Callable[[DetectorSpec[Any]], None], ...] = (
    check_fits_the_protocol,
    check_has_a_docstring,
    check_is_deterministic,
    check_scores_are_finite_and_non_negative,
    check_score_one_does_not_change_state,
    check_explain_agrees_with_score_one,
    check_input_is_not_mutated,
    check_state_round_trips_through_json,
    check_is_picklable,
    check_state_size_is_bounded,
)


def check_detector(spec: DetectorSpec[X]) -> None:
    """Run every check of the contract on one detector."""
    for check in CHECKS:
        check(spec)


def _require(condition: bool, message: str) -> None:
    """An ``AssertionError`` that ``python -O`` does not strip (these checks ship as code)."""
    if not condition:
        raise AssertionError(message)


def _scores(detector: Detector[X, Any], stream: Sequence[X]) -> Iterator[float]:
    for x in stream:
        yield detector.score_one(x)
        detector.learn_one(x)
