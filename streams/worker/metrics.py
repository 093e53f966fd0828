"""The worker's own Prometheus metrics (offsets, lag, latency). Labels carry the watchlist key
or the topic and partition, never author names or text."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

OFFSET_GAPS = Counter(
    "pileon_offset_gaps_total",
    "Records delivered past offsets never delivered on a source topic; the worker stopped and "
    "restarted rather than skip them (streams/worker/offset_guard.py)", ["topic"],
)
OFFSET_GAP_STOP = Gauge(
    "pileon_offset_gap_stop_timestamp_seconds",
    "When a worker last stopped on an offset gap rather than skip records (set again by the "
    "restarted worker from its data dir, so it is scraped)", ["topic"],
)


class StageHistogram(Collector):
    """A histogram per stage, observed by one thread (the worker's event loop) without a lock.

    ``prometheus_client.Histogram`` takes a lock and walks its buckets on every observation:
    four of them per mention cost about 5% of the worker's CPU (a py-spy profile,
    docs/benchmarks.md). Here an observation is a bisection and two additions; a scrape (on
    the metrics server's thread) copies the counts, so its buckets are always cumulative,
    and its sum may lag by the observation under way. The exposition is
    ``prometheus_client``'s, the same series as a ``Histogram``'s.
    """

    def __init__(self, name: str, documentation: str, stages: Iterable[str],
                 buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = tuple(float(b) for b in buckets)
        self._stages = {stage: _Stage(self.bounds) for stage in stages}
        REGISTRY.register(self)

    def labels(self, stage: str) -> _Stage:
        return self._stages[stage]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["stage"])
        for stage, observed in self._stages.items():
            counts, total = list(observed.counts), observed.sum
            cumulative, running = [], 0
            for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), counts,
                                strict=True):
                running += n
                cumulative.append((bound, running))
            family.add_metric([stage], cumulative, total)
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=["stage"])


class _Stage:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


PROCESSING_SECONDS = StageHistogram(
    "pileon_processing_seconds", "Worker time to process one message, by stage",
    ("ingest", "analyse"),
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
END_TO_END_SECONDS = StageHistogram(
    "pileon_end_to_end_latency_seconds",
    "Wall time from a message's Kafka timestamp to the end of its processing, by stage",
    ("ingest", "analyse"), buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "pileon_consumer_lag_messages",
    "Worker group lag per source partition, as the broker sees it (exported by the leader)",
    ["topic", "partition"],
)
COMMITTED_OFFSET = Gauge(
    "pileon_consumer_committed_offset",
    "Worker group committed offset per source partition; its rate is commit progress",
    ["topic", "partition"],
)
STALLED_PARTITIONS = Gauge(
    "pileon_worker_stalled_partitions",
    "Partitions this worker owns with messages waiting and no progress for worker.stall_seconds",
)
LAG_PROBE_ERRORS = Counter(
    "pileon_lag_probe_errors_total", "Failed reads of the worker group's lag from the broker"
)
