"""Webhook ingest: an authenticated HTTP endpoint that takes mentions in pileon's schema.

``POST /v1/mentions`` with ``Authorization: Bearer <token>`` and either one mention
(``application/json``) or a batch, one mention per line (``application/x-ndjson``). Answers:

* 200 with ``accepted`` and ``duplicates`` once the broker acknowledged every new mention;
* 400 with the list of problems (line, reason, field, message); a batch is all or nothing, so
  a client fixes and resends it without working out which lines went through;
* 401 without a token, 403 with a wrong one; 413 over ``max_body_bytes``; 415 for another
  content type; 503 with ``Retry-After`` when Kafka does not acknowledge (nothing is recorded
  as accepted, so the retry is safe).

Idempotent on (person, mention id): a mention accepted in the last ``idempotency_hours`` is
answered as a duplicate and not published again, across restarts too (the ids are read back
from ``mentions.raw`` by their ``pileon-source`` header at start). Beyond that window the
worker's own de-duplication (``ingest.dedup_hours``) still drops repeats.

The OpenAPI 3.1 description is ``connectors/webhook-openapi.yaml``, served at
``GET /openapi.yaml``. Tokens come from a file (one per line, so they can be rotated).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    ProcessCollector,
    generate_latest,
)
from pydantic import ValidationError

from pileon.connectors.producer import DeliveryError, MentionProducer
from pileon.connectors.publisher import ID_HEADER, SOURCE_HEADER, published_since
from pileon.core.settings import IngestSettings
from pileon.kafka.connection import Connection
from pileon.schema.mention import InvalidMention, Mention, MentionValidator, Reason

log = logging.getLogger(__name__)

OPENAPI = Path(__file__).with_name("webhook-openapi.yaml")
MAX_PROBLEMS = 100

# The endpoint's /metrics serves this registry: its own series and its process's, not every
# metric that some imported module registered in the default registry.
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
WEBHOOK_REQUESTS = Counter(
    "pileon_webhook_requests_total", "Webhook ingest requests, by HTTP status", ["status"],
    registry=REGISTRY,
)
WEBHOOK_MENTIONS = Counter(
    "pileon_webhook_mentions_total", "Mentions in webhook requests, by outcome "
    "(accepted, duplicate, rejected)", ["outcome"], registry=REGISTRY,
)


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"line": self.line, "reason": self.reason, "message": self.message}
        return {**out, "field": self.field} if self.field else out


class RecentIds:
    """(person, id) pairs accepted in the last ``seconds``, oldest first."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._ids: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        self._expire()
        return key in self._ids

    def add(self, key: tuple[str, str], at: float | None = None) -> None:
        self._ids[key] = at if at is not None else time.time()
        self._ids.move_to_end(key)

    def __len__(self) -> int:
        return len(self._ids)

    def _expire(self) -> None:
        horizon = time.time() - self._seconds
        while self._ids and next(iter(self._ids.values())) < horizon:
            self._ids.popitem(last=False)


class WebhookIngest:
    name = "webhook"

    def __init__(
        self, producer: MentionProducer, persons: frozenset[str], tokens: list[str], *,
        ingest: IngestSettings, connection: Connection, source: str = "webhook",
        max_body_bytes: int = 4 * 1024 * 1024, max_batch: int = 10_000,
        idempotency_hours: float = 1.0, flush_seconds: float = 15.0,
        public_url: str = "http://127.0.0.1:8088",
    ) -> None:
        if not tokens:
            raise ValueError("webhook ingest needs at least one bearer token")
        self._producer = producer
        self._tokens = [t.encode() for t in tokens]
        self._validator = MentionValidator(
            persons, max_bytes=ingest.max_message_bytes,
            max_age=timedelta(days=ingest.max_age_days),
            max_future=timedelta(seconds=ingest.max_future_seconds),
        )
        self._connection = connection
        self._source = source
        self._header = source.encode()
        self.max_body_bytes = max_body_bytes
        self._max_batch = max_batch
        self._window = idempotency_hours * 3600
        self.recent = RecentIds(self._window)
        self._lock = asyncio.Lock()
        self._flush_seconds = flush_seconds
        self.public_url = public_url.rstrip("/")
        self._openapi = _with_server(OPENAPI.read_text(encoding="utf-8"), self.public_url)

    def load_recent(self) -> int:
        """Read back what this endpoint published in the idempotency window."""
        since = time.time() - self._window
        for person, mention_id, at in published_since(
            self._connection, self._producer.topic, self._source, since
        ):
            self.recent.add((person, mention_id), at)
        return len(self.recent)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes,
                              middlewares=[_json_errors])
        app.router.add_post("/v1/mentions", self.post_mentions)
        app.router.add_get("/openapi.yaml", self.openapi)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        """On shutdown, close the producer: every accepted batch was acknowledged before it
        was answered, so this only stops its network thread, which would otherwise go on
        reconnecting to the broker for as long as the process lives."""
        await asyncio.get_running_loop().run_in_executor(None, self._producer.close)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(text=self._openapi, content_type="application/yaml")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def post_mentions(self, request: web.Request) -> web.Response:
        response = await self._post(request)
        WEBHOOK_REQUESTS.labels(str(response.status)).inc()
        return response

    async def _post(self, request: web.Request) -> web.Response:
        denied = self._authorise(request.headers.get("Authorization"))
        if denied is not None:
            return denied
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return _error(413, f"body over {self.max_body_bytes} bytes")
        kind = request.content_type
        if kind not in ("application/json", "application/x-ndjson"):
            return _error(415, "send application/json (one mention) or "
                          "application/x-ndjson (one mention per line)")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body over {self.max_body_bytes} bytes")
        lines = [body] if kind == "application/json" else body.splitlines()
        items = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
        if not items:
            return _error(400, "no mentions in the body", problems=[])
        if len(items) > self._max_batch:
            return _error(413, f"{len(items)} mentions, at most {self._max_batch} per request")
        mentions, problems = self._validate(items)
        if problems:
            WEBHOOK_MENTIONS.labels("rejected").inc(len(items))
            return _error(400, f"{len(problems)} of {len(items)} mentions are invalid; "
                          "nothing was accepted", problems=problems)
        return await self._publish(mentions)

    def _authorise(self, header: str | None) -> web.Response | None:
        scheme, _, credentials = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():  # schemes: RFC 7235 2.1
            return _error(401, "missing bearer token",
                          headers={"WWW-Authenticate": 'Bearer realm="pileon"'})
        given = credentials.strip().encode()
        # compare_digest against every token: no early exit that leaks which one is close
        if not any([hmac.compare_digest(given, t) for t in self._tokens]):
            return _error(403, "token not accepted")
        return None

    def _validate(
        self, items: list[tuple[int, bytes]]
    ) -> tuple[list[dict[str, Any]], list[Problem]]:
        now = datetime.now(UTC)
        mentions: list[dict[str, Any]] = []
        problems: list[Problem] = []
        for n, line in items:
            try:
                mention = self._validator.validate(line, None, now)
            except InvalidMention as exc:
                problems.extend(_problems(n, line, exc))
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            data = mention.model_dump(mode="json", exclude_none=True)
            data.setdefault("received_at", now.isoformat())
            mentions.append(data)
        return mentions, problems[:MAX_PROBLEMS]

    async def _publish(self, mentions: list[dict[str, Any]]) -> web.Response:
        async with self._lock:  # one batch at a time: a concurrent repeat sees the first's ids
            seen: set[tuple[str, str]] = set()  # repeats inside one batch count once
            fresh = []
            for m in mentions:
                key = (m["person"], m["id"])
                if key not in seen and key not in self.recent:
                    seen.add(key)
                    fresh.append(m)
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._send, fresh)
            except DeliveryError as exc:
                log.warning("webhook batch not acknowledged by Kafka: %s", exc)
                return _error(503, "Kafka did not acknowledge the mentions; retry later",
                              headers={"Retry-After": "5"})
            now = time.time()
            for m in fresh:
                self.recent.add((m["person"], m["id"]), now)
        WEBHOOK_MENTIONS.labels("accepted").inc(len(fresh))
        WEBHOOK_MENTIONS.labels("duplicate").inc(len(mentions) - len(fresh))
        return web.json_response({"accepted": len(fresh), "duplicates": len(mentions) - len(fresh)})

    def _send(self, mentions: list[dict[str, Any]]) -> None:
        for m in mentions:
            self._producer.send(m, [(SOURCE_HEADER, self._header), (ID_HEADER, m["id"].encode())])
        self._producer.flush(timeout=self._flush_seconds)


def _problems(n: int, line: bytes, exc: InvalidMention) -> list[Problem]:
    if exc.reason != Reason.SCHEMA:
        return [Problem(n, str(exc.reason), exc.detail)]
    try:
        Mention.model_validate(orjson.loads(line))
    except ValidationError as err:
        return [Problem(n, "schema", e["msg"], ".".join(str(p) for p in e["loc"]) or None)
                for e in err.errors()[:10]]
    except (orjson.JSONDecodeError, TypeError):
        pass
    return [Problem(n, "schema", exc.detail)]


def _error(
    status: int, message: str, *, problems: list[Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if problems is not None:
        body["problems"] = [p.to_dict() for p in problems]
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown paths and methods answer JSON like every other error of the endpoint."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return _error(405, f"{request.method} is not allowed on {request.path}; use {allowed}",
                      headers={"Allow": allowed})
    except web.HTTPNotFound:
        return _error(404, f"no such path {request.path}: POST /v1/mentions "
                      "(see /openapi.yaml)")


def _with_server(document: str, url: str) -> str:
    """The generated OpenAPI description with ``servers`` naming where this endpoint listens."""
    import yaml

    header = "".join(line for line in document.splitlines(keepends=True)
                     if line.startswith("#"))
    doc = yaml.safe_load(document)
    doc["servers"] = [{"url": url}]
    return header + yaml.dump(doc, sort_keys=False, allow_unicode=True, width=100)
