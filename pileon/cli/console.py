"""``pileon console``: serve the responders' console; ``pileon console add-user``: make a
local account (its password is generated and printed once, or read from a file)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from pileon.cli.common import CommandError
from pileon.core.settings import ConfigError, Settings
from pileon.core.watchlist import Watchlist


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               kafka: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "console", parents=[kafka], help="the responders' web console (incidents, case work, "
        "exports)", description="Serves the console on console.bind:console.port, fed by the "
        "alerts topic (--bootstrap or kafka.bootstrap) and the evidence archive "
        "(console.evidence_dir). `pileon console add-user NAME --role ROLE` makes an account.")
    s.set_defaults(func=cmd_console)
    actions = s.add_subparsers(dest="action", metavar="action")
    a = actions.add_parser("add-user", help="add a local account")
    a.add_argument("username")
    a.add_argument("--role", choices=("viewer", "responder", "admin"), required=True)
    a.add_argument("--persons", help="comma-separated person keys they may see (default: all)")
    a.add_argument("--password-file", type=Path,
                   help="read the password from this file (default: generate and print one)")
    a.set_defaults(func=cmd_add_user)


def cmd_console(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.console.server import ConsoleServer
    from pileon.kafka.connection import ConnectionConfig
    from pileon.kafka.topics import TopicNames

    bootstrap = getattr(args, "bootstrap", None) or settings.kafka.bootstrap
    connection = ConnectionConfig.from_settings(settings.kafka, bootstrap) if bootstrap else None
    names = TopicNames.from_settings(settings.kafka)
    server = ConsoleServer(settings, connection, names.alerts, heads_topic=names.heads,
                           raw_topic=names.raw)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.start()
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    source = f"alerts from {bootstrap}" if connection else "the archive only (no kafka.bootstrap)"
    print(f"pileon console on {server.url} ({source}; evidence from "
          f"{settings.console.evidence_dir})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_add_user(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    import secrets

    from pileon.console import auth, open_database

    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--password-file: {exc.strerror}") from None
        shown = None
    else:
        password = shown = secrets.token_urlsafe(15)
    persons = [p.strip() for p in (args.persons or "").split(",") if p.strip()] or None
    engine, sm = open_database(settings.console)
    try:
        with sm.begin() as db:
            auth.add_user(db, args.username, args.role, password, persons)
    except auth.UserError as exc:
        raise CommandError(str(exc)) from None
    finally:
        engine.dispose()
    print(f"user {args.username} ({args.role}) added"
          + (f"; password (shown once): {shown}" if shown else ""), flush=True)
    return 0
