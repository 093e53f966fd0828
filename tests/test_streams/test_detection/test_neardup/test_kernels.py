from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pileon.streams.detection.neardup import ClusterIndex, Signer, kernels
from pileon.streams.detection.neardup.signature import _KERNEL_MULT, _KERNEL_SALTS

KEY = b"k" * 32
_SIGNATURES = hnp.arrays(np.uint32, 128, elements=st.integers(0, 2**32 - 1))
_WORDS = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300)



def test_the_package_is_built_with_its_compiled_kernels() -> None:
    # The numpy reference would serve, about half as fast: `make` installs a compiler for it.
    assert kernels.COMPILED, "the compiled _kernels are missing: pip install -e . with a C compiler"


class TestSign:
    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.text(min_size=1, max_size=6), max_size=10), st.integers(1, 3))
    def test_equals_datasketch_for_every_ngram_order(self, tokens: list[str], n: int) -> None:
        s = Signer(KEY, num_perm=64, shingle_words=n)
        m = MinHash(num_perm=64, permutations=s.permutations, scheme="affine32", hashfunc=int)
        m.update_batch(s.shingle_hashes(tokens).tolist())
        assert np.array_equal(s.signature(tokens), m.hashvalues)

    @settings(max_examples=80, deadline=None)
    @given(_WORDS, st.integers(1, 4))
    def test_equals_the_numpy_reference(self, words: list[int], n: int) -> None:
        a, b = Signer(KEY).permutations
        ours, ref = np.empty(128, np.uint32), np.empty(128, np.uint32)
        kernels.sign(words, n, _KERNEL_MULT, _KERNEL_SALTS, a, b, ours)
        kernels.sign_reference(words, n, _KERNEL_MULT, _KERNEL_SALTS, a, b, ref)
        assert np.array_equal(ours, ref)

    def test_mismatched_arrays_are_rejected(self) -> None:
        a = np.ones(128, np.uint32)
        with pytest.raises(ValueError, match="same length"):
            kernels.sign([1, 2], 2, 3, _KERNEL_SALTS, a, a[:64], np.empty(128, np.uint32))

    def test_too_few_salts_for_the_ngram_order_is_rejected(self) -> None:
        a = np.ones(8, np.uint32)
        with pytest.raises(ValueError, match="salts"):
            kernels.sign([1, 2], 9, 3, _KERNEL_SALTS, a, a, np.empty(8, np.uint32))

    def test_read_only_output_is_rejected(self) -> None:
        a = np.ones(8, np.uint32)
        out = np.empty(8, np.uint32)
        out.flags.writeable = False
        with pytest.raises((TypeError, BufferError)):
            kernels.sign([1], 1, 3, _KERNEL_SALTS, a, a, out)


class TestBandKeys:
    @settings(max_examples=50, deadline=None)
    @given(_SIGNATURES)
    def test_equal_the_numpy_reference(self, signature: np.ndarray) -> None:
        idx = ClusterIndex(0.5, 128)
        want = kernels.band_keys_reference(signature, idx.bands, idx.rows, idx._mix, idx._salt)
        assert idx.band_keys(signature) == want

    def test_read_only_signatures_are_accepted(self) -> None:
        stored = np.frombuffer(np.arange(128, dtype=np.uint32).tobytes(), dtype=np.uint32)
        idx = ClusterIndex(0.5, 128)
        assert idx.band_keys(stored) == idx.band_keys(stored.copy())

    def test_more_bands_than_the_signature_holds_is_rejected(self) -> None:
        idx = ClusterIndex(0.5, 128)
        with pytest.raises(ValueError, match="exceed"):
            kernels.band_keys(np.zeros(16, np.uint32), idx.bands, idx.rows, idx._mix, idx._salt)


class TestBestRow:
    @settings(max_examples=80, deadline=None)
    @given(hnp.arrays(np.uint32, (6, 16), elements=st.integers(0, 3)),
           hnp.arrays(np.uint32, 16, elements=st.integers(0, 3)), st.integers(0, 17),
           st.lists(st.integers(0, 5), max_size=6))
    def test_equals_the_numpy_reference(
        self, matrix: np.ndarray, signature: np.ndarray, needed: int, rows: list[int]
    ) -> None:
        want = kernels.best_row_reference(matrix, rows, signature, float(needed))
        assert kernels.best_row(matrix, rows, signature, float(needed)) == want

    def test_ties_go_to_the_first_row_given(self) -> None:
        matrix = np.zeros((3, 4), np.uint32)
        assert kernels.best_row(matrix, [2, 0, 1], np.zeros(4, np.uint32), 4.0) == 0

    def test_row_outside_the_matrix_is_rejected(self) -> None:
        with pytest.raises(IndexError, match="outside"):
            kernels.best_row(np.zeros((2, 4), np.uint32), [2], np.zeros(4, np.uint32), 0.0)
