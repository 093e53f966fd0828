"""The analysis step offline: simulated traffic through ingest and the per-person analyser,
with plain dicts standing in for the Faust tables (the worker test runs the real thing)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.settings import Settings
from pileon.core.times import epoch
from pileon.core.watchlist import Watchlist
from pileon.schema.deadletter import Origin
from pileon.schema.mention import Mention
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.ingest import Clean, Ingestor
from pileon.streams.detection.neardup import Signer
from tests.factories import alert_dict

END = datetime(2026, 11, 20, 18, 0, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def simulated() -> tuple[list[Mention], dict[str, Any]]:
    from pileon.core.settings import load_settings
    from pileon.core.watchlist import load_watchlist
    from tests.conftest import EXAMPLE_WATCHLIST

    wl = load_watchlist(EXAMPLE_WATCHLIST)
    sim = Simulator({p.key: p.display_name for p in wl.persons}, end=END, days=2, seed=11,
                    pileon=PileOnScript("amara"))
    ingestor = Ingestor(frozenset(wl.keys), load_settings().ingest, {})
    now = datetime.fromtimestamp(END, UTC)
    clean = []
    for raw in sim.mentions():
        out = ingestor.process(raw["person"].encode(), orjson.dumps(raw), Origin("t", 0, 0), now)
        assert isinstance(out, Clean)
        clean.append(out.mention)
    return clean, sim.ground_truth().to_dict()


class Tables:
    def __init__(self) -> None:
        self.window: dict[bytes, bytes] = {}
        self.state: dict[bytes, bytes] = {}

    def analyser(self, settings: Settings, watchlist: Watchlist,
                 buffered: bool = False) -> PersonAnalyser:
        signer = Signer(b"test-key-0123456789abcdef", settings.neardup.num_perm)
        return PersonAnalyser(watchlist, settings.detection, settings.neardup, signer,
                              self.window, self.state, buffered=buffered)


def _key(alert: dict[str, Any]) -> tuple[Any, ...]:
    """What must be the same for an alert replayed after a restart or in batches."""
    return (alert["idempotency_key"], alert["score"], alert["signals"]["rate"]["mentions"])


def _four_minutes_in(mentions: list[Mention], truth: dict[str, Any]) -> int:
    """The index of the first mention four minutes into the pile-on (a restart point)."""
    return next(i for i, m in enumerate(mentions) if m.event_time > epoch(truth["onset"]) + 240)


def _batched(analyser: PersonAnalyser, mentions: list[Mention], size: int = 500
             ) -> tuple[list[dict[str, Any]], int]:
    """As the worker runs it: a flush after each batch; the alerts, and the table writes."""
    alerts, writes = [], 0
    for i in range(0, len(mentions), size):
        batch = mentions[i:i + size]
        persons = {m.person for m in batch if analyser.process(m)}
        writes += analyser.flush()
        for person in sorted(persons):
            outbox = analyser.outbox(person)
            alerts += [a.to_dict() for a in outbox]
            analyser.delivered(person, len(outbox))
        writes += analyser.flush()
    return alerts, writes


def _run(analyser: PersonAnalyser, mentions: list[Mention]) -> list[dict[str, Any]]:
    alerts = []
    for m in mentions:
        outbox = analyser.process(m)
        alerts += [a.to_dict() for a in outbox]  # the wire form
        analyser.delivered(m.person, len(outbox))
    return alerts


class TestPersonAnalyser:
    def test_pileon_opens_an_incident_for_the_target_only(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, truth = simulated
        alerts = _run(Tables().analyser(settings, watchlist), mentions)
        assert {a["person"] for a in alerts} == {"amara"}
        opened = [a for a in alerts if a["transition"] == "opened"]
        assert len(opened) == 1
        delay = epoch(opened[0]["at"]) - epoch(truth["onset"])
        assert 0 < delay <= 15 * 60

    def test_alert_explains_itself_without_text_or_handles(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, _ = simulated
        alert = _run(Tables().analyser(settings, watchlist), mentions)[0]
        assert set(alert) == set(alert_dict())  # the factory the alert-sink tests use
        assert set(alert["signals"]) == set(alert_dict()["signals"])
        signals = alert["signals"]
        assert signals["rate"]["mentions"] > signals["rate"]["expected"]
        assert signals["distinct_authors"]["value"] > signals["distinct_authors"]["baseline"]
        assert signals["young_account_share"]["value"] > 0.3
        assert signals["near_duplicate_clusters"][0]["distinct_authors"] >= 5
        assert alert["assessment"] == "looks coordinated"
        coordination = signals["coordination"]
        assert coordination["counted"] and coordination["young"] >= 3  # -log10 p
        assert "young_accounts" in alert["indicators"]
        assert alert["score"] >= signals["rate"]["score"]  # volume plus coordination
        confirmation = alert["confirmation"]  # why it opened when it did
        assert epoch(confirmation["alarm_at"]) < epoch(alert["at"])
        close = settings.detection.close_score
        assert confirmation["critical_window"] or confirmation["score"] >= close
        # What the opening needed: the coordinated floor, since the signs counted, and the
        # window held at least that.
        assert confirmation["min_excess"] == settings.detection.min_excess_coordinated
        assert confirmation["excess"] >= confirmation["min_excess"]
        body = orjson.dumps(alert).decode()
        assert "fraud" not in body and ".example" not in body

    def test_restart_mid_pileon_gives_the_same_alerts(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, truth = simulated
        expected = _run(Tables().analyser(settings, watchlist), mentions)
        cut = _four_minutes_in(mentions, truth)
        tables = Tables()
        first = _run(tables.analyser(settings, watchlist), mentions[:cut])
        # A new worker recovers the tables; the last 50 mentions are redelivered.
        second = _run(tables.analyser(settings, watchlist), mentions[cut - 50 :])
        assert [_key(a) for a in first + second] == [_key(a) for a in expected]

    def test_batches_give_the_same_alerts_with_a_few_writes_a_batch(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, _ = simulated
        expected = _run(Tables().analyser(settings, watchlist), mentions)
        alerts, writes = _batched(Tables().analyser(settings, watchlist, buffered=True),
                                  mentions)
        assert sorted(map(_key, alerts)) == sorted(map(_key, expected))
        assert writes < len(mentions) * 0.1  # one by one: more than one a mention

    def test_restart_between_batches_gives_the_same_alerts(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, truth = simulated
        expected = _run(Tables().analyser(settings, watchlist), mentions)
        cut = _four_minutes_in(mentions, truth)
        tables = Tables()
        first, _ = _batched(tables.analyser(settings, watchlist, buffered=True), mentions[:cut])
        # What a crash leaves: the tables as of the last flush, then the last batch again
        # (its offsets were not committed) and the rest.
        unflushed = tables.analyser(settings, watchlist, buffered=True)
        for m in mentions[cut:cut + 300]:
            unflushed.process(m)  # never flushed: lost with the worker
        second, _ = _batched(tables.analyser(settings, watchlist, buffered=True), mentions[cut:])
        assert sorted(map(_key, first + second)) == sorted(map(_key, expected))

    def test_alert_not_confirmed_before_a_crash_is_sent_again(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, _ = simulated
        tables = Tables()
        analyser = tables.analyser(settings, watchlist)
        i, outbox = next((i, out) for i, m in enumerate(mentions)
                         if (out := analyser.process(m)))  # state saved, alert not delivered
        restarted = tables.analyser(settings, watchlist)  # crash: only the tables survive
        again = restarted.process(mentions[i])  # the same mention, redelivered
        assert [a.idempotency_key for a in again] == [a.idempotency_key for a in outbox]
        restarted.delivered("amara", len(again))
        later = next(m for m in mentions[i + 1 :] if m.person == "amara")
        assert restarted.process(later) == []
        assert tables.analyser(settings, watchlist).process(later) == []

    def test_state_signed_with_another_key_is_reported(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist, caplog: pytest.LogCaptureFixture,
    ) -> None:
        from pileon.streams.detection import metrics

        mentions, _ = simulated
        tables = Tables()
        _run(tables.analyser(settings, watchlist), mentions[:3000])
        other = Signer(b"another-replica-own-key", settings.neardup.num_perm)
        replica = PersonAnalyser(watchlist, settings.detection, settings.neardup, other,
                                 tables.window, tables.state)
        replica.process(next(m for m in mentions[3000:] if m.person == "amara"))
        assert metrics.NEARDUP_KEY_MISMATCH.labels("amara")._value.get() == 1
        assert "same neardup.key_file" in caplog.text

    def test_window_state_stays_bounded(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, _ = simulated
        tables = Tables()
        _run(tables.analyser(settings, watchlist), mentions)
        per_person = len(tables.window) / len(watchlist.persons)
        assert per_person < len(mentions) / len(watchlist.persons) * 0.75  # 24 h of 48 kept
        assert max(len(v) for v in tables.state.values()) < 4096
        assert max(len(v) for v in tables.window.values()) < 1024


@pytest.mark.parametrize("hour", [0, 7, 15])
def test_one_day_of_history_opens_only_the_pileon(
    hour: int, settings: Settings, watchlist: Watchlist
) -> None:
    """Short histories are where learned baselines are weakest (a fault test once opened a
    false incident on one simulated day, from the copies sign)."""
    persons = {p.key: p.display_name for p in watchlist.persons}
    sim = Simulator(persons, end=END + hour * 3600, days=1, seed=9,
                    pileon=PileOnScript("amara"))
    analyser = Tables().analyser(settings, watchlist)
    mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in sim.mentions()]
    opened = [a for a in _run(analyser, mentions) if a["transition"] == "opened"]
    assert [a["person"] for a in opened] == ["amara"]


def _focused(watchlist: Watchlist, **script: Any) -> tuple[list[Mention], dict[str, Any]]:
    persons = {p.key: p.display_name for p in watchlist.persons}
    sim = Simulator(persons, end=END, days=2, seed=11,
                    pileon=PileOnScript("amara", post_share=0.6, **script))
    mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in sim.mentions()]
    return mentions, sim.ground_truth().to_dict()


class TestReplyFocus:
    def test_the_alert_names_the_post_a_pileon_lands_on_by_key(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        from pileon.schema.mention import post_key

        mentions, truth = _focused(watchlist)
        alert = next(a for a in _run(Tables().analyser(settings, watchlist), mentions)
                     if a["transition"] == "opened")
        focus = alert["signals"]["reply_focus"]
        posts = Counter(m.answers for m in mentions if m.person == "amara" and m.answers
                        and m.event_time >= epoch(truth["onset"]))
        target = posts.most_common(1)[0][0]
        assert focus["post_key"] == f"{post_key(target):08x}"
        assert target not in orjson.dumps(alert).decode()  # a key, not the URI
        assert focus["share"] > 0.3 and focus["share"] > focus["usual"]
        assert focus["score"] > 0 and focus["counted"]  # unusual at the opening, in the ramp
        coordination = alert["signals"]["coordination"]["score"]
        assert alert["score"] == pytest.approx(
            alert["signals"]["rate"]["score"] + max(coordination, focus["score"]), abs=0.02)

    def test_a_viral_post_is_focus_not_coordination(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        mentions, _ = _focused(watchlist, accounts=3000, copy_share=0.0, young_share=0.0,
                               hostile=False, multiple=8.0)
        opened = [a for a in _run(Tables().analyser(settings, watchlist), mentions)
                  if a["transition"] == "opened"]
        assert opened and all(a["assessment"] == "looks organic" for a in opened)
        assert opened[0]["signals"]["reply_focus"]["score"] > 0.5

    def test_focus_is_recovered_after_a_restart(
        self, settings: Settings, watchlist: Watchlist
    ) -> None:
        mentions, truth = _focused(watchlist)
        expected = _run(Tables().analyser(settings, watchlist), mentions)
        cut = _four_minutes_in(mentions, truth)
        tables = Tables()
        first = _run(tables.analyser(settings, watchlist), mentions[:cut])
        second = _run(tables.analyser(settings, watchlist), mentions[cut - 50 :])
        key = lambda a: (a["idempotency_key"], a["score"], a["signals"]["reply_focus"])  # noqa: E731
        assert [key(a) for a in first + second] == [key(a) for a in expected]


class TestQuietPerson:
    """A person who hears from six strangers an hour, and a copypasta campaign of about one
    mention a minute: the scenario suite's quiet person (bench/generalisation.py)."""

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls) -> tuple[list[dict[str, Any]], float, float]:
        from pileon.connectors.scenarios import TARGET, simulate
        from pileon.core.settings import load_settings
        from pileon.core.watchlist import Person

        sim = simulate("copypasta", 0, end=1_790_000_000.0, mean_per_hour=6.0, multiple=11.0)
        mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in sim.mentions()]
        truth = sim.ground_truth()
        watchlist = Watchlist(persons=(Person(key=TARGET, display_name="Dana Target"),))
        alerts = _run(Tables().analyser(load_settings(), watchlist), mentions)
        return alerts, epoch(str(truth.onset)), epoch(str(truth.pileon_end))

    def test_the_campaign_opens_at_the_coordinated_floor(
        self, run: tuple[list[dict[str, Any]], float, float]
    ) -> None:
        alerts, onset, _ = run
        opened = [a for a in alerts if a["transition"] == "opened" and epoch(a["at"]) >= onset]
        assert opened, "the campaign was not found"
        # 25 extra mentions at one a minute would take 25 minutes; ten take about ten.
        assert epoch(opened[0]["at"]) - onset <= 15 * 60
        assert opened[0]["assessment"] == "looks coordinated"

    def test_the_incident_stays_open_while_the_campaign_lasts(
        self, run: tuple[list[dict[str, Any]], float, float]
    ) -> None:
        # Its volume alone scores below freeze_score: without holding the baseline while the
        # pile-on score is at the bar, the campaign became its own baseline within the hour and
        # the incident resolved while it went on.
        alerts, onset, end = run
        resolved = [epoch(a["at"]) for a in alerts
                    if a["transition"] == "resolved" and epoch(a["at"]) >= onset]
        assert not resolved or resolved[0] > end


class TestSharedHeadlines:
    """A busy person whose pieces are shared with their headline and link by established
    accounts (one text from many accounts within the hour: the copies sign's organic twin),
    and new accounts among their ordinary traffic; then a copypasta campaign."""

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls) -> tuple[list[dict[str, Any]], float, float, float]:
        from pileon.connectors.scenarios import TARGET, simulate
        from pileon.core.settings import load_settings
        from pileon.core.watchlist import Person

        sim = simulate("copypasta", 2, end=1_790_000_000.0, days=4, mean_per_hour=120.0,
                       young_share=0.02, articles_per_day=1.0)
        mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in sim.mentions()]
        truth = sim.ground_truth()
        watchlist = Watchlist(persons=(Person(key=TARGET, display_name="Dana Target"),))
        analyser = Tables().analyser(load_settings(), watchlist)
        onset = epoch(str(truth.onset))
        before = [m for m in mentions if m.created_at.timestamp() < onset]
        alerts = _run(analyser, before)
        rho = analyser.runtime(TARGET).coordination.copies_rho()
        alerts += _run(analyser, mentions[len(before):])
        return alerts, rho, onset, epoch(str(truth.pileon_end))

    def test_the_shared_pieces_teach_how_the_copies_share_varies(
        self, run: tuple[list[dict[str, Any]], float, float, float]
    ) -> None:
        _, rho, _, _ = run
        assert rho > 0.01

    def test_the_campaign_is_still_found_and_looks_coordinated(
        self, run: tuple[list[dict[str, Any]], float, float, float]
    ) -> None:
        alerts, _, onset, end = run
        opened = [a for a in alerts if a["transition"] == "opened"
                  and onset <= epoch(a["at"]) <= end]
        assert opened, "the campaign was not found"
        assert epoch(opened[0]["at"]) - onset <= 15 * 60
        assert opened[0]["assessment"] == "looks coordinated"
        assert "young_accounts" in opened[0]["indicators"]


class TestLateMentions:
    """A person added while a pile-on is under way: the connector's first live mention comes
    before its backfill of the hours before (the case ``--backfill-hours`` exists for)."""

    def _backfilled(self, simulated: tuple[list[Mention], dict[str, Any]], minutes: float
                    ) -> tuple[list[Mention], list[Mention], float]:
        mentions, truth = simulated
        amara = [m for m in mentions if m.person == "amara"]
        onset = epoch(truth["onset"])
        cut = next(i for i, m in enumerate(amara) if m.event_time > onset + minutes * 60)
        # One live mention, then everything before it (the backfill), then live traffic.
        return [amara[cut], *amara[:cut], *amara[cut + 1 :]], amara[:cut], onset

    def test_backfilled_pileon_opens_one_incident_found_late_at_its_onset(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist, caplog: pytest.LogCaptureFixture,
    ) -> None:
        from pileon.streams.detection import metrics

        ordered, backfill, onset = self._backfilled(simulated, 20)
        folded = metrics.LATE_FOLDED.labels("amara")._value.get()
        with caplog.at_level("INFO", logger="pileon.streams.detection.analysis"):
            alerts = _run(Tables().analyser(settings, watchlist), ordered)
        opened = [a for a in alerts if a["transition"] == "opened"]
        assert len(opened) == 1, [a["idempotency_key"] for a in alerts]
        found = opened[0]["found_late"]
        assert found is not None
        # The backfilled mentions the window store still holds (its last 24 hours) are folded.
        kept = [m for m in backfill if m.event_time >= ordered[0].event_time - 24 * 3600]
        assert len(kept) - 10 <= found["late_mentions"] <= len(kept)
        assert onset < epoch(opened[0]["opened_at"]) <= onset + 15 * 60  # its true onset
        assert epoch(found["found_at"]) >= ordered[0].event_time
        assert metrics.LATE_FOLDED.labels("amara")._value.get() - folded == found["late_mentions"]
        said = [r.getMessage() for r in caplog.records if "late mentions folded" in r.message]
        assert said and f"{found['late_mentions']} late mentions" in said[0]
        assert "found late" in said[0] and f"{len(backfill) - found['late_mentions']} more" \
            in said[0]
        assert "fraud" not in " ".join(said)  # counts and times, never texts

    def test_live_incident_is_not_opened_twice_by_a_late_batch(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        mentions, truth = simulated
        amara = [m for m in mentions if m.person == "amara"]
        onset = epoch(truth["onset"])
        # A batch of the pile-on's first ten minutes arrives late, after it was detected live.
        late = [m for m in amara if onset <= m.event_time < onset + 600]
        first = next(i for i, m in enumerate(amara) if m.event_time > onset + 1500)
        ordered = [m for m in amara[:first] if m not in late] + late + amara[first:]
        alerts = _run(Tables().analyser(settings, watchlist), ordered)
        opened = [a for a in alerts if a["transition"] == "opened"]
        assert len(opened) == 1

    def test_late_count_survives_a_restart(
        self, simulated: tuple[list[Mention], dict[str, Any]], settings: Settings,
        watchlist: Watchlist,
    ) -> None:
        ordered, backfill, _ = self._backfilled(simulated, 20)
        tables = Tables()
        n = 1 + len(backfill)
        first = _run(tables.analyser(settings, watchlist), ordered[:n])  # stops after backfill
        second = _run(tables.analyser(settings, watchlist), ordered[n:])  # a new worker
        opened = [a for a in first + second if a["transition"] == "opened"]
        assert len(opened) == 1 and opened[0]["found_late"] is not None
