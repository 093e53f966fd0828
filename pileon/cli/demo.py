"""``pileon demo``: the whole path on one machine in about a minute.

Starts the embedded broker (unless a Kafka is configured), a worker process, the evidence
archiver, and sends two days of simulated mentions for every watched person with a
coordinated pile-on on one of them, plus a few malformed messages. It waits for the incident,
prints why it fired, and leaves the evidence bundle in ``--out``. The responders' console runs
beside them (its database in ``--out``/console), with a new admin account whose password is
printed once; every incident's line gives the link its alert carries.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.alerting.notification import notification_from_event
from pileon.cli.common import scrape, serve_metrics
from pileon.connectors.simulator import SimulatorConnector
from pileon.console.server import ConsoleServer
from pileon.core.process import terminate
from pileon.core.settings import Settings
from pileon.core.times import epoch
from pileon.core.watchlist import Watchlist
from pileon.core.wording import local_time, odds
from pileon.evidence import check_bundle
from pileon.evidence.anchors import Sealer
from pileon.evidence.archiver import Archiver
from pileon.kafka.broker import free_port, kafka_connection
from pileon.kafka.connection import Connection, as_connection
from pileon.kafka.topics import ensure_topics
from pileon.schema.alert import AlertEvent
from pileon.streams.detection.detectors import RateDetector
from pileon.streams.detection.person_state import detector_params


def run_demo(settings: Settings, watchlist: Watchlist, args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.monotonic()
    if args.broker_port is not None:
        settings.kafka.embedded_port = args.broker_port
    with kafka_connection(settings) as connection:
        names = ensure_topics(connection, settings.kafka)
        _say(started, f"broker at {connection.bootstrap_servers}; topics: {', '.join(names.all())}")
        if not settings.kafka.bootstrap:
            _say(started, "  (embedded Tansu broker: kafka-python, aiokafka and Java clients work; "
                          "kcat and confluent-kafka, built on librdkafka, do not)")
        web_port = free_port()
        worker = start_worker(settings, connection, out, web_port=web_port)
        alerts: queue.Queue[tuple[AlertEvent, Path]] = queue.Queue()
        sealer = Sealer(_demo_key(out))
        archiver = Archiver(connection, names, out / "evidence",
                            on_bundle=lambda e, p: alerts.put((e, p)), sealer=sealer)
        archiving = threading.Thread(target=archiver.run, name="archiver", daemon=True)
        archiving.start()
        archiver_metrics = free_port()
        serve_metrics("127.0.0.1", archiver_metrics, "demo: the archiver's metrics")
        settings.evidence.metrics_port = archiver_metrics  # for what --follow prints
        console = start_console(settings, connection, names.alerts, out, args.console_port,
                                names.heads, names.raw)
        _say(started, f"console at {console.url} -- log in as admin with password "
                      f"{console.admin_password} (made for this run, shown once)")
        try:
            target = watchlist.persons[0].key
            connector = SimulatorConnector.from_watchlist(
                connection, names.raw, watchlist, days=args.days, seed=args.seed, target=target,
                invalid=True, invalid_topic=names.invalid, changes_topic=names.changes,
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
            progress = Progress(f"http://127.0.0.1:{web_port}/metrics", archiver, target,
                                watchlist, settings, sent, started)
            onset = epoch(truth.onset) if truth.onset else 0.0
            return _await_incident(alerts, archiver, worker, progress, args, started, out, onset)
        except KeyboardInterrupt:
            progress_end()
            _say(started, "stopping: worker, archiver, then the broker ...")
            return 130
        finally:
            # Stopping: the clients' reconnect errors are expected, not news.
            for name in ("kafka", "aiokafka"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            terminate(worker, timeout=10)
            archiver.stop()
            archiving.join(timeout=5)
            console.stop()


def _demo_key(out: Path) -> Ed25519PrivateKey:
    """A signing key for this run's bundles (production reads evidence.signing_key_file)."""
    key = Ed25519PrivateKey.generate()
    path = out / "evidence-signing.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


class DemoConsole(ConsoleServer):
    admin_password: str


def start_console(settings: Settings, connection: Connection, alerts_topic: str, out: Path,
                  port: int | None, heads_topic: str | None = None,
                  raw_topic: str | None = None) -> DemoConsole:
    """The console on ``port`` (default: console.port, or a free one when that is taken), fed
    by this run's alerts and archive, with a new admin account; alerts link to it. Its
    dispositions reach this run's worker through ``raw_topic``."""
    import secrets

    from pileon.console import auth

    cfg = settings.console
    cfg.data_dir, cfg.evidence_dir = out / "console", out / "evidence"
    cfg.port = port if port is not None else (cfg.port if _port_free(cfg.bind, cfg.port)
                                              else free_port())
    console = DemoConsole(settings, connection, alerts_topic, heads_topic=heads_topic,
                          raw_topic=raw_topic)
    console.admin_password = secrets.token_urlsafe(12)
    with console.sm.begin() as db:
        auth.add_user(db, "admin", "admin", console.admin_password)
    console.start()
    settings.alerting.evidence_url = f"{console.url}/evidence"
    cfg.public_url = console.url
    return console


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start_worker(
    settings: Settings, connection: Connection, out: Path, web_port: int | None = None
) -> subprocess.Popen[bytes]:
    """A ``pileon worker`` process on ``connection``'s brokers (security from ``settings``),
    its data and ``worker.log`` in ``out``, its pages on ``web_port`` (default: a free one).
    It runs in a session of its own: Ctrl-C reaches the demo, which stops it in order."""
    env = {
        **os.environ,
        "PILEON_KAFKA__BOOTSTRAP": as_connection(connection).bootstrap_servers,
        "PILEON_WORKER__WEB_PORT": str(web_port or free_port()),
        "PILEON_WORKER__DATA_DIR": str((out / "worker").resolve()),
        "PILEON_WATCHLIST": str(settings.watchlist.resolve()),
    }
    log = (out / "worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "pileon", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _await_incident(
    alerts: queue.Queue[tuple[AlertEvent, Path]],
    archiver: Archiver,
    worker: subprocess.Popen[bytes],
    progress: Progress,
    args: argparse.Namespace,
    started: float,
    out: Path,
    onset: float,
) -> int:
    """Print each transition as it comes until the target's pile-on has been shown (a few
    seconds more, for an escalation), or for ever with ``--follow``. A page for anyone before
    their pile-on (for the target, a transition before ``onset``) is said to be what it is:
    a burst in simulated organic traffic. The demo waits on for the pile-on."""
    deadline = started + args.timeout
    found = False
    shown = False
    while args.follow or time.monotonic() < deadline:
        if worker.poll() is not None:
            progress_end()
            _say(started, f"worker exited with {worker.returncode}; see {out / 'worker.log'}")
            return 1
        try:
            event, folder = alerts.get(timeout=1.0)
        except queue.Empty:
            if found and not args.follow:
                return 0
            if not found:
                progress.show()
            continue
        progress_end()
        _print_incident(event, folder, archiver, started,
                        notification_from_event(event, progress.settings.alerting).evidence_url)
        if args.follow and not shown:
            _where(progress.metrics_url, out, progress.settings)
        shown = True
        note = organic_note(event, progress.target, onset)
        if note:
            _say(started, note)
        else:
            found = True
            if not args.follow:
                deadline = min(deadline, time.monotonic() + 8)  # show an escalation, then stop
    progress_end()
    if not found:
        _say(started, f"no incident for {progress.target}'s pile-on within "
                      f"{args.timeout:.0f}s; see {out / 'worker.log'}")
        return 1
    return 0


def organic_note(event: AlertEvent, target: str, onset: float) -> str | None:
    """What to say of a transition that is not the simulated pile-on (anyone but ``target``,
    or ``target`` before ``onset``), or None for the pile-on's own."""
    budget = "the default budget allows 2 such pages a person-month"
    if event.person != target:
        return (f"note: an alert for '{event.person}', who had no pile-on: a burst in their "
                f"simulated organic traffic ({event.assessment}); {budget}")
    if epoch(event.at) < onset:
        return (f"note: an alert for '{event.person}' before their pile-on began: a burst in "
                f"their simulated organic traffic ({event.assessment}); {budget}; waiting on "
                "for the pile-on")
    return None


class Progress:
    """A status line while the worker catches up: how far it got and the target's score."""

    def __init__(self, metrics_url: str, archiver: Archiver, target: str, watchlist: Watchlist,
                 settings: Settings, sent: int, started: float) -> None:
        self.metrics_url, self.archiver, self.target = metrics_url, archiver, target
        self.settings = settings
        person = watchlist.get(target)
        self._timezone = person.timezone if person else "UTC"
        cfg = person.detection(settings.detection) if person else settings.detection
        # A new person's bar (the budget's); their own bursts can only raise it.
        self._open = RateDetector(**detector_params(cfg)).bar(0)
        self._sent, self._started = sent, started
        self._tty = sys.stdout.isatty()
        self._last = 0.0

    def show(self) -> None:
        now = time.monotonic()
        if now - self._last < (2.0 if self._tty else 10.0):
            return
        self._last = now
        analysed, score, late = _worker_figures(self.metrics_url, self.target)
        reached = self.archiver.latest_event_time
        parts = [f"{now - self._started:5.1f}s"]
        if analysed is None:
            parts.append("worker starting ...")
        else:
            parts.append(f"{analysed:,} of ~{self._sent:,} mentions analysed")
        if reached:
            parts.append(f"event time {local_time(reached, self._timezone)}")
        if score is not None:
            parts.append(f"{self.target}'s score {score:.1f} (opens at {self._open:.1f} or "
                         "their own higher bar)")
        if late:
            parts.append(f"{late:,} late (kept as evidence; folded into detection when the "
                         "next minute closes)")
        line = "[" + parts[0] + "] " + "; ".join(parts[1:])
        if self._tty:
            print(f"\r\033[K{line}", end="", flush=True)
            _PROGRESS_SHOWN[0] = True
        else:
            print(line, flush=True)


_PROGRESS_SHOWN = [False]


def progress_end() -> None:
    """End a status line drawn in place, so the next message starts on its own line."""
    if _PROGRESS_SHOWN[0]:
        print(flush=True)
        _PROGRESS_SHOWN[0] = False


def _worker_figures(url: str, person: str) -> tuple[int | None, float | None, int]:
    """Mentions the worker analysed, ``person``'s latest score and the late mentions it set
    aside, from its /metrics."""
    try:
        samples = scrape(url, timeout=1.0)
    except OSError:
        return None, None, 0
    analysed, score, late = 0, None, 0
    for sample in samples:
        if sample.name == "pileon_processing_seconds_count" and sample.labels.get("stage") == \
                "analyse":
            analysed += int(sample.value)
        elif sample.name == "pileon_pileon_score" and sample.labels.get("person") == person:
            score = sample.value
        elif sample.name == "pileon_late_mentions_total":
            late += int(sample.value)
    return analysed, score, late


def _where(metrics_url: str, out: Path, settings: Settings) -> None:
    base = metrics_url.rsplit("/", 1)[0]
    console_url = settings.console.public_url
    print("\n".join([
        "",
        "following: new transitions print here; Ctrl-C stops the worker, the archiver and the "
        "broker.",
        f"  worker metrics: {metrics_url}   health: {base}/healthz",
        f"  archiver metrics: http://127.0.0.1:{settings.evidence.metrics_port}/metrics",
        "  dashboards: `docker compose up` (Grafana on http://127.0.0.1:3000), or point your "
        "Grafana at a Prometheus scraping the metrics above and run "
        "`pileon dashboards push --grafana-url URL`",
        f"  evidence: {out / 'evidence' / 'incidents'}  (verify with `pileon verify <folder>`)",
        f"  console: {console_url} (the incident's link above): acknowledge, assign, add notes, "
        "export block lists and the police CSV there",
    ]), flush=True)


def _coordination_line(event: AlertEvent) -> str:
    c = event.signals.coordination
    added = c.score if c.counted else 0.0
    return (f"  pile-on score {event.score} = volume {event.signals.rate.score} + "
            f"coordination {added} (-log10 p of young accounts {c.young}, copies "
            f"{c.copies}, one-author flood {c.flood})")


def _print_incident(
    event: AlertEvent, folder: Path, archiver: Archiver, started: float, link: str
) -> None:
    s = event.signals
    rate, authors, young = s.rate, s.distinct_authors, s.young_account_share
    check = check_bundle(folder)
    count = check.records
    lines = [
        "",
        f"INCIDENT {event.incident_id} {event.transition.upper()} "
        f"severity={event.severity} person={event.person} at "
        f"{local_time(event.at, event.timezone)} (event time)",
        f"  in words: {rate.mentions} mentions in {rate.window_minutes:.0f} min where about "
        f"{rate.expected:g} are usual: on an ordinary day for {event.person} that is "
        f"{odds(rate.score)}",
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
        if confirmation.excess is not None and confirmation.min_excess is not None:
            lines.append(f"  {confirmation.excess:g} mentions above baseline (an opening needs "
                         f"{confirmation.min_excess})")
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
    sealed = next((n.split(" (")[0] for n in check.notes if n.startswith("sealed by")), "unsealed")
    lines.append(f"  evidence bundle: {folder} ({count} hash-chained mentions, verified, "
                 f"{sealed})")
    deleted = _deleted(folder)
    if deleted:
        lines.append(f"  deleted since: {deleted} of its posts, said the platform's stream "
                     "(kept as captured; marked in the bundle, the report and the console)")
    lines.append(f"  in the console (the alert's link): {link}")
    print("\n".join(lines), flush=True)


def _deleted(folder: Path) -> int:
    path = folder / "changes.json"
    if not path.exists():
        return 0
    entries = orjson.loads(path.read_bytes()).get("entries", [])
    return len({e["of"] for e in entries if e.get("state") == "deleted"})


def _texts(archiver: Archiver, person: str, ids: set[str]) -> dict[str, str]:
    # The template text comes from the local evidence chain: alerts themselves carry no text.
    return {
        r["mention"]["id"]: r["mention"]["text"]
        for r in archiver.log.records(person)
        if r["mention"]["id"] in ids
    }


def _say(started: float, message: str) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {message}", flush=True)
