"""The worker's ``/metrics`` page: pileon's metrics and Faust's own, from one registry.

Faust's ``PrometheusMonitor`` updates labelled series on every message, stream event, table
read and write and produce, and sets a gauge per record fetched (``track_tp_end_offset``);
``bench/throughput.py`` puts that at tens of microseconds a mention. pileon measures
its own processing, lag and end-to-end time per stage (:mod:`.metrics`, :mod:`.lag_metrics`),
so :class:`SlimMonitor` keeps only Faust's series about the group and the commits:
rebalances (the overview dashboard's panel), assignment latency, commit latency, committed
and end offsets (set when ``/metrics`` is read, from what Faust tracks anyway), producer
errors. The per-event series are not registered at all, so nothing shows a flat line.
"""

from __future__ import annotations

import functools
from time import monotonic
from typing import Any

import faust
from aiohttp.web import Response
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

# Faust's series that move per message, event, table operation or produce: not kept.
PER_EVENT_SERIES = (
    "messages_received", "active_messages", "messages_received_per_topics",
    "messages_received_per_topics_partition", "events_runtime_latency", "total_events",
    "total_active_events", "total_events_per_stream", "table_operations",
    "topic_messages_sent", "total_sent_messages", "producer_send_latency",
)


class SlimMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor without the per-event bookkeeping (see the module)."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        # Faust's consumer reads this to warn about a stream that stopped processing.
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_table_del(self, table: Any, key: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> float:
        return self.time()  # what on_send_error measures its latency from

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass

    def on_tp_commit(self, tp_offsets: Any) -> None:
        self.tp_committed_offsets.update(tp_offsets)

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        self.tp_end_offsets[tp] = offset  # called per record fetched: a dict write only

    def publish_offsets(self) -> None:
        """Sets the offset gauges from what Faust tracked since the last scrape."""
        for gauge, offsets in ((self._metrics.topic_partition_offset_commited,
                                self.tp_committed_offsets),
                               (self._metrics.topic_partition_end_offset,
                                self.tp_end_offsets)):
            for tp, offset in list(offsets.items()):
                gauge.labels(topic=tp.topic, partition=tp.partition).set(offset)


def setup_metrics(app: faust.App, full: bool = False) -> None:
    """Serve ``/metrics``: pileon's metrics and Faust's group and commit series under
    ``pileon_faust_`` (``full``: Faust's per-event series too, ``worker.faust_metrics``)."""
    metrics = _faust_metrics(full)
    monitor = PrometheusMonitor(metrics=metrics) if full else SlimMonitor(metrics=metrics)
    app.monitor = monitor

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        if isinstance(monitor, SlimMonitor):
            monitor.publish_offsets()
        return Response(body=generate_latest(REGISTRY),
                        headers={"Content-Type": CONTENT_TYPE_LATEST}, status=200)


@functools.cache
def _faust_metrics(full: bool) -> FaustMetrics:
    """Faust's collectors, registered once per process (so build_app can run again), less
    the per-event ones unless ``full`` (``events_runtime_ms`` always: it duplicates
    ``pileon_processing_seconds`` and breaks the base-unit naming rule of promtool)."""
    faust_metrics = FaustMetrics.create(REGISTRY, "pileon_faust")
    for name in PER_EVENT_SERIES if not full else ("events_runtime_latency",):
        REGISTRY.unregister(getattr(faust_metrics, name))
    return faust_metrics
