"""Bluesky through Jetstream: JSON commit events over a WebSocket, filtered to posts.

A post is a mention of a protected person when (in this order of precedence)

* a mention facet (``app.bsky.richtext.facet#mention``) names their DID → ``mention``;
* it replies to one of their posts, as parent or thread root → ``reply``;
* it quotes one of their posts (``app.bsky.embed.record``, or ``recordWithMedia``) → ``quote``;
* its text contains one of their aliases → ``keyword``.

Posts by the protected person themselves are not mentions of them. The event time is
Jetstream's ``time_us`` (when the network saw the post), not the client-set ``createdAt``,
which any client can backdate; both are kept in ``raw``.

Resume: the position is ``(time_us, events seen at that time_us)``; on reconnect or restart
Jetstream replays from ``cursor=time_us`` and the events already handled are skipped, so a
dropped connection loses nothing (within Jetstream's replay window, about a day). Author
account age comes from ``app.bsky.actor.getProfile`` on a public AppView, fetched only for
matched posts and cached (see :class:`ProfileLookup`).

Wire format: https://github.com/bluesky-social/jetstream (README, "Consuming Jetstream").
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from pileon.connectors.base import SourceClosed, StreamingConnector
from pileon.connectors.matching import Match, WatchlistMatcher, merge
from pileon.connectors.metrics import CONNECTOR_EVENT_TIME, CONNECTOR_LOOKUPS
from pileon.connectors.publisher import Publisher
from pileon.connectors.shapes import as_dict

log = logging.getLogger(__name__)

POST = "app.bsky.feed.post"
MENTION_FACET = "app.bsky.richtext.facet#mention"
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
DEFAULT_APPVIEW = "https://public.api.bsky.app"


class BadEvent(ValueError):
    """A frame that is not a usable Jetstream event (counted, never fatal)."""


class ProfileLookup:
    """Author profiles (account creation time, followers, handle) from an AppView, cached.

    Jetstream events carry no account age, so matched posts' authors are looked up with
    ``app.bsky.actor.getProfile``; a failure leaves the age unknown instead of holding the
    post back. The LRU cache holds ``size`` profiles for ``ttl`` seconds.
    """

    def __init__(
        self, base_url: str, *, connector: str, size: int = 50_000, ttl: float = 86_400.0,
        timeout: float = 3.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/xrpc/app.bsky.actor.getProfile"
        self._connector = connector
        self._size, self._ttl, self._timeout = size, ttl, timeout
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._session = requests.Session()
        # A stale pooled connection or a brief 5xx should not cost an author's age.
        retry = Retry(total=2, backoff_factor=0.1, status_forcelist=(429, 502, 503, 504),
                      respect_retry_after_header=False)
        self._session.mount("http://", HTTPAdapter(max_retries=retry))
        self._session.mount("https://", HTTPAdapter(max_retries=retry))

    def get(self, did: str) -> dict[str, Any]:
        hit = self._cache.get(did)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            self._cache.move_to_end(did)
            CONNECTOR_LOOKUPS.labels(self._connector, "hit").inc()
            return hit[1]
        profile = self._fetch(did)
        if profile is not None:
            self._cache[did] = (time.monotonic(), profile)
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return profile or {}

    def _fetch(self, did: str) -> dict[str, Any] | None:
        try:
            reply = self._session.get(self._url, params={"actor": did}, timeout=self._timeout)
            reply.raise_for_status()
            body = reply.json()
        except (requests.RequestException, ValueError) as exc:
            CONNECTOR_LOOKUPS.labels(self._connector, "failed").inc()
            log.debug("profile lookup failed: %s", exc)
            return None
        CONNECTOR_LOOKUPS.labels(self._connector, "fetched").inc()
        profile: dict[str, Any] = {}
        if isinstance(body.get("createdAt"), str):
            profile["created_at"] = body["createdAt"]
        if isinstance(body.get("followersCount"), int) and body["followersCount"] >= 0:
            profile["followers"] = body["followersCount"]
        if isinstance(body.get("handle"), str):
            profile["handle"] = body["handle"]
        return profile

    def close(self) -> None:
        self._session.close()


def did_of(uri: Any) -> str | None:
    """The repository DID of an ``at://did/collection/rkey`` URI."""
    if isinstance(uri, str) and uri.startswith("at://did:"):
        return uri[5:].split("/", 1)[0]
    return None


def quoted_uri(embed: Any) -> str | None:
    if not isinstance(embed, dict):
        return None
    kind = embed.get("$type")
    if kind == "app.bsky.embed.record":
        record = embed.get("record")
        return record.get("uri") if isinstance(record, dict) else None
    if kind == "app.bsky.embed.recordWithMedia":
        return quoted_uri(embed.get("record"))
    return None


class JetstreamMatcher:
    """Turns one Jetstream frame into the mentions it makes (usually none).

    Kept apart from the network code so the firehose benchmark measures exactly this.
    """

    def __init__(self, matcher: WatchlistMatcher) -> None:
        self.matcher = matcher

    def parse(self, frame: bytes | str) -> dict[str, Any]:
        try:
            event = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise BadEvent(f"not JSON ({exc.msg})") from None
        if not isinstance(event, dict) or not isinstance(event.get("time_us"), int):
            raise BadEvent("no integer time_us")
        return event

    def matches(self, event: dict[str, Any]) -> tuple[list[Match], dict[str, Any] | None]:
        """The persons a post event is about, and its record; ([], None) for other events."""
        commit = event.get("commit")
        if (
            event.get("kind") != "commit" or not isinstance(commit, dict)
            or commit.get("collection") != POST or commit.get("operation") != "create"
        ):
            return [], None
        record = commit.get("record")
        if not isinstance(record, dict) or not isinstance(event.get("did"), str):
            raise BadEvent("post commit without a record or author did")
        m = self.matcher
        groups = []  # strongest reason first; most posts have none of the three
        if "facets" in record:
            groups.append(m.accounts(_facet_dids(record["facets"]), "mention"))
        if "reply" in record:
            groups.append(m.accounts(_reply_dids(record["reply"]), "reply"))
        if "embed" in record:
            groups.append(m.accounts([did_of(quoted_uri(record["embed"]))], "quote"))
        text = record.get("text")
        groups.append(m.keywords(text) if isinstance(text, str) else [])
        found = merge(*groups) if len(groups) > 1 else groups[0]
        if not found:
            return found, record
        author = m.account(event["did"])
        return [x for x in found if x.person != author], record

    @staticmethod
    def change(event: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None] | None:
        """(post URI, "delete" or "update", the new record) of a post's delete or update
        commit; None for anything else."""
        commit = event.get("commit")
        if (event.get("kind") != "commit" or not isinstance(commit, dict)
                or commit.get("collection") != POST
                or commit.get("operation") not in ("delete", "update")):
            return None
        did, rkey = event.get("did"), commit.get("rkey")
        if not isinstance(did, str) or not isinstance(rkey, str) or not rkey:
            raise BadEvent(f"post {commit['operation']} without author did or rkey")
        record = commit.get("record")
        return (f"at://{did}/{POST}/{rkey}", str(commit["operation"]),
                record if isinstance(record, dict) else None)

    def mentions(
        self, event: dict[str, Any], profile: dict[str, Any] | None = None,
        received: datetime | None = None,
    ) -> list[dict[str, Any]]:
        found, record = self.matches(event)
        return self.build(event, record, found, profile, received)

    def build(
        self, event: dict[str, Any], record: dict[str, Any] | None, found: list[Match],
        profile: dict[str, Any] | None = None, received: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The mentions of a post event already matched by :meth:`matches`."""
        if not found or record is None:
            return []
        did, commit = event["did"], event["commit"]
        rkey = commit.get("rkey")
        if not isinstance(rkey, str) or not rkey:
            raise BadEvent("post commit without rkey")
        uri = f"at://{did}/{POST}/{rkey}"
        reply: dict[str, Any] = as_dict(record.get("reply"))
        parent: dict[str, Any] = as_dict(reply.get("parent"))
        langs = record.get("langs")
        author: dict[str, Any] = {"id": did, **(profile or {})}
        text = record.get("text")
        body: dict[str, Any] = {
            "id": f"bluesky:{uri}",
            "platform": "bluesky",
            "text": text if isinstance(text, str) else "",
            "url": f"https://bsky.app/profile/{did}/post/{rkey}",
            "created_at": _iso_us(event["time_us"]),
            "received_at": (received or datetime.now(UTC)).isoformat(),
            "author": author,
            "raw": event,
        }
        if isinstance(parent.get("uri"), str):
            body["in_reply_to"] = parent["uri"]
        if quote := quoted_uri(record.get("embed")):
            body["quote_of"] = quote
        if isinstance(langs, list) and langs and isinstance(langs[0], str):
            body["lang"] = langs[0][:35]
        return [{**body, "person": x.person, "matched_by": x.matched_by,
                 "matched_term": x.term[:512]} for x in found]


def _facet_dids(facets: Any) -> list[str | None]:
    dids: list[str | None] = []
    if isinstance(facets, list):
        for facet in facets:
            features = facet.get("features") if isinstance(facet, dict) else None
            for feature in features if isinstance(features, list) else ():
                if isinstance(feature, dict) and feature.get("$type") == MENTION_FACET:
                    dids.append(feature.get("did"))
    return dids


def _reply_dids(reply: Any) -> list[str | None]:
    if not isinstance(reply, dict):
        return []
    return [did_of(r.get("uri")) for r in (reply.get("parent"), reply.get("root"))
            if isinstance(r, dict)]


def _iso_us(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat()


class JetstreamConnector(StreamingConnector):
    """Publishes Bluesky posts that mention protected persons (see module docstring)."""

    def __init__(
        self, publisher: Publisher, matcher: WatchlistMatcher, *, url: str = DEFAULT_URL,
        profiles: ProfileLookup | None = None, idle_seconds: float = 1.0,
        backfill_hours: float = 0.0,
    ) -> None:
        super().__init__(publisher)
        self._backfill_hours = backfill_hours
        self._url = url
        self._jet = JetstreamMatcher(matcher)
        self._profiles = profiles
        self._idle = idle_seconds

    def start(self) -> None:
        super().start()
        if self.position is None and self._backfill_hours:  # first start: replay recent hours
            since = time.time() - self._backfill_hours * 3600
            self.position = {"time_us": int(since * 1e6), "seen": 0}

    def subscribe_url(self) -> str:
        query: dict[str, Any] = {"wantedCollections": POST}
        if self.position:
            query["cursor"] = self.position["time_us"]
        return f"{self._url}?{urlencode(query)}"

    def stream(self) -> None:
        self._reset_replay()
        try:
            with connect(self.subscribe_url(), open_timeout=10, max_size=2**21) as ws:
                log.info("connector %s connected to Jetstream (cursor %s)", self.name,
                         (self.position or {}).get("time_us", "live"))
                self.read_frames(ws, self.handle, self._idle)
        except (ConnectionClosed, OSError, InvalidHandshake, InvalidURI) as exc:
            raise SourceClosed(f"Jetstream connection ended ({exc.__class__.__name__})") from exc

    def handle(self, frame: bytes | str) -> None:
        try:
            event = self._jet.parse(frame)
            position = self._advance(event["time_us"])
            if position is None:
                return  # handled before the restart or reconnect
            change = self._jet.change(event)
            if change is not None:
                self._change(event, *change)
                self.emit([], position)
                return
            found, record = self._jet.matches(event)
            profile = None
            if found and self._profiles is not None:
                profile = self._profiles.get(event["did"])
            mentions = self._jet.build(event, record, found, profile)
        except (BadEvent, LookupError, TypeError, ValueError, AttributeError) as exc:
            # Unexpected shapes are the platform's problem, not a reason to stop reading.
            self.count("bad_frame")
            log.warning("connector %s: bad Jetstream frame skipped: %s: %s", self.name,
                        exc.__class__.__name__, exc)
            return
        self.count("matched" if mentions else "unmatched" if record is not None else "ignored")
        CONNECTOR_EVENT_TIME.labels(self.name).set(event["time_us"] / 1e6)
        self.emit(mentions, position, post=f"at://{event['did']}/{POST}/"
                  f"{event['commit']['rkey']}" if mentions else None)

    def _change(self, event: dict[str, Any], uri: str, operation: str,
                record: dict[str, Any] | None) -> None:
        """A deletion or an edit of a post published lately: evidence linked to it (Jetstream
        events are unsigned; the archiver's looks again ask the author's PDS)."""
        at = datetime.fromtimestamp(event["time_us"] / 1e6, UTC)
        if operation == "delete":
            self.emit_change(uri, "deleted", "jetstream delete commit", event, event_at=at)
            return
        text = (record or {}).get("text")
        self.emit_change(uri, "edited", "jetstream update commit", event, event_at=at,
                         text=text if isinstance(text, str) else "")

    def _advance(self, time_us: int) -> dict[str, int] | None:
        """The position after this event, or None if it was handled before (Jetstream replays
        from ``cursor`` inclusive, so events at the cursor's own time_us come again)."""
        if time_us < self._replay_from:
            return None
        if time_us == self._replay_from and self._replay_skip > 0:
            self._replay_skip -= 1
            return None
        here = self.position or {"time_us": 0, "seen": 0}
        if time_us < here["time_us"]:
            return here  # out of order (Jetstream's own order is by time_us): new, but the
            # position must not move back
        seen = here["seen"] + 1 if time_us == here["time_us"] else 1
        return {"time_us": time_us, "seen": seen}

    def close(self) -> None:
        if self._profiles is not None:
            self._profiles.close()

    def _reset_replay(self) -> None:
        here = self.position or {"time_us": 0, "seen": 0}
        self._replay_from, self._replay_skip = here["time_us"], here["seen"]
