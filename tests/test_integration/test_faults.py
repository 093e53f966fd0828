"""Fault tests (the Kafka system-test oracle): every acknowledged mention is processed.

Each test produces a simulated day with a pile-on, injects a fault mid-stream, and checks that
every acknowledged mention reached ``mentions.clean``, counting duplicates, and that the
incident opened once (alert events carry an idempotency key a consumer de-duplicates on).
Figures are printed (``-s``) and recorded in docs/reliability.md.

The pile-on must open exactly one incident. Organic bursts are not asserted to page no one:
the detector pages on its budget of false alarms (2 a person-month), and on this one-day
simulation without any fault, 3 of 60 runs paged once for a calm person on an organic burst
(5x in ten minutes; measured with the analyser offline, 2026-12-05). The target pages on its
own organic traffic too, hours before its pile-on, for some ends of the simulated day: with
the day ending at 14:59:27, 14:59:36, 14:59:45, 14:59:54, 15:00:21, 15:00:30 or 15:00:39 UTC
(of ends tried 9 s apart), amara opens at 12:13-12:15Z ("looks organic", 23 mentions in ten
minutes against 4.5), faults or not (the analyser offline, 2026-12-07; a CI run at that hour
failed on it). What is asserted
before the onset is what a fault could break: no incident opened twice.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pileon.connectors.simulator import SimulatorConnector
from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.settings import KafkaSettings
from pileon.core.times import epoch
from pileon.core.watchlist import load_watchlist
from pileon.kafka.lag import LagProbe
from pileon.kafka.topics import TopicNames, ensure_topics
from tests.conftest import EXAMPLE_WATCHLIST
from tests.kafka.broker import ApacheKafka
from tests.test_integration.worker import WorkerProcess, metric_value, read_topic

pytestmark = pytest.mark.slow


def _simulation(end: float) -> tuple[Simulator, list[dict[str, Any]], float]:
    """A simulator for the connector, the mentions it sends, and the pile-on's onset."""
    watchlist = load_watchlist(EXAMPLE_WATCHLIST)
    persons = {p.key: p.display_name for p in watchlist.persons}
    make = lambda: Simulator(persons, end=end, days=1, seed=9, pileon=PileOnScript("amara"))  # noqa: E731
    drawn = make()
    mentions = drawn.mentions()
    onset = drawn.ground_truth().onset
    assert onset is not None
    return make(), mentions, epoch(onset)


def _opened_at(key: str) -> float:
    """When an incident opened, from its idempotency key (``person-YYYYMMDDTHHMMZ:...``)."""
    stamp = key.split(":", 1)[0].rsplit("-", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp()


def _wait_processed(worker: WorkerProcess, at_least: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    done = 0.0
    while time.monotonic() < deadline:
        try:
            done = metric_value(worker.metrics(), "pileon_processing_seconds_count",
                                stage="ingest")
        except OSError:
            done = 0.0
        if done >= at_least:
            return done
        time.sleep(0.2)
    return done


def _wait_clean(bootstrap: str, names: TopicNames, ids: set[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = Counter(orjson.loads(r.value)["id"] for r in read_topic(bootstrap, names.clean))
        if ids <= set(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(2)


def _report(name: str, produced: int, seen: Counter[str], ids: set[str], seconds: float) -> None:
    lost = len(ids - set(seen))
    dup = sum(n - 1 for n in seen.values() if n > 1)
    print(f"\nFAULT {name}: produced={produced} lost={lost} duplicated={dup} "
          f"recovered_in={seconds:.1f}s")


def _explain_missing(bootstrap: str, names: TopicNames, missing: set[str], group: str,
                     logs: list[Path]) -> None:
    """Where the mentions missing from ``clean`` are in ``raw`` and whether the group committed
    past them (lost for good) or not (still waiting: a stall), with the workers' guard and
    watchdog lines (offsets only). Printed so a failed CI run can be told apart."""
    if not missing:
        return
    where: dict[int, list[int]] = {}
    for r in read_topic(bootstrap, names.raw):
        if orjson.loads(r.value).get("id") in missing:
            where.setdefault(r.partition, []).append(r.offset)
    with LagProbe(bootstrap, group, {names.raw: max(where, default=-1) + 1}) as probe:
        lags = {lag.partition: lag for lag in probe.read()}
    for part, offsets in sorted(where.items()):
        lag = lags.get(part)
        committed = lag.committed if lag else None
        past = sum(o < (committed or 0) for o in offsets)
        print(f"missing on raw[{part}]: {len(offsets)} at offsets {min(offsets)}..{max(offsets)};"
              f" group committed {committed}, end {lag.end if lag else '?'}:"
              f" {past} below the commit (skipped), {len(offsets) - past} not yet read")
    print(f"missing and not in raw at all: {len(missing) - sum(map(len, where.values()))}")
    marks = ("faust-streaming would have", "stalled:", "stopping the worker", "OffsetGap",
             "Traceback", "CRITICAL")
    for log in logs:
        lines = [ln for ln in log.read_text(errors="replace").splitlines()
                 if any(m in ln for m in marks)]
        print(f"{log.name}: {len(lines)} guard/watchdog lines; last ones:")
        for ln in lines[-8:]:
            print("  " + ln[:400])


def _processing_errors(bootstrap: str, names: TopicNames) -> int:
    """Dead letters from an agent that raised: a fault must not make analysis fail."""
    letters = [orjson.loads(r.value) for r in read_topic(bootstrap, names.invalid, timeout=3)]
    return sum(x["reason"] == "processing_error" for x in letters)


def _check_opened(opened: Counter[str], bootstrap: str, names: TopicNames,
                  onset: float) -> None:
    """The pile-on's incident opened once (one idempotency key of the target opened at or
    after the onset, however often re-sent), and no organic page opened again under another
    key (what a lost state would do): at most one other for each person, the target
    included. On failure the message describes every alert and counts the processing
    errors, so a CI run that fails can be told apart from a detection change."""
    pile_on = {key for key in opened if key.startswith("amara-") and _opened_at(key) >= onset}
    others = Counter(key.split("-")[0] for key in opened if key not in pile_on)
    if len(pile_on) == 1 and max(others.values(), default=0) <= 1:
        return
    alerts = [orjson.loads(r.value) for r in read_topic(bootstrap, names.alerts)]
    described = "; ".join(
        f"{a['idempotency_key']} at {a['at']} score {a['score']:.1f} {a['assessment']}"
        f"{' found late' if a.get('found_late') else ''}"
        f" ({a['signals']['rate']['mentions']} mentions in {a['signals']['rate']['window_minutes']}"
        f" min, {a['signals']['rate']['expected']:.1f} expected)"
        for a in alerts)
    pytest.fail(f"incident opened as {sorted(opened)}; processing errors "
                f"{_processing_errors(bootstrap, names)}; alerts: {described}")


def _opened_keys(bootstrap: str, names: TopicNames, onset: float,
                 timeout: float = 90) -> Counter[str]:
    """Idempotency keys of 'opened' alerts, once the analyser has caught up and opened the
    pile-on's incident (an organic page before the onset can come first)."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = [orjson.loads(r.value) for r in read_topic(bootstrap, names.alerts)]
        opened = Counter(a["idempotency_key"] for a in alerts if a["transition"] == "opened")
        if any(_opened_at(k) >= onset for k in opened) or time.monotonic() > deadline:
            time.sleep(5)  # a second, different 'opened' would show up soon after the first
            alerts = [orjson.loads(r.value) for r in read_topic(bootstrap, names.alerts)]
            return Counter(a["idempotency_key"] for a in alerts if a["transition"] == "opened")
        time.sleep(2)


def _supervise(
    worker: WorkerProcess, bootstrap: str, names: TopicNames, ids: set[str], since: float,
    onset: float, limit: float = 240.0,
) -> tuple[Counter[str], int]:
    """Wait until every id is in ``clean`` and the analysis has opened the incident,
    restarting the worker whenever it stops, as Kubernetes would (the offset guard and the
    stall watchdog stop it on purpose, on the analysis input too)."""
    restarts = 0
    while True:
        seen = _wait_clean(bootstrap, names, ids, timeout=5)
        done = ids <= set(seen) and _opened_now(bootstrap, names, onset)
        if done or time.monotonic() - since > limit:
            print(f"\nworker restarts (stall watchdog or offset guard): {restarts}")
            return seen, restarts
        assert worker.proc is not None
        if worker.proc.poll() is not None:
            restarts += 1
            worker.start()


def _opened_now(bootstrap: str, names: TopicNames, onset: float) -> bool:
    """Whether the pile-on's incident has opened (not an organic page before the onset)."""
    return any(a["transition"] == "opened" and _opened_at(a["idempotency_key"]) >= onset
               for a in (orjson.loads(r.value) for r in read_topic(bootstrap, names.alerts)))


def _guard_stops(worker: WorkerProcess) -> int:
    """How many times the worker's log says the offset guard stopped it."""
    return worker.log_path.read_text(errors="replace").count("faust-streaming would have")


def test_worker_killed_mid_stream_loses_nothing(bootstrap: str, tmp_path: Path) -> None:
    prefix = f"kill{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    sim, mentions, onset = _simulation(time.time())
    ids = {m["id"] for m in mentions}
    worker = WorkerProcess(bootstrap, tmp_path, prefix, f"pileon-{prefix}").start()
    connector = SimulatorConnector(bootstrap, names.raw, sim)
    connector.start()
    connector.run()  # every mention acknowledged by the broker (acks=all)
    _wait_processed(worker, len(mentions) // 3, timeout=120)
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    killed_at = time.monotonic()
    restarted = WorkerProcess(bootstrap, tmp_path, prefix, f"pileon-{prefix}")
    with restarted:
        seen, _ = _supervise(restarted, bootstrap, names, ids, killed_at, onset)
        recovered = time.monotonic() - killed_at
        opened = _opened_keys(bootstrap, names, onset)
    _report("worker kill -9", len(mentions), seen, ids, recovered)
    _explain_missing(bootstrap, names, ids - set(seen), f"pileon-{prefix}",
                     [worker.log_path, restarted.log_path])
    assert ids <= set(seen), f"{len(ids - set(seen))} acknowledged mentions lost"
    _check_opened(opened, bootstrap, names, onset)
    assert _processing_errors(bootstrap, names) == 0


def test_apache_kafka_restart_is_survived(
    apache_kafka: ApacheKafka, tmp_path: Path
) -> None:
    bootstrap = apache_kafka.bootstrap
    prefix = f"bounce{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    sim, mentions, onset = _simulation(time.time())
    ids = {m["id"] for m in mentions}
    with WorkerProcess(bootstrap, tmp_path, prefix, f"pileon-{prefix}") as worker:
        connector = SimulatorConnector(bootstrap, names.raw, sim)
        connector.start()
        connector.run()
        _wait_processed(worker, len(mentions) // 3, timeout=120)
        apache_kafka.stop()
        time.sleep(3)
        stopped_at = time.monotonic()
        apache_kafka.start()
        seen, restarts = _supervise(worker, bootstrap, names, ids, stopped_at, onset)
        recovered = time.monotonic() - stopped_at
        opened = _opened_keys(bootstrap, names, onset)
        # It reconnects on its own: the only stops allowed are the offset guard's.
        assert restarts <= _guard_stops(worker), "the worker died on a broker restart"
    _report("Apache Kafka restart", len(mentions), seen, ids, recovered)
    assert ids <= set(seen), f"{len(ids - set(seen))} acknowledged mentions lost"
    _check_opened(opened, bootstrap, names, onset)
    assert _processing_errors(bootstrap, names) == 0


@pytest.mark.timeout(720)
def test_one_of_two_workers_killed_loses_nothing(bootstrap: str, tmp_path: Path) -> None:
    prefix = f"pair{uuid.uuid4().hex[:6]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    key = tmp_path / "neardup.key"  # replicas share the hashing key (a mounted secret)
    key.write_text(uuid.uuid4().hex * 2)
    workers = []
    for n in (1, 2):
        w = WorkerProcess(bootstrap, tmp_path / f"w{n}", prefix, f"pileon-{prefix}")
        w.env["PILEON_NEARDUP__KEY_FILE"] = str(key)
        w.env["PILEON_WORKER__STALL_SECONDS"] = "30"
        w.env["PILEON_WORKER__STALL_EXIT_SECONDS"] = "45"
        w.log_path.parent.mkdir(parents=True, exist_ok=True)
        workers.append(w.start())
    victim = workers[1]
    try:
        sim, mentions, onset = _simulation(time.time())
        ids = {m["id"] for m in mentions}
        connector = SimulatorConnector(bootstrap, names.raw, sim)
        connector.start()
        connector.run()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both must be working before one dies
            done = [_wait_processed(w, 1, timeout=1) for w in workers]
            if min(done) > 0 and sum(done) >= len(mentions) // 3:
                break
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed_at = time.monotonic()
        # faust-streaming can skip records around a takeover; the offset guard then stops the
        # survivor rather than commit past them, and the supervisor restarts it
        # (docs/reliability.md: about one stop per takeover on Apache Kafka, 0 lost).
        # Each guarded stop costs a restart and a rejoin (15-60 s on a loaded machine), and a
        # CI run stopped 4 times before its 240 s were up: 480 s, so that a slow recovery is
        # reported as slow (recovered_in) and only a stuck one as missing mentions.
        seen, _ = _supervise(workers[0], bootstrap, names, ids, killed_at, onset, limit=480)
        recovered = time.monotonic() - killed_at
        opened = _opened_keys(bootstrap, names, onset, timeout=30)
    finally:
        for w in workers:
            w.stop()
    _report("one of two workers kill -9", len(mentions), seen, ids, recovered)
    _explain_missing(bootstrap, names, ids - set(seen), f"pileon-{prefix}",
                     [w.log_path for w in workers])
    errors = _processing_errors(bootstrap, names)
    print(f"incident opened as {sorted(opened)}; processing errors {errors}")
    assert ids <= set(seen), f"{len(ids - set(seen))} acknowledged mentions lost"
    _check_opened(opened, bootstrap, names, onset)
    assert errors == 0
