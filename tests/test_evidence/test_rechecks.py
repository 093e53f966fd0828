"""Deletions and edits, seen by looking again: a Bluesky post's signed record at its PDS and a
Mastodon status's ActivityPub object at its origin (loopback peers), 1 h, 24 h and 7 days
after the opening; each look an evidence event linked to the mention, never replacing it, in
the bundle and marked in the report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.evidence.anchors import Sealer, check_seal
from pileon.evidence.bundle import check_bundle, export_bundle
from pileon.evidence.chain import EvidenceLog
from pileon.evidence.platform import PlatformRecords
from pileon.evidence.rechecks import Rechecks
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention
from tests.peers.atproto_repo import LoopbackAtproto, Repo

DID = "did:plc:author00000000000000000"
OPENED = NOW.timestamp()
HOUR = 3600.0


class ActivityPubOrigin:
    """A Mastodon server's ActivityPub side for one status: 200 with a Note, or gone."""

    def __init__(self) -> None:
        self.note: dict[str, Any] | None = {"type": "Note", "content": "<p>you should quit</p>"}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = orjson.dumps(origin.note or {"error": "Gone"})
                self.send_response(200 if origin.note else 410)
                self.send_header("Content-Type", "application/activity+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}/users/troll/statuses/1"


@pytest.fixture
def peers() -> Iterator[tuple[LoopbackAtproto, ActivityPubOrigin]]:
    repo = Repo(DID)
    repo.post("3kbbb", "you are a fraud")
    origin = ActivityPubOrigin()
    with LoopbackAtproto() as atproto:
        atproto.repos[DID] = repo
        yield atproto, origin
    origin._server.shutdown()


def _mentions(origin: ActivityPubOrigin) -> list[dict[str, Any]]:
    return [
        mention(at=NOW + timedelta(minutes=1), text="you are a fraud", author_id=DID,
                id=f"bluesky:at://{DID}/app.bsky.feed.post/3kbbb"),
        mention(at=NOW + timedelta(minutes=2), text="you should quit", platform="mastodon",
                id=f"mastodon:{origin.uri}"),
    ]


def test_posts_are_looked_at_again_and_changes_recorded(
    peers: tuple[LoopbackAtproto, ActivityPubOrigin], tmp_path: Path
) -> None:
    atproto, origin = peers
    key = Ed25519PrivateKey.generate()
    rechecks = Rechecks(tmp_path, PlatformRecords(tmp_path / "p", plc_url=atproto.url),
                        Sealer(key))
    rechecks.schedule("amara-x", iso(NOW), _mentions(origin))
    assert rechecks.run_due(OPENED + 0.5 * HOUR) == []  # nothing due yet
    assert rechecks.run_due(OPENED + 1.1 * HOUR) == ["amara-x"]
    atproto.repos[DID].records.pop("3kbbb")  # the author deleted it
    origin.note = {"type": "Note", "content": "<p>you should go</p>",
                   "updated": "2026-11-01T14:00:00Z"}
    assert rechecks.run_due(OPENED + 25 * HOUR) == ["amara-x"]
    origin.note = None  # and then deleted it
    rechecks.run_due(OPENED + 200 * HOUR)
    assert not (tmp_path / "schedule" / "amara-x.json").exists()  # every look done
    events = [orjson.loads(x) for x in (tmp_path / "changes" / "amara.jsonl")
              .read_bytes().splitlines()]
    states = [(e["of"].split(":")[0], e["state"]) for e in events]
    assert states == [("bluesky", "unchanged"), ("mastodon", "unchanged"),
                      ("bluesky", "deleted"), ("mastodon", "edited"),
                      ("bluesky", "deleted"), ("mastodon", "deleted")]
    edited = events[3]
    assert "you should go" in edited["detail"] and edited["response"]["signed"] is False
    assert edited["response"]["headers"]["Content-Type"] == "application/activity+json"
    assert events[5]["detail"] == "its origin answers 410"
    for e in events:
        check_seal(e["seal"], key.public_key(), [], "change")


def test_the_bundle_and_report_carry_the_changes(
    peers: tuple[LoopbackAtproto, ActivityPubOrigin], tmp_path: Path
) -> None:
    atproto, origin = peers
    log, platform = _archived(atproto, origin, tmp_path)
    rechecks = Rechecks(tmp_path, platform)
    rechecks.schedule("amara-x", iso(NOW), _mentions(origin))
    origin.note = None
    rechecks.run_due(OPENED + 2 * HOUR)
    bundle = export_bundle(log, _events(), tmp_path / "incident", platform=platform,
                           changes=rechecks.log)
    changes = orjson.loads((bundle / "changes.json").read_bytes())["entries"]
    assert {c["state"] for c in changes} == {"unchanged", "deleted"}
    report = (bundle / "report.html").read_text()
    assert "DELETED (seen " in report and "its origin answers 410" in report
    assert check_bundle(bundle).records == 2  # and it is all derived again and verified


def test_a_mastodon_status_is_kept_as_its_origin_served_it_and_said_unsigned(
    peers: tuple[LoopbackAtproto, ActivityPubOrigin], tmp_path: Path
) -> None:
    atproto, origin = peers
    log, platform = _archived(atproto, origin, tmp_path)
    for r in log.records("amara"):
        platform.want(r["mention"])
    platform.drain(10)
    bundle = export_bundle(log, _events(), tmp_path / "incident", platform=platform)
    entries = orjson.loads((bundle / "platform.json").read_bytes())["entries"]
    [kept] = [e for e in entries if e.get("platform") == "mastodon"]
    assert kept["response"]["body"]["content"] == "<p>you should quit</p>"
    assert kept["response"]["headers"]["Content-Type"] == "application/activity+json"
    assert kept["status"].startswith("unsigned") and kept["fetched_at"]
    notes = check_bundle(bundle).notes
    assert "platform records: 1 verified" in notes
    assert "platform records: 1 Mastodon: unsigned" in notes
    assert "Mastodon, unsigned: its ActivityPub object" in (bundle / "report.html").read_text()


def _archived(atproto: LoopbackAtproto, origin: ActivityPubOrigin, tmp_path: Path
              ) -> tuple[EvidenceLog, PlatformRecords]:
    """The two posts in a chain, and the platform records store that reaches their origins."""
    log = EvidenceLog(tmp_path / "chains")
    for m in _mentions(origin):
        log.append(m, {"offset": 0})
    return log, PlatformRecords(tmp_path / "p", plc_url=atproto.url)


def _events() -> list[AlertEvent]:
    """The incident's opening, counting both posts."""
    data = alert_dict(opened=iso(NOW), at=iso(NOW + timedelta(minutes=10)))
    data["signals"]["near_duplicate_clusters"] = []
    data["signals"]["rate"]["mentions"] = 2
    return [AlertEvent.from_json(data)]
