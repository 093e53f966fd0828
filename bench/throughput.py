"""End-to-end throughput of one ``pileon worker`` on a broker, for sizing workers.

    python bench/throughput.py            # both workloads, a few minutes
    python bench/throughput.py --quick    # smaller workloads

Each workload starts a broker (the embedded one, or ``PILEON_KAFKA__BOOTSTRAP``), writes
simulated mentions for the example watchlist's four persons into ``mentions.raw``, then starts
one worker process and times it from its first commit until its consumer group has committed
every partition of ``mentions.raw`` to the end (the worker commits a batch once its clean
mentions and alerts are acknowledged): every mention validated, de-duplicated, re-keyed,
clustered, binned and scored, every minute of event time
closed and decided on. Every timed process commits every ``--commit-interval`` seconds (0.25;
Faust's default of 2.8 s made the resolution coarser than a quick row's whole span: the same
no-op agent measured 7,006 and 11,984 events/s on Tansu in two runs). Start-up is reported
apart. The worker's peak RSS comes from ``/proc``.

* ``pile-on``: six hours at 20 mentions a minute per person and a copypasta brigade peaking
  at 2,000 a minute on one of them: mentions dominate, so this is mentions per second.
* ``many minutes``: days of ordinary traffic (1 a minute per person) replayed at once: closing
  a person's minute (detectors, decision, state saved) dominates, so this is person-minutes
  per second, which at one minute per person per minute is how many watched persons one
  worker keeps up with live (an upper bound on the cost: the mentions are in it too).

Each workload's mentions are drawn once and the same list goes to every row: the worker's
analysis step alone (in this process, plain dicts for its tables), a bare kafka-python
consumer (read + orjson: a Python client's ceiling on this broker), a **bare Faust no-op
agent**, a **forwarding agent**, a **no-op agent on take_events** and **Faust's consumer
with no stream** (``bench/faust_baseline.py``, the worker's consumer and producer settings:
Faust's own ceiling, the cost of one awaited produce per event, the floor of Faust's batch
API, and the floor of the worker's own consumption, batches taken below Faust's streams), and
the worker. Every row of every workload has its own topics (a fresh prefix) and its
own consumer group / app id, so nothing starts from an earlier row's offsets or tables. For
each process: events per second from its first commit until it has committed everything, its
CPU time over that span per mention (``/proc``: user + system), its peak RSS; for the worker
also the changelog records its tables wrote per mention. ``--broker tansu,kafka`` (the
default) runs everything on the embedded broker and then on Apache Kafka (KRaft, the jars the
tests use); the figures to compare are the ratios within one broker's run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from pileon.cli.demo import start_worker
from pileon.connectors.producer import MentionProducer
from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.process import terminate
from pileon.core.settings import load_settings
from pileon.core.watchlist import load_watchlist
from pileon.kafka.broker import EmbeddedBroker
from pileon.kafka.lag import LagProbe
from pileon.kafka.topics import ensure_topics
from pileon.schema.mention import Mention
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.neardup import Signer


@dataclass(frozen=True)
class Workload:
    label: str
    mentions: list[dict[str, Any]]  # drawn once: every row of the workload reads this list
    persons: int
    days: float


@dataclass
class Row:
    label: str
    per_s: float
    seconds: float
    startup: float = float("nan")
    cpu_us: float = float("nan")  # process CPU (user + system) per mention over the timed span
    rss: float = float("nan")  # peak RSS, MB
    changelog: float = float("nan")  # table changelog records per mention


def plain_consume(bootstrap: str, topic: str, partitions: int, total: int) -> Row:
    """A bare consumer reading ``topic`` from the start and decoding every record."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             max_poll_records=2000)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen, t0 = 0, time.perf_counter()
    try:
        while seen < total:
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    orjson.loads(r.value)
                seen += len(records)
        seconds = time.perf_counter() - t0
        return Row("bare consumer (read + orjson)", seen / seconds, seconds)
    finally:
        consumer.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(bootstrap: str, topic: str, mentions: list[dict[str, Any]]) -> int:
    producer = MentionProducer(bootstrap, topic)
    try:
        for m in mentions:
            producer.send(m)
        producer.flush()
        return int(producer.sent)
    finally:
        producer.close()


def timed(
    label: str, proc: subprocess.Popen[bytes], log_path: Path, bootstrap: str, group: str,
    sources: dict[str, int], total: int, started: float, timeout: float,
) -> Row:
    """Times ``proc`` from its group's first commit until it has committed every partition of
    ``sources`` to the end (each source topic holding records by then). The rate and the CPU
    time per record both count the records of the first source committed in that span (what
    the first commit already covered is left out of both)."""
    first = cpu0 = None
    head = next(iter(sources))
    at_first = 0
    try:
        with LagProbe(bootstrap, group, sources) as probe:
            while time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    sys.exit(f"{label} exited with {proc.returncode}; its log:\n"
                             + log_path.read_text()[-3000:])
                try:
                    lags = probe.read()
                except KafkaError:  # Apache Kafka: the offsets topic is still being created
                    time.sleep(0.5)
                    continue
                now = time.perf_counter()
                if first is None and any(p.committed for p in lags):
                    first, cpu0 = now, cpu_seconds(proc.pid)
                    at_first = sum(p.committed or 0 for p in lags if p.topic == head)
                filled = all(sum(p.end for p in lags if p.topic == t) > 0 for t in sources)
                if (first is not None and filled and sum(p.lag for p in lags) == 0
                        and all(p.committed is not None for p in lags if p.end > 0)):
                    assert cpu0 is not None
                    if at_first >= total:
                        sys.exit(f"{label} had read everything by its first commit: the "
                                 "workload is too small to time it")
                    done = total - at_first
                    cpu = cpu_seconds(proc.pid) - cpu0
                    return Row(label, done / (now - first), now - first, first - started,
                               cpu / done * 1e6, peak_rss_mb(proc.pid))
                time.sleep(0.25)
        sys.exit(f"{label} did not catch up within {timeout:.0f} s")
    finally:
        terminate(proc, timeout=20)


def faust_baseline(kind: str, bootstrap: str, raw: str, partitions: int, total: int,
                   out: Path, timeout: float) -> Row:
    app_id = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, str(Path(__file__).with_name("faust_baseline.py")), kind, bootstrap,
            app_id, raw, str(partitions)]
    if kind == "forward":
        sink = f"{raw}.forwarded"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(sink, partitions, 1)])
        finally:
            admin.close()
        args.append(sink)
    log_path = out / f"{kind}.log"
    started = time.perf_counter()
    with log_path.open("wb") as log:
        # Its tables' data directory inside the run's, removed with it.
        env = {**os.environ, "PILEON_WORKER__DATA_DIR": str(out / f"{kind}-data")}
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True, env=env)  # (our own script)
    label = {"noop": "Faust no-op agent", "forward": "Faust forwarding agent",
             "noop-batch": "Faust no-op agent, take_events",
             "direct": "Faust consumer, no stream (batches)"}[kind]
    return timed(label, proc, log_path, bootstrap, app_id, {raw: partitions}, total, started,
                 timeout)


def changelog_records(bootstrap: str, app_id: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        topics = [t for t in consumer.topics()
                  if t.startswith(f"{app_id}-") and t.endswith("-changelog")]
        tps = [TopicPartition(t, p) for t in topics
               for p in consumer.partitions_for_topic(t) or ()]
        return sum(consumer.end_offsets(tps).values()) if tps else 0
    finally:
        consumer.close()


@dataclass(frozen=True)
class Variant:
    """A worker row's settings beyond the defaults: ``label:section.key=value,...``."""

    label: str
    env: dict[str, str]

    @classmethod
    def parse(cls, spec: str) -> Variant:
        label, _, assignments = spec.partition(":")
        env = {}
        for assignment in filter(None, assignments.split(",")):
            name, eq, value = assignment.partition("=")
            section, dot, key = name.partition(".")
            if not (eq and dot):
                raise SystemExit(f"--variant {spec!r}: expected label:section.key=value,...")
            env[f"PILEON_{section.upper()}__{key.upper()}"] = value
        return cls(label, env)


DEFAULTS = Variant("default", {})


def run(workload: Workload, bootstrap: str, timeout: float, faust: bool = True,
        variants: tuple[Variant, ...] = (DEFAULTS,)) -> list[Row]:
    """Every row of one workload on one broker (``faust``: with the bare Faust agents; the
    worker once per variant). Each worker row gets topics of its own (a fresh prefix, the
    workload's mentions produced again) and a group of its own; the baselines read the first
    worker's ``mentions.raw`` before it starts."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, variant in enumerate(variants):
            os.environ["PILEON_KAFKA__TOPIC_PREFIX"] = f"b{uuid.uuid4().hex[:8]}."
            os.environ["PILEON_WORKER__APP_ID"] = app_id = f"pileon-{uuid.uuid4().hex[:8]}"
            os.environ.update(variant.env)
            settings = load_settings()
            names = ensure_topics(bootstrap, settings.kafka)
            partitions = settings.kafka.partitions
            total = produce(bootstrap, names.raw, workload.mentions)
            out = Path(tmp) / f"{n}-{variant.label}"
            out.mkdir()
            if n == 0:
                print(f"{workload.label}: {total} mentions of {workload.persons} persons over "
                      f"{workload.days * 24:g} simulated hours", flush=True)
                rows.append(plain_consume(bootstrap, names.raw, partitions, total))
                for kind in ("noop", "forward", "noop-batch", "direct") if faust else ():
                    rows.append(faust_baseline(kind, bootstrap, names.raw, partitions, total,
                                               out, timeout))
            started = time.perf_counter()
            worker = start_worker(settings, bootstrap, out)
            for name in variant.env:
                del os.environ[name]
            label = "pileon worker" + (f" ({variant.label})" if len(variants) > 1 else "")
            row = timed(label, worker, out / "worker.log", bootstrap, app_id,
                        {names.raw: partitions}, total, started, timeout)
            row.changelog = changelog_records(bootstrap, app_id) / total
            rows.append(row)
    return rows


def analysis_alone(workload: Workload) -> Row:
    """The worker's analysis step in this process, plain dicts for its tables: what the
    worker costs without Faust and Kafka around it."""
    settings = load_settings()
    watchlist = load_watchlist(settings.watchlist)
    mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in workload.mentions]
    signer = Signer(b"bench-key-0123456789abcdef", settings.neardup.num_perm)
    analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer, {}, {})
    t0, c0 = time.perf_counter(), time.process_time()
    for m in mentions:
        analyser.delivered(m.person, len(analyser.process(m)))
    seconds = time.perf_counter() - t0
    return Row("analysis step alone (in process)", len(mentions) / seconds, seconds,
               cpu_us=(time.process_time() - c0) / len(mentions) * 1e6)


def show(broker: str, workload: Workload, rows: list[Row]) -> None:
    noop = next((r for r in rows if r.label == "Faust no-op agent"), rows[0])
    print(f"\n{broker}, {workload.label} ({len(workload.mentions):,} mentions)")
    versus = "x no-op" if "no-op" in noop.label else "x bare"
    print(f"{'':34} {'events/s':>9} {versus:>8} {'CPU us/event':>13} "
          f"{'changelog/ev':>13} "
          f"{'start-up s':>11} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r.label:34} {r.per_s:>9,.0f} {r.per_s / noop.per_s:>8.2f} {r.cpu_us:>13.0f} "
              f"{r.changelog:>13.3f} {r.startup:>11.1f} {r.rss:>12.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--variant", action="append", type=Variant.parse, metavar="SPEC",
                    help="a pile-on worker row with these settings, label:section.key=value,"
                         "... (e.g. full:worker.faust_metrics=full); repeat it for several "
                         "rows in this run, in this order (default: one row, the defaults)")
    ap.add_argument("--commit-interval", type=float, default=0.25,
                    help="seconds between the offset commits of every timed process (its "
                         "worker.commit_interval_seconds): the timing's resolution, since rows "
                         "are timed by their commits (Faust's default, 2.8 s, left a few-second "
                         "row up to half wrong)")
    ap.add_argument("--broker", default="tansu,kafka",
                    help="comma-separated: tansu (embedded), kafka (Apache Kafka, KRaft)")
    args = ap.parse_args()
    os.environ["PILEON_WORKER__COMMIT_INTERVAL_SECONDS"] = str(args.commit_interval)
    watchlist = load_watchlist(load_settings().watchlist)
    persons = {p.key: p.display_name for p in watchlist.persons}
    target = watchlist.persons[0].key
    # Ending at the last UTC midnight: the same workload every run (ingest refuses event
    # times over 30 days old, so a fixed date would not do).
    now = time.time() // 86400 * 86400
    days = 0.25 if args.quick else 0.5
    pileon = Simulator(persons, end=now, days=days, seed=7, mean_per_hour=1200,
                       pileon=PileOnScript(target, peak_per_minute=600 if args.quick else 2000,
                                           accounts=3000, post_share=0.5))
    minutes_days = 2 if args.quick else 7
    minutes = Simulator(persons, end=now, days=minutes_days, seed=8, mean_per_hour=60)
    dense = Workload("pile-on", pileon.mentions(), len(persons), days)
    many = Workload("many minutes", minutes.mentions(), len(persons), minutes_days)
    alone = analysis_alone(dense)
    result: list[str] = [f"analysis_alone_per_s={alone.per_s:.0f}",
                         f"analysis_alone_cpu_us={alone.cpu_us:.0f}"]
    for broker in args.broker.split(","):
        with ExitStack() as stack:
            bootstrap = start_broker(broker, stack)
            rows = run(dense, bootstrap, args.timeout,
                       variants=tuple(args.variant or (DEFAULTS,)))
            show(broker, dense, [alone, *rows])
            many_rows = run(many, bootstrap, args.timeout, faust=False)
            show(broker, many, many_rows)
        noop, forward, batch, direct = rows[1:5]
        workers = rows[5:]
        worker = workers[0]
        per_min = len(persons) * minutes_days * 1440 / many_rows[-1].seconds
        print(f"{broker}: {per_min:,.0f} person-minutes closed a second on many minutes")
        result += [f"{broker}_worker_per_s={worker.per_s:.0f}",
                   f"{broker}_noop_per_s={noop.per_s:.0f}",
                   f"{broker}_forward_per_s={forward.per_s:.0f}",
                   f"{broker}_noop_batch_per_s={batch.per_s:.0f}",
                   f"{broker}_noop_cpu_us={noop.cpu_us:.0f}",
                   f"{broker}_noop_batch_cpu_us={batch.cpu_us:.0f}",
                   f"{broker}_direct_per_s={direct.per_s:.0f}",
                   f"{broker}_direct_cpu_us={direct.cpu_us:.0f}",
                   f"{broker}_ratio_to_noop={worker.per_s / noop.per_s:.3f}",
                   f"{broker}_worker_rows_ratio_to_noop=" + ",".join(
                       f"{r.per_s / noop.per_s:.3f}" for r in workers),
                   f"{broker}_worker_cpu_us={worker.cpu_us:.0f}",
                   f"{broker}_changelog_per_mention={worker.changelog:.3f}",
                   f"{broker}_person_minutes_per_s={per_min:.0f}",
                   f"{broker}_worker_peak_rss_mb={max(worker.rss, many_rows[-1].rss):.0f}"]
    print("RESULT " + " ".join(result))


def start_broker(kind: str, stack: ExitStack) -> str:
    if kind == "tansu":
        return str(stack.enter_context(EmbeddedBroker()).bootstrap)
    if kind == "kafka":
        from tests.kafka.broker import ApacheKafka  # the jars the tests fetch (Maven Central)

        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        kafka = ApacheKafka(data).start()
        stack.callback(kafka.stop)
        return kafka.bootstrap
    sys.exit(f"unknown broker {kind!r}: tansu or kafka")


if __name__ == "__main__":
    main()
