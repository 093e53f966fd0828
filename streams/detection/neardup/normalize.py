"""Text normalisation that undoes cheap filter evasion before shingling.

In order: Unicode NFKC (fullwidth and compatibility forms, ligatures), removal of format
characters (zero-width spaces and joiners, bidi controls, soft hyphens), case folding, folding
of Cyrillic/Greek/Armenian look-alikes to Latin (a high-yield subset of the Unicode TR39
confusables table), URLs and @-handles reduced to ``<url>`` and ``<user>``, leetspeak digits
inside words folded to letters (``l1ar`` → ``liar``, but ``2026`` stays), and everything that
is not a letter or digit dropped, which collapses whitespace and punctuation runs.

Texts with fewer than ``neardup.min_tokens`` tokens (default 4) are not clustered: with so few
shingles, unrelated short replies ("you liar", "so true") would match each other.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@[\w.-]+(?:@[\w.-]+)?")
_WORD = re.compile(r"[^\W_]+|<url>|<user>")
_LEET_WORD = re.compile(r"(?=\w*[a-z])(?=\w*[013457])\w+")

# Look-alikes of Latin letters used to dodge filters (after Unicode TR39 confusables).
HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
    "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "c",
    # Armenian and Latin look-alikes
    "ո": "n", "ս": "u", "օ": "o", "ɑ": "a", "ı": "i", "ȷ": "j", "ʏ": "y", "ᴄ": "c",
    "ᴏ": "o", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
}
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_LEET_DIGITS = re.compile(r"[013457]")


@cache
def _tables() -> tuple[dict[int, str | None], dict[int, str | None]]:
    """Translation tables that delete format characters (and fold look-alikes).

    Category Cf holds zero-width spaces and joiners, bidi controls, soft hyphens and tag
    characters; Unicode puts them only in planes 0, 1 and 14. One ``str.translate`` replaces a
    per-character Python loop that cost more than the rest of normalisation.
    """
    planes = (*range(0x20000), *range(0xE0000, 0xF0000))
    drop: dict[int, str | None] = {
        cp: None for cp in planes if unicodedata.category(chr(cp)) == "Cf"
    }
    fold: dict[int, str | None] = {ord(k): v for k, v in HOMOGLYPHS.items()}
    return drop, {**drop, **fold}


def _unleet(match: re.Match[str]) -> str:
    return match.group(0).translate(_LEET)


def _fold_unicode(text: str, fold_confusables: bool) -> str:
    """NFKC, case folding, format characters dropped, look-alikes folded."""
    if text.isascii():  # most posts: NFKC is the identity, casefold is lower, nothing to drop
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    drop, drop_and_fold = _tables()
    return text.translate(drop_and_fold if fold_confusables else drop)


def normalise_tokens(text: str, *, fold_confusables: bool = True) -> list[str]:
    """Word tokens of ``text`` after evasion-resistant normalisation.

    >>> normalise_tokens("\\uff39ou're a \\uff2cIAR!!  https://x.co/a @bob")  # fullwidth Y, L
    ['you', 're', 'a', 'liar', '<url>', '<user>']
    >>> normalise_tokens("h\\u0430ck l1ar s1nce 2026")  # Cyrillic a, leetspeak
    ['hack', 'liar', 'since', '2026']
    """
    text = _fold_unicode(text, fold_confusables)
    if fold_confusables and _LEET_DIGITS.search(text):
        text = _LEET_WORD.sub(_unleet, text)
    if "/" in text or "www." in text:
        text = _URL.sub(" <url> ", text)
    if "@" in text:
        text = _HANDLE.sub(" <user> ", text)
    return _WORD.findall(text)
