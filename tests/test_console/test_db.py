"""The case database on SQLite and on a real PostgreSQL server: Alembic builds exactly the
models' schema, events are idempotent, and a new database is rebuilt from the archive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from pileon.console import auth
from pileon.console.db import AuditEvent, Base, Incident, Note, make_engine, migrate, now, sessions
from pileon.console.feed import load_archive, record_event
from tests.factories import alert_event
from tests.postgres import PostgresServer
from tests.test_console.helpers import write_archive


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'console.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    engine = make_engine(url)
    migrate(engine)
    yield engine
    if request.param == "postgresql":
        Base.metadata.drop_all(engine)
        with engine.begin() as c:
            c.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    migrate(engine)  # a second start changes nothing


def test_events_are_idempotent_and_update_the_incident(engine: Engine) -> None:
    sm = sessions(engine)
    opened = alert_event("amara", "opened", opened="2026-11-20T12:00:00Z")
    escalated = alert_event("amara", "escalated", "critical", opened="2026-11-20T12:00:00Z",
                            at="2026-11-20T12:20:00Z")
    resolved = alert_event("amara", "resolved", "critical", opened="2026-11-20T12:00:00Z",
                           at="2026-11-20T13:00:00Z")
    with sm.begin() as db:
        assert record_event(db, opened) and record_event(db, resolved)
        assert record_event(db, escalated)  # arriving out of order
        assert not record_event(db, opened)
    with sm() as db:
        incident = db.get(Incident, opened.incident_id)
        assert incident is not None
        assert incident.severity == "critical" and not incident.firing
        assert incident.last_at.isoformat() == "2026-11-20T13:00:00+00:00"


def test_case_data_round_trips_with_time_zones(engine: Engine) -> None:
    sm = sessions(engine)
    with sm.begin() as db:
        record_event(db, alert_event())
        user = auth.add_user(db, "ana", "responder", "a long password", ["amara"])
        db.add(Note(incident_id=alert_event().incident_id, author="ana", at=now(),
                    text="<b>ünïcode</b> ✓"))
        db.add(AuditEvent(at=now(), actor="ana", action="note", incident_id=None, person=None,
                          address="127.0.0.1", detail={"chars": 3}))
        user_id = user.id
    with sm() as db:
        note = db.scalar(select(Note))
        assert note is not None and note.text == "<b>ünïcode</b> ✓"
        assert note.at.tzinfo is not None
        reloaded = db.get(auth.User, user_id)
        assert reloaded is not None and reloaded.persons == ["amara"]
        assert auth.check_password(db, "ana", "a long password") is not None
        assert auth.check_password(db, "ana", "wrong") is None


def test_a_new_database_is_rebuilt_from_the_archive(engine: Engine, tmp_path: Path) -> None:
    event = write_archive(tmp_path / "evidence")
    sm = sessions(engine)
    assert load_archive(sm, tmp_path / "evidence") == 1
    assert load_archive(sm, tmp_path / "evidence") == 0
    with sm() as db:
        assert db.get(Incident, event.incident_id) is not None


def test_a_corrupt_archive_entry_is_skipped_with_a_line(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "incidents" / "x"
    bad.mkdir(parents=True)
    (bad / "incident.json").write_text("{not json")
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    assert load_archive(sessions(engine), tmp_path) == 0
    assert "archive x is not a list of alert events" in caplog.text
