"""Retention with legal hold, and erasure: old chain records expire (the rest still
verifies, the cut logged and sealed), open incidents keep what they may export, bundles are
held until released and then expire, an erasure removes a person's chain and released
bundles but keeps held ones, every step leaves a receipt; a running archiver carries out the
command's request itself."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pileon.cli.main import main
from pileon.evidence import verify_bundle, verify_records
from pileon.evidence.anchors import Sealer, check_seal
from pileon.evidence.bundle import export_bundle
from pileon.evidence.chain import EvidenceLog
from pileon.evidence.retention import Retention, archive_lock, request
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention

DAY = 86400.0


def _archive(root: Path, captured_days_ago: list[float], person: str = "amara") -> EvidenceLog:
    log = EvidenceLog(root / "chains")
    now = time.time()
    for days in captured_days_ago:
        log.append(mention(person, at=NOW), {"offset": 0}, captured_at=now - days * DAY)
    return log


def _bundle(root: Path, log: EvidenceLog, person: str = "amara", resolved: bool = True) -> str:
    data = alert_dict(person, opened=iso(NOW))
    data["signals"]["near_duplicate_clusters"] = []
    data["signals"]["rate"]["mentions"] = 0
    events = [AlertEvent.from_json(data)]
    if resolved:
        events.append(AlertEvent.from_json(alert_dict(person, "resolved", opened=iso(NOW),
                                                      at=iso(NOW + timedelta(hours=1)))))
    export_bundle(log, events, root / "incidents" / events[0].incident_id)
    Retention(root, log).hold(events[0].incident_id)
    return events[0].incident_id


def test_old_records_expire_and_the_rest_still_verifies(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    log = _archive(tmp_path, [200, 150, 100, 50, 1, 0])
    receipt = Retention(tmp_path, log, Sealer(key), retention_days=90).expire()
    assert receipt["trimmed"] == {"amara": 3}
    records = list(log.records("amara"))
    assert [r["seq"] for r in records] == [4, 5, 6]
    first_seq, first_prev = log.start("amara")
    assert verify_records(records, first_prev, first_seq) == (3, records[-1]["hash"])
    trims = [orjson.loads(x) for x in (tmp_path / "chains" / "amara" / "trims.jsonl")
             .read_bytes().splitlines()]
    assert trims[0]["removed_seq"] == [1, 3] and trims[0]["reason"] == "retention"
    check_seal(trims[0]["seal"], key.public_key(), [], "trim")
    # the chain goes on after the cut, and after a restart too
    log.append(mention("amara", at=NOW), {"offset": 0})
    again = EvidenceLog(tmp_path / "chains")
    again.append(mention("amara", at=NOW), {"offset": 0})
    assert [r["seq"] for r in again.records("amara")][-2:] == [7, 8]
    assert main(["verify", str(tmp_path / "chains" / "amara" / "chain.jsonl")]) == 0


@pytest.mark.parametrize(("still_open", "kept"), [(True, [3, 4]), (False, [4])])
def test_an_open_incident_keeps_what_it_may_export(tmp_path: Path, still_open: bool,
                                                   kept: list[int]) -> None:
    """The incident opened at NOW (2026-11-01, weeks ago) and may be exported again while it
    is open, from an hour before that: records captured since stay past the retention."""
    assert (time.time() - NOW.timestamp()) / DAY > 20
    log = _archive(tmp_path, [200, 150, 20, 5])
    _bundle(tmp_path, log, resolved=not still_open)
    Retention(tmp_path, log, retention_days=10).expire()
    assert [r["seq"] for r in log.records("amara")] == kept


def test_bundles_are_held_until_released_then_expire(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    log = _archive(tmp_path, [1, 0])
    incident = _bundle(tmp_path, log)
    retention = Retention(tmp_path, log, retention_days=1)
    assert retention.expire()["deleted_bundles"] == []  # held, however old
    assert main(["evidence", "release", incident, "--archive", str(tmp_path), "--by", "ana",
                 "--reason", "case closed"]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["kind"] == "release" and printed["hold"]["released_by"] == "ana"
    assert retention.expire()["deleted_bundles"] == [incident]  # its last transition: 2026-11
    assert not (tmp_path / "incidents" / incident).exists()
    receipts = sorted(p.name for p in (tmp_path / "receipts").iterdir())
    assert any("release" in n for n in receipts) and any("expiry" in n for n in receipts)


def test_erasure_keeps_held_bundles_and_says_so(tmp_path: Path) -> None:
    log = _archive(tmp_path, [2, 1, 0])
    _archive(tmp_path, [1], person="sam")
    held = _bundle(tmp_path, log)
    receipt = Retention(tmp_path, log).erase("amara", "ana", "the person asked")
    assert receipt["chain_records_removed"] == 3 and receipt["held_bundles_kept"] == [held]
    assert list(log.records("amara")) == []
    assert verify_bundle(tmp_path / "incidents" / held) == 3  # the held copy is intact
    assert len(list(EvidenceLog(tmp_path / "chains").records("sam"))) == 1  # others untouched


def test_an_unknown_incident_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    _archive(tmp_path, [0])
    assert main(["evidence", "release", "nope", "--archive", str(tmp_path), "--by", "a",
                 "--reason", "b"]) == 2
    assert capsys.readouterr().err == \
        "pileon: evidence release: incident nope: no bundle in this archive\n"


def test_a_running_archiver_carries_out_the_request(tmp_path: Path) -> None:
    log = _archive(tmp_path, [0])
    incident = _bundle(tmp_path, log)
    retention = Retention(tmp_path, log)
    stop = threading.Event()
    receipts: list[dict[str, Any]] = []

    def archiver() -> None:  # what Archiver.run does with the lock and its loop
        with archive_lock(tmp_path) as mine:
            assert mine
            while not stop.is_set():
                retention.handle_requests()
                time.sleep(0.05)

    thread = threading.Thread(target=archiver)
    thread.start()
    try:
        time.sleep(0.2)
        receipts.append(request(tmp_path, {"kind": "release", "incident_id": incident,
                                           "by": "ana", "reason": "done"}, timeout=10))
    finally:
        stop.set()
        thread.join()
    assert receipts[0]["hold"]["released_by"] == "ana"
    assert not list((tmp_path / "requests").iterdir())


def test_changes_expire_with_their_mentions_and_go_with_an_erasure(tmp_path: Path) -> None:
    log = _archive(tmp_path, [0])
    held = _bundle(tmp_path, log)  # its mention's changes stay while it is held
    in_bundle = orjson.loads((tmp_path / "incidents" / held / "mentions.jsonl").read_bytes()
                             .splitlines()[0])["mention"]["id"]
    retention = Retention(tmp_path, log, retention_days=90)
    old = iso(NOW - timedelta(days=400))
    for of, seen in [(in_bundle, old), ("bluesky:at://x/old", old),
                     ("bluesky:at://x/new", iso(NOW + timedelta(days=3650)))]:
        retention.changes.append("amara", {"of": of, "seen_at": seen, "look": "stream: test",
                                           "state": "deleted", "detail": "", "event": {}})
    retention.changes.append("sam", {"of": "s", "seen_at": old, "look": "1 h", "state":
                                     "unchanged", "detail": ""})
    receipt = retention.expire()
    assert receipt["changes_dropped"] == {"amara": 1, "sam": 1}
    kept = retention.changes.changes("amara", {in_bundle, "bluesky:at://x/old",
                                               "bluesky:at://x/new"})
    assert [c["of"] for c in kept] == [in_bundle, "bluesky:at://x/new"]
    receipt = retention.erase("amara", "ana", "the person asked")
    assert receipt["changes_removed"] == 2
    assert retention.changes.changes("amara", {in_bundle}) == []
