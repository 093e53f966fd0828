"""Inner loops of the near-duplicate step, compiled (C) with a numpy reference.

Per mention the step does three small numeric jobs: a MinHash signature over ~30 shingles x
128 permutations, 30 LSH band keys, and a count of equal values against a handful of candidate
templates. In numpy each is a chain of calls on tiny arrays whose per-call overhead (~0.5 µs)
is the whole cost: signing took ~13 µs a text in ~25 numpy calls. The C extension
``_kernels`` (``_kernels.c``, built with the package) does each in one call: ~1 µs to sign.

The ``*_reference`` functions here are the same arithmetic in numpy, written for reading; tests
hold the compiled kernels to them and to ``datasketch.MinHash`` bit for bit. If the extension
is missing (a source install without a C compiler) they serve instead, about half as fast, and
``COMPILED`` is False (the worker logs a warning). (numba was tried first: as fast, but its
LLVM costs 135 MB of memory in every process, a quarter of the memory budget of issue 6.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:
    from pileon.streams.detection.neardup import _kernels  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the package is built with its extension
    _kernels = None

COMPILED = _kernels is not None


def fmix32(h: np.ndarray) -> np.ndarray:
    """The 32-bit MurmurHash3 finalizer (Appleby's ``fmix32``) on a ``uint32`` array: the
    pre-mix of datasketch's ``affine32`` scheme, written out here rather than imported from
    datasketch's private ``_fmix``. Multiplication wraps modulo 2**32, as intended; the test
    against ``datasketch.MinHash`` holds the two bit for bit."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_values(
    words: Sequence[int], shingle_words: int, mult: int, salts: np.ndarray
) -> np.ndarray:
    """The hash value of every word n-gram (n = 1 .. ``shingle_words``) of keyed word hashes:
    an (n+1)-gram's is ``fmix(g * mult + next_word + salts[n-1])`` of the n-gram's ``g``."""
    w = np.array(words, dtype=np.uint32)
    orders, gram = [w], w
    for k in range(1, shingle_words):
        gram = fmix32(gram[:-1] * np.uint32(mult) + w[k:] + np.uint32(salts[k - 1]))
        orders.append(gram)
    return np.concatenate(orders) if shingle_words > 1 else w


def sign_reference(
    words: Sequence[int], shingle_words: int, mult: int, salts: np.ndarray,
    a: np.ndarray, b: np.ndarray, out: np.ndarray,
) -> None:
    """MinHash signature of the :func:`shingle_values` of keyed word hashes, into ``out``:
    every value pre-mixed with ``fmix`` and permuted as ``a * h + b``, modulo 2^32
    (datasketch's ``affine32`` scheme)."""
    hv = fmix32(shingle_values(words, shingle_words, mult, salts).reshape(-1, 1))
    out[:] = (hv * a.reshape(1, -1) + b.reshape(1, -1)).min(axis=0)


def band_keys_reference(
    signature: np.ndarray, bands: int, rows: int, mix: np.ndarray, salt: np.ndarray
) -> list[int]:
    """One key per LSH band: the band's values times ``mix``, summed, plus the band's ``salt``
    (wrapping uint64 arithmetic), of which the top 30 bits are kept (small Python ints)."""
    grid = signature[: bands * rows].reshape(bands, rows).astype(np.uint64)
    keys = (grid * mix[:rows]).sum(axis=1) + salt[:bands]
    return (keys >> np.uint64(34)).tolist()


def best_row_reference(
    matrix: np.ndarray, rows: list[int], signature: np.ndarray, needed: float
) -> int:
    """Position in ``rows`` of the matrix row with the most values equal to ``signature``, the
    first one on ties, if that count is at least ``needed``; else -1."""
    if not rows:
        return -1
    equal = np.count_nonzero(matrix[rows] == signature, axis=1)
    best = int(equal.argmax())
    return best if equal[best] >= needed else -1


if _kernels is not None:
    sign = _kernels.sign
    band_keys = _kernels.band_keys
    best_row = _kernels.best_row
else:  # pragma: no cover
    sign, band_keys, best_row = sign_reference, band_keys_reference, best_row_reference
