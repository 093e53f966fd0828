"""The change event (``pileon.change/v1``): a platform said a post it sent earlier was deleted
or edited.

Connectors publish one to ``mentions.changes`` (keyed by person) when a stream they read
carries a deletion or an edit of a post they published as a mention: Jetstream's ``delete``
and ``update`` commits, Mastodon's ``delete`` and ``status.update`` events. The evidence
archiver appends it to the person's change log, linked to the mention by ``of`` and never
replacing it: the chain keeps what was captured, the change log what happened to it since.
``raw`` is the platform's event as received (a delete carries no text; an edit carries the new
record or status).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

CHANGE_SCHEMA = "pileon.change/v1"


class ChangeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["pileon.change/v1"] = Field(default="pileon.change/v1", alias="schema")
    of: str = Field(min_length=1, max_length=2048, description="the mention's id")
    person: str = Field(min_length=1, max_length=128)
    platform: Literal["bluesky", "mastodon"]
    state: Literal["deleted", "edited"]
    source: str = Field(max_length=128, description="the stream and event that said so")
    event_at: AwareDatetime | None = Field(
        default=None, description="when the platform says the change happened")
    received_at: AwareDatetime = Field(description="when the connector received the event")
    text: str | None = Field(default=None, max_length=100_000,
                             description="an edit's new text (plain)")
    raw: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> ChangeEvent:
        return cls.model_validate(orjson.loads(data))

    def log_entry(self) -> dict[str, Any]:
        """The change-log line (the same shape as a look again: ``of``, ``seen_at``,
        ``look``, ``state``, ``detail``), with the platform's event kept."""
        when = _iso(self.event_at) if self.event_at else None
        if self.state == "deleted":
            detail = f"the platform's stream announced its deletion ({self.source})"
        else:
            detail = f"the platform's stream carried an edit ({self.source}); the text is " \
                     f"now: {self.text or ''}"
        entry: dict[str, Any] = {
            "of": self.of, "seen_at": _iso(self.received_at), "look": f"stream: {self.source}",
            "state": self.state, "detail": detail, "event": self.raw,
        }
        if when:
            entry["event_at"] = when
        return entry


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
