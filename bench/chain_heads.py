"""The console's check of a page's chain head: the first view of an incident against later ones.

    python bench/chain_heads.py                 # 200,000 records, about 10 s on 2 cores
    python bench/chain_heads.py --records 20000

Every incident page checks each chain head its pages carried against the person's chain in the
archive (``pileon.console.evidence.check_heads``): the chain must verify from its start to the
newest head. The first view does that record by record (parse, re-hash the record and its
mention); a later view hashes the bytes the first one verified and compares them with the
SHA-256 it kept, then verifies only what was appended since. Both are timed here, in the same
run, on one chain of simulated mentions (``tests.factories.mention``, about 700 bytes a record
in the file): the first view is the baseline (what every view cost before), then ``--views``
later views of the same head, then one after ``--append`` more records.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from pileon.console.db import ChainHeadRecord  # noqa: E402
from pileon.console.evidence import check_heads  # noqa: E402
from pileon.evidence.chain import GENESIS, EvidenceLog, canonical, record_hash  # noqa: E402
from tests.factories import NOW, mention  # noqa: E402


def _timed(root: Path, person: str, seq: int, head: str) -> float:
    started = time.perf_counter()
    [check] = check_heads(root, person, [ChainHeadRecord(seq=seq, head_hash=head)])
    elapsed = time.perf_counter() - started
    if check.ok is not True:
        raise SystemExit(f"the head did not verify: {check.text}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--append", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = EvidenceLog(root / "chains")
        origin = {"topic": "mentions.clean", "partition": 0, "offset": 0}
        n = args.records
        person = str(mention(at=NOW)["person"])
        path = log.path(person)
        path.parent.mkdir(parents=True)
        # Written directly (EvidenceLog.append fsyncs every record), as append writes them.
        prev = GENESIS
        with path.open("wb") as f:
            for i in range(n):
                m = mention(at=NOW - timedelta(seconds=n - i), text=f"text {i} " * 8)
                record = {"seq": i + 1, "prev": prev, "captured_at": "2026-11-20T12:00:00Z",
                          "origin": origin,
                          "mention_sha256": hashlib.sha256(canonical(m)).hexdigest(),
                          "mention": m}
                record["hash"] = prev = record_hash(record)
                f.write(orjson.dumps(record) + b"\n")
        size_mb = path.stat().st_size / 1e6
        seq, head = log.head(person)
        first = _timed(root, person, seq, head)
        later = [_timed(root, person, seq, head) for _ in range(args.views)]
        for i in range(args.append):
            log.append(mention(at=NOW + timedelta(seconds=i + 1), text=f"new {i} " * 8), origin)
        seq, head = log.head(person)
        appended = _timed(root, person, seq, head)
    median = statistics.median(later)
    print(f"chain of {n:,} records, {size_mb:.0f} MB")
    print(f"first view (verifies every record): {first * 1e3:9.1f} ms "
          f"({first / n * 1e6:.2f} us a record)")
    print(f"later views, median of {args.views} (range {min(later) * 1e3:.1f}-"
          f"{max(later) * 1e3:.1f}): {median * 1e3:9.1f} ms ({median / n * 1e6:.2f} us a record)")
    print(f"after {args.append:,} appended records: {appended * 1e3:9.1f} ms")
    print(f"RESULT records={n} first_ms={first * 1e3:.1f} later_ms={median * 1e3:.1f} "
          f"ratio={first / median:.1f} appended_ms={appended * 1e3:.1f}")


if __name__ == "__main__":
    main()
