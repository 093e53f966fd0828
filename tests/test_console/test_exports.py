"""Exports: Mastodon's import CSV, a Bluesky moderation list, the police CSV and the bundle
zip, checked by reading the files back; CSV cells are safe against formula injection."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pileon.console.exports import MASTODON_HEADERS, safe_cell
from pileon.evidence import verify_bundle
from tests.test_console.helpers import HOSTILE, TEMPLATE, console_clients, csrf, write_archive


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("exports")
    event = write_archive(tmp / "evidence")
    with console_clients(tmp) as (_sm, clients):
        client = clients["responder"]
        yield {"client": client, "csrf": csrf(client), "id": event.incident_id, "tmp": tmp}


def _export(env: dict[str, Any], kind: str, authors: list[str] | None = None) -> Any:
    data: dict[str, Any] = {"csrf": env["csrf"]}
    if authors:
        data["author"] = authors
    response = env["client"].post(f"/incidents/{env['id']}/export/{kind}", data=data)
    assert response.status_code == 200, response.text[:300]
    assert "attachment" in response.headers["content-disposition"]
    return response


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", " =1",
                                   "＝1", HOSTILE[-16:]])
def test_formula_like_cells_are_defused(value: str) -> None:
    assert safe_cell(value).startswith("'")


@given(st.text())
def test_no_cell_starts_a_formula(text: str) -> None:
    cell = safe_cell(text)
    assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (text, "'" + text)


def test_mastodon_block_list_is_what_mastodon_imports(env: dict[str, Any]) -> None:
    body = _export(env, "mastodon-blocks").text
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == MASTODON_HEADERS["blocks"] == ["Account address"]
    # the local acct "troll" gets its server from the account URI
    assert rows[1:] == [["troll@bad.example"]]


def test_mastodon_mute_list_has_its_columns(env: dict[str, Any]) -> None:
    rows = list(csv.reader(io.StringIO(_export(env, "mastodon-mutes").text)))
    assert rows == [["Account address", "Hide notifications"], ["troll@bad.example", "true"]]


def test_bluesky_modlist_records(env: dict[str, Any]) -> None:
    data = orjson.loads(_export(env, "bluesky-modlist").content)
    first, *items = data["writes"]
    assert first["collection"] == "app.bsky.graph.list"
    assert first["value"]["purpose"] == "app.bsky.graph.defs#modlist"
    assert len(first["value"]["name"]) <= 64 and re.fullmatch(r"[2-7a-z]{13}", first["rkey"])
    subjects = {i["value"]["subject"] for i in items}
    assert "did:plc:hostile" in subjects
    assert {f"did:plc:copier{i}" for i in range(1, 12)} <= subjects
    list_uri = f"at://{data['repo']}/app.bsky.graph.list/{first['rkey']}"
    assert all(i["value"]["list"] == list_uri and i["value"]["$type"] ==
               "app.bsky.graph.listitem" for i in items)


def test_a_selection_of_authors_exports_only_those(env: dict[str, Any]) -> None:
    data = orjson.loads(_export(env, "bluesky-modlist", ["did:plc:copier3"]).content)
    assert [w["value"]["subject"] for w in data["writes"][1:]] == ["did:plc:copier3"]
    rows = list(csv.DictReader(io.StringIO(_export(env, "police-csv", ["did:plc:copier3"]).text)))
    assert {r["author_id"] for r in rows} == {"did:plc:copier3"}


def test_police_csv_has_every_mention_with_text_and_is_safe(env: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(env, "police-csv").text)))
    assert len(rows) == 14  # the copies, the hostile one and the Mastodon one: not the hour before
    hostile = next(r for r in rows if r["author_id"] == "did:plc:hostile")
    assert hostile["text"] == HOSTILE  # starts with '<': kept as it is
    assert hostile["url"].startswith("https://") and len(hostile["mention_sha256"]) == 64
    assert all(r["created_at_utc"] and r["captured_at_utc"] and r["record_hash"] for r in rows)
    copies = [r for r in rows if r["text"].startswith(TEMPLATE)]
    assert len(copies) == 12 and all(r["near_duplicate_of"] for r in copies)
    mastodon = next(r for r in rows if r["platform"] == "mastodon")
    assert mastodon["text"] == "'@amara you should quit"  # would be a formula in a spreadsheet


def test_bundle_download_verifies(env: dict[str, Any], tmp_path: Path) -> None:
    archive = zipfile.ZipFile(io.BytesIO(_export(env, "bundle").content))
    archive.extractall(tmp_path)
    [folder] = list(tmp_path.iterdir())
    assert verify_bundle(folder) == 20
