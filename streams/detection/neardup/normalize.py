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

from pileon.core.textfold import HOMOGLYPHS, fold_unicode

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@[\w.-]+(?:@[\w.-]+)?")
_WORD = re.compile(r"[^\W_]+|<url>|<user>")
_LEET_WORD = re.compile(r"(?=\w*[a-z])(?=\w*[013457])\w+")

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_LEET_DIGITS = re.compile(r"[013457]")


def _unleet(match: re.Match[str]) -> str:
    return match.group(0).translate(_LEET)


def normalise_tokens(text: str, *, fold_confusables: bool = True) -> list[str]:
    """Word tokens of ``text`` after evasion-resistant normalisation.

    >>> normalise_tokens("\\uff39ou're a \\uff2cIAR!!  https://x.co/a @bob")  # fullwidth Y, L
    ['you', 're', 'a', 'liar', '<url>', '<user>']
    >>> normalise_tokens("h\\u0430ck l1ar s1nce 2026")  # Cyrillic a, leetspeak
    ['hack', 'liar', 'since', '2026']
    """
    text = fold_unicode(text, fold_confusables)
    if fold_confusables and _LEET_DIGITS.search(text):
        text = _LEET_WORD.sub(_unleet, text)
    if "/" in text or "www." in text:
        text = _URL.sub(" <url> ", text)
    if "@" in text:
        text = _HANDLE.sub(" <user> ", text)
    return _WORD.findall(text)

__all__ = ["HOMOGLYPHS", "normalise_tokens"]
