"""The real worker process against each broker (the embedded Tansu and Apache Kafka), fed by
the simulator connector."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from pileon.connectors.producer import MentionProducer
from pileon.connectors.simulator import SimulatorConnector
from pileon.connectors.traffic import PileOnScript, Simulator, invalid_messages
from pileon.core.settings import KafkaSettings
from pileon.core.times import epoch
from pileon.core.watchlist import Watchlist
from pileon.kafka.topics import changelog_topics, ensure_topics, key_partition
from pileon.schema.verdict import Verdict
from pileon.streams.worker.person_table import person_of
from tests.factories import mention
from tests.test_integration.worker import WorkerProcess, metric_value, read_topic

pytestmark = pytest.mark.slow


def _field(value: bytes | None, name: str) -> Any:
    try:
        return orjson.loads(value or b"").get(name)
    except (orjson.JSONDecodeError, AttributeError):
        return None


@pytest.fixture(scope="module")
def run(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from pileon.core.watchlist import load_watchlist
    from tests.conftest import EXAMPLE_WATCHLIST

    watchlist: Watchlist = load_watchlist(EXAMPLE_WATCHLIST)
    tmp = tmp_path_factory.mktemp("pipeline")
    prefix = f"it{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    end = time.time()
    sim = Simulator({p.key: p.display_name for p in watchlist.persons}, end=end, days=2,
                    seed=5, pileon=PileOnScript("amara"))
    with WorkerProcess(bootstrap, tmp, prefix, f"pileon-{prefix}") as worker:
        connector = SimulatorConnector(bootstrap, names.raw, sim, invalid=True,
                                       invalid_topic=names.invalid)
        connector.start()
        connector.run()
        twin = Simulator({p.key: p.display_name for p in watchlist.persons}, end=end, days=2,
                         seed=5, pileon=PileOnScript("amara"))
        mentions = twin.mentions()  # same seed: the mentions the connector sent
        # Re-send some mentions with the same ids: exact de-duplication must drop them.
        replay = MentionProducer(bootstrap, names.raw)
        for m in mentions[-25:]:
            replay.send(m)
        replay.flush()
        replay.close()
        # A valid mention from a producer that keyed it by nothing, in a partition that is not
        # its person's: the worker sends it to its person's partition and analyses it there.
        stray = mention(at=datetime.fromtimestamp(end - 90, UTC))
        wrong = (key_partition(b"amara", 4) + 1) % 4
        sender = KafkaProducer(bootstrap_servers=bootstrap)
        sender.send(names.raw, value=orjson.dumps(stray), partition=wrong).get(timeout=30)
        sender.close()
        mentions.append(stray)
        invalid = invalid_messages("amara", end)
        # every mention once (the stray comes last, after two hops)
        clean = read_topic(bootstrap, names.clean, len(mentions), timeout=180)
        letters = read_topic(bootstrap, names.invalid, len(invalid), timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # clean is produced before the batch's analysis
            text = worker.metrics()
            done = metric_value(text, "pileon_processing_seconds_count", stage="analyse")
            if done >= len(clean):
                break
            time.sleep(1)
        alerts = read_topic(bootstrap, names.alerts, 1, timeout=10)
        metrics_text = worker.metrics()
        # A responder's verdict on the target's incident, as the console sends it: the worker
        # takes the incident's calibration crossings back.
        opened = next((orjson.loads(r.value) for r in alerts
                       if _field(r.value, "person") == "amara"
                       and _field(r.value, "transition") == "opened"), None)
        verdict_metrics = ""
        if opened is not None:
            verdict = Verdict.model_validate({
                "person": "amara", "incident_id": opened["incident_id"],
                "disposition": "coordinated", "start": opened["evidence"]["from"],
                "end": opened["at"], "at": datetime.now(UTC)})
            sender = KafkaProducer(bootstrap_servers=bootstrap)
            sender.send(names.raw, key=b"amara", value=verdict.to_json(),
                        headers=Verdict.headers()).get(timeout=30)
            sender.close()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not verdict_metrics:
                text = worker.metrics()
                if metric_value(text, "pileon_verdicts_total", person="amara",
                                disposition="coordinated"):
                    verdict_metrics = text
                time.sleep(0.5)
        time.sleep(4)  # Faust commits offsets every 2.8 s
        check = subprocess.run([sys.executable, "-m", "pileon", "check"], env=worker.env,
                               capture_output=True, text=True, timeout=60)
        time.sleep(2)  # the leader exports lag every second in tests
        lag_metrics = worker.metrics()
        raw = read_topic(bootstrap, names.raw, timeout=5)
        changelogs = [r for topic in changelog_topics(f"pileon-{prefix}")
                      for r in read_topic(bootstrap, topic, timeout=5)]
    return {
        "names": names, "sent": mentions, "stray": (stray["id"], wrong), "raw": raw,
        "truth": sim.ground_truth(), "clean": clean,
        "letters": letters, "alerts": [orjson.loads(r.value) for r in alerts],
        "metrics": metrics_text, "invalid_sent": invalid, "worker_log": worker.log_path,
        "check": check, "lag_metrics": lag_metrics, "changelogs": changelogs,
        "verdict_metrics": verdict_metrics,
    }


class TestPipeline:
    def test_every_valid_mention_is_in_clean_exactly_once(self, run: dict[str, Any]) -> None:
        ids = Counter(orjson.loads(r.value)["id"] for r in run["clean"])
        assert set(ids) == {m["id"] for m in run["sent"]}
        assert max(ids.values()) == 1  # the 25 re-sent ids were dropped

    def test_a_mention_outside_its_persons_partition_is_moved_there_not_lost(
        self, run: dict[str, Any]
    ) -> None:
        stray, wrong = run["stray"]
        copies = [r for r in run["raw"] if _field(r.value, "id") == stray]
        home = key_partition(b"amara", 4)
        assert sorted((r.partition, r.key or b"") for r in copies) == sorted(
            [(home, b"amara"), (wrong, b"")])
        # key_partition is the partitioner the connectors' producer used for every record
        assert {r.partition for r in run["raw"] if r.key == b"amara"} == {home}
        assert metric_value(run["metrics"], "pileon_misrouted_mentions_total", person="amara") == 1

    def test_every_table_record_is_in_its_persons_changelog_partition(
        self, run: dict[str, Any]
    ) -> None:
        # The batch writes its tables with no current event: the partition comes from the key.
        records = run["changelogs"]
        assert {person_of(r.key) for r in records} >= {b"amara"}
        assert len(records) < len(run["sent"]) / 2  # chunks per batch, not one per mention
        misplaced = [(r.key, r.partition) for r in records
                     if r.partition != key_partition(person_of(r.key), 4)]
        assert not misplaced

    def test_clean_mentions_are_keyed_by_person(self, run: dict[str, Any]) -> None:
        assert all(r.key == orjson.loads(r.value)["person"].encode() for r in run["clean"])

    def test_invalid_inputs_are_dead_letters_with_reasons(self, run: dict[str, Any]) -> None:
        letters = [orjson.loads(r.value) for r in run["letters"]
                   if r.value and orjson.loads(r.value)["reason"] != "processing_error"]
        assert len(letters) == len(run["invalid_sent"])
        assert {x["reason"] for x in letters} == {
            "not_json", "not_utf8", "schema", "unknown_person", "from_future", "too_old",
            "too_large",
        }
        assert all(x["detail"] and x["value_b64"] for x in letters)

    def test_nothing_failed_processing(self, run: dict[str, Any]) -> None:
        # (A message whose processing raises is dead-lettered with its class: test_agents.py.)
        assert not [r for r in run["letters"]
                    if orjson.loads(r.value)["reason"] == "processing_error"]
        assert metric_value(run["metrics"], "pileon_dead_letters_total",
                            reason="processing_error") == 0

    def test_incident_opens_for_the_target_soon_after_onset(self, run: dict[str, Any]) -> None:
        # A calm person may page on an organic burst: test_calm_persons_page_only_on_organic_bursts
        # holds those to the budget. The target's pile-on opens exactly one incident.
        opened = [a for a in run["alerts"]
                  if a["transition"] == "opened" and a["person"] == "amara"]
        assert len(opened) == 1
        delay = epoch(opened[0]["at"]) - epoch(run["truth"].onset)
        assert 0 < delay <= 15 * 60

    def test_a_responders_verdict_reaches_the_persons_detector(self, run: dict[str, Any]
                                                              ) -> None:
        text = run["verdict_metrics"]
        assert text, "the worker did not apply the verdict within 60 s"
        assert metric_value(text, "pileon_verdicts_total", person="amara",
                            disposition="coordinated") == 1
        assert metric_value(text, "pileon_calibration_crossings_taken_back_total",
                            person="amara") > 0
        assert metric_value(text, "pileon_dead_letters_total", reason="schema") == \
            metric_value(run["metrics"], "pileon_dead_letters_total", reason="schema")

    def test_calm_persons_page_only_on_organic_bursts(self, run: dict[str, Any]) -> None:
        """The detector's budget allows about 2 false pages a person-month: on this two-day
        simulation 2 runs in 30 paged once for a calm person, on an organic burst (measured
        offline with the analyser). Such a page must not look coordinated."""
        calm = [a for a in run["alerts"] if a["person"] != "amara"]
        assert all(a["assessment"] == "looks organic" and not a["indicators"] for a in calm)
        assert len({a["incident_id"] for a in calm}) <= 1

    def test_metrics_carry_person_keys_not_text(self, run: dict[str, Any]) -> None:
        text = run["metrics"]
        assert metric_value(text, "pileon_mentions_total", person="amara") > 0
        assert metric_value(text, "pileon_dead_letters_total", reason="not_json") == 1
        assert metric_value(text, "pileon_duplicate_mentions_total") == 25
        assert metric_value(text, "pileon_incidents_open", person="amara") == 1
        assert 'pileon_pileon_score{person="amara"}' in text
        assert metric_value(text, "pileon_neardup_clusters", person="amara") >= 3
        assert metric_value(text, "pileon_neardup_largest_cluster_authors", person="amara") > 20
        assert metric_value(text, "pileon_processing_seconds_count", stage="ingest") > 0
        assert "Amara" not in text and ".example" not in text

    def test_leader_exports_group_lag_and_committed_offsets(self, run: dict[str, Any]) -> None:
        text, raw = run["lag_metrics"], run["names"].raw
        for partition in "0123":
            assert f'pileon_consumer_lag_messages{{partition="{partition}",topic="{raw}"}} 0.0' \
                in text
        committed = metric_value(text, "pileon_consumer_committed_offset", topic=raw)
        assert committed >= len(run["sent"]) + len(run["invalid_sent"])

    def test_worker_log_holds_no_text_or_handles(self, run: dict[str, Any]) -> None:
        log = Path(run["worker_log"]).read_text()
        assert "fraud" not in log and ".example" not in log

    def test_check_reports_topics_and_a_caught_up_worker(self, run: dict[str, Any]) -> None:
        check = run["check"]
        # Only a worker runs here: check says so, and that no notifier or archiver does.
        failed = [line for line in check.stdout.splitlines() if line.startswith("FAIL")]
        assert check.returncode == 1 and len(failed) == 2, check.stdout + check.stderr
        assert "no notifier is running" in failed[0] and "no archiver is running" in failed[1]
        assert "member(s) (the worker)" in check.stdout and check.stderr == ""
        for topic in run["names"].all():
            assert f"ok    topic {topic}: 4 partitions" in check.stdout
        assert f"on {run['names'].raw}: lag 0 " in check.stdout
