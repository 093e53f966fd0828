"""Creating the moderation list on a Bluesky account, against a loopback PDS that checks the
XRPC calls' lexicon shapes: the list and an item per DID, more than 200 writes in several
calls, a wrong app password refused with nothing made, the password kept nowhere, and no call
to a service that is not configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pileon.console.bluesky import create_modlist
from pileon.console.db import AuditEvent
from pileon.console.evidence import MentionRow
from pileon.console.exports import bluesky_modlist
from tests.peers.pds import LoopbackPDS
from tests.test_console.helpers import console_clients, console_settings, csrf, write_archive

DID = "did:plc:newsroom0000000000000000"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture
def pds() -> Iterator[LoopbackPDS]:
    with LoopbackPDS("newsroom.bsky.example", DID, APP_PASSWORD) as peer:
        yield peer


@pytest.fixture
def env(tmp_path: Path, pds: LoopbackPDS) -> Iterator[dict[str, Any]]:
    event = write_archive(tmp_path / "evidence")
    settings = console_settings(tmp_path, bluesky_services=[pds.url])
    with console_clients(tmp_path, settings) as (sm, clients):
        client = clients["responder"]
        yield {"sm": sm, "client": client, "csrf": csrf(client), "id": event.incident_id,
               "clients": clients}


def _post(env: dict[str, Any], pds: LoopbackPDS, **fields: Any) -> Any:
    data = {"csrf": env["csrf"], "service": pds.url, "identifier": "@newsroom.bsky.example",
            "app_password": APP_PASSWORD, **fields}
    return env["client"].post(f"/incidents/{env['id']}/bluesky-list", data=data)


def test_the_list_is_made_on_the_account(env: dict[str, Any], pds: LoopbackPDS) -> None:
    response = _post(env, pds)
    assert response.status_code == 200, response.text[:500]
    lists = [u for u, r in pds.records.items() if r["$type"] == "app.bsky.graph.list"]
    assert len(lists) == 1 and lists[0].startswith(f"at://{DID}/app.bsky.graph.list/")
    items = [r for r in pds.records.values() if r["$type"] == "app.bsky.graph.listitem"]
    assert {i["subject"] for i in items} == {f"did:plc:copier{i}" for i in range(12)} | {
        "did:plc:hostile"}
    assert all(i["list"] == lists[0] for i in items)
    assert "13 accounts" in response.text and "1 accounts have no Bluesky DID" in response.text
    assert f"https://bsky.app/profile/{DID}/lists/" in response.text
    with env["sm"]() as db:
        [created] = db.scalars(select(AuditEvent).where(
            AuditEvent.action == "bluesky_list_created")).all()
    assert created.detail["list"] == lists[0] and created.detail["accounts"] == 13


def test_a_wrong_app_password_makes_nothing_and_is_kept_nowhere(
    env: dict[str, Any], pds: LoopbackPDS
) -> None:
    response = _post(env, pds, app_password="wrong-pass-word-here")
    assert response.status_code == 502
    assert "log-in: HTTP 401 AuthenticationRequired: Invalid identifier or password" in \
        response.text
    assert pds.records == {}
    with env["sm"]() as db:
        details = str([(e.action, e.detail) for e in db.scalars(select(AuditEvent))])
    assert "bluesky_list_failed" in details
    assert "wrong-pass-word-here" not in details and APP_PASSWORD not in details


def test_only_a_configured_service_is_called(env: dict[str, Any], pds: LoopbackPDS) -> None:
    response = _post(env, pds, service="http://127.0.0.1:9/elsewhere")
    assert response.status_code == 400 and pds.calls == []


def test_viewers_cannot(env: dict[str, Any], pds: LoopbackPDS) -> None:
    viewer = env["clients"]["viewer"]
    response = viewer.post(f"/incidents/{env['id']}/bluesky-list", data={
        "csrf": csrf(viewer), "service": pds.url, "identifier": "x", "app_password": "y"})
    assert response.status_code == 403 and pds.calls == []


def test_more_than_200_writes_go_in_several_calls(pds: LoopbackPDS) -> None:
    rows = [MentionRow(i, "h", "s", "2026-11-20T12:00:00Z", {
        "id": f"bluesky:p{i}", "platform": "bluesky", "created_at": "2026-11-20T12:00:00Z",
        "author": {"id": f"did:plc:author{i:04d}"}}) for i in range(250)]
    body, left = bluesky_modlist(rows, None, "pileon test", "test")
    created = create_modlist(pds.url, "newsroom.bsky.example", APP_PASSWORD, body)
    assert created.items == 250 and left == 0
    writes = [len(b["writes"]) for m, b in pds.calls if m == "com.atproto.repo.applyWrites"]
    assert writes == [200, 51]
    assert len(pds.records) == 251
