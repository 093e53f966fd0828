"""Near-duplicate ("copypasta") clustering: keyed MinHash signatures and per-person LSH."""

from pileon.streams.detection.neardup import kernels
from pileon.streams.detection.neardup.clusters import Cluster, ClusterIndex
from pileon.streams.detection.neardup.normalize import normalise_tokens
from pileon.streams.detection.neardup.signature import Signature, Signer, jaccard
from pileon.streams.detection.neardup.window import NearDupWindow

__all__ = [
    "Cluster", "ClusterIndex", "NearDupWindow", "Signature", "Signer", "jaccard",
    "kernels", "normalise_tokens",
]
