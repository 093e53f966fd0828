"""The incident page shows what the bundle knows beyond the capture: a post's verified
platform signature, and a deletion seen later."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson

from pileon.evidence.bundle import export_bundle
from pileon.evidence.chain import EvidenceLog
from pileon.evidence.platform import PlatformRecords
from pileon.evidence.rechecks import Rechecks
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention
from tests.peers.atproto_repo import LoopbackAtproto, Repo
from tests.test_console.helpers import console_clients

DID = "did:plc:author00000000000000000"


def test_signed_and_deleted_posts_are_marked(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    log = EvidenceLog(evidence / "chains")
    posts = [mention(at=NOW + timedelta(minutes=i), text=f"post {i}", author_id=DID,
                     id=f"bluesky:at://{DID}/app.bsky.feed.post/3kaa{i}") for i in range(2)]
    for m in posts:
        log.append(m, {"offset": 0})
    repo = Repo(DID)
    for i in range(2):
        repo.post(f"3kaa{i}", f"post {i}")
    with LoopbackAtproto() as atproto:
        atproto.repos[DID] = repo
        platform = PlatformRecords(evidence / "platform", plc_url=atproto.url)
        for m in posts:
            platform.want(m)
        platform.drain(10)
        rechecks = Rechecks(evidence / "rechecks", platform)
        rechecks.schedule("x", iso(NOW), posts)
        repo.records.pop("3kaa1")
        rechecks.run_due(NOW.timestamp() + 7200)
    data = alert_dict(opened=iso(NOW), at=iso(NOW + timedelta(minutes=10)))
    data["signals"]["near_duplicate_clusters"] = []
    data["signals"]["rate"]["mentions"] = 2
    event = AlertEvent.from_json(data)
    export_bundle(log, [event], evidence / "incidents" / event.incident_id,
                  platform=platform, changes=rechecks.log)
    assert orjson.loads((evidence / "incidents" / event.incident_id / "changes.json")
                        .read_bytes())["entries"]
    with console_clients(tmp_path) as (_sm, clients):
        page = clients["viewer"].get(f"/incidents/{event.incident_id}").text
    assert page.count("signed ✓") == 2
    assert page.count("deleted (seen ") == 1
    assert "verified:" in page
