"""The chain head (``pileon.head/v1``): the evidence chain's head at one alert, as the
archiver publishes it to ``evidence.heads`` (keyed by person) once the alert's mentions are in
the chain. The notifier puts it in the page so that whoever is paged holds a copy of the head
hash; ``pileon verify --head SEQ:HASH`` checks a bundle or chain against it."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

HEAD_SCHEMA = "pileon.head/v1"


class ChainHead(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    schema_: Literal["pileon.head/v1"] = Field(default="pileon.head/v1", alias="schema")
    incident_id: str
    idempotency_key: str = Field(description="the alert transition this head is for")
    person: str
    seq: int = Field(ge=0, description="the chain's last record number")
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: str = Field(description="when the archiver read the head (UTC)")
    checkpoint: dict[str, Any] | None = Field(
        default=None, description="the archiver's sealed checkpoint of this head, if it signs")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> ChainHead:
        return cls.model_validate(orjson.loads(data))
