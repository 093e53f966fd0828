from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streams.neardup import ClusterIndex, Signer, kernels

KEY = b"k" * 32
_SIGNATURES = hnp.arrays(np.uint32, 128, elements=st.integers(0, 2**32 - 1))


class TestSign:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.text(min_size=1, max_size=6), max_size=10), st.integers(1, 3))
    def test_equals_datasketch_for_every_ngram_order(self, tokens: list[str], n: int) -> None:
        s = Signer(KEY, num_perm=64, shingle_words=n)
        m = MinHash(num_perm=64, permutations=s.permutations, scheme="affine32", hashfunc=int)
        m.update_batch(s.shingle_hashes(tokens).tolist())
        assert np.array_equal(s.signature(tokens), m.hashvalues)


class TestBandKeys:
    @settings(max_examples=50, deadline=None)
    @given(_SIGNATURES)
    def test_equal_the_wrapping_numpy_formula(self, signature: np.ndarray) -> None:
        idx = ClusterIndex(0.5, 128)
        rows = signature[: idx.bands * idx.rows].reshape(idx.bands, idx.rows)
        expected = ((rows.astype(np.uint64) * idx._mix).sum(axis=1) + idx._salt).tolist()
        assert idx.band_keys(signature) == expected

    def test_read_only_signatures_are_accepted(self) -> None:
        stored = np.frombuffer(np.arange(128, dtype=np.uint32).tobytes(), dtype=np.uint32)
        idx = ClusterIndex(0.5, 128)
        assert idx.band_keys(stored) == idx.band_keys(stored.copy())


class TestBestRow:
    @settings(max_examples=50, deadline=None)
    @given(hnp.arrays(np.uint32, (6, 16), elements=st.integers(0, 3)),
           hnp.arrays(np.uint32, 16, elements=st.integers(0, 3)), st.integers(0, 16))
    def test_picks_the_first_row_with_most_equal_values(
        self, matrix: np.ndarray, signature: np.ndarray, needed: int
    ) -> None:
        rows = np.array([4, 1, 3, 0], dtype=np.int64)
        equal = [int(np.count_nonzero(matrix[r] == signature)) for r in rows]
        want = int(np.argmax(equal)) if max(equal) >= needed else -1
        assert kernels.best_row(matrix, rows, signature, float(needed)) == want

    def test_no_rows_is_no_match(self) -> None:
        sig = np.zeros(4, dtype=np.uint32)
        assert kernels.best_row(np.zeros((1, 4), np.uint32), np.zeros(0, np.int64), sig, 0.0) == -1


class TestCompiled:
    def test_compiles_in_memory_when_no_cache_location_is_writable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = kernels.njit

        def no_cache(**options: Any) -> Any:
            if options.get("cache"):
                raise RuntimeError("cannot cache function: no locator available")
            return real(**options)

        monkeypatch.setattr(kernels, "njit", no_cache)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            double = kernels._compiled()(lambda x: x * 2)
        assert double(21) == 42
        assert "compiling in memory" in str(caught[0].message)

    def test_warm_up_compiles_every_kernel(self) -> None:
        kernels.warm_up()
        for kernel in (kernels.sign, kernels.band_keys, kernels.best_row):
            assert kernel.signatures, kernel
