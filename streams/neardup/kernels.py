"""Compiled inner loops of the near-duplicate step (numba).

Per mention the step does three small numeric jobs: a MinHash signature over ~30 shingles x
128 permutations, 30 LSH band keys, and a similarity count against a handful of candidate
templates. In numpy each is a chain of calls on tiny arrays whose per-call overhead (~0.5 µs)
is the whole cost: signing took ~13 µs a text, ~25 numpy calls. Compiled, it takes ~2 µs.

The arithmetic is exactly that of the numpy reference (datasketch's ``affine32`` scheme with
its MurmurHash3 pre-mix); tests hold the results bit for bit to ``datasketch.MinHash``.
Values are carried in uint64 and masked to 32 bits where the scheme wraps modulo 2^32.

Compiled code is cached on disk (``NUMBA_CACHE_DIR``, else next to this file, else the user's
cache directory); where none is writable (a read-only image without one set) the kernels are
compiled in memory at first use, which costs about a second per process.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

_M32 = np.uint64(0xFFFFFFFF)


def _compiled(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError:  # numba: "no locator available" (nowhere writable to cache)
            warnings.warn(f"numba cannot cache {fn.__name__}: compiling in memory",
                          RuntimeWarning, stacklevel=2)
            return njit(nogil=True, **options)(fn)
    return wrap


@_compiled(inline="always")
def _fmix32(h: Any) -> Any:
    """The MurmurHash3 32-bit finalizer (datasketch's ``_fmix`` at width 32)."""
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _M32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _M32
    h ^= h >> np.uint64(16)
    return h


@_compiled()
def sign(words: Any, shingle_words: int, mult: Any, salts: Any, a: Any, b: Any) -> Any:
    """MinHash signature of the word n-grams (n = 1 .. ``shingle_words``) of keyed word hashes.

    An (n+1)-gram's hash is ``fmix(g * mult + next_word + salts[n-1])`` of the n-gram's hash
    ``g``; every shingle hash is pre-mixed with ``fmix`` and permuted as ``a * h + b`` mod 2^32.
    """
    num_perm, m = a.shape[0], words.shape[0]
    out = np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    gram = words.astype(np.uint64)
    for k in range(shingle_words):
        if k > 0:
            for i in range(m - k):
                gram[i] = _fmix32((gram[i] * mult + np.uint64(words[i + k]) + salts[k - 1]) & _M32)
        for i in range(m - k):
            h = _fmix32(gram[i])
            for j in range(num_perm):
                x = np.uint32((np.uint64(a[j]) * h + np.uint64(b[j])) & _M32)
                if x < out[j]:
                    out[j] = x
    return out


@_compiled()
def band_keys(signature: Any, bands: int, rows: int, mix: Any, salt: Any) -> Any:
    """One 64-bit key per LSH band: the band's values times ``mix``, summed, plus the band's
    ``salt`` (wrapping uint64 arithmetic, as numpy's)."""
    keys = np.empty(bands, dtype=np.uint64)
    for band in range(bands):
        acc = salt[band]
        for r in range(rows):
            acc += np.uint64(signature[band * rows + r]) * mix[r]
        keys[band] = acc
    return keys


@_compiled()
def best_row(matrix: Any, rows: Any, signature: Any, needed: float) -> int:
    """Position in ``rows`` of the matrix row with the most values equal to ``signature``,
    the first one on ties, if that count is at least ``needed``; else -1."""
    best, best_equal = -1, -1
    width = signature.shape[0]
    for pos in range(rows.shape[0]):
        row = rows[pos]
        equal = 0
        for j in range(width):
            if matrix[row, j] == signature[j]:
                equal += 1
        if equal > best_equal:
            best, best_equal = pos, equal
    return best if best_equal >= needed else -1


def warm_up(num_perm: int = 128) -> None:
    """Compile (or load from the cache) every kernel for the argument types the step uses,
    writable and read-only (signatures decoded from stored records), so that no mention pays
    for compilation."""
    signature = np.zeros(num_perm, dtype=np.uint32)
    stored = np.frombuffer(signature.tobytes(), dtype=np.uint32)
    perm = np.ones(num_perm, dtype=np.uint32)
    sign(np.zeros(3, dtype=np.uint32), 2, np.uint64(3), np.ones(7, dtype=np.uint64), perm, perm)
    mix = np.ones(4, dtype=np.uint64)
    matrix = np.zeros((2, num_perm), dtype=np.uint32)
    for sig in (signature, stored):
        band_keys(sig, num_perm // 4, 4, mix, np.ones(num_perm // 4, dtype=np.uint64))
        best_row(matrix, np.zeros(1, dtype=np.int64), sig, 1.0)
