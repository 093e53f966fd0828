"""The verdict (``pileon.verdict/v1``): a responder's disposition of an incident, for the detector.

The console produces one to ``mentions.raw`` (keyed by person, in the person's partition, with
the header ``pileon-schema: pileon.verdict/v1``) when a responder sets or changes an incident's
disposition. It travels with the person's mentions on purpose: the worker that holds the
person's state reads it in order with their mentions, under the same offset commits and state
changelog, and no topic, partition assignment or deployment setting is added for it.

What the worker does with it: an incident found to be a ``coordinated`` attack no longer counts
as one of the person's ordinary bursts in the calibration of their bars
(:meth:`pileon.streams.detection.detectors.rate.RateDetector.take_back`); any other disposition
counts it again, if an earlier verdict had taken it back. It carries no text, no handle and no
responder's name: only what the detector needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

VERDICT_SCHEMA = "pileon.verdict/v1"
HEADER = "pileon-schema"  # the Kafka header that marks a record of mentions.raw as a verdict

Disposition = Literal["coordinated", "organic", "not_harassment", "unsure"]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["pileon.verdict/v1"] = Field(default="pileon.verdict/v1", alias="schema")
    person: str = Field(min_length=1, max_length=128)
    incident_id: str = Field(min_length=1, max_length=256)
    disposition: Disposition
    start: AwareDatetime = Field(description="the incident's first window began")
    end: AwareDatetime = Field(description="its last transition")
    at: AwareDatetime = Field(description="when the responder gave it")

    @property
    def attack(self) -> bool:
        return self.disposition == "coordinated"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", by_alias=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> Verdict:
        return cls.model_validate(orjson.loads(data))

    @staticmethod
    def headers() -> list[tuple[str, bytes]]:
        return [(HEADER, VERDICT_SCHEMA.encode())]


def is_verdict(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a record of ``mentions.raw`` with these Kafka headers is a verdict."""
    return bool(headers) and any(
        k == HEADER and v == VERDICT_SCHEMA.encode() for k, v in headers or ())
