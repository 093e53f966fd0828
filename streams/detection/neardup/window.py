"""Near-duplicate clustering per person over a sliding event-time window.

Each mention leaves one compact record in a changelog-backed :class:`WindowStore` (event time,
author id, young-account flag, cluster id, the key of the post it answers if any, and for the
member that carries its cluster's template, the template signature): about 100 bytes, never
the text. Per-person :class:`ClusterIndex` objects are derived from those records, so a
restarted worker rebuilds them from the changelog, in time order, into the same clusters as
live running. Records leave the window by age (``window_hours`` of event time) or, oldest
first, when a person exceeds ``max_per_person`` (counted in
``pileon_neardup_window_evictions_total``), so memory stays bounded however long pileon runs.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, MutableMapping
from typing import Any

from pileon.core.settings import NearDupSettings
from pileon.streams.detection import metrics
from pileon.streams.detection.neardup.clusters import ClusterIndex
from pileon.streams.detection.neardup.normalize import normalise_tokens
from pileon.streams.detection.neardup.signature import Signature, Signer
from pileon.streams.detection.window_store import WindowStore

Record = dict[str, Any]


class NearDupWindow:
    """Assigns mentions to clusters and keeps the window's records and indexes in step."""

    def __init__(
        self, settings: NearDupSettings, signer: Signer, store: MutableMapping[bytes, bytes],
        buffered: bool = False,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.store = WindowStore(store, settings.window_hours * 3600, settings.max_per_person,
                                 buffered=buffered)
        self._indexes: dict[str, ClusterIndex] = {}

    def tokens(self, text: str) -> list[str] | None:
        """Normalised tokens, or None for texts too short to cluster."""
        tokens = normalise_tokens(text)
        return tokens if len(tokens) >= self.settings.min_tokens else None

    def seen(self, person: str, mention_id: str) -> bool:
        return self.store.contains(person, mention_id)

    def add(
        self,
        person: str,
        mention_id: str,
        t: float,
        author: str,
        young: bool,
        signature: Signature | None,
        post: int | None = None,
    ) -> str | None:
        """Record a mention (``signature`` None: too short to cluster; ``post``: the key of the
        post it answers, for the focus signal); returns its cluster."""
        record: Record = {"t": t, "a": author, "y": int(young), "c": None}
        if post is not None:
            record["p"] = post
        if signature is not None:
            cluster_id, new = self.index(person).assign(mention_id, t, author, young, signature)
            if new:  # this mention carries its cluster's template signature
                record["h"] = _b64(Signer.to_bytes(signature))
            record["c"] = cluster_id
        self.store.put(person, mention_id, record)
        return record["c"]

    def expire(self, person: str, watermark: float) -> int:
        """Drop records that left the window or exceed the cap; returns how many left."""
        index = self.index(person)
        self._forget_lonely(person, index, watermark)
        removed, capped = self.store.expire(person, watermark)
        if capped:
            metrics.WINDOW_CAPPED.labels(person).inc(capped)
        for mention_id, record in removed:
            carrier = index.remove(mention_id, record["a"], bool(record["y"]))
            if carrier is not None:  # the template signature moves to the oldest member
                kept = self.store.get(person, carrier)
                if kept is not None:
                    kept["h"] = _b64(Signer.to_bytes(index.signature(record["c"])))
                    self.store.update(person, carrier, kept)
        return len(removed)

    def index(self, person: str) -> ClusterIndex:
        index = self._indexes.get(person)
        if index is None:
            index = self._indexes[person] = self._rebuild(person)
        return index

    def records(self, person: str) -> Iterator[tuple[str, Record]]:
        """The person's records in event-time order."""
        return self.store.records(person)

    def _forget_lonely(self, person: str, index: ClusterIndex, watermark: float) -> None:
        for lonely in index.forget_lonely(watermark - self.settings.singleton_hours * 3600):
            record = self.store.get(person, lonely)
            if record is not None and "h" in record:  # nothing can join it: dead weight
                del record["h"]
                self.store.update(person, lonely, record)

    def flush(self) -> int:
        """Write the records changed since the last flush; returns the table writes."""
        return self.store.flush()

    def forget_cache(self) -> None:
        """Drop derived indexes after a rebalance; rebuilt from the store on use."""
        self._indexes.clear()
        self.store.forget_cache()

    def _rebuild(self, person: str) -> ClusterIndex:
        index = new_index(self.settings, self.signer.num_perm)
        records = list(self.store.records(person))
        templates = {
            r["c"]: self.signer.from_bytes(base64.b64decode(r["h"])) for _, r in records if "h" in r
        }
        for mention_id, r in records:
            if r["c"] is not None and r["c"] in templates:
                index.add(mention_id, r["c"], float(r["t"]), r["a"], bool(r["y"]),
                          templates[r["c"]])
        if records:  # as live running did by the latest event time seen
            self._forget_lonely(person, index, max(float(r["t"]) for _, r in records))
        return index


def new_index(settings: NearDupSettings, num_perm: int) -> ClusterIndex:
    fn = settings.lsh_false_negative_weight
    return ClusterIndex(settings.threshold, num_perm, (1.0 - fn, fn))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
