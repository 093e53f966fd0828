"""Keyed MinHash signatures (Broder 1997, "On the resemblance and containment of documents").

A text's shingles are all its word n-grams for n = 1 .. ``shingle_words`` (w-shingling with the
single words included: one inserted word then breaks a few shingles, not a third of them).
Each word is hashed once with BLAKE2b keyed by a secret (RFC 7693 keyed mode); an n-gram's hash
is derived from its words' keyed hashes with the MurmurHash3 finalizer, so no shingle hash, and
no stored signature, can be computed or tested against guessed texts without the key. Texts
with fewer words than ``shingle_words`` use character 3-grams instead.

The shingle hashes then go through datasketch's ``affine32`` permutations: signatures are plain
``uint32`` arrays, bit for bit what ``datasketch.MinHash.update_batch`` computes from the same
hash values (a test holds us to that), but not ``MinHash`` objects, whose construction costs
more than signing a tweet. The n-grams, pre-mix and permutations run in one compiled loop
(:func:`pileon.streams.detection.neardup.kernels.sign`); :meth:`Signer.shingle_hashes` gives the
shingle hash values themselves, for tests and for handing them to datasketch.

Cost per text (~1.5 µs for a tweet): one keyed BLAKE2b call per word not in a bounded cache of
recent words' keyed hashes (``_WORD_CACHE`` entries, held in memory only, like the texts being
processed), and a ``num_perm``-wide multiply-add and minimum per shingle. A signature takes
``4 * num_perm`` bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from datasketch import MinHash

from pileon.streams.detection.neardup import kernels

SCHEME = "affine32"
Signature = np.ndarray  # shape (num_perm,), dtype uint32
_KERNEL_MULT = 0x9E3779B1  # n-gram hashing: odd, so multiplying is a bijection mod 2^32
_KERNEL_SALTS = np.array([0x85EBCA6B * k & 0xFFFFFFFF for k in range(1, 8)], dtype=np.uint64)
_WORD_CACHE = 100_000


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
        self._a, self._b = a.astype(np.uint32), b.astype(np.uint32)
        self._word_hashes: dict[str, int] = {}

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key: replicas compare it, it reveals nothing."""
        return hashlib.blake2b(self._key, digest_size=8, person=b"pileon-keyid").hexdigest()

    def units(self, tokens: Sequence[str]) -> tuple[list[str], int]:
        """The units that get keyed hashes and the longest n-gram built from them."""
        if len(tokens) >= self.shingle_words:
            return list(tokens), self.shingle_words
        joined = " ".join(tokens)
        return [joined[i : i + 3] for i in range(max(1, len(joined) - 2))], 1

    def shingles(self, tokens: Sequence[str]) -> set[str]:
        """The shingle set a signature stands for (for exact Jaccard in tests and benches)."""
        units, n = self.units(tokens)
        return {" ".join(units[i : i + k]) for k in range(1, n + 1)
                for i in range(len(units) - k + 1)}

    def shingle_hashes(self, tokens: Sequence[str]) -> np.ndarray:
        """Keyed 32-bit hashes of the text's shingles (one per n-gram occurrence)."""
        units, n = self.units(tokens)
        return kernels.shingle_values(self._keyed(units), n, _KERNEL_MULT, _KERNEL_SALTS)

    def _keyed(self, units: list[str]) -> list[int]:
        cache, blake2b, key = self._word_hashes, hashlib.blake2b, self._key
        out = []
        for u in units:
            h = cache.get(u)
            if h is None:
                h = int.from_bytes(blake2b(u.encode(), digest_size=4, key=key).digest(), "little")
                if len(cache) >= _WORD_CACHE:
                    cache.clear()
                cache[u] = h
            out.append(h)
        return out

    def signature(self, tokens: Sequence[str]) -> Signature:
        units, n = self.units(tokens)
        out: Signature = np.empty(self.num_perm, dtype=np.uint32)
        kernels.sign(self._keyed(units), n, _KERNEL_MULT, _KERNEL_SALTS, self._a, self._b, out)
        return out

    def signatures(self, texts: Sequence[Sequence[str]]) -> np.ndarray:
        """Signatures of many token lists: an array of shape (len(texts), num_perm)."""
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        for row, tokens in enumerate(texts):
            out[row] = self.signature(tokens)
        return out

    def to_minhash(self, signature: Signature) -> MinHash:
        """The datasketch object for a signature (for its API; not needed on the hot path)."""
        return MinHash(hashvalues=signature, permutations=self.permutations, scheme=SCHEME)

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
