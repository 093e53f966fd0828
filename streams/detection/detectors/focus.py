"""Concentration of a window's mentions on one post: many accounts replying to (or quoting)
the same post of the person, the way a pile-on usually lands ("dogpiling" one post).

For each detection window, the share of its mentions that reply to or quote its single most
answered post is compared with the person's usual share (learned online from calm windows,
exponentially weighted), as a binomial upper tail ``-log10 P(Bin(n, q) >= k)``. The usual share
is floored at ``floor`` (a quarter by default): an ordinary reply thread holds that much of a
quiet window, so a thread is not a surprise, while most of a busy window on one post is.

Focus says *where* a surge lands, not *who* is behind it: a viral post gathers its replies as
surely as a brigade does. It therefore adds to the pile-on score (as the coordination signs
do, once volume itself is unusual) but is never an indicator that a surge looks coordinated,
and the alert names the post so responders can act on it (limit replies, hide them).

Cost: one ``scipy`` tail evaluation per closed bin. State: two numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from pileon.streams.detection.detectors.base import share_tail_score


@dataclass(frozen=True, slots=True)
class FocusSummary:
    """What the focus signal looks at in one detection window."""

    start: float
    mentions: int
    top_post: int  # mentions replying to or quoting the window's most answered post


@dataclass(frozen=True, slots=True)
class FocusExplanation:
    share: float  # of the window's mentions on its most answered post
    usual: float  # the person's usual share (before the floor)
    score: float

    def to_dict(self) -> dict[str, float]:
        return {"share": round(self.share, 3), "usual": round(self.usual, 3),
                "score": round(self.score, 2)}


class FocusDetector:
    """Binomial tail score of the share of a window's mentions on its most answered post.

    >>> d = FocusDetector(warmup_windows=10)
    >>> for i in range(100):
    ...     d.learn_one(FocusSummary(i * 60.0, mentions=20, top_post=2))
    >>> d.score_one(FocusSummary(6000.0, mentions=20, top_post=5)) < 1
    True
    >>> d.score_one(FocusSummary(6000.0, mentions=80, top_post=60)) > 8
    True
    """

    def __init__(self, warmup_windows: int = 60, memory_windows: int = 1440,
                 floor: float = 0.25, min_mentions: int = 10, cap: float = 20.0) -> None:
        self.warmup_windows = warmup_windows
        self.memory_windows = memory_windows
        self.floor = floor
        self.min_mentions = min_mentions
        self.cap = cap
        self.share = 0.0
        self.learned = 0

    def explain(self, x: FocusSummary) -> FocusExplanation:
        share = x.top_post / x.mentions if x.mentions > 0 else 0.0
        if self.learned < self.warmup_windows or x.mentions < self.min_mentions:
            return FocusExplanation(share, self.share, 0.0)
        score = share_tail_score(x.top_post, x.mentions, max(self.share, self.floor), self.cap)
        return FocusExplanation(share, self.share, score)

    def score_one(self, x: FocusSummary) -> float:
        return self.explain(x).score

    def learn_one(self, x: FocusSummary) -> None:
        """Learn the usual share (call for calm windows only: an attack is not normal)."""
        if x.mentions <= 0:
            return
        self.learned += 1
        alpha = 1.0 / min(self.learned, self.memory_windows)
        self.share += alpha * (x.top_post / x.mentions - self.share)

    def to_state(self) -> dict[str, Any]:
        return {"share": self.share, "learned": self.learned}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        detector = cls(**params)
        detector.share = float(state["share"])
        detector.learned = int(state["learned"])
        return detector
