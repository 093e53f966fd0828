"""Mastodon through its streaming API, with a REST backfill of every gap.

One connector follows one *watch* on one instance:

* ``notifications`` (``stream=user:notification``, with a protected person's own token):
  their mentions, replies and quotes, the main way a pile-on reaches them;
* ``hashtag`` (``stream=hashtag&tag=…``) and ``public`` (``stream=public``): statuses matched
  against the watchlist (mentioned accounts, replied-to account, quoted account, aliases).

Framing: each WebSocket message is ``{"stream": [...], "event": "...", "payload": "..."}``
where ``payload`` is itself a JSON string (a Notification or a Status). Since Mastodon 4.2
every stream needs a token; it is sent as ``Authorization: Bearer``, never in the URL.

Gaps: on every (re)connect the connector opens the stream first, then pages the REST API
forward from the last id it handled (``min_id``: "results immediately newer than this id",
oldest page first; ``since_id`` would return the *newest* page and silently skip the middle
of a long gap), then reads the stream, skipping ids already handled. The position is that
last id, so a restart resumes the same way.

Wire format: https://docs.joinmastodon.org/methods/streaming/ and
https://docs.joinmastodon.org/methods/notifications/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import orjson
import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

from pileon.connectors.base import SourceClosed, SourceUnavailable, StreamingConnector
from pileon.connectors.matching import Match, MatchedBy, WatchlistMatcher, merge
from pileon.connectors.metrics import CONNECTOR_EVENT_TIME
from pileon.connectors.publisher import Publisher
from pileon.connectors.shapes import as_dict, as_list
from pileon.core.html_text import plain_text

log = logging.getLogger(__name__)

WatchKind = Literal["notifications", "hashtag", "public"]
PAGE = 40  # the API's maximum page size for notifications and timelines


class BadEvent(ValueError):
    """A message that is not a usable streaming event or status (counted, never fatal)."""


@dataclass(frozen=True)
class Watch:
    kind: WatchKind
    person: str | None = None  # notifications: whose token this is
    tag: str | None = None  # hashtag: without '#'

    def stream_query(self) -> dict[str, str]:
        if self.kind == "notifications":
            # ``user``, not ``user:notification``: the same notifications, plus the
            # deletions and edits of statuses that mentioned the token's owner.
            return {"stream": "user"}
        if self.kind == "hashtag":
            return {"stream": "hashtag", "tag": str(self.tag)}
        return {"stream": "public"}

    def rest_path(self) -> str:
        if self.kind == "notifications":
            return "/api/v1/notifications"
        if self.kind == "hashtag":
            return f"/api/v1/timelines/tag/{self.tag}"
        return "/api/v1/timelines/public"


def _created(item: dict[str, Any]) -> datetime:
    """When a notification or status was created; unknown counts as now (kept)."""
    try:
        t = datetime.fromisoformat(str(item.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def id_key(ident: str) -> tuple[int, str]:
    """Mastodon ids are decimal strings of growing value; compare them as numbers."""
    return (len(ident), ident) if ident.isdigit() else (0, ident)


class StatusMatcher:
    """Which protected persons a status (or a notification) is about."""

    def __init__(self, matcher: WatchlistMatcher, watch: Watch, instance: str) -> None:
        self.matcher = matcher
        self.watch = watch
        self.host = urlsplit(instance).netloc
        self.own_account_id: str | None = None  # notifications: the token owner's account

    def accts(self, account: Any) -> list[str | None]:
        """An account's identifiers: local id, acct, and acct qualified with this instance
        (local accounts' acct has no domain)."""
        if not isinstance(account, dict):
            return []
        acct = account.get("acct") if isinstance(account.get("acct"), str) else None
        full = f"{acct}@{self.host}" if acct and "@" not in acct else None
        return [account.get("id"), acct, full]

    def from_notification(self, note: Any) -> tuple[str, list[dict[str, Any]]]:
        """(notification id, mentions) of a Notification; non-mention types give none."""
        if not isinstance(note, dict) or not isinstance(note.get("id"), str):
            raise BadEvent("notification without an id")
        kind, status = note.get("type"), note.get("status")
        if kind not in ("mention", "quote") or not isinstance(status, dict):
            return note["id"], []
        person = str(self.watch.person)
        replying = status.get("in_reply_to_account_id")
        mine = replying is not None and replying == self.own_account_id
        by: MatchedBy = "quote" if kind == "quote" else "reply" if mine else "mention"
        term = f"notification:{kind}"  # the platform said so: the token owner was mentioned
        return note["id"], self._mentions(status, [Match(person, by, term)], note)

    def from_status(self, status: Any) -> tuple[str, list[dict[str, Any]]]:
        if not isinstance(status, dict) or not isinstance(status.get("id"), str):
            raise BadEvent("status without an id")
        m = self.matcher
        mentioned = as_list(status.get("mentions"))
        idents: list[str | None] = []
        for x in mentioned:
            idents += self.accts(x)
        quoted = as_dict(as_dict(status.get("quote")).get("quoted_status"))
        quoted_account = as_dict(quoted.get("account"))
        content = status.get("content")
        found = merge(
            m.accounts(idents, "mention"),
            m.accounts([status.get("in_reply_to_account_id")], "reply"),
            m.accounts(self.accts(quoted_account), "quote"),
            m.keywords(plain_text(content) if isinstance(content, str) else None),
        )
        account = as_dict(status.get("account"))
        own = {m.account(x) for x in self.accts(account)}
        return status["id"], self._mentions(
            status, [x for x in found if x.person not in own], status
        )

    def _mentions(
        self, status: dict[str, Any], found: list[Match], raw: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not found:
            return []
        account = status.get("account")
        uri, created = status.get("uri") or status.get("url"), status.get("created_at")
        if not isinstance(account, dict) or not isinstance(uri, str) or not isinstance(
            created, str
        ):
            raise BadEvent("status without account, uri or created_at")
        author: dict[str, Any] = {
            "id": str(account.get("uri") or account.get("url") or
                      f"{self.host}/accounts/{account.get('id')}"),
            "handle": str(account.get("acct", ""))[:512] or None,
        }
        if isinstance(account.get("created_at"), str):
            author["created_at"] = account["created_at"]
        if isinstance(account.get("followers_count"), int) and account["followers_count"] >= 0:
            author["followers"] = account["followers_count"]
        content = status.get("content")
        body: dict[str, Any] = {
            "id": f"mastodon:{uri}",
            "platform": "mastodon",
            "author": {k: v for k, v in author.items() if v is not None},
            "text": plain_text(content) if isinstance(content, str) else "",
            "url": status.get("url") if isinstance(status.get("url"), str) else uri,
            "created_at": created,
            "received_at": datetime.now(UTC).isoformat(),
            "raw": raw,
        }
        if isinstance(status.get("in_reply_to_id"), str):
            body["in_reply_to"] = f"{self.host}/statuses/{status['in_reply_to_id']}"
        if isinstance(status.get("language"), str):
            body["lang"] = status["language"][:35]
        return [{**body, "person": x.person, "matched_by": x.matched_by,
                 "matched_term": x.term[:512]} for x in found]


class MastodonConnector(StreamingConnector):
    """Publishes mentions from one Mastodon watch (see module docstring)."""

    def __init__(
        self, publisher: Publisher, matcher: WatchlistMatcher, *, instance: str, token: str,
        watch: Watch, idle_seconds: float = 1.0, timeout: float = 10.0,
        backfill_hours: float = 0.0,
    ) -> None:
        super().__init__(publisher)
        self._backfill_hours = backfill_hours
        self._instance = instance.rstrip("/")
        self._token = token
        self._watch = watch
        self._statuses = StatusMatcher(matcher, watch, instance)
        self._idle = idle_seconds
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def start(self) -> None:
        if self._watch.kind == "notifications":
            self._statuses.own_account_id = self.verify_credentials()
        super().start()

    def verify_credentials(self) -> str:
        """The token owner's account id (replies to it are ``reply``); fails fast on a bad
        token instead of retrying forever."""
        url = self._instance + "/api/v1/accounts/verify_credentials"
        try:
            reply = self._session.get(url, timeout=self._timeout)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{url}: {exc.__class__.__name__}") from exc
        if reply.status_code in (401, 403):
            raise SourceUnavailable(f"{url}: the token was refused ({reply.status_code})")
        if not reply.ok or not isinstance(reply.json().get("id"), str):
            raise SourceUnavailable(f"{url}: unexpected answer ({reply.status_code})")
        return str(reply.json()["id"])

    def streaming_url(self) -> str:
        base = self._instance.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/api/v1/streaming?{urlencode(self._watch.stream_query())}"

    def stream(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            with connect(self.streaming_url(), additional_headers=headers, open_timeout=10,
                         max_size=2**21) as ws:
                log.info("connector %s connected to %s streaming (%s)", self.name,
                         urlsplit(self._instance).netloc, self._watch.kind)
                if self.position:
                    self.backfill()
                elif self._backfill_hours:
                    self.backfill_recent()
                self.read_frames(ws, self.handle, self._idle)
        except (ConnectionClosed, OSError, InvalidHandshake, InvalidURI) as exc:
            raise SourceClosed(f"streaming connection ended ({exc.__class__.__name__})") from exc

    def _page(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """One REST page, oldest first (items without a string id are dropped)."""
        query = {**query, "limit": PAGE}
        if self._watch.kind == "notifications":
            query["types[]"] = ["mention", "quote"]
        try:
            reply = self._session.get(self._instance + self._watch.rest_path(), params=query,
                                      timeout=self._timeout)
            reply.raise_for_status()
            page = reply.json()
        except (requests.RequestException, ValueError) as exc:
            raise SourceClosed(f"backfill failed ({exc.__class__.__name__})") from exc
        if not isinstance(page, list):
            return []
        return sorted((x for x in page if isinstance(x, dict) and isinstance(x.get("id"), str)),
                      key=lambda x: id_key(x["id"]))

    def backfill_recent(self) -> int:
        """First start with ``backfill_hours``: page backwards (``max_id``) through the last
        hours, then publish oldest first. A pile-on may be under way when a person is added."""
        cutoff = datetime.now(UTC) - timedelta(hours=self._backfill_hours)
        kept: list[dict[str, Any]] = []
        query: dict[str, Any] = {}
        while not self.stopped:
            page = self._page(query)
            kept += [x for x in page if _created(x) >= cutoff]
            if len(page) < PAGE or _created(page[0]) < cutoff:
                break
            query = {"max_id": page[0]["id"]}
        for item in sorted(kept, key=lambda x: id_key(x["id"])):
            self._take_or_count(item)
        log.info("connector %s backfilled %d items of the last %.0f h", self.name, len(kept),
                 self._backfill_hours)
        return len(kept)

    def backfill(self) -> int:
        """Page the REST API forward from the position; returns the items read."""
        read = 0
        while not self.stopped:
            items = self._page({"min_id": self.position["last_id"]})
            if not items:
                break
            for item in items:
                self._take_or_count(item)
            read += len(items)
            if len(items) < PAGE:
                break
        if read:
            log.info("connector %s backfilled %d items missed while disconnected", self.name,
                     read)
        return read

    def handle(self, message: bytes | str) -> None:
        try:
            event = orjson.loads(message)
            if not isinstance(event, dict):
                raise BadEvent("streaming message is not an object")
            kind = event.get("event")
            payload = event.get("payload")
            if kind == "delete":  # the payload is the bare status id
                if not isinstance(payload, str) or not payload:
                    raise BadEvent("delete without a status id")
                self.emit_change(payload, "deleted", "mastodon delete event", event)
                return
            wanted = "notification" if self._watch.kind == "notifications" else "update"
            if kind not in (wanted, "status.update"):
                self.count("ignored")  # home timeline, filters_changed, announcements…
                return
            if not isinstance(payload, str):
                raise BadEvent("payload is not a JSON string")
            item = orjson.loads(payload)
            if kind == "status.update":
                self._edited(item, event)
                return
        except (orjson.JSONDecodeError, BadEvent, ValueError) as exc:
            self._bad(exc)
            return
        self._take_or_count(item)

    def _edited(self, status: Any, event: dict[str, Any]) -> None:
        """An edit of a status published lately: its new text, as evidence linked to it."""
        if not isinstance(status, dict) or not isinstance(status.get("id"), str):
            raise BadEvent("status.update without a status id")
        content = status.get("content")
        self.emit_change(status["id"], "edited", "mastodon status.update event",
                         {**event, "payload": status},
                         event_at=_created({"created_at": status.get("edited_at")})
                         if status.get("edited_at") else None,
                         text=plain_text(content) if isinstance(content, str) else "")

    def _take_or_count(self, item: Any) -> None:
        try:
            self._take(item)
        except (BadEvent, LookupError, TypeError, ValueError) as exc:
            self._bad(exc)

    def _bad(self, exc: Exception) -> None:
        self.count("bad_frame")
        log.warning("connector %s: bad Mastodon message skipped: %s: %s", self.name,
                    exc.__class__.__name__, exc)

    def _take(self, item: Any) -> None:
        if self._watch.kind == "notifications":
            ident, mentions = self._statuses.from_notification(item)
        else:
            ident, mentions = self._statuses.from_status(item)
        if self.position and id_key(ident) <= id_key(self.position["last_id"]):
            return  # handled before (backfill and stream overlap, or a replay)
        self.count("matched" if mentions else "unmatched")
        if mentions:
            t = datetime.fromisoformat(mentions[0]["created_at"].replace("Z", "+00:00"))
            CONNECTOR_EVENT_TIME.labels(self.name).set(t.timestamp())
        status = item.get("status") if self._watch.kind == "notifications" else item
        post = status.get("id") if isinstance(status, dict) else None
        self.emit(mentions, {"last_id": ident}, post=post if isinstance(post, str) else None)

    def close(self) -> None:
        self._session.close()
