"""The chain heads the pages carried, on the incident page: kept from ``evidence.heads`` and
checked against the person's chain in the archive, so a chain rewritten after the page, cut
off, or broken before the page's record shows as not verifying."""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from pileon.console import open_database
from pileon.console.db import AuditEvent, ChainHeadRecord
from pileon.console.evidence import check_heads
from pileon.console.feed import record_head
from pileon.evidence.chain import GENESIS, EvidenceLog, canonical, record_hash
from pileon.schema.alert import AlertEvent
from pileon.schema.head import ChainHead
from tests.test_console.helpers import console_clients, console_settings, write_archive


def _head(event: AlertEvent, seq: int, hash_: str, **extra: Any) -> ChainHead:
    return ChainHead(incident_id=event.incident_id, idempotency_key=event.idempotency_key,
                     person=event.person, seq=seq, head_hash=hash_, at="2026-11-20T12:10:05Z",
                     **extra)


def _stored(event: AlertEvent, seq: int, hash_: str) -> ChainHeadRecord:
    head = _head(event, seq, hash_)
    return ChainHeadRecord(idempotency_key=head.idempotency_key, incident_id=head.incident_id,
                           person=head.person, seq=seq, head_hash=hash_,
                           read_at=datetime(2026, 11, 20, 12, 10, 5, tzinfo=UTC), sealed=False)


def _chain(root: Path) -> Path:
    return root / "chains" / "amara" / "chain.jsonl"


def _rewrite(path: Path, seq: int, text: str) -> None:
    """A forger's edit of record ``seq``'s text, with every hash after it recomputed: the
    chain still verifies on its own; only a head kept elsewhere tells."""
    records = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
    prev = GENESIS
    for r in records:
        if r["seq"] == seq:
            r["mention"]["text"] = text
            r["mention_sha256"] = hashlib.sha256(canonical(r["mention"])).hexdigest()
        r["prev"] = prev
        r["hash"] = record_hash(r)
        prev = r["hash"]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, AlertEvent, int, str]:
    root = tmp_path / "evidence"
    event = write_archive(root)
    seq, head = EvidenceLog(root / "chains").head("amara")
    return root, event, seq, head


def test_a_head_the_chain_still_has_matches(archive: tuple[Path, AlertEvent, int, str]) -> None:
    root, event, seq, head = archive
    [check] = check_heads(root, "amara", [_stored(event, seq, head)])
    assert check.ok is True and "matches" in check.text


def _in_place_edit(path: Path) -> None:
    """An edit of one record's text with no hash made again: the chain breaks there."""
    path.write_bytes(path.read_bytes().replace(b"resign now", b"have a nice day", 1))


def _cut_tail(path: Path) -> None:
    """The last three records removed after the page was sent."""
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-3]))


@pytest.mark.parametrize(("tamper", "said"), [
    (lambda path: _rewrite(path, 3, "an innocent message"), ["rewritten after the page"]),
    (_in_place_edit, ["DOES NOT VERIFY", "broken"]),
    (_cut_tail, ["cut off"]),
], ids=["rewritten-and-rehashed", "edited-in-place", "cut-off"])
def test_a_tampered_chain_does_not_verify(
    archive: tuple[Path, AlertEvent, int, str], tamper: Any, said: list[str]
) -> None:
    root, event, seq, head = archive
    tamper(_chain(root))
    [check] = check_heads(root, "amara", [_stored(event, seq, head)])
    assert check.ok is False and all(words in check.text for words in said)


def test_a_break_after_an_earlier_head_leaves_that_head_good(
    archive: tuple[Path, AlertEvent, int, str]
) -> None:
    root, event, seq, head = archive
    path = _chain(root)
    early = orjson.loads(path.read_bytes().splitlines()[2])  # record 3
    _in_place_edit(path)
    first = _stored(event, 3, early["hash"])
    first.idempotency_key += ":early"
    checks = check_heads(root, "amara", [first, _stored(event, seq, head)])
    assert checks[0].ok is True
    assert checks[1].ok is False and "broken after record 6" in checks[1].text


def test_an_unreadable_record_breaks_the_chain_after_the_one_before_it(
    archive: tuple[Path, AlertEvent, int, str]
) -> None:
    root, event, seq, head = archive
    path = _chain(root)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[9] = b"{not json\n"  # record 10
    path.write_bytes(b"".join(lines))
    [check] = check_heads(root, "amara", [_stored(event, seq, head)])
    assert check.ok is False and "broken after record 9" in check.text


def test_a_head_before_a_retention_trim_is_not_checkable_but_the_one_at_the_cut_is(
    archive: tuple[Path, AlertEvent, int, str]
) -> None:
    root, event, _, _ = archive
    log = EvidenceLog(root / "chains")
    records = list(log.records("amara"))
    log.trim("amara", lambda r: r["seq"] >= 6, "retention")
    old = _stored(event, 2, records[1]["hash"])
    at_cut = _stored(event, 5, records[4]["hash"])
    at_cut.idempotency_key += ":2"
    checks = check_heads(root, "amara", [old, at_cut])
    assert checks[0].ok is None and "trimmed by retention" in checks[0].text
    assert checks[1].ok is True


def test_no_chain_here_is_not_a_failure(tmp_path: Path) -> None:
    event = write_archive(tmp_path / "evidence")
    [check] = check_heads(tmp_path / "elsewhere", "amara", [_stored(event, 3, "a" * 64)])
    assert check.ok is None
    [check] = check_heads(tmp_path / "evidence", "../amara", [_stored(event, 3, "a" * 64)])
    assert check.ok is None


def test_heads_are_kept_once(tmp_path: Path) -> None:
    event = write_archive(tmp_path / "evidence")
    _, sm = open_database(console_settings(tmp_path).console)
    head = _head(event, 14, "b" * 64, checkpoint={"sig": "x"})
    with sm.begin() as db:
        assert record_head(db, head)
        assert not record_head(db, head)
    with sm() as db:
        [row] = db.scalars(select(ChainHeadRecord)).all()
        assert (row.seq, row.head_hash, row.sealed) == (14, "b" * 64, True)


def test_the_incident_page_shows_each_head_and_its_check(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    event = write_archive(root)
    seq, head = EvidenceLog(root / "chains").head("amara")
    with console_clients(tmp_path) as (sm, clients):
        page = clients["viewer"].get(f"/incidents/{event.incident_id}").text
        assert "No chain head has reached the console" in page
        assert "209.0 mentions (an opening needs 25)" in page  # what the opening rested on
        with sm.begin() as db:
            record_head(db, _head(event, seq, head))
        page = html.unescape(clients["viewer"].get(f"/incidents/{event.incident_id}").text)
        assert f"#{seq}" in page and head[:16] in page
        assert f"matches: nothing up to record {seq} has changed since the page" in page
        _rewrite(_chain(root), 2, "nothing to see")
        page = html.unescape(clients["viewer"].get(f"/incidents/{event.incident_id}").text)
        assert "the chain was rewritten after the page" in page
        with sm() as db:
            views = db.scalars(select(AuditEvent).where(
                AuditEvent.action == "view_incident")).all()
        assert views[-1].detail["heads_failed"] == 1
        assert clients["anonymous"].get(f"/incidents/{event.incident_id}").status_code in (
            302, 303, 401)


class TestAVerifiedPrefixIsNotVerifiedAgain:
    """A view after the first hashes the prefix an earlier view verified instead of checking
    it record by record, and verifies only what was appended since."""

    def test_records_appended_since_are_verified_onward(
        self, archive: tuple[Path, AlertEvent, int, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import pileon.console.evidence as ev

        monkeypatch.setattr(ev, "_INDEX_EVERY", 2)
        root, event, seq, head = archive
        path = _chain(root)
        records = [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]
        [check] = check_heads(root, "amara", [_stored(event, seq, head)])
        assert check.ok is True and ev._verified[path].seq == seq
        log = EvidenceLog(root / "chains")
        more = dict(records[-1]["mention"], id="bluesky:appended-1")
        log.append(more, {"topic": "t", "partition": 0, "offset": 99})
        new_seq, new_head = log.head("amara")
        middle = _stored(event, 3, records[2]["hash"])  # read from the prefix's index
        middle.idempotency_key += ":3"
        checks = check_heads(root, "amara", [middle, _stored(event, new_seq, new_head)])
        assert [c.ok for c in checks] == [True, True]
        assert ev._verified[path].seq == new_seq

    def test_a_same_length_edit_of_a_verified_record_is_still_found(
        self, archive: tuple[Path, AlertEvent, int, str]
    ) -> None:
        root, event, seq, head = archive
        path = _chain(root)
        [check] = check_heads(root, "amara", [_stored(event, seq, head)])
        assert check.ok is True
        data = path.read_bytes()
        edited = data.replace(b"resign now", b"resign NOW", 1)
        assert edited != data and len(edited) == len(data)
        path.write_bytes(edited)
        [check] = check_heads(root, "amara", [_stored(event, seq, head)])
        assert check.ok is False and "broken" in check.text

    def test_a_rewritten_and_rehashed_prefix_is_still_found(
        self, archive: tuple[Path, AlertEvent, int, str]
    ) -> None:
        root, event, seq, head = archive
        [check] = check_heads(root, "amara", [_stored(event, seq, head)])
        assert check.ok is True
        _rewrite(_chain(root), 2, "nothing to see")
        [check] = check_heads(root, "amara", [_stored(event, seq, head)])
        assert check.ok is False and "rewritten after the page" in check.text
