"""Per-person records kept for a horizon of event time in a changelog-backed mapping.

The mapping is a Faust table in the worker (a plain dict in tests). Records are stored in
**chunks**: one table value holds the records a person gained in one batch within one hour of
event time (a JSON list of ``[record_id, record]``), keyed ``person|hour|first_record_id``, so a
batch of 500 mentions writes a handful of changelog records, not 500. A restarted worker
recovers the chunks from the changelog and rebuilds whatever in-memory index it derives from
them.

* **Writes are buffered** until :meth:`WindowStore.flush` (the worker flushes after each batch,
  before the analyser writes the states the batch changed). With ``buffered=False`` (the
  default, for callers without batches) every change is written at once, in a chunk of its
  own.
* **Expiry drops whole chunks.** A record leaves the in-memory index when it is older than the
  horizon or above the per-person cap; its chunk is deleted (a tombstone in the changelog) when
  its last record has left, and records of an hour expire together. A chunk still holding
  records that left is not rewritten for them: a restarted worker reads them back and expires
  them again by the same rules (age, then the cap, oldest first).
* **An update rewrites its chunk** with the records still in it, once per flush however many
  of them changed.
* Memory: the table holds each chunk once, as bytes; the index holds, per record, its event
  time and its chunk's key. A chunk is decoded when one of its records is asked for (a
  duplicate, an expiry, an update: rare, and once per flush however many of its records are
  read), and the decoded form is dropped at the next flush.

Values written by versions that stored one record per key (a JSON object, not a list) are read
as chunks of one and expire the same way.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

_SEP = "|"
_SEP_BYTES = _SEP.encode()
BUCKET_SECONDS = 3600.0

Record = dict[str, Any]


class WindowStore:
    """Expiring per-person records; each record is a JSON object with event time ``t``."""

    def __init__(
        self,
        store: MutableMapping[bytes, bytes],
        horizon_seconds: float,
        cap_per_person: int | None = None,
        buffered: bool = False,
    ) -> None:
        self._store = store
        self.horizon = horizon_seconds
        self.cap = cap_per_person
        self.buffered = buffered
        self._heaps: dict[str, list[tuple[float, str]]] = {}
        self._where: dict[str, dict[str, bytes]] = {}  # person → record id → chunk key
        self._live: dict[bytes, int] = {}  # chunk key → records still in the index
        self._open: dict[tuple[str, int], bytes] = {}  # (person, hour) → chunk being filled
        self._fresh: dict[bytes, dict[str, Record]] = {}  # chunks not yet written, decoded
        self._dirty: dict[bytes, str] = {}  # chunk key → person, to write at the next flush
        self._decoded: dict[bytes, dict[str, Record]] = {}  # read since the last flush

    # -- reads ---------------------------------------------------------------------------
    def get(self, person: str, record_id: str) -> Record | None:
        key = self._index(person).get(record_id)
        if key is None:
            return None
        return self._chunk(key).get(record_id)

    def contains(self, person: str, record_id: str) -> bool:
        return record_id in self._index(person)

    def records(self, person: str) -> Iterator[tuple[str, Record]]:
        """The person's records in event-time order (for rebuilding derived indexes)."""
        where = self._index(person)
        for _t, record_id in sorted(self._heap(person)):
            key = where.get(record_id)
            if key is None:
                continue
            record = self._chunk(key).get(record_id)
            if record is not None:
                yield record_id, record

    def count(self, person: str) -> int:
        return len(self._heap(person))

    # -- writes --------------------------------------------------------------------------
    def put(self, person: str, record_id: str, record: Record) -> None:
        t = float(record["t"])
        hour = math.floor(t / BUCKET_SECONDS)
        key = self._open.get((person, hour))
        if key is None:
            key = self._open[(person, hour)] = f"{person}{_SEP}{hour}{_SEP}{record_id}".encode()
            self._fresh[key] = {}
            self._live[key] = 0
        self._fresh[key][record_id] = record
        self._live[key] += 1
        self._dirty[key] = person
        self._index(person)[record_id] = key
        heapq.heappush(self._heap(person), (t, record_id))
        if not self.buffered:
            self.flush()

    def update(self, person: str, record_id: str, record: Record) -> None:
        """Rewrite a stored record (its event time must not change)."""
        key = self._index(person).get(record_id)
        if key is None:
            return
        chunk = self._fresh.get(key)
        if chunk is None:  # decoded, to rewrite it at the next flush
            chunk = self._fresh[key] = self._chunk(key)
        chunk[record_id] = record
        self._dirty[key] = person
        if not self.buffered:
            self.flush()

    def expire(self, person: str, watermark: float) -> tuple[list[tuple[str, Record]], int]:
        """Remove records older than ``watermark - horizon`` and any above the cap.

        Returns the removed ``(record_id, record)`` pairs, oldest first, and how many of them
        were removed by the cap rather than by age.
        """
        heap = self._heap(person)
        where = self._index(person)
        cutoff = watermark - self.horizon
        removed: list[tuple[str, Record]] = []
        capped = 0
        while heap and (heap[0][0] < cutoff or (self.cap is not None and len(heap) > self.cap)):
            t, record_id = heapq.heappop(heap)
            capped += int(t >= cutoff)
            key = where.pop(record_id, None)
            if key is None:
                continue
            record = self._chunk(key).get(record_id)
            if record is not None:
                removed.append((record_id, record))
            self._release(key, person)
        if not self.buffered:
            self.flush()
        return removed, capped

    def flush(self) -> int:
        """Write the chunks changed since the last flush; returns how many table writes that
        took."""
        writes = 0
        dirty, self._dirty = self._dirty, {}
        for key, owner in dirty.items():
            writes += 1
            if self._live.get(key, 0) == 0:
                self._drop(key)
                continue
            chunk = self._fresh.pop(key, None)
            if chunk is None:
                chunk = self._chunk(key)
            where = self._where.get(owner, {})
            self._store[key] = _encode([(i, r) for i, r in chunk.items() if where.get(i) == key])
        self._open.clear()
        self._decoded.clear()
        return writes

    def forget_cache(self) -> None:
        """Drop derived in-memory state (after a rebalance); rebuilt from the store on use.
        Unflushed changes are dropped too: the events that made them are read again."""
        self._heaps.clear()
        self._where.clear()
        self._live.clear()
        self._open.clear()
        self._fresh.clear()
        self._dirty.clear()
        self._decoded.clear()

    # -- internals -----------------------------------------------------------------------
    def _release(self, key: bytes, person: str) -> None:
        """A record left chunk ``key``: delete the chunk once it holds none."""
        left = self._live.get(key, 0) - 1
        self._live[key] = left
        if left <= 0:
            if key in self._fresh and key not in self._store:  # never written: nothing to do
                self._drop(key)
            else:
                self._dirty[key] = person  # deleted at the next flush

    def _drop(self, key: bytes) -> None:
        """Delete chunk ``key`` from the table (if it was written) and from every index."""
        self._store.pop(key, None)
        for index in (self._live, self._fresh, self._dirty, self._decoded):
            index.pop(key, None)
        self._open = {k: v for k, v in self._open.items() if v != key}

    def _chunk(self, key: bytes) -> dict[str, Record]:
        """The chunk's records, decoded once per flush however often they are read."""
        chunk = self._fresh.get(key)
        if chunk is None:
            chunk = self._decoded.get(key)
        if chunk is None:
            raw = self._store.get(key)
            chunk = self._decoded[key] = dict(_decode(key, raw)) if raw is not None else {}
        return chunk

    def _index(self, person: str) -> dict[str, bytes]:
        self._heap(person)
        return self._where.setdefault(person, {})

    def _heap(self, person: str) -> list[tuple[float, str]]:
        heap = self._heaps.get(person)
        if heap is None:
            self._rebuild()
            heap = self._heaps.setdefault(person, [])
        return heap

    def _rebuild(self) -> None:
        """One scan of the store builds the indexes of every person not yet cached."""
        heaps: dict[str, list[tuple[float, str]]] = {}
        for key, raw in list(self._store.items()):
            key = bytes(key)
            person = key.split(_SEP_BYTES, 1)[0].decode()
            if person in self._heaps:
                continue
            where = self._where.setdefault(person, {})
            heap = heaps.setdefault(person, [])
            live = 0
            for record_id, record in _decode(key, raw):
                if record_id in where:  # also in another chunk (a redelivery): keep one
                    continue
                where[record_id] = key
                heap.append((float(record["t"]), record_id))
                live += 1
            self._live[key] = live
            if not live:  # every record of it is in another chunk: delete it at the flush
                self._dirty[key] = person
        for person, heap in heaps.items():
            heapq.heapify(heap)
            self._heaps[person] = heap


def _encode(records: list[tuple[str, Record]]) -> bytes:
    # orjson (3.13) returns small documents inside a 4 KiB allocation; a chunk that lives in
    # the window for a day is copied into an object of its own size.
    return bytes(memoryview(orjson.dumps(records)))


def _decode(key: bytes, raw: bytes) -> list[tuple[str, Record]]:
    value = orjson.loads(raw)
    if isinstance(value, dict):  # one record per key, as older versions wrote it
        return [(key.split(_SEP_BYTES, 1)[1].decode(), value)]
    return [(record_id, record) for record_id, record in value]
