"""The connector contract (start, run until done or stopped, stop, checkpoint) and the shared
loop of connectors that stream from a platform and reconnect when it drops them."""

from __future__ import annotations

import logging
import random
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pileon.connectors.metrics import CONNECTOR_EVENTS, CONNECTOR_RECONNECTS
from pileon.connectors.publisher import Publisher
from pileon.core.retry import Backoff
from pileon.schema.change import ChangeEvent

log = logging.getLogger(__name__)


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


class SourceUnavailable(Exception):
    """The source can't be used at all (token refused, unreachable at start): stop, don't
    retry; the message says what to fix."""


class SourceClosed(Exception):
    """The platform closed or dropped the connection: reconnect from the last position."""


class RecentPosts:
    """The posts a connector published as mentions lately: a platform's own key for the post
    (an ``at://`` URI, a Mastodon status id) -> the (person, mention id, platform) it made.

    A deletion names only the post, so this says whose mention it was. Bounded (the oldest
    are forgotten first) and in memory: a deletion of a post published before a restart, or
    more than ``size`` posts ago, is seen only by the archiver's looks again.
    """

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._posts: OrderedDict[str, tuple[tuple[str, str, str], ...]] = OrderedDict()

    def add(self, key: str, mentions: list[dict[str, Any]]) -> None:
        self._posts[key] = tuple((str(m["person"]), str(m["id"]), str(m["platform"]))
                                 for m in mentions)
        self._posts.move_to_end(key)
        while len(self._posts) > self._size:
            self._posts.popitem(last=False)

    def get(self, key: str) -> tuple[tuple[str, str, str], ...]:
        return self._posts.get(key, ())

    def __len__(self) -> int:
        return len(self._posts)


class StreamingConnector(ABC):
    """Reads a platform stream, publishes matches, checkpoints, and reconnects with
    full-jitter exponential backoff until stopped. Subclasses implement :meth:`stream`, which
    reads until the connection ends and calls :meth:`emit` once per platform event."""

    name: str

    def __init__(self, publisher: Publisher, *, backoff: Backoff | None = None) -> None:
        self.publisher = publisher
        self.name = publisher.name
        self.position: Any = None
        self._committed: Any = None
        self._stopped = threading.Event()
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self.recent = RecentPosts()

    def start(self) -> None:
        resume = self.publisher.resume()
        self.position = self._committed = resume.position

    def run(self) -> int:
        attempt = 0
        try:
            while not self._stopped.is_set():
                try:
                    self.stream()
                    attempt = 0
                    if self.finite:
                        break
                except SourceClosed as exc:
                    if self._stopped.is_set():
                        break
                    delay = self._backoff.delay(attempt, self._rng)
                    attempt += 1
                    CONNECTOR_RECONNECTS.labels(self.name).inc()
                    log.warning("connector %s: %s; reconnecting in %.1fs", self.name, exc, delay)
                    self._stopped.wait(delay)
            self.commit()
        finally:
            self.close()
            self.publisher.close()
        return self.publisher.published

    def stop(self) -> None:
        """Safe from another thread: reads time out every ``idle_seconds`` and see the flag."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def checkpoint(self) -> dict[str, Any]:
        return {"position": self._committed}

    # For subclasses.

    finite = False  # True: the source ends (a file) and run() returns when it does

    @abstractmethod
    def stream(self) -> None:
        """Connect from :attr:`position` and read until the connection ends (raise
        :class:`SourceClosed`), the source ends, or :meth:`stop`."""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release the source's own clients (HTTP sessions) when :meth:`run` returns."""

    def read_frames(self, ws: Any, handle: Any, idle_seconds: float) -> None:
        """Hand every frame of WebSocket ``ws`` to ``handle`` until stopped; checkpoint when
        the source is idle for ``idle_seconds`` and a commit is due."""
        while not self.stopped:
            try:
                frame = ws.recv(timeout=idle_seconds)
            except TimeoutError:
                if self.publisher.due():
                    self.commit()
                continue
            handle(frame)

    def emit(self, mentions: list[dict[str, Any]], position: Any, post: str | None = None
             ) -> None:
        """Publish the mentions one platform event produced; ``position`` resumes after it.
        ``post`` is the platform's key for the post, remembered to link later deletions and
        edits of it to these mentions."""
        for mention in mentions:
            self.publisher.publish(mention)
        if post is not None and mentions:
            self.recent.add(post, mentions)
        self.position = position
        if self.publisher.due():
            self.commit()

    def emit_change(
        self, post: str, state: Literal["deleted", "edited"], source: str, raw: dict[str, Any],
        *, event_at: datetime | None = None, text: str | None = None,
    ) -> int:
        """Publish a deletion or edit of ``post`` for every mention it made (none if this
        connector did not publish it lately); returns how many."""
        made = self.recent.get(post)
        received = datetime.now(UTC)
        for person, mention_id, platform in made:
            self.publisher.publish_change(ChangeEvent.model_validate({
                "of": mention_id, "person": person, "platform": platform, "state": state,
                "source": source, "event_at": event_at, "received_at": received,
                "text": text, "raw": raw}))
        self.count(state if made else f"{state}_unknown_post")
        return len(made)

    def count(self, outcome: str) -> None:
        CONNECTOR_EVENTS.labels(self.name, outcome).inc()

    def commit(self) -> None:
        if self.position == self._committed and not self.publisher.pending:
            return  # nothing new since the last checkpoint
        self.publisher.commit(self.position)
        self._committed = self.position
