"""The worker's lock-free stage histograms expose what prometheus_client's Histogram would."""

from __future__ import annotations

import random

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest

from pileon.streams.worker.metrics import StageHistogram


def test_the_series_are_those_of_a_prometheus_histogram() -> None:
    bounds = (0.0001, 0.00025, 0.001, 0.5)
    registry = CollectorRegistry()
    theirs = Histogram("t_seconds", "doc", ["stage"], buckets=bounds, registry=registry)
    ours = StageHistogram("pileon_test_stage_seconds", "doc", ("a", "b"), buckets=bounds)
    try:
        rng = random.Random(3)
        for _ in range(2000):  # on the bounds, between them, above the last
            v = rng.choice([*bounds, 0.00003, 0.0003, 0.7]) * rng.choice([1.0, 0.999, 1.001])
            stage = rng.choice("ab")
            theirs.labels(stage).observe(v)
            ours.labels(stage).observe(v)

        def series(text: bytes, name: str) -> list[str]:
            return sorted(line.removeprefix(name) for line in text.decode().splitlines()
                          if line.startswith(name) and "_created" not in line)

        ours_series = series(generate_latest(REGISTRY), "pileon_test_stage_seconds")
        assert len(ours_series) == 2 * (len(bounds) + 3)  # buckets, +Inf, count, sum
        assert ours_series == series(generate_latest(registry), "t_seconds")
    finally:
        REGISTRY.unregister(ours)
