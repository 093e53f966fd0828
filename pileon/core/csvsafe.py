"""CSV cells safe to open in a spreadsheet. Every text in pileon's CSVs can come from a
platform and is hostile: a cell a spreadsheet would read as a formula (``= + - @``, their
fullwidth forms, tab, carriage return or newline, after any leading spaces) is prefixed with
``'`` (OWASP's CSV-injection advice), which the spreadsheet shows and a script can strip."""

from __future__ import annotations

from typing import Any

_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> str:
    """
    >>> safe_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> safe_cell("a fine text"), safe_cell(None), safe_cell(3)
    ('a fine text', '', '3')
    """
    text = "" if value is None else str(value)
    if text.lstrip(" ").startswith(_FORMULA):
        return "'" + text
    return text
