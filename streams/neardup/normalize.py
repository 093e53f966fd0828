"""Text normalisation that undoes cheap filter evasion before shingling.

Unicode NFKC (fullwidth and compatibility forms), case folding, removal of zero-width and
format characters, folding of common Cyrillic/Greek homoglyphs to Latin (after Unicode TR39
confusables), URLs and @-handles reduced to placeholders, punctuation runs dropped.
"""

from __future__ import annotations

import re
import unicodedata

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@[\w.-]+(?:@[\w.-]+)?")
_WORD = re.compile(r"[^\W_]+|<url>|<user>")

# A small, high-yield subset of Unicode TR39 confusables: look-alikes used to dodge filters.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "к": "k", "м": "m", "т": "t",
        "в": "b", "н": "h", "ո": "n", "ν": "v", "ο": "o", "α": "a", "ρ": "p", "τ": "t",
        "ι": "i", "κ": "k", "υ": "u", "χ": "x", "ε": "e", "ɑ": "a", "ı": "i",
    }
)


def _drop_format_chars(text: str) -> str:
    # Category Cf holds zero-width space/joiners, bidi controls and soft hyphens.
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalise_tokens(text: str) -> list[str]:
    """Word tokens of ``text`` after evasion-resistant normalisation.

    >>> normalise_tokens("\uff39ou're a \uff2cIAR!!  https://x.co/a @bob")  # fullwidth Y, L
    ['you', 're', 'a', 'liar', '<url>', '<user>']
    """
    text = unicodedata.normalize("NFKC", text)
    text = _drop_format_chars(text).casefold().translate(_HOMOGLYPHS)
    text = _URL.sub(" <url> ", text)
    text = _HANDLE.sub(" <user> ", text)
    return _WORD.findall(text)
