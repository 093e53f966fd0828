"""The ``pileon`` command: worker, simulate, connect, archive, notify, console, demo, topics,
check, verify, check-config, dashboards."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from pileon.cli.common import (
    CommandError,
    bootstrap_parent,
    require_extra,
    required_connection,
    serve_metrics,
)
from pileon.connectors.base import SourceUnavailable
from pileon.connectors.producer import DeliveryError
from pileon.core.settings import ConfigError, Settings, load_settings
from pileon.core.watchlist import Watchlist, load_watchlist
from pileon.evidence.chain import ChainError
from pileon.kafka.broker import BrokerStartError, kafka_connection
from pileon.kafka.topics import TopicSetupError, ensure_changelogs, ensure_topics

log = logging.getLogger("pileon")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("kafka", "aiokafka"):  # client internals: connections, metadata
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # Faust warns at every 100 buffered table-changelog writes: normal backpressure, not news.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    # kafka-python 3 warns when one step of its I/O loop took over 0.1 s ("blocking the event
    # loop"): on a busy two-core machine that is scheduling, not a fault. mode warns when a
    # timer's run outlasts its interval ("Timer commit is overlapping"): a worker catching up on
    # a backlog commits slower; commit latency is in pileon_faust_* metrics for whoever asks.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    logging.getLogger("mode.timers").setLevel(logging.ERROR)
    try:
        settings = load_settings(args.config)
        logging.getLogger().setLevel(settings.log_level)
        watchlist = load_watchlist(settings.watchlist, settings.detection)
        if args.func is not cmd_check_config:  # check-config prints them itself
            for warning in watchlist.warnings():
                log.warning("watchlist %s: %s", settings.watchlist, warning)
        return int(args.func(args, settings, watchlist) or 0)
    except (ConfigError, BrokerStartError, TopicSetupError, ChainError, CommandError,
            SourceUnavailable, DeliveryError) as exc:
        for line in str(exc).splitlines():  # several problems: one line each
            print(f"pileon: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_worker(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from faust.worker import Worker

    from pileon.core.allocator import trim_freed_memory
    from pileon.streams.worker.app import build_app, use_event_loop

    trim_freed_memory()  # a day of window churn otherwise leaves RSS far above live data
    use_event_loop(settings)  # before anything makes a loop

    with kafka_connection(settings) as connection:
        ensure_topics(connection, settings.kafka)
        ensure_changelogs(connection, settings.kafka, settings.worker.app_id)
        if not settings.kafka.bootstrap:
            bootstrap = connection.bootstrap_servers
            print(f"pileon worker: embedded broker at {bootstrap} "
                  f"(point connectors at it with --bootstrap {bootstrap})", flush=True)
        app = build_app(settings, watchlist, connection)
        worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
        worker.execute_from_commandline()
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.connectors.simulator import SimulatorConnector

    connection = required_connection(args, settings, "simulate")
    names = ensure_topics(connection, settings.kafka)
    connector = SimulatorConnector.from_watchlist(
        connection, names.raw, watchlist, days=args.days, seed=args.seed, target=args.target,
        speed=args.speed, invalid=args.invalid, invalid_topic=names.invalid,
        changes_topic=names.changes,
    )
    connector.start()
    connector.run()
    connector.stop()
    truth = connector.ground_truth()
    if args.ground_truth:
        args.ground_truth.write_bytes(orjson.dumps(truth.to_dict(), option=orjson.OPT_INDENT_2))
    print(f"sent {sum(truth.background_mentions.values()) + truth.pileon_mentions} mentions; "
          f"pile-on on {truth.target} from {truth.onset}", flush=True)
    return 0


def cmd_archive(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.evidence.anchors import sealer_from_settings
    from pileon.evidence.archiver import Archiver
    from pileon.evidence.platform import PlatformRecords

    sealer = sealer_from_settings(settings.evidence)
    connection = required_connection(args, settings, "archive")
    names = ensure_topics(connection, settings.kafka)
    archiver = Archiver(connection, names, args.out, group_id=settings.evidence.group_id,
                        sealer=sealer,
                        checkpoint_seconds=settings.evidence.checkpoint_seconds,
                        retention_days=settings.evidence.retention_days,
                        expire_seconds=settings.evidence.expire_seconds,
                        platform=PlatformRecords(args.out / "platform", settings.evidence.plc_url)
                        if settings.evidence.platform_records else None,
                        platform_wait_seconds=settings.evidence.platform_wait_seconds,
                        recheck_hours=settings.evidence.recheck_hours)
    cfg = settings.evidence
    if cfg.metrics_port:
        serve_metrics(cfg.metrics_bind, cfg.metrics_port, "evidence.metrics_port")
        log.info("archive: metrics on %s:%d", cfg.metrics_bind, cfg.metrics_port)
    if sealer is None:
        log.warning("archive: no evidence.signing_key_file: bundles are hash-chained but not "
                    "sealed, so a consistent forgery of a whole bundle cannot be told apart")
    else:
        log.info("archive: sealing with key %s; %d timestamp authorities", sealer.key_id,
                 len(settings.evidence.tsa_urls))
    signal.signal(signal.SIGTERM, lambda *_: archiver.stop())
    try:
        archiver.run()
    except KeyboardInterrupt:
        archiver.stop()
    except RuntimeError as exc:
        raise CommandError(f"archive: {exc}") from None
    return 0


def cmd_notify(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    import threading

    from pileon.alerting.notifier import Notifier
    from pileon.alerting.sinks import sinks_from_settings

    connection = required_connection(args, settings, "notify")
    names = ensure_topics(connection, settings.kafka)
    cfg = settings.alerting
    sinks = sinks_from_settings(cfg)
    if not sinks:
        raise ConfigError("notify needs a sink: set alerting.alertmanager_urls or "
                          "alerting.webhook_url")
    if cfg.metrics_port:
        serve_metrics(cfg.metrics_bind, cfg.metrics_port, "alerting.metrics_port")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"pileon notify: {', '.join(s.name for s in sinks)}; metrics on "
          f"{cfg.metrics_bind}:{cfg.metrics_port}", flush=True)
    try:
        Notifier(connection, names.alerts, cfg, sinks, heads_topic=names.heads).run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    require_extra("dashboards", "grafana_foundation_sdk", "pileon generate")
    from pileon.cli.generate import write

    written = write(args.root)
    print("\n".join(str(p) for p in written) or "up to date")
    return 0


def cmd_dashboards_push(
    args: argparse.Namespace, settings: Settings, watchlist: Watchlist
) -> int:
    import os

    require_extra("dashboards", "grafana_client", "pileon dashboards push")
    require_extra("dashboards", "grafana_foundation_sdk", "pileon dashboards push")
    from pileon.observability.push import from_files, push, rendered

    token = os.environ.get("GRAFANA_TOKEN")
    if args.token_file:
        token = args.token_file.read_text().strip()
    boards = rendered()
    if args.dir:
        boards = from_files(sorted(args.dir.glob("*.json")))
        if not boards:
            raise ConfigError(f"no dashboards in {args.dir}")
    from grafana_client.client import GrafanaException

    try:
        pushed = push(args.grafana_url, token, boards)
    except GrafanaException as exc:
        raise CommandError(f"Grafana at {args.grafana_url}: {exc}") from None
    print(f"pushed {', '.join(pushed.dashboards)} to folder 'pileon'"
          f"{' (created)' if pushed.folder_created else ''}")
    return 0


def cmd_score_csv(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.cli.scorecsv import SeriesError, read_series, score, write

    try:
        rows = read_series(args.input)
    except (SeriesError, OSError) as exc:
        raise CommandError(str(exc)) from None
    n = write(score(rows, settings.detection), args.output)
    print(f"scored {n} rows into {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.cli.demo import run_demo

    return run_demo(settings, watchlist, args)


def cmd_topics(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    connection = required_connection(args, settings, "topics")
    names = ensure_topics(connection, settings.kafka)
    print("\n".join(names.all()))
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.cli.check import check

    # The clients' own connection errors would repeat what the report says in one line.
    for name in ("kafka", "aiokafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    report = check(required_connection(args, settings, "check"), settings,
                   timeout=args.timeout, metrics_url=args.metrics_url)
    print("\n".join(report.lines), flush=True)
    return 1 if report.problems else 0


def cmd_verify(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.evidence import check_bundle, verify_records
    from pileon.evidence.anchors import SigningKeyError, load_public_key, parse_roots
    from pileon.evidence.chain import EvidenceLog, check_head

    path: Path = args.path
    if path.is_dir():
        try:
            key = load_public_key(args.key) if args.key else None
            roots = parse_roots([p.read_text() for p in args.tsa_ca]) if args.tsa_ca else None
        except (SigningKeyError, OSError, ValueError) as exc:
            raise CommandError(f"verify: {exc}") from None
        check = check_bundle(path, key, roots)
        notes = list(check.notes)
        if args.head:
            records = [orjson.loads(x) for x in (path / "mentions.jsonl").read_bytes()
                       .splitlines() if x.strip()]
            notes += [check_head(records, h) for h in args.head]
        print(f"OK: bundle {path}: {check.records} records; every file matches the manifest "
              "and what the alert events and the chain records give")
        for note in notes:
            print(f"  {note}")
    elif path.is_file():
        records = []
        data = path.read_bytes()
        unfinished = len(data) - (data.rfind(b"\n") + 1)
        if unfinished:  # a write under way, or torn by a crash: not a record (EvidenceLog)
            data = data[:-unfinished]
        for n, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    raise ChainError(f"{path} line {n}: not JSON") from None
        first_seq, first_prev = EvidenceLog(path.parent.parent).start(path.parent.name)
        count, head = verify_records(records, first_prev, first_seq)
        trimmed = "" if first_seq == 1 else f" (from seq {first_seq}: earlier ones expired, " \
            "see trims.jsonl)"
        print(f"OK: chain {path}: {count} records{trimmed}, head {head}")
        if unfinished:
            print(f"  note: the last {unfinished} bytes are not a whole line (a write under way, "
                  "or cut by a crash: the archiver sets them aside on start), not checked")
        for h in args.head:
            print(f"  {check_head(records, h)}")
    else:
        raise ChainError(f"{path}: neither a bundle folder nor a chain.jsonl file")
    return 0


def cmd_check_config(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    for warning in watchlist.warnings():
        print(f"WARN: watchlist {settings.watchlist}: {warning}")
    print(f"OK: settings valid; watchlist {settings.watchlist}: {len(watchlist.persons)} persons"
          f" (per-person thresholds checked against the detection settings); broker: "
          f"{settings.kafka.bootstrap or 'embedded (none configured)'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pileon", description=__doc__)
    p.add_argument("--config", type=Path, help="YAML config file (or PILEON_CONFIG)")
    sub = p.add_subparsers(required=True, metavar="command")
    kafka = bootstrap_parent()

    s = sub.add_parser("worker", help="run the stream worker (embedded broker if none set)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("simulate", parents=[kafka],
                       help="send simulated mentions with a scripted pile-on")
    s.add_argument("--days", type=float, default=2.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--target", help="person key of the pile-on target (default: first)")
    s.add_argument("--speed", type=float, default=0.0,
                   help="event-time seconds per wall second; 0 sends as fast as possible")
    s.add_argument("--invalid", action="store_true", help="also send malformed messages")
    s.add_argument("--ground-truth", type=Path, help="write the ground truth JSON here")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("archive", parents=[kafka], help="keep evidence chains and incident bundles")
    s.add_argument("--out", type=Path, default=Path("pileon-evidence"))
    s.set_defaults(func=cmd_archive)

    s = sub.add_parser("notify", parents=[kafka],
                       help="deliver alerts to Alertmanager and webhooks")
    s.set_defaults(func=cmd_notify)

    s = sub.add_parser("score-csv", help="run the detector over a timestamp,value count series")
    s.add_argument("input", type=Path)
    s.add_argument("--output", type=Path, required=True)
    s.set_defaults(func=cmd_score_csv)

    s = sub.add_parser("generate", help="write dashboards/*.json and prometheus rules")
    s.add_argument("--root", type=Path, default=Path(),
                   help="checkout of pileon to write into (default: the current directory)")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("dashboards", help="Grafana dashboards")
    dash = s.add_subparsers(required=True, metavar="action")
    s = dash.add_parser("push", help="create the folder and upload the dashboards")
    s.add_argument("--grafana-url", required=True)
    s.add_argument("--token-file", type=Path, help="API token file (default: $GRAFANA_TOKEN)")
    s.add_argument("--dir", type=Path,
                   help="push the *.json files of this directory (default: this version's "
                        "dashboards, built in memory)")
    s.set_defaults(func=cmd_dashboards_push)

    s = sub.add_parser("demo", help="broker, worker, simulated pile-on, alert and evidence",
                       description="Starts the embedded broker (unless kafka.bootstrap is set), "
                       "a worker and the evidence archiver, sends simulated mentions with a "
                       "coordinated pile-on on the first watched person, and shows the incident "
                       "and its verified evidence bundle.")
    s.add_argument("--out", type=Path, default=Path("pileon-demo"),
                   help="folder for the worker's data and log, the evidence and the ground "
                        "truth; emptied first (default: pileon-demo)")
    s.add_argument("--follow", action="store_true",
                   help="keep everything running after the incident and print every new "
                        "transition, until Ctrl-C")
    s.add_argument("--timeout", type=float, default=180.0,
                   help="seconds to wait for the incident before giving up (default: 180)")
    s.add_argument("--seed", type=int, default=7,
                   help="random seed of the simulation: the same seed, the same mentions")
    s.add_argument("--days", type=float, default=2.0,
                   help="days of ordinary traffic before the pile-on, for the baselines to "
                        "learn (default: 2)")
    s.add_argument("--console-port", type=int, metavar="PORT",
                   help="the console's port on 127.0.0.1 (default: console.port, 6070, or a "
                        "free port when that is taken)")
    s.add_argument("--broker-port", type=int, metavar="PORT",
                   help="a fixed port for the embedded broker on 127.0.0.1 (default: "
                        "kafka.embedded_port, or a free port each start)")
    s.set_defaults(func=cmd_demo)

    from pileon.cli.connect import add_parser as add_connect
    from pileon.cli.console import add_parser as add_console
    from pileon.cli.evidence import add_parser as add_evidence
    from pileon.cli.report import add_parser as add_report

    add_connect(sub, kafka)
    add_console(sub, kafka)
    add_report(sub)
    add_evidence(sub)

    s = sub.add_parser("topics", parents=[kafka], help="create pileon's topics")
    s.set_defaults(func=cmd_topics)

    s = sub.add_parser("check", parents=[kafka],
                       help="broker, topics, who is running, worker lag and late mentions")
    s.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for the broker and for a new cluster's coordinator")
    s.add_argument("--metrics-url",
                   help="the worker's /metrics (default: worker.web_bind:web_port)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("verify", help="verify an evidence bundle or chain file")
    s.add_argument("path", type=Path)
    s.add_argument("--key", type=Path, help="the archiver's public key (PEM or base64) the "
                   "bundle must be sealed with, as your newsroom publishes it")
    s.add_argument("--tsa-ca", type=Path, action="append", default=[], metavar="PEM",
                   help="a timestamp authority's root certificate to check the tokens with "
                        "(default: the roots the bundle carries)")
    s.add_argument("--head", action="append", default=[], metavar="SEQ:HASH",
                   help="a chain head a page carried (evidence_head: record number and head "
                        "hash): the record must still have that hash")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("check-config", help="validate settings and watchlist, then exit")
    s.set_defaults(func=cmd_check_config)
    return p


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

