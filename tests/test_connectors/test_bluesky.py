from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.connectors.bluesky import BadEvent, JetstreamConnector, JetstreamMatcher, ProfileLookup
from pileon.connectors.checkpoint import MemoryCheckpoints
from pileon.connectors.matching import WatchlistMatcher
from pileon.connectors.metrics import CONNECTOR_EVENTS
from pileon.connectors.producer import MentionProducer
from pileon.connectors.publisher import Publisher
from pileon.core.watchlist import Person, Watchlist
from pileon.kafka.broker import EmbeddedBroker
from pileon.schema.mention import Mention
from tests.peers.jetstream import POST, Expected, JetstreamPeer, firehose
from tests.test_connectors.kafka_reading import once_each, published

PERSONS = {"amara": ("did:plc:amara000000000000000000", "Amara Okafor"),
           "lucas": ("did:plc:lucas000000000000000000", "Lucas Ferreira")}
WATCHLIST = Watchlist(persons=tuple(
    Person(key=k, display_name=alias, handles={"bluesky": [did, f"{k}.bsky.social"]},
           aliases=[alias]) for k, (did, alias) in PERSONS.items()
))
AMARA = PERSONS["amara"][0]


def post(record: dict[str, Any], *, did: str = "did:plc:someone", time_us: int = 1) -> dict:
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": {
        "rev": "r", "operation": "create", "collection": POST, "rkey": "3kabc",
        "record": {"$type": POST, "text": "", "createdAt": "2026-01-01T00:00:00Z", **record},
        "cid": "bafy"}}


@pytest.fixture
def jet() -> JetstreamMatcher:
    return JetstreamMatcher(WatchlistMatcher(WATCHLIST, "bluesky"))


class TestJetstreamMatcher:
    def test_mention_facet_names_the_person(self, jet: JetstreamMatcher) -> None:
        event = post({"text": "@amara hi", "facets": [{"index": {"byteStart": 0, "byteEnd": 6},
                      "features": [{"$type": "app.bsky.richtext.facet#mention", "did": AMARA}]}]})
        [m] = jet.mentions(event)
        assert (m["person"], m["matched_by"], m["matched_term"]) == ("amara", "mention", AMARA)
        assert m["id"] == f"bluesky:at://did:plc:someone/{POST}/3kabc"
        assert m["url"] == "https://bsky.app/profile/did:plc:someone/post/3kabc"
        Mention.model_validate(m)

    @pytest.mark.parametrize("field", ["parent", "root"])
    def test_reply_to_their_post_as_parent_or_root(self, jet: JetstreamMatcher, field: str) -> None:
        theirs = {"uri": f"at://{AMARA}/{POST}/3kp", "cid": "c"}
        other = {"uri": f"at://did:plc:x/{POST}/3kq", "cid": "c"}
        reply = {"parent": other, "root": other, field: theirs}
        [m] = jet.mentions(post({"reply": reply}))
        assert (m["person"], m["matched_by"], m["in_reply_to"]) == (
            "amara", "reply", reply["parent"]["uri"])

    def test_quote_and_quote_with_media(self, jet: JetstreamMatcher) -> None:
        quoted = {"uri": f"at://{AMARA}/{POST}/3kp", "cid": "c"}
        plain = {"$type": "app.bsky.embed.record", "record": quoted}
        media = {"$type": "app.bsky.embed.recordWithMedia", "record": plain, "media": {}}
        for embed in (plain, media):
            [m] = jet.mentions(post({"embed": embed}))
            assert (m["matched_by"], m["quote_of"]) == ("quote", quoted["uri"])

    def test_alias_in_text_on_word_boundaries_even_with_homoglyphs(
        self, jet: JetstreamMatcher
    ) -> None:
        assert [(m["matched_by"], m["matched_term"]) for m in jet.mentions(
            post({"text": "AMARA okafor!!"}))] == [("keyword", "Amara Okafor")]
        assert jet.mentions(post({"text": "what is Аmаrа Okаfor up to"}))  # Cyrillic А, а
        assert jet.mentions(post({"text": "amaraokafor fan club"})) == []

    def test_strongest_reason_wins_and_each_person_once(self, jet: JetstreamMatcher) -> None:
        event = post({"text": "Amara Okafor and Lucas Ferreira", "facets": [{"features": [
            {"$type": "app.bsky.richtext.facet#mention", "did": AMARA}]}]})
        got = {m["person"]: m["matched_by"] for m in jet.mentions(event)}
        assert got == {"amara": "mention", "lucas": "keyword"}

    def test_the_persons_own_posts_are_not_mentions_of_them(self, jet: JetstreamMatcher) -> None:
        assert jet.mentions(post({"text": "Amara Okafor here"}, did=AMARA)) == []

    def test_deletes_identity_and_other_collections_are_not_posts(
        self, jet: JetstreamMatcher
    ) -> None:
        delete = {"did": "did:plc:x", "time_us": 5, "kind": "commit", "commit": {
            "operation": "delete", "collection": POST, "rkey": "k"}}
        like = post({"text": "Amara Okafor"})
        like["commit"]["collection"] = "app.bsky.feed.like"
        for event in (delete, like, {"did": "did:plc:x", "time_us": 5, "kind": "identity"}):
            assert jet.matches(event) == ([], None)

    def test_event_time_is_jetstream_time_not_the_client_claim(
        self, jet: JetstreamMatcher
    ) -> None:
        [m] = jet.mentions(post({"text": "Amara Okafor"}, time_us=1_764_000_000_000_000))
        assert m["created_at"].startswith("2025-11-24T16:00:00")
        assert m["raw"]["commit"]["record"]["createdAt"] == "2026-01-01T00:00:00Z"

    @pytest.mark.parametrize("frame", [b"nope", b"[]", b'{"time_us": "x"}', b"\xff\xfe"])
    def test_unusable_frames_raise_bad_event(self, jet: JetstreamMatcher, frame: bytes) -> None:
        with pytest.raises(BadEvent):
            jet.parse(frame)

    @settings(max_examples=300, deadline=None)
    @given(st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["text", "facets", "features", "$type", "did", "reply", "parent",
                             "root", "uri", "embed", "record", "langs", "rkey"]),
            inner, max_size=4),
        max_leaves=12))
    def test_any_record_shape_gives_valid_mentions_or_bad_event(self, record: Any) -> None:
        jet = JetstreamMatcher(WatchlistMatcher(WATCHLIST, "bluesky"))
        event = post({"text": "Amara Okafor"})
        event["commit"]["record"] = record
        try:
            found = jet.mentions(jet.parse(orjson.dumps(event)))
        except BadEvent:
            return
        for m in found:
            Mention.model_validate(m)


class TestProfileLookup:
    def test_account_age_is_fetched_once_and_cached(self) -> None:
        profiles = {"did:plc:someone": {"handle": "s.bsky.social", "followersCount": 3,
                                        "createdAt": "2026-11-20T00:00:00.000Z"}}
        with JetstreamPeer([], profiles=profiles) as peer:
            lookup = ProfileLookup(peer.http_url, connector="t")
            first = lookup.get("did:plc:someone")
            assert lookup.get("did:plc:someone") == first
            assert lookup.get("did:plc:unknown") == {}
        assert first == {"created_at": "2026-11-20T00:00:00.000Z", "followers": 3,
                         "handle": "s.bsky.social"}
        assert peer.profile_requests == 2


def _connector(bootstrap: str, topic: str, peer: JetstreamPeer, store: MemoryCheckpoints,
               name: str) -> JetstreamConnector:
    publisher = Publisher(name, MentionProducer(bootstrap, topic), store, connection=bootstrap,
                          commit_seconds=0.2)
    return JetstreamConnector(publisher, WatchlistMatcher(WATCHLIST, "bluesky"), url=peer.url,
                              profiles=ProfileLookup(peer.http_url, connector=name),
                              idle_seconds=0.2)


def _run_until(connector: JetstreamConnector, done: Any, timeout: float = 60) -> int:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(connector.run()))
    connector.start()
    thread.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # let the idle commit land
    connector.stop()
    thread.join(30)
    assert result, "the connector did not return after stop()"
    return result[0]


def _at_end(connector: JetstreamConnector, frames: list[bytes]) -> bool:
    last = max(int(orjson.loads(f)["time_us"]) for f in frames if f.startswith(b'{"did":"'))
    return bool(connector.position) and connector.position["time_us"] >= last


def _expected(exp: set[Expected]) -> set[tuple[str, str, str]]:
    return {(e.person, e.id, e.matched_by) for e in exp}


class TestJetstreamConnector:
    def test_drops_mid_stream_lose_nothing_and_repeat_nothing(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        frames, expected, profiles = firehose(3000, PERSONS, bad_frames=5)
        topic, store = f"raw-{uuid.uuid4().hex[:8]}", MemoryCheckpoints()
        bad_before = CONNECTOR_EVENTS.labels("jet", "bad_frame")._value.get()
        with JetstreamPeer(frames, drop_after=[700, 900, 1], profiles=profiles) as peer:
            connector = _connector(embedded_broker.bootstrap, topic, peer, store, "jet")
            _run_until(connector, lambda: _at_end(connector, frames))
        got, twice = once_each(published(embedded_broker.bootstrap, topic, "jet"))
        assert got == _expected(expected)
        assert twice == 0
        assert peer.cursors[0] is None and all(c for c in peer.cursors[1:])
        assert len(peer.cursors) == 4  # three drops, three reconnects from the cursor
        bad = CONNECTOR_EVENTS.labels("jet", "bad_frame")._value.get() - bad_before
        assert bad >= 3  # counted, not fatal (some bad frames are replayed after a drop)
        ages = [m for m in published(embedded_broker.bootstrap, topic)
                if m["author"].get("created_at")]
        assert len(ages) == len(expected)  # every matched author's age was looked up

    def test_restart_resumes_from_the_checkpoint(self, embedded_broker: EmbeddedBroker) -> None:
        frames, expected, profiles = firehose(2000, PERSONS, seed=11)
        topic, store = f"raw-{uuid.uuid4().hex[:8]}", MemoryCheckpoints()
        with JetstreamPeer(frames, profiles=profiles, frames_per_second=4000) as peer:
            first = _connector(embedded_broker.bootstrap, topic, peer, store, "jet")
            _run_until(first, lambda: peer.sent >= 800)
            cursor = store.saved["jet"]["position"]["time_us"]
            second = _connector(embedded_broker.bootstrap, topic, peer, store, "jet")
            _run_until(second, lambda: _at_end(second, frames))
        assert peer.cursors[-1] == cursor
        got, twice = once_each(published(embedded_broker.bootstrap, topic, "jet"))
        assert got == _expected(expected) and twice == 0


def test_event_times_are_utc() -> None:
    jet = JetstreamMatcher(WatchlistMatcher(WATCHLIST, "bluesky"))
    [m] = jet.mentions(post({"text": "Amara Okafor"}, time_us=0))
    assert datetime.fromisoformat(m["created_at"]) == datetime(1970, 1, 1, tzinfo=UTC)


class TestFirstStartBackfill:
    def test_a_new_connector_replays_the_last_hours_from_jetstream(
        self, embedded_broker: EmbeddedBroker
    ) -> None:
        now = datetime.now(UTC)
        old, _, profiles = firehose(400, PERSONS, seed=1, start=now - timedelta(hours=2))
        recent, expected, more = firehose(400, PERSONS, seed=2, start=now - timedelta(minutes=30))
        recent = [f.replace(b'"rkey":"3k', b'"rkey":"3r') for f in recent]
        want = {(e.person, e.id.replace("/3k", "/3r"), e.matched_by) for e in expected}
        topic, store = f"raw-{uuid.uuid4().hex[:8]}", MemoryCheckpoints()
        with JetstreamPeer(old + recent, profiles={**profiles, **more}) as peer:
            publisher = Publisher("jet", MentionProducer(embedded_broker.bootstrap, topic), store,
                                  connection=embedded_broker.bootstrap, commit_seconds=0.2)
            connector = JetstreamConnector(publisher, WatchlistMatcher(WATCHLIST, "bluesky"),
                                           url=peer.url, idle_seconds=0.2, backfill_hours=1)
            _run_until(connector, lambda: _at_end(connector, recent))
        cutoff = (now - timedelta(hours=1)).timestamp() * 1e6
        assert peer.cursors[0] is not None and abs(peer.cursors[0] - cutoff) < 60e6
        got, twice = once_each(published(embedded_broker.bootstrap, topic, "jet"))
        assert got == want and twice == 0
