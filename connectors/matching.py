"""Which protected person a post is about, and why.

Two kinds of evidence, checked in this order by the platform connectors:

1. **Accounts**: exact matches on a person's platform identifiers. Immutable ids (a Bluesky
   DID ``did:plc:…``, a Mastodon account id ``109…``) are preferred because handles change
   hands; handles (``alice.bsky.social``, ``@alice@journa.host``) also match, case-insensitively.
   Connectors use them for mention facets, reply parents/roots and quoted posts.
2. **Keywords**: the person's aliases found in the post text by one Aho-Corasick automaton
   (Aho & Corasick, CACM 1975; pyahocorasick) over all aliases of all persons, so the cost per
   post does not grow with the watchlist. Text and aliases are normalised alike: NFKC, case
   folding, look-alike letters folded to Latin (the near-duplicate step's table), and every
   run of non-letters turned into one space; matches must start and end on word boundaries
   ("Okafor" does not match "Okaforville").

Cost: ASCII text (most posts) skips NFKC and folding (byte-level lower-casing and one regex for
space runs). A post runs the automaton, O(length + matches), only when one of its words is
some alias's *anchor* (its longest word); most posts have none and cost one ``split``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import ahocorasick

from pileon.core.textfold import fold_unicode
from pileon.core.watchlist import Watchlist

MatchedBy = Literal["mention", "reply", "quote", "keyword"]
_NON_WORD = re.compile(r"[\W_]+")
# ASCII bytes: letters lower-cased, digits kept, everything else a space.
_ASCII_FOLD = bytes(ord(chr(b).lower()) if chr(b).isalnum() and b < 128 else 32 for b in range(256))
_SPACE_RUNS = re.compile(rb"  +")


@dataclass(frozen=True, slots=True)
class Match:
    person: str
    matched_by: MatchedBy
    term: str  # the identifier or alias that matched (evidence; never logged above DEBUG)


def normalise_phrase(text: str) -> str:
    """``text`` as the keyword automaton sees it: `` word word `` (note the edge spaces).

    >>> normalise_phrase("Amara  OKAFOR's piece!")
    ' amara okafor s piece '
    >>> normalise_phrase("\u041ek\u0430for")  # Cyrillic O and a
    ' okafor '
    """
    if text.isascii():  # most posts: byte-level passes (str.translate is 10x slower)
        return _ascii_phrase(_fold_ascii(text))
    text = fold_unicode(text)
    return f" {' '.join(_NON_WORD.sub(' ', text).split())} "


def _fold_ascii(text: str) -> bytes:
    """ASCII ``text`` lower-cased, every non-alphanumeric byte a space."""
    return text.encode("ascii").translate(_ASCII_FOLD)


def _ascii_phrase(folded: bytes) -> str:
    return f" {_SPACE_RUNS.sub(b' ', folded).decode('ascii').strip()} "


def normalise_account(ident: str) -> str:
    """Handles compare case-insensitively and without a leading ``@``; ids are kept as given."""
    ident = ident.strip()
    if ident.startswith("did:"):
        return ident
    return ident.lstrip("@").casefold()


class WatchlistMatcher:
    """Matches accounts and texts of one platform against the watchlist.

    >>> from pileon.core.watchlist import Person, Watchlist
    >>> w = Watchlist(persons=(Person(key="amara", display_name="Amara Okafor",
    ...     handles={"bluesky": ["did:plc:abc"]}, aliases=["Amara Okafor"]),))
    >>> m = WatchlistMatcher(w, "bluesky")
    >>> m.account("did:plc:abc")
    'amara'
    >>> [x.person for x in m.keywords("thread on AMARA okafor's story")]
    ['amara']
    >>> m.keywords("amara okaforville")
    []
    """

    def __init__(self, watchlist: Watchlist, platform: str, *, extra_keywords: bool = True):
        self.platform = platform
        self._accounts: dict[str, str] = {}
        self._automaton = ahocorasick.Automaton()
        phrases: dict[str, list[tuple[str, str]]] = {}
        for person in watchlist.persons:
            for ident in person.handles.get(platform, []):
                self._accounts[normalise_account(ident)] = person.key
            aliases = person.aliases if extra_keywords else []
            for alias in aliases:
                phrase = normalise_phrase(alias)
                if phrase.strip():
                    phrases.setdefault(phrase, []).append((person.key, alias))
        for phrase, owners in phrases.items():
            self._automaton.add_word(phrase, tuple(owners))
        self.terms = len(phrases)
        # Every alias found in a text has all its words among the text's words; its longest
        # word that is not a common function word (usually its rarest) is its anchor. Posts
        # without any anchor skip the automaton.
        self._anchors = frozenset(_anchor(p) for p in phrases)
        self._ascii_anchors = frozenset(a.encode() for a in self._anchors if a.isascii())
        if phrases:
            self._automaton.make_automaton()

    def account(self, ident: str | None) -> str | None:
        """The person whose account this is, if any."""
        if not ident:
            return None
        return self._accounts.get(ident) or self._accounts.get(normalise_account(ident))

    def accounts(self, idents: Iterable[str | None], matched_by: MatchedBy) -> list[Match]:
        if not idents:
            return []
        found: dict[str, Match] = {}
        for ident in idents:
            person = self.account(ident)
            if person is not None and person not in found:
                found[person] = Match(person, matched_by, str(ident))
        return list(found.values())

    def keywords(self, text: str | None) -> list[Match]:
        """Persons whose aliases occur in ``text`` as whole words, each once."""
        if not text or not self.terms:
            return []
        if text.isascii():  # the firehose's common case: reject on bytes, before decoding
            folded = _fold_ascii(text)
            if self._ascii_anchors.isdisjoint(folded.split()):
                return []
            phrase = _ascii_phrase(folded)
        else:
            phrase = normalise_phrase(text)
            if self._anchors.isdisjoint(phrase.split()):
                return []
        found: dict[str, Match] = {}
        # Aliases are stored with a space at each end, so every hit sits on word boundaries;
        # overlapping hits ("amara okafor" inside "amara okafor okafor") are all reported.
        for _end, owners in self._automaton.iter(phrase):
            for person, alias in owners:
                if person not in found:
                    found[person] = Match(person, "keyword", alias)
        return list(found.values())


# Common English function words: never an alias's anchor ("the okafor show" → "okafor").
_COMMON = frozenset("""a about after all also an and any are as at be because been but by can
could did do does for from get had has have he her his how i if in into is it its just like me
more my no not now of on one only or our out over she so some than that the their them then
there these they this to up us was we were what when which who will with would you your show
news live report today daily weekly podcast official""".split())  # noqa: SIM905


def _anchor(phrase: str) -> str:
    words = phrase.split()
    rare = [w for w in words if w not in _COMMON and not w.isdigit()] or words
    return max(rare, key=len)


def merge(*groups: Iterable[Match]) -> list[Match]:
    """One match per person, the strongest reason first given (mention > reply > quote > keyword
    when groups are passed in that order)."""
    found: dict[str, Match] = {}
    for group in groups:
        for match in group:
            found.setdefault(match.person, match)
    return list(found.values())
