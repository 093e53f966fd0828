"""The worker's slim Faust monitor: no per-event bookkeeping, offsets published at scrape."""

from __future__ import annotations

from faust.sensors.prometheus import FaustMetrics
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from pileon.streams.worker.monitor import PER_EVENT_SERIES, SlimMonitor


def _monitor() -> tuple[SlimMonitor, CollectorRegistry]:
    registry = CollectorRegistry()
    return SlimMonitor(metrics=FaustMetrics.create(registry, "t")), registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_offsets_are_tracked_per_record_and_published_when_scraped() -> None:
    monitor, registry = _monitor()
    tp = TP("x.mentions.raw", 2)
    for offset in range(1, 1001):
        monitor.track_tp_end_offset(tp, offset)
    monitor.on_tp_commit({tp: 900})
    labels = {"topic": "x.mentions.raw", "partition": "2"}
    assert _value(registry, "t_topic_partition_end_offset", **labels) is None  # not yet
    monitor.publish_offsets()
    assert _value(registry, "t_topic_partition_end_offset", **labels) == 1000
    assert _value(registry, "t_topic_partition_offset_commited", **labels) == 900


def test_per_event_hooks_record_nothing_but_the_stream_inbound_time() -> None:
    monitor, registry = _monitor()
    tp = TP("x.mentions.raw", 0)
    monitor.on_message_in(tp, 5, object())  # type: ignore[arg-type]
    state = monitor.on_stream_event_in(tp, 5, object(), object())  # type: ignore[arg-type]
    monitor.on_stream_event_out(tp, 5, object(), object(), state)  # type: ignore[arg-type]
    monitor.on_table_set(object(), b"k", b"v")  # type: ignore[arg-type]
    assert tp in monitor.stream_inbound_time  # Faust's stall warning reads it
    assert monitor.events_total == 0 and monitor.messages_received_total == 0
    assert _value(registry, "t_messages_received_total") == 0


def test_the_worker_registry_leaves_the_per_event_series_out() -> None:
    from pileon.streams.worker.monitor import _faust_metrics

    metrics = _faust_metrics(False)
    text = generate_latest().decode()
    assert "pileon_faust_total_rebalances" in text
    assert "pileon_faust_consumer_commit_latency" in text
    for attribute in PER_EVENT_SERIES:
        name = getattr(metrics, attribute)._name
        assert name.startswith("pileon_faust_")
        assert f"\n{name}" not in text and f" {name} " not in text
