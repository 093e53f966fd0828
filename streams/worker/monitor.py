"""The worker's ``/metrics`` page: pileon's metrics and Faust's own, from one registry."""

from __future__ import annotations

import functools
from typing import Any

import faust
from aiohttp.web import Response
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def setup_metrics(app: faust.App) -> None:
    """Serve ``/metrics``: pileon's metrics and Faust's own (rebalances, sends, commits) under
    ``pileon_faust_``. Faust's ``events_runtime_ms`` histogram is left out: it duplicates
    ``pileon_processing_seconds`` and breaks the base-unit naming rule (promtool check metrics).
    """
    app.monitor = PrometheusMonitor(metrics=_faust_metrics())

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        return Response(body=generate_latest(REGISTRY),
                        headers={"Content-Type": CONTENT_TYPE_LATEST}, status=200)


@functools.cache
def _faust_metrics() -> FaustMetrics:
    """Faust's collectors, registered once per process (so build_app can run again)."""
    faust_metrics = FaustMetrics.create(REGISTRY, "pileon_faust")
    REGISTRY.unregister(faust_metrics.events_runtime_latency)
    return faust_metrics
