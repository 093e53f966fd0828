"""What one closed window of a person's mentions looks like, beyond its count.

The analyser keeps a short deque of recent mentions (time, author, young account or not,
near-duplicate cluster, answered post) and, when a bin closes, summarises the window that ends
with it: distinct authors, young accounts, copies, the busiest author and the most answered
post. The coordination and focus detectors score these figures; the alert reports them.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

MIN_COPY_AUTHORS = 3  # a text posted by this many accounts in one window is copypasta


@dataclass(slots=True)
class RecentMention:
    """What the window statistics need of one mention (no text, no handle)."""

    t: float
    author: str
    young: bool
    cluster: str | None
    post: int | None = None  # key of the post it replies to or quotes


@dataclass(frozen=True)
class WindowStats:
    mentions: int = 0
    distinct_authors: int = 0
    young: int = 0
    young_share: float = 0.0
    copies: int = 0  # mentions of texts that several accounts posted within the window
    top_author: int = 0  # mentions by the busiest author
    top_post: tuple[int | None, int] = (None, 0)  # (post key, mentions answering it)
    clusters: Counter[str] = field(default_factory=Counter)  # mentions per cluster id


def window_stats(
    recent: deque[RecentMention], start: float, end: float, lateness: float
) -> WindowStats:
    """Statistics of the mentions in ``[start, end)``; drops from ``recent`` what no later
    window can hold (older than ``start - lateness``)."""
    while recent and recent[0].t < start - lateness:
        recent.popleft()
    inside = [r for r in recent if start <= r.t < end]
    per_author = Counter(r.author for r in inside)
    per_cluster = Counter(r.cluster for r in inside if r.cluster is not None)
    # Copies: mentions of texts that several accounts posted within this window (a cluster's
    # all-day size grows with ordinary chatter, so it is not the measure).
    cluster_authors: dict[str, set[str]] = {}
    for r in inside:
        if r.cluster is not None:
            cluster_authors.setdefault(r.cluster, set()).add(r.author)
    copies = sum(per_cluster[cid] for cid, authors in cluster_authors.items()
                 if len(authors) >= MIN_COPY_AUTHORS)
    young = sum(r.young for r in inside)
    per_post = Counter(r.post for r in inside if r.post is not None)
    top_post: tuple[int | None, int] = per_post.most_common(1)[0] if per_post else (None, 0)
    return WindowStats(
        mentions=len(inside),
        distinct_authors=len(per_author),
        young=young,
        young_share=young / len(inside) if inside else 0.0,
        copies=copies,
        top_author=max(per_author.values(), default=0),
        top_post=top_post,
        clusters=per_cluster,
    )
