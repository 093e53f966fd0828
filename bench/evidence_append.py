"""The evidence archiver's appends: one fsync a record against one a person per poll.

    python bench/evidence_append.py                  # 20,000 mentions, 20 persons, 3 rounds
    python bench/evidence_append.py --persons 1 --mentions 5000

The archiver makes every clean mention durable in its person's hash chain before it commits
the topic's offsets. It used to append and fsync each record (``EvidenceLog.append``); it now
hands each poll's records to ``EvidenceLog.append_many``, which writes each person's new
records with one write and one fsync (a group commit). Both are timed here on the same
mentions (``tests.factories.mention``, built once, spread at random over ``--persons``), each
run into a fresh directory on the same disk as the repo's temporary files, rounds interleaved:
the one-at-a-time appends are the baseline, then ``append_many`` with polls of 100, 500 and
5,000 records (the archiver polls up to 5,000; a poll holds what has arrived since the last
one, so a busy archiver's are large and an idle one's small). Reported: microseconds a record
(median and range over the rounds), records a second, and the speed-up at each poll size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pileon.evidence.chain import EvidenceLog, verify_records  # noqa: E402
from tests.factories import mention  # noqa: E402

POLLS = (100, 500, 5000)


def _run(mentions: list[dict[str, Any]], poll: int | None) -> float:
    """Seconds a record to archive ``mentions``, one at a time (``poll`` None) or by polls."""
    with tempfile.TemporaryDirectory() as tmp:
        log = EvidenceLog(Path(tmp) / "chains")
        entries = [(m, {"topic": "mentions.clean", "partition": 0, "offset": i})
                   for i, m in enumerate(mentions)]
        started = time.perf_counter()
        if poll is None:
            for m, origin in entries:
                log.append(m, origin)
        else:
            for i in range(0, len(entries), poll):
                log.append_many(entries[i : i + poll])
        elapsed = time.perf_counter() - started
        persons = {str(m["person"]) for m in mentions}
        total = sum(verify_records(log.records(p))[0] for p in persons)
        if total != len(mentions):
            raise SystemExit(f"{total} records archived of {len(mentions)}")
    return elapsed / len(mentions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--persons", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    names = [f"person{i:02d}" for i in range(args.persons)]
    mentions = [mention(rng.choice(names), text=f"text {i} " * 8) for i in range(args.mentions)]
    rows: dict[str, list[float]] = {"one at a time (before)": []}
    rows |= {f"append_many, polls of {p:,}": [] for p in POLLS}
    for _ in range(args.rounds):
        rows["one at a time (before)"].append(_run(mentions, None))
        for p in POLLS:
            rows[f"append_many, polls of {p:,}"].append(_run(mentions, p))
    print(f"{args.mentions:,} mentions over {args.persons} persons, {args.rounds} rounds "
          "(median, range)\n")
    print(f"{'':34} {'us a record':>12} {'range':>16} {'records/s':>10} {'speed-up':>9}")
    base = statistics.median(rows["one at a time (before)"])
    medians = {}
    for name, values in rows.items():
        med = medians[name] = statistics.median(values)
        ratios = sorted(b / v for b, v in zip(rows["one at a time (before)"], values,
                                              strict=True))
        print(f"{name:34} {med * 1e6:12.1f} {min(values) * 1e6:7.1f}-{max(values) * 1e6:<8.1f} "
              f"{1 / med:10,.0f} {base / med:8.1f}x"
              + ("" if name.startswith("one") else
                 f"  (same-round ratios {ratios[0]:.1f}-{ratios[-1]:.1f})"))
    parts = [f"mentions={args.mentions}", f"persons={args.persons}",
             f"one_at_a_time_us={base * 1e6:.1f}"]
    for p in POLLS:
        med = medians[f"append_many, polls of {p:,}"]
        parts += [f"poll{p}_us={med * 1e6:.1f}", f"poll{p}_speedup={base / med:.1f}"]
    print("\nRESULT " + " ".join(parts))


if __name__ == "__main__":
    main()
