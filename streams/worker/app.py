"""The Faust app: its settings, topics and tables, wired to the agents and the health checks.

``mentions.raw`` → **process** (ingest and analysis in one pass, in batches) →
``mentions.clean`` | ``mentions.invalid``, and ``alerts`` (:mod:`.agents`). Topics and tables
are keyed and partitioned by person (:mod:`.person_table`). Progress and lag: :mod:`.health`;
``/metrics``: :mod:`.monitor`; never skipping a record on the source topic:
:mod:`.offset_guard`.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

import faust

from pileon.core.keys import neardup_key
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.connection import Connection, ConnectionConfig, as_connection
from pileon.kafka.topics import TopicNames, key_partition
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Ingestor
from pileon.streams.detection.neardup import Signer, kernels
from pileon.streams.worker.agents import Batching, Topics, add_agents
from pileon.streams.worker.fetch_wait import set_fetch_wait
from pileon.streams.worker.health import WorkerStalled, watch_progress
from pileon.streams.worker.monitor import setup_metrics
from pileon.streams.worker.offset_guard import guard_offsets
from pileon.streams.worker.person_table import person_table

log = logging.getLogger(__name__)

_RAW = "raw"  # keys and values are bytes: pileon parses and validates them itself


@dataclass(frozen=True)
class Tables:
    seen: Any  # mention ids seen recently, per person
    window: Any  # compact per-mention records of the near-duplicate window
    state: Any  # per-person detector baseline, open incident, alert outbox


def use_event_loop(settings: Settings) -> None:
    """Select ``worker.event_loop`` for every loop made from now on (the worker's, and its
    consumer thread's); call it before any is made."""
    if settings.worker.event_loop == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            log.warning("worker.event_loop is uvloop but uvloop is not installed (it has no "
                        "Windows build): using asyncio's loop")
            return
        import mode.loop

        mode.loop.use("uvloop")


def build_app(settings: Settings, watchlist: Watchlist, connection: Connection) -> faust.App:
    conn = as_connection(connection)
    app = faust_app(settings, conn)
    names = TopicNames.from_settings(settings.kafka)
    # Before anything creates the consumer: never skip records on the source topics.
    guard_offsets(app, [names.raw], settings.worker.data_dir / "offset-gap.json")
    partitions = settings.kafka.partitions
    topics = Topics(*(_topic(app, name, partitions)
                      for name in (names.raw, names.clean, names.invalid, names.alerts)))
    tables = _tables(app, partitions)
    homes = {person: key_partition(person.encode(), partitions) for person in watchlist.keys}
    ingestor = Ingestor(frozenset(homes), settings.ingest, tables.seen, homes=homes,
                        buffered=True)
    batching = Batching(settings.worker.batch_max, settings.worker.batch_wait_ms / 1000.0)
    add_agents(app, topics, ingestor, _analyser(settings, watchlist, tables), batching)
    watch_progress(app, settings.worker, conn, {names.raw: partitions}, len(watchlist.persons))
    setup_metrics(app, full=settings.worker.faust_metrics == "full")
    return app


def faust_app(settings: Settings, conn: ConnectionConfig) -> faust.App:
    """The worker's Faust app with no topics, tables or agents: its broker, consumer,
    producer and table settings (``bench/faust_baseline.py`` runs its baselines on it)."""
    kafka, worker = settings.kafka, settings.worker
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
        producer_linger=worker.producer_linger_ms / 1000.0,
        broker_commit_interval=worker.commit_interval_seconds,
        table_cleanup_interval=3600.0,
        # A replica taking over a partition it kept as a standby can hang in recovery
        # ("No event received for active tp", found by the two-workers fault test); without
        # standbys it reads the bounded changelog from the start, as a restarted worker does.
        table_standby_replicas=worker.standby_replicas,
    )
    set_fetch_wait(app, worker.fetch_wait_ms)
    return app


def _tables(app: faust.App, partitions: int) -> Tables:
    def table(name: str, help_: str) -> Any:
        return person_table(app, name, partitions, help_)

    return Tables(
        seen=table("seen", "mention ids seen recently, per person (exact de-duplication)"),
        window=table("window", "compact per-mention records in the near-duplicate window"),
        state=table("person-state", "per-person detector baseline and open incident"),
    )


def _analyser(settings: Settings, watchlist: Watchlist, tables: Tables) -> PersonAnalyser:
    signer = Signer(
        neardup_key(settings), settings.neardup.num_perm, settings.neardup.shingle_words
    )
    if not kernels.COMPILED:
        log.warning("near-duplicate kernels are not compiled (package built without a C "
                    "compiler): the numpy reference runs instead, about half as fast")
    return PersonAnalyser(
        watchlist, settings.detection, settings.neardup, signer, tables.window, tables.state,
        buffered=True,
    )


def _topic(app: faust.App, name: str, partitions: int) -> Any:
    return app.topic(
        name, partitions=partitions, key_serializer=_RAW, value_serializer=_RAW
    )


__all__ = ["Tables", "WorkerStalled", "build_app", "faust_app"]
