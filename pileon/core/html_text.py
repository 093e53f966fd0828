"""Platform HTML (a Mastodon status's ``content``) as plain text: what pileon keeps as a
mention's text and compares when it looks at a post again."""

from __future__ import annotations

import html
from html.parser import HTMLParser


class _Text(HTMLParser):
    """Status HTML to plain text: paragraphs and line breaks become newlines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(content: str) -> str:
    """
    >>> plain_text('<p><span class="h-card"><a href="x">@<span>amara</span></a></span> '
    ...            'you &amp; your<br>editor</p><p>again</p>')
    '@amara you & your\\neditor\\n\\nagain'
    """
    parser = _Text()
    parser.feed(content)
    parser.close()
    return html.unescape("".join(parser.parts)).strip()
