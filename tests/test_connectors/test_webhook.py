from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import pytest
import requests
import yaml
from aiohttp import web
from kafka.errors import KafkaError
from openapi_spec_validator import validate

from pileon.connectors import openapi
from pileon.connectors.producer import MentionProducer
from pileon.connectors.webhook import OPENAPI, WebhookIngest
from pileon.core.settings import IngestSettings
from pileon.kafka.broker import EmbeddedBroker
from tests.factories import iso, mention
from tests.test_connectors.kafka_reading import once_each, published

TOKEN = "tok-" + "a" * 40
PERSONS = frozenset({"amara", "mei"})


class Server:
    """A WebhookIngest app served on a loopback port from a background event loop."""

    def __init__(self, ingest: WebhookIngest) -> None:
        self.ingest = ingest
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.ingest.app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(20)
        asyncio.run_coroutine_threadsafe(self._loop.shutdown_default_executor(),
                                         self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def post(self, body: bytes, *, token: str | None = TOKEN,
             kind: str = "application/x-ndjson") -> requests.Response:
        headers = {"Content-Type": kind}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(f"http://127.0.0.1:{self.port}/v1/mentions", data=body,
                             headers=headers, timeout=30)


def ndjson(items: list[Any]) -> bytes:
    return b"\n".join(orjson.dumps(x) for x in items) + b"\n"


def _ingest(bootstrap: str, topic: str, producer: MentionProducer | None = None,
            **kw: Any) -> WebhookIngest:
    return WebhookIngest(producer or MentionProducer(bootstrap, topic), PERSONS,
                         [TOKEN, "old-token"], ingest=IngestSettings(), connection=bootstrap, **kw)


@pytest.fixture
def topic() -> str:
    return f"raw-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def server(embedded_broker: EmbeddedBroker, topic: str) -> Iterator[Server]:
    with Server(_ingest(embedded_broker.bootstrap, topic, max_body_bytes=64 * 1024)) as s:
        yield s


def _schema(name: str) -> dict[str, Any]:
    doc = yaml.safe_load(OPENAPI.read_text())
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def _now() -> str:
    return iso(datetime.now(UTC) - timedelta(minutes=1))


class TestWebhookIngest:
    def test_a_batch_is_published_once_even_when_sent_twice(
        self, server: Server, embedded_broker: EmbeddedBroker, topic: str
    ) -> None:
        batch = [mention("amara", at=datetime.now(UTC) - timedelta(minutes=1)) for _ in range(50)]
        first = server.post(ndjson(batch))
        again = server.post(ndjson(batch[:10] + batch[:1]))
        assert (first.status_code, first.json()) == (200, {"accepted": 50, "duplicates": 0})
        assert again.json() == {"accepted": 0, "duplicates": 11}
        jsonschema.validate(first.json(), _schema("Accepted"))
        got, twice = once_each(published(embedded_broker.bootstrap, topic, "webhook"))
        assert len(got) == 50 and twice == 0
        [one] = [m for m in published(embedded_broker.bootstrap, topic)
                 if m["id"] == batch[0]["id"]]
        assert one["received_at"]  # capture time recorded at the edge

    def test_one_mention_as_json(self, server: Server) -> None:
        single = mention("mei", at=datetime.now(UTC))
        r = server.post(orjson.dumps(single), kind="application/json")
        assert r.json() == {"accepted": 1, "duplicates": 0}

    def test_an_invalid_batch_is_refused_whole_with_every_problem(
        self, server: Server, embedded_broker: EmbeddedBroker, topic: str
    ) -> None:
        good = mention("amara", at=datetime.now(UTC))
        bad_types = {**mention("amara"), "author": {"id": 5}, "created_at": "yesterday"}
        future = mention("amara", at=datetime.now(UTC) + timedelta(days=1))
        body = ndjson([good, {"person": "amara"}]) + b"{nope\n" + ndjson(
            [mention("stranger"), bad_types, future])
        r = server.post(body)
        assert r.status_code == 400
        jsonschema.validate(r.json(), _schema("Error"))
        by_line = {(p["line"], p["reason"], p.get("field")) for p in r.json()["problems"]}
        assert (3, "not_json", None) in by_line
        assert (4, "unknown_person", None) in by_line
        assert {(5, "schema", "author.id"), (5, "schema", "created_at")} <= by_line
        assert (6, "from_future", None) in by_line
        assert any(line == 2 and reason == "schema" for line, reason, _ in by_line)
        assert 1 not in {p["line"] for p in r.json()["problems"]}
        assert published(embedded_broker.bootstrap, topic) == []  # all or nothing

    @pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 403),
                                                   ("old-token", 200)])
    def test_tokens(self, server: Server, token: str | None, status: int) -> None:
        r = server.post(ndjson([mention("amara", at=datetime.now(UTC))]), token=token)
        assert r.status_code == status
        if status == 401:
            assert r.headers["WWW-Authenticate"].startswith("Bearer")

    def test_oversized_body_is_413_and_wrong_type_415(self, server: Server) -> None:
        big = ndjson([mention("amara", text="x" * 1000) for _ in range(100)])  # > 64 KiB
        assert server.post(big).status_code == 413
        assert server.post(b"a,b\n", kind="text/csv").status_code == 415
        assert server.post(b"\n\n").status_code == 400

    def test_idempotency_survives_a_restart(
        self, embedded_broker: EmbeddedBroker, topic: str
    ) -> None:
        batch = [mention("amara", at=datetime.now(UTC)) for _ in range(5)]
        with Server(_ingest(embedded_broker.bootstrap, topic)) as first:
            assert first.post(ndjson(batch)).json()["accepted"] == 5
        restarted = _ingest(embedded_broker.bootstrap, topic)
        assert restarted.load_recent() == 5
        with Server(restarted) as second:
            assert second.post(ndjson(batch)).json() == {"accepted": 0, "duplicates": 5}

    def test_shutdown_closes_the_producer(
        self, embedded_broker: EmbeddedBroker, topic: str
    ) -> None:
        producer = MentionProducer(embedded_broker.bootstrap, topic)
        with Server(_ingest(embedded_broker.bootstrap, topic, producer)) as s:
            assert s.post(ndjson([mention("amara", at=datetime.now(UTC))])).status_code == 200
        # Its network thread would otherwise go on reconnecting for as long as the process
        # lives (a closed producer refuses to send).
        with pytest.raises(KafkaError, match="closed"):
            producer.send_record(topic, None, b"x")

    def test_kafka_down_is_503_and_nothing_counts_as_accepted(self, topic: str) -> None:
        from pileon.kafka.broker import EmbeddedBroker

        broker = EmbeddedBroker().start()
        producer = MentionProducer(broker.bootstrap, topic, request_timeout_ms=1000,
                                   delivery_timeout_ms=3000, max_block_ms=2000)
        ingest = _ingest(broker.bootstrap, topic, producer, flush_seconds=5)
        broker.stop()
        with Server(ingest) as s:
            r = s.post(ndjson([mention("amara", at=datetime.now(UTC))]))
        assert r.status_code == 503 and r.headers["Retry-After"]
        assert len(ingest.recent) == 0


class TestOpenAPI:
    def test_the_description_is_valid_and_generated_from_the_schema(self) -> None:
        doc = yaml.safe_load(OPENAPI.read_text())
        validate(doc)
        assert OPENAPI.read_text() == openapi.render()  # run `pileon generate` if not

    def test_the_mention_schema_accepts_what_connectors_publish(self) -> None:
        jsonschema.validate(orjson.loads(orjson.dumps(mention("amara"))), _schema("Mention"))


class TestWebhookDetails:
    @pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
    def test_the_bearer_scheme_is_case_insensitive(self, server: Server, scheme: str) -> None:
        r = requests.post(f"http://127.0.0.1:{server.port}/v1/mentions",
                          data=orjson.dumps(mention("mei", at=datetime.now(UTC))),
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"{scheme} {TOKEN}"}, timeout=30)
        assert r.status_code == 200, r.text

    def test_another_scheme_is_401(self, server: Server) -> None:
        r = requests.post(f"http://127.0.0.1:{server.port}/v1/mentions", data=b"{}",
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Basic {TOKEN}"}, timeout=30)
        assert r.status_code == 401 and r.json()["error"] == "missing bearer token"

    def test_unknown_paths_and_methods_answer_json(self, server: Server) -> None:
        base = f"http://127.0.0.1:{server.port}"
        missing = requests.get(f"{base}/v2/nothing", timeout=30)
        wrong = requests.get(f"{base}/v1/mentions", timeout=30)
        assert missing.status_code == 404 and "POST /v1/mentions" in missing.json()["error"]
        assert wrong.status_code == 405 and "use POST" in wrong.json()["error"]
        assert wrong.headers["Allow"] == "POST"
        jsonschema.validate(missing.json(), _schema("Error"))

    def test_the_openapi_servers_entry_is_where_it_listens(
        self, embedded_broker: EmbeddedBroker, topic: str
    ) -> None:
        ingest = _ingest(embedded_broker.bootstrap, topic,
                         public_url="https://ingest.example.org/pileon/")
        with Server(ingest) as s:
            doc = yaml.safe_load(requests.get(f"http://127.0.0.1:{s.port}/openapi.yaml",
                                              timeout=30).text)
        assert doc["servers"] == [{"url": "https://ingest.example.org/pileon"}]
        validate(doc)

    def test_metrics_are_the_endpoints_own(self, server: Server) -> None:
        server.post(orjson.dumps(mention("mei", at=datetime.now(UTC))), kind="application/json")
        text = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=30).text
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line and not line.startswith("#")}
        assert "pileon_webhook_requests_total" in names
        assert {n for n in names if n.startswith("pileon_")} <= {
            "pileon_webhook_requests_total", "pileon_webhook_requests_created",
            "pileon_webhook_mentions_total", "pileon_webhook_mentions_created"}
        assert not any(n.startswith(("python_gc", "pileon_connector", "pileon_mentions"))
                       for n in names)
