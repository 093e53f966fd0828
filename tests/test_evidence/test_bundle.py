from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pileon.evidence.bundle import export_bundle, verify_bundle
from pileon.evidence.chain import ChainError, EvidenceLog
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention


def _event(reply_focus: dict[str, Any] | None = None) -> AlertEvent:
    event = alert_dict(opened=iso(NOW))
    event["signals"]["near_duplicate_clusters"] = []
    if reply_focus is not None:
        event["signals"]["reply_focus"] = reply_focus
    return AlertEvent.from_json(event)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    log = EvidenceLog(tmp_path / "chains")
    origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
    log.append(mention(at=NOW - timedelta(hours=3)), origin)  # before the look-back
    for minute in range(30):
        log.append(mention(at=NOW - timedelta(minutes=30 - minute)), origin)
    return export_bundle(log, [_event()], tmp_path / "incident")


class TestExportBundle:
    def test_bundle_has_every_file_and_verifies(self, bundle: Path) -> None:
        names = {p.name for p in bundle.iterdir()}
        assert names == {"incident.json", "mentions.jsonl", "mentions.csv", "report.html",
                         "manifest.json"}
        assert verify_bundle(bundle) == 30

    def test_segment_starts_at_the_look_back(self, bundle: Path) -> None:
        manifest = orjson.loads((bundle / "manifest.json").read_bytes())
        assert manifest["chain"]["first_seq"] == 2

    def test_csv_has_the_fields_evidence_guides_ask_for(self, bundle: Path) -> None:
        rows = list(csv.DictReader((bundle / "mentions.csv").open()))
        assert len(rows) == 30
        for field in ("url", "post_id", "author_id", "author_handle", "created_at_utc",
                      "captured_at_utc", "mention_sha256"):
            assert rows[0][field]

    def test_report_is_self_contained_html_with_a_chart(self, bundle: Path) -> None:
        html = (bundle / "report.html").read_text()
        assert "<svg" in html
        assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
        assert "not a verdict" in html


    def test_report_resolves_the_post_a_surge_answers(self, tmp_path: Path) -> None:
        from pileon.schema.mention import post_key

        post = "at://did:plc:amara/app.bsky.feed.post/3kviral"
        log = EvidenceLog(tmp_path / "chains")
        origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
        for minute in range(10):
            log.append(mention(at=NOW - timedelta(minutes=10 - minute), matched_by="reply",
                               in_reply_to=post), origin)
        focus = {"post_key": f"{post_key(post):08x}", "mentions": 10, "share": 1.0,
                 "usual": 0.05, "score": 12.0, "counted": True}
        event = _event(reply_focus=focus)
        html = (export_bundle(log, [event], tmp_path / "incident") / "report.html").read_text()
        assert "answering one post" in html and post in html


class TestVerifyBundle:
    @pytest.mark.parametrize("name", ["mentions.jsonl", "mentions.csv", "report.html",
                                      "incident.json"])
    def test_changed_file_is_detected(self, bundle: Path, name: str) -> None:
        path = bundle / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
        with pytest.raises(ChainError, match=name):
            verify_bundle(bundle)

    def test_truncated_chain_with_forged_manifest_is_detected(self, bundle: Path) -> None:
        import hashlib

        jsonl = bundle / "mentions.jsonl"
        jsonl.write_bytes(b"\n".join(jsonl.read_bytes().splitlines()[:-1]) + b"\n")
        manifest = orjson.loads((bundle / "manifest.json").read_bytes())
        manifest["files"]["mentions.jsonl"] = hashlib.sha256(jsonl.read_bytes()).hexdigest()
        (bundle / "manifest.json").write_bytes(orjson.dumps(manifest))
        with pytest.raises(ChainError, match="head hash"):
            verify_bundle(bundle)
