from __future__ import annotations

import pytest

from streams.neardup import Signer, normalise_tokens

KEY = b"k" * 32
A = normalise_tokens("amara is a fraud and everyone knows it stop spreading lies and resign now")
B = normalise_tokens("amara is a fraud and everyone knows it lol stop spreading lies resign now")
C = normalise_tokens("great reporting on the housing report, thanks for the sourcing")


class TestSigner:
    def test_near_copies_are_similar(self) -> None:
        s = Signer(KEY)
        assert s.minhash(A).jaccard(s.minhash(B)) > 0.5

    def test_unrelated_texts_are_not(self) -> None:
        s = Signer(KEY)
        assert s.minhash(A).jaccard(s.minhash(C)) < 0.2

    def test_signatures_depend_on_the_key(self) -> None:
        a = Signer(KEY).minhash(A)
        b = Signer(b"z" * 32).minhash(A)
        assert list(a.hashvalues) != list(b.hashvalues)

    def test_short_key_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="16 bytes"):
            Signer(b"short")

    def test_bytes_round_trip(self) -> None:
        s = Signer(KEY)
        m = s.minhash(A)
        assert s.from_hashvalues(Signer.to_bytes(m)).jaccard(m) == 1.0

    def test_short_texts_fall_back_to_characters(self) -> None:
        shingles = Signer(KEY, shingle_words=3).shingles(["liar"])
        assert shingles == {b"lia", b"iar"}
