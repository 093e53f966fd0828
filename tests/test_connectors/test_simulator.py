from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pileon.connectors.traffic import PileOnScript, Simulator, invalid_messages
from pileon.core.times import epoch
from pileon.schema.change import ChangeEvent

END = datetime(2026, 11, 20, 18, 0, tzinfo=UTC).timestamp()
PERSONS = {"amara": "Amara Okafor", "sam": "Sam Ruiz"}


def _sim(seed: int = 3) -> Simulator:
    return Simulator(PERSONS, end=END, days=1, seed=seed, pileon=PileOnScript("amara"))


class TestSimulator:
    def test_same_seed_same_mentions(self) -> None:
        assert _sim().mentions() == _sim().mentions()

    def test_mentions_are_in_event_time_order_and_unique(self) -> None:
        mentions = _sim().mentions()
        times = [m["created_at"] for m in mentions]
        assert times == sorted(times)
        assert len({m["id"] for m in mentions}) == len(mentions)

    def test_nothing_is_in_the_future(self) -> None:
        for seed in range(8):
            latest = max(_days(m["created_at"]) for m in _sim(seed).mentions())
            assert latest <= END / 86400

    def test_ground_truth_names_target_and_onset(self) -> None:
        sim = _sim()
        mentions = sim.mentions()
        truth = sim.ground_truth()
        assert truth.target == "amara"
        pileon = [m for m in mentions if m["author"]["id"].startswith(f"sim-{sim.seed}-po")]
        assert len(pileon) == truth.pileon_mentions
        assert min(m["created_at"] for m in pileon) >= truth.onset  # type: ignore[operator]

    def test_some_pileon_posts_are_deleted_later_as_change_events(self) -> None:
        sim = _sim()
        mentions = sim.mentions()
        deleted = sim.deletions(mentions)
        by_id = {m["id"]: m for m in mentions}
        assert 0 < len(deleted) < 0.15 * sim.ground_truth().pileon_mentions
        assert sim.ground_truth().pileon_deleted == len(deleted)
        for c in deleted:
            change = ChangeEvent.model_validate(c)  # what a connector publishes
            posted = by_id[change.of]
            assert posted["author"]["id"].startswith(f"sim-{sim.seed}-po")
            assert change.event_at is not None and change.event_at.timestamp() <= END
            assert 300 <= change.event_at.timestamp() - epoch(posted["created_at"]) <= 1500
        assert _sim().mentions() == mentions  # deleting does not change a seed's mentions

    def test_background_has_a_daily_rhythm(self) -> None:
        mentions = [m for m in _sim().mentions() if m["person"] == "sam"]
        per_hour = Counter(m["created_at"][11:13] for m in mentions)
        assert max(per_hour.values()) > 4 * min(per_hour.values())

    def test_pileon_is_mostly_young_accounts_and_copies(self) -> None:
        sim = _sim()
        pileon = [m for m in sim.mentions() if "-po" in m["author"]["id"]]
        young = sum(
            _days(m["created_at"]) - _days(m["author"]["created_at"]) < 7 for m in pileon
        )
        assert young / len(pileon) > 0.6

    def test_shared_pieces_and_new_accounts_leave_the_rest_of_a_seed_alone(self) -> None:
        plain = Simulator(PERSONS, end=END, days=3, seed=5).mentions()
        sim = Simulator(PERSONS, end=END, days=3, seed=5, young_share=0.05,
                        articles_per_day=2.0)
        mentions = sim.mentions()
        shares = [m for m in mentions if "news.example.invalid" in m["text"]]
        rest = [m for m in mentions if m not in shares]
        # The same mentions, some of them now from new accounts.
        assert [(m["id"], m["text"], m["created_at"]) for m in rest] == \
            [(m["id"], m["text"], m["created_at"]) for m in plain]
        young = [m for m in rest if _days(m["created_at"]) - _days(m["author"]["created_at"]) < 7]
        assert 0.03 < len(young) / len(rest) < 0.07
        assert sum(sim.ground_truth().background_mentions.values()) == len(mentions)

    def test_a_shared_piece_is_one_headline_and_link_from_many_established_accounts(
        self
    ) -> None:
        sim = Simulator(PERSONS, end=END, days=3, seed=5, articles_per_day=2.0)
        shares = [m for m in sim.mentions() if "news.example.invalid" in m["text"]]
        by_link = Counter(m["text"].split()[-1] for m in shares)
        assert len(by_link) >= 3 and min(by_link.values()) >= 1
        link, most = by_link.most_common(1)[0]
        wave = [m for m in shares if m["text"].endswith(link)]
        assert len({m["author"]["id"] for m in wave}) == most  # one share an account
        assert all(_days(m["created_at"]) - _days(m["author"]["created_at"]) > 30
                   for m in wave)
        local = [(_days(m["created_at"]) * 24) for m in wave]
        assert max(local) - min(local) < 12  # a burst, not a day's trickle

    def test_invalid_messages_cover_each_kind(self) -> None:
        messages = invalid_messages("amara", END)
        assert len(messages) >= 8
        assert any(key == b"nobody" for key, _ in messages)
        assert any(b'"person"' not in value for _, value in messages)
        assert max(len(value) for _, value in messages) > 1_000_000


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _days(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() / 86400


class TestSimulatorConnector:
    def test_speed_plays_event_time_faster_than_wall_time(self, tmp_path: object) -> None:
        import time
        import uuid

        from kafka import KafkaConsumer

        from pileon.connectors.simulator import SimulatorConnector
        from pileon.kafka.broker import EmbeddedBroker

        with EmbeddedBroker() as broker:
            topic = f"raw-{uuid.uuid4().hex[:6]}"
            sim = Simulator(PERSONS, end=END, days=1 / 24, seed=4)  # one hour, no pile-on
            connector = SimulatorConnector(broker.bootstrap, topic, sim, speed=3600.0)
            connector.start()
            started = time.monotonic()
            sent = connector.run()
            elapsed = time.monotonic() - started
            consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                                     auto_offset_reset="earliest", consumer_timeout_ms=3000)
            received = sum(1 for _ in consumer)
            consumer.close()
        assert 0.5 < elapsed < 5.0  # an hour of event time in about a second
        assert received == sent > 0
        assert connector.checkpoint()["acked_until"] == sim.ground_truth().end
