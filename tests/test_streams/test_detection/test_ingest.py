from __future__ import annotations

from datetime import timedelta

import orjson

from pileon.core.settings import IngestSettings
from pileon.schema.deadletter import Origin, original_value
from pileon.streams.detection.ingest import Clean, DeadLetter, Duplicate, Ingestor, Misrouted
from tests.factories import NOW, mention

ORIGIN = Origin("mentions.raw", 0, 42, 1.0)


def _ingestor(store: dict[bytes, bytes] | None = None) -> Ingestor:
    return Ingestor(frozenset({"amara"}), IngestSettings(), {} if store is None else store)


class TestIngestor:
    def test_valid_mention_is_clean_and_canonical(self) -> None:
        outcome = _ingestor().process(b"amara", orjson.dumps(mention()), ORIGIN, NOW)
        assert isinstance(outcome, Clean)
        assert orjson.loads(outcome.value)["person"] == "amara"

    def test_same_id_in_another_message_is_a_duplicate(self) -> None:
        ingestor = _ingestor()
        body = orjson.dumps(mention())
        assert isinstance(ingestor.process(b"amara", body, ORIGIN, NOW), Clean)
        again = Origin("mentions.raw", 0, 43, 2.0)
        assert isinstance(ingestor.process(b"amara", body, again, NOW), Duplicate)

    def test_dedup_survives_a_restart_through_the_table(self) -> None:
        store: dict[bytes, bytes] = {}
        body = orjson.dumps(mention())
        _ingestor(store).process(b"amara", body, ORIGIN, NOW)
        again = Origin("mentions.raw", 1, 7, 2.0)
        assert isinstance(_ingestor(store).process(b"amara", body, again, NOW), Duplicate)

    def test_the_same_message_read_again_after_a_crash_is_forwarded_again(self) -> None:
        store: dict[bytes, bytes] = {}
        body = orjson.dumps(mention())
        _ingestor(store).process(b"amara", body, ORIGIN, NOW)
        # The dedup record reached the changelog, the clean mention may not have: forward it.
        assert isinstance(_ingestor(store).process(b"amara", body, ORIGIN, NOW), Clean)

    def test_seen_ids_expire_after_the_dedup_horizon(self) -> None:
        store: dict[bytes, bytes] = {}
        ingestor = _ingestor(store)
        for hours in range(0, 60, 6):
            at = NOW - timedelta(days=3) + timedelta(hours=hours)
            ingestor.process(b"amara", orjson.dumps(mention(at=at)), ORIGIN, NOW)
        assert len(store) <= 48 // 6 + 1

    def test_invalid_message_is_a_dead_letter_keeping_the_bytes(self) -> None:
        outcome = _ingestor().process(b"amara", b"{oops", ORIGIN, NOW)
        assert isinstance(outcome, DeadLetter)
        letter = orjson.loads(outcome.value)
        assert letter["reason"] == "not_json"
        assert letter["origin"] == {"topic": "mentions.raw", "partition": 0, "offset": 42,
                                    "timestamp": 1.0}
        assert original_value(outcome.value) == b"{oops"

    def test_a_mention_read_outside_its_persons_partition_is_sent_there_untouched(self) -> None:
        store: dict[bytes, bytes] = {}
        ingestor = Ingestor(frozenset({"amara"}), IngestSettings(), store,
                            homes={"amara": 3})
        body = orjson.dumps(mention())
        outcome = ingestor.process(None, body, ORIGIN, NOW)  # read from partition 0
        assert isinstance(outcome, Misrouted) and outcome.partition == 3
        assert outcome.mention.person == "amara" and store == {}  # no table record here
        home = Origin("mentions.raw", 3, 9, 2.0)
        assert isinstance(ingestor.process(b"amara", body, home, NOW), Clean)
        # an invalid message is dead-lettered where it is read: it has no person to route by
        assert isinstance(ingestor.process(None, b"{oops", ORIGIN, NOW), DeadLetter)
