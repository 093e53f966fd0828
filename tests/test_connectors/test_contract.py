"""The connector contract, run against every streaming connector with its loopback source:
start/run/stop from another thread, checkpoint only what the broker acknowledged, a stopped
and restarted connector publishes every mention exactly once, and what it publishes is a
valid mention carrying the connector's headers."""

from __future__ import annotations

import csv
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pileon.connectors.base import StreamingConnector
from pileon.connectors.bluesky import JetstreamConnector
from pileon.connectors.checkpoint import MemoryCheckpoints
from pileon.connectors.mastodon import MastodonConnector, Watch, id_key
from pileon.connectors.matching import WatchlistMatcher
from pileon.connectors.producer import MentionProducer
from pileon.connectors.publisher import Publisher
from pileon.connectors.replay import ReplayConnector
from pileon.core.watchlist import Person, Watchlist
from pileon.kafka.broker import EmbeddedBroker
from pileon.schema.mention import Mention
from tests.factories import mention
from tests.peers.jetstream import JetstreamPeer, firehose
from tests.peers.mastodon import MastodonPeer
from tests.test_connectors.kafka_reading import once_each, published
from tests.waiting import wait_until

PERSONS = {"amara": ("did:plc:amara000000000000000000", "Amara Okafor"),
           "mei": ("did:plc:mei00000000000000000000", "Mei Tanaka")}
WATCHLIST = Watchlist(persons=tuple(
    Person(key=k, display_name=alias, aliases=[alias],
           handles={"bluesky": [did], "mastodon": [f"@{k}@journa.host"]})
    for k, (did, alias) in PERSONS.items()
))
Expected = set[tuple[str, str, str]]


@dataclass
class Source:
    """A connector's loopback source: build a connector, what it must publish, when done."""

    make: Callable[[Publisher], StreamingConnector]
    expected: Expected
    at_end: Callable[[StreamingConnector], bool]
    feed: Callable[[], None] = lambda: None  # for sources that push while the connector runs


def jetstream_source(stack: ExitStack, tmp: Path) -> Source:
    frames, exp, profiles = firehose(1500, PERSONS, seed=3, bad_frames=3)
    peer = stack.enter_context(JetstreamPeer(frames, profiles=profiles, frames_per_second=3000))
    last = max(orjson.loads(f)["time_us"] for f in frames if f.startswith(b'{"did":"'))
    return Source(
        lambda pub: JetstreamConnector(pub, WatchlistMatcher(WATCHLIST, "bluesky"), url=peer.url,
                                       idle_seconds=0.2),
        {(e.person, e.id, e.matched_by) for e in exp},
        lambda c: bool(c.position) and c.position["time_us"] >= last,
    )


def mastodon_source(stack: ExitStack, tmp: Path) -> Source:
    peer = stack.enter_context(MastodonPeer())
    expected: Expected = set()

    def feed() -> None:
        # A first start with no position follows the stream from the moment it connects
        # (``backfill_hours`` reaches further back), so feed only once it is connected.
        wait_until(lambda: peer.streaming_clients >= 1)
        for i in range(120):
            status = peer.status(f"@amara hello {i}")
            peer.notify("mention" if i % 5 else "favourite", status)
            if i % 5:
                expected.add(("amara", f"mastodon:{status['uri']}", "mention"))
            time.sleep(0.005)

    def at_end(c: StreamingConnector) -> bool:
        mentions = [n["id"] for n in peer.notifications if n["type"] == "mention"]
        return len(mentions) == 96 and bool(c.position) and (
            id_key(c.position["last_id"]) >= id_key(mentions[-1]))

    def make(pub: Publisher) -> StreamingConnector:
        connector = MastodonConnector(pub, WatchlistMatcher(WATCHLIST, "mastodon"),
                                      instance=peer.url, token=peer.token,
                                      watch=Watch("notifications", person="amara"),
                                      idle_seconds=0.2)
        return connector

    return Source(make, expected, at_end, feed)


def _replay(path: Path, expected: Expected, **kw: Any) -> Source:
    rows = sum(1 for _ in path.open()) - (0 if path.suffix == ".jsonl" else 1)
    last_line = rows if path.suffix == ".jsonl" else rows + 1
    return Source(
        lambda pub: ReplayConnector(pub, path, matcher=WatchlistMatcher(WATCHLIST, "replay"),
                                    **kw),
        expected, lambda c: bool(c.position) and c.position["line"] >= last_line,
    )


def replay_jsonl_source(stack: ExitStack, tmp: Path) -> Source:
    now = datetime.now(UTC)
    items = [mention("amara" if i % 3 else "mei", at=now - timedelta(minutes=500 - i))
             for i in range(500)]
    path = tmp / "mentions.jsonl"
    lines = [orjson.dumps(m) for m in items]
    lines.insert(100, b"{broken")
    lines.insert(200, b"")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return _replay(path, {(m["person"], m["id"], m["matched_by"]) for m in items}, speed=0)


def replay_coordination_source(stack: ExitStack, tmp: Path) -> Source:
    path = tmp / "campaign.csv"
    expected: Expected = set()
    now = datetime.now(UTC)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["message_id", "user_id", "username", "reply_id", "message", "timestamp",
                    "urls"])
        for i in range(400):
            text = f"everyone look at Mei Tanaka again {i}" if i % 2 else f"lunch {i}"
            at = (now - timedelta(minutes=400 - i)).timestamp()
            w.writerow([f"m{i}", f"u{i % 37}", f"user{i % 37}", "" if i % 4 else "m0", text,
                        f"{at:.0f}", "https://a.example/x https://b.example/y"])
            if i % 2:
                expected.add(("mei", f"replay:m{i}", "keyword"))
        w.writerow(["bad", "u1", "x", "", "Mei Tanaka", "not a time", ""])
    return _replay(path, expected)


SOURCES = {
    "jetstream": jetstream_source,
    "mastodon": mastodon_source,
    "replay-jsonl": replay_jsonl_source,
    "replay-coordination": replay_coordination_source,
}


@contextmanager
def running(connector: StreamingConnector) -> Iterator[list[int]]:
    result: list[int] = []
    connector.start()
    thread = threading.Thread(target=lambda: result.append(connector.run()))
    thread.start()
    try:
        yield result
    finally:
        connector.stop()
        thread.join(30)
        assert not thread.is_alive(), "run() did not return within 30 s of stop()"



@pytest.fixture(params=sorted(SOURCES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    with ExitStack() as stack:
        yield SOURCES[request.param](stack, tmp_path)


def _publisher(bootstrap: str, topic: str, store: MemoryCheckpoints) -> Publisher:
    return Publisher("contract", MentionProducer(bootstrap, topic, invalid_topic=topic + ".bad"),
                     store, connection=bootstrap, commit_seconds=0.2, commit_mentions=50)


class TestConnectorContract:
    def test_stopped_and_resumed_publishes_every_mention_exactly_once(
        self, case: Source, embedded_broker: EmbeddedBroker
    ) -> None:
        topic, store = f"raw-{uuid.uuid4().hex[:8]}", MemoryCheckpoints()
        first = case.make(_publisher(embedded_broker.bootstrap, topic, store))
        with running(first):
            feeder = threading.Thread(target=case.feed)
            feeder.start()
            wait_until(lambda: first.publisher.published >= 20)
        saved = store.saved["contract"]["position"]
        assert first.checkpoint() == {"position": saved}  # only what the broker acknowledged
        second = case.make(_publisher(embedded_broker.bootstrap, topic, store))
        with running(second) as result:
            feeder.join()
            wait_until(lambda: case.at_end(second))
            time.sleep(0.3)
        assert result and result[0] == second.publisher.published
        mentions = published(embedded_broker.bootstrap, topic, "contract")
        got, twice = once_each(mentions)
        assert got == case.expected
        assert twice == 0
        for m in mentions:
            Mention.model_validate(m)
            assert m["person"] in WATCHLIST

    def test_stop_before_any_event_returns_promptly(
        self, case: Source, embedded_broker: EmbeddedBroker
    ) -> None:
        topic = f"raw-{uuid.uuid4().hex[:8]}"
        connector = case.make(_publisher(embedded_broker.bootstrap, topic, MemoryCheckpoints()))
        started = time.monotonic()
        with running(connector):
            pass
        assert time.monotonic() - started < 15


def test_sources_cover_every_streaming_connector() -> None:
    kinds = {JetstreamConnector, MastodonConnector, ReplayConnector}
    assert {c.__name__ for c in kinds} == {c.__name__ for c in StreamingConnector.__subclasses__()}
    assert all(isinstance(s, AbstractContextManager) or callable(s) for s in SOURCES.values())
