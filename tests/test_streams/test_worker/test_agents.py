"""The worker's one-pass batch (streams/worker/agents.py) with its real ingest and analysis:
what it produces, in which order, and what it does when a produce or a message fails. The
topics stand in for Faust's (a send returns a future the broker resolves later); the pass
against real brokers: tests/test_integration/test_pipeline.py and test_faults.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import namedtuple
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError

from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.settings import Settings
from pileon.core.watchlist import Watchlist
from pileon.kafka.topics import key_partition
from pileon.schema.verdict import Verdict
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Ingestor
from pileon.streams.detection.neardup import Signer
from pileon.streams.worker.agents import BatchPass, Topics
from pileon.streams.worker.person_table import person_of

Message = namedtuple("Message", "topic partition offset timestamp generation_id headers")
Event = namedtuple("Event", "key value message")
END = datetime(2026, 11, 20, 18, 0, tzinfo=UTC).timestamp()


class Broker:
    """Records what is produced and when the broker acknowledges it."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, Any]] = []  # (what, topic, value)
        self.fail_next: dict[str, int] = {}
        self.max_batch_bytes: dict[str, int] = {}  # the topic's max.message.bytes
        self.batches: list[tuple[str, int, int]] = []  # (topic, partition, records)

    def topic(self, name: str) -> Any:
        broker = self

        class Topic:
            def get_topic_name(self) -> str:
                return f"t.{name}"

            async def send(self, key: Any = None, value: Any = None, partition: Any = None,
                           headers: Any = None) -> asyncio.Future[Any]:
                broker.log.append(("sent", name, value))
                return broker.acknowledge_later(name, [value])

        return Topic()

    def acknowledge_later(self, name: str, values: list[Any]) -> asyncio.Future[Any]:
        """A send's future: acknowledged 1 ms later, or failed if ``fail_next`` says so."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def resolve() -> None:
            failing = self.fail_next.get(name, 0)
            if sum(map(len, values)) > self.max_batch_bytes.get(name, 1 << 30):
                future.set_exception(MessageSizeTooLargeError())
            elif failing:
                self.fail_next[name] = failing - 1
                future.set_exception(ConnectionError("broker away"))
            else:
                self.log.extend(("acked", name, value) for value in values)
                future.set_result(None)

        asyncio.get_running_loop().call_later(0.001, resolve)
        return future

    def producer(self) -> Any:
        """aiokafka's batch API as the worker uses it: record batches of at most 10 records."""
        broker = self

        class Builder:
            def __init__(self) -> None:
                self.values: list[bytes] = []
                self.closed = False

            def append(self, *, key: bytes, value: bytes, timestamp: Any, headers: Any) -> Any:
                if self.closed or len(self.values) >= 10:
                    return None
                self.values.append(value)
                return object()

            def close(self) -> None:
                self.closed = True

        class Producer:
            def create_batch(self) -> Builder:
                return Builder()

            async def partitions_for(self, topic: str) -> set[int]:
                return {0, 1, 2, 3}

            async def send_batch(self, batch: Builder, topic: str, *,
                                 partition: int) -> asyncio.Future[Any]:
                assert batch.closed, "an open builder would linger"
                name = topic.removeprefix("t.")
                for value in batch.values:
                    broker.log.append(("sent", name, value))
                broker.batches.append((name, partition, len(batch.values)))
                return broker.acknowledge_later(name, batch.values)

        return Producer()

    def values(self, what: str, topic: str) -> list[Any]:
        return [v for w, t, v in self.log if w == what and t == topic]


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def one_pass(broker: Broker, settings: Settings, watchlist: Watchlist) -> BatchPass:
    topics = Topics(*(broker.topic(n) for n in ("raw", "clean", "invalid", "alerts")))
    homes = {p: key_partition(p.encode(), 4) for p in watchlist.keys}
    ingestor = Ingestor(frozenset(watchlist.keys), settings.ingest, {}, homes=homes)
    signer = Signer(b"test-key-0123456789abcdef", settings.neardup.num_perm)
    analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer, {}, {})
    producer = broker.producer()
    return BatchPass(topics, ingestor, analyser, lambda: 3, producer=lambda: producer)


def _events(mentions: list[dict[str, Any]], generation: int = 3) -> list[Event]:
    out = []
    for offset, m in enumerate(mentions):
        key = m["person"].encode()
        out.append(Event(key, orjson.dumps(m), Message(
            "raw", key_partition(key, 4), offset, m["created_at"] and 1.0, generation, [])))
    return out


def _pileon() -> list[dict[str, Any]]:
    sim = Simulator({"amara": "Amara"}, end=END, days=1, seed=11, pileon=PileOnScript("amara"))
    return sim.mentions()


def _run(one_pass: BatchPass, events: list[Event], size: int = 500) -> None:
    async def run() -> None:
        for i in range(0, len(events), size):
            await one_pass.run(events[i:i + size])

    asyncio.run(run())


class TestBatchPass:
    def test_every_mention_is_produced_clean_and_the_pileon_pages_once(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()
        _run(one_pass, _events(mentions))
        clean = [orjson.loads(v)["id"] for v in broker.values("acked", "clean")]
        assert sorted(clean) == sorted(m["id"] for m in mentions)
        opened = [a for a in map(orjson.loads, broker.values("acked", "alerts"))
                  if a["transition"] == "opened"]
        assert len(opened) == 1 and opened[0]["person"] == "amara"
        assert not one_pass.analyser.outbox("amara")  # delivered: out of the outbox

    def test_alerts_are_produced_only_after_the_broker_acknowledged_their_batch(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()
        _run(one_pass, _events(mentions))
        first_alert = next(i for i, (w, t, _) in enumerate(broker.log)
                           if w == "sent" and t == "alerts")
        before = broker.log[:first_alert]
        sent = [v for w, t, v in before if w == "sent" and t == "clean"]
        acked = [v for w, t, v in before if w == "acked" and t == "clean"]
        assert sent and sorted(sent) == sorted(acked)

    def test_alerts_wait_until_the_state_that_holds_them_is_in_the_changelog(
        self, broker: Broker, settings: Settings, watchlist: Watchlist
    ) -> None:
        # Killed after an alert but before its state landed, a restarted worker decides again
        # from the older state and can page a second time under another key.
        class Changelog(dict[bytes, bytes]):
            def __setitem__(self, key: bytes, value: bytes) -> None:
                broker.log.append(("sent", "changelog", value))
                super().__setitem__(key, value)

        async def durable(wait: bool) -> None:
            if not wait:
                return
            await asyncio.sleep(0.002)
            pending = [v for w, t, v in broker.log if w == "sent" and t == "changelog"]
            done = {id(v) for w, t, v in broker.log if w == "acked" and t == "changelog"}
            broker.log.extend(("acked", "changelog", v) for v in pending if id(v) not in done)

        topics = Topics(*(broker.topic(n) for n in ("raw", "clean", "invalid", "alerts")))
        ingestor = Ingestor(frozenset(watchlist.keys), settings.ingest, {})
        signer = Signer(b"test-key-0123456789abcdef", settings.neardup.num_perm)
        analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer,
                                  Changelog(), Changelog(), buffered=True)
        _run(BatchPass(topics, ingestor, analyser, lambda: 3, durable=durable),
             _events(_pileon()))
        first_alert = next(i for i, (w, t, _) in enumerate(broker.log)
                           if w == "sent" and t == "alerts")
        opening = orjson.loads(broker.log[first_alert][2])["idempotency_key"]
        before = broker.log[:first_alert]
        sent = [id(v) for w, t, v in before if w == "sent" and t == "changelog"]
        acked = [id(v) for w, t, v in before if w == "acked" and t == "changelog"]
        assert sent and sorted(sent) == sorted(acked)
        held = [v for w, t, v in before
                if w == "acked" and t == "changelog" and opening.encode() in v]
        assert held, "no acknowledged state held the alert before it was produced"

    def test_a_batch_whose_table_changes_were_lost_sends_no_alert(
        self, broker: Broker, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.streams.worker.person_table import ChangelogLost

        async def lost(wait: bool) -> None:
            raise ChangelogLost("1 of 3 table changes were not acknowledged")

        topics = Topics(*(broker.topic(n) for n in ("raw", "clean", "invalid", "alerts")))
        ingestor = Ingestor(frozenset(watchlist.keys), settings.ingest, {})
        signer = Signer(b"test-key-0123456789abcdef", settings.neardup.num_perm)
        analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer,
                                  {}, {}, buffered=True)
        one_pass = BatchPass(topics, ingestor, analyser, lambda: 3, durable=lost)
        with pytest.raises(ChangelogLost):  # run_or_exit stops the worker on it
            _run(one_pass, _events(_pileon()), size=100_000)
        assert broker.values("sent", "alerts") == []

    def test_a_failed_produce_is_produced_again_before_the_batch_ends(
        self, one_pass: BatchPass, broker: Broker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pileon.streams.worker import agents

        monkeypatch.setattr(agents, "_RETRY_SECONDS", (0.0,))
        broker.fail_next["clean"] = 3
        mentions = _pileon()[:50]
        _run(one_pass, _events(mentions))
        acked = [orjson.loads(v)["id"] for v in broker.values("acked", "clean")]
        assert sorted(acked) == sorted(m["id"] for m in mentions)
        # three record batches of ten failed; each was produced again whole
        assert len(broker.values("sent", "clean")) == len(mentions) + 30

    @pytest.mark.timeout(60)
    def test_a_clean_mention_the_broker_refuses_as_too_large_is_dead_lettered(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        # The clean topic's max.message.bytes below what ingest lets through: retried as it
        # was, the mention would be refused forever and stall its partition.
        mentions = _pileon()[:25]
        mentions[7]["text"] = "x " * 1500
        events = _events(mentions)
        big = max(len(orjson.dumps(m)) for m in mentions)
        broker.max_batch_bytes["clean"] = big - 200  # a batch of ten is refused too: split
        _run(one_pass, events)
        acked = [orjson.loads(v)["id"] for v in broker.values("acked", "clean")]
        # (in another order: the batches after a refused one were appended before it was
        # split, as after any failed produce)
        assert sorted(acked) == sorted(m["id"] for i, m in enumerate(mentions) if i != 7)
        letters = [orjson.loads(v) for v in broker.values("acked", "invalid")]
        assert [x["reason"] for x in letters] == ["too_large"]
        assert letters[0]["origin"]["offset"] == 7
        assert letters[0]["value_sha256"] == hashlib.sha256(events[7].value).hexdigest()

    @pytest.mark.timeout(60)
    def test_a_dead_letter_the_broker_refuses_as_too_large_goes_again_with_a_head(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()[:3]
        events = _events(mentions)
        garbage = b"{" + b"x" * 20_000  # not JSON: a dead letter keeping it whole is ~27 kB
        events[1] = events[1]._replace(value=garbage)
        broker.max_batch_bytes["invalid"] = 4000
        _run(one_pass, events)
        letters = [orjson.loads(v) for v in broker.values("acked", "invalid")]
        assert len(letters) == 1
        letter = letters[0]
        assert letter["reason"] == "not_json" and letter["value_truncated"] is True
        assert base64.b64decode(letter["value_b64"]) == garbage[:1024]
        assert letter["value_sha256"] == hashlib.sha256(garbage).hexdigest()
        assert letter["value_bytes"] == len(garbage)
        assert (letter["origin"]["partition"], letter["origin"]["offset"]) == (
            events[1].message.partition, 1)
        assert len(broker.values("acked", "clean")) == 2

    def test_clean_mentions_go_in_record_batches_to_their_persons_partition_in_order(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()[:95]
        _run(one_pass, _events(mentions))
        home = key_partition(b"amara", 4)
        assert broker.batches == [("clean", home, 10)] * 9 + [("clean", home, 5)]
        acked = [orjson.loads(v)["id"] for v in broker.values("acked", "clean")]
        assert acked == [m["id"] for m in mentions]

    def test_a_large_clean_mention_is_produced_alone(
        self, one_pass: BatchPass, broker: Broker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pileon.streams.worker import agents

        mentions = _pileon()[:12]
        sizes = sorted(len(orjson.dumps(m)) for m in mentions)
        monkeypatch.setattr(agents, "_BATCHED_MAX_BYTES", sizes[len(sizes) // 2])
        _run(one_pass, _events(mentions))
        batched = sum(n for _, _, n in broker.batches)
        assert 0 < batched < 12
        assert sorted(orjson.loads(v)["id"] for v in broker.values("acked", "clean")) == sorted(
            m["id"] for m in mentions)

    def test_without_a_batch_producer_each_clean_mention_is_produced_alone(
        self, broker: Broker, settings: Settings, watchlist: Watchlist
    ) -> None:
        topics = Topics(*(broker.topic(n) for n in ("raw", "clean", "invalid", "alerts")))
        homes = {p: key_partition(p.encode(), 4) for p in watchlist.keys}
        ingestor = Ingestor(frozenset(watchlist.keys), settings.ingest, {}, homes=homes)
        signer = Signer(b"test-key-0123456789abcdef", settings.neardup.num_perm)
        analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer, {}, {})
        mentions = _pileon()[:12]
        _run(BatchPass(topics, ingestor, analyser, lambda: 3), _events(mentions))
        assert broker.batches == []
        assert len(broker.values("acked", "clean")) == 12

    def test_a_message_whose_processing_raises_is_dead_lettered_and_the_rest_go_on(
        self, one_pass: BatchPass, broker: Broker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        mentions = _pileon()[:20]
        poison = mentions[5]["id"]
        process = one_pass.analyser.process

        def failing(mention: Any) -> Any:
            if mention.id == poison:
                raise KeyError("a bug")
            return process(mention)

        monkeypatch.setattr(one_pass.analyser, "process", failing)
        _run(one_pass, _events(mentions))
        letters = [orjson.loads(v) for v in broker.values("acked", "invalid")]
        assert len(letters) == 1
        assert letters[0]["reason"] == "processing_error"
        assert letters[0]["error_class"] == "builtins.KeyError"
        assert letters[0]["origin"]["topic"] == "raw" and letters[0]["origin"]["offset"] == 5
        # its clean form was produced before the analysis failed: the evidence is kept
        assert len(broker.values("acked", "clean")) == 20

    def test_an_event_fetched_before_a_rebalance_is_not_processed(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()[:10]
        events = _events(mentions[:5], generation=2) + _events(mentions[5:])
        _run(one_pass, events)
        produced = {orjson.loads(v)["id"] for v in broker.values("acked", "clean")}
        assert produced == {m["id"] for m in mentions[5:]}
        assert all(not one_pass.ingestor._seen.contains("amara", m["id"]) for m in mentions[:5])

    def test_a_rebalance_while_alerts_are_produced_writes_no_state(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        mentions = _pileon()
        generation = [3]
        one_pass.generation = lambda: generation[0]
        alerts = one_pass.topics.alerts
        send = alerts.send

        async def rebalancing(*args: Any, **kwargs: Any) -> Any:
            generation[0] = 4  # a rebalance while the first alert is in flight
            return await send(*args, **kwargs)

        alerts.send = rebalancing
        _run(one_pass, _events(mentions), size=len(mentions))
        sent = [orjson.loads(v)["idempotency_key"] for v in broker.values("acked", "alerts")]
        assert sent  # the alerts went out
        # The state written before the produce holds them; nothing was written after, so
        # whoever owns the person now sends them again, with the same keys.
        saved = orjson.loads(one_pass.analyser._state[b"amara"])
        assert [a["idempotency_key"] for a in saved["outbox"]] == sent

    def test_invalid_and_misrouted_messages_are_produced_where_they_belong(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        good = _pileon()[:2]
        wrong = (key_partition(b"amara", 4) + 1) % 4
        stray = _events(good[1:])[0]
        stray = stray._replace(key=None, message=stray.message._replace(partition=wrong))
        events = [_events(good[:1])[0], Event(b"amara", b"{oops", _events(good)[0].message),
                  stray]
        _run(one_pass, events)
        assert [orjson.loads(v)["reason"] for v in broker.values("acked", "invalid")] == [
            "not_json"]
        assert broker.values("acked", "raw") == [stray.value]
        assert [orjson.loads(v)["id"] for v in broker.values("acked", "clean")] == [
            good[0]["id"]]


def _verdict(person: str, incident: dict[str, Any], disposition: str = "coordinated",
             partition: int | None = None, offset: int = 10_000, **change: Any) -> Event:
    value = {"schema": "pileon.verdict/v1", "person": person,
             "incident_id": incident["incident_id"], "disposition": disposition,
             "start": incident["evidence"]["from"], "end": incident["at"],
             "at": "2026-11-21T09:00:00Z", **change}
    key = person.encode()
    home = key_partition(key, 4) if partition is None else partition
    return Event(key, orjson.dumps(value), Message("raw", home, offset, 1.0, 3,
                                                   Verdict.headers()))


class TestVerdicts:
    """A responder's disposition reaches the person's detector through mentions.raw."""

    @staticmethod
    def _opened(one_pass: BatchPass, broker: Broker) -> dict[str, Any]:
        _run(one_pass, _events(_pileon()))
        return next(a for a in map(orjson.loads, broker.values("acked", "alerts"))
                    if a["transition"] == "opened")

    def test_an_attack_no_longer_counts_in_the_persons_calibration(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        opened = self._opened(one_pass, broker)
        detector = one_pass.analyser.runtime("amara").detector
        before = sum(map(sum, detector.crossings))
        _run(one_pass, [_verdict("amara", opened)])
        after = sum(map(sum, detector.crossings))
        assert after < before
        saved = orjson.loads(one_pass.analyser._state[b"amara"])  # the state table's record
        assert sum(map(sum, saved["detector"]["crossings"])) == after
        assert not broker.values("acked", "invalid") and not broker.values("acked", "clean")[
            len(_pileon()):]  # a verdict is not a mention: nothing clean, nothing dead

    def test_a_changed_verdict_counts_the_incident_again(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        opened = self._opened(one_pass, broker)
        detector = one_pass.analyser.runtime("amara").detector
        before = [list(c) for c in detector.crossings]
        _run(one_pass, [_verdict("amara", opened), _verdict("amara", opened, offset=10_001)])
        assert [list(c) for c in detector.crossings] != before  # applied once, not twice
        _run(one_pass, [_verdict("amara", opened, "organic", offset=10_002)])
        assert [list(c) for c in detector.crossings] == before

    def test_an_invalid_verdict_is_dead_lettered_with_the_field_that_is_wrong(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        opened = self._opened(one_pass, broker)
        _run(one_pass, [_verdict("amara", opened, disposition="guilty"),
                        _verdict("nobody", opened, partition=0)])
        letters = [orjson.loads(v) for v in broker.values("acked", "invalid")]
        assert [(x["reason"], x["detail"].split(":")[:2]) for x in letters] == [
            ("schema", ["verdict", " disposition"]), ("unknown_person", ["verdict", " person is "
                                                                          "not on the watchlist"])]

    def test_a_verdict_read_outside_its_persons_partition_is_sent_there(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        opened = self._opened(one_pass, broker)
        detector = one_pass.analyser.runtime("amara").detector
        before = [list(c) for c in detector.crossings]
        stray = _verdict("amara", opened, partition=(key_partition(b"amara", 4) + 1) % 4)
        _run(one_pass, [stray])
        assert broker.values("acked", "raw") == [stray.value]
        assert [list(c) for c in detector.crossings] == before  # applied where it belongs


class TestBatchFailure:
    def test_a_batch_that_cannot_finish_stops_the_worker_before_it_is_acknowledged(
        self, one_pass: BatchPass, broker: Broker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pileon.streams.worker import agents

        exits: list[int] = []
        monkeypatch.setattr(agents, "_exit", exits.append)
        monkeypatch.setattr(agents.logging, "shutdown", lambda: None)

        def broken() -> int:
            raise OSError("the table's store failed")

        monkeypatch.setattr(one_pass.ingestor, "flush", broken)
        asyncio.run(agents.run_or_exit(one_pass, _events(_pileon()[:5])))
        assert exits == [agents.EXIT_CODE]
        assert not broker.log  # nothing was produced for the batch: it is read again

    def test_a_batch_that_finishes_does_not(
        self, one_pass: BatchPass, broker: Broker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pileon.streams.worker import agents

        exits: list[int] = []
        monkeypatch.setattr(agents, "_exit", exits.append)
        asyncio.run(agents.run_or_exit(one_pass, _events(_pileon()[:5])))
        assert not exits and len(broker.values("acked", "clean")) == 5


class TestPersonTable:
    def test_a_keys_changelog_partition_is_its_persons_without_a_current_event(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.streams.worker.app import build_app

        app = build_app(settings, watchlist, "127.0.0.1:1")
        tables = [app.tables[name] for name in ("seen", "window", "person-state")]
        for table in tables:
            for person in watchlist.keys:
                home = key_partition(person.encode(), settings.kafka.partitions)
                assert table.partition_for_key(person.encode()) == home
                assert table.partition_for_key(f"{person}|bluesky:1|x".encode()) == home

    def test_person_of_a_key(self) -> None:
        assert person_of(b"amara|bluesky:at://x|y") == b"amara"
        assert person_of(b"amara") == b"amara"


class TestTakingRecords:
    """The worker takes ``mentions.raw`` in batches from the queue Faust's consumer delivers
    to, below Faust's streams, and acknowledges a batch's records only once it is done."""

    def test_the_raw_topic_is_read_below_faust_streams(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.kafka.topics import TopicNames
        from pileon.streams.worker.agents import Taken
        from pileon.streams.worker.app import build_app

        app = build_app(settings, watchlist, "127.0.0.1:1")
        raw = TopicNames.from_settings(settings.kafka).raw
        channels = [c for c in app.topics if raw in c.topics]
        assert len(channels) == 1 and not list(app.agents)  # no stream, no agent reads it
        message = SimpleNamespace(key=b"amara", value=b"{}", topic=raw, partition=0, offset=7)

        async def decode() -> Any:
            return await channels[0].decode(message)

        taken = asyncio.run(decode())
        assert taken == Taken(b"amara", b"{}", message) and taken.message is message

    def test_batches_hold_at_most_max_and_wait_after_the_first(self) -> None:
        from pileon.streams.worker.agents import batches

        async def run() -> list[list[int]]:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(7):
                queue.put_nowait(i)
            got: list[list[int]] = []

            async def late() -> None:
                await asyncio.sleep(0.3)
                queue.put_nowait(7)
                await asyncio.sleep(0.02)
                queue.put_nowait(8)  # within the wait after 7: the same batch

            feeder = asyncio.create_task(late())
            async for batch in batches(queue, 3, 0.2):
                got.append(batch)
                if len(got) == 4:
                    break
            await feeder
            return got

        assert asyncio.run(run()) == [[0, 1, 2], [3, 4, 5], [6], [7, 8]]

    def test_a_batchs_records_are_acknowledged_once_it_is_done(
        self, one_pass: BatchPass, broker: Broker
    ) -> None:
        from pileon.streams.worker.agents import Batching, Taken, consume

        class Consumer(list[int]):  # Faust's consumer: what it tracks and what is acked
            def __init__(self) -> None:
                super().__init__()
                self.tracked: list[int] = []

            def track_message(self, message: Any) -> None:
                self.tracked.append(message.offset)
                broker.log.append(("tracked", "raw", message.offset))

        class Acked(Message):  # Faust's message: acknowledged to the consumer
            tracked = False

            @property
            def tp(self) -> tuple[str, int]:
                return (self.topic, self.partition)

            def ack(self, consumer: Any) -> None:
                consumer.append(self.offset)
                broker.log.append(("ack", "raw", self.offset))

        events = _events(_pileon()[:8])
        inbound: dict[Any, float] = {}
        acks = Consumer()

        async def run() -> None:
            queue: asyncio.Queue[Taken] = asyncio.Queue()
            for e in events:
                queue.put_nowait(Taken(e.key, e.value, Acked(*e.message)))
            task = asyncio.create_task(consume(queue, one_pass, Batching(5, 0.05), acks,
                                               inbound))
            while len(acks) < len(events):
                await asyncio.sleep(0.01)
            task.cancel()

        asyncio.run(run())
        assert acks == acks.tracked == [e.message.offset for e in events]
        what = [(w, t) for w, t, _ in broker.log]
        # A record is tracked as it is taken (a rebalance waits for it), before its batch runs.
        assert what[:5] == [("tracked", "raw")] * 5
        # Each batch's clean mentions are acknowledged by the broker before its records are.
        first_ack = what.index(("ack", "raw"))
        assert what[:first_ack].count(("acked", "clean")) == 5
        assert what.count(("acked", "clean")) == 8
        assert set(inbound) == {("raw", e.message.partition) for e in events}
