"""``pileon evidence release|erase|expire``: legal holds, erasure requests and retention on an
archive (see :mod:`pileon.evidence.retention`). Each prints its receipt."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from pileon.cli.common import CommandError
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("evidence", help="legal holds, erasure and retention of the archive")
    actions = s.add_subparsers(dest="action", required=True, metavar="action")
    for name, help_ in (("release", "release an incident's legal hold (its bundle then "
                                    "expires with the retention period)"),
                        ("erase", "erase a person's chain and released bundles (held bundles "
                                  "are kept and listed)"),
                        ("expire", "apply the retention period now")):
        a = actions.add_parser(name, help=help_)
        a.add_argument("--archive", type=Path, default=Path("pileon-evidence"),
                       help="the archiver's folder (pileon archive --out)")
        if name == "release":
            a.add_argument("incident")
        if name == "erase":
            a.add_argument("person")
        if name != "expire":
            a.add_argument("--by", required=True, help="who asks (kept in the receipt)")
            a.add_argument("--reason", required=True, help="why (kept in the receipt)")
        a.set_defaults(func=cmd_evidence)


def cmd_evidence(args: argparse.Namespace, settings: Settings, watchlist: Watchlist) -> int:
    from pileon.evidence.anchors import sealer_from_settings
    from pileon.evidence.retention import request

    body: dict[str, object] = {"kind": args.action}
    if args.action == "release":
        body.update(incident_id=args.incident, by=args.by, reason=args.reason)
    elif args.action == "erase":
        if watchlist.get(args.person) is not None:
            print(f"note: {args.person} is still on the watchlist: new mentions will be kept "
                  "again; remove them from it to stop that")
        body.update(person=args.person, by=args.by, reason=args.reason)
    if not args.archive.is_dir():
        raise CommandError(f"evidence: {args.archive} is not an archive folder")
    try:
        receipt = request(args.archive, body, sealer_from_settings(settings.evidence),
                          settings.evidence.retention_days)
    except (ValueError, TimeoutError) as exc:
        raise CommandError(f"evidence {args.action}: {exc}") from None
    receipt.pop("seal", None)
    print(orjson.dumps(receipt, option=orjson.OPT_INDENT_2).decode())
    return 0
