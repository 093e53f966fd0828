"""A loopback Mastodon instance: the streaming API's framing over a real WebSocket and the REST
endpoints a connector backfills from, behind bearer-token auth.

``notify(...)``/``publish(...)`` create notifications and statuses; connected streaming
clients get them at once (``payload`` is a JSON string inside the JSON message, as Mastodon
sends it); while ``down`` the streaming endpoint answers 503, and ``drop()`` cuts every open
stream without a close frame. REST pages follow Mastodon: ``min_id`` gives the page
immediately newer than the id, ``since_id`` the newest page, both newest first, at most
``limit`` (≤ 40) items; ``max_id`` keeps only older items (paging backwards). Every REST
query is kept in ``queries``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from tests.peers.server import LoopbackServer


def _json(status: int, body: Any) -> Response:
    data = orjson.dumps(body)
    return Response(status, HTTPStatus(status).phrase, Headers(
        {"Content-Type": "application/json", "Content-Length": str(len(data))}), data)


class MastodonPeer(LoopbackServer):
    def __init__(self, token: str = "s3cret", *, account_id: str = "109000000000000001") -> None:
        self.token = token
        self.account_id = account_id
        self.notifications: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.queries: list[tuple[str, dict[str, list[str]]]] = []
        self.down = False
        self._clients: list[tuple[ServerConnection, str, str | None]] = []
        self._ids = itertools.count(110_000_000_000_000_000)
        self._lock = threading.Lock()

    def __exit__(self, *exc: object) -> None:
        self.drop()
        super().__exit__(*exc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def streaming_clients(self) -> int:
        with self._lock:
            return len(self._clients)

    # Content.

    def status(self, text: str, *, author: str = "troll", young: bool = False,
               mentions: list[dict[str, str]] | None = None, reply_to_account: str | None = None,
               tag: str | None = None) -> dict[str, Any]:
        sid = str(next(self._ids))
        created = datetime.now(UTC) - timedelta(seconds=5)
        return {
            "id": sid, "uri": f"https://{author}.example/users/{author}/statuses/{sid}",
            "url": f"https://{author}.example/@{author}/{sid}",
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "content": f"<p>{text}</p>", "language": "en", "visibility": "public",
            "in_reply_to_id": "1" if reply_to_account else None,
            "in_reply_to_account_id": reply_to_account,
            "mentions": mentions or [], "tags": [{"name": tag}] if tag else [],
            "account": {
                "id": str(abs(hash(author)) % 10**9), "username": author,
                "acct": f"{author}@{author}.example",
                "uri": f"https://{author}.example/users/{author}",
                "url": f"https://{author}.example/@{author}", "followers_count": 3,
                "created_at": (created - timedelta(days=1 if young else 800)).date().isoformat()
                + "T00:00:00.000Z",
            },
        }

    def notify(self, kind: str, status: dict[str, Any] | None) -> dict[str, Any]:
        note = {"id": str(next(self._ids)), "type": kind,
                "created_at": datetime.now(UTC).isoformat(), "account": (status or {}).get(
                    "account", {"id": "1", "acct": "x"}), **({"status": status} if status else {})}
        with self._lock:
            self.notifications.append(note)
        self._push("user:notification", None, "notification", note)
        self._push("user", None, "notification", note)  # the user stream carries them too
        return note

    def delete(self, status: dict[str, Any]) -> None:
        """Delete a status: Mastodon sends ``delete`` with the bare id as payload to the
        streams it was on, the mentioned accounts' user streams among them."""
        with self._lock:
            self.statuses = [s for s in self.statuses if s["id"] != status["id"]]
        for stream, tag in self._streams_of(status):
            self._push(stream, tag, "delete", status["id"])

    def edit(self, status: dict[str, Any], text: str) -> dict[str, Any]:
        """Edit a status: ``status.update`` with the whole edited status."""
        edited = {**status, "content": f"<p>{text}</p>",
                  "edited_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        with self._lock:
            self.statuses = [edited if s["id"] == status["id"] else s for s in self.statuses]
        for stream, tag in self._streams_of(status):
            self._push(stream, tag, "status.update", edited)
        return edited

    @staticmethod
    def _streams_of(status: dict[str, Any]) -> list[tuple[str, str | None]]:
        return [("user", None), ("public", None),
                *(("hashtag", t["name"]) for t in status.get("tags", []))]

    def publish(self, status: dict[str, Any]) -> None:
        with self._lock:
            self.statuses.append(status)
        tags = [t["name"] for t in status.get("tags", [])]
        self._push("public", None, "update", status)
        for tag in tags:
            self._push("hashtag", tag, "update", status)

    def send_raw(self, message: str) -> None:
        """A message as-is to every streaming client (bad frames)."""
        for ws, _, _ in list(self._clients):
            ws.send(message)

    def drop(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for ws, _, _ in clients:
            ws.close_socket()

    def _push(self, stream: str, tag: str | None, event: str,
              payload: dict[str, Any] | str) -> None:
        name = [stream, tag] if tag else [stream]
        body = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        message = orjson.dumps({"stream": name, "event": event, "payload": body}).decode()
        with self._lock:
            targets = [ws for ws, s, t in self._clients if s == stream and t == tag]
        for ws in targets:
            with contextlib.suppress(ConnectionClosed):
                ws.send(message)

    # Protocol.

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    def http(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        if not self._authorised(request):
            return _json(401, {"error": "The access token is invalid"})
        if parts.path == "/api/v1/streaming":
            return _json(503, {"error": "down"}) if self.down else None
        self.queries.append((parts.path, query))
        if parts.path == "/api/v1/accounts/verify_credentials":
            return _json(200, {"id": self.account_id, "username": "amara", "acct": "amara"})
        if parts.path == "/api/v1/notifications":
            types = set(query.get("types[]", []))
            items = [n for n in self.notifications if not types or n["type"] in types]
            return _json(200, _page(items, query))
        if parts.path == "/api/v1/timelines/public":
            return _json(200, _page(self.statuses, query))
        if parts.path.startswith("/api/v1/timelines/tag/"):
            tag = parts.path.rsplit("/", 1)[1]
            items = [s for s in self.statuses if tag in [t["name"] for t in s["tags"]]]
            return _json(200, _page(items, query))
        return _json(404, {"error": "Record not found"})

    def stream(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        stream = query.get("stream", [""])[0]
        with self._lock:
            self._clients.append((ws, stream, query.get("tag", [None])[0]))
        self.hold(ws)


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    limit = min(int(query.get("limit", ["20"])[0]), 40)

    def after(x: dict[str, Any], bound: str) -> bool:
        return int(x["id"]) > int(bound)

    if "max_id" in query:
        items = [x for x in items if int(x["id"]) < int(query["max_id"][0])]
    if "min_id" in query:
        newer = [x for x in items if after(x, query["min_id"][0])]
        chosen = newer[:limit]
    else:
        newer = [x for x in items if "since_id" not in query or after(x, query["since_id"][0])]
        chosen = newer[-limit:]
    return sorted(chosen, key=lambda x: int(x["id"]), reverse=True)
