"""Which near-duplicate cluster each mention of a bundle belongs to.

Alerts name each cluster by its template (the first mention of it the worker saw). The worker
assigns members by MinHash estimates and keeps no per-mention record of it, so the bundle
re-derives membership exactly and deterministically: a mention belongs to the template it
shares the largest Jaccard similarity of word pairs with (normalised as the worker normalises),
at or above the threshold. The same function serves the bundle's CSV and report, ``verify``
(which re-derives them) and the console.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

from pileon.schema.alert import AlertEvent
from pileon.streams.detection.neardup.normalize import normalise_tokens


def _shingles(text: str) -> frozenset[tuple[str, str]]:
    return frozenset(pairwise(normalise_tokens(text)))


def templates(events: Iterable[AlertEvent]) -> list[str]:
    """The template ids the incident's alerts named, first seen first."""
    seen: dict[str, None] = {}
    for event in events:
        for c in event.signals.near_duplicate_clusters:
            seen.setdefault(c.template_id)
    return list(seen)


def cluster_members(
    mentions: Iterable[Mapping[str, Any]], events: Iterable[AlertEvent], threshold: float = 0.5
) -> dict[str, str]:
    """``{mention id: template id}`` for the mentions that belong to a named cluster (the
    templates themselves included); a tie goes to the template named first."""
    mentions = list(mentions)
    texts = {str(m["id"]): str(m.get("text", "")) for m in mentions}
    shingled = {tid: _shingles(texts[tid]) for tid in templates(events) if tid in texts}
    shingled = {tid: s for tid, s in shingled.items() if s}
    members: dict[str, str] = {}
    if not shingled:
        return members
    for mid, text in texts.items():
        own = _shingles(text)
        if not own:
            continue
        best, best_j = None, threshold
        for tid, s in shingled.items():
            j = len(own & s) / len(own | s)
            if j > best_j or (best is None and j >= best_j):
                best, best_j = tid, j
        if best is not None:
            members[mid] = best
    return members
