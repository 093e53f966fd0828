"""The evidence archiver as a process (``pileon archive``) killed with SIGKILL while it works
through a backlog of clean mentions, three times, against both brokers: every mention ends up in its
person's chain exactly once, and every chain verifies.

The archiver makes a poll's records durable person by person (one write and one fsync each)
and commits the topic's offsets only afterwards, so a kill between two persons' writes, or
between the writes and the commit, makes the restarted archiver read those records again; it
must skip the ones that reached the disk and chain on from them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from pileon.cli.common import scrape
from pileon.connectors.producer import MentionProducer
from pileon.core.settings import KafkaSettings
from pileon.evidence.chain import EvidenceLog, verify_records
from pileon.kafka.broker import free_port
from pileon.kafka.topics import ensure_topics
from tests.factories import mention
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TOTAL = 40_000
STEP = 3_000  # records archived by each run before it is killed, at least
PERSONS = [f"person{i}" for i in range(8)]


def _archived(chains: Path) -> int:
    """Whole records in the chain files now (read while the archiver writes)."""
    return sum(p.read_bytes().count(b"\n") for p in chains.glob("*/chain.jsonl"))


def _archive(env: dict[str, str], out: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pileon", "archive", "--out", str(out)],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _lag(url: str, topic: str) -> float | None:
    samples = [s.value for s in scrape(url, timeout=5)
               if s.name == "pileon_evidence_lag_messages" and s.labels["topic"] == topic]
    return sum(samples) if samples else None


def test_archiver_killed_mid_backlog_keeps_each_mention_once(bootstrap: str,
                                                             tmp_path: Path) -> None:
    prefix = f"a{uuid.uuid4().hex[:8]}."
    names = ensure_topics(bootstrap, KafkaSettings(topic_prefix=prefix))
    rng = random.Random(5)
    producer = MentionProducer(bootstrap, names.clean)
    ids = set()
    for i in range(TOTAL):
        m = mention(rng.choice(PERSONS), text=f"mention {i}")
        ids.add(m["id"])
        producer.send_raw(str(m["person"]).encode(), orjson.dumps(m))
    producer.flush()
    producer.close()

    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PILEON_")}
    # A group of its own: a killed member stays in a group on Tansu (tests share the broker).
    env = {**clean_env, "PILEON_KAFKA__BOOTSTRAP": bootstrap,
           "PILEON_KAFKA__TOPIC_PREFIX": prefix, "PILEON_EVIDENCE__GROUP_ID": f"{prefix}evidence"}
    out, log = tmp_path / "evidence", tmp_path / "archiver.log"
    chains = out / "chains"
    kills = []
    for _ in range(3):
        stop_at = _archived(chains) + STEP
        proc = _archive(env, out, log)
        try:
            wait_until(lambda: _archived(chains) >= stop_at, timeout=120,  # noqa: B023
                       what=f"{stop_at} records archived")
            # The count moves a poll at a time: right after one poll's writes (before or
            # after its commit), or a little later, inside the next poll's writes.
            time.sleep(rng.uniform(0.0, 0.1))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        kills.append(_archived(chains))
    assert all(k < TOTAL for k in kills), f"killed after the backlog was done: {kills}"

    port = free_port()
    proc = _archive({**env, "PILEON_EVIDENCE__METRICS_PORT": str(port)}, out, log)
    try:
        wait_until(lambda: _archived(chains) >= TOTAL, timeout=180, what="the whole backlog")
        # What the operator's Prometheus sees of the last run: what it appended (the rest was
        # on disk before it started) and nothing left waiting on the clean topic.
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: _lag(url, names.clean) == 0, timeout=60, what="the lag at 0")
        appended = sum(s.value for s in scrape(url, timeout=5)
                       if s.name == "pileon_evidence_records_total")
        assert appended == TOTAL - kills[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    evidence = EvidenceLog(chains)
    seen: list[str] = []
    for person in evidence.persons():
        records = list(evidence.records(person))
        verify_records(records)
        assert all(r["mention"]["person"] == person for r in records)
        seen += [r["mention"]["id"] for r in records]
    torn = sorted(p.name for p in chains.glob("*/torn-*.bin"))
    print(f"\n{TOTAL} mentions; killed at {kills} records archived; torn tails set aside: "
          f"{torn or 'none'}")
    assert len(seen) == len(set(seen)), "a mention archived twice"
    assert set(seen) == ids
