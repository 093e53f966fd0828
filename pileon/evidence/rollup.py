"""Who took part: one row per account of an incident's mentions (the bundle's report and the
console both show it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class AuthorRow:
    id: str
    platform: str
    handle: str
    mentions: int
    first_seen: datetime
    last_seen: datetime
    created_at: datetime | None
    clusters: list[str] = field(default_factory=list)
    profile_url: str | None = None

    @property
    def age_days(self) -> float | None:
        """The account's age when it first mentioned the person, in days."""
        if self.created_at is None:
            return None
        return max((self.first_seen - self.created_at).total_seconds() / 86400, 0.0)


def author_rollup(mentions: Iterable[Mapping[str, Any]], members: Mapping[str, str]
                  ) -> list[AuthorRow]:
    """Accounts by mentions (most first): first and last seen, account age, clusters
    (``members``: mention id -> template id)."""
    rows: dict[str, AuthorRow] = {}
    clusters: dict[str, dict[str, None]] = {}
    for m in mentions:
        author = m.get("author", {})
        aid = str(author.get("id", ""))
        at = parse_time(str(m["created_at"]))
        row = rows.get(aid)
        if row is None:
            created = author.get("created_at")
            row = rows[aid] = AuthorRow(
                aid, str(m.get("platform", "")), str(author.get("handle") or ""), 0, at, at,
                parse_time(created) if created else None, profile_url=profile_url(m))
            clusters[aid] = {}
        row.mentions += 1
        row.first_seen, row.last_seen = min(row.first_seen, at), max(row.last_seen, at)
        template = members.get(str(m["id"]))
        if template:
            clusters[aid].setdefault(template)
    for aid, row in rows.items():
        row.clusters = list(clusters[aid])
    return sorted(rows.values(), key=lambda r: (-r.mentions, r.first_seen, r.id))


def profile_url(mention: Mapping[str, Any]) -> str | None:
    """The author's profile on their platform, when the ids say where it is."""
    aid = str(mention.get("author", {}).get("id", ""))
    if mention.get("platform") == "bluesky" and aid.startswith("did:"):
        return f"https://bsky.app/profile/{aid}"
    if mention.get("platform") == "mastodon" and aid.startswith("https://"):
        return aid
    return None


def parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
