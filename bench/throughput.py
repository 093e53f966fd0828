"""End-to-end throughput of one ``pileon worker`` on a broker, for sizing workers.

    python bench/throughput.py            # both workloads, a few minutes
    python bench/throughput.py --quick    # smaller workloads

Each workload starts a broker (the embedded one, or ``PILEON_KAFKA__BOOTSTRAP``), writes
simulated mentions for the example watchlist's four persons into ``mentions.raw``, then starts
one worker process and times it from its first commit until its consumer group has committed
every partition of ``mentions.raw`` and ``mentions.clean`` to the end: every mention
validated, de-duplicated, re-keyed, clustered, binned and scored, every minute of event time
closed and decided on (Faust's commit interval, 2.8 s, bounds the resolution). Start-up is
reported apart. The worker's peak RSS comes from ``/proc``.

* ``pile-on``: six hours at 20 mentions a minute per person and a copypasta brigade peaking
  at 2,000 a minute on one of them: mentions dominate, so this is mentions per second.
* ``many minutes``: days of ordinary traffic (1 a minute per person) replayed at once: closing
  a person's minute (detectors, decision, state saved) dominates, so this is person-minutes
  per second, which at one minute per person per minute is how many watched persons one
  worker keeps up with live (an upper bound on the cost: the mentions are in it too).

Also measured: the pile-on through the worker's analysis step alone, in this process with
plain dicts for its tables, to show how much of the cost is the pipeline around it.

Baseline, same broker, same run: a plain kafka-python consumer reading ``mentions.raw``
from the beginning and decoding every record with orjson, the ceiling of a Python client on
this broker; the ratio says how much of it the whole pipeline keeps.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaConsumer, TopicPartition

from pileon.cli.demo import start_worker
from pileon.connectors.simulator import SimulatorConnector
from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.process import terminate
from pileon.core.settings import load_settings
from pileon.core.watchlist import load_watchlist
from pileon.kafka.broker import kafka_connection
from pileon.kafka.lag import LagProbe
from pileon.kafka.topics import ensure_topics
from pileon.schema.mention import Mention
from pileon.streams.detection.analysis import PersonAnalyser
from pileon.streams.detection.neardup import Signer


def plain_consume(bootstrap: str, topic: str, partitions: int, total: int) -> float:
    """Records per second for a bare consumer reading ``topic`` from the start."""
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
        return seen / (time.perf_counter() - t0)
    finally:
        consumer.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def run(label: str, simulator: Simulator, timeout: float) -> dict[str, float]:
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp, kafka_connection(settings) as connection:
        bootstrap = connection.bootstrap_servers
        names = ensure_topics(bootstrap, settings.kafka)
        partitions = settings.kafka.partitions
        connector = SimulatorConnector(bootstrap, names.raw, simulator)
        connector.start()
        sent = connector.run()
        days = (simulator.end - simulator.start) / 86400
        print(f"{label}: {sent} mentions of {len(simulator.persons)} persons over "
              f"{days * 24:g} simulated hours")
        baseline = plain_consume(bootstrap, names.raw, partitions, sent)
        log_path = Path(tmp) / "worker.log"
        started = time.perf_counter()
        worker = start_worker(settings, bootstrap, Path(tmp))
        try:
            first, done = _caught_up(worker, log_path, bootstrap, settings.worker.app_id,
                                     {names.raw: partitions, names.clean: partitions},
                                     names.raw, started, timeout)
            rss = peak_rss_mb(worker.pid)
        finally:
            terminate(worker, timeout=20)
    seconds = done - first
    return {"mentions": sent, "baseline": baseline, "per_s": sent / seconds,
            "person_minutes_per_s": len(simulator.persons) * days * 1440 / seconds,
            "startup": first - started, "seconds": seconds, "rss": rss}


def _caught_up(
    worker: subprocess.Popen[bytes], log_path: Path, bootstrap: str, group: str,
    sources: dict[str, int], raw_topic: str, started: float, timeout: float,
) -> tuple[float, float]:
    """When the worker first committed, and when it had committed everything."""
    first = None
    with LagProbe(bootstrap, group, sources) as probe:
        while time.perf_counter() - started < timeout:
            if worker.poll() is not None:
                sys.exit(f"the worker exited with {worker.returncode}; its log:\n"
                         + log_path.read_text()[-3000:])
            lags = probe.read()
            now = time.perf_counter()
            raw = [p for p in lags if p.topic == raw_topic]
            if first is None and any(p.committed for p in raw):
                first = now
            clean_end = sum(p.end for p in lags if p.topic != raw_topic)
            if (first is not None and clean_end > 0 and sum(p.lag for p in lags) == 0
                    and all(p.committed is not None for p in raw)):
                return first, now
            time.sleep(0.25)
    sys.exit(f"the worker did not catch up within {timeout:.0f} s")


def analysis_alone(simulator: Simulator) -> float:
    """Mentions per second through the worker's analysis step in this process, plain dicts
    for its tables: what the worker costs without Faust and Kafka around it."""
    settings = load_settings()
    watchlist = load_watchlist(settings.watchlist)
    mentions = [Mention.model_validate_json(orjson.dumps(m)) for m in simulator.mentions()]
    signer = Signer(b"bench-key-0123456789abcdef", settings.neardup.num_perm)
    analyser = PersonAnalyser(watchlist, settings.detection, settings.neardup, signer, {}, {})
    t0 = time.perf_counter()
    for m in mentions:
        analyser.delivered(m.person, len(analyser.process(m)))
    return len(mentions) / (time.perf_counter() - t0)


def compare_lingers(simulator: Simulator, lingers: list[int], timeout: float) -> None:
    """The pile-on workload once per producer linger, in this run, against its own bare
    consumer each time; the ratio to the first linger is the figure to compare."""
    import os

    rows = []
    for linger in lingers:
        os.environ["PILEON_WORKER__PRODUCER_LINGER_MS"] = str(linger)
        rows.append((linger, run(f"pile-on, linger {linger} ms", simulator, timeout)))
    os.environ.pop("PILEON_WORKER__PRODUCER_LINGER_MS", None)
    first = rows[0][1]["per_s"] / rows[0][1]["baseline"]
    print(f"\n{'linger ms':>9} {'worker mentions/s':>18} {'bare consumer/s':>16} "
          f"{'ratio':>6} {'vs first':>8} {'peak RSS MB':>12}")
    for linger, r in rows:
        ratio = r["per_s"] / r["baseline"]
        print(f"{linger:>9} {r['per_s']:>18,.0f} {r['baseline']:>16,.0f} {ratio:>6.3f} "
              f"{ratio / first:>8.2f} {r['rss']:>12.0f}")
    print("RESULT " + " ".join(
        f"linger{linger}_per_s={r['per_s']:.0f} linger{linger}_ratio="
        f"{r['per_s'] / r['baseline']:.3f}" for linger, r in rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--linger-ms", default="",
                    help="comma-separated producer lingers to compare on the pile-on "
                         "workload in this run (worker.producer_linger_ms), e.g. 0,5,20")
    args = ap.parse_args()
    watchlist = load_watchlist(load_settings().watchlist)
    persons = {p.key: p.display_name for p in watchlist.persons}
    target = watchlist.persons[0].key
    # Ending at the last UTC midnight: the same workload every run (ingest refuses event
    # times over 30 days old, so a fixed date would not do).
    now = time.time() // 86400 * 86400
    pileon = Simulator(persons, end=now, days=0.25 if args.quick else 0.5, seed=7,
                       mean_per_hour=1200,
                       pileon=PileOnScript(target, peak_per_minute=600 if args.quick else 2000,
                                           accounts=3000, post_share=0.5))
    minutes = Simulator(persons, end=now, days=2 if args.quick else 7, seed=8,
                        mean_per_hour=60)
    alone = analysis_alone(pileon)
    if args.linger_ms:
        compare_lingers(pileon, [int(x) for x in args.linger_ms.split(",")], args.timeout)
        return
    dense = run("pile-on", pileon, args.timeout)
    many = run("many minutes", minutes, args.timeout)

    print()
    print(f"{'workload':14} {'mentions':>9} {'plain consumer/s':>17} {'worker mentions/s':>18} "
          f"{'person-minutes/s':>17} {'start-up s':>11} {'peak RSS MB':>12}")
    for label, r in (("pile-on", dense), ("many minutes", many)):
        print(f"{label:14} {r['mentions']:>9,.0f} {r['baseline']:>17,.0f} {r['per_s']:>18,.0f} "
              f"{r['person_minutes_per_s']:>17,.0f} {r['startup']:>11.1f} {r['rss']:>12.0f}")
    print(f"\nthe pile-on through the analysis step alone, in process: {alone:,.0f} mentions/s "
          f"({1 - dense['per_s'] / alone:.0%} of the worker's cost per mention is around it)")
    print(f"RESULT worker_mentions_per_s={dense['per_s']:.0f} "
          f"plain_consumer_per_s={dense['baseline']:.0f} "
          f"ratio={dense['per_s'] / dense['baseline']:.3f} "
          f"person_minutes_per_s={many['person_minutes_per_s']:.0f} "
          f"live_persons_per_worker={many['person_minutes_per_s'] * 60:.0f} "
          f"analysis_alone_per_s={alone:.0f} startup_s={dense['startup']:.1f} "
          f"worker_peak_rss_mb={max(dense['rss'], many['rss']):.0f}")


if __name__ == "__main__":
    main()
