"""The console's case database: incidents as the alerts topic tells them, and the case work
responders add (acknowledgement, assignee, notes, disposition, reports), users, sessions and
the audit log.

Mentions are not copied here: the evidence archive (hash chains and bundles) stays the one
place they are kept, and pages read them from there. Everything here but the case work can be
rebuilt from the ``alerts`` topic and the archive (:mod:`pileon.console.feed`); the case work
lives only here, so the database is backed up (README). SQLite in a file is the embedded
default, PostgreSQL the production one; the schema is created and upgraded by Alembic
(:func:`migrate`), never by ``create_all``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the console database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


ROLES = ("viewer", "responder", "admin")
CASE_STATUSES = ("new", "acknowledged", "resolved")
DISPOSITIONS = {
    "coordinated": "coordinated attack",
    "organic": "organic criticism",
    "not_harassment": "not harassment",
    "unsure": "unsure",
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))  # None: single sign-on only
    role: Mapped[str] = mapped_column(String(16))
    persons: Mapped[list[str] | None] = mapped_column(JSON)  # None: every protected person
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def sees(self, person: str) -> bool:
        return self.persons is None or person in self.persons

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class WebSession(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """Failed logins per key (``user:<name>`` or ``addr:<ip>``) in the current lockout window."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    person: Mapped[str] = mapped_column(String(63), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    firing: Mapped[bool] = mapped_column(Boolean)  # the detector's view: not yet resolved
    assessment: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[float] = mapped_column(Float)  # the highest of its transitions
    evidence_from: Mapped[datetime] = mapped_column(UTCDateTime)
    evidence_to: Mapped[datetime] = mapped_column(UTCDateTime)
    # Case work (the console's own; not rebuilt from Kafka):
    status: Mapped[str] = mapped_column(String(16), default="new")
    assignee: Mapped[str | None] = mapped_column(String(128))
    disposition: Mapped[str | None] = mapped_column(String(32))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertRecord(Base):
    """One ``pileon.alert/v1`` transition as it arrived (the JSON, kept verbatim)."""

    __tablename__ = "alert_events"

    idempotency_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    transition: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)


class Report(Base):
    """The incident was reported to a platform or to police, under a reference number."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # platform | police
    recipient: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Silence(Base):
    """An Alertmanager silence the console made when an incident was acknowledged."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    alertmanager: Mapped[str] = mapped_column(String(500))
    silence_id: Mapped[str] = mapped_column(String(100))
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Who did or saw what, when: every view of evidence, every export, every case action."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[str | None] = mapped_column(String(128), index=True)
    person: Mapped[str | None] = mapped_column(String(63))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ChainHeadRecord(Base):
    """The evidence chain's head at one alert (``pileon.head/v1`` from ``evidence.heads``): the
    record number and hash the page carried, which the incident page checks against the chain
    in the archive. No foreign key: a head can reach the console before its alert does."""

    __tablename__ = "chain_heads"

    idempotency_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(128), index=True)
    person: Mapped[str] = mapped_column(String(63))
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sealed: Mapped[bool] = mapped_column(Boolean)  # the archiver signed a checkpoint of it


class VerdictRecord(Base):
    """A responder's disposition waiting to reach the detector, or sent to it (an outbox): one
    per disposition set, and one more each time a ``coordinated`` incident goes on (its span
    grew). :class:`pileon.console.verdicts.VerdictSender` produces them to ``mentions.raw``."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    person: Mapped[str] = mapped_column(String(63))
    disposition: Mapped[str] = mapped_column(String(32))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class FeedOffset(Base):
    """How far the console has read the alerts and heads topics: kept with what it read, so a new
    database starts from the beginning and an old one resumes."""

    __tablename__ = "feed_offsets"

    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(Integer)


def now() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys and a write-ahead log."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the newest Alembic revision."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin list at every start
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def sessions(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
