from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.streams.detection.neardup import Signer, jaccard, normalise_tokens

KEY = b"k" * 32
A = normalise_tokens("amara is a fraud and everyone knows it stop spreading lies and resign now")
B = normalise_tokens("amara is a fraud and everyone knows it lol stop spreading lies resign now")
C = normalise_tokens("great reporting on the housing report, thanks for the sourcing")


class TestSigner:
    def test_near_copies_are_similar(self) -> None:
        s = Signer(KEY)
        assert jaccard(s.signature(A), s.signature(B)) > 0.5

    def test_unrelated_texts_are_not(self) -> None:
        s = Signer(KEY)
        assert jaccard(s.signature(A), s.signature(C)) < 0.2

    def test_signatures_depend_on_the_key(self) -> None:
        assert not np.array_equal(Signer(KEY).signature(A), Signer(b"z" * 32).signature(A))

    def test_short_key_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="16 bytes"):
            Signer(b"short")

    def test_bytes_round_trip(self) -> None:
        s = Signer(KEY)
        sig = s.signature(A)
        assert np.array_equal(s.from_bytes(Signer.to_bytes(sig)), sig)

    def test_stored_signature_of_wrong_width_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="values"):
            Signer(KEY, num_perm=128).from_bytes(b"\0" * 64)

    def test_short_texts_fall_back_to_characters(self) -> None:
        assert Signer(KEY, shingle_words=3).shingles(["liar"]) == {"lia", "iar"}

    def test_shingles_are_words_and_word_pairs(self) -> None:
        assert Signer(KEY).shingles(["a", "b", "c"]) == {"a", "b", "c", "a b", "b c"}

    def test_one_hash_per_shingle_occurrence(self) -> None:
        assert len(Signer(KEY, shingle_words=3).shingle_hashes(["a", "b", "c", "d"])) == 9

    def test_word_order_matters_through_the_pairs(self) -> None:
        s = Signer(KEY)
        assert jaccard(s.signature(["a", "b", "c", "d"]), s.signature(["d", "c", "b", "a"])) < 1

    def test_batch_equals_one_at_a_time(self) -> None:
        s = Signer(KEY)
        batch = s.signatures([A, B, C, ["x"]])
        for row, tokens in zip(batch, [A, B, C, ["x"]], strict=True):
            assert np.array_equal(row, s.signature(tokens))

    def test_empty_batch(self) -> None:
        assert Signer(KEY).signatures([]).shape == (0, 128)


class TestDatasketchEquivalence:
    """pileon's vectorised signing computes exactly what datasketch's MinHash does."""

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.lists(st.text(min_size=1, max_size=8), max_size=12), max_size=6))
    def test_signatures_match_minhash_update_batch(self, texts: list[list[str]]) -> None:
        s = Signer(KEY, num_perm=64)
        ours = s.signatures(texts)
        for row, tokens in zip(ours, texts, strict=True):
            m = MinHash(num_perm=64, permutations=s.permutations, scheme="affine32",
                        hashfunc=int)
            m.update_batch(s.shingle_hashes(tokens).tolist())
            assert np.array_equal(row, m.hashvalues)

    def test_equal_shingle_sets_give_equal_signatures(self) -> None:
        s = Signer(KEY)
        assert np.array_equal(s.signature(["x", "y", "x", "y", "x"]), s.signature(["x", "y", "x"]))

    def test_jaccard_matches_datasketch(self) -> None:
        s = Signer(KEY)
        a, b = s.signature(A), s.signature(B)
        assert jaccard(a, b) == s.to_minhash(a).jaccard(s.to_minhash(b))
