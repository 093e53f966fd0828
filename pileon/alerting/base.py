"""The alert-sink contract: one required method, ``deliver``; optional hooks are no-ops."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from pileon.alerting.notification import Notification


class DeliveryFailed(Exception):
    """The receiver did not take the notification now: it is retried with backoff (after
    ``retry_after`` seconds if the receiver said so) until ``alerting.max_retry_seconds``."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Rejected(Exception):
    """The receiver refused the notification for good (e.g. HTTP 400): not retried, counted
    as ``rejected`` and logged, since sending it again cannot succeed."""


class AlertSink(ABC):
    """Delivers notifications to one receiver. Called from a single delivery thread."""

    name: str = "sink"

    @abstractmethod
    def deliver(self, notification: Notification) -> None:
        """Deliver one incident transition, or raise DeliveryFailed / Rejected."""

    def refresh(self, open_incidents: Sequence[Notification]) -> None:  # noqa: B027
        """Re-announce incidents still open (receivers that expire alerts need it)."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""
