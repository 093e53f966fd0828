"""``pileon connect jetstream|mastodon|webhook|replay``: run one connector against Kafka."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from pileon.cli.common import required_connection, serve_metrics
from pileon.connectors.base import Connector
from pileon.connectors.publisher import Publisher
from pileon.core.settings import ConfigError, Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.connection import ConnectionConfig

log = logging.getLogger("pileon")


def add_parser(sub: Any, kafka: argparse.ArgumentParser) -> None:
    """``pileon connect <platform>``; ``kafka`` is the shared ``--bootstrap`` parent."""
    p = sub.add_parser("connect", help="run a platform connector (Kafka required)")
    kinds = p.add_subparsers(required=True, metavar="platform")

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--name", help="checkpoint name (default: derived from the source)")
        s.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (0: off)")
        s.add_argument("--metrics-bind", default="127.0.0.1")
        s.set_defaults(func=cmd_connect)

    from pileon.connectors.bluesky import DEFAULT_APPVIEW, DEFAULT_URL

    s = kinds.add_parser("jetstream", help="Bluesky posts from a Jetstream instance")
    s.add_argument("--url", default=DEFAULT_URL, help="Jetstream /subscribe WebSocket URL")
    s.add_argument("--appview", default=DEFAULT_APPVIEW,
                   help="AppView for author account age ('' to skip lookups)")
    s.add_argument("--backfill-hours", type=float, default=0.0,
                   help="first start only: replay this many recent hours (Jetstream keeps ~1 day)")
    s.set_defaults(kind="jetstream")
    common(s)

    s = kinds.add_parser("mastodon", help="a Mastodon streaming watch with REST backfill")
    s.add_argument("--instance", required=True, help="https://instance.example")
    s.add_argument("--token-file", type=Path, required=True, help="file holding the token")
    s.add_argument("--watch", choices=["notifications", "hashtag", "public"],
                   default="notifications")
    s.add_argument("--person", help="notifications: the watchlist key the token belongs to")
    s.add_argument("--tag", help="hashtag: the tag, without #")
    s.add_argument("--backfill-hours", type=float, default=0.0,
                   help="first start only: fetch this many recent hours over REST")
    s.set_defaults(kind="mastodon")
    common(s)

    s = kinds.add_parser("webhook", help="HTTP ingest of mentions in pileon's schema")
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8088)
    s.add_argument("--public-url",
                   help="the URL clients use, for the OpenAPI description's servers "
                        "(default: http://BIND:PORT)")
    s.add_argument("--token-file", type=Path, required=True,
                   help="accepted bearer tokens, one per line")
    s.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    s.add_argument("--idempotency-hours", type=float, default=1.0)
    s.set_defaults(kind="webhook")
    common(s)

    s = kinds.add_parser("replay", help="replay a JSONL or CSV file of mentions")
    s.add_argument("path", type=Path)
    s.add_argument("--format", choices=["jsonl", "csv", "coordination"])
    s.add_argument("--speed", type=float, default=0.0,
                   help="event-time seconds per second (0: as fast as acknowledged)")
    s.add_argument("--person", help="coordination CSV: whom the file is about")
    s.add_argument("--platform", default="replay", help="coordination CSV: platform name")
    s.add_argument("--rebase", action="store_true", help="shift times so the last is now")
    s.set_defaults(kind="replay")
    common(s)


def cmd_connect(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.kafka.topics import ensure_checkpoints, ensure_topics

    connection = required_connection(args, settings, f"connect {args.kind}")
    names = ensure_topics(connection, settings.kafka)
    if args.metrics_port and args.kind == "webhook":
        from pileon.connectors.webhook import REGISTRY  # its own series (also on its /metrics)

        serve_metrics(args.metrics_bind, args.metrics_port, "--metrics-port", registry=REGISTRY)
    elif args.metrics_port:
        serve_metrics(args.metrics_bind, args.metrics_port, "--metrics-port")
    if args.kind == "webhook":
        return _webhook(args, settings, watchlist, connection, names.raw, names.invalid)
    checkpoints = ensure_checkpoints(connection, settings.kafka)
    connector = _build(args, watchlist, connection, names.raw, names.invalid, checkpoints,
                       names.changes)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: connector.stop())
    connector.start()
    print(f"pileon connect {args.kind}: publishing to {names.raw} as {connector.name}"
          f"{'' if not args.metrics_port else f'; metrics on :{args.metrics_port}'}",
          flush=True)
    count = connector.run()
    print(f"pileon connect {args.kind}: stopped after {count} mentions", flush=True)
    return 0


def _publisher(
    name: str, connection: ConnectionConfig, raw: str, invalid: str, checkpoints: str,
    changes: str | None = None,
) -> Publisher:
    from pileon.connectors.checkpoint import KafkaCheckpoints
    from pileon.connectors.producer import MentionProducer

    producer = MentionProducer(connection, raw, invalid_topic=invalid)
    store = KafkaCheckpoints(connection, checkpoints, producer)
    return Publisher(name, producer, store, connection=connection, changes_topic=changes)


def _build(
    args: argparse.Namespace, watchlist: Watchlist, connection: ConnectionConfig, raw: str,
    invalid: str, checkpoints: str, changes: str | None = None,
) -> Connector:
    from pileon.connectors.matching import WatchlistMatcher

    if args.kind == "jetstream":
        from pileon.connectors.bluesky import JetstreamConnector, ProfileLookup

        name = args.name or "jetstream"
        publisher = _publisher(name, connection, raw, invalid, checkpoints, changes)
        profiles = ProfileLookup(args.appview, connector=name) if args.appview else None
        return JetstreamConnector(publisher, WatchlistMatcher(watchlist, "bluesky"),
                                  url=args.url, profiles=profiles,
                                  backfill_hours=args.backfill_hours)
    if args.kind == "mastodon":
        from pileon.connectors.mastodon import MastodonConnector, Watch

        if args.watch == "notifications" and args.person not in watchlist:
            raise ConfigError("mastodon notifications need --person, a watchlist key")
        if args.watch == "hashtag" and not args.tag:
            raise ConfigError("mastodon hashtag watch needs --tag")
        watch = Watch(args.watch, person=args.person, tag=(args.tag or "").lstrip("#") or None)
        name = args.name or f"mastodon-{args.watch}-{args.person or args.tag or 'public'}"
        token = _read_secret(args.token_file)
        return MastodonConnector(
            _publisher(name, connection, raw, invalid, checkpoints, changes),
            WatchlistMatcher(watchlist, "mastodon"), instance=args.instance, token=token,
            watch=watch, backfill_hours=args.backfill_hours,
        )
    from pileon.connectors.replay import ReplayConnector

    name = args.name or f"replay-{args.path.stem}"
    if args.person is not None and args.person not in watchlist:
        raise ConfigError(f"--person {args.person!r} is not on the watchlist")
    try:
        return ReplayConnector(
            _publisher(name, connection, raw, invalid, checkpoints), args.path, fmt=args.format,
            speed=args.speed, person=args.person,
            matcher=WatchlistMatcher(watchlist, args.platform), platform=args.platform,
            rebase=args.rebase, invalid_topic=invalid,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"replay: {exc}") from None


def _webhook(
    args: argparse.Namespace, settings: Settings, watchlist: Watchlist,
    connection: ConnectionConfig, raw: str, invalid: str,
) -> int:
    from aiohttp import web

    from pileon.connectors.producer import MentionProducer
    from pileon.connectors.webhook import WebhookIngest

    tokens = [t.strip() for t in _read_secret(args.token_file).splitlines() if t.strip()]
    ingest = WebhookIngest(
        MentionProducer(connection, raw, invalid_topic=invalid), frozenset(watchlist.keys),
        tokens, ingest=settings.ingest, connection=connection, source=args.name or "webhook",
        max_body_bytes=args.max_body_bytes, idempotency_hours=args.idempotency_hours,
        public_url=args.public_url or f"http://{args.bind}:{args.port}",
    )
    recent = ingest.load_recent()
    print(f"pileon connect webhook: POST http://{args.bind}:{args.port}/v1/mentions "
          f"({len(tokens)} tokens; {recent} recent ids loaded)", flush=True)
    web.run_app(ingest.app(), host=args.bind, port=args.port, print=None,
                access_log=None)  # access logs would carry client addresses, not needed
    return 0


def _read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"{path} is empty")
    return text
