"""Keyed MinHash signatures (Broder 1997, "On the resemblance and containment of documents").

Shingles are hashed with BLAKE2b keyed by a secret (RFC 7693 keyed mode) before datasketch's
MinHash permutations, so a stored signature cannot be tested against guessed texts without the
key. Cost: one keyed hash per shingle plus a vectorised ``num_perm``-wide minimum.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash

_SCHEME = "affine32"


class Signer:
    """Computes MinHash signatures of token lists under a secret key."""

    def __init__(self, key: bytes, num_perm: int = 128, shingle_words: int = 2) -> None:
        if len(key) < 16:
            raise ValueError("near-duplicate key must be at least 16 bytes")
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self._key = hashlib.blake2b(key, digest_size=32, person=b"pileon-mh").digest()
        seed = int.from_bytes(hashlib.blake2b(self._key, digest_size=4).digest(), "big")
        self._permutations = MinHash(num_perm=num_perm, seed=seed, scheme=_SCHEME).permutations

    def _hash(self, shingle: bytes) -> int:
        digest = hashlib.blake2b(shingle, digest_size=4, key=self._key).digest()
        return int(struct.unpack("<I", digest)[0])

    def shingles(self, tokens: Sequence[str]) -> set[bytes]:
        """Word n-grams; texts shorter than n fall back to character 3-grams."""
        n = self.shingle_words
        if len(tokens) >= n:
            return {" ".join(tokens[i : i + n]).encode() for i in range(len(tokens) - n + 1)}
        joined = " ".join(tokens)
        return {joined[i : i + 3].encode() for i in range(max(1, len(joined) - 2))}

    def minhash(self, tokens: Sequence[str]) -> MinHash:
        m = MinHash(
            num_perm=self.num_perm,
            hashfunc=self._hash,
            permutations=self._permutations,
            scheme=_SCHEME,
        )
        m.update_batch(self.shingles(tokens))
        return m

    def from_hashvalues(self, hashvalues: bytes) -> MinHash:
        """Rebuild a signature stored with :meth:`to_bytes` (e.g. after a restart)."""
        values = np.frombuffer(hashvalues, dtype=np.uint32)
        return MinHash(
            hashvalues=values, permutations=self._permutations, scheme=_SCHEME,
            hashfunc=self._hash,
        )

    @staticmethod
    def to_bytes(m: MinHash) -> bytes:
        return bytes(np.asarray(m.hashvalues, dtype=np.uint32).tobytes())
