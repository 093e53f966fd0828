"""The mention schema, validated at the edge of the pipeline.

Anything that is not a valid mention of a watched person raises :class:`InvalidMention` with a
stable ``reason`` (used as a metric label and in the dead letter) and a human ``detail``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pileon.schema.verdict import Verdict


class Reason(StrEnum):
    """Why a message was dead-lettered. Values are metric label values: keep them stable."""

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    UNKNOWN_PERSON = "unknown_person"
    KEY_MISMATCH = "key_mismatch"
    FROM_FUTURE = "from_future"
    TOO_OLD = "too_old"
    PROCESSING_ERROR = "processing_error"


class InvalidMention(Exception):
    """The message is not a valid mention: it goes to the dead-letter topic, never dropped."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Author(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=512, description="immutable platform id")
    handle: str | None = Field(default=None, max_length=512)
    created_at: datetime | None = None
    followers: int | None = Field(default=None, ge=0)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return _require_aware(v) if v is not None else None


class Mention(BaseModel):
    """One post that mentions a protected person (see DESIGN.md, data model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_-]+:\S{1,512}$", description="platform:native_id")
    platform: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    person: str = Field(min_length=1, max_length=63)
    matched_by: Literal["mention", "reply", "quote", "keyword"]
    matched_term: str | None = Field(
        default=None, max_length=512,
        description="what matched: the person's handle or id, or the alias found in the text",
    )
    author: Author
    text: str = Field(max_length=100_000)
    url: str | None = Field(default=None, max_length=4096)
    created_at: datetime
    received_at: datetime | None = None
    in_reply_to: str | None = None
    quote_of: str | None = None
    lang: str | None = Field(default=None, max_length=35)
    media: list[str] = Field(default_factory=list)
    raw: dict[str, Any] | None = None

    @field_validator("created_at", "received_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return _require_aware(v) if v is not None else None

    @property
    def event_time(self) -> float:
        """Event time in seconds since the epoch (UTC)."""
        return self.created_at.timestamp()

    @property
    def answers(self) -> str | None:
        """The post this mention replies to or quotes, if any."""
        return self.in_reply_to or self.quote_of

    def author_age_days(self) -> float | None:
        """How old the author's account was when they posted, if the platform says."""
        if self.author.created_at is None:
            return None
        return (self.created_at - self.author.created_at).total_seconds() / 86400.0

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def post_key(post: str) -> int:
    """A stable, opaque 30-bit key for a post URI: kept in every window record (14 bytes, not
    70) and the only name alerts give a post (its URI can hold another account's id; the
    evidence bundle resolves the key from its mentions)."""
    return int.from_bytes(hashlib.blake2b(post.encode(), digest_size=4).digest(), "big") >> 2


def _require_aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("timestamp needs a timezone (use UTC, e.g. 2026-01-01T12:00:00Z)")
    return v.astimezone(UTC)


class MentionValidator:
    """Turns raw bytes from ``mentions.raw`` into a :class:`Mention`, or says why not."""

    def __init__(
        self,
        persons: frozenset[str],
        *,
        max_bytes: int,
        max_age: timedelta,
        max_future: timedelta,
    ) -> None:
        self._persons = persons
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._max_future = max_future

    def validate(self, value: bytes | None, key: bytes | None, now: datetime) -> Mention:
        data = self._decode(value)
        try:
            mention = Mention.model_validate(data)
        except ValidationError as exc:
            raise InvalidMention(Reason.SCHEMA, _first_error(exc)) from None
        if mention.person not in self._persons:
            raise InvalidMention(Reason.UNKNOWN_PERSON, "person is not on the watchlist")
        if key is not None and key != mention.person.encode():
            raise InvalidMention(Reason.KEY_MISMATCH, "message key is not the mention's person")
        if mention.created_at > now + self._max_future:
            raise InvalidMention(Reason.FROM_FUTURE, f"created_at is after {now:%Y-%m-%dT%H:%M}Z")
        if mention.created_at < now - self._max_age:
            raise InvalidMention(Reason.TOO_OLD, f"created_at is older than {self._max_age.days}d")
        return mention

    def validate_verdict(self, value: bytes | None, key: bytes | None) -> Verdict:
        """A record of ``mentions.raw`` marked as a verdict (:mod:`pileon.schema.verdict`),
        refused for the same reasons as a mention, each detail saying it was a verdict."""
        data = self._decode(value)
        try:
            verdict = Verdict.model_validate(data)
        except ValidationError as exc:
            raise InvalidMention(Reason.SCHEMA, f"verdict: {_first_error(exc)}") from None
        if verdict.person not in self._persons:
            raise InvalidMention(Reason.UNKNOWN_PERSON, "verdict: person is not on the watchlist")
        if key is not None and key != verdict.person.encode():
            raise InvalidMention(Reason.KEY_MISMATCH,
                                 "verdict: message key is not the verdict's person")
        return verdict

    def _decode(self, value: bytes | None) -> Any:
        if value is None:
            raise InvalidMention(Reason.NOT_JSON, "empty message (tombstone)")
        if len(value) > self._max_bytes:
            raise InvalidMention(
                Reason.TOO_LARGE, f"{len(value)} bytes, limit {self._max_bytes}"
            )
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMention(Reason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidMention(Reason.NOT_JSON, str(exc)[:200]) from None
        if not isinstance(data, dict):
            got = type(data).__name__
            raise InvalidMention(Reason.SCHEMA, f"expected a JSON object, got {got}")
        return data


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "<root>"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{field}: {err['msg']}{more}"
