"""Per-person near-duplicate clusters over MinHash LSH (Indyk & Motwani 1998).

Only one signature per cluster, its template's, sits in the LSH index: a new mention is
compared with templates, joins the most similar one at or above the threshold, or starts a
cluster of its own. A cluster keeps its template signature while it has members, even after
the template mention itself has left the window; the caller re-stores that signature with the
oldest surviving member (``remove`` says which), so a rebuild from stored records in time order
yields the same clusters as live running.

Most texts are never copied. A template that is still alone ``singleton_hours`` after it
arrived is forgotten (:meth:`ClusterIndex.forget_lonely`): without that, the LSH candidates of
every query grow with the number of texts in the window (unrelated mentions of one person share
its name and common words, so spurious band collisions at Jaccard 0.1-0.2 add up), and a day at
1,000 mentions a minute would cost ~100 Jaccard estimates per mention.

Banding uses datasketch's choice of ``b`` bands of ``r`` rows for the threshold (the ``(b, r)``
minimising its weighted false-positive and false-negative probabilities). A band's key is a
30-bit hash of its ``r`` values and its number (the top bits of a wrapping 64-bit
multiply-add, so keys are small Python ints; a chance collision only adds a candidate that
the similarity count then rejects), and all bands are
looked up in one dict with a C-level ``map``:
datasketch's ``MinHashLSH.query`` converts each band separately and alone costs ~50 µs a
mention, which would cap a worker below 20,000 mentions/s (see docs/benchmarks.md). A bucket
holds one cluster id, or a tuple of them on a collision: most buckets hold one, and a set per
bucket would cost more memory than the signature itself. Template signatures are rows of one
matrix (a slot per template, reused when a template goes), so comparing a mention with all
its candidates is one compiled loop (:mod:`pileon.streams.detection.neardup.kernels`), not two
numpy calls per candidate.

Cost per mention: one compiled band-key computation, ``b`` dict look-ups, and one compiled
count of equal values against the candidate templates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from datasketch import MinHashLSH

from pileon.streams.detection.neardup import kernels
from pileon.streams.detection.neardup.signature import Signature

Bucket = str | tuple[str, ...]
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                 0x85EBCA77C2B2AE63, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB],
                dtype=np.uint64)


@cache
def band_params(
    threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)
) -> tuple[int, int]:
    """``(bands, rows)`` that datasketch's LSH picks for this threshold, width and weights."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return int(lsh.b), int(lsh.r)


@dataclass(slots=True)
class Cluster:
    """A template with its members (oldest first), distinct authors and young-account count.

    Members and authors are plain dicts (insertion-ordered, O(1) removal): most clusters hold
    one text, and a deque and a Counter would triple what a lone text costs.
    """

    id: str
    first_seen: float
    last_seen: float
    members: dict[str, None] = field(default_factory=dict)
    authors: dict[str, int] = field(default_factory=dict)
    young: int = 0

    @property
    def carrier(self) -> str:
        """The oldest member: the one whose stored record holds the template signature."""
        return next(iter(self.members))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def distinct_authors(self) -> int:
        return len(self.authors)

    @property
    def young_share(self) -> float:
        return self.young / self.size if self.members else 0.0


class _Peak:
    """The largest of many counts that each move by one at a time: how many are at each
    value, and the top, kept in O(1) a move (the gauges read it after every closed bin; a
    pass over a surge's thousands of clusters each time cost a fifth of the analysis)."""

    __slots__ = ("_at", "top")

    def __init__(self) -> None:
        self._at: dict[int, int] = {}
        self.top = 0

    def move(self, old: int, new: int) -> None:
        if old == new:
            return
        at = self._at
        if new:
            at[new] = at.get(new, 0) + 1
            self.top = max(self.top, new)
        if old:
            left = at[old] - 1
            if left:
                at[old] = left
            else:
                del at[old]
                if old == self.top:  # a member left the top one: it is next, unless gone
                    self.top = new if new == old - 1 and new else max(at, default=0)


class ClusterIndex:
    """Clusters of one person's mentions inside the sliding window."""

    def __init__(
        self, threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)
    ) -> None:
        self.threshold = threshold
        self.bands, self.rows = band_params(threshold, num_perm, weights)
        self._mix = _MIX[: self.rows]
        self._salt = np.arange(1, self.bands + 1, dtype=np.uint64) * _MIX[-1]
        self._buckets: dict[int, Bucket] = {}
        self._matrix = np.empty((0, num_perm), dtype=np.uint32)  # template signatures by slot
        self._slots: dict[str, int] = {}  # cluster id -> its template's row in the matrix
        self._free: list[int] = []  # rows of forgotten templates, reused first
        self._fresh: deque[tuple[float, str]] = deque()  # new templates, oldest first
        self._copied: set[str] = set()  # clusters with two or more members
        self._cluster_of: dict[str, str] = {}  # member id -> cluster id
        self._sizes = _Peak()  # members of each cluster
        self._authors = _Peak()  # distinct authors of each cluster
        self.clusters: dict[str, Cluster] = {}

    def band_keys(self, signature: Signature) -> list[int]:
        keys: list[int] = kernels.band_keys(signature, self.bands, self.rows, self._mix,
                                            self._salt)
        return keys

    def candidates(self, signature: Signature, keys: list[int] | None = None) -> set[str]:
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

    def match(self, signature: Signature, keys: list[int] | None = None) -> str | None:
        """The cluster a new signature belongs to, or None if it starts its own."""
        candidates = self.candidates(signature, keys)
        if not candidates:
            return None
        ids = sorted(candidates)  # sorted: ties go to the smallest id in every process
        slots = self._slots
        rows = [slots[c] for c in ids]
        best = kernels.best_row(self._matrix, rows, signature, self.threshold * signature.size)
        return ids[best] if best >= 0 else None

    def signature(self, cluster_id: str) -> Signature:
        return self._matrix[self._slots[cluster_id]].copy()

    def add(
        self,
        mention_id: str,
        cluster_id: str,
        t: float,
        author: str,
        young: bool,
        signature: Signature | None = None,
        keys: list[int] | None = None,
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
            self._fresh.append((t, cluster_id))
        size, authors = len(cluster.members), len(cluster.authors)
        cluster.members[mention_id] = None
        if len(cluster.members) == 2:
            self._copied.add(cluster_id)
        cluster.authors[author] = cluster.authors.get(author, 0) + 1
        self._sizes.move(size, len(cluster.members))
        self._authors.move(authors, len(cluster.authors))
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
        carrier_left = cluster.carrier == mention_id
        size, authors = len(cluster.members), len(cluster.authors)
        del cluster.members[mention_id]
        cluster.authors[author] -= 1
        if cluster.authors[author] <= 0:
            del cluster.authors[author]
        self._sizes.move(size, len(cluster.members))
        self._authors.move(authors, len(cluster.authors))
        cluster.young -= int(young)
        if len(cluster.members) < 2:
            self._copied.discard(cluster_id)
        if not cluster.members:
            del self.clusters[cluster_id]
            self._unindex(cluster_id)
            return None
        return cluster.carrier if carrier_left else None

    def forget_lonely(self, before: float) -> list[str]:
        """Forget templates created before ``before`` that nobody copied.

        Returns the members that carried them (their stored signatures are no longer needed).
        """
        forgotten = []
        while self._fresh and self._fresh[0][0] < before:
            _, cluster_id = self._fresh.popleft()
            cluster = self.clusters.get(cluster_id)
            if cluster is not None and cluster.size == 1:
                carrier = cluster.carrier
                self._sizes.move(1, 0)
                self._authors.move(len(cluster.authors), 0)
                del self.clusters[cluster_id]
                del self._cluster_of[carrier]
                self._unindex(cluster_id)
                forgotten.append(carrier)
        return forgotten

    def cluster_of(self, mention_id: str) -> str | None:
        return self._cluster_of.get(mention_id)

    @property
    def largest_size(self) -> int:
        """Members of the largest cluster (0 if none is copied)."""
        return self._sizes.top if self._sizes.top >= 2 else 0

    @property
    def copied(self) -> int:
        """How many clusters have two or more members (copypasta, or a shared text)."""
        return len(self._copied)

    def most_authors(self) -> int:
        """Distinct authors of the cluster that has the most of them (0 if none is copied:
        a lone text has one author, and two authors make two members)."""
        return self._authors.top if self._copied else 0

    def __len__(self) -> int:
        return len(self._cluster_of)

    def _index(self, cluster_id: str, signature: Signature, keys: list[int] | None) -> None:
        buckets = self._buckets
        # Two bands of one signature can hash to the same 30-bit key (about one signature in
        # 2.5 million at 30 bands): each key holds the cluster once, or unindexing it would
        # find the key already gone.
        for key in dict.fromkeys(self.band_keys(signature) if keys is None else keys):
            hit = buckets.get(key)
            if hit is None:
                buckets[key] = cluster_id
            elif isinstance(hit, str):
                buckets[key] = (hit, cluster_id)
            else:
                buckets[key] = (*hit, cluster_id)
        self._store(cluster_id, signature)

    def _store(self, cluster_id: str, signature: Signature) -> None:
        if self._free:
            slot = self._free.pop()
        else:
            slot = len(self._slots)
            if slot == len(self._matrix):  # grow by a quarter: amortised O(1), little slack
                grown = np.empty((slot + slot // 4 + 64, self._matrix.shape[1]), np.uint32)
                grown[:slot] = self._matrix
                self._matrix = grown
        self._matrix[slot] = signature
        self._slots[cluster_id] = slot

    def _compact(self) -> None:
        """Move the templates to a matrix sized for them (after a surge has left the window,
        most rows are free: memory goes back with it)."""
        ids, rows = list(self._slots), np.fromiter(self._slots.values(), dtype=np.int64)
        compact = np.empty((len(ids) + len(ids) // 4 + 64, self._matrix.shape[1]), np.uint32)
        compact[: len(ids)] = self._matrix[rows]
        self._matrix, self._free = compact, []
        self._slots = dict(zip(ids, range(len(ids)), strict=True))

    def _unindex(self, cluster_id: str) -> None:
        slot = self._slots.pop(cluster_id)
        self._free.append(slot)
        buckets = self._buckets
        keys = dict.fromkeys(self.band_keys(self._matrix[slot]))  # once each, as indexed
        if len(self._matrix) > 4 * len(self._slots) + 256:
            self._compact()
        for key in keys:
            hit = buckets[key]
            rest = () if isinstance(hit, str) else tuple(c for c in hit if c != cluster_id)
            if not rest:
                del buckets[key]
            else:
                buckets[key] = rest[0] if len(rest) == 1 else rest
