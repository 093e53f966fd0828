"""Near-duplicate ("copypasta") clustering: keyed MinHash signatures and per-person LSH."""

from streams.neardup import kernels
from streams.neardup.clusters import Cluster, ClusterIndex
from streams.neardup.normalize import normalise_tokens
from streams.neardup.signature import Signature, Signer, jaccard
from streams.neardup.window import NearDupWindow

__all__ = [
    "Cluster", "ClusterIndex", "NearDupWindow", "Signature", "Signer", "jaccard",
    "kernels", "normalise_tokens",
]
