"""The evidence archiver end to end: clean mentions on the embedded broker into hash chains.

    python bench/archiver.py                    # 50,000 mentions, 20 persons, under 2 minutes
    python bench/archiver.py --mentions 10000 --rounds 1

``bench/evidence_append.py`` times the appends alone; this times what the archiver does with a
backlog on ``mentions.clean``: poll (up to 5,000 records), parse, append to each person's
chain, make it durable, commit the offsets. The records are produced once, to one topic on
Tansu (``pileon.kafka.broker.EmbeddedBroker``, loopback); each row is a fresh archiver (its own
consumer group and archive directory) reading all of them, rounds interleaved:

- **before**: each record appended and made durable on its own (``EvidenceLog.append`` per
  record), and kafka-python checking each fetched batch's CRC-32C in pure Python: the archiver
  as it was before the seventeenth session;
- **group commit**: one write and one fsync per person per poll (``EvidenceLog.append_many``),
  the CRC still in pure Python;
- **now**: the group commit, with the CRC in C (the ``crc32c`` package, kafka-python's own
  extra, a dependency since the seventeenth session).

Reported: records a second from the first poll (the client connected and fetching) to the
last record archived (median and range
over the rounds), the same-round ratio, and the archiver's CPU time a record (its thread's).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from kafka.record import default_records  # noqa: E402
from kafka.record._crc32c import crc as crc32c_py  # noqa: E402

from pileon.connectors.producer import MentionProducer  # noqa: E402
from pileon.core.settings import KafkaSettings  # noqa: E402
from pileon.evidence.archiver import Archiver  # noqa: E402
from pileon.evidence.chain import EvidenceLog, verify_records  # noqa: E402
from pileon.kafka.broker import EmbeddedBroker  # noqa: E402
from pileon.kafka.topics import TopicNames, ensure_topics  # noqa: E402
from tests.factories import mention  # noqa: E402


def _one_at_a_time(log: EvidenceLog) -> None:
    """The archiver's appends as they were: each record written and fsynced on its own."""
    grouped = log.append_many

    def append_many(entries: Any, captured_at: float | None = None) -> list[dict[str, Any]]:
        return [r for entry in entries for r in grouped([entry], captured_at)]

    log.append_many = append_many  # type: ignore[method-assign]


@contextlib.contextmanager
def _python_crc() -> Iterator[None]:
    """kafka-python without the ``crc32c`` package: its pure-Python CRC-32C."""
    saved = default_records.calc_crc32c
    default_records.calc_crc32c = crc32c_py
    try:
        yield
    finally:
        default_records.calc_crc32c = saved


ROWS = {"before": (False, False), "group commit": (True, False), "now": (True, True)}


def _run(bootstrap: str, names: TopicNames, total: int, persons: list[str],
         grouped: bool, c_crc: bool) -> tuple[float, float]:
    """Records a second and CPU seconds a record for a fresh archiver reading everything."""
    with tempfile.TemporaryDirectory() as tmp, \
            (contextlib.nullcontext() if c_crc else _python_crc()):
        archiver = Archiver(bootstrap, names, Path(tmp), group_id=f"bench-{uuid.uuid4().hex}")
        try:
            if not grouped:
                _one_at_a_time(archiver.log)
            # Connected and fetching first (one record read, then back to the start), so the
            # time is the archiving, not the client's start-up.
            deadline = time.monotonic() + 60
            while not archiver._clean.poll(timeout_ms=1000, max_records=1):
                if time.monotonic() > deadline:
                    raise SystemExit("no record read in 60 s")
            archiver._clean.seek_to_beginning()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            while archiver.archived < total:
                archiver._drain_clean(timeout_ms=1000)
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            archived = sum(verify_records(archiver.log.records(p))[0] for p in persons)
            if archived != total:
                raise SystemExit(f"{archived} records in the chains, {total} produced")
        finally:
            archiver.close()
    return total / wall, cpu / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--persons", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    persons = [f"person{i:02d}" for i in range(args.persons)]
    with EmbeddedBroker() as broker:
        bootstrap = str(broker.bootstrap)
        names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=f"b{uuid.uuid4().hex[:6]}."))
        producer = MentionProducer(bootstrap, names.clean)
        for i in range(args.mentions):
            m = mention(rng.choice(persons), text=f"text {i} " * 8)
            producer.send_raw(str(m["person"]).encode(), orjson.dumps(m))
        producer.flush()
        producer.close()
        rows: dict[str, list[tuple[float, float]]] = {name: [] for name in ROWS}
        for _ in range(args.rounds):
            for name, (grouped, c_crc) in ROWS.items():
                rows[name].append(_run(bootstrap, names, args.mentions, persons, grouped,
                                       c_crc))
    print(f"{args.mentions:,} clean mentions over {args.persons} persons on Tansu, "
          f"{args.rounds} rounds (median, range; ratio: to 'before' in the same round)\n")
    print(f"{'':14} {'records/s':>10} {'range':>16} {'CPU us a record':>16} {'ratio':>16}")
    result = [f"mentions={args.mentions}", f"persons={args.persons}"]
    for name in ROWS:
        rates = [r for r, _ in rows[name]]
        cpu = statistics.median(c for _, c in rows[name])
        ratios = sorted(r / b for (r, _), (b, _) in zip(rows[name], rows["before"],
                                                          strict=True))
        print(f"{name:14} {statistics.median(rates):10,.0f} "
              f"{min(rates):7,.0f}-{max(rates):<8,.0f} {cpu * 1e6:16.1f} "
              f"{statistics.median(ratios):7.1f} ({ratios[0]:.1f}-{ratios[-1]:.1f})")
        key = name.replace(" ", "_")
        result += [f"{key}_per_s={statistics.median(rates):.0f}",
                   f"{key}_cpu_us={cpu * 1e6:.1f}"]
        if name != "before":
            result.append(f"{key}_ratio={statistics.median(ratios):.1f}")
    print("\nRESULT " + " ".join(result))

if __name__ == "__main__":
    main()
