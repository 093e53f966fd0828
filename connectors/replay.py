"""Replay of mention files, for backfill, evaluation and demos.

Formats (chosen by extension and CSV header, or given):

* ``jsonl``: one pileon mention per line (``.jsonl``/``.ndjson``);
* ``csv``: pileon's fields as columns, nested ones dotted (``author.id``, ``author.handle``,
  ``author.created_at``, ``author.followers``);
* ``coordination``: the minimal platform-agnostic CSV of coordination-research toolkits,
  ``message_id,user_id,username,reply_id,message,timestamp,urls``. Rows name no person:
  ``person`` says whom the file is about, else rows are matched against the watchlist's
  aliases (``keyword``), and unmatched rows are counted and skipped.

``speed`` paces the replay in event time (60: a minute of the file per second; 0: as fast as
the broker acknowledges). ``rebase`` shifts every event time so the file's last event is now
(for demos on old data, which the worker would otherwise dead-letter as ``too_old``); the
original time is kept in ``raw.original_created_at``.

A line that is not a mention goes straight to the dead-letter topic with its reason and file
position; lines that parse are published and validated by the worker like any other. The
position is the number of lines handled, so a killed replay resumes without repeats.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from pileon.connectors.base import StreamingConnector
from pileon.connectors.matching import WatchlistMatcher
from pileon.connectors.metrics import CONNECTOR_EVENT_TIME
from pileon.connectors.publisher import Publisher
from pileon.connectors.shapes import as_dict
from pileon.schema.deadletter import Origin, dead_letter
from pileon.schema.mention import Reason

log = logging.getLogger(__name__)

Format = Literal["jsonl", "csv", "coordination"]
COORDINATION_COLUMNS = ("message_id", "user_id", "username", "reply_id", "message", "timestamp",
                        "urls")
_URL_SPLIT = re.compile(r"[\s,|;]+")


class BadRow(ValueError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def detect_format(path: Path) -> Format:
    if path.suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if {"message_id", "user_id", "message", "timestamp"} <= set(header):
            return "coordination"
        return "csv"
    raise ValueError(f"{path}: can't tell the format from the name; pass --format")


def parse_time(value: str) -> datetime:
    """ISO 8601 (naive means UTC) or Unix seconds/milliseconds."""
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _nest(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value in ("", None) or key is None:
            continue
        head, _, tail = key.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = int(value) if tail == "followers" else value
        else:
            out[key] = value
    return out


class ReplayConnector(StreamingConnector):
    finite = True

    def __init__(
        self, publisher: Publisher, path: Path, *, fmt: Format | None = None,
        speed: float = 0.0, person: str | None = None, matcher: WatchlistMatcher | None = None,
        platform: str = "replay", rebase: bool = False, invalid_topic: str | None = None,
    ) -> None:
        super().__init__(publisher)
        self.path = path
        self.fmt: Format = fmt or detect_format(path)
        self._speed = speed
        self._person = person
        self._matcher = matcher
        self._platform = platform
        self._invalid_topic = invalid_topic
        self._shift = timedelta(0)
        if rebase:
            self._shift = self._rebase_shift()
        if self.fmt == "coordination" and person is None and matcher is None:
            raise ValueError("coordination CSV rows name no person: give --person or a watchlist")

    def stream(self) -> None:
        done = (self.position or {}).get("line", 0)
        wall0: float | None = None
        event0: datetime | None = None
        for line, row in self._rows():
            if self.stopped:
                return
            if line <= done:
                continue
            try:
                mentions = self.mentions(row)
            except BadRow as exc:
                self._dead_letter(line, row, exc)
                self.emit([], {"line": line})
                continue
            if mentions and self._speed > 0:
                t = parse_time(mentions[0]["created_at"])
                if wall0 is None or event0 is None:
                    wall0, event0 = time.monotonic(), t
                delay = (t - event0).total_seconds() / self._speed - (time.monotonic() - wall0)
                if delay > 0 and self._stopped.wait(delay):
                    return
            self.count("matched" if mentions else "unmatched")
            if mentions:
                CONNECTOR_EVENT_TIME.labels(self.name).set(
                    parse_time(mentions[0]["created_at"]).timestamp())
            self.emit(mentions, {"line": line})

    def _rows(self) -> Iterator[tuple[int, Any]]:
        with self.path.open("rb") as f:
            if self.fmt == "jsonl":
                for n, raw in enumerate(f, 1):
                    if raw.strip():
                        yield n, raw
                    else:
                        yield n, None
                return
            text = io.TextIOWrapper(f, encoding="utf-8", errors="strict", newline="")
            reader = csv.DictReader(text)
            if self.fmt == "coordination":
                missing = set(COORDINATION_COLUMNS) - set(reader.fieldnames or [])
                if missing - {"urls", "reply_id", "username"}:
                    raise ValueError(f"{self.path}: missing columns {sorted(missing)}")
            for n, row in enumerate(reader, 2):  # line 1 is the header
                yield n, row

    def mentions(self, row: Any) -> list[dict[str, Any]]:
        if row is None:
            return []
        if self.fmt == "jsonl":
            try:
                data = orjson.loads(row)
            except orjson.JSONDecodeError as exc:
                raise BadRow(Reason.NOT_JSON, str(exc)[:200]) from None
            if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not (
                isinstance(data.get("person"), str)
            ):
                raise BadRow(Reason.SCHEMA, "not a mention object with id and person")
            return [self._rebased(data)]
        if self.fmt == "csv":
            data = _nest(row)
            if "id" not in data or "person" not in data:
                raise BadRow(Reason.SCHEMA, "row without id or person")
            return [self._rebased(data)]
        return self._coordination(row)

    def _coordination(self, row: dict[str, str]) -> list[dict[str, Any]]:
        try:
            created = parse_time(row.get("timestamp") or "")
        except ValueError:
            raise BadRow(Reason.SCHEMA, "timestamp: not ISO 8601 or Unix time") from None
        if not row.get("message_id") or not row.get("user_id"):
            raise BadRow(Reason.SCHEMA, "message_id and user_id are required")
        text = row.get("message") or ""
        found: list[tuple[str, str, str | None]]
        if self._person is not None:
            found = [(self._person, "reply" if row.get("reply_id") else "mention", None)]
        else:
            matcher = self._matcher
            found = [(m.person, "keyword", m.term) for m in matcher.keywords(text)
                     ] if matcher else []
        urls = [u for u in _URL_SPLIT.split(row.get("urls") or "") if u]
        body: dict[str, Any] = {
            "id": f"{self._platform}:{row['message_id']}",
            "platform": self._platform,
            "author": {"id": row["user_id"], **(
                {"handle": row["username"]} if row.get("username") else {})},
            "text": text,
            "created_at": created.isoformat(),
            "raw": {**row, "urls": urls},
        }
        if row.get("reply_id"):
            body["in_reply_to"] = f"{self._platform}:{row['reply_id']}"
        body = self._rebased(body)
        return [{**body, "person": p, "matched_by": by,
                 **({"matched_term": term} if term else {})} for p, by, term in found]

    def _rebased(self, mention: dict[str, Any]) -> dict[str, Any]:
        if not self._shift or not isinstance(mention.get("created_at"), str):
            return mention
        try:
            t = parse_time(mention["created_at"])
        except ValueError:
            return mention  # the worker dead-letters it with the schema reason
        raw = as_dict(mention.get("raw"))
        return {**mention, "created_at": (t + self._shift).isoformat(),
                "raw": {**raw, "original_created_at": mention["created_at"]}}

    def _rebase_shift(self) -> timedelta:
        latest: datetime | None = None
        for _, row in self._rows():
            try:
                for m in self.mentions(row):
                    t = parse_time(m["created_at"])
                    latest = t if latest is None or t > latest else latest
            except (BadRow, ValueError, KeyError, TypeError):
                continue
        return datetime.now(UTC) - latest if latest else timedelta(0)

    def _dead_letter(self, line: int, row: Any, exc: BadRow) -> None:
        self.count("bad_frame")
        log.warning("replay %s line %d: %s (dead-lettered)", self.path.name, line, exc.reason)
        if self._invalid_topic is None:
            return
        value = row if isinstance(row, bytes) else orjson.dumps(row)
        letter = dead_letter(None, value, exc.reason, f"{self.path.name}:{line}: {exc}",
                             Origin(str(self.path.name), -1, line, time.time()))
        self.publisher.producer.send_record(self._invalid_topic, None, letter)
