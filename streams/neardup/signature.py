"""Keyed MinHash signatures (Broder 1997, "On the resemblance and containment of documents").

Shingles are hashed with BLAKE2b keyed by a secret (RFC 7693 keyed mode) before datasketch's
``affine32`` permutations, so a stored signature cannot be tested against guessed texts without
the key. Signatures are plain ``uint32`` arrays, bit for bit what ``datasketch.MinHash`` with
the same permutations computes (a test holds us to that). They are not ``MinHash`` objects:
building one costs more than hashing a tweet. :meth:`Signer.signatures` signs many texts with
one vectorised permutation step and one ``np.minimum.reduceat``.

Cost per text: one keyed BLAKE2b call per shingle, plus a ``num_perm``-wide multiply-add and
minimum per shingle in numpy. A signature takes ``4 * num_perm`` bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash
from datasketch.minhash import _fmix  # the MurmurHash3 finalizer of the affine32 scheme

SCHEME = "affine32"
Signature = np.ndarray  # shape (num_perm,), dtype uint32


class Signer:
    """Computes MinHash signatures of token lists under a secret key."""

    def __init__(self, key: bytes, num_perm: int = 128, shingle_words: int = 2) -> None:
        if len(key) < 16:
            raise ValueError("near-duplicate key must be at least 16 bytes")
        self.num_perm = num_perm
        self.shingle_words = shingle_words
        self._key = hashlib.blake2b(key, digest_size=32, person=b"pileon-mh").digest()
        seed = int.from_bytes(hashlib.blake2b(self._key, digest_size=4).digest(), "big")
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        a, b = self.permutations
        self._a, self._b = a.reshape(1, -1), b.reshape(1, -1)

    def hash_shingle(self, shingle: bytes) -> int:
        """The keyed 32-bit hash of one shingle (datasketch's ``hashfunc``)."""
        digest = hashlib.blake2b(shingle, digest_size=4, key=self._key).digest()
        return int.from_bytes(digest, "little")

    def shingles(self, tokens: Sequence[str]) -> set[bytes]:
        """Word n-grams; texts shorter than n fall back to character 3-grams."""
        n = self.shingle_words
        if len(tokens) >= n:
            return {" ".join(tokens[i : i + n]).encode() for i in range(len(tokens) - n + 1)}
        joined = " ".join(tokens)
        return {joined[i : i + 3].encode() for i in range(max(1, len(joined) - 2))}

    def signature(self, tokens: Sequence[str]) -> Signature:
        return self.signatures([tokens])[0]

    def signatures(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """Signatures of many token lists at once: an array of shape (len(texts), num_perm)."""
        hashes: list[int] = []
        starts = np.empty(len(texts), dtype=np.int64)
        blake2b, key = hashlib.blake2b, self._key
        for i, tokens in enumerate(texts):
            starts[i] = len(hashes)
            hashes.extend(
                int.from_bytes(blake2b(s, digest_size=4, key=key).digest(), "little")
                for s in self.shingles(tokens)
            )
        if not texts:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        hv = _fmix(np.asarray(hashes, dtype=np.uint32).reshape(-1, 1), 32)
        permuted = hv * self._a + self._b  # uint32 wrap-around is the scheme's modulo 2^32
        return np.minimum.reduceat(permuted, starts, axis=0)

    def to_minhash(self, signature: Signature) -> MinHash:
        """The datasketch object for a signature (for its API; not needed on the hot path)."""
        return MinHash(
            hashvalues=signature, permutations=self.permutations, scheme=SCHEME,
            hashfunc=self.hash_shingle,
        )

    @staticmethod
    def to_bytes(signature: Signature) -> bytes:
        return np.asarray(signature, dtype=np.uint32).tobytes()

    def from_bytes(self, data: bytes) -> Signature:
        """Rebuild a signature stored with :meth:`to_bytes` (e.g. after a restart)."""
        signature = np.frombuffer(data, dtype=np.uint32)
        if signature.shape != (self.num_perm,):
            raise ValueError(f"stored signature has {signature.size} values, not {self.num_perm}")
        return signature


def jaccard(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values."""
    return float(np.count_nonzero(a == b)) / a.size
