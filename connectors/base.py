"""The connector contract: start, run until done or stopped, stop, and report a checkpoint."""

from __future__ import annotations

from typing import Any, Protocol


class Connector(Protocol):
    name: str

    def start(self) -> None:
        """Connect to the source (and resume from the last checkpoint, if any)."""

    def run(self) -> int:
        """Publish mentions until the source ends or :meth:`stop` is called; return the count."""

    def stop(self) -> None:
        """Ask :meth:`run` to return soon; safe to call from another thread."""

    def checkpoint(self) -> dict[str, Any]:
        """Where to resume from: only positions whose mentions the broker acknowledged."""
