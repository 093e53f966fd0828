from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.evidence.bundle import check_bundle, export_bundle, verify_bundle
from pileon.evidence.chain import ChainError, EvidenceLog
from pileon.schema.alert import AlertEvent
from tests.factories import NOW, alert_dict, iso, mention


def _event(reply_focus: dict[str, Any] | None = None) -> AlertEvent:
    event = alert_dict(opened=iso(NOW))
    event["signals"]["near_duplicate_clusters"] = []
    event["signals"]["rate"]["mentions"] = 10  # what the bundles below hold in that window
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


def _reseal(bundle: Path, **chain: Any) -> None:
    """What a forger without pileon's keys can do: recompute every hash and size in the
    manifest (and its own hash), in its canonical form."""
    from pileon.evidence.bundle import _manifest_hash

    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    for name, entry in manifest["files"].items():
        data = (bundle / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest["chain"].update(chain)
    manifest.pop("manifest_sha256")
    manifest["manifest_sha256"] = _manifest_hash(manifest)
    (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def _rerender(bundle: Path, records: list[dict[str, Any]]) -> None:
    """A forger who also derives the CSV and the report again from the records they keep."""
    from pileon.evidence.bundle import render

    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    events = [AlertEvent.from_json(e) for e in orjson.loads((bundle / "incident.json")
                                                           .read_bytes())]
    for name, data in render(events, records, manifest["derivation"]).items():
        (bundle / name).write_bytes(data)
    _reseal(bundle, records=len(records),
            first_seq=records[0]["seq"] if records else None,
            last_seq=records[-1]["seq"] if records else None,
            first_prev=records[0]["prev"] if records else None,
            head_hash=records[-1]["hash"] if records else None)


def _records(bundle: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (bundle / "mentions.jsonl").read_bytes().splitlines()]


class TestVerifyBundle:
    @pytest.mark.parametrize("name", ["mentions.jsonl", "mentions.csv", "report.html",
                                      "incident.json", "manifest.json"])
    def test_changed_file_is_detected(self, bundle: Path, name: str) -> None:
        path = bundle / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
        with pytest.raises(ChainError, match=name):
            verify_bundle(bundle)

    def test_an_emptied_mentions_file_is_caught_even_fully_re_derived(self, bundle: Path
                                                                      ) -> None:
        (bundle / "mentions.jsonl").write_bytes(b"")
        _reseal(bundle)
        with pytest.raises(ChainError, match="0 records where the manifest says 30"):
            verify_bundle(bundle)
        _rerender(bundle, [])
        with pytest.raises(ChainError, match=r"counted 10 mentions .* holds 0 there"):
            verify_bundle(bundle)

    @pytest.mark.parametrize(("name", "old", "new"), [
        ("report.html", b"looks coordinated", b"looks organic"),
        ("mentions.csv", b"HANDLE", b"someone.example"),
    ])
    def test_derived_files_are_bound_to_the_chain(self, bundle: Path, name: str, old: bytes,
                                                  new: bytes) -> None:
        path = bundle / name
        if old == b"HANDLE":
            old = _records(bundle)[0]["mention"]["author"]["handle"].encode()
        assert old in path.read_bytes()
        path.write_bytes(path.read_bytes().replace(old, new))
        _reseal(bundle)
        with pytest.raises(ChainError, match=f"{name}: does not match what the alert events"):
            verify_bundle(bundle)

    def test_an_author_changed_in_the_chain_is_caught(self, bundle: Path) -> None:
        path = bundle / "mentions.jsonl"
        handle = _records(bundle)[0]["mention"]["author"]["handle"].encode()
        path.write_bytes(path.read_bytes().replace(handle, b"someone.example", 1))
        _reseal(bundle)
        with pytest.raises(ChainError, match="content does not match its hash"):
            verify_bundle(bundle)

    def test_a_manifest_listing_no_files_is_refused(self, bundle: Path) -> None:
        manifest = orjson.loads((bundle / "manifest.json").read_bytes())
        manifest["files"] = {}
        (bundle / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        _reseal(bundle)
        with pytest.raises(ChainError, match="files must be exactly"):
            verify_bundle(bundle)

    def test_dropping_the_last_record_is_caught(self, bundle: Path) -> None:
        jsonl = bundle / "mentions.jsonl"
        jsonl.write_bytes(b"\n".join(jsonl.read_bytes().splitlines()[:-1]) + b"\n")
        _reseal(bundle, records=29)
        with pytest.raises(ChainError, match="does not end at the manifest's last sequence"):
            verify_bundle(bundle)

    @pytest.mark.parametrize(("damage", "message"), [
        (lambda b: (b / "report.html").unlink(), "report.html: missing"),
        (lambda b: (b / "manifest.json").write_bytes(b"{oops"), "manifest.json: not JSON"),
        (lambda b: (b / "manifest.json").write_bytes(b"[]"), "manifest.json: not a JSON object"),
        (lambda b: (b / "mentions.jsonl").write_bytes(b"not json\n"),
         "mentions.jsonl line 1: not JSON"),
        (lambda b: (b / "mentions.jsonl").write_bytes(b"[1]\n"),
         "mentions.jsonl line 1: not a chain record"),
        (lambda b: (b / "incident.json").write_bytes(b'[{"schema": "x"}]'),
         "incident.json: not pileon.alert/v1 events"),
    ])
    def test_every_failure_is_one_line_from_the_command(
        self, bundle: Path, damage: Any, message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        damage(bundle)
        if message.startswith(("mentions", "incident")):
            _reseal(bundle)  # past the hashes, to the parsing
        from pileon.cli.main import main

        assert main(["verify", str(bundle)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err

    def test_other_files_are_reported_not_trusted(self, bundle: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
        (bundle / "notes.txt").write_text("added by a lawyer")
        from pileon.cli.main import main

        assert main(["verify", str(bundle)]) == 0
        assert "  notes.txt: not part of the bundle (not checked)" in capsys.readouterr().out

    def test_a_bundle_of_the_old_format_is_checked_as_far_as_it_can_be(self, bundle: Path
                                                                       ) -> None:
        manifest = orjson.loads((bundle / "manifest.json").read_bytes())
        old = {"incident_id": manifest["incident_id"], "person": manifest["person"],
               "files": {n: e["sha256"] for n, e in manifest["files"].items()},
               "chain": {k: manifest["chain"][k] for k in ("records", "first_seq",
                                                           "first_prev", "head_hash")}}
        (bundle / "manifest.json").write_bytes(orjson.dumps(old))
        check = check_bundle(bundle)
        assert check.records == 30 and "format v1" in check.notes[0]


# -- any single change of a generated bundle is caught --------------------------------------

_MADE: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def _bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The generated bundle lives in pytest's own temporary tree for this module only (the
    tamper tests run hundreds of examples: nothing of theirs may outlive the run)."""
    _MADE["root"] = tmp_path_factory.mktemp("tamper")
    yield
    shutil.rmtree(_MADE.pop("root"), ignore_errors=True)
    _MADE.pop("bundle", None)


def _generated() -> Path:
    if "bundle" not in _MADE:
        root = _MADE["root"] / "generated"
        log = EvidenceLog(root / "chains")
        origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
        for minute in range(12):
            log.append(mention(at=NOW - timedelta(minutes=12 - minute),
                               text=f"=cmd|' /C calc'!A0 {minute} <b>x</b>"), origin)
        _MADE["bundle"] = export_bundle(log, [_event()], root / "incident")
    return _MADE["bundle"]


@contextmanager
def _fresh_copy() -> Iterator[Path]:
    """A copy of the generated bundle for one example, removed when the example ends."""
    with tempfile.TemporaryDirectory(prefix="pileon-tamper-", dir=_MADE["root"]) as scratch:
        target = Path(scratch) / "b"
        shutil.copytree(_generated(), target)
        yield target


NAMES = ["incident.json", "mentions.jsonl", "mentions.csv", "report.html", "manifest.json"]


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(NAMES), where=st.floats(0, 1, exclude_max=True),
       byte=st.integers(1, 255))
def test_any_byte_edit_is_caught(name: str, where: float, byte: int) -> None:
    with _fresh_copy() as bundle:
        path = bundle / name
        data = bytearray(path.read_bytes())
        data[int(where * len(data))] ^= byte
        path.write_bytes(bytes(data))
        with pytest.raises(ChainError):
            verify_bundle(bundle)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), keep=st.floats(0, 1, exclude_max=True))
def test_any_truncation_is_caught(name: str, keep: float) -> None:
    with _fresh_copy() as bundle:
        path = bundle / name
        data = path.read_bytes()
        path.write_bytes(data[:int(keep * len(data))])
        with pytest.raises(ChainError):
            verify_bundle(bundle)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), reseal=st.booleans())
def test_any_line_deleted_or_reordered_is_caught(data: st.DataObject, reseal: bool) -> None:
    with _fresh_copy() as bundle:
        path = bundle / "mentions.jsonl"
        lines = path.read_bytes().splitlines()
        i = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            del lines[i]
        else:
            j = data.draw(st.integers(0, len(lines) - 1).filter(lambda j: j != i))
            lines[i], lines[j] = lines[j], lines[i]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        if reseal:
            _reseal(bundle)
        with pytest.raises(ChainError):
            verify_bundle(bundle)


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(NAMES[:-1]))
def test_any_file_substituted_from_another_incident_is_caught(name: str) -> None:
    with _fresh_copy() as bundle, _fresh_copy() as other:
        root = other.parent
        log = EvidenceLog(root / "chains")
        origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
        for minute in range(12):
            log.append(mention(at=NOW - timedelta(minutes=12 - minute)), origin)
        earlier = alert_dict(opened=iso(NOW - timedelta(minutes=5)))
        earlier["signals"]["rate"]["mentions"] = 5
        export_bundle(log, [AlertEvent.from_json(earlier)], other)
        shutil.copy(other / name, bundle / name)
        _reseal(bundle)
        with pytest.raises(ChainError):
            verify_bundle(bundle)
