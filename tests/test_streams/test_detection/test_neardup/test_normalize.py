from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.core.textfold import _tables, fold_unicode
from pileon.streams.detection.neardup import normalise_tokens


class TestNormaliseTokens:
    def test_cyrillic_homoglyphs_fold_to_latin(self) -> None:
        assert normalise_tokens("hасk") == normalise_tokens("hack")

    def test_fullwidth_letters_fold(self) -> None:
        assert normalise_tokens("\uff2c\uff29\uff21\uff32") == ["liar"]

    def test_zero_width_characters_are_removed(self) -> None:
        assert normalise_tokens("fr\u200baud") == ["fraud"]

    def test_urls_and_handles_become_placeholders(self) -> None:
        tokens = normalise_tokens("see https://a.example/x?y=1 and @bob@mastodon.social")
        assert tokens == ["see", "<url>", "and", "<user>"]

    def test_case_and_punctuation_runs_are_dropped(self) -> None:
        assert normalise_tokens("RESIGN!!! now...") == ["resign", "now"]

    def test_leetspeak_inside_words_folds(self) -> None:
        assert normalise_tokens("l1ar fr4ud h4ck") == ["liar", "fraud", "hack"]

    def test_numbers_stay_numbers(self) -> None:
        assert normalise_tokens("since 2026 at 10") == ["since", "2026", "at", "10"]

    def test_greek_look_alikes_fold(self) -> None:
        assert normalise_tokens("ραid ιiar") == ["paid", "iiar"]

    def test_folding_can_be_turned_off_for_comparison(self) -> None:
        assert normalise_tokens("hасk", fold_confusables=False) != ["hack"]


class TestAsciiFastPath:
    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80), st.booleans())
    def test_ascii_text_folds_as_the_full_unicode_path_does(self, text: str, fold: bool) -> None:
        full = unicodedata.normalize("NFKC", text).casefold().translate(_tables()[int(fold)])
        assert fold_unicode(text, fold) == full
