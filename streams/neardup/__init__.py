"""Near-duplicate ("copypasta") clustering: keyed MinHash signatures and per-person LSH."""

from streams.neardup.clusters import Cluster, ClusterIndex
from streams.neardup.normalize import normalise_tokens
from streams.neardup.signature import Signer

__all__ = ["Cluster", "ClusterIndex", "Signer", "normalise_tokens"]
