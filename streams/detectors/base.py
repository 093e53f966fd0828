"""The contract every detector keeps (after river's ``learn_one`` / ``score_one``).

A detector sees one closed event-time bin at a time, in order, and never looks ahead. Its score
is higher for more anomalous bins; deciding what is an incident is a separate step
(:mod:`streams.incidents`). State must be small and round-trip through ``to_state`` /
``from_state`` so it can live in a Faust table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Self


@dataclass(frozen=True, slots=True)
class BinObservation:
    """Mentions of one person in one closed bin ``[start, start + bin_seconds)``."""

    start: float
    count: int


class Detector(Protocol):
    def learn_one(self, x: BinObservation) -> None:
        """Update the baseline with a bin (call after :meth:`score_one` for that bin)."""

    def score_one(self, x: BinObservation) -> float:
        """How anomalous the bin is, ≥ 0; higher is more anomalous. Does not change state."""

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the detector's state."""

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        """Rebuild a detector from :meth:`to_state` output."""
