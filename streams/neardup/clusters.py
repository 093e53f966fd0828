"""Per-person near-duplicate clusters over MinHash LSH (Indyk & Motwani 1998; datasketch).

Only one signature per cluster, its template's, sits in the LSH index: a new mention is
compared with templates, joins the most similar one at or above the threshold, or starts a
cluster of its own. A cluster keeps its template signature while it has members, even after
the template mention itself has left the window; the caller re-stores that signature with the
oldest surviving member (``remove`` says which), so a rebuild from stored records in time order
yields the same clusters as live running. Cost per mention: one LSH query (``b`` bucket
look-ups) plus one Jaccard estimate per candidate template.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH


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


class ClusterIndex:
    """Clusters of one person's mentions inside the sliding window."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self._threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._signatures: dict[str, MinHash] = {}  # cluster id -> template signature
        self._cluster_of: dict[str, str] = {}  # member id -> cluster id
        self.clusters: dict[str, Cluster] = {}

    def match(self, signature: MinHash) -> str | None:
        """The cluster a new signature belongs to, or None if it starts its own."""
        best, best_j = None, self._threshold
        for cluster_id in self._lsh.query(signature):
            j = signature.jaccard(self._signatures[cluster_id])
            if j >= best_j:
                best, best_j = cluster_id, j
        return best

    def signature(self, cluster_id: str) -> MinHash:
        return self._signatures[cluster_id]

    def add(
        self,
        mention_id: str,
        cluster_id: str,
        t: float,
        author: str,
        young: bool,
        signature: MinHash | None = None,
    ) -> Cluster:
        """Record a member, new or replayed from storage in time order.

        ``signature`` is the template's; it is needed when ``cluster_id`` is not yet known.
        """
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            if signature is None:
                raise ValueError(f"cluster {cluster_id} is new: its template signature is needed")
            cluster = self.clusters[cluster_id] = Cluster(cluster_id, t, t)
            self._signatures[cluster_id] = signature
            self._lsh.insert(cluster_id, signature, check_duplication=False)
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
            del self._signatures[cluster_id]
            self._lsh.remove(cluster_id)
            return None
        return cluster.members[0] if carrier_left else None

    def cluster_of(self, mention_id: str) -> str | None:
        return self._cluster_of.get(mention_id)

    def __len__(self) -> int:
        return len(self._cluster_of)
