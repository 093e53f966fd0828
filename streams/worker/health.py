"""Is the worker making progress? Lag export, the stall watchdog and ``/healthz``.

One read of the group's lag per ``worker.lag_interval_seconds`` serves both: the group leader
exports it for the whole group (replicas would repeat the same series), and every worker checks
its own partitions with :class:`~pileon.streams.worker.watchdog.StallWatch`. A worker whose
partitions stay stalled for ``worker.stall_exit_seconds`` stops so its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from pileon.core.settings import WorkerSettings
from pileon.kafka.connection import ConnectionConfig
from pileon.streams.worker import metrics
from pileon.streams.worker.lag_metrics import LagExporter
from pileon.streams.worker.watchdog import StallWatch

log = logging.getLogger(__name__)


class WorkerStalled(RuntimeError):
    """Owned partitions made no progress for worker.stall_exit_seconds: restart the worker."""


def watch_progress(
    app: faust.App, worker: WorkerSettings, conn: ConnectionConfig, sources: dict[str, int],
    persons: int,
) -> None:
    """Install the lag/stall timer, the lag reader's shutdown and ``/healthz`` on ``app``."""
    lag = LagExporter(conn, worker.app_id, sources)
    watch = StallWatch(worker.stall_seconds)
    stalled: dict[tuple[str, int], float] = {}
    diagnosed: list[bool] = []  # once per process: what Faust and aiokafka think of the tps

    @app.timer(worker.lag_interval_seconds)
    async def _lag_and_progress() -> None:
        lags = await asyncio.get_running_loop().run_in_executor(None, lag.read)
        if lags is not None and app.is_leader():
            lag.export(lags)
        if app.rebalancing or app.in_recovery:
            watch.reset()
            stalled.clear()
            return
        if lags is None:
            return
        owned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
        found = watch.observe(time.monotonic(), owned, lags)
        stalled.clear()
        stalled.update(found)
        metrics.STALLED_PARTITIONS.set(len(found))
        if not found:
            return
        worst = max(found.values())
        log.error("stalled: %s have messages waiting and no progress for %.0fs",
                  ", ".join(f"{t}[{p}]" for t, p in sorted(found)), worst)
        if not diagnosed:
            diagnosed.append(True)
            log.warning("stall diagnostics (issue 4): %s", _consumer_state(app, found))
        if worker.stall_exit_seconds and worst >= worker.stall_exit_seconds:
            log.critical("stopping the worker so its supervisor restarts it (stalled %.0fs)",
                         worst)
            await app.crash(WorkerStalled(f"partitions {sorted(found)} stalled"))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close_lag(sender: Any, **_: Any) -> None:
        lag.close()

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        if stalled:
            return web.json({"status": "stalled", "partitions": [
                {"topic": t, "partition": p, "seconds": round(s)}
                for (t, p), s in sorted(stalled.items())]}, status=503)
        return web.json({"status": "ok", "persons": persons})


def _consumer_state(app: faust.App, stalled: dict[tuple[str, int], float]) -> str:
    """Faust's and aiokafka's view of the stalled partitions, for a faust-streaming report.
    Reads private attributes, so every lookup is guarded; never raises."""
    consumer: Any = app.consumer
    wanted = set(stalled)

    def mine(tps: Any) -> list[str]:
        return sorted(f"{tp.topic}[{tp.partition}]" for tp in tps or ()
                      if (tp.topic, tp.partition) in wanted)

    parts = []
    for label, attr in (("faust_paused", "_paused_partitions"),
                        ("faust_active", "_active_partitions")):
        try:
            parts.append(f"{label}={mine(getattr(consumer, attr))}")
        except Exception as exc:  # diagnostics must never crash the worker
            parts.append(f"{label}=? ({type(exc).__name__})")
    try:
        inner = consumer._thread._consumer
        parts.append(f"aiokafka_paused={mine(inner.paused())}")
        parts.append(f"aiokafka_assigned={mine(inner.assignment())}")
        parts.append("aiokafka_positions=" + str({
            f"{tp.topic}[{tp.partition}]": inner._subscription.subscription.assignment
            .state_value(tp).position for tp in inner.assignment()
            if (tp.topic, tp.partition) in wanted}))
    except Exception as exc:  # (private attributes of a pinned version)
        parts.append(f"aiokafka=? ({type(exc).__name__})")
    try:
        parts.append(f"flow_control_active={app.flow_control.is_active()}")
    except Exception as exc:  # diagnostics must never crash the worker
        parts.append(f"flow_control=? ({type(exc).__name__})")
    return " ".join(parts)
