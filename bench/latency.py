"""Latency of one ``pileon worker`` under paced load: produce → ``mentions.clean`` and
produce → alert, at 10, 100 and 1,000 mentions a second.

    python bench/latency.py                          # Tansu and Apache Kafka, ~30 min
    python bench/latency.py --broker tansu --rates 10,1000   # ~10 min
    python bench/latency.py --broker tansu --rates 100 --fetch-wait-ms 1500,100  # ~10 min
    python bench/latency.py --broker kafka --rates 10,1000 --batch-wait-ms 100,20  # ~20 min

A replay of a backlog measures throughput, not latency: here mentions are produced at a fixed
pace with their event time set to the moment they are sent, as a live connector does. Each
rate gets topics and a worker of its own:

1. a day of ordinary history for the example watchlist's four persons (1 mention a minute
   each, ending now) is produced and the worker is started and waited for until its group has
   committed everything: its detectors have a baseline;
2. for ``--seconds`` the bench sends ``rate`` mentions a second, spread over the four persons
   (templates drawn once from a simulated pile-on, so the texts cluster as a brigade's do),
   in 10 ms ticks, and notes each one's send time;
3. a consumer of ``mentions.clean`` and one of ``alerts`` (other threads, positioned at the
   end before the pace starts) note when each record arrives.

Every rate is far above the learned 1 a minute, so every person opens an incident: those are
the alerts timed. A bin of event time closes only when a mention at least ``lateness_seconds``
past its end arrives (``detection.bin_seconds`` 60 + ``lateness_seconds`` 60 by default), so an
alert's *processing* latency is counted from the send of the first mention of its person whose
event time is at or past ``at + lateness``: the one that closed the bin. The event-time wait
(bin + lateness + confirmation) is printed apart: it is the detector's design, not the
pipeline's speed. Worker CPU per mention over the paced span comes from ``/proc``. The bench
process shares the machine with the broker and the worker: the figures include its own cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from throughput import cpu_seconds, peak_rss_mb, produce, start_broker

from pileon.cli.demo import start_worker
from pileon.connectors.producer import MentionProducer
from pileon.connectors.traffic import PileOnScript, Simulator
from pileon.core.process import terminate
from pileon.core.settings import load_settings
from pileon.core.times import epoch, iso_z
from pileon.core.watchlist import load_watchlist
from pileon.kafka.lag import LagProbe
from pileon.kafka.topics import ensure_topics

TICK = 0.01  # seconds between bursts of sends


@dataclass
class Arrivals:
    """What a consumer thread saw: record key (a mention id or an alert) → arrival time."""

    clean: dict[str, float] = field(default_factory=dict)
    alerts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Level:
    rate: int
    sent: int
    clean_ms: list[float]  # produce → mentions.clean, one per paced mention
    alert_ms: list[float]  # produce of the closing mention → alert, one per alert
    event_wait_s: list[float]  # the alert's arrival − its bin's end (event time)
    missing: int  # paced mentions never seen on mentions.clean
    cpu_us: float
    rss: float
    behind_s: float  # how far the sender fell behind its schedule at most
    fetch_wait_ms: int = 0  # the worker's worker.fetch_wait_ms
    batch_wait_ms: int = 0  # the worker's worker.batch_wait_ms


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def follow(bootstrap: str, clean: str, alerts: str, partitions: int, out: Arrivals,
           stop: threading.Event, ready: threading.Event) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=10, max_poll_records=2000)
    tps = [TopicPartition(t, p) for t in (clean, alerts) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)  # resolve the end now, before the pace starts
    ready.set()
    try:
        while not stop.is_set():
            for tp, records in consumer.poll(timeout_ms=100).items():
                now = time.time()
                for r in records:
                    value = orjson.loads(r.value)
                    if tp.topic == clean:
                        out.clean[value["id"]] = now
                    else:
                        out.alerts.append((now, value))
    finally:
        consumer.close()


def wait_caught_up(bootstrap: str, group: str, sources: dict[str, int], worker: Any,
                   timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with LagProbe(bootstrap, group, sources) as probe:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                sys.exit(f"the worker exited with {worker.returncode}")
            try:
                lags = probe.read()
            except KafkaError:
                time.sleep(0.5)
                continue
            if (all(sum(p.end for p in lags if p.topic == t) > 0 for t in sources)
                    and sum(p.lag for p in lags) == 0
                    and all(p.committed is not None for p in lags if p.end > 0)):
                return
            time.sleep(0.5)
    sys.exit(f"the worker did not catch up with its history within {timeout:.0f} s")


def paced(producer: MentionProducer, templates: list[dict[str, Any]], rate: int,
          seconds: float, tag: str) -> tuple[dict[str, tuple[str, float]], float]:
    """Sends ``rate`` mentions a second for ``seconds``; id → (person, send time, which is
    also its event time), and how far behind its schedule the sender fell at most."""
    sent: dict[str, tuple[str, float]] = {}
    total = int(rate * seconds)
    start = time.time()
    behind = 0.0
    i = 0
    while i < total:
        due = start + i / rate
        now = time.time()
        if due > now:
            time.sleep(min(TICK, due - now))
            continue
        behind = max(behind, now - due)
        while i < total and start + i / rate <= now:  # everything due by now
            m = dict(templates[i % len(templates)])
            at = time.time()
            m["id"] = f"bluesky:{tag}-{i}"
            m["created_at"] = iso_z(at)
            producer.send(m)
            sent[m["id"]] = (m["person"], at)
            i += 1
    producer.flush()
    return sent, behind


def level(rate: int, seconds: float, bootstrap: str, persons: dict[str, str],
          templates: list[dict[str, Any]], tmp: Path, fetch_wait_ms: int | None,
          batch_wait_ms: int | None = None) -> Level:
    os.environ["PILEON_KAFKA__TOPIC_PREFIX"] = f"l{uuid.uuid4().hex[:8]}."
    for name, value in (("FETCH_WAIT_MS", fetch_wait_ms), ("BATCH_WAIT_MS", batch_wait_ms)):
        if value is None:
            os.environ.pop(f"PILEON_WORKER__{name}", None)
        else:
            os.environ[f"PILEON_WORKER__{name}"] = str(value)
    os.environ["PILEON_WORKER__APP_ID"] = app_id = f"pileon-{uuid.uuid4().hex[:8]}"
    settings = load_settings()
    names = ensure_topics(bootstrap, settings.kafka)
    partitions = settings.kafka.partitions
    history = Simulator(persons, end=time.time() - 60, days=1, seed=rate, mean_per_hour=60)
    produce(bootstrap, names.raw, history.mentions())
    out = tmp / f"rate-{rate}-{settings.worker.fetch_wait_ms}-{settings.worker.batch_wait_ms}"
    out.mkdir()
    worker = start_worker(settings, bootstrap, out)
    arrivals, stop, ready = Arrivals(), threading.Event(), threading.Event()
    thread = threading.Thread(target=follow, args=(bootstrap, names.clean, names.alerts,
                                                   partitions, arrivals, stop, ready))
    try:
        wait_caught_up(bootstrap, app_id, {names.raw: partitions},
                       worker, timeout=300)
        thread.start()
        ready.wait(30)
        producer = MentionProducer(bootstrap, names.raw)
        time.sleep(61 - time.time() % 60)  # start a second into a minute: same bins every run
        cpu0 = cpu_seconds(worker.pid)
        try:
            sent, behind = paced(producer, templates, rate, seconds, f"pace{rate}")
        finally:
            producer.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(set(sent) & arrivals.clean.keys()) < len(sent):
            time.sleep(0.2)
        cpu = cpu_seconds(worker.pid) - cpu0
        time.sleep(3)  # an alert a closing mention triggered follows its clean record
        rss = peak_rss_mb(worker.pid)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(10)
        terminate(worker, timeout=20)
    clean_ms = [(arrivals.clean[i] - at) * 1e3 for i, (_, at) in sent.items()
                if i in arrivals.clean]
    lateness = settings.detection.lateness_seconds
    by_person: dict[str, list[float]] = {}  # send (= event) times, in order
    for person, at in sent.values():
        by_person.setdefault(person, []).append(at)
    alert_ms, waits = [], []
    for arrived, alert in arrivals.alerts:
        bin_end = epoch(alert["at"])
        after = (at for at in by_person.get(alert["person"], []) if at >= bin_end + lateness)
        closing = next(after, None)
        if closing is None or alert.get("found_late"):
            continue
        alert_ms.append((arrived - closing) * 1e3)
        waits.append(arrived - bin_end)
    return Level(rate, len(sent), clean_ms, alert_ms, waits, len(sent) - len(clean_ms),
                 cpu / max(1, len(clean_ms)) * 1e6, rss, behind, settings.worker.fetch_wait_ms,
                 settings.worker.batch_wait_ms)


def show(broker: str, levels: list[Level]) -> None:
    print(f"\n{broker}: produce → mentions.clean and → alert under paced load")
    print(f"{'rate/s':>7} {'wait':>5} {'batch':>5} {'sent':>7} {'clean p50 ms':>13} "
          f"{'p99':>7} {'max':>7} "
          f"{'alerts':>7} {'alert p50 ms':>13} {'p99':>7} {'max':>7} {'bin→alert s':>12} "
          f"{'CPU us':>7} {'RSS MB':>7} {'late s':>7}")
    for x in levels:
        print(f"{x.rate:>7} {x.fetch_wait_ms:>5} {x.batch_wait_ms:>5} {x.sent:>7} "
              f"{pct(x.clean_ms, 50):>13.1f} "
              f"{pct(x.clean_ms, 99):>7.1f} "
              f"{max(x.clean_ms, default=float('nan')):>7.1f} {len(x.alert_ms):>7} "
              f"{pct(x.alert_ms, 50):>13.1f} {pct(x.alert_ms, 99):>7.1f} "
              f"{max(x.alert_ms, default=float('nan')):>7.1f} "
              f"{statistics.median(x.event_wait_s) if x.event_wait_s else float('nan'):>12.1f} "
              f"{x.cpu_us:>7.0f} {x.rss:>7.0f} {x.behind_s:>7.3f}")
        if x.missing:
            print(f"        {x.missing} paced mentions never reached mentions.clean")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="tansu,kafka",
                    help="comma-separated: tansu (embedded), kafka (Apache Kafka, KRaft)")
    ap.add_argument("--rates", default="10,100,1000", help="mentions a second, comma-separated")
    ap.add_argument("--seconds", type=float, default=210.0,
                    help="paced span per rate; it starts on a minute boundary, and with the "
                         "default detection settings an incident opens about 3 minutes in "
                         "(a bin, the lateness allowance, a confirming bin)")
    ap.add_argument("--fetch-wait-ms", default="",
                    help="worker.fetch_wait_ms values, comma-separated: each rate runs once per "
                         "value, in the same run (default: the setting's default only)")
    ap.add_argument("--batch-wait-ms", default="",
                    help="worker.batch_wait_ms values, comma-separated: each rate runs once per "
                         "value, in the same run (default: the setting's default only)")
    args = ap.parse_args()
    watchlist = load_watchlist(load_settings().watchlist)
    persons = {p.key: p.display_name for p in watchlist.persons}
    # Texts, authors and posts of a simulated brigade on every person: the near-duplicate
    # index and the coordination signals work as they would in a pile-on.
    templates = []
    for n, person in enumerate(persons):
        sim = Simulator({person: persons[person]}, end=time.time(), days=0.02, seed=100 + n,
                        mean_per_hour=60, pileon=PileOnScript(person, peak_per_minute=600,
                                                              accounts=3000, post_share=0.5))
        templates.append([m for m in sim.mentions() if m["person"] == person])
    pool = [m for group in zip(*templates, strict=False) for m in group]
    rates = [int(r) for r in args.rates.split(",")]
    waits: list[int | None] = [int(w) for w in args.fetch_wait_ms.split(",") if w] or [None]
    batches: list[int | None] = [int(w) for w in args.batch_wait_ms.split(",") if w] or [None]
    result: list[str] = []
    for broker in args.broker.split(","):
        with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
            bootstrap = start_broker(broker, stack)
            levels = [level(rate, args.seconds, bootstrap, persons, pool, Path(tmp), wait, batch)
                      for rate in rates for wait in waits for batch in batches]
        show(broker, levels)
        for x in levels:
            tag = f"{x.rate}" if waits == [None] else f"{x.rate}_wait{x.fetch_wait_ms}"
            if batches != [None]:
                tag += f"_batch{x.batch_wait_ms}"
            result += [f"{broker}_clean_p50_ms_{tag}={pct(x.clean_ms, 50):.1f}",
                       f"{broker}_clean_p99_ms_{tag}={pct(x.clean_ms, 99):.1f}",
                       f"{broker}_alert_p50_ms_{tag}={pct(x.alert_ms, 50):.1f}",
                       f"{broker}_alert_max_ms_{tag}={pct(x.alert_ms, 100):.1f}",
                       f"{broker}_alerts_{tag}={len(x.alert_ms)}",
                       f"{broker}_cpu_us_{tag}={x.cpu_us:.0f}"]
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
