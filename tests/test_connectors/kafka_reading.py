"""Reading back what connectors published, for the exactly-once oracle."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from pileon.connectors.publisher import ID_HEADER, SOURCE_HEADER


def published(bootstrap: str, topic: str, source: str | None = None) -> list[dict[str, Any]]:
    """Every mention in ``topic`` (optionally only those from connector ``source``)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "reading the topic back took too long"
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    headers = dict(r.headers or [])
                    if source is None or headers.get(SOURCE_HEADER) == source.encode():
                        m = orjson.loads(r.value)
                        assert headers.get(ID_HEADER, m["id"].encode()) == m["id"].encode()
                        assert r.key == m["person"].encode()
                        out.append(m)
        return out
    finally:
        consumer.close()


def once_each(mentions: list[dict[str, Any]]) -> tuple[set[tuple[str, str, str]], int]:
    """The distinct (person, id, matched_by) published, and how many were published twice."""
    counts = Counter((m["person"], m["id"], m["matched_by"]) for m in mentions)
    return set(counts), sum(c - 1 for c in counts.values())
