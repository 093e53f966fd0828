"""A loopback Jetstream: the documented wire protocol over a real WebSocket, with a known log.

``/subscribe?wantedCollections=…&cursor=…`` streams the log from the first event with
``time_us >= cursor`` (from the start without a cursor), then holds the connection open like
a live tail. ``drop_after=[300, 500]`` closes the first connection abruptly after 300 frames
and the second after 500. ``/xrpc/app.bsky.actor.getProfile?actor=did`` answers plain HTTP
from ``profiles``. Every frame sent is appended to ``log`` (the oracle tests compare with).
"""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
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

POST = "app.bsky.feed.post"


class JetstreamPeer(LoopbackServer):
    def __init__(
        self, frames: Iterable[bytes], *, drop_after: Iterable[int] = (),
        frames_per_second: float | None = None, profiles: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.frames = list(frames)
        self._times: list[int] = []
        for frame in self.frames:  # bad frames take their predecessor's time: stays sorted
            self._times.append(max(_time_us(frame), self._times[-1] if self._times else -1))
        self._drops = list(drop_after)
        self._pace = 1.0 / frames_per_second if frames_per_second else 0.0
        self.profiles = profiles or {}
        self.cursors: list[int | None] = []
        self.sent = 0
        self.profile_requests = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path)
        if path.path == "/subscribe":
            return None  # the WebSocket handshake goes on
        if path.path == "/xrpc/app.bsky.actor.getProfile":
            self.profile_requests += 1
            actor = parse_qs(path.query).get("actor", [""])[0]
            if actor in self.profiles:
                body = orjson.dumps({"did": actor, **self.profiles[actor]})
                return Response(HTTPStatus.OK, "OK", Headers(
                    {"Content-Type": "application/json", "Content-Length": str(len(body))}
                ), body)
            return conn.respond(HTTPStatus.BAD_REQUEST, '{"error":"InvalidRequest"}\n')
        return conn.respond(HTTPStatus.NOT_FOUND, "not found\n")

    def stream(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        with self._lock:
            self.cursors.append(cursor)
            drop = self._drops.pop(0) if self._drops else None
        i = bisect_left(self._times, cursor) if cursor is not None else 0
        sent_here = 0
        try:
            while i < len(self.frames):
                if drop is not None and sent_here >= drop:
                    ws.close_socket()  # abrupt: no close frame, like a network drop
                    return
                ws.send(self.frames[i].decode())
                with self._lock:
                    self.sent += 1
                i += 1
                sent_here += 1
                if self._pace:
                    time.sleep(self._pace)
        except ConnectionClosed:
            return
        self.hold(ws)


def _time_us(frame: bytes) -> int:
    try:
        value = orjson.loads(frame).get("time_us")
        return int(value)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return -1  # bad frames sort with the previous event (callers keep them in order)


@dataclass(frozen=True)
class Expected:
    person: str
    id: str
    matched_by: str


def firehose(
    n: int, persons: dict[str, tuple[str, str]], *, seed: int = 7, match_share: float = 0.2,
    bad_frames: int = 0, start: datetime | None = None,
) -> tuple[list[bytes], set[Expected], dict[str, dict[str, Any]]]:
    """``n`` Jetstream frames about ``persons`` ({key: (did, alias)}), the mentions they must
    produce, and profiles of their authors. Includes identity/account events, deletes,
    updates, the persons' own posts, homoglyph aliases, near-miss words and (optionally) bad
    frames with unexpected shapes."""
    rng = random.Random(seed)
    t = int((start or datetime.now(UTC) - timedelta(minutes=30)).timestamp() * 1e6)
    frames: list[bytes] = []
    expected: set[Expected] = set()
    profiles: dict[str, dict[str, Any]] = {}
    keys = sorted(persons)
    bad_at = set(rng.sample(range(n), bad_frames)) if bad_frames else set()
    for i in range(n):
        t += rng.randint(1, 3000)
        if i in bad_at:
            frames.append(rng.choice(_BAD_FRAMES).replace(b"TIME", str(t).encode()))
            continue
        author = f"did:plc:u{rng.randint(0, n // 3):09d}"
        profiles.setdefault(author, {"handle": f"u{i}.bsky.social", "followersCount": i % 500,
                                     "createdAt": "2024-01-02T03:04:05.000Z"})
        rkey = f"3k{i:011d}"
        record: dict[str, Any] = {"$type": POST, "text": rng.choice(_CHATTER),
                                  "createdAt": "2026-11-25T10:00:00.000Z", "langs": ["en"]}
        other = rng.random()
        if other < 0.05:
            frames.append(orjson.dumps({"did": author, "time_us": t, "kind": "identity",
                                        "identity": {"did": author, "handle": "x.bsky.social",
                                                     "seq": i, "time": "2026-11-25T10:00:00Z"}}))
            continue
        if other < 0.08:
            frames.append(orjson.dumps({"did": author, "time_us": t, "kind": "commit", "commit": {
                "rev": "r", "operation": "delete", "collection": POST, "rkey": rkey}}))
            continue
        kind = rng.random()
        uri = f"at://{author}/{POST}/{rkey}"
        if kind < match_share:
            person = rng.choice(keys)
            did, alias = persons[person]
            way = rng.choice(["mention", "reply", "root", "quote", "quote_media", "keyword",
                              "homoglyph", "own"])
            post_of = f"at://{did}/{POST}/3kparent{i}"
            if way == "mention":
                record["facets"] = [{"index": {"byteStart": 0, "byteEnd": 6}, "features": [
                    {"$type": "app.bsky.richtext.facet#mention", "did": did}]}]
            elif way in ("reply", "root"):
                elsewhere = f"at://did:plc:someone/{POST}/3kx{i}"
                parent, root = (post_of, elsewhere) if way == "reply" else (elsewhere, post_of)
                record["reply"] = {"parent": {"uri": parent, "cid": "bafy1"},
                                   "root": {"uri": root, "cid": "bafy2"}}
            elif way == "quote":
                record["embed"] = {"$type": "app.bsky.embed.record",
                                   "record": {"uri": post_of, "cid": "bafy3"}}
            elif way == "quote_media":
                record["embed"] = {"$type": "app.bsky.embed.recordWithMedia", "record": {
                    "$type": "app.bsky.embed.record", "record": {"uri": post_of, "cid": "c"}},
                    "media": {"$type": "app.bsky.embed.images", "images": []}}
            elif way == "keyword":
                record["text"] = f"{rng.choice(_CHATTER)} {alias.upper()}, really?"
            elif way == "homoglyph":
                record["text"] = f"what is {alias.replace('a', 'а')} doing"  # Cyrillic а
            if way == "own":
                author, uri = did, f"at://{did}/{POST}/{rkey}"
                record["text"] = f"thanks all, {alias} here"
            else:
                by = {"root": "reply", "quote_media": "quote", "homoglyph": "keyword"}
                expected.add(Expected(person, f"bluesky:{uri}", by.get(way, way)))
        elif kind < 0.25:
            alias = persons[rng.choice(keys)][1]
            record["text"] = f"{alias.split()[0]}ville council met"  # near miss, no boundary
        frames.append(orjson.dumps({"did": author, "time_us": t, "kind": "commit", "commit": {
            "rev": f"r{i}", "operation": "create", "collection": POST, "rkey": rkey,
            "record": record, "cid": f"bafyrei{i}"}}))
    return frames, expected, profiles


_CHATTER = [
    "good morning everyone", "the game last night was wild", "new blog post is up",
    "anyone else see the eclipse", "coffee first then emails", "this thread is gold",
    "reading about the housing report", "cats are the best", "rain again today",
]
_BAD_FRAMES = [
    b"not json at all",
    b'{"kind": "commit", "did": "did:plc:x"}',  # no time_us
    b'{"did": 5, "time_us": TIME, "kind": "commit", "commit": {"collection":'
    b' "app.bsky.feed.post", "operation": "create", "record": "text"}}',
    b'{"did": "did:plc:x", "time_us": TIME, "kind": "commit", "commit": {"collection":'
    b' "app.bsky.feed.post", "operation": "create", "rkey": "k", "record": {"text": 7,'
    b' "facets": [{"features": "many"}], "reply": {"parent": 3}, "embed": []}}}',
    b"[1, 2, 3]",
    b'{"did": "did:plc:x", "time_us": "soon", "kind": "commit"}',
]
