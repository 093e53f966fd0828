"""``pileon demo``: the whole path on one machine in about a minute.

Starts the embedded broker (unless a Kafka is configured), a worker process, the evidence
archiver, and sends two days of simulated mentions for every watched person with a
coordinated pile-on on one of them, plus a few malformed messages. It waits for the incident,
prints why it fired, and leaves the evidence bundle in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from pileon.connectors.simulator import SimulatorConnector
from pileon.core.process import terminate
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist
from pileon.evidence import verify_bundle
from pileon.evidence.archiver import Archiver
from pileon.kafka.broker import free_port, kafka_connection
from pileon.kafka.connection import Connection, as_connection
from pileon.kafka.topics import ensure_topics
from pileon.schema.alert import AlertEvent


def run_demo(settings: Settings, watchlist: Watchlist, args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.monotonic()
    with kafka_connection(settings) as connection:
        names = ensure_topics(connection, settings.kafka)
        _say(started, f"broker at {connection.bootstrap_servers}; topics: {', '.join(names.all())}")
        worker = start_worker(settings, connection, out)
        alerts: queue.Queue[tuple[AlertEvent, Path]] = queue.Queue()
        archiver = Archiver(connection, names, out / "evidence",
                            on_bundle=lambda e, p: alerts.put((e, p)))
        archiving = threading.Thread(target=archiver.run, name="archiver", daemon=True)
        archiving.start()
        try:
            target = watchlist.persons[0].key
            connector = SimulatorConnector.from_watchlist(
                connection, names.raw, watchlist, days=args.days, seed=args.seed, target=target,
                invalid=True, invalid_topic=names.invalid,
            )
            connector.start()
            sent = connector.run()
            truth = connector.ground_truth()
            (out / "ground_truth.json").write_bytes(
                orjson.dumps(truth.to_dict(), option=orjson.OPT_INDENT_2)
            )
            _say(started, f"sent {sent} simulated mentions ({len(watchlist.persons)} persons, "
                          f"{args.days:g} days); pile-on on '{target}' from {truth.onset}")
            _say(started, "waiting for the worker to detect it "
                          f"(worker log: {out / 'worker.log'}) ...")
            return _await_incident(alerts, archiver, worker, target, args, started, out)
        finally:
            archiver.stop()
            archiving.join(timeout=10)
            terminate(worker, timeout=20)


def start_worker(
    settings: Settings, connection: Connection, out: Path
) -> subprocess.Popen[bytes]:
    """A ``pileon worker`` process on ``connection``'s brokers (security from ``settings``),
    its data and ``worker.log`` in ``out``."""
    env = {
        **os.environ,
        "PILEON_KAFKA__BOOTSTRAP": as_connection(connection).bootstrap_servers,
        "PILEON_WORKER__WEB_PORT": str(free_port()),
        "PILEON_WORKER__DATA_DIR": str((out / "worker").resolve()),
        "PILEON_WATCHLIST": str(settings.watchlist.resolve()),
    }
    log = (out / "worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pileon", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _await_incident(
    alerts: queue.Queue[tuple[AlertEvent, Path]],
    archiver: Archiver,
    worker: subprocess.Popen[bytes],
    target: str,
    args: argparse.Namespace,
    started: float,
    out: Path,
) -> int:
    deadline = started + args.timeout
    shown: set[str] = set()
    while args.follow or time.monotonic() < deadline:
        if worker.poll() is not None:
            _say(started, f"worker exited with {worker.returncode}; see {out / 'worker.log'}")
            return 1
        try:
            event, folder = alerts.get(timeout=1.0)
        except queue.Empty:
            if shown and not args.follow:
                return 0
            continue
        _print_incident(event, folder, archiver, started)
        shown.add(event.person)
        if event.person != target:
            _say(started, f"note: an alert for '{event.person}', who had no pile-on")
        if not args.follow:
            deadline = min(deadline, time.monotonic() + 8)  # show an escalation, then stop
    if not shown:
        _say(started, f"no incident within {args.timeout:.0f}s; see {out / 'worker.log'}")
        return 1
    return 0


def _coordination_line(event: AlertEvent) -> str:
    c = event.signals.coordination
    added = c.score if c.counted else 0.0
    return (f"  pile-on score {event.score} = volume {event.signals.rate.score} + "
            f"coordination {added} (-log10 p of young accounts {c.young}, copies "
            f"{c.copies}, one-author flood {c.flood})")


def _print_incident(
    event: AlertEvent, folder: Path, archiver: Archiver, started: float
) -> None:
    s = event.signals
    rate, authors, young = s.rate, s.distinct_authors, s.young_account_share
    count = verify_bundle(folder)
    lines = [
        "",
        f"INCIDENT {event.incident_id} {event.transition.upper()} "
        f"severity={event.severity} person={event.person} at {event.at} (event time)",
        f"  assessment: {event.assessment} (indicators: "
        f"{', '.join(event.indicators) or 'none'}) -- evidence, not a verdict: a human decides",
        f"  rate: {rate.mentions} mentions in {rate.window_minutes:.0f} min vs baseline "
        f"{rate.expected} (x{rate.ratio}), score {rate.score} (-log10 p)",
        _coordination_line(event),
        f"  distinct authors: {authors.value} (baseline {authors.baseline}); young accounts (< "
        f"{young.young_means_days:g} d): {young.value:.0%} (baseline {young.baseline:.0%})",
    ]
    confirmation = event.confirmation
    if confirmation is not None:
        lines.append(
            "  confirmed by a second window at the critical bar" if confirmation.critical_window
            else f"  confirmed by the minutes since the alarm at {confirmation.alarm_at}: "
                 f"{confirmation.mentions_since} mentions vs {confirmation.expected_since} "
                 f"expected (score {confirmation.score})")
    focus = s.reply_focus
    if focus.mentions:
        lines.append(f"  answering one post: {focus.mentions} mentions ({focus.share:.0%}, "
                     f"usually {focus.usual:.0%}), score {focus.score}: post {focus.post_key}")
    clusters = s.near_duplicate_clusters
    texts = _texts(archiver, event.person, {c.template_id for c in clusters})
    for c in clusters:
        lines.append(
            f"  near-duplicate template ({c.in_window} in window, {c.size} total, "
            f"{c.distinct_authors} authors, {c.young_share:.0%} young): "
            f"\"{texts.get(c.template_id, '?')[:90]}\""
        )
    lines.append(f"  evidence bundle: {folder} ({count} hash-chained mentions, verified)")
    print("\n".join(lines), flush=True)


def _texts(archiver: Archiver, person: str, ids: set[str]) -> dict[str, str]:
    # The template text comes from the local evidence chain: alerts themselves carry no text.
    return {
        r["mention"]["id"]: r["mention"]["text"]
        for r in archiver.log.records(person)
        if r["mention"]["id"] in ids
    }


def _say(started: float, message: str) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {message}", flush=True)
