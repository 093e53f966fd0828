"""Signs of coordination in a detection window, each scored against the person's own normal.

For the mentions of one window, three shares are compared with what is usual for the person
(learned online from calm windows, exponentially weighted):

* **young accounts**: mentions from accounts younger than ``young_account_days``;
* **copies**: mentions of near-duplicate texts posted by at least three distinct accounts
  within the window (one template, many accounts: copypasta);
* **flood**: mentions by the window's most active author (a single-account flood).

Each is a binomial upper-tail test, ``-log10 P(Bin(n, q) >= k)`` with ``q`` the usual share
(floored, so a person with no young accounts so far is not infinitely surprised by one). Shares,
not counts, so an organic surge of established, diverse accounts scores low however big it is:
volume is the rate detector's job, and the pile-on score adds this evidence to it
(``pileon.streams.detection.analysis``). The score is the strongest of the three, capped at ``cap``.

Cost: three ``scipy`` tail evaluations per closed bin. State: six floats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

from pileon.streams.detection.detectors.base import share_tail_score

SIGNS = ("young", "copies", "flood")


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What the coordination signs look at in one detection window."""

    start: float
    mentions: int
    young: int  # mentions from young accounts
    copies: int  # mentions in clusters with enough distinct authors
    top_author: int  # mentions by the most active author


@dataclass(frozen=True, slots=True)
class CoordinationExplanation:
    young: float
    copies: float
    flood: float

    @property
    def score(self) -> float:
        return max(self.young, self.copies, self.flood)

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in asdict(self).items()}


class CoordinationDetector:
    """Binomial tail scores of young-account, copy and single-author shares in a window.

    >>> d = CoordinationDetector(warmup_windows=10)
    >>> for i in range(100):
    ...     d.learn_one(WindowSummary(i * 60.0, mentions=20, young=0, copies=1, top_author=2))
    >>> d.score_one(WindowSummary(6000.0, mentions=20, young=0, copies=1, top_author=2)) < 1
    True
    >>> d.score_one(WindowSummary(6000.0, mentions=60, young=40, copies=45, top_author=3)) > 8
    True
    """

    def __init__(self, warmup_windows: int = 60, memory_windows: int = 1440,
                 floors: tuple[float, float, float] = (0.02, 0.05, 0.05),
                 min_mentions: int = 10, cap: float = 20.0) -> None:
        self.warmup_windows = warmup_windows
        self.memory_windows = memory_windows
        self.floors = floors
        self.min_mentions = min_mentions
        self.cap = cap
        self.shares = [0.0, 0.0, 0.0]
        self.learned = 0

    def explain(self, x: WindowSummary) -> CoordinationExplanation:
        if self.learned < self.warmup_windows or x.mentions < self.min_mentions:
            return CoordinationExplanation(0.0, 0.0, 0.0)
        counts = (x.young, x.copies, x.top_author)
        scores = [share_tail_score(k, x.mentions, max(q, floor), self.cap)
                  for k, q, floor in zip(counts, self.shares, self.floors, strict=True)]
        return CoordinationExplanation(*scores)

    def score_one(self, x: WindowSummary) -> float:
        return self.explain(x).score

    def learn_one(self, x: WindowSummary) -> None:
        """Learn the usual shares (call for calm windows only: an attack is not normal)."""
        if x.mentions <= 0:
            return
        self.learned += 1
        alpha = 1.0 / min(self.learned, self.memory_windows)
        for i, k in enumerate((x.young, x.copies, x.top_author)):
            self.shares[i] += alpha * (k / x.mentions - self.shares[i])

    def to_state(self) -> dict[str, Any]:
        return {"shares": self.shares, "learned": self.learned}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Self:
        detector = cls(**params)
        detector.shares = [float(v) for v in state["shares"]]
        detector.learned = int(state["learned"])
        return detector
