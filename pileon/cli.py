"""The ``pileon`` command: worker, simulate, connect, archive, notify, demo, topics, check,
verify, check-config, dashboards."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

from connectors.base import SourceUnavailable
from connectors.producer import DeliveryError
from pileon import kafka_security
from pileon.broker import BrokerStartError, EmbeddedBroker
from pileon.evidence.chain import ChainError
from pileon.settings import ConfigError, Settings, load_settings
from pileon.topics import TopicSetupError, ensure_changelogs, ensure_topics
from pileon.watchlist import Watchlist, load_watchlist

log = logging.getLogger("pileon")


class CommandError(Exception):
    """A command could not do its job; the message says why (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("kafka", "aiokafka"):  # client internals: connections, metadata
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # Faust warns at every 100 buffered table-changelog writes: normal backpressure, not news.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    try:
        settings = load_settings(args.config)
        kafka_security.configure(settings.kafka)
        logging.getLogger().setLevel(settings.log_level)
        watchlist = load_watchlist(settings.watchlist)
        return int(args.func(args, settings, watchlist) or 0)
    except (ConfigError, BrokerStartError, TopicSetupError, ChainError, CommandError,
            SourceUnavailable, DeliveryError) as exc:
        print(f"pileon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def kafka_bootstrap(settings: Settings) -> Iterator[str]:
    """The configured Kafka, or an embedded broker for the duration of the block."""
    if settings.kafka.bootstrap:
        yield settings.kafka.bootstrap
        return
    broker = EmbeddedBroker().start()
    # Ctrl-C and SIGTERM unwind through here, so the broker never outlives us.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield broker.bootstrap
    finally:
        signal.signal(signal.SIGTERM, previous)
        broker.stop()
        log.info("embedded broker stopped")


def _required_bootstrap(args: argparse.Namespace, settings: Settings, command: str) -> str:
    """The broker a command that does not start one must be given."""
    bootstrap: str | None = args.bootstrap or settings.kafka.bootstrap
    if not bootstrap:
        raise ConfigError(f"{command} needs a broker: --bootstrap or PILEON_KAFKA__BOOTSTRAP")
    return bootstrap


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_worker(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from faust.worker import Worker

    from pileon.allocator import trim_freed_memory
    from streams.app import build_app

    trim_freed_memory()  # a day of window churn otherwise leaves RSS far above live data

    with kafka_bootstrap(settings) as bootstrap:
        ensure_topics(bootstrap, settings.kafka)
        ensure_changelogs(bootstrap, settings.kafka, settings.worker.app_id)
        if not settings.kafka.bootstrap:
            print(f"pileon worker: embedded broker at {bootstrap} "
                  f"(point connectors at it with --bootstrap {bootstrap})", flush=True)
        app = build_app(settings, watchlist, bootstrap)
        worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
        worker.execute_from_commandline()
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from connectors.simulator import SimulatorConnector

    bootstrap = _required_bootstrap(args, settings, "simulate")
    names = ensure_topics(bootstrap, settings.kafka)
    connector = SimulatorConnector.from_watchlist(
        bootstrap, names.raw, watchlist, days=args.days, seed=args.seed, target=args.target,
        speed=args.speed, invalid=args.invalid, invalid_topic=names.invalid,
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
    from pileon.evidence.archiver import Archiver

    bootstrap = _required_bootstrap(args, settings, "archive")
    names = ensure_topics(bootstrap, settings.kafka)
    archiver = Archiver(bootstrap, names, args.out)
    signal.signal(signal.SIGTERM, lambda *_: archiver.stop())
    try:
        archiver.run()
    except KeyboardInterrupt:
        archiver.stop()
    return 0


def cmd_notify(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    import threading

    from prometheus_client import start_http_server

    from pileon.alerting.notifier import Notifier
    from pileon.alerting.sinks import sinks_from_settings

    bootstrap = _required_bootstrap(args, settings, "notify")
    names = ensure_topics(bootstrap, settings.kafka)
    cfg = settings.alerting
    sinks = sinks_from_settings(cfg)
    if not sinks:
        raise ConfigError("notify needs a sink: set alerting.alertmanager_urls or "
                          "alerting.webhook_url")
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port, cfg.metrics_bind)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"pileon notify: {', '.join(s.name for s in sinks)}; metrics on "
          f"{cfg.metrics_bind}:{cfg.metrics_port}", flush=True)
    try:
        Notifier(bootstrap, names.alerts, cfg, sinks).run(stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.observability.generate import REPO, write

    written = write(args.root or REPO)
    print("\n".join(str(p) for p in written) or "up to date")
    return 0


def cmd_dashboards_push(
    args: argparse.Namespace, settings: Settings, watchlist: Watchlist
) -> int:
    import os

    from pileon.observability.generate import REPO
    from pileon.observability.push import push

    token = os.environ.get("GRAFANA_TOKEN")
    if args.token_file:
        token = args.token_file.read_text().strip()
    files = sorted((args.dir or REPO / "dashboards").glob("*.json"))
    if not files:
        raise ConfigError(f"no dashboards in {args.dir or REPO / 'dashboards'}")
    from grafana_client.client import GrafanaException

    try:
        pushed = push(args.grafana_url, token, files)
    except GrafanaException as exc:
        raise CommandError(f"Grafana at {args.grafana_url}: {exc}") from None
    print(f"pushed {', '.join(pushed.dashboards)} to folder 'pileon'"
          f"{' (created)' if pushed.folder_created else ''}")
    return 0


def cmd_score_csv(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.scorecsv import SeriesError, read_series, score, write

    try:
        rows = read_series(args.input)
    except (SeriesError, OSError) as exc:
        raise CommandError(str(exc)) from None
    n = write(score(rows, settings.detection), args.output)
    print(f"scored {n} rows into {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.demo import run_demo

    return run_demo(settings, watchlist, args)


def cmd_topics(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    bootstrap = _required_bootstrap(args, settings, "topics")
    names = ensure_topics(bootstrap, settings.kafka)
    print("\n".join(names.all()))
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.check import check

    report = check(_required_bootstrap(args, settings, "check"), settings)
    print("\n".join(report.lines), flush=True)
    return 1 if report.problems else 0


def cmd_verify(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.evidence import verify_bundle, verify_records
    from pileon.evidence.chain import EvidenceLog

    path: Path = args.path
    if (path / "manifest.json").exists():
        count = verify_bundle(path)
        print(f"OK: bundle {path}: {count} records, every file matches its SHA-256")
    elif path.is_file():
        count, head = verify_records(EvidenceLog(path.parent.parent).records(path.parent.name))
        print(f"OK: chain {path}: {count} records, head {head}")
    else:
        raise ChainError(f"{path}: neither a bundle folder nor a chain.jsonl file")
    return 0


def cmd_check_config(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    print(f"OK: settings valid; watchlist {settings.watchlist}: {len(watchlist.persons)} persons;"
          f" broker: {settings.kafka.bootstrap or 'embedded (none configured)'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pileon", description=__doc__)
    p.add_argument("--config", type=Path, help="YAML config file (or PILEON_CONFIG)")
    sub = p.add_subparsers(required=True, metavar="command")

    s = sub.add_parser("worker", help="run the stream worker (embedded broker if none set)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("simulate", help="send simulated mentions with a scripted pile-on")
    s.add_argument("--bootstrap")
    s.add_argument("--days", type=float, default=2.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--target", help="person key of the pile-on target (default: first)")
    s.add_argument("--speed", type=float, default=0.0,
                   help="event-time seconds per wall second; 0 sends as fast as possible")
    s.add_argument("--invalid", action="store_true", help="also send malformed messages")
    s.add_argument("--ground-truth", type=Path, help="write the ground truth JSON here")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("archive", help="keep evidence chains and incident bundles")
    s.add_argument("--bootstrap")
    s.add_argument("--out", type=Path, default=Path("pileon-evidence"))
    s.set_defaults(func=cmd_archive)

    s = sub.add_parser("notify", help="deliver alerts to Alertmanager and webhooks")
    s.add_argument("--bootstrap")
    s.set_defaults(func=cmd_notify)

    s = sub.add_parser("score-csv", help="run the detector over a timestamp,value count series")
    s.add_argument("input", type=Path)
    s.add_argument("--output", type=Path, required=True)
    s.set_defaults(func=cmd_score_csv)

    s = sub.add_parser("generate", help="write dashboards/*.json and prometheus rules")
    s.add_argument("--root", type=Path, help="repository root (default: this checkout)")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("dashboards", help="Grafana dashboards")
    dash = s.add_subparsers(required=True, metavar="action")
    s = dash.add_parser("push", help="create the folder and upload the dashboards")
    s.add_argument("--grafana-url", required=True)
    s.add_argument("--token-file", type=Path, help="API token file (default: $GRAFANA_TOKEN)")
    s.add_argument("--dir", type=Path, help="dashboard JSON directory (default: dashboards/)")
    s.set_defaults(func=cmd_dashboards_push)

    s = sub.add_parser("demo", help="broker, worker, simulated pile-on, alert and evidence")
    s.add_argument("--out", type=Path, default=Path("pileon-demo"))
    s.add_argument("--follow", action="store_true", help="keep running after the incident")
    s.add_argument("--timeout", type=float, default=180.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--days", type=float, default=2.0)
    s.set_defaults(func=cmd_demo)

    from pileon.connect import add_parser as add_connect

    add_connect(sub, _required_bootstrap)

    s = sub.add_parser("topics", help="create pileon's topics")
    s.add_argument("--bootstrap")
    s.set_defaults(func=cmd_topics)

    s = sub.add_parser("check", help="broker reachability, topics, partitions and worker lag")
    s.add_argument("--bootstrap")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("verify", help="verify an evidence bundle or chain file")
    s.add_argument("path", type=Path)
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("check-config", help="validate settings and watchlist, then exit")
    s.set_defaults(func=cmd_check_config)
    return p


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

