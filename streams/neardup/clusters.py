"""Per-person near-duplicate clusters over MinHash LSH (Indyk & Motwani 1998).

Only one signature per cluster, its template's, sits in the LSH index: a new mention is
compared with templates, joins the most similar one at or above the threshold, or starts a
cluster of its own. A cluster keeps its template signature while it has members, even after
the template mention itself has left the window; the caller re-stores that signature with the
oldest surviving member (``remove`` says which), so a rebuild from stored records in time order
yields the same clusters as live running.

Banding uses datasketch's choice of ``b`` bands of ``r`` rows for the threshold (the ``(b, r)``
minimising its weighted false-positive and false-negative probabilities). A band's key is its
``4 r`` bytes followed by the band's number, sliced from one ``tobytes()``, and all bands are
looked up in one dict with a C-level ``map``:
datasketch's ``MinHashLSH.query`` converts each band separately and alone costs ~50 µs a
mention, which would cap a worker below 20,000 mentions/s (see docs/benchmarks.md). A bucket
holds one cluster id, or a tuple of them on a collision: most buckets hold one, and a set per
bucket would cost more memory than the signature itself.

Cost per mention: one band-key computation, ``b`` dict look-ups, and one vectorised Jaccard
estimate over the candidate templates.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from datasketch import MinHashLSH

from streams.neardup.signature import Signature

Bucket = str | tuple[str, ...]


@cache
def band_params(
    threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)
) -> tuple[int, int]:
    """``(bands, rows)`` that datasketch's LSH picks for this threshold, width and weights."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return int(lsh.b), int(lsh.r)


@dataclass
class Cluster:
    """A template with its members (oldest first), distinct authors and young-account count."""

    id: str
    first_seen: float
    last_seen: float
    members: deque[str] = field(default_factory=deque)
    authors: Counter[str] = field(default_factory=Counter)
    young: int = 0

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def distinct_authors(self) -> int:
        return len(self.authors)

    @property
    def young_share(self) -> float:
        return self.young / self.size if self.members else 0.0


class ClusterIndex:
    """Clusters of one person's mentions inside the sliding window."""

    def __init__(
        self, threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)
    ) -> None:
        self.threshold = threshold
        self.bands, self.rows = band_params(threshold, num_perm, weights)
        self._band_column = np.arange(self.bands, dtype=np.uint32).reshape(-1, 1)
        self._width = 4 * (self.rows + 1)  # bytes per band key: its rows and its number
        self._buckets: dict[bytes, Bucket] = {}
        self._signatures: dict[str, Signature] = {}  # cluster id -> template signature
        self._cluster_of: dict[str, str] = {}  # member id -> cluster id
        self.clusters: dict[str, Cluster] = {}

    def band_keys(self, signature: Signature) -> list[bytes]:
        rows = signature[: self.bands * self.rows].reshape(self.bands, self.rows)
        data, w = np.hstack((rows, self._band_column)).tobytes(), self._width
        return [data[i : i + w] for i in range(0, self.bands * w, w)]

    def candidates(self, signature: Signature, keys: list[bytes] | None = None) -> set[str]:
        """Templates that share at least one band with ``signature``."""
        found: set[str] = set()
        keys = self.band_keys(signature) if keys is None else keys
        for hit in [h for h in map(self._buckets.get, keys) if h]:
            if isinstance(hit, str):
                found.add(hit)
            else:
                found.update(hit)
        return found

    def assign(
        self, mention_id: str, t: float, author: str, young: bool, signature: Signature
    ) -> tuple[str, bool]:
        """Add a new mention to its best cluster or a new one; returns (cluster id, is new)."""
        keys = self.band_keys(signature)
        cluster_id = self.match(signature, keys)
        if cluster_id is not None:
            self.add(mention_id, cluster_id, t, author, young)
            return cluster_id, False
        self.add(mention_id, mention_id, t, author, young, signature, keys)
        return mention_id, True

    def match(self, signature: Signature, keys: list[bytes] | None = None) -> str | None:
        """The cluster a new signature belongs to, or None if it starts its own."""
        best, best_similarity = None, self.threshold
        for cluster_id in sorted(self.candidates(signature, keys)):  # sorted: same ties anywhere
            template = self._signatures[cluster_id]
            similarity = np.count_nonzero(template == signature) / signature.size
            if similarity > best_similarity or (best is None and similarity >= self.threshold):
                best, best_similarity = cluster_id, similarity
        return best

    def signature(self, cluster_id: str) -> Signature:
        return self._signatures[cluster_id]

    def add(
        self,
        mention_id: str,
        cluster_id: str,
        t: float,
        author: str,
        young: bool,
        signature: Signature | None = None,
        keys: list[bytes] | None = None,
    ) -> Cluster:
        """Record a member, new or replayed from storage in time order.

        ``signature`` is the template's; it is needed when ``cluster_id`` is not yet known.
        """
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            if signature is None:
                raise ValueError(f"cluster {cluster_id} is new: its template signature is needed")
            cluster = self.clusters[cluster_id] = Cluster(cluster_id, t, t)
            self._index(cluster_id, signature, keys)
        cluster.members.append(mention_id)
        cluster.authors[author] += 1
        cluster.young += int(young)
        cluster.first_seen = min(cluster.first_seen, t)
        cluster.last_seen = max(cluster.last_seen, t)
        self._cluster_of[mention_id] = cluster_id
        return cluster

    def remove(self, mention_id: str, author: str, young: bool) -> str | None:
        """Forget a member that left the window.

        Returns the member that now carries the cluster's template signature when the carrier
        changed (the caller stores the signature with it), else None.
        """
        cluster_id = self._cluster_of.pop(mention_id, None)
        if cluster_id is None:
            return None
        cluster = self.clusters[cluster_id]
        carrier_left = cluster.members[0] == mention_id
        if carrier_left:
            cluster.members.popleft()
        else:
            cluster.members.remove(mention_id)
        cluster.authors[author] -= 1
        if cluster.authors[author] <= 0:
            del cluster.authors[author]
        cluster.young -= int(young)
        if not cluster.members:
            del self.clusters[cluster_id]
            self._unindex(cluster_id)
            return None
        return cluster.members[0] if carrier_left else None

    def cluster_of(self, mention_id: str) -> str | None:
        return self._cluster_of.get(mention_id)

    def largest(self, n: int) -> list[Cluster]:
        """The ``n`` clusters with the most members (two or more)."""
        multi = [c for c in self.clusters.values() if c.size >= 2]
        return sorted(multi, key=lambda c: (-c.size, c.first_seen))[:n]

    def __len__(self) -> int:
        return len(self._cluster_of)

    def _index(self, cluster_id: str, signature: Signature, keys: list[bytes] | None) -> None:
        buckets = self._buckets
        for key in self.band_keys(signature) if keys is None else keys:
            hit = buckets.get(key)
            if hit is None:
                buckets[key] = cluster_id
            elif isinstance(hit, str):
                buckets[key] = (hit, cluster_id)
            else:
                buckets[key] = (*hit, cluster_id)
        self._signatures[cluster_id] = signature

    def _unindex(self, cluster_id: str) -> None:
        signature, buckets = self._signatures.pop(cluster_id), self._buckets
        for key in self.band_keys(signature):
            hit = buckets[key]
            rest = () if isinstance(hit, str) else tuple(c for c in hit if c != cluster_id)
            if not rest:
                del buckets[key]
            else:
                buckets[key] = rest[0] if len(rest) == 1 else rest
