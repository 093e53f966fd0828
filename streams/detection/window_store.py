"""Per-person records kept for a horizon of event time in a changelog-backed mapping.

The mapping is a Faust table in the worker (a plain dict in tests): one small record per
mention, keyed ``person|record_id``, so a restarted worker recovers them from the changelog and
rebuilds whatever in-memory index it derives from them. Expiry deletes records (tombstones in
the changelog), so state stays bounded however long the service runs.

Deletes must run while an event of the same person is being processed: a Faust table sends
each change to the changelog partition of the current event, which is the person's partition.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

_SEP = "|"


class WindowStore:
    """Expiring per-person records; each record is a JSON object with event time ``t``."""

    def __init__(
        self,
        store: MutableMapping[bytes, bytes],
        horizon_seconds: float,
        cap_per_person: int | None = None,
    ) -> None:
        self._store = store
        self.horizon = horizon_seconds
        self.cap = cap_per_person
        self._heaps: dict[str, list[tuple[float, str]]] = {}

    @staticmethod
    def _key(person: str, record_id: str) -> bytes:
        return f"{person}{_SEP}{record_id}".encode()

    def get(self, person: str, record_id: str) -> dict[str, Any] | None:
        raw = self._store.get(self._key(person, record_id))
        return orjson.loads(raw) if raw is not None else None

    def contains(self, person: str, record_id: str) -> bool:
        return self._key(person, record_id) in self._store

    def put(self, person: str, record_id: str, record: dict[str, Any]) -> None:
        heap = self._heap(person)
        self._store[self._key(person, record_id)] = _compact_json(record)
        heapq.heappush(heap, (float(record["t"]), record_id))

    def update(self, person: str, record_id: str, record: dict[str, Any]) -> None:
        """Rewrite a stored record in place (its event time must not change)."""
        self._store[self._key(person, record_id)] = _compact_json(record)

    def expire(self, person: str, watermark: float) -> tuple[list[tuple[str, dict[str, Any]]], int]:
        """Delete records older than ``watermark - horizon`` and any above the cap.

        Returns the removed ``(record_id, record)`` pairs, oldest first, and how many of them
        were removed by the cap rather than by age.
        """
        heap = self._heap(person)
        cutoff = watermark - self.horizon
        removed: list[tuple[str, dict[str, Any]]] = []
        capped = 0
        while heap and (heap[0][0] < cutoff or (self.cap is not None and len(heap) > self.cap)):
            t, record_id = heapq.heappop(heap)
            capped += int(t >= cutoff)
            raw = self._store.pop(self._key(person, record_id), None)
            if raw is not None:
                removed.append((record_id, orjson.loads(raw)))
        return removed, capped

    def records(self, person: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The person's records in event-time order (for rebuilding derived indexes)."""
        for _t, record_id in sorted(self._heap(person)):
            record = self.get(person, record_id)
            if record is not None:
                yield record_id, record

    def count(self, person: str) -> int:
        return len(self._heap(person))

    def forget_cache(self) -> None:
        """Drop derived in-memory state (after a rebalance); rebuilt from the store on use."""
        self._heaps.clear()

    def _heap(self, person: str) -> list[tuple[float, str]]:
        heap = self._heaps.get(person)
        if heap is None:
            self._rebuild()
            heap = self._heaps.setdefault(person, [])
        return heap

    def _rebuild(self) -> None:
        """One scan of the store builds the heaps of every person not yet cached."""
        fresh: dict[str, list[tuple[float, str]]] = {}
        for key, raw in list(self._store.items()):
            person, _, record_id = bytes(key).decode().partition(_SEP)
            if person in self._heaps:
                continue
            fresh.setdefault(person, []).append((float(orjson.loads(raw)["t"]), record_id))
        for person, heap in fresh.items():
            heapq.heapify(heap)
            self._heaps[person] = heap


def _compact_json(record: dict[str, Any]) -> bytes:
    # orjson (3.13) returns small documents inside a 4 KiB allocation; a record that lives in
    # the window for a day is copied into an object of its own size (77 bytes, not 4,097).
    return bytes(memoryview(orjson.dumps(record)))
