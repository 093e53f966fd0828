"""The Faust app: topics, tables and the two agents of the pipeline.

``mentions.raw`` → **ingest** (validate, normalise, exact de-dup) → ``mentions.clean`` |
``mentions.invalid``; ``mentions.clean`` → **analyse** (near-duplicates, rate detector,
incidents) → ``alerts``. Both topics and all tables are keyed and partitioned by person.

Faust acknowledges an event even when the agent raises (faust-streaming #315, #527), so each
agent catches errors per message and dead-letters the message with the error class: nothing is
skipped silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import faust
from aiohttp.web import Response
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from pileon.core.keys import neardup_key
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.connection import Connection, as_connection
from pileon.kafka.topics import TopicNames
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import Mention, Reason
from pileon.streams.detection import metrics as detection_metrics
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Clean, DeadLetter, Ingestor
from pileon.streams.detection.neardup import Signer, kernels
from pileon.streams.worker import metrics
from pileon.streams.worker.lag_metrics import LagExporter
from pileon.streams.worker.offset_guard import guard_offsets
from pileon.streams.worker.watchdog import StallWatch

log = logging.getLogger(__name__)

class WorkerStalled(RuntimeError):
    """Owned partitions made no progress for worker.stall_exit_seconds: restart the worker."""


_RAW = "raw"  # keys and values are bytes: pileon parses and validates them itself


def build_app(settings: Settings, watchlist: Watchlist, connection: Connection) -> faust.App:
    kafka, worker = settings.kafka, settings.worker
    conn = as_connection(connection)
    (worker.data_dir / "faust").mkdir(parents=True, exist_ok=True)  # also with a key_file set
    app = faust.App(
        worker.app_id,
        broker=conn.faust_broker(),
        broker_credentials=conn.faust_credentials(),
        store="memory://",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        web_bind=worker.web_bind,
        web_port=worker.web_port,
        web_host=worker.web_bind,
        datadir=str(worker.data_dir / "faust"),
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=worker.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_seconds / 3),
        producer_acks=-1,
        table_cleanup_interval=3600.0,
        # A replica taking over a partition it kept as a standby can hang in recovery
        # ("No event received for active tp", found by the two-workers fault test); without
        # standbys it reads the bounded changelog from the start, as a restarted worker does.
        table_standby_replicas=worker.standby_replicas,
    )
    names = TopicNames.from_settings(kafka)
    # Before anything creates the consumer: never skip records on the source topics.
    guard_offsets(app, [names.raw, names.clean], worker.data_dir / "offset-gap.json")
    partitions = kafka.partitions
    raw = _topic(app, names.raw, partitions)
    clean = _topic(app, names.clean, partitions)
    invalid = _topic(app, names.invalid, partitions)
    alerts = _topic(app, names.alerts, partitions)

    def table(name: str, help_: str) -> Any:
        # Faust derives a table's changelog codec from key_type/value_type only ("raw" for
        # bytes): a schema= argument is used for writing but ignored by recovery, which then
        # decodes as JSON and silently drops every record (found by the kill -9 fault test).
        return app.Table(name, partitions=partitions, help=help_, key_type=bytes,
                         value_type=bytes)

    seen = table("seen", "mention ids seen recently, per person (exact de-duplication)")
    window = table("window", "compact per-mention records in the near-duplicate window")
    state = table("person-state", "per-person detector baseline and open incident")

    ingestor = Ingestor(frozenset(watchlist.keys), settings.ingest, seen)
    signer = Signer(
        neardup_key(settings), settings.neardup.num_perm, settings.neardup.shingle_words
    )
    if not kernels.COMPILED:
        log.warning("near-duplicate kernels are not compiled (package built without a C "
                    "compiler): the numpy reference runs instead, about half as fast")
    analyser = PersonAnalyser(
        watchlist, settings.detection, settings.neardup, signer, window, state
    )

    async def send_dead_letter(event: Any, error: BaseException) -> None:
        detection_metrics.DEAD_LETTERS.labels(Reason.PROCESSING_ERROR).inc()
        log.error(
            "processing failed for %s[%d]@%d: %s; dead-lettered",
            event.message.topic, event.message.partition, event.message.offset,
            type(error).__name__, exc_info=log.isEnabledFor(logging.DEBUG),
        )
        letter = dead_letter(
            event.key, event.value, Reason.PROCESSING_ERROR, str(error)[:200], _origin(event),
            error_class=f"{type(error).__module__}.{type(error).__qualname__}",
        )
        await invalid.send(key=event.key, value=letter)

    @app.agent(raw, name="ingest")
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                outcome = ingestor.process(event.key, event.value, _origin(event))
                if isinstance(outcome, Clean):
                    await clean.send(key=outcome.mention.person.encode(), value=outcome.value)
                elif isinstance(outcome, DeadLetter):
                    await invalid.send(key=event.key, value=outcome.value)
            except Exception as exc:
                await send_dead_letter(event, exc)
            _observe("ingest", started, event)

    @app.agent(clean, name="analyse")
    async def analyse(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            try:
                mention = Mention.model_validate_json(event.value)
                outbox = analyser.process(mention)
                for alert in outbox:  # wait for the broker: only then leave the outbox
                    sent = await alerts.send(key=mention.person.encode(), value=alert.to_json())
                    await sent
                analyser.delivered(mention.person, len(outbox))
            except Exception as exc:
                await send_dead_letter(event, exc)
            _observe("analyse", started, event)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _forget(sender: Any, revoked: Any = None, **_: Any) -> None:
        # Another worker may change these persons' state while we do not own them.
        ingestor.forget_cache()
        analyser.forget_cache()

    lag = LagExporter(conn, worker.app_id, {names.raw: partitions, names.clean: partitions})

    watch = StallWatch(worker.stall_seconds)
    stalled: dict[tuple[str, int], float] = {}
    diagnosed: list[bool] = []  # once per process: what Faust and aiokafka think of the tps

    @app.timer(worker.lag_interval_seconds)
    async def _lag_and_progress() -> None:
        # One read of the group's lag serves both: the leader exports it for the whole group
        # (replicas would repeat the same series), every worker checks its own partitions.
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
        return web.json({"status": "ok", "persons": len(watchlist.persons)})

    _setup_metrics(app)
    return app


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


def _setup_metrics(app: faust.App) -> None:
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


def _topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name, partitions=partitions, key_serializer=_RAW, value_serializer=_RAW
    )


def _origin(event: Any) -> Origin:
    msg = event.message
    return Origin(msg.topic, msg.partition, msg.offset, msg.timestamp)


def _observe(stage: str, started: float, event: Any) -> None:
    metrics.PROCESSING_SECONDS.labels(stage).observe(time.perf_counter() - started)
    ts = event.message.timestamp
    if ts:
        metrics.END_TO_END_SECONDS.labels(stage).observe(max(0.0, time.time() - ts))

