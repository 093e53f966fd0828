from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pileon.connectors.matching import WatchlistMatcher, merge, normalise_account, normalise_phrase
from pileon.core.watchlist import Person, Watchlist

ALIASES = {"amara": ["Amara Okafor", "The Okafor Show"], "lucas": ["Lucas Ferreira", "LF"],
           "mei": ["Mei Tanaka", "田中 芽衣"], "sam": ["the news"]}
WATCHLIST = Watchlist(persons=tuple(
    Person(key=k, display_name=v[0], aliases=v,
           handles={"bluesky": [f"did:plc:{k}", f"{k}.bsky.social"],
                    "mastodon": [f"@{k}@journa.host", "109"] if k == "amara" else []})
    for k, v in ALIASES.items()))
WORDS = ["amara", "okafor", "the", "show", "lucas", "ferreira", "lf", "mei", "tanaka", "news",
         "田中", "芽衣", "Okаfor", "AMARA", "x", "okaforville", "-", "!!", "\u200b", "2026"]


def brute_force(text: str) -> set[str]:
    phrase = normalise_phrase(text)
    return {k for k, aliases in ALIASES.items()
            if any(normalise_phrase(a) in phrase for a in aliases)}


class TestWatchlistMatcher:
    def test_accounts_by_immutable_id_or_handle_case_insensitively(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "mastodon")
        assert m.account("109") == "amara"
        assert m.account("AMARA@journa.host") == "amara"
        assert m.account("@amara@journa.host") == "amara"
        assert m.account("amara@elsewhere.social") is None
        assert WatchlistMatcher(WATCHLIST, "bluesky").account("did:plc:mei") == "mei"

    def test_aliases_match_whole_words_only(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        assert [x.person for x in m.keywords("Amara-Okafor's piece")] == ["amara"]
        assert m.keywords("amara okaforville") == []
        assert [x.person for x in m.keywords("LF!")] == ["lucas"]
        assert m.keywords("self-help") == []

    def test_homoglyphs_fullwidth_and_zero_width_are_folded(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        for text in ["Аmаrа Окafor", "Ａｍａｒａ Ｏｋａｆｏｒ", "Amara\u200b Okafor"]:
            assert [x.person for x in m.keywords(text)] == ["amara"], text

    def test_non_latin_aliases(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        assert [x.person for x in m.keywords("今日 田中 芽衣 さん")] == ["mei"]

    def test_an_alias_of_common_words_still_matches(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        assert "sam" in {x.person for x in m.keywords("did you see the news today")}

    def test_merge_keeps_the_first_reason_per_person(self) -> None:
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        got = merge(m.accounts(["did:plc:amara"], "mention"),
                    m.keywords("Amara Okafor, Mei Tanaka"))
        assert [(x.person, x.matched_by) for x in got] == [("amara", "mention"), ("mei", "keyword")]

    def test_account_normalisation(self) -> None:
        assert normalise_account(" @Amara@Journa.Host ") == "amara@journa.host"
        assert normalise_account("did:plc:AbC") == "did:plc:AbC"  # DIDs are case-sensitive

    @settings(max_examples=500, deadline=None)
    @given(st.lists(st.sampled_from(WORDS) | st.text(max_size=4), max_size=12),
           st.sampled_from([" ", "  ", ", ", "\n", "_", "-"]))
    def test_same_answer_as_searching_every_alias(self, words: list[str], sep: str) -> None:
        text = sep.join(words)
        m = WatchlistMatcher(WATCHLIST, "bluesky")
        assert {x.person for x in m.keywords(text)} == brute_force(text)
