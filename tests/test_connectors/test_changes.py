"""Deletions and edits on the platforms' streams become ``pileon.change/v1`` events on
``mentions.changes``, linked to the mention they are about; changes of other posts do not."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from pileon.connectors.bluesky import BadEvent, JetstreamConnector, JetstreamMatcher
from pileon.connectors.checkpoint import MemoryCheckpoints
from pileon.connectors.mastodon import MastodonConnector, Watch
from pileon.connectors.matching import WatchlistMatcher
from pileon.connectors.metrics import CONNECTOR_EVENTS
from pileon.connectors.producer import MentionProducer
from pileon.connectors.publisher import Publisher
from pileon.kafka.broker import EmbeddedBroker
from pileon.schema.change import ChangeEvent
from tests.peers.jetstream import POST, JetstreamPeer
from tests.peers.mastodon import MastodonPeer
from tests.test_connectors.test_bluesky import AMARA, WATCHLIST, post
from tests.test_connectors.test_mastodon import WATCHLIST as MASTODON_WATCHLIST
from tests.waiting import wait_until


def _changes(bootstrap: str, topic: str) -> list[tuple[bytes, ChangeEvent]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline
            for records in consumer.poll(timeout_ms=300).values():
                out += [(r.key, ChangeEvent.from_json(r.value)) for r in records]
        return out
    finally:
        consumer.close()


def _run(connector: Any, done: Any) -> None:
    thread = threading.Thread(target=connector.run)
    connector.start()
    thread.start()
    wait_until(done, timeout=30)
    time.sleep(0.5)  # an idle commit flushes the producer
    connector.stop()
    thread.join(30)


def _publisher(bootstrap: str, name: str, raw: str, changes: str) -> Publisher:
    return Publisher(name, MentionProducer(bootstrap, raw), MemoryCheckpoints(),
                     connection=bootstrap, commit_seconds=0.2, changes_topic=changes)


def _commit(rkey: str, operation: str, t: int, record: dict[str, Any] | None = None,
            did: str = "did:plc:troll") -> bytes:
    commit: dict[str, Any] = {"rev": "r", "operation": operation, "collection": POST,
                              "rkey": rkey}
    if record is not None:
        commit["record"] = {"$type": POST, "createdAt": "2026-01-01T00:00:00Z", **record}
    return orjson.dumps({"did": did, "time_us": t, "kind": "commit", "commit": commit})


class TestJetstream:
    def test_the_matcher_names_deletes_and_updates_of_posts_only(self) -> None:
        jet = JetstreamMatcher(WatchlistMatcher(WATCHLIST, "bluesky"))
        uri = f"at://did:plc:troll/{POST}/3kaaa"
        assert jet.change(orjson.loads(_commit("3kaaa", "delete", 5))) == (uri, "delete", None)
        assert jet.change(orjson.loads(_commit("3kaaa", "update", 5, {"text": "x"})))[:2] == (
            uri, "update")
        assert jet.change(post({"text": "hi"})) is None  # a create
        with pytest.raises(BadEvent, match="without author did or rkey"):
            jet.change({"did": "did:plc:x", "time_us": 1, "kind": "commit", "commit": {
                "operation": "delete", "collection": POST}})

    def test_a_deleted_and_an_edited_mention_become_change_events(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        raw, changes = f"raw-{uuid.uuid4().hex[:8]}", f"changes-{uuid.uuid4().hex[:8]}"
        t = int(time.time() * 1e6) - 60_000_000
        mention = {"text": "look at this", "facets": [{"index": {"byteStart": 0, "byteEnd": 4},
                   "features": [{"$type": "app.bsky.richtext.facet#mention", "did": AMARA}]}]}
        frames = [
            _commit("3kmention", "create", t, mention),
            _commit("3kother", "create", t + 1, {"text": "nothing to see"}),
            _commit("3kmention", "update", t + 2, {**mention, "text": "edited to hide it"}),
            _commit("3kmention", "delete", t + 3),
            _commit("3kother", "delete", t + 4),  # not a mention: no change event
            _commit("3kunknown", "delete", t + 5),  # never seen
        ]
        unknown = CONNECTOR_EVENTS.labels("jet-ch", "deleted_unknown_post")._value.get()
        with JetstreamPeer(frames) as peer:
            connector = JetstreamConnector(
                _publisher(embedded_broker.bootstrap, "jet-ch", raw, changes),
                WatchlistMatcher(WATCHLIST, "bluesky"), url=peer.url, idle_seconds=0.2)
            _run(connector, lambda: (connector.position or {}).get("time_us") == t + 5)
        got = _changes(embedded_broker.bootstrap, changes)
        of = f"bluesky:at://did:plc:troll/{POST}/3kmention"
        assert [(k, c.of, c.person, c.state) for k, c in got] == [
            (b"amara", of, "amara", "edited"), (b"amara", of, "amara", "deleted")]
        edited, deleted = got[0][1], got[1][1]
        assert edited.text == "edited to hide it" and edited.source == "jetstream update commit"
        assert deleted.raw["commit"]["operation"] == "delete"
        assert deleted.event_at is not None and abs(
            deleted.event_at.timestamp() - (t + 3) / 1e6) < 1e-3
        assert CONNECTOR_EVENTS.labels("jet-ch", "deleted_unknown_post")._value.get() \
            - unknown == 2


class TestMastodon:
    def test_a_deleted_and_an_edited_mention_become_change_events(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        raw, changes = f"raw-{uuid.uuid4().hex[:8]}", f"changes-{uuid.uuid4().hex[:8]}"
        with MastodonPeer() as peer:
            connector = MastodonConnector(
                _publisher(embedded_broker.bootstrap, "masto-ch", raw, changes),
                WatchlistMatcher(MASTODON_WATCHLIST, "mastodon"), instance=peer.url,
                token=peer.token, watch=Watch("notifications", person="amara"),
                idle_seconds=0.2)
            thread = threading.Thread(target=connector.run)
            connector.start()
            thread.start()
            try:
                wait_until(lambda: peer.streaming_clients == 1)
                status = peer.status("hey @amara you again")
                peer.notify("mention", status)
                wait_until(lambda: bool(connector.recent.get(status["id"])))
                peer.edit(status, "hey @amara nothing happened")
                peer.delete(status)
                peer.delete(peer.status("someone else's post"))  # not a mention: nothing
                wait_until(lambda: CONNECTOR_EVENTS.labels(
                    "masto-ch", "deleted_unknown_post")._value.get() >= 1)
                time.sleep(0.5)
            finally:
                connector.stop()
                thread.join(30)
        got = [c for _, c in _changes(embedded_broker.bootstrap, changes)]
        of = f"mastodon:{status['uri']}"
        assert [(c.of, c.person, c.state, c.platform) for c in got] == [
            (of, "amara", "edited", "mastodon"), (of, "amara", "deleted", "mastodon")]
        assert got[0].text == "hey @amara nothing happened"
        assert got[0].event_at is not None
        assert got[1].raw == {"stream": ["user"], "event": "delete", "payload": status["id"]}
        entry = got[1].log_entry()
        assert entry["of"] == of and entry["look"] == "stream: mastodon delete event"
