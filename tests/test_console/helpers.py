"""A console on a real archive (hash chains and a bundle written by pileon.evidence) and a
real database, driven through Starlette's TestClient over https (the session cookie is
Secure), with users of every role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from pileon.console import auth, open_database
from pileon.console.app import create_app
from pileon.console.feed import load_archive
from pileon.core.settings import Settings, load_settings
from pileon.evidence.bundle import export_bundle
from pileon.evidence.chain import EvidenceLog
from pileon.schema.alert import AlertEvent
from tests.factories import alert_dict, iso, mention

PASSWORD = "a long test password"
OPENED = "2026-11-20T12:00:00Z"
TEMPLATE = "you are a fraud and everyone knows it resign now before it gets worse"
HOSTILE = '<script>document.title="owned"</script><img src=x onerror=alert(1)> =HYPERLINK("x")'
USERS = {"admin": ("admin", None), "responder": ("responder", None),
         "viewer": ("viewer", None), "other": ("responder", ["sam"])}


def write_archive(root: Path, person: str = "amara", opened: str = OPENED) -> AlertEvent:
    """Mentions before and during a pile-on (copies of one template, a hostile text, a
    Mastodon and a Bluesky author), the opening alert, and its bundle."""
    log = EvidenceLog(root / "chains")
    start = datetime.fromisoformat(opened.replace("Z", "+00:00"))
    records = []
    for i in range(6):  # ordinary mentions in the hour before
        records.append(mention(person, at=start - timedelta(minutes=50 - i * 5)))
    first_copy = mention(person, at=start - timedelta(minutes=5), text=TEMPLATE,
                         author_id="did:plc:copier0", author_age_days=2)
    records.append(first_copy)
    for i in range(1, 12):
        records.append(mention(person, at=start + timedelta(seconds=20 * i),
                               text=TEMPLATE + (" !" * (i % 3)),
                               author_id=f"did:plc:copier{i}", author_age_days=1 + i % 4))
    records.append(mention(person, at=start + timedelta(minutes=5), text=HOSTILE,
                           author_id="did:plc:hostile"))
    records.append(mention(
        person, at=start + timedelta(minutes=6), text="@amara you should quit",
        platform="mastodon", id="mastodon:https://bad.example/statuses/1",
        url="https://bad.example/@troll/1",
        author={"id": "https://bad.example/users/troll", "handle": "troll",
                "created_at": iso(start - timedelta(days=3))}))
    for m in records:
        log.append(m, {"topic": "mentions.clean", "partition": 0, "offset": 0})
    data = alert_dict(person, opened=opened, at=iso(start + timedelta(minutes=10)))
    data["signals"]["near_duplicate_clusters"][0]["template_id"] = first_copy["id"]
    data["signals"]["rate"]["mentions"] = 13  # the copies, the hostile one, the Mastodon one
    data["evidence"]["from"] = iso(start - timedelta(minutes=10))
    event = AlertEvent.from_json(data)
    export_bundle(log, [event], root / "incidents" / event.incident_id)
    return event


def console_settings(tmp: Path, **console: Any) -> Settings:
    return load_settings(console={"data_dir": tmp / "console", "evidence_dir": tmp / "evidence",
                                  **console})


@contextmanager
def console_clients(tmp: Path, settings: Settings | None = None
                    ) -> Iterator[tuple[Any, dict[str, TestClient | None]]]:
    """(sessionmaker, {role name: logged-in client, "anonymous": client})."""
    settings = settings or console_settings(tmp)
    engine, sm = open_database(settings.console)
    with sm.begin() as db:
        for name, (role, persons) in USERS.items():
            auth.add_user(db, name, role, PASSWORD, persons)
    load_archive(sm, settings.console.evidence_dir)
    app = create_app(settings, sm)
    clients: dict[str, Any] = {}
    try:
        for name in [*USERS, "anonymous"]:
            client = TestClient(app, base_url="https://testserver", follow_redirects=False)
            if name != "anonymous":
                login(client, name)
            clients[name] = client
        yield sm, clients
    finally:
        engine.dispose()


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf": token, "next": "/incidents"})


def csrf(client: TestClient) -> str:
    page = client.get("/incidents")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
